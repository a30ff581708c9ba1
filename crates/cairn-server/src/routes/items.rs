//! `/v1/items`: the catalog.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cairn_core::Item;
use cairn_engine::Engine;
use serde_json::{Map, Value};

use super::{put_batch, put_one, recorded};
use crate::dto::{non_empty, ItemBatch, ItemPage, PageParams, Upserted, DEFAULT_PAGE};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

/// Create or replace one item.
///
/// The body is a full item; its `id` may be omitted, and when given must equal the id in the path.
/// Replacing is whole: fields left out are cleared.
#[utoipa::path(
    put, path = "/v1/items/{id}", tag = "items",
    params(("id" = String, Path, description = "Item id")),
    request_body = Item,
    responses(
        (status = 200, description = "The stored item", body = Item),
        (status = 400, description = "Invalid item, or body id differs from the path", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    )
)]
pub async fn put_item(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Result<Json<Item>, ApiError> {
    put_one(&state, &id, body, Engine::put_items).await
}

/// Create or replace many items at once: all are validated first, then stored in one atomic write.
#[utoipa::path(
    post, path = "/v1/items", tag = "items",
    request_body = ItemBatch,
    responses(
        (status = 200, description = "All items stored", body = Upserted),
        (status = 400, description = "Some item is invalid (the field names it); nothing was stored", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
    )
)]
pub async fn put_items(
    State(state): State<AppState>,
    batch: Result<ApiJson<ItemBatch>, ApiError>,
) -> Result<Json<Upserted>, ApiError> {
    let result = match batch {
        Ok(ApiJson(batch)) => put_batch(&state, batch.items, Engine::put_items).await,
        Err(e) => Err(e),
    };
    recorded(&state, "POST /v1/items", result).await
}

/// One item.
#[utoipa::path(
    get, path = "/v1/items/{id}", tag = "items",
    params(("id" = String, Path, description = "Item id")),
    responses(
        (status = 200, description = "The item", body = Item),
        (status = 404, description = "No such item (`item_not_found`)", body = ErrorBody),
    )
)]
pub async fn get_item(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Item>, ApiError> {
    Ok(Json(state.run(move |e| e.get_item(&id)).await?))
}

/// Delete an item. Its events stay in the log as history; it is never recommended again.
#[utoipa::path(
    delete, path = "/v1/items/{id}", tag = "items",
    params(("id" = String, Path, description = "Item id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such item (`item_not_found`)", body = ErrorBody),
    )
)]
pub async fn delete_item(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.run(move |e| e.delete_item(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Items in id order, a page at a time.
#[utoipa::path(
    get, path = "/v1/items", tag = "items",
    params(PageParams),
    responses(
        (status = 200, description = "One page", body = ItemPage),
        (status = 400, description = "Bad `limit` or unknown parameter", body = ErrorBody),
    )
)]
pub async fn list_items(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<ItemPage>, ApiError> {
    let cursor = non_empty(params.cursor);
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    let page = state
        .run(move |e| e.list_items(cursor.as_deref(), limit))
        .await?;
    Ok(Json(ItemPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}
