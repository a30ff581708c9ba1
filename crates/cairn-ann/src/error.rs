/// Why an index could not be built, extended, searched or loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnnError {
    #[error("vector has {got} values, the index has dimension {expected}")]
    DimensionMismatch { expected: usize, got: usize },
    #[error("vector data of {len} values is not a whole number of rows of dimension {dim}")]
    RaggedInput { len: usize, dim: usize },
    #[error("value {index} of vector {row} is not finite")]
    NonFinite { row: usize, index: usize },
    #[error("vector {row} has zero length and cannot be normalised for cosine similarity")]
    ZeroVector { row: usize },
    #[error("no vectors given")]
    Empty,
    #[error("dimension must be at least 1")]
    ZeroDimension,
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("the index is full: at most {max} vectors")]
    TooMany { max: usize },
    #[error("corrupt index: {0}")]
    Corrupt(String),
}
