//! Cairn's learned ranker: gradient-boosted regression trees trained with the LambdaMART
//! (LambdaRank NDCG@k) objective, on features quantised into at most 255 histogram bins.
//!
//! * Data: [`RankingData`] holds row-major `f32` features, relevance labels and group sizes (one
//!   group per request). NaN is a missing value; infinite values are rejected.
//! * Missing values: bin 0 of every feature; each split learns whether missing goes left or right
//!   (toward the side with more rows when the leaf saw no missing value).
//! * Training: [`Ranker::fit`] grows trees best-first up to `max_leaves`, Newton leaf values
//!   `-G / (H + l2)` times the learning rate, optional per-tree feature sampling and early stopping
//!   on validation NDCG. It is deterministic for a given config and data, whatever the thread count.
//! * Serving: [`Ranker::predict`] / [`Ranker::predict_many`] walk flat node arrays with raw `f32`
//!   thresholds; no binning at prediction time. `predict_many` walks each tree with a block of 16
//!   rows in lockstep, branch-free (see `lockstep.rs`); its scores equal `predict`'s bit for bit.

mod binning;
mod config;
mod data;
mod error;
mod forest;
mod grow;
mod lambda;
mod lockstep;
mod metrics;
mod ranker;

pub use config::RankerConfig;
pub use data::{RankingData, MAX_LABEL};
pub use error::RankError;
pub use metrics::{mean_ndcg, ndcg_at};
pub use ranker::Ranker;
