//! Errors of model fitting.

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum ModelError {
    /// The model needs a dense structure larger than the configured memory cap.
    #[error("{model} needs about {needed_bytes} bytes of memory for {what}, above the cap of {cap_bytes} bytes")]
    TooLarge {
        model: &'static str,
        what: String,
        needed_bytes: u64,
        cap_bytes: u64,
    },
    /// The dense solve failed (the matrix was not positive definite, e.g. λ ≤ 0).
    #[error("{model}: {reason}")]
    Numerical { model: &'static str, reason: String },
    /// A sequence-aware model was asked to fit without the users' events in time order.
    #[error("{model} needs each training user's events in time order, and none were given")]
    NeedsOrder { model: &'static str },
    #[error("invalid configuration for {model}: {reason}")]
    InvalidConfig { model: &'static str, reason: String },
}
