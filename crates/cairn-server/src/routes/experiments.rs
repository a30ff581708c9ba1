//! `/v1/experiments` and `/v1/impressions`: online A/B and interleaving experiments over the
//! recommendation routes, and the impressions that attribute clicks and conversions to them.
//! Creating, stopping and shipping need an `admin` key; reading an experiment and its results a
//! `read` key; posting impressions an `ingest` key (as events).

use axum::extract::State;
use axum::{Extension, Json};
use cairn_engine::experiments::{PositionCounts, Shipped, VariantResult};
use cairn_engine::{Experiment, ExperimentKind, ExperimentStatus, NewExperiment, VariantDef};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

/// A variant as created: a model version and/or a placement's configuration; what it leaves out
/// is the champion model and the experiment's placement.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantBody {
    /// Unique in the experiment: 1 to 64 letters, digits, `-`, `_`, `.`. The first variant is the
    /// control.
    pub name: String,
    /// Relative share of the experiment's users (default 1; ignored by interleaving).
    #[serde(default)]
    pub weight: Option<u32>,
    /// A model version from `GET /v1/models` (loaded into memory while the experiment runs).
    #[serde(default)]
    pub model_version: Option<String>,
    /// A configured placement whose pipeline configuration this variant serves.
    #[serde(default)]
    pub placement: Option<String>,
}

/// `POST /v1/experiments`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExperiment {
    /// 1 to 64 letters, digits, `-`, `_`, `.`; never reused.
    pub id: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `ab` (default) or `interleaving` (team draft between exactly two variants).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The placement whose recommendation requests the experiment takes (default:
    /// `serve.default_placement`).
    #[serde(default)]
    pub placement: Option<String>,
    pub variants: Vec<VariantBody>,
    /// Experiments of one namespace are mutually exclusive (no user is in two of them).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Share of all users in the experiment, in (0, 1] (default 1).
    #[serde(default)]
    pub traffic: Option<f64>,
    /// Users at which a decision is expected, for the always-valid intervals (default 10000).
    #[serde(default)]
    pub planned_users: Option<u64>,
    /// Salt of the assignment hash (default `experiment/<id>`).
    #[serde(default)]
    pub salt: Option<String>,
}

/// The namespace bucket range `[start, end)` of 10000 an experiment owns.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NamespaceRange {
    pub namespace: String,
    pub start: u32,
    pub end: u32,
}

/// A shipped variant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ShippedView {
    pub variant: String,
    /// Unix seconds.
    pub at: i64,
    pub by: String,
    pub reason: String,
    /// The model version promoted to champion through the registry.
    pub promoted_model: Option<String>,
    /// The placement whose configuration now serves the experiment's placement.
    pub default_placement: Option<String>,
}

/// One experiment.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExperimentView {
    pub id: String,
    pub description: String,
    /// `ab` or `interleaving`.
    #[serde(rename = "type")]
    pub kind: String,
    pub placement: String,
    pub variants: Vec<VariantBody>,
    pub namespace: Option<String>,
    pub traffic: f64,
    pub namespace_range: NamespaceRange,
    pub salt: String,
    pub planned_users: u64,
    /// `running`, `stopped` or `shipped`.
    pub status: String,
    /// Unix seconds.
    pub created_at: i64,
    pub created_by: String,
    pub stopped_at: Option<i64>,
    pub shipped: Option<ShippedView>,
    /// Why a running experiment does not serve (a variant's model could not be loaded at start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

fn kind_name(k: ExperimentKind) -> &'static str {
    match k {
        ExperimentKind::Ab => "ab",
        ExperimentKind::Interleaving => "interleaving",
    }
}

