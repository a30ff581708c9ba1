//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` attributes and the domain
//! types' schemas. A test checks that every documented operation is routed.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::OpenApi;

use crate::auth::SecurityDoc;
use crate::routes::shadow;
use crate::routes::{
    access, batch, data, drift, events, experiments, items, models, ops, recommend, users,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Cairn",
        description = "Recommendation engine HTTP API. Every error is JSON: \
            `{\"error\":{\"code\":\"...\",\"message\":\"...\",\"field\":\"...\"}}` with a stable `code`. \
            Several apps: each app the configuration declares (`[apps.NAME]`) is served at \
            `/v1/apps/NAME/...` with every `/v1/...` route below (and `healthz`, `readyz`, `metrics`, \
            `openapi.json`), over its own data and API keys; an unknown app is 404 `app_not_found`."
    ),
    paths(
        items::put_item,
        items::put_items,
        items::get_item,
        items::delete_item,
        items::list_items,
        users::put_user,
        users::put_users,
        users::get_user,
        users::delete_user,
        users::list_users,
        users::user_events,
        data::export_user,
        events::post_events,
        recommend::for_user,
        recommend::for_user_with_rules,
        batch::recommendations,
        recommend::similar,
        recommend::popular,
        recommend::trending,
        ops::train,
        data::backup,
        data::compact,
        ops::model,
        models::list,
        models::show,
        models::history,
        models::promote,
        models::rollback,
        shadow::report,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        drift::drift,
        ops::openapi,
        access::create_key,
        access::list_keys,
        access::revoke_key,
        access::audit,
        experiments::create,
        experiments::list,
        experiments::show,
        experiments::results,
        experiments::stop,
        experiments::ship,
        experiments::impressions,
    ),
    modifiers(&SecurityDoc, &CommonResponses),
    tags(
        (name = "items", description = "The catalog"),
        (name = "users", description = "Users, their history, erasure"),
        (name = "events", description = "Interaction events"),
        (name = "recommendations", description = "Recommendation lists"),
        (name = "model", description = "Training and the served model"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
        (name = "access", description = "API keys and the audit log"),
        (name = "experiments", description = "Online A/B and interleaving experiments, their results and decisions"),
    )
)]
pub struct ApiDoc;

/// The answers that layers shared by many routes give, added to every operation they can come from
/// (after [`SecurityDoc`] has said which operations need a key), so that the document lists every
/// status the server sends: 401, 403 and 429 from access control on the operations that need a key;
/// 400, 413 and 415 from the JSON body reader on the operations that take a body; 503 from the
/// request timeout on the `/v1` routes. A status an operation documents itself keeps its description.
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let mut added: Vec<(&str, Response)> = Vec::new();
                if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    added.push((
                        "401",
                        error_response(
                            "No API key, or an unknown or revoked one (`unauthorized`); the \
                             `WWW-Authenticate` header says which",
                        ),
                    ));
                    added.push((
                        "403",
                        error_response(
                            "The key's scope is too low for this operation (`forbidden`)",
                        ),
                    ));
                    let mut limited = error_response(
                        "The key made more requests than its rate limit allows (`rate_limited`)",
                    );
                    limited.headers.insert(
                        "Retry-After".to_string(),
                        HeaderBuilder::new()
                            .schema(ObjectBuilder::new().schema_type(Type::Integer))
                            .description(Some("Seconds to wait before retrying"))
                            .build(),
                    );
                    added.push(("429", limited));
                }
                if operation.request_body.is_some() {
                    added.push((
                        "400",
                        error_response(
                            "The body is not valid JSON (`malformed_json`) or does not match the \
                             schema (`invalid_argument`)",
                        ),
                    ));
                    added.push((
                        "413",
                        error_response(
                            "Body larger than `server.max_body_bytes` (`payload_too_large`)",
                        ),
                    ));
                    added.push((
                        "415",
                        error_response(
                            "Body not sent as `Content-Type: application/json` \
                             (`unsupported_media_type`)",
                        ),
                    ));
                }
                if path.starts_with("/v1/") {
                    added.push((
                        "503",
                        error_response(
                            "Not answered within `server.request_timeout_ms` (`timeout`), or the \
                             store is unavailable",
                        ),
                    ));
                }
                for (status, response) in added {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert(RefOr::T(response));
                }
            }
        }
    }
}

/// A response whose body is the house error, [`crate::error::ErrorBody`].
fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}
