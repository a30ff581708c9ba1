//! Content-based and hybrid recommenders for Cairn: new items and new users get good
//! recommendations from their features before (or alongside) any interactions.
//!
//! - [`FeatureSpace`]: catalog items (categories, tags, typed properties, free text, client
//!   embeddings) or user properties → sparse, L2-normalised feature rows with a bounded vocabulary.
//! - [`ContentModel`]: user profile = weighted sum of the history's feature rows, scored through an
//!   inverted index; "similar items" by cosine; per-feature explanations.
//! - [`HybridModel`]: LightFM-style factorization where an item is the sum of its feature
//!   embeddings (plus an identity for warm items) and a user is folded in from history and
//!   properties, trained with WARP or BPR.
//! - [`CollectiveEase`]: EASE over interactions augmented with item features (pseudo-users) and
//!   user properties (pseudo-items): warm items keep EASE's quality, items without interactions
//!   and users known by properties are scored through the shared weights.
//! - [`SegmentPopularity`]: popularity within the segments a user's properties put them in, for
//!   users known by properties alone.
//! - [`Blend`]: standardised score blends, with weights learnable on validation users.
//!
//! Like `cairn-models`, everything works on dense `u32` indices and knows nothing of ids or storage.

pub mod blend;
pub mod collective;
pub mod content;
pub mod document;
pub mod error;
pub mod features;
pub mod hybrid;
pub mod segment;
pub mod text;

#[cfg(test)]
mod testdata;

pub use blend::{Blend, LearnOptions, ValidationUser};
pub use collective::{CollectiveConfig, CollectiveEase};
pub use content::ContentModel;
pub use document::{Document, Group};
pub use error::ContentError;
pub use features::{FeatureConfig, FeatureInfo, FeatureSpace, TextWeighting};
pub use hybrid::{HybridConfig, HybridModel, Loss};
pub use segment::SegmentPopularity;
