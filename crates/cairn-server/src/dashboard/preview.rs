//! Live preview: the lists a user (or a made-up history of context items) gets from each placement,
//! with score, source and reason; two placements side by side, or the champion beside another kept
//! model version ([`cairn_engine::Engine::recommend_with_version`]: loaded on demand, at most one
//! such version at a time, never serving); a filter expression (the cairn-expr language) applied
//! through the engine's own recommend call, as the API's `POST /v1/users/{id}/recommendations`
//! applies it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_engine::{RecommendRequest, Recommendations};
use maud::html;
use serde::Deserialize;

use super::catalog::rec_table;
use super::{layout, Dash, PageError, Sess, Q};

/// The user id a preview without one asks for: a user with no events, so the list comes from
/// the context items alone (and the popular fill).
pub const MADE_UP_USER: &str = "dashboard-preview-user";
/// Most context items.
const MAX_CONTEXT: usize = 20;
/// Most items per list in the preview.
const MAX_K: usize = 50;
/// Placements listed at once when none is chosen.
const MAX_PLACEMENTS: usize = 6;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct PreviewQuery {
    user: Option<String>,
    /// Item ids separated by commas or spaces: the page's context (a made-up history).
    context: Option<String>,
    /// A placement, or empty for all of them.
    placement: Option<String>,
    /// A second placement, shown beside the first.
    compare: Option<String>,
    /// A kept model version, whose list is shown beside the champion's (same placement).
    version: Option<String>,
    /// A filter expression every listed item must satisfy.
    filter: Option<String>,
    k: Option<usize>,
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub(super) async fn page(
    State(dash): State<Dash>,
    axum::Extension(session): Sess,
    Q(q): Q<PreviewQuery>,
) -> Result<Response, PageError> {
    let config = dash.app.engine.config();
    let placements: Vec<String> = config.serve.placements.keys().cloned().collect();
    let max_k = MAX_K.min(config.serve.max_k);
    let k = match q.k.unwrap_or(10) {
        k @ 1.. if k <= max_k => k,
        k => {
            return Err(PageError::bad(format!(
                "k={k} is out of range; use 1 to {max_k}"
            )))
        }
    };
    let user = non_empty(&q.user);
    let context: Vec<String> = non_empty(&q.context)
        .map(|c| {
            c.split([',', ' ', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if context.len() > MAX_CONTEXT {
        return Err(PageError::bad(format!(
            "{} context items; give at most {MAX_CONTEXT}",
            context.len()
        )));
    }
    let filter = non_empty(&q.filter);
    let placement = non_empty(&q.placement);
    let compare = non_empty(&q.compare);
    for p in placement.iter().chain(compare.iter()) {
        if !placements.contains(p) {
            return Err(PageError::bad(format!(
                "no placement `{p}`; the placements are {}",
                placements.join(", ")
            )));
        }
    }
    let version = non_empty(&q.version);
    if version.is_some() && compare.is_some() {
        return Err(PageError::bad(
            "compare either two placements or two model versions, not both at once",
        ));
    }
    // The versions that can be put beside the champion: kept, with their file, not refused.
    let all_versions = dash.app.run(|e| e.model_versions()).await?;
    let champion = all_versions
        .iter()
        .find(|v| v.champion)
        .map(|v| v.meta.version.clone());
    let versions: Vec<String> = all_versions
        .iter()
        .rev()
        .filter(|v| {
            !v.champion
                && v.artifact_present
                && v.meta.status != cairn_engine::registry::VersionStatus::Refused
        })
        .map(|v| v.meta.version.clone())
        .collect();
    let asked = user.is_some() || !context.is_empty();
    // Which lists: the two compared, the one chosen, or every placement.
    let shown: Vec<String> = match (&placement, &compare) {
        _ if version.is_some() => {
            let p = placement
                .clone()
                .unwrap_or_else(|| config.serve.default_placement.clone());
            vec![p.clone(), p]
        }
        (Some(a), Some(b)) => vec![a.clone(), b.clone()],
        (Some(a), None) => vec![a.clone()],
        (None, Some(b)) => vec![config.serve.default_placement.clone(), b.clone()],
        (None, None) => placements.iter().take(MAX_PLACEMENTS).cloned().collect(),
    };
    let mut lists: Vec<(String, Result<Recommendations, String>)> = Vec::new();
    let mut status = StatusCode::OK;
    if asked {
        for (column, name) in shown.iter().enumerate() {
            let req = RecommendRequest {
                user_id: user.clone().unwrap_or_else(|| MADE_UP_USER.to_string()),
                k,
                exclude_seen: true,
                placement: Some(name.clone()),
                context_items: context.clone(),
                filter: filter.clone(),
                ..RecommendRequest::default()
            };
            // Two versions: both lists scored the same way (no experiment routing), the champion's
            // with the serving model.
            let pinned = match (&version, column) {
                (Some(v), 1) => Some(v.clone()),
                (Some(_), _) => champion.clone(),
                _ => None,
            };
            let result = match pinned {
                Some(v) => {
                    dash.app
                        .score(move |e| e.recommend_with_version(&req, &v))
                        .await
                }
                None => dash.app.score(move |e| e.recommend(&req)).await,
            };
            if let Err(e) = &result {
                if e.status.is_client_error() {
                    status = e.status;
                }
            }
            lists.push((name.clone(), result.map_err(|e| e.message)));
        }
    }
    let side_by_side = shown.len() == 2 && (compare.is_some() || version.is_some());
    let body = html! {
        form.preview method="get" action="/preview" {
            div.fields {
                div { label for="user" { "User id" }
                      input id="user" name="user" type="text" value=[user.as_deref()] placeholder="empty: a made-up user"; }
                div { label for="context" { "Context items (a made-up history)" }
                      input id="context" name="context" type="text" value=(context.join(", ")) placeholder="item ids, comma-separated"; }
                div { label for="placement" { "Placement" }
                      select id="placement" name="placement" {
                          option value="" selected[placement.is_none()] { "every placement" }
                          @for p in &placements { option value=(p) selected[placement.as_deref() == Some(p.as_str())] { (p) } }
                      } }
                div { label for="compare" { "Beside it" }
                      select id="compare" name="compare" {
                          option value="" selected[compare.is_none()] { "nothing" }
                          @for p in &placements { option value=(p) selected[compare.as_deref() == Some(p.as_str())] { (p) } }
                      } }
                div { label for="version" { "Or beside the champion" }
                      select id="version" name="version" {
                          option value="" selected[version.is_none()] { "no other version" }
                          @for v in &versions { option value=(v) selected[version.as_deref() == Some(v.as_str())] { "version " (v) } }
                      } }
                div.wide { label for="filter" { "Filter (e.g. " code { "category == \"books\"" } ")" }
                      input id="filter" name="filter" type="text" value=[filter.as_deref()]; }
                div { label for="k" { "Items" }
                      input id="k" name="k" type="number" min="1" max=(max_k) value=(k); }
            }
            button type="submit" { "Preview" }
        }
        @if !asked {
            p.muted { "Give a user id, or a few item ids as a made-up history (placements whose seeds include the context use them: "
                code { "item-page" } ", " code { "cart" } " by default)." }
        }
        div class=(if side_by_side { "lists side" } else { "lists" }) {
            @for (column, (name, list)) in lists.iter().enumerate() {
                @let model = match (&version, column) {
                    (Some(v), 1) => Some(format!("version {v}")),
                    (Some(_), _) => Some(format!("champion {}", champion.as_deref().unwrap_or("(none)"))),
                    _ => None,
                };
                section.list aria-label=(match &model { Some(m) => format!("placement {name}, {m}"), None => format!("placement {name}") }) {
                    h2 { "Placement " code { (name) } @if let Some(m) = &model { " · " (m) } }
                    @match list {
                        Ok(r) => {
                            p.muted { "Model " (r.model_version.as_deref().unwrap_or("none")) ", " (r.items.len()) " items" }
                            @for w in &r.warnings { p.notice { (w.message) } }
                            @if r.items.is_empty() { p { "Empty list." } } @else { (rec_table(&r.items)) }
                        },
                        Err(m) => p.error role="alert" { (m) },
                    }
                }
            }
        }
    };
    let page = layout("Live preview", "/preview", &session, body);
    Ok((status, page).into_response())
}
