//! Access control: which scope each route needs, the bearer-token check, per-key rate limits, the
//! audit log of administrative requests, and the rule for serving without keys.
//!
//! While no API key exists the server is open, but only where that is safe: on a loopback address
//! (or when the operator said `insecure`). Once a key exists, every route but `/healthz`, `/readyz`
//! and `/openapi.json` needs `Authorization: Bearer <token>` with a key of the route's scope.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cairn_engine::{ApiKey, AuditRecord, Scope};

use crate::error::ApiError;
use crate::state::AppState;

/// The scope a request needs, by method and route template; `None` for the open routes. Routes not
/// listed need `read` (so probing for routes needs a key); a method a route does not have needs
/// `admin` (it is answered 405 either way, but only to a key that could use any method).
pub fn required_scope(method: &Method, route: &str) -> Option<Scope> {
    use Scope::{Admin, Ingest, Read};
    let get = method == Method::GET || method == Method::HEAD;
    let scope = match route {
        "/healthz" | "/readyz" | "/openapi.json" => return None,
        "/metrics" | "/v1/popular" | "/v1/trending" | "/v1/model" | "/v1/items/{id}/similar"
            if get =>
        {
            Read
        }
        // Both methods of recommendations only read (POST carries rules in the body).
        "/v1/users/{id}/recommendations" if get || method == Method::POST => Read,
        "/v1/recommendations/batch" if method == Method::POST => Read,
        "/v1/items" | "/v1/items/{id}" if get => Read,
        "/v1/items" | "/v1/users" | "/v1/events" if method == Method::POST => Ingest,
        "/v1/items/{id}" | "/v1/users/{id}" if method == Method::PUT => Ingest,
        // Reading user rows and histories is reading personal data: admin only.
        "/v1/users" | "/v1/users/{id}" | "/v1/users/{id}/events" | "/v1/users/{id}/export"
            if get =>
        {
            Admin
        }
        "/v1/items/{id}" | "/v1/users/{id}" if method == Method::DELETE => Admin,
        "/v1/train" | "/v1/backup" | "/v1/keys" | "/v1/keys/{id}" | "/v1/audit" => Admin,
        UNMATCHED => Read,
        _ => Admin,
    };
    Some(scope)
}

/// The route label of a request that matched no route.
const UNMATCHED: &str = "unmatched";

/// Whether `host` (a configured `server.host`) is a loopback address.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The secure-by-default rule, checked before serving: without any API key, only a loopback
/// address may be served, unless the operator chose `insecure`. The error says how to fix it.
pub fn check_exposure(ip: IpAddr, has_keys: bool, insecure: bool) -> Result<(), String> {
    if has_keys || insecure || ip.is_loopback() {
        return Ok(());
    }
    Err(format!(
        "refusing to serve {ip} without authentication: no API key exists, so anyone who can reach \
         this address could read and change all data. Create a key first (`cairn keys create \
         --scope admin --name ops` while the server is stopped), serve a loopback address \
         (--host 127.0.0.1), or pass --insecure (auth.insecure = true) to serve it open on purpose"
    ))
}

/// Per-key token buckets: each key may make `burst` requests at once and `rate` per second on average.
///
/// The buckets are bounded: a bucket left alone for `burst / rate` seconds is full again, exactly
/// as a new one would be, so such idle buckets are dropped (swept every [`SWEEP_EVERY`] checks, and
/// whenever the map is full); at [`MAX_BUCKETS`] active keys, the longest idle bucket gives way.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    max_buckets: usize,
    buckets: Mutex<Buckets>,
}

#[derive(Default)]
struct Buckets {
    map: HashMap<String, Bucket>,
    checks_since_sweep: u32,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Most buckets kept (one per API key that made a request recently).
pub const MAX_BUCKETS: usize = 65_536;
/// Checks between two sweeps of idle buckets.
pub const SWEEP_EVERY: u32 = 4096;

/// How full the rate limiter's map is, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimiterStats {
    pub buckets: usize,
    /// Estimated bytes: each key's allocation and the map's slots at its capacity.
    pub bytes: usize,
}

impl RateLimiter {
    /// `None` when `rate` is 0 (no limit).
    pub fn new(rate: f64, burst: u32) -> Option<RateLimiter> {
        Self::with_max_buckets(rate, burst, MAX_BUCKETS)
    }

