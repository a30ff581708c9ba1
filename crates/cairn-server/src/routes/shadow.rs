//! `/v1/shadow`: what the shadow tests measured of each challenger against the served lists, and
//! the guardrail's watch of a new champion (see `cairn_engine::shadow`); the same figures as the
//! `cairn_shadow_*` and `cairn_guardrail_*` metrics.

use std::fmt::Write as _;

use axum::extract::State;
use axum::Json;
use cairn_engine::shadow::{
    ChallengerReport, GuardrailReport, MeanSummary, ShadowReport, LATENCY_BUCKETS,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

/// A mean over comparisons with its normal-approximation 95% interval (`null` where undefined:
/// no comparison, or one for the interval).
#[derive(Debug, Serialize, ToSchema)]
pub struct Mean {
    pub n: u64,
    pub mean: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

impl From<MeanSummary> for Mean {
    fn from(s: MeanSummary) -> Self {
        Mean {
            n: s.n,
            mean: finite(s.mean),
            ci_low: finite(s.ci_low),
            ci_high: finite(s.ci_high),
        }
    }
}

/// One challenger version against the served lists.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShadowChallenger {
    pub version: String,
    /// Requests it scored and compared, and requests it failed to score.
    pub scored: u64,
    pub errors: u64,
    /// Share of the served first page's top k it also listed.
    pub overlap: Mean,
    /// Rank-biased overlap (extrapolated, persistence `rbo_p`) with the served first page.
    pub rbo: Mean,
    /// Kendall's τ between the two orders of the items both listed.
    pub kendall_tau: Mean,
    /// Its time to compute a list, in milliseconds.
    pub latency_ms: Mean,
    /// Items it would have added to the served lists, and of those the ones the user then had
    /// an event on within `window_secs`.
    pub added_items: u64,
    pub added_engaged: u64,
    /// Items it would have removed from the served lists, and of those the engaged ones.
    pub removed_items: u64,
    pub removed_engaged: u64,
}

impl From<ChallengerReport> for ShadowChallenger {
    fn from(c: ChallengerReport) -> Self {
        let ms = |s: MeanSummary| MeanSummary {
            sum: s.sum * 1e3,
            mean: s.mean * 1e3,
            ci_low: s.ci_low * 1e3,
            ci_high: s.ci_high * 1e3,
            ..s
        };
        ShadowChallenger {
            version: c.version,
            scored: c.scored,
            errors: c.errors,
            overlap: c.overlap.into(),
            rbo: c.rbo.into(),
            kendall_tau: c.tau.into(),
            latency_ms: ms(c.latency).into(),
            added_items: c.added_items,
            added_engaged: c.added_engaged,
            removed_items: c.removed_items,
            removed_engaged: c.removed_engaged,
        }
    }
}

/// The guardrail's watch of the champion after its promotion.
#[derive(Debug, Serialize, ToSchema)]
pub struct Guardrail {
    pub enabled: bool,
    /// The champion watched now, if any, and its counts since its promotion: requests, server
    /// errors, lists eligible for the empty check (first pages without filter or category) and
    /// empty ones.
    pub watching: Option<String>,
    pub requests: u64,
    pub errors: u64,
    pub eligible: u64,
    pub empty: u64,
    /// Rollbacks the guardrail made since the server started, and the last one's reason.
    pub rollbacks: u64,
    pub last_rollback: Option<String>,
}

impl From<GuardrailReport> for Guardrail {
    fn from(g: GuardrailReport) -> Self {
        Guardrail {
            enabled: g.enabled,
            watching: g.watching,
            requests: g.requests,
            errors: g.errors,
            eligible: g.eligible,
            empty: g.empty,
            rollbacks: g.rollbacks,
            last_rollback: g.last_rollback,
        }
    }
}

/// The shadow tests' report.
#[derive(Debug, Serialize, ToSchema)]
pub struct Shadow {
    /// `[shadow]` as configured.
    pub enabled: bool,
    pub challenger_setting: String,
    pub sample_share: f64,
    pub queue_capacity: usize,
    pub window_secs: u64,
    pub rbo_p: f64,
    /// The version the shadow scores with now (`null`: no challenger yet).
    pub challenger: Option<String>,
    /// Sampled requests offered to the queue, dropped because it was full (the response never
    /// waits), and waiting now.
    pub sampled: u64,
    pub dropped: u64,
    pub queued: u64,
    /// Requests not scored because no challenger could be loaded.
    pub no_challenger: u64,
    /// Users whose comparison waits for their events, and comparisons not followed because
    /// `max_pending_users` were waiting.
    pub pending_users: usize,
    pub pending_dropped: u64,
    /// One entry per challenger version scored (the newest 8).
    pub versions: Vec<ShadowChallenger>,
    pub guardrail: Guardrail,
}

impl From<ShadowReport> for Shadow {
    fn from(r: ShadowReport) -> Self {
        Shadow {
            enabled: r.config.enabled,
            challenger_setting: r.config.challenger,
            sample_share: r.config.sample_share,
            queue_capacity: r.config.queue_capacity,
            window_secs: r.config.window_secs,
            rbo_p: r.config.rbo_p,
            challenger: r.challenger,
            sampled: r.sampled,
            dropped: r.dropped,
            queued: r.queued,
            no_challenger: r.no_challenger,
            pending_users: r.pending_users,
            pending_dropped: r.pending_dropped,
            versions: r.versions.into_iter().map(Into::into).collect(),
            guardrail: r.guardrail.into(),
        }
    }
}

/// Shadow tests of the challenger against the served lists (overlap@k, rank-biased overlap,
/// Kendall's τ, latency, errors, engagement with the items it would have changed), and the
/// guardrail's watch of a new champion.
#[utoipa::path(
    get, path = "/v1/shadow", tag = "model",
    responses((status = 200, description = "The shadow tests' figures", body = Shadow))
)]
pub async fn report(State(state): State<AppState>) -> Result<Json<Shadow>, ApiError> {
    Ok(Json(state.engine.shadow_report().into()))
}

