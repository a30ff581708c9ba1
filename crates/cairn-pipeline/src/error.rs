use thiserror::Error;

/// Errors of fitting a model set and of its artifact file. Their messages are those the engine
/// reports as `model artifact: …`.
#[derive(Debug, Error)]
pub enum PipelineError {
    /// `train.model` could not be fitted.
    #[error("fitting train.model `{model}`: {source}")]
    Model {
        model: &'static str,
        source: cairn_models::ModelError,
    },
    /// The content model over the catalog's item features.
    #[error("content features: {0}")]
    Content(#[source] cairn_content::ContentError),
    /// The nearest-neighbour index over the factor model's item vectors.
    #[error("item index: {0}")]
    Ann(#[source] cairn_ann::AnnError),
    /// The learned ranker.
    #[error("ranker: {0}")]
    Ranker(#[source] cairn_rank::RankError),
    /// Writing, reading or decoding an artifact file; the message names the file where one is
    /// involved.
    #[error("{0}")]
    Artifact(String),
}
