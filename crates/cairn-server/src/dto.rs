//! Wire types of the API that are not domain types: request envelopes, query parameters, responses.
//! Request types deny unknown fields so a misspelt key is an error instead of a silent no-op.

use cairn_core::{Event, Item, StoredEvent, Timestamp, User};
use cairn_engine::{RecommendationSource, WarningCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Default page size of listings.
pub const DEFAULT_PAGE: usize = 100;

// ----- requests -----

/// Body of `POST /v1/items`: items created or replaced together, all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemBatch {
    pub items: Vec<Item>,
}

/// Body of `POST /v1/users`: users created or replaced together, all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserBatch {
    pub users: Vec<User>,
}

/// Body of `POST /v1/events`: events stored together, all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(examples(json!({"events": [
    {"event_id": "e-1", "user_id": "ann", "item_id": "kettle-1", "type": "purchase"},
    {"user_id": "ann", "item_id": "mug-1", "type": "rating", "value": 4.5, "timestamp": "2026-11-20T10:00:00Z"}
]})))]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    pub events: Vec<Event>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// `next_cursor` of the previous page; absent or empty for the first page.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// `next_cursor` of the previous page (older events); absent or empty for the newest.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecommendParams {
    /// Number of items, 1 to `serve.max_k` (default `serve.default_k`).
    pub k: Option<usize>,
    /// Leave out items the user already interacted with (default true).
    pub exclude_seen: Option<bool>,
    /// Only items in this category; absent or empty for all. A category no item has is an error
    /// (`unknown_category`).
    pub category: Option<String>,
    /// Pipeline configuration (`serve.placements`), e.g. `home`, `item-page`, `cart`.
    pub placement: Option<String>,
    /// Comma-separated ids of items on the page (the viewed item, the cart's contents); an id the
    /// catalog does not have is answered with an `unknown_context_item` warning.
    pub context: Option<String>,
    /// Filter expression every item must satisfy, e.g. `category in ["jazz","blues"] and price < 20`;
    /// leave it out for no filter (an empty expression is an error).
    pub filter: Option<String>,
    /// `next_cursor` of an earlier response: the next page of that list (other parameters but `k`
    /// are ignored).
    pub cursor: Option<String>,
}

/// The full request, with boosts and pins that do not fit a query string.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[schema(examples(json!({
    "k": 5,
    "filter": "category == \"kitchen\" and price < 30",
    "boosts": [{"when": "brand == \"Acme\"", "factor": 1.5}],
    "pins": [{"item": "mug-1", "position": 1}]
})))]
#[serde(default, deny_unknown_fields)]
pub struct RecommendBody {
    /// Number of items, 1 to `serve.max_k` (default `serve.default_k`).
    pub k: Option<usize>,
    /// Leave out items the user already interacted with (default true).
    pub exclude_seen: Option<bool>,
    /// Only items in this category; absent or empty for all. A category no item has is an error
    /// (`unknown_category`).
    pub category: Option<String>,
    pub placement: Option<String>,
    /// Ids of items on the page (the viewed item, the cart's contents); an id the catalog does
    /// not have is answered with an `unknown_context_item` warning.
    pub context: Vec<String>,
    /// Filter expression every item must satisfy; leave it out for no filter (an empty
    /// expression is an error).
    pub filter: Option<String>,
    /// Items matching `when` get their relevance multiplied by `factor`.
    pub boosts: Vec<BoostRule>,
    /// Items shown at fixed positions of the first page. A pinned item that is unknown, hidden or
    /// unavailable is not placed, and a warning names it.
    pub pins: Vec<PinRule>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BoostRule {
    /// Expression, e.g. `new_release` or `tags contains "staff-pick"`.
    pub when: String,
    /// Positive multiplier: above 1 promotes, below 1 demotes.
    pub factor: f32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinRule {
    pub item: String,
    /// 1-based position on the first page.
    pub position: usize,
}

/// Most requests one `POST /v1/recommendations/batch` may carry; more is a 400 `invalid_argument`.
pub const MAX_BATCH_REQUESTS: usize = 100;

/// Body of `POST /v1/recommendations/batch`: up to [`MAX_BATCH_REQUESTS`] requests, each answered
/// on its own.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(examples(json!({"requests": [
    {"user_id": "ann", "k": 3},
    {"user_id": "bob", "k": 3, "category": "kitchen"}
]})))]
#[serde(deny_unknown_fields)]
pub struct BatchRecommendBody {
    /// Each is read on its own, so one malformed request fails only its own result.
    #[schema(value_type = Vec<BatchRecommendRequest>)]
    pub requests: Vec<serde_json::Value>,
}

