//! Content-based recommendation for Cairn: new items and new users get good recommendations from
//! their features before (or alongside) any interactions.
//!
//! - [`FeatureSpace`]: catalog items (categories, tags, typed properties, free text, client
//!   embeddings) or user properties → sparse, L2-normalised feature rows with a bounded vocabulary.
//! - [`ContentModel`]: user profile = weighted sum of the history's feature rows, scored through an
//!   inverted index; "similar items" by cosine; per-feature explanations.
//!
//! This is what serving uses. The research models built on the same feature space (the
//! LightFM-style hybrid, collective EASE, segment popularity) are evaluated offline and live in
//! `cairn-lab`, beside the benchmarks.
//!
//! Like `cairn-models`, everything works on dense `u32` indices and knows nothing of ids or storage.

pub mod content;
pub mod document;
pub mod error;
pub mod features;
pub mod text;

pub use content::ContentModel;
pub use document::{Document, Group};
pub use error::ContentError;
pub use features::{FeatureConfig, FeatureInfo, FeatureSpace, TextWeighting};
