//! Data quality and drift: the engine's drift windows ([`cairn_engine::Engine::drift_status`], what
//! `GET /v1/drift` returns): charts over the complete windows of item-popularity PSI and JS, the
//! event-type mix, the shares of events on new items and from new users, and the fallback share,
//! each against its `[drift]` threshold; the window still counting; a table of every kept window
//! with the alarms it raised. The charts are SVG drawn here. Below them, the import errors: the
//! rows `cairn import` rejected and the batches the bulk routes refused, newest first, a page at a
//! time, from the data directory's log of rejected input ([`cairn_engine::rejects`]).

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Html;
use cairn_engine::drift::WindowReport;
use cairn_engine::rejects::RejectionPage;
use maud::{html, Markup};
use serde::Deserialize;

use super::live::fmt_num;
use super::{doc_ref, layout, when, Dash, PageError, Sess, Q};

/// Import errors per page.
const ERRORS_PER_PAGE: usize = 25;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DriftQuery {
    /// Import errors to skip, newest first (the pages of the import errors).
    errors_from: Option<usize>,
}

/// The import errors' section: the count, one page of the log, links to the others.
fn import_errors(page: &RejectionPage, from: usize) -> Markup {
    let shown = page.entries.len();
    html! {
        section #import-errors aria-label="Import errors" {
            h2 { "Import errors" }
            p.muted { "Rows " code { "cairn import" } " rejected and batches " code { "POST /v1/events" } ", "
                code { "/v1/items" } " and " code { "/v1/users" } " refused, as recorded in this data directory (the newest "
                (cairn_engine::rejects::MAX_ENTRIES) " at most)." }
            @if page.total == 0 {
                p.ok { "None recorded." }
            } @else {
                p { strong.bad #import-error-count { (page.total) } " recorded"
                    @if shown > 0 { "; " (from + 1) " to " (from + shown) " shown, newest first" } "." }
                div.scroll {
                    table.import-errors {
                        thead { tr { th { "When" } th { "Source" } th { "Where" } th { "Code" } th { "Message" } } }
                        tbody {
                            @for e in &page.entries {
                                tr {
                                    td.nowrap { (when(e.at)) }
                                    td { (e.source) }
                                    td { code { (e.origin)
                                        @if let Some(l) = e.line { ":" (l) }
                                        @if let Some(i) = e.index { " [" (i) "]" } } }
                                    td { code { (e.code) } }
                                    td { (e.message) }
                                }
                            }
                        }
                    }
                }
                nav.pager aria-label="Pages of import errors" {
                    @if from > 0 {
                        a href=(format!("/drift?errors_from={}#import-errors", from.saturating_sub(ERRORS_PER_PAGE))) rel="prev" { "← Newer" }
                        " "
                    }
                    @if from + shown < page.total {
                        a href=(format!("/drift?errors_from={}#import-errors", from + shown)) rel="next" { "Older →" }
                    }
                }
            }
        }
    }
}

/// Colour classes of the event-type mix (style.css `.mix0` … `.mix5`); more types cycle.
const MIX_CLASSES: usize = 6;

const W: f64 = 600.0;
const H: f64 = 140.0;
const PAD: f64 = 6.0;

fn share(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{}%", fmt_num(v * 100.0)))
}

/// An event count (a whole number unless acknowledged duplicates weighted a batch).
fn count(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        fmt_num(v)
    }
}

fn fig4(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

/// One figure of every window, oldest first, as a line against its threshold: a dot per window
/// (red where the window raised this figure's alarm), a gap where the figure could not be
/// computed, the threshold dashed.
fn window_chart(
    title: &str,
    windows: &[WindowReport],
    alarm: &str,
    threshold: Option<f64>,
    value: &dyn Fn(&WindowReport) -> Option<f64>,
    format: &dyn Fn(Option<f64>) -> String,
) -> Markup {
    let values: Vec<Option<f64>> = windows.iter().map(value).collect();
    let max = values
        .iter()
        .flatten()
        .copied()
        .chain(threshold.map(|t| t * 1.15))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let scale = if max > 0.0 {
        (H - 2.0 * PAD) / max
    } else {
        0.0
    };
    let n = values.len();
    let x = |i: usize| {
        if n <= 1 {
            W / 2.0
        } else {
            PAD + i as f64 / (n - 1) as f64 * (W - 2.0 * PAD)
        }
    };
    let y = |v: f64| H - PAD - v * scale;
    // Runs of consecutive computed values, one polyline each.
    let mut runs: Vec<String> = Vec::new();
    let mut run: Vec<String> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) if v.is_finite() => run.push(format!("{:.1},{:.1}", x(i), y(*v))),
            _ => {
                if run.len() >= 2 {
                    runs.push(run.join(" "));
                }
                run.clear();
            }
        }
    }
    if run.len() >= 2 {
        runs.push(run.join(" "));
    }
    let latest = values.last().copied().flatten();
    let alarms = windows
        .iter()
        .filter(|w| w.alarms.iter().any(|a| a == alarm))
        .count();
    html! {
        figure.chart {
            figcaption {
                (title) ": "
                @if n == 0 { span.muted { "no complete window yet" } } @else { strong { (format(latest)) } }
                span.muted {
                    @if let Some(t) = threshold { " (alarm at " (format(Some(t))) ")" }
                    @if alarms > 0 { ", " }
                }
                @if alarms > 0 { span.bad { (alarms) " alarmed" } }
            }
            svg viewBox=(format!("0 0 {W} {H}")) preserveAspectRatio="none" role="img"
                aria-label=(format!("{title} over the last {n} windows")) {
                line x1="0" y1=(H - PAD) x2=(W) y2=(H - PAD) class="axis" {}
                @if let Some(t) = threshold.filter(|_| scale > 0.0) {
                    line x1="0" y1=(format!("{:.1}", y(t))) x2=(W) y2=(format!("{:.1}", y(t))) class="threshold" {}
                }
                @for r in &runs { polyline points=(r) class="series" {} }
                @for (i, (v, w)) in values.iter().zip(windows).enumerate() {
                    @if let Some(v) = v.filter(|v| v.is_finite()) {
                        circle cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y(v))) r="3"
                            class=(if w.alarms.iter().any(|a| a == alarm) { "dot alarm" } else { "dot" }) {}
                    }
                }
            }
        }
    }
}

