//! Recommendations for many users in one call: each request is read, checked and scored on its own
//! (on the scoring threads, in parallel), so one bad request fails only its own result.

use axum::extract::State;
use axum::Json;
use serde_json::Value;

use crate::dto::{
    BatchRecommendBody, BatchRecommendations, BatchResult, RecommendBody, MAX_BATCH_REQUESTS,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::routes::recommend::engine_request;
use crate::state::AppState;

/// Personalised recommendations for up to 100 users at once. Each request is the body of
/// `POST /v1/users/{id}/recommendations` plus its `user_id`; each result, in the requests' order,
/// holds either `recommendations` or the `error` (code and message) that route would have answered.
#[utoipa::path(
    post, path = "/v1/recommendations/batch", tag = "recommendations",
    operation_id = "batch_recommendations",
    request_body = BatchRecommendBody,
    responses(
        (status = 200, description = "One result per request, in order; each with its own status", body = BatchRecommendations),
        (status = 400, description = "The body is not a batch, or holds no request or more than 100 (`invalid_argument`)", body = ErrorBody),
    )
)]
pub async fn recommendations(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<BatchRecommendBody>,
) -> Result<Json<BatchRecommendations>, ApiError> {
    let n = body.requests.len();
    if n == 0 || n > MAX_BATCH_REQUESTS {
        return Err(ApiError::invalid(
            "requests",
            format!("holds {n} requests; send 1 to {MAX_BATCH_REQUESTS} per call"),
        ));
    }
    // Every request is queued on the scoring threads before any is awaited, so they run in
    // parallel; results are collected in the requests' order.
    let mut pending = Vec::with_capacity(n);
    for (i, request) in body.requests.into_iter().enumerate() {
        let state = state.clone();
        pending.push(match parse(i, request) {
            Ok((user_id, body)) => {
                let req = engine_request(&state, user_id.clone(), body);
                let task = tokio::spawn(async move {
                    state
                        .score(move |e| e.recommend(&req))
                        .await
                        .map(Into::into)
                });
                (Some(user_id), Ok(task))
            }
            Err((user_id, error)) => (user_id, Err(error)),
        });
    }
    let mut results = Vec::with_capacity(n);
    for (i, (user_id, outcome)) in pending.into_iter().enumerate() {
        let outcome = match outcome {
            Ok(task) => match task.await {
                Ok(result) => result.map_err(|e| within(i, e)),
                Err(join) => Err(ApiError::internal(format!(
                    "requests[{i}]: the recommendation could not be computed ({join})"
                ))),
            },
            Err(error) => Err(error),
        };
        results.push(match outcome {
            Ok(list) => BatchResult {
                user_id,
                status: 200,
                recommendations: Some(list),
                error: None,
            },
            Err(error) => BatchResult {
                user_id,
                status: error.status.as_u16(),
                recommendations: None,
                error: Some(error.body().error),
            },
        });
    }
    Ok(Json(BatchRecommendations { results }))
}

/// Request `i` of a batch: its user id and the rest as a single-user body. The error names the
/// request (`requests[2].k`), with the user id when there was one.
fn parse(i: usize, request: Value) -> Result<(String, RecommendBody), (Option<String>, ApiError)> {
    let Value::Object(mut fields) = request else {
        return Err((
            None,
            ApiError::invalid(
                format!("requests[{i}]"),
                "is not an object; send {\"user_id\": \"...\", \"k\": 10, ...}",
            ),
        ));
    };
    let user_id = match fields.remove("user_id") {
        Some(Value::String(id)) => id,
        None => {
            return Err((
                None,
                ApiError::invalid(
                    format!("requests[{i}].user_id"),
                    "is missing; name the user",
                ),
            ))
        }
        Some(other) => {
            return Err((
                None,
                ApiError::invalid(
                    format!("requests[{i}].user_id"),
                    format!("is {other}; send the user's id as a string"),
                ),
            ))
        }
    };
    // Through axum's JSON reader, as the single-user route reads its body, so errors match.
    let bytes = serde_json::to_vec(&Value::Object(fields))
        .map_err(|e| (Some(user_id.clone()), ApiError::internal(e.to_string())))?;
    match Json::<RecommendBody>::from_bytes(&bytes) {
        Ok(Json(body)) => Ok((user_id, body)),
        Err(rejection) => {
            let mut error = ApiError::from(rejection);
            // Positions refer to the re-encoded request, not to what the client sent.
            if let Some((text, _)) = error.message.rsplit_once(" at line ") {
                error.message = text.to_string();
            }
            Err((Some(user_id), within(i, error)))
        }
    }
}

/// Names request `i` in the error's field and message.
fn within(i: usize, mut error: ApiError) -> ApiError {
    error.field = Some(match error.field.take() {
        Some(field) => format!("requests[{i}].{field}"),
        None => format!("requests[{i}]"),
    });
    error.message = format!("requests[{i}]: {}", error.message);
    error
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_request_is_its_user_and_a_single_user_body() {
        let (user, body) = parse(0, json!({"user_id": "ann", "k": 3, "category": "jazz"})).unwrap();
        assert_eq!(user, "ann");
        assert_eq!((body.k, body.category.as_deref()), (Some(3), Some("jazz")));
    }

    #[test]
    fn a_bad_request_says_which_and_why() {
        let (user, err) = parse(2, json!({"user_id": "ann", "kk": 3})).unwrap_err();
        assert_eq!(user.as_deref(), Some("ann"));
        assert_eq!(err.code, "invalid_argument");
        assert!(err.message.starts_with("requests[2]: "), "{}", err.message);
        assert!(err.message.contains("kk"), "{}", err.message);
        let (user, err) = parse(1, json!({"k": 3})).unwrap_err();
        assert_eq!(user, None);
        assert_eq!(err.field.as_deref(), Some("requests[1].user_id"));
        let (_, err) = parse(0, json!({"user_id": 7})).unwrap_err();
        assert!(err.message.contains("as a string"), "{}", err.message);
        let (_, err) = parse(4, json!([1])).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("requests[4]"));
    }
}
