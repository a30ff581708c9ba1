//! Handlers, one module per resource. Each handler is documented with `#[utoipa::path]`; the OpenAPI
//! document in [`crate::openapi`] lists them all.

pub mod access;
pub mod batch;
pub mod data;
pub mod drift;
pub mod events;
pub mod experiments;
pub mod items;
pub mod models;
pub mod ops;
pub mod recommend;
pub mod shadow;
pub mod users;

use axum::Json;
use cairn_core::Validate;
use cairn_engine::{Engine, EngineError};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::dto::Upserted;
use crate::error::ApiError;
use crate::state::AppState;

/// Builds a resource from a PUT body whose `id` may be omitted; when given it must equal the path's.
pub(crate) fn with_path_id<T: DeserializeOwned>(
    mut body: Map<String, Value>,
    id: &str,
) -> Result<T, ApiError> {
    match body.get("id") {
        None => {
            body.insert("id".to_string(), Value::String(id.to_string()));
        }
        Some(Value::String(given)) if given == id => {}
        Some(other) => {
            return Err(ApiError::invalid(
                "id",
                format!("is {other} but the path says \"{id}\"; omit `id` or make the two equal"),
            ))
        }
    }
    // Through axum's JSON reader again (not `serde_json::from_value`) so errors name the field path.
    let bytes = serde_json::to_vec(&Value::Object(body))
        .map_err(|e| ApiError::internal(format!("re-encoding the body failed: {e}")))?;
    match axum::Json::<T>::from_bytes(&bytes) {
        Ok(axum::Json(value)) => Ok(value),
        Err(rejection) => {
            let mut error = ApiError::from(rejection);
            // Positions refer to the re-encoded body, not to what the client sent.
            if let Some((text, _)) = error.message.rsplit_once(" at line ") {
                error.message = text.to_string();
            }
            Err(error)
        }
    }
}

pub(crate) fn validation(e: cairn_core::ValidationError) -> ApiError {
    ApiError::invalid(e.field, e.message)
}

/// A PUT of one resource (item or user): the body with the path's `id`, validated, stored by
/// `store` as a batch of one, and answered with what was stored.
pub(crate) async fn put_one<T>(
    state: &AppState,
    id: &str,
    body: Map<String, Value>,
    store: fn(&Engine, Vec<T>) -> Result<(), EngineError>,
) -> Result<Json<T>, ApiError>
where
    T: DeserializeOwned + Validate + Clone + Send + 'static,
{
    let one: T = with_path_id(body, id)?;
    one.validate().map_err(validation)?;
    let stored = one.clone();
    state.run(move |e| store(e, vec![one])).await?;
    Ok(Json(stored))
}

/// Records a bulk route's client error (a batch refused, its JSON unreadable) in the data
/// directory's log of rejected input, which the dashboard's data-quality page shows; then
/// answers as before.
pub(crate) async fn recorded<T>(
    state: &AppState,
    route: &'static str,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    if let Err(e) = &result {
        if e.status.is_client_error() {
            let entry = cairn_engine::rejects::Rejection::request(
                route,
                e.field.as_deref(),
                e.code,
                &e.message,
            );
            let engine = std::sync::Arc::clone(&state.engine);
            let _ = tokio::task::spawn_blocking(move || engine.record_rejections(&[entry])).await;
        }
    }
    result
}

/// A batch write (items or users), stored by `store` in one atomic write; answers how many.
pub(crate) async fn put_batch<T>(
    state: &AppState,
    batch: Vec<T>,
    store: fn(&Engine, Vec<T>) -> Result<(), EngineError>,
) -> Result<Json<Upserted>, ApiError>
where
    T: Send + 'static,
{
    let upserted = batch.len();
    state.run(move |e| store(e, batch)).await?;
    Ok(Json(Upserted { upserted }))
}

#[cfg(test)]
mod tests {
    use cairn_core::Item;
    use serde_json::json;

    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test bodies are objects"),
        }
    }

    #[test]
    fn path_id_fills_in_or_must_match() {
        let item: Item = with_path_id(body(json!({"title": "T"})), "a").unwrap();
        assert_eq!(item.id, "a");
        let item: Item = with_path_id(body(json!({"id": "a"})), "a").unwrap();
        assert_eq!(item.id, "a");
        let err = with_path_id::<Item>(body(json!({"id": "b"})), "a").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("id"));
        let err = with_path_id::<Item>(body(json!({"id": 5})), "a").unwrap_err();
        assert_eq!(err.code, "invalid_argument");
        let err = with_path_id::<Item>(body(json!({"colour": "red"})), "a").unwrap_err();
        assert!(err.message.contains("colour"), "{}", err.message);
        let err = with_path_id::<Item>(body(json!({"tags": [1]})), "a").unwrap_err();
        assert!(
            err.message.contains("tags[0]: invalid type"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("column"), "{}", err.message);
    }
}
