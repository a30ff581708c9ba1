use thiserror::Error;

/// Everything that can go wrong when building ranking data or fitting a ranker.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum RankError {
    #[error("{0}: no rows")]
    EmptyData(&'static str),
    #[error("n_features must be at least 1")]
    NoFeatures,
    #[error("{what}: expected {expected}, got {actual}")]
    LengthMismatch {
        what: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("group {group} has no rows")]
    EmptyGroup { group: usize },
    #[error("row {row}, feature {feature}: value {value} is infinite (NaN is allowed and means missing)")]
    InfiniteFeature {
        row: usize,
        feature: usize,
        value: f32,
    },
    #[error("row {row}: label {value} must be finite and in [0, {max}]")]
    BadLabel { row: usize, value: f32, max: f32 },
    #[error("validation data has {actual} features, training data has {expected}")]
    FeatureCountMismatch { expected: usize, actual: usize },
    #[error("bad config: {0}")]
    BadConfig(String),
    #[error("model is corrupt: a tree refers outside its arrays or to a feature it does not have")]
    CorruptModel,
}