fn view(e: Experiment, problem: Option<String>) -> ExperimentView {
    ExperimentView {
        kind: kind_name(e.kind).into(),
        status: match e.status {
            ExperimentStatus::Running => "running",
            ExperimentStatus::Stopped => "stopped",
            ExperimentStatus::Shipped => "shipped",
        }
        .into(),
        namespace_range: NamespaceRange {
            namespace: e.slot.namespace,
            start: e.slot.start,
            end: e.slot.end,
        },
        variants: e
            .variants
            .into_iter()
            .map(|v| VariantBody {
                name: v.name,
                weight: Some(v.weight),
                model_version: v.model_version,
                placement: v.placement,
            })
            .collect(),
        shipped: e.shipped.map(|s: Shipped| ShippedView {
            variant: s.variant,
            at: s.at,
            by: s.by,
            reason: s.reason,
            promoted_model: s.promoted_model,
            default_placement: s.default_placement,
        }),
        id: e.id,
        description: e.description,
        placement: e.placement,
        namespace: e.namespace,
        traffic: e.traffic,
        salt: e.salt,
        planned_users: e.planned_users,
        created_at: e.created_at,
        created_by: e.created_by,
        stopped_at: e.stopped_at,
        problem,
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExperimentList {
    /// In creation order.
    pub experiments: Vec<ExperimentView>,
}

/// Counts at one 1-based position.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PositionView {
    pub position: u32,
    pub impressions: u64,
    pub clicks: u64,
    pub conversions: u64,
}

/// A variant's totals (interleaving: of the items its team picked).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VariantResultView {
    pub name: String,
    pub users: u64,
    pub impressions: u64,
    pub clicks: u64,
    pub conversions: u64,
    /// clicks / impressions.
    pub ctr: f64,
    /// conversions / impressions.
    pub conversion_rate: f64,
    pub clicks_per_user: f64,
    pub conversions_per_user: f64,
    pub positions: Vec<PositionView>,
}

impl From<VariantResult> for VariantResultView {
    fn from(v: VariantResult) -> Self {
        VariantResultView {
            name: v.name,
            users: v.users,
            impressions: v.impressions,
            clicks: v.clicks,
            conversions: v.conversions,
            ctr: v.ctr,
            conversion_rate: v.conversion_rate,
            clicks_per_user: v.clicks_per_user,
            conversions_per_user: v.conversions_per_user,
            positions: v
                .positions
                .into_iter()
                .map(|p: PositionCounts| PositionView {
                    position: p.position,
                    impressions: p.impressions,
                    clicks: p.clicks,
                    conversions: p.conversions,
                })
                .collect(),
        }
    }
}

/// `GET /v1/experiments/{id}/results`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExperimentResultsView {
    pub experiment: ExperimentView,
    /// Users with an acknowledged impression or an attributed click or conversion.
    pub users: u64,
    /// Users with events before the experiment started; CUPED is used when there are any.
    pub users_with_pre_period: u64,
    pub variants: Vec<VariantResultView>,
    /// A/B: `variants` (totals), `comparisons` (each treatment against the control per metric
    /// `ctr`, `clicks_per_user`, `conversions_per_user`: `difference`, `interval` (fixed horizon),
    /// `always_valid` interval and `always_valid_p`, `holm_p`, `significant`, `cuped`), `srm`
    /// (`observed`, `expected`, `p_value`, `flagged` at p < 0.001) and `decision` with `reason`.
    #[schema(value_type = Option<Object>)]
    pub analysis: Option<serde_json::Value>,
    /// A/B: why there is no analysis (e.g. a variant has no users yet).
    pub analysis_error: Option<String>,
    /// Interleaving: `users`, `prefer_treatment`, `prefer_control`, `ties`, `mean_preference`
    /// (in [-1, 1], positive favours the second variant), `std_error`, `interval` (95%),
    /// `p_value`, `sign_test_p`.
    #[schema(value_type = Option<Object>)]
    pub preference: Option<serde_json::Value>,
}

