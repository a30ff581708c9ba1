//! The overview: health, counts, traffic and latency from the sampler's ring, errors, the serving
//! model and the training clock, with charts over the ring's hours.

use axum::extract::State;
use axum::response::Html;
use maud::html;

use super::live::{fmt_num, line_chart, SAMPLE_EVERY};
use super::{ago, layout, when, Dash, PageError, Sess};

pub(super) async fn page(
    State(dash): State<Dash>,
    axum::Extension(session): Sess,
) -> Result<Html<String>, PageError> {
    let engine = &dash.app.engine;
    let stats = dash.app.run(|e| e.stats()).await?;
    let now = cairn_core::now_unix();
    let model = engine.model_info();
    let training = engine.training_status();
    let write_failure = engine.store_write_failure();
    let totals = dash.app.metrics.live.totals();
    let samples = dash.ring.snapshot();
    let latest = samples.last();
    let interval = engine.config().train.interval_secs as i64;
    // The retrainer ticks every interval from the server's start (background::spawn_retrainer).
    let next_training = (interval > 0).then(|| {
        let since = (now - dash.started_at).max(0);
        dash.started_at + (since / interval + 1) * interval
    });
    let series = |f: &dyn Fn(&super::live::Sample) -> Option<f64>| -> Vec<(i64, f64)> {
        samples
            .iter()
            .filter_map(|s| f(s).map(|v| (s.at, v)))
            .collect()
    };
    let health = match (&write_failure, &model, stats.events) {
        (Some(f), _, _) => format!(
            "writes refused since {} ago: {}",
            ago(now - f.since),
            f.message
        ),
        (None, Some(_), _) => "ready: a model serves".to_string(),
        (None, None, 0) => "ready: no events yet, lists are empty".to_string(),
        (None, None, _) => "not ready: events wait for a first model".to_string(),
    };
    let healthy = write_failure.is_none() && (model.is_some() || stats.events == 0);
    let body = html! {
        section.cards aria-label="Status" {
            div.card {
                h2 { "Health" }
                p class=(if healthy { "ok" } else { "bad" }) { (health) }
                @if let Some(t) = &training {
                    p { "Training: " (t.percent) "% (" (t.stage) "), started " (ago(now - t.started_at)) " ago" }
                }
            }
            div.card {
                h2 { "Data" }
                dl {
                    dt { "Items" } dd { (stats.items) }
                    dt { "Users" } dd { (stats.users) }
                    dt { "Events" } dd { (stats.events) }
                    dt { "Log position" } dd { (stats.last_seq) }
                }
            }
            div.card {
                h2 { "Traffic" }
                dl {
                    dt { "Events/min" } dd { (latest.map_or("-".into(), |s| fmt_num(s.events_per_min))) }
                    dt { "Recommendations/min" } dd { (latest.map_or("-".into(), |s| fmt_num(s.recommendations_per_min))) }
                    dt { "p50 / p99" } dd {
                        (latest.and_then(|s| s.p50_ms).map_or("-".into(), fmt_num)) " / "
                        (latest.and_then(|s| s.p99_ms).map_or("-".into(), fmt_num)) " ms"
                    }
                    dt { "Errors since start" } dd { (totals.server_errors) " 5xx, " (totals.client_errors) " 4xx" }
                    dt { "Requests since start" } dd { (totals.requests) }
                }
                p.muted { "Rates over the last " (SAMPLE_EVERY.as_secs()) " s sample." }
            }
            div.card {
                h2 { "Model" }
                @match &model {
                    Some(m) => dl {
                        dt { "Serving" } dd { a href="/models" { code { (m.version) } } }
                        dt { "Trained" } dd { (when(m.trained_at)) " (" (ago(now - m.trained_at)) " ago)" }
                        dt { "Users × items" } dd { (m.users) " × " (m.items) }
                        dt { "Interactions" } dd { (m.interactions) }
                    },
                    None => p { "No model serves yet." },
                }
                dl {
                    dt { "Next training" }
                    dd {
                        @match next_training {
                            Some(t) => { (when(t)) " (in " (ago(t - now)) ")" },
                            None => "periodic training is off (train.interval_secs = 0)",
                        }
                    }
                }
            }
        }
        section aria-label="Charts" {
            h2 { "Last " (ago(samples.len() as i64 * SAMPLE_EVERY.as_secs() as i64)) }
            @if samples.len() < 2 {
                p.muted { "The sampler takes a sample every " (SAMPLE_EVERY.as_secs()) " s; the charts fill in as they come." }
            }
            div.charts {
                (line_chart("Events", "/min", &series(&|s| Some(s.events_per_min))))
                (line_chart("Recommendation requests", "/min", &series(&|s| Some(s.recommendations_per_min))))
                (line_chart("Recommendation p50", "ms", &series(&|s| s.p50_ms)))
                (line_chart("Recommendation p99", "ms", &series(&|s| s.p99_ms)))
                (line_chart("Errors (4xx + 5xx)", "per sample", &series(&|s| Some((s.client_errors + s.server_errors) as f64))))
            }
        }
    };
    Ok(layout("Overview", "/", &session, body))
}
