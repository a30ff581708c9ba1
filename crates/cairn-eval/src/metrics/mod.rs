//! Metric definitions, per user first, with exactly the formulas of the peers' `metrics.py` (written
//! out in docs/EVALUATION.md). Undefined values (a user without targets, a list too short for
//! diversity) are `None`; averages skip them.

pub mod agreement;
pub mod auc;
pub mod beyond;
pub mod fairness;
pub mod ranking;
pub mod rating;

pub use agreement::{kendall_tau_shared, overlap_at_k, rbo_ext};
pub use auc::auc;
pub use beyond::{catalog_coverage, gini, intra_list_diversity, novelty, NormalizedFeatures};
pub use fairness::{group_exposure, miscalibration, GroupExposure, ItemGroups};
pub use ranking::Relevance;
pub use rating::{mae, rmse};
