//! The multi-stage serving pipeline: candidate generation from several retrievers with quotas,
//! scoring (learned ranker, or reciprocal-rank fusion), re-ranking (boosts, diversity,
//! exploration), and the trained [`ModelSet`] it runs on, fitted from a training [`Snapshot`] and
//! saved as one versioned [`artifact`] file. It works on a model set and a request [`Context`] only,
//! with no storage access, so that offline evaluation runs exactly the code that serves; reading the
//! event log from a store and the serving façade (catalog, rules, paging) live in `cairn-engine`.
//!
//! Each stage's configuration type sits beside its stage: [`PlacementConfig`] in [`placement`],
//! [`AnnConfig`] in [`ann`], [`RankerTrainConfig`] in [`training`], [`TrainConfig`] (what a fit
//! uses) in [`model_set`], [`HistoryConfig`] (how a history becomes seeds) in [`request`].

pub mod ann;
pub mod artifact;
mod error;
pub mod fairness;
pub mod features;
pub mod fit;
pub mod fusion;
pub mod guard;
pub mod guard_report;
pub mod items;
pub mod model_set;
pub mod offline;
pub mod placement;
pub mod request;
pub mod rerank;
pub mod retrieve;
pub mod score;
pub mod snapshot;
pub mod sparse;
pub mod training;

pub use ann::AnnConfig;
pub use error::PipelineError;
pub use fit::TrainConfig;
pub use fusion::{fusion_head, fusion_score};
pub use guard_report::GuardReport;
pub use items::ItemTable;
pub use model_set::ModelSet;
pub use placement::{default_placements, PlacementConfig, Quota, Seeds, Source};
pub use request::{seeds, Activity, Context, HistoryConfig, HistoryEvent, Ranked};
pub use retrieve::{Candidate, Retrieval};
pub use score::{score_candidates, score_with_ranker, Scores};
pub use snapshot::Snapshot;
pub use training::{LabelSplit, RankerTrainConfig};

pub const N_SOURCES: usize = Source::ALL.len();

/// Runs all stages and returns up to `ctx.window` items, best first.
pub fn run(m: &ModelSet, ctx: &Context, placement: &PlacementConfig) -> Vec<Ranked> {
    let retrieval = retrieve::retrieve(m, ctx, placement);
    let scores = score_candidates(m, ctx, &retrieval, placement);
    rerank::rerank(m, ctx, placement, &retrieval, &scores)
}
