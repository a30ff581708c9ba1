use cairn_core::ValidationError;
use cairn_store::{IoKind, StoreError};
use thiserror::Error;

/// Errors of engine operations. Each variant maps to one stable API error code (see [`EngineError::code`]).
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("{0}")]
    Invalid(ValidationError),
    #[error("{kind} `{id}` does not exist")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    Unprocessable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("model artifact: {0}")]
    Artifact(String),
    #[error("training is already running")]
    TrainingBusy,
    /// Another process over the same shared store (a replica) holds the trainer lease: only it
    /// trains while it lives.
    #[error(
        "another replica over this PostgreSQL store holds the trainer lease and is the only one \
         that trains; train through it, or wait until it stops (the lease then passes on)"
    )]
    TrainerElsewhere,
    /// A model version cannot take the alias asked for (refused by the gate, its file pruned, no
    /// earlier champion to roll back to, already there).
    #[error("{0}")]
    ModelConflict(String),
    /// A training ran past `train.max_secs` and was abandoned.
    #[error(
        "the training ran longer than train.max_secs ({limit_secs} s) and was abandoned; no model \
         was written and the previous one keeps serving"
    )]
    TrainingTimedOut { limit_secs: u64 },
    /// A filter or boost expression that does not parse.
    #[error("{field}: {message}")]
    InvalidExpression { field: String, message: String },
    /// A page cursor whose list is no longer kept.
    #[error("{0}")]
    CursorExpired(String),
    /// A name the request uses that no catalog item has: a category, or an item property an
    /// expression reads. The message suggests the nearest known names.
    #[error("{field}: {message}")]
    UnknownName {
        kind: NameKind,
        field: String,
        message: String,
    },
    /// An experiment operation that contradicts the experiments' state (an id taken, a namespace
    /// full, an experiment already stopped or shipped).
    #[error("{0}")]
    ExperimentConflict(String),
    /// The experiments' files could not be read or written.
    #[error("experiments: {0}")]
    ExperimentStorage(String),
    /// A write that would take the store past one of its `[quota]` caps.
    #[error("{0}")]
    QuotaExceeded(String),
}

/// What kind of name an [`EngineError::UnknownName`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Category,
    Property,
}

impl EngineError {
    /// A stable machine-readable code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Invalid(_) => "invalid_argument",
            EngineError::NotFound { kind: "item", .. } => "item_not_found",
            EngineError::NotFound { kind: "user", .. } => "user_not_found",
            EngineError::NotFound { kind: "key", .. } => "key_not_found",
            EngineError::NotFound {
                kind: "model version",
                ..
            } => "model_version_not_found",
            EngineError::NotFound {
                kind: "experiment", ..
            } => "experiment_not_found",
            EngineError::NotFound {
                kind: "recommendation",
                ..
            } => "recommendation_not_found",
            EngineError::NotFound { .. } => "not_found",
            EngineError::Unprocessable(_) => "unprocessable",
            EngineError::Store(StoreError::InUse(_)) => "store_in_use",
            EngineError::Store(StoreError::Io {
                kind: IoKind::NoSpace,
                ..
            }) => "storage_full",
            EngineError::Store(StoreError::Io { .. }) => "storage_unavailable",
            EngineError::Store(_) => "storage_error",
            EngineError::Artifact(_) => "model_error",
            EngineError::TrainingBusy => "training_busy",
            EngineError::TrainerElsewhere => "trainer_elsewhere",
            EngineError::ModelConflict(_) => "model_conflict",
            EngineError::TrainingTimedOut { .. } => "training_timeout",
            EngineError::InvalidExpression { .. } => "invalid_expression",
            EngineError::CursorExpired(_) => "cursor_expired",
            EngineError::UnknownName {
                kind: NameKind::Category,
                ..
            } => "unknown_category",
            EngineError::UnknownName {
                kind: NameKind::Property,
                ..
            } => "unknown_property",
            EngineError::ExperimentConflict(_) => "experiment_conflict",
            EngineError::ExperimentStorage(_) => "experiment_storage_error",
            EngineError::QuotaExceeded(_) => "quota_exceeded",
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        EngineError::Invalid(ValidationError::new(field, message))
    }
}

impl From<ValidationError> for EngineError {
    fn from(e: ValidationError) -> Self {
        EngineError::Invalid(e)
    }
}

/// Fitting a model set or reading and writing its artifact file.
impl From<cairn_pipeline::PipelineError> for EngineError {
    fn from(e: cairn_pipeline::PipelineError) -> Self {
        EngineError::Artifact(e.to_string())
    }
}
