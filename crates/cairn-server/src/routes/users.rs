//! `/v1/users`: user rows, their history, and erasure.

use axum::extract::State;
use axum::Json;
use cairn_core::User;
use cairn_engine::Engine;
use serde_json::{Map, Value};

use super::{put_batch, put_one, recorded};
use crate::dto::{
    non_empty, HistoryParams, PageParams, Upserted, UserBatch, UserErased, UserHistory, UserPage,
    DEFAULT_PAGE,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

/// Create or replace one user. The body's `id` may be omitted; when given it must equal the path's.
#[utoipa::path(
    put, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    request_body = User,
    responses(
        (status = 200, description = "The stored user", body = User),
        (status = 400, description = "Invalid user, or body id differs from the path", body = ErrorBody),
    )
)]
pub async fn put_user(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Result<Json<User>, ApiError> {
    put_one(&state, &id, body, Engine::put_users).await
}

/// Create or replace many users in one atomic write.
#[utoipa::path(
    post, path = "/v1/users", tag = "users",
    request_body = UserBatch,
    responses(
        (status = 200, description = "All users stored", body = Upserted),
        (status = 400, description = "Some user is invalid; nothing was stored", body = ErrorBody),
    )
)]
pub async fn put_users(
    State(state): State<AppState>,
    batch: Result<ApiJson<UserBatch>, ApiError>,
) -> Result<Json<Upserted>, ApiError> {
    let result = match batch {
        Ok(ApiJson(batch)) => put_batch(&state, batch.users, Engine::put_users).await,
        Err(e) => Err(e),
    };
    recorded(&state, "POST /v1/users", result).await
}

/// One user row.
#[utoipa::path(
    get, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 404, description = "No such user row (`user_not_found`)", body = ErrorBody),
    )
)]
pub async fn get_user(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(state.run(move |e| e.get_user(&id)).await?))
}

/// Erase a user (right to erasure): the user row, every event of theirs with its idempotency
/// record, their seen items, the kept pages of their lists (their cursors expire), and their id in
/// the audit log (replaced by `[erased]`, the entries kept; this request is audited without it).
/// Their recommendations fall back at once to those of a user never seen; the next training, which
/// this makes due, leaves them out of the model; the next compaction (`POST /v1/compact`, or a
/// clean stop) takes their bytes out of the store file. 404 when nothing was stored (audit entries
/// naming the id are scrubbed all the same).
#[utoipa::path(
    delete, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "What was erased", body = UserErased),
        (status = 404, description = "Neither a user row nor events existed (`user_not_found`)", body = ErrorBody),
    )
)]
pub async fn delete_user(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<UserErased>, ApiError> {
    let user_id = id.clone();
    let deleted = state.run(move |e| e.delete_user(&id)).await?;
    Ok(Json(UserErased {
        user_id,
        user_existed: deleted.user_existed,
        events_removed: deleted.events_removed,
    }))
}

/// User rows in id order, a page at a time.
#[utoipa::path(
    get, path = "/v1/users", tag = "users",
    params(PageParams),
    responses(
        (status = 200, description = "One page", body = UserPage),
        (status = 400, description = "Bad `limit` or unknown parameter", body = ErrorBody),
    )
)]
pub async fn list_users(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<UserPage>, ApiError> {
    let cursor = non_empty(params.cursor);
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    let page = state
        .run(move |e| e.list_users(cursor.as_deref(), limit))
        .await?;
    Ok(Json(UserPage {
        users: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// The user's events, newest first, a page at a time back to the first event. A user without
/// events (or never seen) has an empty history rather than a 404: events may name users that have
/// no row.
#[utoipa::path(
    get, path = "/v1/users/{id}/events", tag = "users",
    params(("id" = String, Path, description = "User id"), HistoryParams),
    responses(
        (status = 200, description = "One page of events", body = UserHistory),
        (status = 400, description = "Bad `limit` or `cursor`, or unknown parameter", body = ErrorBody),
    )
)]
pub async fn user_events(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> Result<Json<UserHistory>, ApiError> {
    let cursor = non_empty(params.cursor);
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    let user_id = id.clone();
    let page = state
        .run(move |e| e.user_events_page(&id, cursor.as_deref(), limit))
        .await?;
    Ok(Json(UserHistory {
        user_id,
        events: page.items,
        next_cursor: page.next_cursor,
    }))
}
