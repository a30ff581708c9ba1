//! The data as a whole: backups while serving, and everything stored about one user.

use std::path::PathBuf;

use axum::extract::State;
use axum::Json;
use cairn_core::{StoredEvent, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// An absolute path on the server's machine, to an empty or new folder.
    pub path: String,
}

/// What a backup wrote: a folder that is itself a data directory.
#[derive(Serialize, ToSchema)]
pub struct BackupResult {
    pub path: String,
    pub items: u64,
    pub users: u64,
    pub events: u64,
    /// Every event up to this log position is in the backup, none after.
    pub last_seq: u64,
    /// The model saved beside the store; absent before the first training.
    pub model_version: Option<String>,
    /// Files copied from the experiments folder (definitions, history, attribution log).
    pub experiment_files: u64,
}

/// What a compaction rewrote.
#[derive(Serialize, ToSchema)]
pub struct CompactResult {
    /// Size of the store file before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Live rows carried into the rewritten file.
    pub items: u64,
    pub users: u64,
    pub events: u64,
}

/// Everything stored about one user.
#[derive(Serialize, ToSchema)]
pub struct UserExport {
    pub user_id: String,
    /// The user row, when there is one (events may name users that have none).
    pub user: Option<User>,
    /// Every stored event of the user, oldest first.
    pub events: Vec<StoredEvent>,
}

/// Write a consistent copy of the store, the model being served and the experiments folder into
/// an empty folder on the server's machine, while requests and writes go on. Restore it with
/// `cairn restore PATH` (server stopped), or serve it as it is with `cairn serve --data-dir PATH`.
/// Not subject to the request timeout.
#[utoipa::path(
    post, path = "/v1/backup", tag = "operations",
    request_body = BackupRequest,
    responses(
        (status = 200, description = "The backup is complete and synced to disk", body = BackupResult),
        (status = 400, description = "The path is relative (`invalid_argument`)", body = ErrorBody),
        (status = 422, description = "The folder is not empty (`unprocessable`)", body = ErrorBody),
    )
)]
pub async fn backup(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<BackupRequest>,
) -> Result<Json<BackupResult>, ApiError> {
    let path = PathBuf::from(&body.path);
    if !path.is_absolute() {
        return Err(ApiError::invalid(
            "path",
            format!(
                "`{}` is relative; give an absolute path on the server's machine",
                body.path
            ),
        ));
    }
    let b = state.run(move |e| e.backup(&path)).await?;
    Ok(Json(BackupResult {
        path: b.path.display().to_string(),
        items: b.items,
        users: b.users,
        events: b.events,
        last_seq: b.last_seq,
        model_version: b.model_version,
        experiment_files: b.experiment_files,
    }))
}

/// Rewrite the store file from its live rows and swap it in, so that nothing erased
/// (`DELETE /v1/users/{id}`) or expired (`privacy.retention_days`) survives in it, not even in the
/// file's free pages. Requests wait while it copies (as long as one backup of the live data).
/// Not subject to the request timeout.
#[utoipa::path(
    post, path = "/v1/compact", tag = "operations",
    responses(
        (status = 200, description = "The store file was rewritten and synced to disk", body = CompactResult),
    )
)]
pub async fn compact(State(state): State<AppState>) -> Result<Json<CompactResult>, ApiError> {
    let c = state.run(|e| e.compact()).await?;
    Ok(Json(CompactResult {
        bytes_before: c.bytes_before,
        bytes_after: c.bytes_after,
        items: c.items,
        users: c.users,
        events: c.events,
    }))
}

/// Everything stored about a user: the user row and every event (the right of access). A user
/// never seen exports with no row and no events.
#[utoipa::path(
    get, path = "/v1/users/{id}/export", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user's data", body = UserExport),
        (status = 400, description = "Invalid id", body = ErrorBody),
    )
)]
pub async fn export_user(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<UserExport>, ApiError> {
    let x = state.run(move |e| e.export_user(&id)).await?;
    Ok(Json(UserExport {
        user_id: x.user_id,
        user: x.user,
        events: x.events,
    }))
}
