//! Cairn's HTTP API: versioned JSON endpoints over the engine, with JSON errors, Prometheus metrics
//! and an OpenAPI document generated from the handlers.
//!
//! Entry points for the CLI: [`router`] (the app), [`serve`] (run it until shutdown), [`serve_apps`]
//! (the same with several apps, see the `apps` module), [`openapi`] (the document),
//! [`spawn_retrainer`] (periodic background training), [`shutdown_signal`].

mod apps;
pub mod auth;
mod background;
mod conn;
mod dashboard;
pub mod dto;
pub mod error;
mod extract;
mod metrics;
mod middleware;
mod openapi;
mod routes;
mod scoring;
mod state;
mod stream;
mod tls;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use axum::Router;
use cairn_engine::Engine;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;

pub use background::{spawn_retention, spawn_retrainer, train_if_new_events};
pub use error::{ApiError, ErrorBody};
pub use tls::crypto_provider;

use crate::auth::RateLimiter;
use crate::error::ApiError as Error;
use crate::metrics::HttpMetrics;
use crate::routes::shadow;
use crate::routes::{
    access, batch, data, drift, events, experiments, items, models, ops, recommend, users,
};
use crate::scoring::ScoringPool;
use crate::state::AppState;

/// The OpenAPI document of this API (served at `GET /openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::ApiDoc::openapi()
}

/// The whole application, as [`serve`] runs it on an address of `server.host`: while no API key
/// exists it answers without one only when that host is a loopback address or `auth.insecure` is
/// set (see [`auth`]).
///
/// Body size limit and request timeout come from `engine.config().server`
/// (`request_timeout_ms = 0` disables the timeout); `POST /v1/train` is exempt from the timeout because
/// training legitimately takes long. Fails only when the scoring threads cannot be started.
pub fn router(engine: Arc<Engine>) -> io::Result<Router> {
    let config = engine.config();
    let keyless_open = auth::is_loopback_host(&config.server.host) || config.auth.insecure;
    let scoring = scoring_pool(&engine)?;
    Ok(build_router(engine, keyless_open, scoring, true, None))
}

/// The scoring threads (`server.scoring_threads`), shared by every app of a deployment: they are
/// the machine's cores, whichever app's request they score.
fn scoring_pool(engine: &Engine) -> io::Result<Arc<ScoringPool>> {
    let scoring =
        ScoringPool::new(engine.config().server.scoring_threads).map_err(io::Error::other)?;
    tracing::debug!(threads = scoring.threads(), "scoring threads started");
    Ok(Arc::new(scoring))
}

