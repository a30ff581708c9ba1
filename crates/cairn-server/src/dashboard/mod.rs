//! The web dashboard served at `/` by `cairn serve`: server-rendered HTML (maud) with its one
//! stylesheet embedded in the binary, no JavaScript, no external requests. Pages: overview
//! ([`overview`]), models ([`models`]), experiments ([`experiments`]), data quality and drift
//! ([`drift`]), items and users ([`catalog`]), live preview ([`preview`]), evaluation reports
//! ([`reports`]). docs/DASHBOARD.md describes them.
//!
//! Every page goes through the engine exactly as the API's handlers do ([`AppState::run`] for
//! store operations, [`AppState::score`] for recommendations); the dashboard adds no logic of its
//! own beyond formatting and bounded scans for its searches.
//!
//! Access ([`session`]): once API keys exist, a login with an `admin` key opens a session (an
//! HTTP-only, `SameSite=Strict` cookie, `Secure` under TLS); while none exists the dashboard is
//! open where the API is (loopback, or `auth.insecure`). Every form that changes anything is a
//! POST carrying the session's CSRF token, checked here for all of them before any handler runs
//! (403 without it).

mod catalog;
mod drift;
mod experiments;
pub mod live;
mod models;
mod overview;
pub mod popularity;
mod preview;
mod reports;
pub mod session;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::{html, Markup, DOCTYPE};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;
use live::Ring;
use session::{Session, Sessions, LOGIN_COOKIE, SESSION_COOKIE};

/// Largest form body accepted.
const MAX_FORM_BYTES: usize = 64 * 1024;

const STYLE: &str = include_str!("style.css");

/// What the dashboard's handlers share.
#[derive(Clone)]
pub(crate) struct Dash {
    pub app: AppState,
    pub sessions: Arc<Sessions>,
    pub ring: Arc<Ring>,
    /// Each item's events per day, for the item page (see [`popularity`]).
    pub item_days: Arc<popularity::ItemDays>,
    /// Unix seconds when this router was built (the server's start, for the retraining clock).
    pub started_at: i64,
    /// Cookies get `Secure` (TLS is configured).
    pub secure: bool,
}

/// The dashboard's routes, to merge into the API's router; starts the overview's sampler.
pub fn router<S: Clone + Send + Sync + 'static>(app: &AppState) -> Router<S> {
    let ring = Arc::new(Ring::new(live::SAMPLES_KEPT));
    live::spawn_sampler(&app.engine, &app.metrics.live, &ring);
    let item_days = Arc::new(popularity::ItemDays::default());
    popularity::spawn_counter(&app.engine, &item_days);
    let server = &app.engine.config().server;
    let dash = Dash {
        app: app.clone(),
        sessions: Arc::new(Sessions::default()),
        ring,
        item_days,
        started_at: cairn_core::now_unix(),
        secure: server.tls_cert.is_some() && server.tls_key.is_some(),
    };
    let protected = Router::new()
        .route("/", get(overview::page))
        .route("/models", get(models::page))
        .route(
            "/models/confirm",
            get(models::confirm).post(models::confirmed),
        )
        .route(
            "/experiments",
            get(experiments::list).post(experiments::create),
        )
        .route("/experiments/{id}", get(experiments::show))
        .route(
            "/experiments/{id}/confirm",
            get(experiments::confirm).post(experiments::confirmed),
        )
        .route("/drift", get(drift::page))
        .route("/items", get(catalog::items))
        .route("/items/{id}", get(catalog::item))
        .route("/users", get(catalog::users))
        .route("/users/{id}", get(catalog::user))
        .route("/preview", get(preview::page))
        .route("/reports", get(reports::list))
        .route("/reports/{name}", get(reports::open))
        .route("/logout", post(logout))
        .layer(axum::middleware::from_fn_with_state(dash.clone(), gate));
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/assets/dashboard.css", get(stylesheet))
        .merge(protected)
        .layer(axum::middleware::from_fn(headers))
        .with_state(dash)
}

// ----- errors and extractors -----

/// A page that could not be shown: an HTML error page with its status.
#[derive(Debug)]
pub(crate) struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> PageError {
        PageError {
            status,
            message: message.into(),
        }
    }

    pub fn bad(message: impl Into<String>) -> PageError {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError::new(e.status, e.message)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self
            .status
            .canonical_reason()
            .unwrap_or("Error")
            .to_string();
        let body = html! {
            (DOCTYPE)
            html lang="en" {
                head { (head(&title)) }
                body {
                    main.narrow {
                        h1 { (self.status.as_u16()) " " (title) }
                        p.error role="alert" { (self.message) }
                        p { a href="/" { "Back to the overview" } }
                    }
                }
            }
        };
        (self.status, Html(body.into_string())).into_response()
    }
}

/// A query string, whose errors are 400 pages.
pub(crate) struct Q<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(q) => Ok(Q(q.0)),
            Err(e) => Err(PageError::bad(format!("bad query: {}", e.body_text()))),
        }
    }
}

