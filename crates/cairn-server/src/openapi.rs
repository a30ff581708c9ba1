//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` attributes and the domain
//! types' schemas. A test checks that every documented operation is routed.

use utoipa::OpenApi;

use crate::auth::SecurityDoc;
use crate::routes::{access, batch, data, events, items, models, ops, recommend, users};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Cairn",
        description = "Recommendation engine HTTP API. Every error is JSON: \
            `{\"error\":{\"code\":\"...\",\"message\":\"...\",\"field\":\"...\"}}` with a stable `code`."
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
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::openapi,
        access::create_key,
        access::list_keys,
        access::revoke_key,
        access::audit,
    ),
    modifiers(&SecurityDoc),
    tags(
        (name = "items", description = "The catalog"),
        (name = "users", description = "Users, their history, erasure"),
        (name = "events", description = "Interaction events"),
        (name = "recommendations", description = "Recommendation lists"),
        (name = "model", description = "Training and the served model"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
        (name = "access", description = "API keys and the audit log"),
    )
)]
pub struct ApiDoc;
