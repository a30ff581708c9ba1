//! Stored access records: API keys (only the SHA-256 digest of a token, never the token) and the audit
//! log of administrative actions. Plain data; the engine decides what a scope allows.

use serde::{Deserialize, Serialize};

/// One API key as stored. `digest` is the hex SHA-256 of the token; the token itself is never stored.
/// Fields added after the first release carry `#[serde(default)]`, so records written before them
/// still load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Public identifier (`key_...`), shown in listings and the audit log.
    pub id: String,
    pub name: String,
    /// `read`, `ingest` or `admin`.
    pub scope: String,
    /// Lowercase hex SHA-256 of the token.
    pub digest: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last authenticated request, if one was recorded (the server keeps it in
    /// memory and writes it at most once a minute per key).
    #[serde(default)]
    pub last_used_at: Option<i64>,
    /// The key's own rate limit in requests per second (0: none); `None`: the configured default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_sec: Option<f64>,
    /// The key's own burst (requests at once), set with `rate_limit_per_sec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_burst: Option<u32>,
}

/// One administrative action: who did what, when, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the log, assigned by the store (1, 2, ...); ignored on append.
    pub seq: u64,
    /// Unix seconds.
    pub at: i64,
    /// The key's id, or `anonymous` when the server ran without keys.
    pub key_id: String,
    pub key_name: String,
    /// HTTP method and path, e.g. `DELETE /v1/users/u1`.
    pub action: String,
    /// The resource acted on (the path's id), when there is one.
    #[serde(default)]
    pub target: Option<String>,
    /// The HTTP status the action was answered with.
    pub status: u16,
}
