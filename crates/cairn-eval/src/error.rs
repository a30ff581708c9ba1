//! Errors of the evaluation crate. Every failure on user input (files, options) is one of these, never
//! a panic.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error(
        "{path}: missing column `{column}` (header must name user,item[,rating][,weight][,ts])"
    )]
    MissingColumn { path: PathBuf, column: &'static str },
    #[error("{path}, line {line}: bad {column} value `{value}`")]
    BadValue {
        path: PathBuf,
        line: u64,
        column: &'static str,
        value: String,
    },
    #[error("{path}: not a split folder for protocol {protocol}: missing {file}")]
    MissingSplitFile {
        path: PathBuf,
        protocol: String,
        file: String,
    },
    #[error("unknown protocol `{0}` (known: explicit-ml100k, strong-gen, weak-gen, cold-items, temporal, holdout, leave-last-out, k-fold)")]
    UnknownProtocol(String),
    #[error(
        "cannot tell the protocol of {0}: no meta.json with a `protocol` field; pass --protocol"
    )]
    UnknownSplitProtocol(PathBuf),
    #[error("invalid option: {0}")]
    InvalidOption(String),
    #[error("the data has no {0} column, which this needs")]
    MissingData(&'static str),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// A MovieLens file that cairn-import's readers cannot open or whose layout is wrong.
    #[error(transparent)]
    Import(#[from] cairn_import::ImportError),
    /// A bad row of a MovieLens file, as `file:line: message`.
    #[error(transparent)]
    Row(#[from] cairn_import::RowError),
}

pub type Result<T> = std::result::Result<T, EvalError>;

impl EvalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.into(),
            source,
        }
    }
}
