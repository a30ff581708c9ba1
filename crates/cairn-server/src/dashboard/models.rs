//! Models: the registry's versions with their offline metrics and gate verdicts, the champion and
//! its history, and promote / roll back behind a confirmation page. The moves go through the
//! engine's registry ([`cairn_engine::Engine::promote_model`], `rollback_model`), as
//! `POST /v1/models/{version}/promote` and `POST /v1/models/rollback` do.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use cairn_engine::registry::{Alias, VersionStatus, VersionView};
use maud::html;
use serde::Deserialize;

use super::live::fmt_num;
use super::{
    audit, audit_identity, csrf_field, doc_ref, layout, when, Dash, PageError, Sess, F, Q,
};

/// Versions and history entries per page.
const PER_PAGE: usize = 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// 1-based page of the versions (newest first).
    page: Option<usize>,
    /// The message of a move just made.
    done: Option<String>,
}

fn status_name(s: VersionStatus) -> &'static str {
    match s {
        VersionStatus::Passed => "passed",
        VersionStatus::Refused => "refused",
        VersionStatus::Adopted => "adopted",
    }
}

fn check_page(page: Option<usize>, total: usize) -> Result<usize, PageError> {
    let pages = total.div_ceil(PER_PAGE).max(1);
    match page.unwrap_or(1) {
        p if (1..=pages).contains(&p) => Ok(p),
        p => Err(PageError::bad(format!(
            "page {p} is out of range; there are {pages} pages"
        ))),
    }
}

pub(super) async fn page(
    State(dash): State<Dash>,
    axum::Extension(session): Sess,
    Q(q): Q<ListQuery>,
) -> Result<Html<String>, PageError> {
    let mut versions = dash.app.run(|e| e.model_versions()).await?;
    let mut history = dash.app.run(|e| e.model_history()).await?;
    versions.reverse();
    history.reverse();
    let page = check_page(q.page, versions.len())?;
    let pages = versions.len().div_ceil(PER_PAGE).max(1);
    let shown: Vec<&VersionView> = versions
        .iter()
        .skip((page - 1) * PER_PAGE)
        .take(PER_PAGE)
        .collect();
    let champion = versions
        .iter()
        .find(|v| v.champion)
        .map(|v| v.meta.version.clone());
    let now = cairn_core::now_unix();
    let body = html! {
        @if let Some(done) = &q.done { p.notice role="status" { (done) } }
        (doc_ref("The promotion gate"))
        section.cards {
            div.card {
                h2 { "Champion" }
                @match &champion {
                    Some(c) => p { code { (c) } " serves." },
                    None => p { "No version has passed the gate yet." },
                }
                a.button href="/models/confirm?action=rollback" { "Roll back…" }
            }
        }
        h2 { "Versions" }
        p.muted { (versions.len()) " versions, newest first." }
        div.scroll {
            table {
                thead { tr {
                    th { "Version" } th { "Status" } th { "Trained" } th { "NDCG@k [95% CI]" }
                    th { "Coverage" } th { "p99 ms" } th { "Gate" } th { "" }
                } }
                tbody {
                    @for v in &shown {
                        @let m = &v.meta;
                        tr {
                            td { code { (m.version) }
                                @if v.champion { " " span.tag.ok { "champion" } }
                                @if v.challenger { " " span.tag { "challenger" } }
                            }
                            td { (status_name(m.status)) }
                            td { (when(m.created_at)) br; span.muted { (super::ago(now - m.created_at)) " ago, by " (m.trained_by) } }
                            @match &m.metrics {
                                Some(x) => {
                                    td { @match &x.ndcg {
                                        Some(n) => { (format!("{:.4}", n.mean)) " [" (format!("{:.4}", n.ci_low)) ", " (format!("{:.4}", n.ci_high)) "] @" (x.k) },
                                        None => "-",
                                    } }
                                    td { (fmt_num(x.coverage * 100.0)) "%" }
                                    td { (fmt_num(x.p99_ms)) }
                                },
                                None => { td { "-" } td { "-" } td { "-" } },
                            }
                            td {
                                @match &m.gate {
                                    Some(g) => details {
                                        summary { (if g.passed { "passed" } else { "refused" }) " (" (g.checks.iter().filter(|c| c.passed).count()) "/" (g.checks.len()) ")" }
                                        ul.checks { @for c in &g.checks {
                                            li class=(if c.passed { "ok" } else { "bad" }) { strong { (c.name) } ": " (c.detail) }
                                        } }
                                    },
                                    None => "-",
                                }
                            }
                            td {
                                @if !v.champion && v.artifact_present && m.status != VersionStatus::Refused {
                                    a.button href=(format!("/models/confirm?action=promote&version={}", urlencode(&m.version))) { "Promote…" }
                                }
                            }
                        }
                    }
                }
            }
        }
        (pager("/models?", page, pages))
        h2 { "Champion history" }
        div.scroll {
            table {
                thead { tr { th { "#" } th { "When" } th { "Action" } th { "Version" } th { "Before" } th { "Who" } th { "Reason" } } }
                tbody {
                    @for e in history.iter().take(PER_PAGE) {
                        tr {
                            td { (e.seq) }
                            td { (when(e.at)) }
                            td { (serde_json::to_value(e.action).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()) }
                            td { code { (e.version) } }
                            td { @if let Some(p) = &e.previous { code { (p) } } }
                            td { (e.who) }
                            td { (e.reason) }
                        }
                    }
                }
            }
        }
        @if history.len() > PER_PAGE {
            p.muted { "The newest " (PER_PAGE) " of " (history.len()) " entries; all of them: GET /v1/models/history." }
        }
    };
    Ok(layout("Models", "/models", &session, body))
}

