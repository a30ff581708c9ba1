//! Recommendation lists. Every list leaves out hidden items and items outside their availability
//! window, and carries a `recommendation_id` for attribution.

use axum::extract::State;
use axum::Json;
use cairn_engine::{Engine, EngineError, RecommendRequest, Recommendations};

use crate::dto::{non_empty, ListParams, RecommendBody, RecommendParams, RecommendationList};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

/// Personalised recommendations: the placement's pipeline (candidates from several retrievers,
/// a learned ranker, business rules, diversity, exploration) over the user's recent events, so new
/// events count at once. Users without history get popular and trending items, in their stated
/// categories when their properties name some. Empty before the first training.
#[utoipa::path(
    get, path = "/v1/users/{id}/recommendations", tag = "recommendations",
    params(("id" = String, Path, description = "User id"), RecommendParams),
    responses(
        (status = 200, description = "Best first", body = RecommendationList),
        (status = 400, description = "A bad parameter (`invalid_argument`), a filter that does not parse or is empty (`invalid_expression`), a category no item has (`unknown_category`) or a filter reading a property no item has (`unknown_property`); the message suggests the nearest known names", body = ErrorBody),
        (status = 410, description = "The cursor's list is no longer kept (`cursor_expired`)", body = ErrorBody),
    )
)]
pub async fn for_user(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    ApiQuery(params): ApiQuery<RecommendParams>,
) -> Result<Json<RecommendationList>, ApiError> {
    let body = RecommendBody {
        k: params.k,
        exclude_seen: params.exclude_seen,
        category: params.category,
        placement: params.placement,
        context: non_empty(params.context)
            .map(|c| c.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default(),
        filter: params.filter,
        cursor: params.cursor,
        ..RecommendBody::default()
    };
    recommend(state, user_id, body).await
}

/// The same as the GET, with boosts and pins in a JSON body.
#[utoipa::path(
    post, path = "/v1/users/{id}/recommendations", tag = "recommendations",
    params(("id" = String, Path, description = "User id")),
    request_body = RecommendBody,
    responses(
        (status = 200, description = "Best first", body = RecommendationList),
        (status = 400, description = "A bad parameter (`invalid_argument`), an expression that does not parse or is empty (`invalid_expression`), a category no item has (`unknown_category`) or an expression reading a property no item has (`unknown_property`); the message suggests the nearest known names", body = ErrorBody),
        (status = 410, description = "The cursor's list is no longer kept (`cursor_expired`)", body = ErrorBody),
    )
)]
pub async fn for_user_with_rules(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    ApiJson(body): ApiJson<RecommendBody>,
) -> Result<Json<RecommendationList>, ApiError> {
    recommend(state, user_id, body).await
}

/// Both forms of the request, with the server's defaults for what the client left out.
async fn recommend(
    state: AppState,
    user_id: String,
    body: RecommendBody,
) -> Result<Json<RecommendationList>, ApiError> {
    let req = engine_request(&state, user_id, body);
    let list = state.score(move |e| e.recommend(&req)).await?;
    Ok(Json(list.into()))
}

/// The engine's request for a user's body, with the server's defaults for what the client left
/// out (also what each request of a batch becomes).
pub(crate) fn engine_request(
    state: &AppState,
    user_id: String,
    body: RecommendBody,
) -> RecommendRequest {
    RecommendRequest {
        user_id,
        k: body.k.unwrap_or(state.engine.config().serve.default_k),
        exclude_seen: body.exclude_seen.unwrap_or(true),
        category: non_empty(body.category),
        placement: non_empty(body.placement),
        context_items: body.context,
        // An empty filter is an error, not "no filter" (docs/FILTERS.md).
        filter: body.filter,
        boosts: body
            .boosts
            .into_iter()
            .map(|b| (b.when, b.factor))
            .collect(),
        pins: body
            .pins
            .into_iter()
            .map(|p| (p.item, p.position))
            .collect(),
        cursor: non_empty(body.cursor),
    }
}

/// Items similar to this one (often chosen by the same users), topped up with popular items of its
/// categories.
#[utoipa::path(
    get, path = "/v1/items/{id}/similar", tag = "recommendations",
    params(("id" = String, Path, description = "Item id"), ListParams),
    responses(
        (status = 200, description = "Best first", body = RecommendationList),
        (status = 400, description = "`k` out of range or a bad parameter (`invalid_argument`), or a category no item has (`unknown_category`)", body = ErrorBody),
        (status = 404, description = "No such item (`item_not_found`)", body = ErrorBody),
    )
)]
pub async fn similar(
    State(state): State<AppState>,
    ApiPath(item_id): ApiPath<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<RecommendationList>, ApiError> {
    scored_list(&state, params, move |e, k, category| {
        e.similar_items(&item_id, k, category)
    })
    .await
}

/// The most popular items (time-decayed), optionally in one category.
#[utoipa::path(
    get, path = "/v1/popular", tag = "recommendations",
    params(ListParams),
    responses(
        (status = 200, description = "Best first", body = RecommendationList),
        (status = 400, description = "`k` out of range or a bad parameter (`invalid_argument`), or a category no item has (`unknown_category`)", body = ErrorBody),
    )
)]
pub async fn popular(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<RecommendationList>, ApiError> {
    scored_list(&state, params, move |e, k, category| e.popular(k, category)).await
}

/// Items whose activity is surging in the recent window, optionally in one category.
#[utoipa::path(
    get, path = "/v1/trending", tag = "recommendations",
    params(ListParams),
    responses(
        (status = 200, description = "Best first", body = RecommendationList),
        (status = 400, description = "`k` out of range or a bad parameter (`invalid_argument`), or a category no item has (`unknown_category`)", body = ErrorBody),
    )
)]
pub async fn trending(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<RecommendationList>, ApiError> {
    scored_list(&state, params, move |e, k, category| {
        e.trending(k, category)
    })
    .await
}

/// A non-personal list (similar, popular, trending): `k` or the configured default, the category
/// if one is given, scored on the scoring pool.
async fn scored_list<F>(
    state: &AppState,
    params: ListParams,
    list: F,
) -> Result<Json<RecommendationList>, ApiError>
where
    F: FnOnce(&Engine, usize, Option<&str>) -> Result<Recommendations, EngineError>
        + Send
        + 'static,
{
    let k = params.k.unwrap_or(state.engine.config().serve.default_k);
    let category = non_empty(params.category);
    let list = state
        .score(move |e| list(e, k, category.as_deref()))
        .await?;
    Ok(Json(list.into()))
}