    fn with_max_buckets(rate: f64, burst: u32, max_buckets: usize) -> Option<RateLimiter> {
        (rate > 0.0).then(|| RateLimiter {
            rate,
            burst: f64::from(burst.max(1)),
            max_buckets: max_buckets.max(1),
            buckets: Mutex::new(Buckets::default()),
        })
    }

    /// How long a bucket takes to fill from empty: idle that long, it is as good as new.
    fn full_after(&self) -> Duration {
        Duration::from_secs_f64(self.burst / self.rate)
    }

    /// Takes one token from `key`'s bucket at `now`, or says how long until one is there.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets.checks_since_sweep += 1;
        let full = !buckets.map.contains_key(key) && buckets.map.len() >= self.max_buckets;
        if full || buckets.checks_since_sweep >= SWEEP_EVERY {
            self.sweep(&mut buckets, now);
        }
        if !buckets.map.contains_key(key) && buckets.map.len() >= self.max_buckets {
            // Every bucket is in use: the longest idle one gives way (its key starts full again).
            let oldest = buckets
                .map
                .iter()
                .min_by_key(|(_, b)| b.at)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                buckets.map.remove(&oldest);
            }
        }
        let bucket = buckets.map.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }

    /// Drops the buckets idle long enough to be full again.
    fn sweep(&self, buckets: &mut Buckets, now: Instant) {
        let full_after = self.full_after();
        buckets
            .map
            .retain(|_, b| now.saturating_duration_since(b.at) < full_after);
        if buckets.map.capacity() > 2 * buckets.map.len() + 64 {
            buckets.map.shrink_to_fit();
        }
        buckets.checks_since_sweep = 0;
    }

    /// Forgets a key's bucket (after revocation).
    pub fn forget(&self, key: &str) {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .remove(key);
    }

    pub fn stats(&self) -> LimiterStats {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let slot = size_of::<(String, Bucket)>() + 1;
        let keys: usize = buckets
            .map
            .keys()
            .map(|k| cairn_engine::memory::heap_bytes(k.capacity()))
            .sum();
        LimiterStats {
            buckets: buckets.map.len(),
            bytes: keys + buckets.map.capacity() * slot,
        }
    }
}

/// Who made a request, as handlers see it (a request extension).
#[derive(Debug, Clone)]
pub enum Caller {
    Key(ApiKey),
    /// No key exists and the server runs open (loopback, or `insecure`).
    Anonymous,
}

impl Caller {
    fn audit_identity(&self) -> (String, String) {
        match self {
            Caller::Key(k) => (k.id.clone(), k.name.clone()),
            Caller::Anonymous => ("anonymous".into(), "no keys (open mode)".into()),
        }
    }
}

/// The middleware: authenticates, checks the scope and the rate limit, runs the request, and
/// records administrative requests in the audit log.
pub async fn authorize(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, |p| p.as_str())
        .to_string();
    let Some(needed) = required_scope(req.method(), &route) else {
        return next.run(req).await;
    };
    let caller = match identify(&state, &req, needed) {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    if let (Caller::Key(key), Some(limiter)) = (&caller, state.rate_limiter.as_deref()) {
        if let Err(wait) = limiter.check(&key.id, Instant::now()) {
            return rate_limited(wait);
        }
    }
    let action = format!("{} {}", req.method(), req.uri().path());
    let target = path_id(&route, req.uri().path());
    req.extensions_mut().insert(caller.clone());
    let response = next.run(req).await;
    if needed == Scope::Admin {
        let (key_id, key_name) = caller.audit_identity();
        let record = AuditRecord {
            seq: 0,
            at: cairn_core::now_unix(),
            key_id,
            key_name,
            action,
            target,
            status: response.status().as_u16(),
        };
        if let Err(e) = state.run(move |e| e.record_audit(record)).await {
            tracing::error!(code = e.code, message = %e.message, "cannot write the audit log");
        }
    }
    response
}