/// One app's router (the default app's with `dashboard`), its requests scored on `scoring`;
/// `stream`: the Redis consumer's figures for `/metrics`, when one runs.
fn build_router(
    engine: Arc<Engine>,
    keyless_open: bool,
    scoring: Arc<ScoringPool>,
    dashboard: bool,
    stream: Option<Arc<stream::StreamStats>>,
) -> Router {
    let server = &engine.config().server;
    let body_timeout = Duration::from_millis(server.body_timeout_ms);
    let auth_config = engine.config().auth.clone();
    let timeout = Duration::from_millis(server.request_timeout_ms);
    let max_body = server.max_body_bytes;
    // Shadow tests and guardrails, when configured (a no-op otherwise, or when already started).
    engine.start_monitor();
    let state = AppState {
        metrics: Arc::new(HttpMetrics::new()),
        scoring,
        engine,
        keyless_open,
        stream,
        rate_limiter: Arc::new(RateLimiter::new(
            auth_config.rate_limit_per_sec,
            auth_config.rate_limit_burst,
        )),
    };
    let api = Router::new()
        .route("/v1/items", get(items::list_items).post(items::put_items))
        .route(
            "/v1/items/{id}",
            put(items::put_item)
                .get(items::get_item)
                .delete(items::delete_item),
        )
        .route("/v1/items/{id}/similar", get(recommend::similar))
        .route("/v1/users", get(users::list_users).post(users::put_users))
        .route(
            "/v1/users/{id}",
            put(users::put_user)
                .get(users::get_user)
                .delete(users::delete_user),
        )
        .route("/v1/users/{id}/events", get(users::user_events))
        .route("/v1/users/{id}/export", get(data::export_user))
        .route(
            "/v1/users/{id}/recommendations",
            get(recommend::for_user).post(recommend::for_user_with_rules),
        )
        .route("/v1/recommendations/batch", post(batch::recommendations))
        .route("/v1/events", post(events::post_events))
        .route("/v1/popular", get(recommend::popular))
        .route("/v1/trending", get(recommend::trending))
        .route("/v1/model", get(ops::model))
        .route("/v1/models", get(models::list))
        .route("/v1/models/history", get(models::history))
        .route("/v1/models/rollback", post(models::rollback))
        .route("/v1/models/{version}", get(models::show))
        .route("/v1/models/{version}/promote", post(models::promote))
        .route("/v1/shadow", get(shadow::report))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/v1/drift", get(drift::drift))
        .route("/openapi.json", get(ops::openapi))
        .route("/v1/keys", get(access::list_keys).post(access::create_key))
        .route("/v1/keys/{id}", delete(access::revoke_key))
        .route("/v1/audit", get(access::audit))
        .route(
            "/v1/experiments",
            get(experiments::list).post(experiments::create),
        )
        .route("/v1/experiments/{id}", get(experiments::show))
        .route("/v1/experiments/{id}/results", get(experiments::results))
        .route("/v1/experiments/{id}/stop", post(experiments::stop))
        .route("/v1/experiments/{id}/ship", post(experiments::ship))
        .route("/v1/impressions", post(experiments::impressions));
    // Layers added with `Router::layer` wrap the routes present at that point only, so the training
    // route added below is exempt. A zero timeout means none.
    let api = if timeout.is_zero() {
        api
    } else {
        api.layer(axum::middleware::from_fn_with_state(
            timeout,
            middleware::timeout,
        ))
    };
    let api = api
        .route("/v1/train", post(ops::train))
        .route("/v1/backup", post(data::backup))
        .route("/v1/compact", post(data::compact))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed);
    // Inside the JSON-error and metrics layers (so refusals are counted and JSON), around every
    // route including training and the fallback.
    let api = api.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::authorize,
    ));

    let metrics = Arc::clone(&state.metrics);
    // Outermost last: metrics see the final status, after panics and framework errors became JSON.
    let body_limits = middleware::BodyLimits {
        max_bytes: max_body,
        timeout: Some(body_timeout).filter(|d| !d.is_zero()),
    };
    let api = api
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            body_limits,
            middleware::read_body,
        ))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn(middleware::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            middleware::record_metrics,
        ));
    // The web dashboard at `/` (its own session login and CSRF checks; see `dashboard`), for the
    // default app only.
    let api = if dashboard {
        api.merge(dashboard::router(&state))
    } else {
        api
    };
    let api = api.with_state(state);
    // Outside everything else, so a browser's preflight is answered before authentication.
    match cors_layer(&auth_config.cors_origins) {
        Some(cors) => api.layer(cors),
        None => api,
    }
}

/// CORS for the configured origins; `None` (no CORS headers) when there are none.
fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{header, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        // Validated by the configuration (`AuthConfig::validate`); an unparsable one is skipped.
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([header::RETRY_AFTER]),
    )
}

