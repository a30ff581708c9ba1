//! Handlers, one module per resource. Each handler is documented with `#[utoipa::path]`; the OpenAPI
//! document in [`crate::openapi`] lists them all.

pub mod events;
pub mod items;
pub mod ops;
pub mod recommend;
pub mod users;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ApiError;

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
