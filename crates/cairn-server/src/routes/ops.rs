//! Operations: training, model status, health, readiness, metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use cairn_core::now_unix;
use cairn_engine::EngineError;

use crate::dto::{Health, ModelStatus, TrainResult};
use crate::error::{ApiError, ErrorBody};
use crate::metrics::EngineGauges;
use crate::state::AppState;

/// Train now on all events and swap the new model in; requests keep being served meanwhile.
/// Not subject to the request timeout.
#[utoipa::path(
    post, path = "/v1/train", tag = "model",
    responses(
        (status = 200, description = "Trained; the new model is being served", body = TrainResult),
        (status = 409, description = "A training is already running (`training_busy`)", body = ErrorBody),
    )
)]
pub async fn train(State(state): State<AppState>) -> Result<Json<TrainResult>, ApiError> {
    Ok(Json(state.run(|e| e.train()).await?.into()))
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
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready; the message says why and how far the first training is (`not_ready`)", body = ErrorBody),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
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

/// Prometheus metrics: `cairn_http_requests_total` and `cairn_http_request_duration_seconds` by
/// method, route and status, and engine gauges (`cairn_items`, `cairn_events`,
/// `cairn_model_age_seconds`, ...).
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let mut gauges = state.run(engine_gauges).await?;
    if let Some(limiter) = state.rate_limiter.as_deref() {
        let stats = limiter.stats();
        gauges.rate_limit_buckets = stats.buckets as u64;
        gauges.rate_limit_bytes = stats.bytes as u64;
    }
    let text = state.metrics.render(&gauges);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

fn engine_gauges(engine: &cairn_engine::Engine) -> Result<EngineGauges, EngineError> {
    let stats = engine.stats()?;
    let model = engine.model_info();
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
        model_interactions: model.map_or(0, |m| m.interactions as u64),
        cursor_lists: cursor.lists as u64,
        cursor_bytes: cursor.bytes as u64,
        store_cache_limit_bytes: engine.config().store.cache_bytes as u64,
        resident_bytes: cairn_engine::memory::resident_bytes(),
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
