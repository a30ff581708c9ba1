//! Errors of feature building and model fitting.

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum ContentError {
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Two inputs that must describe the same items (or users) disagree in size.
    #[error("{what}: expected {expected} rows, got {got}")]
    ShapeMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },
}
