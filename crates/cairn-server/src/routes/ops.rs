//! Operations: training, model status, health, readiness, metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use cairn_core::now_unix;
use cairn_engine::{EngineError, IoKind, WriteFailure};

use crate::dto::{Health, ModelStatus, TrainResult};
use crate::error::{ApiError, ErrorBody};
use crate::metrics::EngineGauges;
use crate::state::AppState;

/// Train now on all events and swap the new model in; requests keep being served meanwhile.
/// Not subject to the request timeout.
#[utoipa::path(
    post, path = "/v1/train", tag = "model",
    responses(
        (status = 200, description = "Trained; `status` says whether the promotion gate passed it and `serving` whether it serves now", body = TrainResult),
        (status = 409, description = "A training is already running (`training_busy`), or another replica over the same PostgreSQL store holds the trainer lease (`trainer_elsewhere`)", body = ErrorBody),
    )
)]
pub async fn train(
    State(state): State<AppState>,
    Extension(caller): Extension<crate::auth::Caller>,
) -> Result<Json<TrainResult>, ApiError> {
    let who = caller.who();
    Ok(Json(
        state
            .run(move |e| e.train_by(&who, &|_: &str, _: usize, _: usize| {}))
            .await?
            .into(),
    ))
}

/// The model being served.
#[utoipa::path(
    get, path = "/v1/model", tag = "model",
    responses(
        (status = 200, description = "The served model", body = ModelStatus),
        (status = 404, description = "No model trained yet (`model_not_found`)", body = ErrorBody),
    )
)]
pub async fn model(State(state): State<AppState>) -> Result<Json<ModelStatus>, ApiError> {
    match state.engine.model_info() {
        Some(info) => Ok(Json(ModelStatus::new(info, now_unix()))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "model_not_found",
            "no model has been trained yet; POST /v1/train",
        )),
    }
}

/// Liveness: the process is up and answering.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Up", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        model_version: None,
    })
}

/// Readiness: 200 when a model is loaded, or when there are no events to train on yet (empty lists
/// are then the right answer); 503 `not_ready` while events wait for a first model, with the first
/// training's progress in the message (`training the first model: 40% done (als 7/15), ...`).
/// Until then recommendation lists are empty (200 with no items); `/healthz` answers from the start.
/// While the disk refuses the store's writes, 503 `storage_full` (no space) or
/// `storage_unavailable` (another I/O failure), saying since when; reads are still served, and a
/// test write every `server.storage_retry_secs` clears it once the disk takes writes again.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready; the message says why: the first training and how far it is (`not_ready`), or a disk that refuses writes (`storage_full`, `storage_unavailable`)", body = ErrorBody),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    if let Some(failure) = state.engine.store_write_failure() {
        return Err(storage_not_ready(&failure, now_unix()));
    }
    if let Some(info) = state.engine.model_info() {
        return Ok(Json(Health {
            status: "ready".into(),
            model_version: Some(info.version),
        }));
    }
    let stats = state.run(|e| e.stats()).await?;
    if stats.events == 0 {
        return Ok(Json(Health {
            status: "ready".into(),
            model_version: None,
        }));
    }
    let message = match state.engine.training_status() {
        Some(t) => format!(
            "training the first model: {}% done ({}), started {}s ago on {} events; recommendations are empty until it serves",
            t.percent,
            t.stage,
            (now_unix() - t.started_at).max(0),
            stats.events
        ),
        None => format!(
            "{} events are stored but no model is trained yet; wait for the first training or POST /v1/train",
            stats.events
        ),
    };
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        message,
    ))
}

/// `/readyz`'s answer while the store refuses writes.
fn storage_not_ready(failure: &WriteFailure, now: i64) -> ApiError {
    let (code, what) = match failure.kind {
        IoKind::NoSpace => (
            "storage_full",
            "the disk holding the data directory is full; free space on it",
        ),
        IoKind::Failed => (
            "storage_unavailable",
            "the disk holding the data directory fails writes; check it and the system log",
        ),
    };
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        code,
        format!(
            "writes are refused since {}s ago ({}): {what}. Reads are served meanwhile; writes \
             resume by themselves once a test write works",
            (now - failure.since).max(0),
            failure.message
        ),
    )
}

/// Prometheus metrics: `cairn_http_requests_total` and `cairn_http_request_duration_seconds` by
/// method, route and status, and engine gauges (`cairn_items`, `cairn_events`,
/// `cairn_model_age_seconds`, `cairn_store_writable` (0 while the disk refuses writes), ...), and
/// the model registry's `cairn_model_versions_refused_total`
/// and `cairn_model_champion{version}` (1 for the champion) with `cairn_model_champion_created_seconds`;
/// the newest complete drift window's figures (`cairn_drift_popularity_psi`, `cairn_drift_alarm`,
/// `cairn_drift_alarm_fired{threshold}`, ..., see `GET /v1/drift`).
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let mut gauges = state.run(engine_gauges).await?;
    let stats = state.rate_limiter.stats();
    gauges.rate_limit_buckets = stats.buckets as u64;
    gauges.rate_limit_bytes = stats.bytes as u64;
    let mut text = state.metrics.render(&gauges);
    text.push_str(&crate::routes::shadow::prometheus(
        &state.engine.shadow_report(),
    ));
    if let Some(stream) = &state.stream {
        text.push_str(&stream.prometheus());
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

fn engine_gauges(engine: &cairn_engine::Engine) -> Result<EngineGauges, EngineError> {
    let stats = engine.stats()?;
    let model = engine.model_info();
    let versions = engine.model_versions().unwrap_or_default();
    let cursor = engine.cursor_cache_stats();
    Ok(EngineGauges {
        items: stats.items,
        users: stats.users,
        events: stats.events,
        last_seq: stats.last_seq,
        model_loaded: model.is_some(),
        model_age_seconds: model
            .as_ref()
            .map_or(0.0, |m| (now_unix() - m.trained_at).max(0) as f64),
        store_writable: engine.store_write_failure().is_none(),
        events_expired: engine.events_expired(),
        model_interactions: model.as_ref().map_or(0, |m| m.interactions as u64),
        refused_versions: versions
            .iter()
            .filter(|v| v.meta.status == cairn_engine::registry::VersionStatus::Refused)
            .count() as u64,
        champion: versions
            .iter()
            .find(|v| v.champion)
            .map(|v| (v.meta.version.clone(), v.meta.created_at)),
        trainings_abandoned: engine.trainings_abandoned(),
        cursor_lists: cursor.lists as u64,
        cursor_bytes: cursor.bytes as u64,
        store_cache_limit_bytes: engine.config().store.cache_bytes as u64,
        resident_bytes: cairn_engine::memory::resident_bytes(),
        live_heap_bytes: cairn_engine::memory::live_heap_bytes(),
        drift: engine.drift_last_window(),
        ..Default::default()
    })
}

/// This API's OpenAPI 3.1 document, generated from the handlers.
#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI document", content_type = "application/json"))
)]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi())
}