/// Links to the previous and next page; `base` ends with `?` or `&`.
pub(super) fn pager(base: &str, page: usize, pages: usize) -> maud::Markup {
    html! {
        @if pages > 1 {
            nav.pager aria-label="Pages" {
                @if page > 1 { a href=(format!("{base}page={}", page - 1)) rel="prev" { "← Previous" } }
                span { "Page " (page) " of " (pages) }
                @if page < pages { a href=(format!("{base}page={}", page + 1)) rel="next" { "Next →" } }
            }
        }
    }
}

/// Percent-encodes a query value.
pub(super) fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)])
        .map(|t| t[2..].to_string())
        .unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfirmQuery {
    action: String,
    version: Option<String>,
}

/// The confirmation page of a move: what changes, and a reason to give.
pub(super) async fn confirm(
    State(dash): State<Dash>,
    axum::Extension(session): Sess,
    Q(q): Q<ConfirmQuery>,
) -> Result<Html<String>, PageError> {
    let versions = dash.app.run(|e| e.model_versions()).await?;
    let champion = versions
        .iter()
        .find(|v| v.champion)
        .map(|v| v.meta.version.clone());
    let (title, what, version) = match (q.action.as_str(), &q.version) {
        ("promote", Some(v)) => {
            if !versions.iter().any(|x| &x.meta.version == v) {
                return Err(PageError::new(
                    StatusCode::NOT_FOUND,
                    format!("no model version `{v}`"),
                ));
            }
            (
                "Promote a version",
                format!(
                    "Make {v} the champion: it serves from the moment you confirm (now: {}).",
                    champion.as_deref().unwrap_or("none")
                ),
                Some(v.clone()),
            )
        }
        ("promote", None) => return Err(PageError::bad("promote needs a version")),
        ("rollback", None) => {
            let state = dash.app.run(|e| e.registry().state()).await?;
            let target = state.rollback_target().map(str::to_string);
            let what = match target {
                Some(t) => format!(
                    "Move the champion back from {} to {t}, the one promoted before it: {t} serves from the moment you confirm.",
                    champion.as_deref().unwrap_or("none")
                ),
                None => "There is no earlier champion to go back to; confirming will be refused.".to_string(),
            };
            ("Roll back the champion", what, None)
        }
        ("rollback", Some(_)) => return Err(PageError::bad("a rollback takes no version")),
        (other, _) => {
            return Err(PageError::bad(format!(
                "`{other}` is not an action; use promote or rollback"
            )))
        }
    };
    let body = html! {
        p { (what) }
        (doc_ref("Aliases and their history"))
        form.stack method="post" action="/models/confirm" {
            (csrf_field(&session))
            input type="hidden" name="action" value=(q.action);
            @if let Some(v) = &version { input type="hidden" name="version" value=(v); }
            label for="reason" { "Reason (recorded in the model history)" }
            input id="reason" name="reason" type="text" required maxlength="500" autofocus;
            div.row {
                button type="submit" { "Confirm" }
                a href="/models" { "Cancel" }
            }
        }
    };
    Ok(layout(title, "/models", &session, body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MoveForm {
    #[allow(dead_code)] // Checked by the gate before the handler runs.
    csrf: String,
    action: String,
    version: Option<String>,
    reason: String,
}

/// Carries out a confirmed move and goes back to the models page.
pub(super) async fn confirmed(
    State(dash): State<Dash>,
    axum::Extension(session): Sess,
    F(form): F<MoveForm>,
) -> Result<Response, PageError> {
    let reason = form.reason.trim().to_string();
    let n = reason.chars().count();
    if n == 0 || n > 500 {
        return Err(PageError::bad(
            "say why in 1 to 500 characters; it is recorded in the model history",
        ));
    }
    let who = format!("{} via dashboard", session.who);
    let (key_id, key_name) = audit_identity(&session);
    let (action, result) = match (form.action.as_str(), form.version) {
        ("promote", Some(version)) => {
            let v = version.clone();
            let result = dash
                .app
                .run(move |e| e.promote_model(&v, Alias::Champion, &who, &reason))
                .await;
            (
                format!("POST /v1/models/{version}/promote (dashboard)"),
                result,
            )
        }
        ("rollback", None) => {
            let result = dash.app.run(move |e| e.rollback_model(&who, &reason)).await;
            ("POST /v1/models/rollback (dashboard)".to_string(), result)
        }
        _ => {
            return Err(PageError::bad(
                "use action=promote with a version, or action=rollback",
            ))
        }
    };
    let status = match &result {
        Ok(_) => 303,
        Err(e) => e.status.as_u16(),
    };
    audit(&dash, &key_id, &key_name, &action, None, status).await;
    let entry = result?;
    let done = format!("{} now serves ({}).", entry.version, form.action);
    Ok(Redirect::to(&format!("/models?done={}", urlencode(&done))).into_response())
}
