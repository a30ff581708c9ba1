//! What the ranker's guard (`crate::guard`) measured and decided, kept in the model set: apart
//! from the guard itself so that the model set and its artifact can hold a report without
//! depending on the evaluation that makes one.

use serde::{Deserialize, Serialize};

use crate::placement::Source;

/// One retriever's NDCG@10 on the guard's held-out events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceScore {
    pub source: Source,
    pub ndcg: f64,
}

/// What the guard measured on the newest slice of the training log and what it decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardReport {
    /// Held-out users compared: those with events before the cut and at least one item among
    /// their held-out events that they had not chosen before and that the past's collaborative
    /// models know (as a next-period test counts them).
    pub users: usize,
    /// Mean NDCG@10 of the ranker's order; `None` when the log without its newest slice was too
    /// small to train a ranker on (the ranker then cannot be checked, and does not serve).
    pub ranker_ndcg: Option<f64>,
    /// Mean NDCG@10 of each retriever's own order, in the placement's order of retrievers.
    pub sources: Vec<SourceScore>,
    /// The retriever with the best mean NDCG@10 (the first in `sources` on a tie).
    pub best_source: Source,
    pub best_ndcg: f64,
    /// Paired over the users: mean of ranker − best retriever, and its standard error.
    pub diff_mean: f64,
    pub diff_se: f64,
    /// The retriever that orders the served lists instead of the ranker; `None` when the ranker
    /// passed (diff_mean − diff_se > 0) and serves.
    pub fallback: Option<Source>,
}

impl GuardReport {
    /// Whether the ranker passed and orders the served lists.
    pub fn ranker_serves(&self) -> bool {
        self.fallback.is_none()
    }
}
