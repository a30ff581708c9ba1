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
    #[error("storage backend failed: {0}")]
    Backend(String),
}

macro_rules! backend_error {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Backend(e.to_string())
            }
        }
    )*};
}

backend_error!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
