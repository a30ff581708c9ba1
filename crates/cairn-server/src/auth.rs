//! Access control: which scope each route needs, the bearer-token check, per-key rate limits, the
//! audit log of administrative requests, and the rule for serving without keys.
//!
//! While no API key exists the server is open, but only where that is safe: on a loopback address
//! (or when the operator said `insecure`). Once a key exists, every route but `/healthz`, `/readyz`
//! and `/openapi.json` needs `Authorization: Bearer <token>` with a key of the route's scope.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cairn_engine::{ApiKey, AuditRecord, RateLimit, Scope, ERASED_MARKER};

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
        "/metrics"
        | "/v1/popular"
        | "/v1/trending"
        | "/v1/model"
        | "/v1/items/{id}/similar"
        | "/v1/drift"
            if get =>
        {
            Read
        }
        // Both methods of recommendations only read (POST carries rules in the body).
        "/v1/users/{id}/recommendations" if get || method == Method::POST => Read,
        "/v1/recommendations/batch" if method == Method::POST => Read,
        "/v1/models" | "/v1/models/history" | "/v1/models/{version}" if get => Read,
        "/v1/shadow" if get => Read,
        "/v1/items" | "/v1/items/{id}" if get => Read,
        "/v1/items" | "/v1/users" | "/v1/events" if method == Method::POST => Ingest,
        "/v1/impressions" if method == Method::POST => Ingest,
        "/v1/experiments" | "/v1/experiments/{id}" | "/v1/experiments/{id}/results" if get => Read,
        "/v1/items/{id}" | "/v1/users/{id}" if method == Method::PUT => Ingest,
        // Reading user rows and histories is reading personal data: admin only.
        "/v1/users" | "/v1/users/{id}" | "/v1/users/{id}/events" | "/v1/users/{id}/export"
            if get =>
        {
            Admin
        }
        "/v1/items/{id}" | "/v1/users/{id}" if method == Method::DELETE => Admin,
        "/v1/train" | "/v1/backup" | "/v1/compact" | "/v1/keys" | "/v1/keys/{id}" | "/v1/audit" => {
            Admin
        }
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

/// Per-key token buckets: each key may make `burst` requests at once and `rate` per second on
/// average, by its own limit when it has one ([`cairn_engine::RateLimit`]), else by the configured
/// default (`auth.rate_limit_per_sec`, `auth.rate_limit_burst`).
///
/// The buckets are bounded: a bucket left alone for `burst / rate` seconds is full again, exactly
/// as a new one would be, so such idle buckets are dropped (swept every [`SWEEP_EVERY`] checks, and
/// whenever the map is full); at [`MAX_BUCKETS`] active keys, the longest idle bucket gives way.
pub struct RateLimiter {
    /// `None` when the default is no limit (rate 0).
    default: Option<RateLimit>,
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
    /// How long this bucket takes to fill from empty (its key's `burst / rate`): idle that long,
    /// it is as good as new.
    full_after: Duration,
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
    /// The default limit is `rate` per second with `burst` at once; `rate` 0 means no default limit
    /// (keys with their own limit are still held to it).
    pub fn new(rate: f64, burst: u32) -> RateLimiter {
        Self::with_max_buckets(rate, burst, MAX_BUCKETS)
    }

    fn with_max_buckets(rate: f64, burst: u32, max_buckets: usize) -> RateLimiter {
        RateLimiter {
            default: (rate > 0.0).then_some(RateLimit {
                per_sec: rate,
                burst: burst.max(1),
            }),
            max_buckets: max_buckets.max(1),
            buckets: Mutex::new(Buckets::default()),
        }
    }