/// One request of a batch: the user, and the body of `POST /v1/users/{id}/recommendations`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchRecommendRequest {
    pub user_id: String,
    #[serde(flatten)]
    pub body: RecommendBody,
}

/// The answer to a batch: one result per request, in the requests' order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(examples(json!({"results": [
    {"user_id": "ann", "status": 200, "recommendations": {
        "recommendation_id": "0b6f6a4e-3c1d-4f57-9a55-2f1d1c3e8b10",
        "model_version": "1764835200-50000",
        "items": [{"item_id": "teapot-1", "score": 0.82, "source": "item-knn", "reason": "because you bought \"Blue kettle\""}]
    }},
    {"user_id": "bob", "status": 400, "error": {
        "code": "invalid_argument",
        "message": "requests[1]: k: 0 is out of range; use 1 to 100",
        "field": "requests[1].k"
    }}
]})))]
pub struct BatchRecommendations {
    pub results: Vec<BatchResult>,
}

/// The answer to one request of a batch: `recommendations` when `status` is 200, else `error`,
/// with the code and message the single-user route would have answered.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchResult {
    /// The request's `user_id`; null when it had none.
    pub user_id: Option<String>,
    /// The HTTP status the single-user route would have answered.
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendations: Option<RecommendationList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::error::ErrorDetail>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Number of items, 1 to `serve.max_k` (default `serve.default_k`).
    pub k: Option<usize>,
    /// Only items in this category; absent or empty for all. A category no item has is an error
    /// (`unknown_category`).
    pub category: Option<String>,
}

/// Empty query values mean "not given": clients often build URLs like `?cursor=&limit=`.
pub fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

// ----- responses -----

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ItemPage {
    pub items: Vec<Item>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<User>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Upserted {
    /// How many resources were created or replaced.
    pub upserted: usize,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(examples(json!({"stored": 2, "duplicates": 0})))]
pub struct EventsStored {
    /// Events newly stored by this request.
    pub stored: usize,
    /// Events skipped because an event with the same `event_id` was stored before.
    pub duplicates: usize,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserErased {
    pub user_id: String,
    /// Whether a user row existed (events may name users that were never created).
    pub user_existed: bool,
    /// How many of the user's events were erased.
    pub events_removed: usize,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserHistory {
    pub user_id: String,
    /// Most recent first.
    pub events: Vec<StoredEvent>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(examples(json!({
    "recommendation_id": "0b6f6a4e-3c1d-4f57-9a55-2f1d1c3e8b10",
    "model_version": "1764835200-50000",
    "items": [
        {"item_id": "teapot-1", "score": 0.82, "source": "item-knn", "reason": "because you bought \"Blue kettle\""},
        {"item_id": "mug-1", "score": 0.64, "source": "popular", "reason": "popular in kitchen"}
    ],
    "next_cursor": "c-7f3a"
})))]
pub struct RecommendationList {
    /// Unique per response; send it back as `recommendation_id` on events for attribution.
    pub recommendation_id: String,
    /// Version of the model that produced the list; null before the first training.
    pub model_version: Option<String>,
    /// Best first.
    pub items: Vec<RecommendedItem>,
    /// Pass as `cursor` to get the next page of this list (never repeating an item); absent on the
    /// last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// What looked wrong in the request without making it wrong, e.g. an unknown context item or
    /// a pin that was not placed; absent when nothing did. Only the first page of a list carries
    /// warnings: a `cursor` request gets none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    /// The online experiment that served this list (see `/v1/experiments`); absent outside one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    /// The experiment's variant this user is in (`interleaved` for an interleaving experiment);
    /// absent outside an experiment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// Something suspicious about a request that was answered anyway.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Warning {
    /// Stable machine-readable code (the schema lists the values: see `warning_code_schema`).
    #[schema(schema_with = warning_code_schema)]
    pub code: WarningCode,
    /// What was noticed and what the server did about it, naming the offending value.
    pub message: String,
}

/// The schema of [`Warning::code`]: a string, one of the engine's warning codes (read from
/// [`WarningCode::ALL`], so the document cannot miss one).
fn warning_code_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(WarningCode::ALL.map(WarningCode::name)))
        .description(Some(
            "`unknown_context_item`: a context item the catalog does not have (ignored); \
             `unknown_pinned_item`: a pinned item the catalog does not have, and \
             `unavailable_pinned_item`: one that is hidden or outside its availability window \
             (neither is placed); `category_unavailable`: the category exists, but none of its \
             items can be listed now.",
        ))
        .build()
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecommendedItem {
    pub item_id: String,
    /// How strongly the list recommends the item, in [0, 1]; it never rises down a list, across
    /// all pages of the same list. The list's best-ranked item has 1 and the others their
    /// relevance relative to it (personal lists: the pipeline's relevance with boosts; similar
    /// items: the similarity; popular and trending: the popularity or trend score). An item placed
    /// where the list's order and its raw scores disagree (exploration, a reserved slot for a new
    /// item, a diversity pick) shares the mean score of the disagreeing run (isotonic regression).
    /// Popular
    /// items that fill or top up a list score below the last ranked item, scaled by their
    /// popularity; an item nobody has interacted with scores 0 there. A pinned item has the score
    /// of the slot it occupies. Scores compare items within one list, not across lists.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub score: f32,
    /// Which stage put the item here (the schema lists the values: see `source_schema`).
    #[schema(schema_with = source_schema)]
    pub source: RecommendationSource,
    /// A short human-readable explanation.
    pub reason: String,
}

/// The schema of [`RecommendedItem::source`]: a string, one of the engine's source names (the
/// values are read from [`RecommendationSource::ALL`], so the document cannot miss one).
fn source_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(
            RecommendationSource::ALL.map(RecommendationSource::name),
        ))
        .description(Some(
            "Which stage put the item here: a retriever of the pipeline (`embedding`, `item-knn`, \
             `content`, `category-popular`, `trending`, `new-items`, `popular`), `exploration` or \
             `pinned`. Similar-item lists are `item-knn` topped up with `popular`; the popular and \
             trending lists are `popular` and `trending`, and a personal list whose candidates \
             ran dry is filled with `popular`.",
        ))
        .build()
}