/// The caller of a request that needs `needed`, or the error response.
fn identify(state: &AppState, req: &Request, needed: Scope) -> Result<Caller, Box<Response>> {
    let engine = &state.engine;
    if !engine.has_keys() {
        if state.keyless_open {
            return Ok(Caller::Anonymous);
        }
        return Err(Box::new(unauthorized(
            "no API key exists and this server is not on a loopback address; create one with \
             `cairn keys create --scope admin --name ops` while the server is stopped",
            None,
        )));
    }
    let header = req.headers().get(header::AUTHORIZATION);
    let Some(header) = header else {
        return Err(Box::new(unauthorized(
            "this route needs an API key: send `Authorization: Bearer <key>` (create keys with \
             `cairn keys create` or POST /v1/keys)",
            None,
        )));
    };
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(token) = token else {
        return Err(Box::new(unauthorized(
            "the Authorization header must be `Bearer <key>`",
            Some("invalid_request"),
        )));
    };
    let Some(key) = engine.authenticate(token) else {
        return Err(Box::new(unauthorized(
            "the API key is not valid (unknown or revoked); check the key, or create a new one",
            Some("invalid_token"),
        )));
    };
    if !key.scope.allows(needed) {
        return Err(Box::new(
            ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this request needs a key with scope `{needed}`; the key `{}` ({}) has scope `{}`",
                    key.name, key.id, key.scope
                ),
            )
            .into_response(),
        ));
    }
    Ok(Caller::Key(key))
}

