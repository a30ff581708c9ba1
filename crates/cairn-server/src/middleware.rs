//! Cross-cutting layers: request metrics, the request timeout, the JSON-only error guarantee and the
//! panic handler.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::metrics::HttpMetrics;

/// Counts the request and records its latency, labelled by route template (not the raw path, which
/// would give one series per id) and final status.
pub async fn record_metrics(
    State(metrics): State<Arc<HttpMetrics>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    metrics.observe_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Answers 503 `timeout` when the handler takes longer than the configured limit. The engine call
/// already running on the blocking pool finishes on its own; writes are atomic either way.
pub async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request took longer than {} ms; retry, or send a smaller batch",
                limit.as_millis()
            ),
        )
        .into_response(),
    }
}

/// How request bodies are read: `server.max_body_bytes` and `server.body_timeout_ms`.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    /// `None` = no limit.
    pub timeout: Option<Duration>,
}

/// Reads the whole request body before the handler runs: a `Content-Length` above
/// `server.max_body_bytes` is answered 413 at once, without reading anything; a body that is not
/// complete `server.body_timeout_ms` after the header is answered 408 `body_timeout`; a chunked body
/// that grows past the limit is 413 too. The handler then gets the body from memory, so its own
/// time (`request_timeout_ms`) does not count the client's upload.
pub async fn read_body(State(limits): State<BodyLimits>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(declared) = declared {
        if declared > limits.max_bytes as u64 {
            return too_large(Some(declared), limits.max_bytes);
        }
    }
    let (parts, body) = req.into_parts();
    let read =
        http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limits.max_bytes));
    let read = match limits.timeout {
        Some(limit) => match tokio::time::timeout(limit, read).await {
            Ok(read) => read,
            Err(_) => {
                return ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    format!(
                        "the request body did not arrive within {} ms (server.body_timeout_ms); \
                         send it at once, or a smaller one",
                        limit.as_millis()
                    ),
                )
                .into_response()
            }
        },
        None => read.await,
    };
    match read {
        Ok(collected) => {
            let body = axum::body::Body::from(collected.to_bytes());
            next.run(Request::from_parts(parts, body)).await
        }
        Err(e) if e.is::<http_body_util::LengthLimitError>() => too_large(None, limits.max_bytes),
        Err(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "body_read_failed",
            format!("the request body could not be read: {e}"),
        )
        .into_response(),
    }
}

fn too_large(declared: Option<u64>, max: usize) -> Response {
    let what = declared.map_or_else(
        || "the request body is larger than".to_string(),
        |n| format!("the request body declares {n} bytes, more than"),
    );
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("{what} the {max} bytes this server accepts (server.max_body_bytes); send smaller batches"),
    )
    .into_response()
}

/// The last line of the "every error is JSON" rule: an error response that some framework layer
/// produced in plain text (or empty) is replaced by the JSON shape for its status.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let mut replaced = ApiError::for_status(status).into_response();
    // Keep informative headers such as `Allow` on a 405.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    for (name, value) in parts.headers.drain().filter_map(|(n, v)| n.map(|n| (n, v))) {
        replaced.headers_mut().entry(name).or_insert(value);
    }
    replaced
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Response of the catch-panic layer: a bug, not the client's fault; the message says nothing about
/// internals.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "handler panicked");
    ApiError::internal("internal error; the request was not completed").into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::{to_bytes, Body};
    use axum::http::Request as HttpRequest;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;
    use tower_http::catch_panic::CatchPanicLayer;

    use super::*;

    async fn call(app: Router, path: &str) -> (StatusCode, serde_json::Value) {
        let request = HttpRequest::get(path).body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_json() {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let app = Router::new()
            .route("/", get(boom))
            .layer(CatchPanicLayer::custom(panic_response));
        let (status, body) = call(app, "/").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "internal");
    }

    #[tokio::test]
    async fn plain_text_errors_become_json() {
        async fn plain() -> (StatusCode, &'static str) {
            (StatusCode::BAD_REQUEST, "nope")
        }
        let app = Router::new()
            .route("/", get(plain))
            .layer(axum::middleware::from_fn(json_errors));
        let (status, body) = call(app, "/").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "bad_request");
    }

    #[tokio::test]
    async fn slow_handlers_time_out_with_503_json() {
        async fn slow() -> &'static str {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "late"
        }
        let app = Router::new()
            .route("/", get(slow))
            .layer(axum::middleware::from_fn_with_state(
                Duration::from_millis(10),
                timeout,
            ));
        let (status, body) = call(app, "/").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "timeout");
    }
}
