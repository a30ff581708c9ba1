//! Recommendation lists. Every list leaves out hidden items and items outside their availability
//! window, and carries a `recommendation_id` for attribution.

use axum::extract::State;
use axum::Json;
use cairn_engine::RecommendRequest;

use crate::dto::{non_empty, ListParams, RecommendParams, RecommendationList};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

/// Personalised recommendations from the user's recent events (new events count at once), topped
/// up with popular items. Users without history get popular items. Empty before the first training.
#[utoipa::path(
    get, path = "/v1/users/{id}/recommendations", tag = "recommendations",
    params(("id" = String, Path, description = "User id"), RecommendParams),
    responses(
        (status = 200, description = "Best first", body = RecommendationList),
        (status = 400, description = "`k` out of range or a bad parameter", body = ErrorBody),
    )
)]
pub async fn for_user(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    ApiQuery(params): ApiQuery<RecommendParams>,
) -> Result<Json<RecommendationList>, ApiError> {
    let req = RecommendRequest {
        user_id,
        k: params.k.unwrap_or(state.engine.config().serve.default_k),
        exclude_seen: params.exclude_seen.unwrap_or(true),
        category: non_empty(params.category),
    };
    let list = state.run(move |e| e.recommend(&req)).await?;
    Ok(Json(list.into()))
}

/// Items similar to this one (often chosen by the same users), topped up with popular items of its
/// categories.
#[utoipa::path(
    get, path = "/v1/items/{id}/similar", tag = "recommendations",
    params(("id" = String, Path, description = "Item id"), ListParams),
    responses(
        (status = 200, description = "Best first", body = RecommendationList),
        (status = 400, description = "`k` out of range or a bad parameter", body = ErrorBody),
        (status = 404, description = "No such item (`item_not_found`)", body = ErrorBody),
    )
)]
pub async fn similar(
    State(state): State<AppState>,
    ApiPath(item_id): ApiPath<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<RecommendationList>, ApiError> {
    let k = params.k.unwrap_or(state.engine.config().serve.default_k);
    let category = non_empty(params.category);
    let list = state
        .run(move |e| e.similar_items(&item_id, k, category.as_deref()))
        .await?;
    Ok(Json(list.into()))
}

/// The most popular items (time-decayed), optionally in one category.
#[utoipa::path(
    get, path = "/v1/popular", tag = "recommendations",
    params(ListParams),
    responses(
        (status = 200, description = "Best first", body = RecommendationList),
        (status = 400, description = "`k` out of range or a bad parameter", body = ErrorBody),
    )
)]
pub async fn popular(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<RecommendationList>, ApiError> {
    let k = params.k.unwrap_or(state.engine.config().serve.default_k);
    let category = non_empty(params.category);
    let list = state
        .run(move |e| e.popular(k, category.as_deref()))
        .await?;
    Ok(Json(list.into()))
}

/// Items whose activity is surging in the recent window, optionally in one category.
#[utoipa::path(
    get, path = "/v1/trending", tag = "recommendations",
    params(ListParams),
    responses(
        (status = 200, description = "Best first", body = RecommendationList),
        (status = 400, description = "`k` out of range or a bad parameter", body = ErrorBody),
    )
)]
pub async fn trending(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<RecommendationList>, ApiError> {
    let k = params.k.unwrap_or(state.engine.config().serve.default_k);
    let category = non_empty(params.category);
    let list = state
        .run(move |e| e.trending(k, category.as_deref()))
        .await?;
    Ok(Json(list.into()))
}
