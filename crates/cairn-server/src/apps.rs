//! Several apps (tenants) in one deployment: `/v1/apps/{app}/…` is app `app`'s API.
//!
//! Each app is a whole [`Engine`] of its own (its store, models, keys, experiments and
//! configuration, see `Config::app`) with a router of its own, built exactly as the default app's
//! (authentication, scopes, rate limits, metrics, errors). A request under `/v1/apps/{app}/` is
//! handed to that app's router with its path rewritten to the route every client knows
//! (`/v1/apps/shop/items/42` → `/v1/items/42`; `healthz`, `readyz`, `metrics` and `openapi.json`
//! keep their root paths), as a fresh request that carries none of the outer router's extensions.
//! So an app's request can only ever reach its own engine: isolation needs no check in any
//! handler.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceExt as _;

use crate::error::ApiError;

/// The route template the dispatcher is mounted at.
pub(crate) const ROUTE: &str = "/v1/apps/{*rest}";

/// Each app's router, by name.
pub(crate) type AppRouters = Arc<HashMap<String, Router>>;

/// The path inside an app of `tail`, the part after `/v1/apps/{app}/`.
fn inner_path(tail: &str) -> String {
    match tail {
        "healthz" | "readyz" | "metrics" | "openapi.json" => format!("/{tail}"),
        _ => format!("/v1/{tail}"),
    }
}

/// The app a path names and the path inside it (query kept), or `None` when the path is not under
/// `/v1/apps/`.
fn split(uri: &Uri) -> Option<(&str, String)> {
    let rest = uri.path().strip_prefix("/v1/apps/")?;
    let (app, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let path = inner_path(tail);
    Some(match uri.query() {
        Some(query) => (app, format!("{path}?{query}")),
        None => (app, path),
    })
}

fn app_not_found(app: &str) -> Response {
    // The name is cut, so that a long made-up one does not come back whole; the served apps are
    // not listed (a caller without a key should not learn the other tenants' names).
    let shown: String = app.chars().take(64).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        "app_not_found",
        format!(
            "no app `{shown}` is served here; an app is declared by an `[apps.NAME]` table of the \
             configuration and served at /v1/apps/NAME/"
        ),
    )
    .into_response()
}

/// The handler of [`ROUTE`]: forwards the request to its app's router, or answers 404
/// `app_not_found`.
pub(crate) async fn dispatch(State(apps): State<AppRouters>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Some((app, path)) = split(&parts.uri) else {
        return app_not_found("");
    };
    let Some(router) = apps.get(app) else {
        return app_not_found(app);
    };
    let Ok(uri) = path.parse::<Uri>() else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "the request's path is not a valid URI path",
        )
        .into_response();
    };
    // A fresh request: the outer router's matched path and path parameters must not reach the
    // app's router (axum would join them with its own).
    let mut inner = Request::new(body);
    *inner.method_mut() = parts.method;
    *inner.uri_mut() = uri;
    *inner.version_mut() = parts.version;
    *inner.headers_mut() = parts.headers;
    match router.clone().oneshot(inner).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_rewritten_into_the_app() {
        let cases = [
            (
                "/v1/apps/shop/items/a%2Fb",
                Some(("shop", "/v1/items/a%2Fb")),
            ),
            (
                "/v1/apps/shop/users/u1/recommendations?k=5",
                Some(("shop", "/v1/users/u1/recommendations?k=5")),
            ),
            ("/v1/apps/shop/metrics", Some(("shop", "/metrics"))),
            ("/v1/apps/shop/readyz", Some(("shop", "/readyz"))),
            ("/v1/apps/shop", Some(("shop", "/v1/"))),
            (
                "/v1/apps/shop/../other/items",
                Some(("shop", "/v1/../other/items")),
            ),
            ("/v1/items", None),
        ];
        for (path, expected) in cases {
            let uri: Uri = path.parse().unwrap();
            let got = split(&uri);
            assert_eq!(
                got.as_ref().map(|(a, p)| (*a, p.as_str())),
                expected,
                "{path}"
            );
        }
    }
}