/// A path parameter, whose errors are 400 pages.
pub(crate) struct P<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for P<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(p) => Ok(P(p.0)),
            Err(e) => Err(PageError::bad(format!("bad path: {}", e.body_text()))),
        }
    }
}

/// A url-encoded form body, whose errors are 400 pages.
pub(crate) struct F<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for F<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(f) => Ok(F(f.0)),
            Err(e) => Err(PageError::new(
                e.status(),
                format!("bad form: {}", e.body_text()),
            )),
        }
    }
}

// ----- layout -----

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · Cairn" }
        link rel="stylesheet" href="/assets/dashboard.css";
        link rel="icon" href="data:,";
    }
}

/// The pages in the navigation: (path, label).
const NAV: [(&str, &str); 8] = [
    ("/", "Overview"),
    ("/models", "Models"),
    ("/experiments", "Experiments"),
    ("/drift", "Data quality"),
    ("/items", "Items"),
    ("/users", "Users"),
    ("/preview", "Preview"),
    ("/reports", "Evaluation"),
];

/// A whole page: the navigation (with `active` marked), who is logged in, and `body`.
pub(crate) fn layout(title: &str, active: &str, session: &Session, body: Markup) -> Html<String> {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body {
                header.top {
                    a.brand href="/" { "Cairn" }
                    nav aria-label="Dashboard" {
                        ul {
                            @for (path, label) in NAV {
                                li {
                                    @if path == active {
                                        a href=(path) aria-current="page" { (label) }
                                    } @else {
                                        a href=(path) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        span.muted { (session.who) }
                        @if session.key_id.is_some() {
                            form method="post" action="/logout" {
                                (csrf_field(session))
                                button id="logout" type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    };
    Html(page.into_string())
}

/// The hidden CSRF field every POST form carries.
pub(crate) fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// Where a page's figures and actions are explained: a section of docs/OPERATIONS.md (the
/// dashboard links no other host, so this names the file in the repository and the section).
pub(crate) fn doc_ref(section: &str) -> Markup {
    html! {
        p.muted.docs {
            "Explained in " code { "docs/OPERATIONS.md" } ", section “" (section) "”."
        }
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn when(unix: i64) -> String {
    let ts = cairn_core::Timestamp(unix).to_rfc3339();
    ts.replace('T', " ")
        .replace("+00:00", " UTC")
        .replace('Z', " UTC")
}

/// A duration in seconds as `3 d 4 h`, `5 h 2 min`, `40 s`.
pub(crate) fn ago(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

// ----- middleware -----

/// Security headers on every dashboard response, and `Server-Timing` with the time the handler
/// took (what scripts/dashboard-timing.sh reads).
async fn headers(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let mut response = next.run(req).await;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let h = response.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                 frame-ancestors 'none'; base-uri 'none'",
            ),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.3}")) {
        h.insert("server-timing", v);
    }
    response
}

/// The session check in front of every page, and the CSRF check of every POST.
async fn gate(State(dash): State<Dash>, req: Request, next: Next) -> Response {
    let engine = &dash.app.engine;
    let has_keys = engine.has_keys();
    let found = session::cookie(req.headers(), SESSION_COOKIE)
        .and_then(|t| dash.sessions.get(t).map(|s| (t.to_string(), s)));
    let valid = found.filter(|(_, s)| match &s.key_id {
        // A key's session lasts while the key does (revoking it logs the browser out).
        Some(id) => engine.list_keys().iter().any(|k| &k.id == id),
        // An anonymous session only while no key exists and the server runs open.
        None => !has_keys && dash.app.keyless_open,
    });
    let (session, new_cookie) =
        match valid {
            Some((_, s)) => (s, None),
            None if !has_keys && dash.app.keyless_open => {
                let (token, s) = dash
                    .sessions
                    .open(None, "open mode (no API keys)".to_string());
                (s, Some(token))
            }
            None if has_keys => {
                if req.method() == Method::GET || req.method() == Method::HEAD {
                    return Redirect::to("/login").into_response();
                }
                return PageError::new(
                    StatusCode::UNAUTHORIZED,
                    "log in first: this page needs a session (POST /login with an admin key)",
                )
                .into_response();
            }
            None => return PageError::new(
                StatusCode::FORBIDDEN,
                "no API key exists and this server is not on a loopback address; create an admin \
                 key (`cairn keys create --scope admin --name ops`) and log in with it",
            )
            .into_response(),
        };
    let req = if req.method() == Method::GET || req.method() == Method::HEAD {
        req
    } else {
        match check_csrf(req, &session).await {
            Ok(req) => req,
            Err(e) => return e.into_response(),
        }
    };
    let mut req = req;
    req.extensions_mut().insert(session);
    let mut response = next.run(req).await;
    if let Some(token) = new_cookie {
        response.headers_mut().append(
            header::SET_COOKIE,
            session::set_cookie(SESSION_COOKIE, &token, session::SESSION_SECS, dash.secure),
        );
    }
    response
}

/// Reads the form body (at most [`MAX_FORM_BYTES`]), checks its `csrf` field against the
/// session's token, and puts the body back for the handler. 403 without a matching token.
async fn check_csrf(req: Request, session: &Session) -> Result<Request, PageError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            PageError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the form is larger than {MAX_FORM_BYTES} bytes"),
            )
        })?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
        .map_err(|e| PageError::bad(format!("the form is not url-encoded: {e}")))?;
    let token = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v);
    match token {
        Some(t) if session.csrf_ok(t) => Ok(Request::from_parts(parts, bytes.into())),
        _ => Err(PageError::new(
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or wrong; reload the page and submit it again",
        )),
    }
}

// ----- login, logout, assets -----

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

fn login_page(status: StatusCode, message: Option<&str>, secure: bool) -> Response {
    let token = session::random_token();
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head { (head("Log in")) }
            body {
                main.narrow {
                    h1 { "Cairn dashboard" }
                    @if let Some(m) = message { p.error role="alert" { (m) } }
                    form.stack method="post" action="/login" {
                        input type="hidden" name="csrf" value=(token);
                        label for="key" { "Admin API key" }
                        input id="key" name="key" type="password" autocomplete="current-password" required autofocus;
                        button type="submit" { "Log in" }
                    }
                    p.muted { "Create one with " code { "cairn keys create --scope admin --name ops" } "." }
                }
            }
        }
    };
    let mut response = (status, Html(body.into_string())).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(LOGIN_COOKIE, &token, session::LOGIN_SECS, secure),
    );
    response
}

