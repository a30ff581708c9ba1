//! Errors of an import. A [`RowError`] is one bad row: the import can skip it and go on. An
//! [`ImportError`] concerns a whole file (missing, unreadable, wrong layout) and stops the import.

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// One bad row, displayed as `file:line: message` so that editors and terminals can jump to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub file: PathBuf,
    /// 1-based line number in `file`.
    pub line: u64,
    /// What is wrong and what to fix.
    pub message: String,
}

impl RowError {
    pub fn new(file: &Path, line: u64, message: impl Into<String>) -> Self {
        RowError {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

impl std::error::Error for RowError {}

#[derive(Debug, Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Layout { path: PathBuf, message: String },
    #[error("{dir} does not look like a MovieLens dataset: {message}")]
    UnknownDataset { dir: PathBuf, message: String },
    #[error(
        "cannot tell the format of {path}; name it *.csv, *.jsonl or *.parquet, or pass --format"
    )]
    UnknownFormat { path: PathBuf },
}

impl ImportError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ImportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn layout(path: &Path, message: impl Into<String>) -> Self {
        ImportError::Layout {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}
