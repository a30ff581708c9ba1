//! Cairn's research models: evaluated offline against the benchmarks, not served. They sit beside
//! the benchmarks rather than in the product so that serving (and `cairn-content`, which serving
//! uses) carries none of their code or dependencies; a model that earns its place in serving moves
//! out of here into the crate for its kind.
//!
//! - [`HybridModel`]: LightFM-style factorization where an item is the sum of its feature
//!   embeddings (plus an identity for warm items) and a user is folded in from history and
//!   properties, trained with WARP or BPR.
//! - [`CollectiveEase`]: EASE over interactions augmented with item features (pseudo-users) and
//!   user properties (pseudo-items): warm items keep EASE's quality, items without interactions
//!   and users known by properties are scored through the shared weights.
//! - [`SegmentPopularity`]: popularity within the segments a user's properties put them in, for
//!   users known by properties alone.
//!
//! The examples (`cold_items`, `warm_items`) are the benchmarks of docs/bench/content.md: they
//! compare these models with the content model of `cairn-content` and the collaborative models of
//! `cairn-models`, alone and in `cairn_models::Blend`s, scored with `cairn-eval`'s metrics.
//!
//! Like `cairn-models`, everything works on dense `u32` indices and knows nothing of ids or storage.

pub mod collective;
pub mod hybrid;
pub mod segment;

#[cfg(test)]
mod testdata;

pub use collective::{CollectiveConfig, CollectiveEase};
pub use hybrid::{HybridConfig, HybridModel, Loss};
pub use segment::SegmentPopularity;
