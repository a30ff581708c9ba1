//! `/v1/keys` and `/v1/audit`: API keys (created, listed, revoked) and the audit log of administrative
//! requests. All need an `admin` key (see [`crate::auth`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cairn_engine::{ApiKey, AuditRecord, RateLimit, Scope};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::dto::{non_empty, DEFAULT_PAGE};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// What the key is for, e.g. `backend` (1 to 100 characters).
    pub name: String,
    /// `read`, `ingest` or `admin`; each includes the ones before it.
    #[schema(example = "read")]
    pub scope: String,
    /// The key's own rate limit in requests per second (0: this key is not limited); absent: the
    /// configured default (`auth.rate_limit_per_sec`) applies to it.
    #[serde(default)]
    #[schema(example = 50.0)]
    pub rate_limit_per_sec: Option<f64>,
    /// Requests the key may make at once; only with `rate_limit_per_sec`, whose value rounded up
    /// it defaults to.
    #[serde(default)]
    #[schema(example = 100)]
    pub rate_limit_burst: Option<u32>,
}

/// A key, without its token.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub scope: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the key's last request; null when none. Kept in memory on every request
    /// and written to the store at most once a minute per key, so after a restart it may be up to a
    /// minute old.
    pub last_used_at: Option<i64>,
    /// The key's own rate limit (requests per second, 0: not limited); null: the configured
    /// default applies.
    pub rate_limit_per_sec: Option<f64>,
    /// The key's own burst; null with `rate_limit_per_sec`.
    pub rate_limit_burst: Option<u32>,
}

/// A key just created. `token` is shown this once: the server keeps only its SHA-256 digest.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedKeyBody {
    #[serde(flatten)]
    pub key: KeyInfo,
    /// Send as `Authorization: Bearer <token>`. Store it now; it cannot be shown again.
    pub token: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

/// One administrative request.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Position in the log (1 = oldest).
    pub seq: u64,
    /// When, in Unix seconds.
    pub at: i64,
    /// Who: the key's id (`anonymous` while no key existed) and name.
    pub key_id: String,
    pub key_name: String,
    /// What: method and path, e.g. `DELETE /v1/users/u1`.
    pub action: String,
    /// The resource acted on (the path's id), if any.
    pub target: Option<String>,
    /// The HTTP status it was answered with.
    pub status: u16,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// `next_cursor` of the previous page; absent for the newest entries.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<usize>,
}

impl From<ApiKey> for KeyInfo {
    fn from(k: ApiKey) -> Self {
        KeyInfo {
            id: k.id,
            name: k.name,
            scope: k.scope.to_string(),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            rate_limit_per_sec: k.rate_limit.map(|l| l.per_sec),
            rate_limit_burst: k.rate_limit.map(|l| l.burst),
        }
    }
}

impl From<AuditRecord> for AuditEntry {
    fn from(r: AuditRecord) -> Self {
        AuditEntry {
            seq: r.seq,
            at: r.at,
            key_id: r.key_id,
            key_name: r.key_name,
            action: r.action,
            target: r.target,
            status: r.status,
        }
    }
}

/// Create an API key. The response holds the token, shown this once.
#[utoipa::path(
    post, path = "/v1/keys", tag = "access",
    request_body = NewKey,
    responses(
        (status = 201, description = "The key and its token", body = CreatedKeyBody),
        (status = 400, description = "Unknown scope, bad name or bad rate limit (`invalid_argument`)", body = ErrorBody),
    )
)]
pub async fn create_key(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<CreatedKeyBody>), ApiError> {
    let scope: Scope = body
        .scope
        .parse()
        .map_err(|e: cairn_engine::access::UnknownScope| {
            ApiError::invalid("scope", e.to_string())
        })?;
    let limit = RateLimit::from_request(body.rate_limit_per_sec, body.rate_limit_burst)?;
    let created = state
        .run(move |e| e.create_key_limited(&body.name, scope, limit))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKeyBody {
            key: created.key.into(),
            token: created.token,
        }),
    ))
}

/// Every API key, oldest first (never a token).
#[utoipa::path(
    get, path = "/v1/keys", tag = "access",
    responses((status = 200, description = "The keys", body = KeyList))
)]
pub async fn list_keys(State(state): State<AppState>) -> Json<KeyList> {
    Json(KeyList {
        keys: state
            .engine
            .list_keys()
            .into_iter()
            .map(KeyInfo::from)
            .collect(),
    })
}

/// Revoke an API key: requests with its token are refused from now on.
#[utoipa::path(
    delete, path = "/v1/keys/{id}", tag = "access",
    params(("id" = String, Path, description = "Key id (`key_...`)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such key (`key_not_found`)", body = ErrorBody),
    )
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let revoked = state.run(move |e| e.revoke_key(&id)).await?;
    state.rate_limiter.forget(&revoked.id);
    Ok(StatusCode::NO_CONTENT)
}

/// The audit log of administrative requests (who, what, when, outcome), newest first.
#[utoipa::path(
    get, path = "/v1/audit", tag = "access",
    params(AuditParams),
    responses(
        (status = 200, description = "One page", body = AuditPage),
        (status = 400, description = "Bad `limit` or `cursor`", body = ErrorBody),
    )
)]
pub async fn audit(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    let cursor = non_empty(params.cursor);
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    let page = state
        .run(move |e| e.audit(cursor.as_deref(), limit))
        .await?;
    Ok(Json(AuditPage {
        entries: page.items.into_iter().map(AuditEntry::from).collect(),
        next_cursor: page.next_cursor,
    }))
}
