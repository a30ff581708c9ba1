//! The one error shape of the API: `{"error":{"code":"...","message":"...","field":"..."}}`.
//!
//! Every 4xx/5xx the server sends goes through [`ApiError`], so clients can branch on `code` (stable)
//! and show `message` (says what to fix). Engine errors, extractor rejections and panics all map here.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_engine::EngineError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(examples(json!({"error": {
    "code": "invalid_argument",
    "message": "events[1].item_id: item `x` does not exist; create it before posting events about it",
    "field": "events[1].item_id"
}})))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_argument`, `item_not_found`, `malformed_json`.
    pub code: String,
    /// What went wrong and how to fix it.
    pub message: String,
    /// The offending field (dotted path such as `events[3].item_id`), when one is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_argument",
            message: format!("{field}: {message}"),
            field: Some(field),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The generic error for a status produced outside our handlers (e.g. by a framework layer).
    pub fn for_status(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => ("route_not_found", "no such route; see GET /openapi.json"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                "this route does not accept that method; see GET /openapi.json",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (
                "payload_too_large",
                "the request body is larger than the server accepts; send smaller batches",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ),
            StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => (
                "unavailable",
                "the server could not answer in time; retry later",
            ),
            s if s.is_client_error() => ("bad_request", "the request was rejected"),
            _ => ("internal", "internal server error"),
        };
        Self::new(status, code, message)
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
                field: self.field.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        (self.status, Json(self.body())).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        if let EngineError::Invalid(v) = &e {
            return ApiError::invalid(v.field.clone(), v.message.clone());
        }
        if let EngineError::InvalidExpression { field, message }
        | EngineError::UnknownName { field, message, .. } = &e
        {
            // `invalid_expression`, `unknown_category`, `unknown_property`.
            let mut err = ApiError::invalid(field.clone(), message.clone());
            err.code = e.code();
            return err;
        }
        // By code rather than variant: the store error type is not part of the engine's public API.
        let status = match e.code() {
            "item_not_found"
            | "user_not_found"
            | "key_not_found"
            | "model_version_not_found"
            | "experiment_not_found"
            | "recommendation_not_found"
            | "not_found" => StatusCode::NOT_FOUND,
            "unprocessable" => StatusCode::UNPROCESSABLE_ENTITY,
            "training_busy" | "trainer_elsewhere" | "model_conflict" | "experiment_conflict" => {
                StatusCode::CONFLICT
            }
            "training_timeout" => StatusCode::SERVICE_UNAVAILABLE,
            "cursor_expired" => StatusCode::GONE,
            // The request is fine, but this app may not store more: retrying will not help.
            "quota_exceeded" => StatusCode::FORBIDDEN,
            "store_in_use" | "storage_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            // The disk under the store is full: the request was fine, and the same request
            // succeeds once space is freed.
            "storage_full" => StatusCode::INSUFFICIENT_STORAGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &e {
            EngineError::NotFound {
                kind: "model version",
                id,
            } => format!("model version `{id}` does not exist; list them with GET /v1/models"),
            EngineError::NotFound { kind: "key", id } => {
                format!("key `{id}` does not exist; list the keys with GET /v1/keys")
            }
            EngineError::NotFound { kind, id } => {
                format!("{kind} `{id}` does not exist; create it with PUT /v1/{kind}s/{{id}}")
            }
            EngineError::TrainingBusy => {
                "training is already running; retry when it finishes (see GET /v1/model)"
                    .to_string()
            }
            other => other.to_string(),
        };
        ApiError::new(status, e.code(), message)
    }
}

/// The inner error's text, without axum's generic prefix ("Failed to deserialize ...").
fn inner_text(e: &dyn std::error::Error, fallback: String) -> String {
    e.source().map(|s| s.to_string()).unwrap_or(fallback)
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match &r {
            JsonRejection::JsonSyntaxError(e) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!(
                    "the body is not valid JSON: {}",
                    inner_text(e, e.body_text())
                ),
            ),
            // Well-formed JSON of the wrong shape: unknown or missing fields, wrong types, numbers out
            // of range. serde names the field in the text.
            JsonRejection::JsonDataError(e) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_argument",
                format!(
                    "the body does not match the schema: {}",
                    inner_text(e, e.body_text())
                ),
            ),
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            }
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE)
            }
            other => ApiError::new(
                other.status(),
                if other.status().is_client_error() {
                    "bad_request"
                } else {
                    "internal"
                },
                other.body_text(),
            ),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        let text = match &r {
            QueryRejection::FailedToDeserializeQueryString(e) => inner_text(e, e.body_text()),
            other => other.body_text(),
        };
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            format!("the query string is invalid: {text}"),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        let status = r.status();
        if status.is_server_error() {
            return ApiError::internal(r.body_text());
        }
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            format!("the path is invalid: {}", r.body_text()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_keep_their_codes() {
        let e = ApiError::from(EngineError::invalid("k", "0 is out of range"));
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_REQUEST, "invalid_argument")
        );
        assert_eq!(e.field.as_deref(), Some("k"));
        let e = ApiError::from(EngineError::NotFound {
            kind: "item",
            id: "x".into(),
        });
        assert_eq!(
            (e.status, e.code),
            (StatusCode::NOT_FOUND, "item_not_found")
        );
        assert!(e.message.contains("`x`"));
        let full = ApiError::from(EngineError::Store(cairn_engine::StoreError::Io {
            kind: cairn_engine::IoKind::NoSpace,
            message: "No space left on device (os error 28)".into(),
        }));
        assert_eq!(
            (full.status, full.code),
            (StatusCode::INSUFFICIENT_STORAGE, "storage_full")
        );
        assert!(full.message.contains("free space"), "{}", full.message);
        let failed = ApiError::from(EngineError::Store(cairn_engine::StoreError::Io {
            kind: cairn_engine::IoKind::Failed,
            message: "Input/output error (os error 5)".into(),
        }));
        assert_eq!(
            (failed.status, failed.code),
            (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable")
        );
        let e = ApiError::from(EngineError::TrainingBusy);
        assert_eq!((e.status, e.code), (StatusCode::CONFLICT, "training_busy"));
        let e = ApiError::from(EngineError::TrainerElsewhere);
        assert_eq!(
            (e.status, e.code),
            (StatusCode::CONFLICT, "trainer_elsewhere")
        );
        assert!(e.message.contains("trainer lease"), "{}", e.message);
        for (kind, code) in [
            (cairn_engine::NameKind::Category, "unknown_category"),
            (cairn_engine::NameKind::Property, "unknown_property"),
        ] {
            let e = ApiError::from(EngineError::UnknownName {
                kind,
                field: "filter".into(),
                message: "no catalog item has it".into(),
            });
            assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, code));
            assert_eq!(e.field.as_deref(), Some("filter"));
            assert_eq!(e.message, "filter: no catalog item has it");
        }
    }

    #[test]
    fn json_rejections_are_classified() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            a: u32,
        }
        let syntax = Json::<T>::from_bytes(b"{\"a\":").unwrap_err();
        assert_eq!(ApiError::from(syntax).code, "malformed_json");
        let unknown = ApiError::from(Json::<T>::from_bytes(br#"{"a":1,"b":2}"#).unwrap_err());
        assert_eq!(unknown.code, "invalid_argument");
        assert!(
            unknown.message.contains("unknown field `b`"),
            "{}",
            unknown.message
        );
    }
}
