//! `/v1/models`: the model registry. Versions with their metadata and gate verdicts, the
//! `champion` (serves) and `challenger` aliases, and the append-only history that moves them.
//! Reading needs a `read` key; promoting and rolling back an `admin` key, whose name and id the
//! history records.

use axum::extract::State;
use axum::{Extension, Json};
use cairn_engine::registry::{Alias, HistoryEntry, VersionStatus, VersionView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

/// One model version.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelVersion {
    pub version: String,
    /// `passed` (the gate let it serve), `refused` (it never serves) or `adopted` (trained
    /// before the registry existed).
    pub status: String,
    /// `champion`, `challenger`: the aliases it holds.
    pub aliases: Vec<String>,
    /// Kept by pruning whatever its aliases.
    pub pinned: bool,
    /// Its model file is still kept (pruned versions keep only their record).
    pub artifact_present: bool,
    /// Unix seconds when its training started.
    pub created_at: i64,
    /// The failed gate checks of a refused version.
    pub refused_reasons: Vec<String>,
    /// Everything recorded: data snapshot (last sequence number, counts, event-type mix,
    /// digest), held-out slice, model configuration, code version, fit time, artifact size,
    /// offline metrics and every gate check.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
}

impl From<VersionView> for ModelVersion {
    fn from(v: VersionView) -> Self {
        let mut aliases = Vec::new();
        if v.champion {
            aliases.push("champion".to_string());
        }
        if v.challenger {
            aliases.push("challenger".to_string());
        }
        ModelVersion {
            version: v.meta.version.clone(),
            status: match v.meta.status {
                VersionStatus::Passed => "passed",
                VersionStatus::Refused => "refused",
                VersionStatus::Adopted => "adopted",
            }
            .into(),
            aliases,
            pinned: v.pinned,
            artifact_present: v.artifact_present,
            created_at: v.meta.created_at,
            refused_reasons: match (&v.meta.status, &v.meta.gate) {
                (VersionStatus::Refused, Some(g)) => g.reasons(),
                _ => Vec::new(),
            },
            metadata: serde_json::to_value(&v.meta).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelVersionList {
    /// The version that serves; null before the first version passed the gate.
    pub champion: Option<String>,
    pub challenger: Option<String>,
    /// The version this process serves now: the champion, or for a moment after another process
    /// (a replica sharing the models folder) promoted one, the previous champion until this one
    /// looks again (`models.watch_interval_ms`).
    pub serving: Option<String>,
    /// Whether this process holds the trainer lease (always, on the embedded store; over
    /// PostgreSQL, one replica at a time), as of its last look.
    pub trainer: bool,
    /// Oldest first.
    pub versions: Vec<ModelVersion>,
}

/// One move of an alias.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelHistoryEntry {
    /// 1 for the first entry.
    pub seq: u64,
    /// Unix seconds.
    pub at: i64,
    /// The API key (`name (id)`), `cli`, or `training (...)` for a promotion after a training.
    pub who: String,
    /// `promote`, `rollback`, `challenger`, `pin` or `unpin`.
    pub action: String,
    /// The version the alias names after the move.
    pub version: String,
    /// The version it named before.
    pub previous: Option<String>,
    pub reason: String,
}

impl From<HistoryEntry> for ModelHistoryEntry {
    fn from(e: HistoryEntry) -> Self {
        ModelHistoryEntry {
            seq: e.seq,
            at: e.at,
            who: e.who,
            action: serde_json::to_value(e.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            version: e.version,
            previous: e.previous,
            reason: e.reason,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelHistory {
    /// Oldest first.
    pub entries: Vec<ModelHistoryEntry>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteRequest {
    /// Why (recorded in the history); 1 to 500 characters.
    pub reason: String,
    /// `champion` (default: it serves from the response on) or `challenger`.
    pub alias: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// Why (recorded in the history); 1 to 500 characters.
    pub reason: String,
}

fn check_reason(reason: &str) -> Result<(), ApiError> {
    let n = reason.trim().chars().count();
    if n == 0 || n > 500 {
        return Err(ApiError::invalid(
            "reason",
            "say why in 1 to 500 characters; it is recorded in the model history",
        ));
    }
    Ok(())
}

/// Every model version with its aliases and gate verdict, oldest first.
#[utoipa::path(
    get, path = "/v1/models", tag = "model",
    responses((status = 200, description = "The versions", body = ModelVersionList))
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<ModelVersionList>, ApiError> {
    let versions = state.run(|e| e.model_versions()).await?;
    let versions: Vec<ModelVersion> = versions.into_iter().map(ModelVersion::from).collect();
    let holding = |alias: &str| {
        versions
            .iter()
            .find(|v| v.aliases.iter().any(|a| a == alias))
            .map(|v| v.version.clone())
    };
    Ok(Json(ModelVersionList {
        champion: holding("champion"),
        challenger: holding("challenger"),
        serving: state.engine.model_info().map(|m| m.version),
        trainer: state.engine.holds_trainer_lease(),
        versions,
    }))
}

/// One model version with everything recorded about it.
#[utoipa::path(
    get, path = "/v1/models/{version}", tag = "model",
    params(("version" = String, Path, description = "A version from GET /v1/models")),
    responses(
        (status = 200, description = "The version", body = ModelVersion),
        (status = 404, description = "No such version (`model_version_not_found`)", body = ErrorBody),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    ApiPath(version): ApiPath<String>,
) -> Result<Json<ModelVersion>, ApiError> {
    let view = state.run(move |e| e.model_version(&version)).await?;
    Ok(Json(view.into()))
}

/// The alias history (promotions, rollbacks, pins), oldest first.
#[utoipa::path(
    get, path = "/v1/models/history", tag = "model",
    responses((status = 200, description = "The history", body = ModelHistory))
)]
pub async fn history(State(state): State<AppState>) -> Result<Json<ModelHistory>, ApiError> {
    let entries = state.run(|e| e.model_history()).await?;
    Ok(Json(ModelHistory {
        entries: entries.into_iter().map(Into::into).collect(),
    }))
}

/// Make a version the champion (it serves from this response on) or the challenger. A version
/// the gate refused, or whose file was pruned, cannot be promoted.
#[utoipa::path(
    post, path = "/v1/models/{version}/promote", tag = "model",
    params(("version" = String, Path, description = "A version from GET /v1/models")),
    request_body = PromoteRequest,
    responses(
        (status = 200, description = "The history entry written", body = ModelHistoryEntry),
        (status = 400, description = "No reason, or an unknown alias (`invalid_argument`)", body = ErrorBody),
        (status = 404, description = "No such version (`model_version_not_found`)", body = ErrorBody),
        (status = 409, description = "Refused by the gate, pruned, or already there (`model_conflict`)", body = ErrorBody),
    )
)]
pub async fn promote(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(version): ApiPath<String>,
    ApiJson(body): ApiJson<PromoteRequest>,
) -> Result<Json<ModelHistoryEntry>, ApiError> {
    check_reason(&body.reason)?;
    let alias = match body.alias.as_deref() {
        None | Some("champion") => Alias::Champion,
        Some("challenger") => Alias::Challenger,
        Some(other) => {
            return Err(ApiError::invalid(
                "alias",
                format!("`{other}` is not an alias; use `champion` or `challenger`"),
            ))
        }
    };
    let who = caller.who();
    let entry = state
        .run(move |e| e.promote_model(&version, alias, &who, body.reason.trim()))
        .await?;
    Ok(Json(entry.into()))
}

/// Move the champion back to the one promoted before it (it serves from this response on).
#[utoipa::path(
    post, path = "/v1/models/rollback", tag = "model",
    request_body = RollbackRequest,
    responses(
        (status = 200, description = "The history entry written", body = ModelHistoryEntry),
        (status = 400, description = "No reason (`invalid_argument`)", body = ErrorBody),
        (status = 409, description = "No earlier champion to go back to (`model_conflict`)", body = ErrorBody),
    )
)]
pub async fn rollback(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<RollbackRequest>,
) -> Result<Json<ModelHistoryEntry>, ApiError> {
    check_reason(&body.reason)?;
    let who = caller.who();
    let entry = state
        .run(move |e| e.rollback_model(&who, body.reason.trim()))
        .await?;
    Ok(Json(entry.into()))
}