async fn route_not_found(uri: axum::http::Uri) -> Error {
    Error::new(
        axum::http::StatusCode::NOT_FOUND,
        "route_not_found",
        format!("no route for {}; see GET /openapi.json", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Error {
    Error::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {}; see GET /openapi.json for the methods it accepts",
            uri.path()
        ),
    )
}

/// Serves the API on `listener` until `shutdown` completes, then finishes in-flight requests.
/// Over HTTPS when `server.tls_cert` and `server.tls_key` are set; the connection limits of
/// `server.*` apply (see the `conn` module).
///
/// When events are stored but no model exists yet (a fresh import), a first training starts in the
/// background at once, so recommendations do not stay empty until the first retraining period.
pub async fn serve(
    engine: Arc<Engine>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_apps(engine, Vec::new(), listener, shutdown).await
}

/// [`serve`], with `apps` (name and engine, see `Config::app`) served beside the default app
/// `engine` at `/v1/apps/{name}/…`, each with its own background work (startup training,
/// champion watcher, drift windows, storage probe). The connection limits, TLS and the scoring
/// threads are the deployment's (`engine`'s `server` section); the rest of each app's settings
/// are its own. Refuses to start when one app has no key on an address only keys may serve.
pub async fn serve_apps(
    engine: Arc<Engine>,
    apps: Vec<(String, Arc<Engine>)>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let addr = listener.local_addr()?;
    let everyone = std::iter::once(("default", &engine))
        .chain(apps.iter().map(|(name, e)| (name.as_str(), e)));
    for (name, e) in everyone {
        let insecure = e.config().auth.insecure;
        auth::check_exposure(addr.ip(), e.has_keys(), insecure).map_err(|m| {
            let m = if name == "default" {
                m
            } else {
                format!("app `{name}`: {m} (an app's keys: `cairn --app {name} keys create`)")
            };
            io::Error::new(io::ErrorKind::PermissionDenied, m)
        })?;
        if !e.has_keys() {
            if addr.ip().is_loopback() {
                tracing::warn!(
                    %addr,
                    app = name,
                    "no API key exists: serving without authentication, on loopback only; create \
                     a key with `cairn keys create --scope admin --name ops` (or POST /v1/keys) to \
                     require keys"
                );
            } else {
                tracing::warn!(
                    %addr,
                    app = name,
                    "no API key exists and --insecure is set: serving WITHOUT authentication to \
                     anyone who can reach this address"
                );
            }
        }
    }
    let server = &engine.config().server;
    let grace = Duration::from_secs(server.shutdown_grace_secs);
    let limits = conn::Limits::from_config(server);
    let tls = match (&server.tls_cert, &server.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = tls::Tls::load(cert, key)?;
            tracing::info!(cert = %cert.display(), "serving HTTPS");
            Some(tls)
        }
        _ => None,
    };
    let scoring = scoring_pool(&engine)?;
    // Only once nothing can refuse the start any more.
    let mut tasks = Vec::new();
    for e in std::iter::once(&engine).chain(apps.iter().map(|(_, e)| e)) {
        tasks.extend(start_background(e).await);
    }
    let reloader = tls.as_ref().map(|t| t.spawn_reloader(tls::RELOAD_EVERY));
    tracing::info!(%addr, apps = apps.len(), "serving the Cairn API");
    let keyless_open = |e: &Engine| addr.ip().is_loopback() || e.config().auth.insecure;
    let mut routers = std::collections::HashMap::new();
    for (name, e) in apps {
        let open = keyless_open(&e);
        routers.insert(
            name,
            build_router(e, open, Arc::clone(&scoring), false, None),
        );
    }
    let open = keyless_open(&engine);
    // Streaming ingestion from Redis, when `stream.redis_url` is set: the default app's only.
    let (consumer, stream_stats) = stream::spawn(Arc::clone(&engine)).unzip();
    let app = build_router(engine, open, scoring, true, stream_stats).route(
        apps::ROUTE,
        axum::routing::any(apps::dispatch).with_state(Arc::new(routers)),
    );
    let result = conn::run(listener, app, limits, tls, shutdown, grace).await;
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    for task in tasks {
        task.abort();
    }
    if let Some(consumer) = consumer {
        consumer.abort();
    }
    result
}

/// One engine's background work while it serves: takes the trainer lease over a shared store,
/// starts a first training when events wait for one, and spawns the champion watcher, the drift
/// ticker and the storage probe (abort the handles to stop them).
async fn start_background(engine: &Arc<Engine>) -> Vec<tokio::task::JoinHandle<()>> {
    // Over a shared store, the first replica to start takes the trainer lease now (the watcher
    // asks again on every tick).
    let lease = Arc::clone(engine);
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || lease.take_trainer_lease()).await {
        tracing::warn!(error = %e, "cannot ask for the trainer lease");
    }
    if engine.model_info().is_none() && background::has_events(engine).await {
        // Decided before the first connection is accepted, so whether a startup training runs
        // depends on the stored data only, never on how fast the first requests arrive.
        tokio::spawn(background::train_in_background(
            Arc::clone(engine),
            "startup",
        ));
    }
    vec![
        background::spawn_champion_watcher(
            Arc::clone(engine),
            Duration::from_millis(engine.config().models.watch_interval_ms),
        ),
        background::spawn_drift_ticker(Arc::clone(engine)),
        background::spawn_storage_probe(
            Arc::clone(engine),
            Duration::from_secs(engine.config().server.storage_retry_secs),
        ),
    ]
}

/// Completes on Ctrl-C or, on Unix, SIGTERM: pass it to [`serve`] for a graceful stop.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