/// The event-type mix of each window as a stacked column of shares, with its legend.
fn mix_chart(windows: &[WindowReport], types: &[String]) -> Markup {
    let n = windows.len().max(1);
    let col = W / n as f64;
    let gap = if col > 6.0 { 1.5 } else { 0.0 };
    // (x, y, width, height, colour class) of each stacked part.
    let mut rects: Vec<(f64, f64, f64, f64, usize)> = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        if w.events <= 0.0 {
            continue;
        }
        let mut top = 0.0_f64;
        for (t, name) in types.iter().enumerate() {
            let part = w.event_types.get(name).copied().unwrap_or(0.0) / w.events;
            if part > 0.0 {
                rects.push((
                    i as f64 * col + gap / 2.0,
                    top * H,
                    (col - gap).max(0.5),
                    part * H,
                    t % MIX_CLASSES,
                ));
            }
            top += part;
        }
    }
    html! {
        figure.chart {
            figcaption { "Event-type mix per window" }
            svg viewBox=(format!("0 0 {W} {H}")) preserveAspectRatio="none" role="img"
                aria-label=(format!("Share of each event type in the last {} windows", windows.len())) {
                @for (x, y, w, h, c) in &rects {
                    rect x=(format!("{x:.1}")) y=(format!("{y:.1}")) width=(format!("{w:.1}"))
                        height=(format!("{h:.1}")) class=(format!("mix{c}")) {}
                }
            }
            ul.legend {
                @for (t, name) in types.iter().enumerate() {
                    li { span class=(format!("sw mix{}", t % MIX_CLASSES)) {} (name) }
                }
            }
        }
    }
}

