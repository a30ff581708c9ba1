use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("the data directory {0} is in use by another Cairn process (a running `cairn serve`?); stop it or go through its API")]
    InUse(PathBuf),
    #[error("cannot open the data directory {path}: {message}")]
    Open { path: PathBuf, message: String },
    /// The store file is damaged (truncated, flipped bytes): redb refused it or failed inside.
    #[error("the store file {path} is damaged ({message}); run `cairn check` to see what can still be read, and restore the data directory from a backup")]
    Damaged { path: PathBuf, message: String },
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// The disk under the store failed (or refused) a read or write. Nothing of the operation was
    /// stored; earlier acknowledged writes are intact. See [`IoKind`].
    #[error("{}", io_text(*kind, message))]
    Io { kind: IoKind, message: String },
    #[error("storage backend failed: {0}")]
    Backend(String),
}

/// What kind of disk failure a [`StoreError::Io`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoKind {
    /// No space left on the device (or the quota, or the file size limit, is reached).
    NoSpace,
    /// Any other I/O failure (EIO, a lost device, ...).
    Failed,
}

fn io_text(kind: IoKind, message: &str) -> String {
    match kind {
        IoKind::NoSpace => format!(
            "the disk holding the store is full ({message}): the write was refused and nothing of \
             it was stored; free space on the data directory's disk and writes resume by \
             themselves within seconds; reads go on meanwhile"
        ),
        IoKind::Failed => format!(
            "the disk holding the store failed ({message}): nothing of this write was stored; \
             reads go on and writes resume by themselves once the disk works again (see the \
             system log)"
        ),
    }
}

/// Why the store refuses writes: the disk refused one (see [`crate::Store::write_failure`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFailure {
    pub kind: IoKind,
    /// The operating system's words for the last failure, e.g. "No space left on device (os error 28)".
    pub message: String,
    /// When writes started failing (Unix seconds).
    pub since: i64,
}

impl WriteFailure {
    /// The error a write refused meanwhile gets.
    pub fn error(&self) -> StoreError {
        StoreError::Io {
            kind: self.kind,
            message: self.message.clone(),
        }
    }
}

impl StoreError {
    /// The kind of disk failure, when this is one.
    pub fn io_kind(&self) -> Option<IoKind> {
        match self {
            StoreError::Io { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    pub(crate) fn from_io(e: &std::io::Error) -> StoreError {
        use std::io::ErrorKind;
        let kind = match e.kind() {
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => {
                IoKind::NoSpace
            }
            _ => IoKind::Failed,
        };
        StoreError::Io {
            kind,
            message: e.to_string(),
        }
    }

    pub(crate) fn from_storage(e: redb::StorageError) -> StoreError {
        match e {
            redb::StorageError::Io(io) => StoreError::from_io(&io),
            // The database handle saw an I/O error before: the store reopens it (see
            // `EmbeddedStore`); the error that caused it was reported where it happened.
            redb::StorageError::PreviousIo => StoreError::Io {
                kind: IoKind::Failed,
                message: "an earlier write to the store file failed".into(),
            },
            other => StoreError::Backend(other.to_string()),
        }
    }
}

impl From<redb::StorageError> for StoreError {
    fn from(e: redb::StorageError) -> Self {
        StoreError::from_storage(e)
    }
}

impl From<redb::TransactionError> for StoreError {
    fn from(e: redb::TransactionError) -> Self {
        match e {
            redb::TransactionError::Storage(s) => StoreError::from_storage(s),
            other => StoreError::Backend(other.to_string()),
        }
    }
}

impl From<redb::TableError> for StoreError {
    fn from(e: redb::TableError) -> Self {
        match e {
            redb::TableError::Storage(s) => StoreError::from_storage(s),
            other => StoreError::Backend(other.to_string()),
        }
    }
}

impl From<redb::CommitError> for StoreError {
    fn from(e: redb::CommitError) -> Self {
        match e {
            redb::CommitError::Storage(s) => StoreError::from_storage(s),
            other => StoreError::Backend(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_space_is_told_apart_from_other_io_failures() {
        let full = std::io::Error::from_raw_os_error(28); // ENOSPC
        assert_eq!(StoreError::from_io(&full).io_kind(), Some(IoKind::NoSpace));
        let eio = std::io::Error::from_raw_os_error(5); // EIO
        assert_eq!(StoreError::from_io(&eio).io_kind(), Some(IoKind::Failed));
        let text = StoreError::from_io(&full).to_string();
        assert!(
            text.contains("is full") && text.contains("free space"),
            "{text}"
        );
    }
}