impl From<cairn_engine::Recommendations> for RecommendationList {
    fn from(r: cairn_engine::Recommendations) -> Self {
        RecommendationList {
            recommendation_id: r.recommendation_id,
            model_version: r.model_version,
            items: r
                .items
                .into_iter()
                .map(|i| RecommendedItem {
                    item_id: i.item_id,
                    score: i.score,
                    source: i.source,
                    reason: i.reason,
                })
                .collect(),
            next_cursor: r.next_cursor,
            warnings: r
                .warnings
                .into_iter()
                .map(|w| Warning {
                    code: w.code,
                    message: w.message,
                })
                .collect(),
            experiment: r.experiment.as_ref().map(|t| t.experiment.clone()),
            variant: r.experiment.map(|t| t.variant),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrainResult {
    /// Version of the new model.
    pub version: String,
    /// `passed` or `refused`: the promotion gate's verdict (see GET /v1/models/{version}).
    pub status: String,
    /// Whether the new version serves now (it passed and `models.auto_promote` is on).
    pub serving: bool,
    /// The failed gate checks of a refused version.
    pub refused_reasons: Vec<String>,
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    pub events_read: usize,
    pub seconds: f64,
}

impl From<cairn_engine::TrainReport> for TrainResult {
    fn from(r: cairn_engine::TrainReport) -> Self {
        TrainResult {
            version: r.version,
            status: match r.status {
                cairn_engine::registry::VersionStatus::Refused => "refused",
                _ => "passed",
            }
            .into(),
            serving: r.serving,
            refused_reasons: r.refused,
            users: r.users,
            items: r.items,
            interactions: r.interactions,
            events_read: r.events_read,
            seconds: r.seconds,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelStatus {
    pub version: String,
    pub trained_at: Timestamp,
    /// Seconds since training.
    pub age_seconds: i64,
    /// Log position of the last event the model saw.
    pub last_seq: u64,
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    /// The serving pipeline's learned ranker; null when none was trained (small logs).
    pub ranker: Option<RankerStatus>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RankerStatus {
    pub train_users: usize,
    pub valid_users: usize,
    /// NDCG@10 on validation candidate lists ordered by the ranker (a little optimistic where a
    /// small log was cut several times and a list's user trained on another cut)...
    pub valid_ndcg: f64,
    /// ...and by reciprocal-rank fusion of the retrievers, for comparison.
    pub fusion_ndcg: f64,
}

impl ModelStatus {
    pub fn new(m: cairn_engine::ModelInfo, now: i64) -> Self {
        ModelStatus {
            version: m.version,
            trained_at: Timestamp(m.trained_at),
            age_seconds: (now - m.trained_at).max(0),
            last_seq: m.last_seq,
            users: m.users,
            items: m.items,
            interactions: m.interactions,
            ranker: m.ranker.map(|r| RankerStatus {
                train_users: r.train_users,
                valid_users: r.valid_users,
                valid_ndcg: r.valid_ndcg,
                fusion_ndcg: r.fusion_ndcg,
            }),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(examples(json!({"status": "ready", "model_version": "1764835200-50000"})))]
pub struct Health {
    /// `ok` (liveness) or `ready` (readiness).
    pub status: String,
    /// The served model, when one is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
}
