//! Offline evaluation for Cairn: split protocols (the peers harness's split folders, and Rust
//! splitters), ranking / rating / beyond-accuracy metrics with the definitions of docs/EVALUATION.md,
//! confidence intervals and paired comparisons, and the runner behind `cairn eval` and `cairn tune`.
//!
//! Flow: a [`split::SplitSet`] (read by [`split_dir`] or made by [`splitters`]) → one
//! [`task::EvalTask`] per stage → any `cairn_models::ModelSpec` fitted on the task's training matrix →
//! [`evaluate::evaluate_ranking`] → [`runner`] summaries and reports.

pub mod data;
pub mod divergence;
pub mod error;
pub mod evaluate;
pub mod external;
pub mod metrics;
pub mod rating_models;
pub mod report;
pub mod runner;
pub mod split;
pub mod split_dir;
pub mod splitters;
pub mod stats;
pub mod task;
pub mod tune;

pub use error::{EvalError, Result};
pub use evaluate::{evaluate_ranking, RankingOptions, RankingResult, TieBreak};
pub use external::{External, ExternalModel};
pub use runner::{run, ModelChoice, Report, RunConfig, StageSelection};
pub use split::{Protocol, Role, SplitSet, Stage, StageData};
pub use split_dir::read_split_dir;
pub use task::{EvalTask, EvalUser};