fn unauthorized(message: &str, bearer_error: Option<&str>) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    let challenge = match bearer_error {
        Some(code) => format!("Bearer realm=\"cairn\", error=\"{code}\""),
        None => "Bearer realm=\"cairn\"".to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

fn rate_limited(wait: Duration) -> Response {
    // Whole seconds, rounded up, at least 1: a client that waits that long gets through.
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("this key made more requests than its rate limit allows; retry in {secs} s"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

/// The value of the template's `{id}` segment in `path`.
fn path_id(route: &str, path: &str) -> Option<String> {
    route
        .split('/')
        .zip(path.split('/'))
        .find(|(template, _)| *template == "{id}")
        .map(|(_, value)| value.to_string())
}

/// Adds the bearer security scheme to the OpenAPI document and, to each operation, the scope it
/// needs, from [`required_scope`] (the table the middleware enforces).
pub struct SecurityDoc;

impl utoipa::Modify for SecurityDoc {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`cairn_...`) of the scope the operation names. While no key \
                         exists, a server on loopback answers without one.",
                    ))
                    .build(),
            ),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (Method::GET, &mut item.get),
                (Method::POST, &mut item.post),
                (Method::PUT, &mut item.put),
                (Method::DELETE, &mut item.delete),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation.as_mut() else {
                    continue;
                };
                let Some(scope) = required_scope(&method, path) else {
                    operation.security = Some(Vec::new());
                    continue;
                };
                operation.security = Some(vec![SecurityRequirement::new(
                    "bearer",
                    Vec::<String>::new(),
                )]);
                let note = format!("Needs an API key of scope `{scope}` (or higher).");
                operation.description = Some(match operation.description.take() {
                    Some(d) if !d.is_empty() => format!("{d}\n\n{note}"),
                    _ => note,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_of_routes() {
        assert_eq!(required_scope(&Method::GET, "/healthz"), None);
        assert_eq!(required_scope(&Method::GET, "/openapi.json"), None);
        let read = Some(Scope::Read);
        assert_eq!(
            required_scope(&Method::GET, "/v1/users/{id}/recommendations"),
            read
        );
        assert_eq!(
            required_scope(&Method::POST, "/v1/users/{id}/recommendations"),
            read
        );
        assert_eq!(required_scope(&Method::GET, "/v1/items/{id}"), read);
        assert_eq!(required_scope(&Method::GET, UNMATCHED), read);
        let ingest = Some(Scope::Ingest);
        assert_eq!(required_scope(&Method::POST, "/v1/events"), ingest);
        assert_eq!(required_scope(&Method::PUT, "/v1/items/{id}"), ingest);
        let admin = Some(Scope::Admin);
        assert_eq!(required_scope(&Method::DELETE, "/v1/users/{id}"), admin);
        assert_eq!(required_scope(&Method::POST, "/v1/train"), admin);
        assert_eq!(required_scope(&Method::GET, "/v1/users/{id}/events"), admin);
        assert_eq!(required_scope(&Method::PATCH, "/v1/items"), admin);
    }

    #[test]
    fn every_documented_operation_is_guarded_as_intended() {
        // Only the health checks and this document are open.
        let doc = crate::openapi();
        for (path, item) in &doc.paths.paths {
            for (method, op) in [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::DELETE, &item.delete),
            ] {
                let Some(op) = op else { continue };
                let open = required_scope(&method, path).is_none();
                assert_eq!(
                    open,
                    ["/healthz", "/readyz", "/openapi.json"].contains(&path.as_str()),
                    "{method} {path}"
                );
                assert_eq!(
                    op.security.as_ref().is_some_and(Vec::is_empty),
                    open,
                    "{method} {path}"
                );
            }
        }
    }

    #[test]
    fn loopback_hosts_and_the_exposure_rule() {
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("localhost"));
        assert!(is_loopback_host("::1"));
        assert!(is_loopback_host("[::1]"));
        assert!(!is_loopback_host("0.0.0.0"));
        assert!(!is_loopback_host("shop.example"));
        let public: IpAddr = "0.0.0.0".parse().unwrap();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let refused = check_exposure(public, false, false).unwrap_err();
        assert!(
            refused.contains("--insecure") && refused.contains("cairn keys create"),
            "{refused}"
        );
        assert!(check_exposure(public, true, false).is_ok());
        assert!(check_exposure(public, false, true).is_ok());
        assert!(check_exposure(local, false, false).is_ok());
    }

    #[test]
    fn token_buckets_allow_a_burst_then_the_rate() {
        let limiter = RateLimiter::new(2.0, 3).unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("a", t0).is_ok());
        }
        let wait = limiter.check("a", t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Other keys have their own bucket.
        assert!(limiter.check("b", t0).is_ok());
        // Half a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        assert!(limiter.check("a", t1).is_ok());
        assert!(limiter.check("a", t1).is_err());
        // Never more than the burst, however long the pause.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(limiter.check("a", t2).is_ok());
        }
        assert!(limiter.check("a", t2).is_err());
        limiter.forget("a");
        assert!(limiter.check("a", t2).is_ok());
        assert!(RateLimiter::new(0.0, 10).is_none());
    }

    #[test]
    fn idle_buckets_are_swept_and_the_map_stays_bounded() {
        // 10 per second, burst 5: a bucket idle for 0.5 s is full again.
        let limiter = RateLimiter::with_max_buckets(10.0, 5, 100).unwrap();
        let t0 = Instant::now();
        // Many keys, each used once: never more than 100 buckets.
        for i in 0..1000 {
            let key = format!("key-{i}");
            assert!(limiter.check(&key, t0 + Duration::from_millis(i)).is_ok());
            assert!(limiter.stats().buckets <= 100);
        }
        // At the cap with every bucket recent, the longest idle one gave way: the newest keys
        // are kept.
        assert_eq!(limiter.stats().buckets, 100);
        {
            let buckets = limiter.buckets.lock().unwrap();
            assert!(buckets.map.contains_key("key-999") && !buckets.map.contains_key("key-0"));
        }
        // An emptied bucket is not swept while it refills: the limit still holds after a sweep.
        let t1 = t0 + Duration::from_secs(10);
        for _ in 0..5 {
            assert!(limiter.check("busy", t1).is_ok());
        }
        assert!(limiter.check("busy", t1).is_err());
        {
            let mut buckets = limiter.buckets.lock().unwrap();
            limiter.sweep(&mut buckets, t1 + Duration::from_millis(100));
            // The 1000 old keys were idle for seconds: all gone; `busy` is not full yet: kept.
            assert_eq!(buckets.map.len(), 1);
        }
        let t2 = t1 + Duration::from_millis(100);
        assert!(limiter.check("busy", t2).is_ok());
        assert!(limiter.check("busy", t2).is_err());
        let stats = limiter.stats();
        assert_eq!(stats.buckets, 1);
        assert!(stats.bytes > 0 && stats.bytes < 16 * 1024, "{stats:?}");
    }

    #[test]
    fn a_sweep_runs_every_so_many_checks_without_a_full_map() {
        let limiter = RateLimiter::new(1000.0, 1).unwrap();
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(limiter.check(&format!("old-{i}"), t0).is_ok());
        }
        // One key checked SWEEP_EVERY times, long after: the idle keys go at the sweep.
        let later = t0 + Duration::from_secs(60);
        for i in 0..SWEEP_EVERY {
            let _ = limiter.check("live", later + Duration::from_millis(u64::from(i)));
        }
        assert_eq!(limiter.stats().buckets, 1);
    }

    #[test]
    fn audit_targets_come_from_the_path() {
        assert_eq!(path_id("/v1/users/{id}", "/v1/users/u7"), Some("u7".into()));
        assert_eq!(path_id("/v1/train", "/v1/train"), None);
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        let r = rate_limited(Duration::from_millis(1500));
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        let r = rate_limited(Duration::from_millis(10));
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }
}
