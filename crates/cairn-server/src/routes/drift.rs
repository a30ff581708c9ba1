//! `GET /v1/drift`: drift and health of the served traffic against the champion's training data,
//! window by window (see `cairn_engine::drift` and docs/OPERATIONS.md, "Drift and health").

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

/// The recent windows with their figures and the thresholds each one passed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DriftReport {
    /// `drift.enabled`; off, no window is counted.
    pub enabled: bool,
    /// `drift.window_secs`.
    pub window_secs: u64,
    /// The champion whose training data (its saved reference) the current window is compared
    /// with; `null` when none serves or it was trained without a reference.
    pub reference_version: Option<String>,
    /// The thresholds of `[drift]`: `psi_alarm`, `js_alarm`, `event_mix_psi_alarm`,
    /// `new_item_share_alarm`, `new_user_share_alarm`, `fallback_share_alarm`,
    /// `min_window_events`, `min_window_lists`.
    #[schema(value_type = Object)]
    pub thresholds: serde_json::Value,
    /// Complete windows, oldest first (at most `drift.history_windows`). Each has `started_at`,
    /// `ended_at` (Unix seconds), `events`, `event_types`, `event_mix_psi`, `new_item_share`,
    /// `new_user_share`, `popularity_psi`, `popularity_js` (nats), `popularity_bins`, `lists`,
    /// `empty_lists`, `items_served`, `distinct_items_served`, `exposure_truncated`, `coverage`,
    /// `exposure_gini`, `fallback_share`, `score_quantiles` (`p10`, `p50`, `p90`), `alarms` (the
    /// names of the thresholds passed) and `input_alarm`; a figure that cannot be computed (no
    /// events, no reference) is `null`.
    #[schema(value_type = Vec<Object>)]
    pub windows: Vec<serde_json::Value>,
    /// The window still counting, with its figures so far (`complete: false`).
    #[schema(value_type = Option<Object>)]
    pub current: Option<serde_json::Value>,
    /// Complete windows that passed any threshold, and an input threshold, since the start.
    pub windows_alarmed: u64,
    pub input_alarms: u64,
}

/// Drift and health, window by window: event volume and type mix, the shares of events on new items
/// and from new users, PSI and Jensen–Shannon divergence of item popularity against the champion's
/// training data, coverage, exposure Gini, fallback share and score quantiles of the served lists,
/// and which `[drift]` thresholds each window passed.
#[utoipa::path(
    get, path = "/v1/drift", tag = "operations",
    responses((status = 200, description = "The recent windows", body = DriftReport))
)]
pub async fn drift(State(state): State<AppState>) -> Result<Json<DriftReport>, ApiError> {
    let status = state.run(|e| Ok(e.drift_status())).await?;
    Ok(Json(DriftReport {
        enabled: status.enabled,
        window_secs: status.window_secs,
        reference_version: status.reference_version,
        thresholds: json(&status.thresholds),
        windows: status.windows.iter().map(json).collect(),
        current: status.current.as_ref().map(json),
        windows_alarmed: status.windows_alarmed,
        input_alarms: status.input_alarms,
    }))
}

/// A value as JSON (these plain structs always serialise; `null` if one did not).
fn json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}