pub(super) async fn page(
    State(dash): State<Dash>,
    axum::Extension(session): Sess,
    Q(q): Q<DriftQuery>,
) -> Result<Html<String>, PageError> {
    let status = dash.app.run(|e| Ok(e.drift_status())).await?;
    let from = q.errors_from.unwrap_or(0);
    let engine = std::sync::Arc::clone(&dash.app.engine);
    let errors = tokio::task::spawn_blocking(move || engine.rejects().page(from, ERRORS_PER_PAGE))
        .await
        .map_err(|e| PageError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| {
            PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read the import errors: {e}"),
            )
        })?;
    let t = &status.thresholds;
    let windows = &status.windows;
    let types: Vec<String> = windows
        .iter()
        .chain(status.current.as_ref())
        .flat_map(|w| w.event_types.keys().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let alarmed: Vec<&WindowReport> = windows.iter().filter(|w| !w.alarms.is_empty()).collect();
    let body = html! {
        (doc_ref("Drift and health"))
        @if !status.enabled {
            p.notice role="status" { "Drift monitoring is off (drift.enabled = false): no window is counted." }
        }
        section.cards aria-label="Status" {
            div.card {
                h2 { "Reference" }
                @match &status.reference_version {
                    Some(v) => p { "Windows are compared with the training data of " a href="/models" { code { (v) } } "." },
                    None => p { "No reference: no champion serves, or it was trained without one. Only the served-list figures are computed." },
                }
                dl {
                    dt { "Window" } dd { (super::ago(status.window_secs as i64)) }
                    dt { "Windows kept" } dd { (windows.len()) }
                    dt { "Alarmed since start" } dd class=(if status.windows_alarmed > 0 { "bad" } else { "" }) { (status.windows_alarmed) " windows (" (status.input_alarms) " with an input alarm)" }
                }
            }
            @if let Some(c) = &status.current {
                div.card {
                    h2 { "Current window (so far)" }
                    dl {
                        dt { "Since" } dd { (when(c.started_at as i64)) }
                        dt { "Events" } dd { (count(c.events)) }
                        dt { "Lists served" } dd { (c.lists) }
                        dt { "Popularity PSI / JS" } dd { (fig4(c.popularity_psi)) " / " (fig4(c.popularity_js)) }
                        dt { "New items / users" } dd { (share(c.new_item_share)) " / " (share(c.new_user_share)) }
                        dt { "Fallback share" } dd { (share(c.fallback_share)) }
                    }
                }
            }
            div.card {
                h2 { "Thresholds" }
                dl {
                    dt { "Popularity PSI" } dd { (fmt_num(t.psi_alarm)) }
                    dt { "Popularity JS" } dd { (fmt_num(t.js_alarm)) }
                    dt { "Event-mix PSI" } dd { (fmt_num(t.event_mix_psi_alarm)) }
                    dt { "New items" } dd { (share(Some(t.new_item_share_alarm))) }
                    dt { "New users" } dd { (share(Some(t.new_user_share_alarm))) }
                    dt { "Fallback" } dd { (share(Some(t.fallback_share_alarm))) }
                }
                p.muted { "Input figures are judged in windows of at least " (t.min_window_events) " events, the fallback share in windows of at least " (t.min_window_lists) " lists." }
            }
        }
        section aria-label="Charts" {
            h2 { @match windows.len() { 1 => "The last complete window", n => { "The last " (n) " complete windows" } } }
            @if windows.is_empty() {
                p.muted { "No window has closed yet; the first closes "
                    @match &status.current { Some(c) => { "at " (when(c.started_at as i64 + status.window_secs as i64)) }, None => "once monitoring is on" }
                    "." }
            }
            div.charts {
                (window_chart("Popularity PSI", windows, "popularity_psi", Some(t.psi_alarm), &|w| w.popularity_psi, &fig4))
                (window_chart("Popularity JS (nats)", windows, "popularity_js", Some(t.js_alarm), &|w| w.popularity_js, &fig4))
                (window_chart("Event-mix PSI", windows, "event_mix_psi", Some(t.event_mix_psi_alarm), &|w| w.event_mix_psi, &fig4))
                (mix_chart(windows, &types))
                (window_chart("Events on new items", windows, "new_item_share", Some(t.new_item_share_alarm), &|w| w.new_item_share, &share))
                (window_chart("Events from new users", windows, "new_user_share", Some(t.new_user_share_alarm), &|w| w.new_user_share, &share))
                (window_chart("Fallback share of served items", windows, "fallback_share", Some(t.fallback_share_alarm), &|w| w.fallback_share, &share))
                (window_chart("Events per window", windows, "", None, &|w| Some(w.events), &|v| v.map_or("-".into(), count)))
            }
        }
        h2 { "Alarms" }
        @if alarmed.is_empty() {
            p.ok { "No kept window passed a threshold." }
        } @else {
            ul {
                @for w in alarmed.iter().rev() {
                    li { (when(w.ended_at as i64)) ": " span.bad { (w.alarms.join(", ")) }
                        @if w.input_alarm { span.muted { " (input)" } } }
                }
            }
        }
        (import_errors(&errors, from))
        h2 { "Windows" }
        @if windows.is_empty() {
            p.muted { "None yet." }
        } @else {
            p.muted { "Newest first. A dash: the figure could not be computed (no events, or no reference)." }
            div.scroll {
                table.nowrap {
                    thead { tr {
                        th { "Ended" } th { "Events" } th { "Event types" } th { "Mix PSI" }
                        th { "Pop. PSI" } th { "Pop. JS" } th { "New items" } th { "New users" }
                        th { "Lists" } th { "Coverage" } th { "Gini" } th { "Fallback" }
                        th { "Scores p10/p50/p90" } th { "Alarms" }
                    } }
                    tbody {
                        @for w in windows.iter().rev() {
                            tr {
                                td { (when(w.ended_at as i64)) }
                                td { (count(w.events)) }
                                td { @for (i, (k, v)) in w.event_types.iter().enumerate() {
                                    @if i > 0 { ", " }
                                    (k) " " (count(*v))
                                } }
                                td { (fig4(w.event_mix_psi)) }
                                td { (fig4(w.popularity_psi)) }
                                td { (fig4(w.popularity_js)) }
                                td { (share(w.new_item_share)) }
                                td { (share(w.new_user_share)) }
                                td { (w.lists) @if w.empty_lists > 0 { span.muted { " (" (w.empty_lists) " empty)" } } }
                                td { (share(w.coverage)) @if w.exposure_truncated { span.muted { " ≥" } } }
                                td { (fig4(w.exposure_gini)) }
                                td { (share(w.fallback_share)) }
                                td { @match &w.score_quantiles {
                                    Some(q) => { (format!("{:.2} / {:.2} / {:.2}", q.p10, q.p50, q.p90)) },
                                    None => "-",
                                } }
                                td class=(if w.alarms.is_empty() { "" } else { "bad" }) { (w.alarms.join(", ")) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout("Data quality and drift", "/drift", &session, body))
}
