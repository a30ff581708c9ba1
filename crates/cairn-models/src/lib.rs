//! Cairn's recommendation algorithms. They work on dense `u32` indices and the sparse interaction matrix
//! of `cairn-core`; they know nothing of ids, storage or HTTP.
//!
//! Every model scores a user from their history (item index and strength), so that a user who was not in
//! the training data, or who acted since, is served without retraining ("fold-in").

pub mod als;
pub mod blend;
pub mod bpr;
pub mod ease;
mod eigenbasis;
pub mod error;
pub mod item_knn;
pub mod kernels;
pub mod popularity;
pub mod progress;
pub mod rating;
pub mod registry;
pub mod topk;
pub mod transition;
pub mod trending;
pub mod user_knn;
pub mod vae;

// For `dispatch_simd!`, which expands in other modules and names the level through `$crate`.
#[doc(hidden)]
pub use cairn_simd;

#[cfg(test)]
mod testdata;

pub use als::{AlsConfig, AlsSolver, ImplicitAls};
pub use blend::Blend;
pub use bpr::{Bpr, BprConfig};
pub use ease::{weights_from_gram_matrix, Ease, EaseConfig, Precision};
pub use error::ModelError;
pub use item_knn::{ItemKnn, ItemKnnConfig, KnnWeighting};
pub use popularity::Popularity;
pub use progress::{Progress, Silent};
pub use rating::{BiasedMf, FoldedUser, MfConfig, RatingPredictor, SvdPlusPlus};
pub use registry::{FactorModel, FittedModel, ModelSpec};
pub use topk::top_k;
pub use transition::{Transition, TransitionConfig};
pub use trending::Trending;
pub use user_knn::{UserKnn, UserKnnConfig};
pub use vae::{MultVae, VaeConfig};

/// One interaction for time-aware models: (item index, strength, unix seconds).
pub type TimedInteraction = (u32, f32, i64);

/// Each training user's items in time order, oldest first: entry `u` is row `u` of the training
/// matrix. What the sequence-aware models (see [`ModelSpec::needs_order`]) fit on.
pub type Sequences = [Vec<u32>];

/// A model that ranks items for a user.
pub trait Recommender: Send + Sync {
    /// Short stable name, e.g. `item-knn`.
    fn name(&self) -> &'static str;
    /// Number of items the model knows; `scores` passed to [`Recommender::score`] has this length.
    fn n_items(&self) -> usize;
    /// Writes a score for every item (higher is better) for a user with this history: (item index,
    /// strength), oldest first. Items the user has seen are not excluded here; callers do that.
    fn score(&self, history: &[(u32, f32)], scores: &mut [f32]);
}

/// A model that can list the items most like a given one.
pub trait SimilarItems: Send + Sync {
    fn similar(&self, item: u32, k: usize) -> Vec<(u32, f32)>;
}