async fn login_form(State(dash): State<Dash>) -> Response {
    if !dash.app.engine.has_keys() {
        // Nothing to log in with: the pages are open (or refused) as the API is.
        return Redirect::to("/").into_response();
    }
    login_page(StatusCode::OK, None, dash.secure)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
}

async fn login(
    State(dash): State<Dash>,
    headers: axum::http::HeaderMap,
    F(form): F<LoginForm>,
) -> Response {
    let expected = session::cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !session::constant_time_eq(expected.as_bytes(), form.csrf.as_bytes())
    {
        return PageError::new(
            StatusCode::FORBIDDEN,
            "the login form's CSRF token is missing or wrong; open /login again",
        )
        .into_response();
    }
    let engine = Arc::clone(&dash.app.engine);
    let token = form.key.trim().to_string();
    let key = tokio::task::spawn_blocking(move || engine.authenticate(&token))
        .await
        .ok()
        .flatten();
    let Some(key) = key else {
        return login_page(
            StatusCode::UNAUTHORIZED,
            Some("That key is not valid (unknown or revoked)."),
            dash.secure,
        );
    };
    if !key.scope.allows(cairn_engine::Scope::Admin) {
        return login_page(
            StatusCode::FORBIDDEN,
            Some("The dashboard needs a key with scope admin."),
            dash.secure,
        );
    }
    let who = format!("{} ({})", key.name, key.id);
    audit(
        &dash,
        &key.id,
        &key.name,
        "POST /login (dashboard)",
        None,
        303,
    )
    .await;
    let (token, _) = dash.sessions.open(Some(key.id), who);
    let mut response = Redirect::to("/").into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        session::set_cookie(SESSION_COOKIE, &token, session::SESSION_SECS, dash.secure),
    );
    h.append(
        header::SET_COOKIE,
        session::set_cookie(LOGIN_COOKIE, "", 0, dash.secure),
    );
    response
}

async fn logout(State(dash): State<Dash>, headers: axum::http::HeaderMap) -> Response {
    if let Some(token) = session::cookie(&headers, SESSION_COOKIE) {
        dash.sessions.close(token);
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(SESSION_COOKIE, "", 0, dash.secure),
    );
    response
}

/// Records a dashboard action in the audit log, as the API records its admin requests.
pub(crate) async fn audit(
    dash: &Dash,
    key_id: &str,
    key_name: &str,
    action: &str,
    target: Option<String>,
    status: u16,
) {
    let record = cairn_engine::AuditRecord {
        seq: 0,
        at: cairn_core::now_unix(),
        key_id: key_id.to_string(),
        key_name: key_name.to_string(),
        action: action.to_string(),
        target,
        status,
    };
    if let Err(e) = dash.app.run(move |e| e.record_audit(record)).await {
        tracing::error!(code = e.code, message = %e.message, "cannot write the audit log");
    }
}

/// The audit identity of a session: its key's id and name, or the open mode's.
pub(crate) fn audit_identity(session: &Session) -> (String, String) {
    match &session.key_id {
        Some(id) => (id.clone(), session.who.clone()),
        None => ("anonymous".into(), "no keys (open mode)".into()),
    }
}

/// `Extension<Session>` under a shorter name.
pub(crate) type Sess = Extension<Session>;