    /// Takes one token from `key`'s bucket at `now`, by the key's `own` limit or else the default,
    /// or says how long until one is there. A key whose limit is a rate of 0 is never limited.
    pub fn check(&self, key: &str, own: Option<RateLimit>, now: Instant) -> Result<(), Duration> {
        let Some(limit) = own.or(self.default).filter(|l| l.per_sec > 0.0) else {
            return Ok(());
        };
        let (rate, burst) = (limit.per_sec, f64::from(limit.burst.max(1)));
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets.checks_since_sweep += 1;
        let full = !buckets.map.contains_key(key) && buckets.map.len() >= self.max_buckets;
        if full || buckets.checks_since_sweep >= SWEEP_EVERY {
            Self::sweep(&mut buckets, now);
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
        let full_after = Duration::from_secs_f64(burst / rate);
        let bucket = buckets.map.entry(key.to_string()).or_insert(Bucket {
            tokens: burst,
            at: now,
            full_after,
        });
        // The key's limit may have changed since its bucket was made.
        bucket.full_after = full_after;
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }

    /// Drops the buckets idle long enough to be full again.
    fn sweep(buckets: &mut Buckets, now: Instant) {
        buckets
            .map
            .retain(|_, b| now.saturating_duration_since(b.at) < b.full_after);
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
    /// Who, as the model history records it: the key's `name (id)`.
    pub fn who(&self) -> String {
        match self {
            Caller::Key(k) => format!("{} ({})", k.name, k.id),
            Caller::Anonymous => "anonymous (no keys, open mode)".into(),
        }
    }

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
    let (caller, write_use) = match identify(&state, &req, needed) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    if let Caller::Key(key) = &caller {
        if write_use {
            record_use(&state, key);
        }
        if let Err(wait) = state
            .rate_limiter
            .check(&key.id, key.rate_limit, Instant::now())
        {
            return rate_limited(wait);
        }
    }
    let erasing = req.method() == Method::DELETE && route == "/v1/users/{id}";
    let (mut action, mut target) =
        audit_subject(&state.engine, req.method(), &route, req.uri().path());
    req.extensions_mut().insert(caller.clone());
    let response = next.run(req).await;
    if needed == Scope::Admin {
        if erasing {
            // An erasure request never writes the id it erases (found or not): the erasure
            // scrubbed it from the log before this entry.
            (action, target) = (
                format!("DELETE /v1/users/{ERASED_MARKER}"),
                Some(ERASED_MARKER.to_string()),
            );
        }
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

/// Writes a key's last use to the store on the blocking pool, without holding up the request
/// (the engine asks for this at most once a minute per key). Queued there at once, so a shutdown
/// after the response still writes it.
fn record_use(state: &AppState, key: &ApiKey) {
    let Some(at) = key.last_used_at else { return };
    let (engine, id) = (Arc::clone(&state.engine), key.id.clone());
    drop(tokio::task::spawn_blocking(move || {
        if let Err(e) = engine.record_key_use(&id, at) {
            tracing::warn!(key = %id, error = %e, "cannot record a key's last use");
        }
    }));
}

/// The caller of a request that needs `needed` and whether its key's last use is due to be
/// written, or the error response.
fn identify(
    state: &AppState,
    req: &Request,
    needed: Scope,
) -> Result<(Caller, bool), Box<Response>> {
    let engine = &state.engine;
    if !engine.has_keys() {
        if state.keyless_open {
            return Ok((Caller::Anonymous, false));
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
    let Some((key, write_use)) = engine.authenticate_use(token) else {
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
    Ok((Caller::Key(key), write_use))
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
/// The audit log's action and target of a request. A user's id in a user route's path is written
/// as the store keys it: its pseudonym when `privacy.pseudonymize_user_ids` is on, so that the log
/// holds no raw id either.
fn audit_subject(
    engine: &cairn_engine::Engine,
    method: &Method,
    route: &str,
    path: &str,
) -> (String, Option<String>) {
    let target = path_id(route, path);
    match (&target, route.starts_with("/v1/users/{id}")) {
        (Some(id), true) => {
            let key = engine.user_key(&percent_decode(id)).into_owned();
            let rest: Vec<&str> = path.split('/').skip(4).collect();
            let mut action = format!("{method} /v1/users/{key}");
            for segment in rest {
                action.push('/');
                action.push_str(segment);
            }
            (action, Some(key))
        }
        _ => (format!("{method} {path}"), target),
    }
}

/// `%XX` escapes of a path segment decoded (what the route's extractor hands the handler).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn path_id(route: &str, path: &str) -> Option<String> {
    route
        .split('/')
        .zip(path.split('/'))
        .find(|(template, _)| *template == "{id}" || *template == "{version}")
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
        // Experiments: results are read, impressions are ingest, decisions are admin.
        assert_eq!(required_scope(&Method::GET, "/v1/experiments"), read);
        assert_eq!(
            required_scope(&Method::GET, "/v1/experiments/{id}/results"),
            read
        );
        assert_eq!(required_scope(&Method::POST, "/v1/impressions"), ingest);
        for route in [
            "/v1/experiments",
            "/v1/experiments/{id}/stop",
            "/v1/experiments/{id}/ship",
        ] {
            assert_eq!(required_scope(&Method::POST, route), admin, "{route}");
        }
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
        let limiter = RateLimiter::new(2.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("a", None, t0).is_ok());
        }
        let wait = limiter.check("a", None, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Other keys have their own bucket.
        assert!(limiter.check("b", None, t0).is_ok());
        // Half a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        assert!(limiter.check("a", None, t1).is_ok());
        assert!(limiter.check("a", None, t1).is_err());
        // Never more than the burst, however long the pause.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(limiter.check("a", None, t2).is_ok());
        }
        assert!(limiter.check("a", None, t2).is_err());
        limiter.forget("a");
        assert!(limiter.check("a", None, t2).is_ok());
    }

    #[test]
    fn a_key_with_its_own_limit_is_held_to_it() {
        let own = |per_sec, burst| Some(RateLimit { per_sec, burst });
        // No default limit: keys without their own are free, keys with one are held to it.
        let limiter = RateLimiter::new(0.0, 10);
        let t0 = Instant::now();
        assert!((0..1000).all(|_| limiter.check("free", None, t0).is_ok()));
        let allowed = (0..20)
            .filter(|_| limiter.check("own", own(1.0, 5), t0).is_ok())
            .count();
        assert_eq!(allowed, 5);
        assert_eq!(
            limiter.check("own", own(1.0, 5), t0).unwrap_err(),
            Duration::from_secs(1)
        );
        // A default limit: a key's own higher one, and an own rate of 0 (unlimited), win over it.
        let limiter = RateLimiter::new(1.0, 2);
        let count = |key: &str, limit| {
            (0..50)
                .filter(|_| limiter.check(key, limit, t0).is_ok())
                .count()
        };
        assert_eq!(count("default", None), 2);
        assert_eq!(count("big", own(100.0, 30)), 30);
        assert_eq!(count("unlimited", own(0.0, 1)), 50);
    }

    #[test]
    fn path_segments_decode_their_escapes() {
        assert_eq!(percent_decode("al%20ice%2F1"), "al ice/1");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }

    #[test]
    fn idle_buckets_are_swept_and_the_map_stays_bounded() {
        // 10 per second, burst 5: a bucket idle for 0.5 s is full again.
        let limiter = RateLimiter::with_max_buckets(10.0, 5, 100);
        let t0 = Instant::now();
        // Many keys, each used once: never more than 100 buckets.
        for i in 0..1000 {
            let key = format!("key-{i}");
            assert!(limiter
                .check(&key, None, t0 + Duration::from_millis(i))
                .is_ok());
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
            assert!(limiter.check("busy", None, t1).is_ok());
        }
        assert!(limiter.check("busy", None, t1).is_err());
        {
            let mut buckets = limiter.buckets.lock().unwrap();
            RateLimiter::sweep(&mut buckets, t1 + Duration::from_millis(100));
            // The 1000 old keys were idle for seconds: all gone; `busy` is not full yet: kept.
            assert_eq!(buckets.map.len(), 1);
        }
        let t2 = t1 + Duration::from_millis(100);
        assert!(limiter.check("busy", None, t2).is_ok());
        assert!(limiter.check("busy", None, t2).is_err());
        let stats = limiter.stats();
        assert_eq!(stats.buckets, 1);
        assert!(stats.bytes > 0 && stats.bytes < 16 * 1024, "{stats:?}");
    }

    #[test]
    fn a_sweep_runs_every_so_many_checks_without_a_full_map() {
        let limiter = RateLimiter::new(1000.0, 1);
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(limiter.check(&format!("old-{i}"), None, t0).is_ok());
        }
        // One key checked SWEEP_EVERY times, long after: the idle keys go at the sweep.
        let later = t0 + Duration::from_secs(60);
        for i in 0..SWEEP_EVERY {
            let _ = limiter.check("live", None, later + Duration::from_millis(u64::from(i)));
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
