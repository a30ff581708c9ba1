//! Cairn's online experiment engine, as pure functions: no I/O, no clock, no HTTP.
//!
//! * [`assign`]: which variant a user is in: a fixed salted hash (SHA-256) of the experiment's
//!   salt and the user id, cut by integer weights; namespaces make experiments mutually exclusive.
//! * [`interleave`]: team-draft interleaving of two rankings, click credit per team, and the
//!   per-user preference with its interval and sign test.
//! * [`analysis`]: an A/B test's report from per-user outcomes: totals, CTR (delta method) and
//!   per-user means (CUPED), differences to the control with fixed-horizon and always-valid
//!   intervals, Holm's correction, the sample-ratio-mismatch check, and a ship / stop / keep-running
//!   decision with its reason.
//! * [`sequential`]: the always-valid (normal-mixture) confidence sequence behind the intervals that
//!   can be looked at every day.
//! * [`power`]: sample sizes for a planned effect.
//! * [`stats`]: the hand-written numerics (normal CDF and quantile, χ² survival, sign test, Holm).
//!
//! `examples/simulate.rs` checks the statistics end to end on seeded simulations (false-positive
//! rate under daily peeking, SRM, power, interleaving against A/B, CUPED); its figures are in
//! docs/bench/experiments.md.

pub mod analysis;
pub mod assign;
pub mod interleave;
pub mod power;
pub mod sequential;
pub mod stats;

pub use analysis::{
    analyze, srm_always_valid_p, srm_check, AnalysisConfig, Comparison, CupedInfo, Decision,
    Interval, Metric, Report, SrmCheck, UserOutcome, VariantSummary,
};
pub use assign::{
    hash64, namespace_bucket, Assigner, Assignment, ExperimentSpec, NamespaceSlot, VariantSpec,
    NAMESPACE_BUCKETS,
};
pub use interleave::{credit, team_draft, Credit, Interleaved, PreferenceSummary, Team};
pub use sequential::SequentialConfig;

/// What can be wrong with an experiment's definition or its data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExperimentError {
    /// A specification or an input that cannot be used, and why.
    #[error("invalid experiment: {0}")]
    Invalid(String),
    /// Two experiments of one namespace claim overlapping bucket ranges.
    #[error("experiments {first} and {second} overlap in namespace {namespace}")]
    NamespaceOverlap {
        /// The namespace.
        namespace: String,
        /// The experiment with the lower range.
        first: String,
        /// The experiment whose range starts inside the first's.
        second: String,
    },
}
