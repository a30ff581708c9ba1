//! `/v1/events`: the interaction log.

use axum::extract::State;
use axum::Json;

use crate::dto::{EventBatch, EventsStored};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;

/// Record events, all or none, durably. Events with an `event_id` that was seen before are skipped
/// and counted as duplicates, so a client may retry a batch safely.
///
/// Every event is checked before anything is stored: an unknown event type, a value out of range,
/// or an `item_id` that is not in the catalog is 400 `invalid_argument` naming the field
/// (e.g. `events[3].item_id`). Create items first; users need no row.
#[utoipa::path(
    post, path = "/v1/events", tag = "events",
    request_body = EventBatch,
    responses(
        (status = 200, description = "Stored", body = EventsStored),
        (status = 400, description = "Some event is invalid; nothing was stored", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
    )
)]
pub async fn post_events(
    State(state): State<AppState>,
    batch: Result<ApiJson<EventBatch>, ApiError>,
) -> Result<Json<EventsStored>, ApiError> {
    let result = match batch {
        Ok(ApiJson(batch)) => state.run(move |e| e.add_events(batch.events)).await,
        Err(e) => Err(e),
    };
    let outcome = super::recorded(&state, "POST /v1/events", result).await?;
    Ok(Json(EventsStored {
        stored: outcome.stored,
        duplicates: outcome.duplicates,
    }))
}