/// The `cairn_shadow_*` and `cairn_guardrail_*` metrics in Prometheus' text format.
pub fn prometheus(r: &ShadowReport) -> String {
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    };
    counter(
        "cairn_shadow_requests_total",
        "Recommendation requests sampled for a shadow test.",
        r.sampled,
    );
    counter(
        "cairn_shadow_dropped_total",
        "Sampled requests dropped because the shadow queue was full.",
        r.dropped,
    );
    counter(
        "cairn_shadow_no_challenger_total",
        "Sampled requests not scored because no challenger could be loaded.",
        r.no_challenger,
    );
    counter(
        "cairn_guardrail_rollbacks_total",
        "Champions rolled back by the guardrail.",
        r.guardrail.rollbacks,
    );
    let _ = writeln!(
        out,
        "# HELP cairn_shadow_queued Sampled requests waiting for the shadow worker.\n\
         # TYPE cairn_shadow_queued gauge\ncairn_shadow_queued {}",
        r.queued
    );
    let _ = writeln!(
        out,
        "# HELP cairn_guardrail_watching Whether a new champion is being watched.\n\
         # TYPE cairn_guardrail_watching gauge\ncairn_guardrail_watching {}",
        u8::from(r.guardrail.watching.is_some())
    );
    type Count = fn(&ChallengerReport) -> u64;
    let counts: [(&str, &str, Count); 6] = [
        ("scored", "Requests the challenger scored.", |c| c.scored),
        ("errors", "Requests the challenger failed to score.", |c| {
            c.errors
        }),
        (
            "added_items",
            "Items the challenger would have added.",
            |c| c.added_items,
        ),
        (
            "added_engaged",
            "Items the challenger would have added that the user then engaged with.",
            |c| c.added_engaged,
        ),
        (
            "removed_items",
            "Served items the challenger would have removed.",
            |c| c.removed_items,
        ),
        (
            "removed_engaged",
            "Served items the challenger would have removed that the user engaged with.",
            |c| c.removed_engaged,
        ),
    ];
    for (name, help, get) in counts {
        let _ = writeln!(
            out,
            "# HELP cairn_shadow_{name}_total {help}\n# TYPE cairn_shadow_{name}_total counter"
        );
        for c in &r.versions {
            let _ = writeln!(
                out,
                "cairn_shadow_{name}_total{{challenger=\"{}\"}} {}",
                c.version,
                get(c)
            );
        }
    }
    type Summary = fn(&ChallengerReport) -> MeanSummary;
    let summaries: [(&str, &str, Summary); 3] = [
        (
            "overlap",
            "overlap@k of the challenger's list with the served one.",
            |c| c.overlap,
        ),
        (
            "rbo",
            "Rank-biased overlap of the challenger's list with the served one.",
            |c| c.rbo,
        ),
        ("tau", "Kendall's tau of the items both lists hold.", |c| {
            c.tau
        }),
    ];
    for (name, help, get) in summaries {
        let _ = writeln!(
            out,
            "# HELP cairn_shadow_{name} {help}\n# TYPE cairn_shadow_{name} summary"
        );
        for c in &r.versions {
            let s = get(c);
            let _ = writeln!(
                out,
                "cairn_shadow_{name}_sum{{challenger=\"{v}\"}} {}\ncairn_shadow_{name}_count{{challenger=\"{v}\"}} {}",
                s.sum,
                s.n,
                v = c.version
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP cairn_shadow_latency_seconds The challenger's time to compute a list.\n\
         # TYPE cairn_shadow_latency_seconds histogram"
    );
    for c in &r.versions {
        let mut cumulative = 0;
        for (i, n) in c.latency_buckets.iter().enumerate() {
            cumulative += n;
            let le = LATENCY_BUCKETS
                .get(i)
                .map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(
                out,
                "cairn_shadow_latency_seconds_bucket{{challenger=\"{}\",le=\"{le}\"}} {cumulative}",
                c.version
            );
        }
        let _ = writeln!(
            out,
            "cairn_shadow_latency_seconds_sum{{challenger=\"{v}\"}} {}\n\
             cairn_shadow_latency_seconds_count{{challenger=\"{v}\"}} {}",
            c.latency.sum,
            c.latency.n,
            v = c.version
        );
    }
    out
}