/// `POST /v1/experiments/{id}/stop`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopExperiment {
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /v1/experiments/{id}/ship`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipExperiment {
    /// The variant to ship.
    pub variant: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// One shown item.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShownItem {
    pub item_id: String,
    /// 1-based position on the page.
    pub position: u32,
}

/// `POST /v1/impressions`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Impressions {
    /// The `recommendation_id` of the list shown.
    pub recommendation_id: String,
    /// The user the list was shown to; when given it must be the list's.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The items shown, each with its position (items of the list's first page).
    pub items: Vec<ShownItem>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImpressionsRecorded {
    /// Items newly recorded as shown (durably: the write was fsynced).
    pub recorded: usize,
    /// Items of this list recorded before (a retry), not counted again.
    pub duplicates: usize,
}

fn new_experiment(body: CreateExperiment) -> Result<NewExperiment, ApiError> {
    let kind = match body.kind.as_deref() {
        None | Some("ab") => ExperimentKind::Ab,
        Some("interleaving") => ExperimentKind::Interleaving,
        Some(other) => {
            return Err(ApiError::invalid(
                "type",
                format!("`{other}` is not an experiment type; use `ab` or `interleaving`"),
            ))
        }
    };
    Ok(NewExperiment {
        id: body.id,
        description: body.description.unwrap_or_default(),
        kind,
        placement: body.placement.filter(|p| !p.is_empty()),
        variants: body
            .variants
            .into_iter()
            .map(|v| VariantDef {
                name: v.name,
                weight: v.weight.unwrap_or(1),
                model_version: v.model_version.filter(|m| !m.is_empty()),
                placement: v.placement.filter(|p| !p.is_empty()),
            })
            .collect(),
        namespace: body.namespace.filter(|n| !n.is_empty()),
        traffic: body.traffic.unwrap_or(1.0),
        planned_users: body.planned_users.unwrap_or(10_000),
        salt: body.salt.filter(|s| !s.is_empty()),
    })
}

/// Create and start an experiment on a placement's recommendation requests. Users are assigned
/// by a salted SHA-256 hash of their id (stable across restarts and replicas); the definition is
/// written to the data directory before this answers.
#[utoipa::path(
    post, path = "/v1/experiments", tag = "experiments",
    request_body = CreateExperiment,
    responses(
        (status = 200, description = "Created and running", body = ExperimentView),
        (status = 400, description = "A bad definition (`invalid_argument`, naming the field)", body = ErrorBody),
        (status = 404, description = "A variant's model version does not exist (`model_version_not_found`)", body = ErrorBody),
        (status = 409, description = "The id is taken, the namespace is full, another experiment runs on the placement outside the namespace (`experiment_conflict`), or the version cannot serve (`model_conflict`)", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<CreateExperiment>,
) -> Result<Json<ExperimentView>, ApiError> {
    let new = new_experiment(body)?;
    let who = caller.who();
    let e = state.run(move |e| e.create_experiment(new, &who)).await?;
    Ok(Json(view(e, None)))
}

/// Every experiment, running or not, in creation order.
#[utoipa::path(
    get, path = "/v1/experiments", operation_id = "list_experiments", tag = "experiments",
    responses((status = 200, description = "The experiments", body = ExperimentList))
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<ExperimentList>, ApiError> {
    let engine = &state.engine;
    let experiments = engine
        .experiments()
        .into_iter()
        .map(|e| {
            let problem = engine.experiment_problem(&e.id);
            view(e, problem)
        })
        .collect();
    Ok(Json(ExperimentList { experiments }))
}

/// One experiment's definition and state.
#[utoipa::path(
    get, path = "/v1/experiments/{id}", operation_id = "show_experiment", tag = "experiments",
    params(("id" = String, Path, description = "Experiment id")),
    responses(
        (status = 200, description = "The experiment", body = ExperimentView),
        (status = 404, description = "No such experiment (`experiment_not_found`)", body = ErrorBody),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ExperimentView>, ApiError> {
    let e = state.engine.experiment(&id)?;
    let problem = state.engine.experiment_problem(&id);
    Ok(Json(view(e, problem)))
}

/// Counts per variant and position, and the analysis: for A/B the differences to the control
/// with always-valid intervals (safe to look at every day), Holm across metrics, CUPED where
/// users had earlier activity, the sample-ratio-mismatch check; for interleaving the per-user
/// preference with its interval.
#[utoipa::path(
    get, path = "/v1/experiments/{id}/results", tag = "experiments",
    params(("id" = String, Path, description = "Experiment id")),
    responses(
        (status = 200, description = "The results so far", body = ExperimentResultsView),
        (status = 404, description = "No such experiment (`experiment_not_found`)", body = ErrorBody),
    )
)]
pub async fn results(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ExperimentResultsView>, ApiError> {
    let (e, problem, r) = state
        .run(move |e| {
            let r = e.experiment_results(&id)?;
            Ok((e.experiment(&id)?, e.experiment_problem(&id), r))
        })
        .await?;
    Ok(Json(ExperimentResultsView {
        experiment: view(e, problem),
        users: r.users,
        users_with_pre_period: r.users_with_pre_period,
        variants: r.variants.into_iter().map(Into::into).collect(),
        analysis: r.analysis.and_then(|a| serde_json::to_value(a).ok()),
        analysis_error: r.analysis_error,
        preference: r.preference.and_then(|p| serde_json::to_value(p).ok()),
    }))
}

/// Stop an experiment: its users get the default lists again; its results stay readable.
#[utoipa::path(
    post, path = "/v1/experiments/{id}/stop", tag = "experiments",
    params(("id" = String, Path, description = "Experiment id")),
    request_body = StopExperiment,
    responses(
        (status = 200, description = "Stopped", body = ExperimentView),
        (status = 404, description = "No such experiment (`experiment_not_found`)", body = ErrorBody),
        (status = 409, description = "Stopped or shipped already (`experiment_conflict`)", body = ErrorBody),
    )
)]
pub async fn stop(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<StopExperiment>,
) -> Result<Json<ExperimentView>, ApiError> {
    let reason = body.reason.unwrap_or_default();
    let who = caller.who();
    let e = state
        .run(move |e| e.stop_experiment(&id, &who, &reason))
        .await?;
    Ok(Json(view(e, None)))
}

/// Ship a variant: its model version becomes the champion through the registry (recorded in the
/// alias history), its placement's configuration serves the experiment's placement from now on;
/// the experiment stops, and the ship is recorded.
#[utoipa::path(
    post, path = "/v1/experiments/{id}/ship", tag = "experiments",
    params(("id" = String, Path, description = "Experiment id")),
    request_body = ShipExperiment,
    responses(
        (status = 200, description = "Shipped", body = ExperimentView),
        (status = 400, description = "No such variant (`invalid_argument`)", body = ErrorBody),
        (status = 404, description = "No such experiment (`experiment_not_found`)", body = ErrorBody),
        (status = 409, description = "Shipped already (`experiment_conflict`), or the model cannot be promoted (`model_conflict`)", body = ErrorBody),
    )
)]
pub async fn ship(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ShipExperiment>,
) -> Result<Json<ExperimentView>, ApiError> {
    let who = caller.who();
    let reason = body.reason.unwrap_or_default();
    let e = state
        .run(move |e| e.ship_experiment(&id, &body.variant, &who, reason.trim()))
        .await?;
    Ok(Json(view(e, None)))
}

/// Record which items of a recommendation list were shown, at which positions. Each (list,
/// item) counts once, so a retry is safe; the record is fsynced before the answer. Clicks and
/// conversions (`POST /v1/events`) that carry the list's `recommendation_id`, or that follow an
/// impression of their item to their user within `experiments.attribution_window_secs`, count
/// for the list's experiment, variant, placement and position.
#[utoipa::path(
    post, path = "/v1/impressions", tag = "events",
    request_body = Impressions,
    responses(
        (status = 200, description = "Recorded", body = ImpressionsRecorded),
        (status = 400, description = "An item not in the list's first page, a position of 0, no items, or another user (`invalid_argument`)", body = ErrorBody),
        (status = 404, description = "No list with this id is known (never served, or served before a restart or before `experiments.recent_lists` newer lists) (`recommendation_not_found`)", body = ErrorBody),
    )
)]
pub async fn impressions(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Impressions>,
) -> Result<Json<ImpressionsRecorded>, ApiError> {
    let shown: Vec<(String, u32)> = body
        .items
        .into_iter()
        .map(|s| (s.item_id, s.position))
        .collect();
    let outcome = state
        .run(move |e| {
            e.record_impressions(&body.recommendation_id, body.user_id.as_deref(), &shown)
        })
        .await?;
    Ok(Json(ImpressionsRecorded {
        recorded: outcome.recorded,
        duplicates: outcome.duplicates,
    }))
}
