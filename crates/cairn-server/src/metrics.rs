//! Prometheus metrics: request counts and latencies by route and status, plus engine gauges sampled
//! at scrape time.
//!
//! Each server owns its recorder instead of installing a process-wide one: a library should not claim
//! the global recorder, and several servers in one process (tests) keep separate counts.

use std::time::Duration;

use metrics::{counter, gauge, histogram, with_local_recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

pub const REQUESTS: &str = "cairn_http_requests_total";
pub const LATENCY: &str = "cairn_http_request_duration_seconds";

/// Latency buckets in seconds: sub-millisecond cache hits up to requests near the default timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub struct HttpMetrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// The champion last published, whose gauge goes to 0 when another takes its place.
    champion: std::sync::Mutex<Option<String>>,
    /// The same requests, counted for the dashboard's overview sampler.
    pub live: std::sync::Arc<crate::dashboard::live::LiveCounters>,
}

/// Engine figures published as gauges on every scrape.
#[derive(Debug, Clone, Default)]
pub struct EngineGauges {
    pub items: u64,
    pub users: u64,
    pub events: u64,
    pub last_seq: u64,
    pub model_loaded: bool,
    pub model_age_seconds: f64,
    pub model_interactions: u64,
    /// False while the disk refuses the store's writes.
    pub store_writable: bool,
    /// Events deleted by retention since the server started.
    pub events_expired: u64,
    /// Versions the promotion gate refused, all time (their records are never deleted).
    pub refused_versions: u64,
    /// The champion's version and creation time.
    pub champion: Option<(String, i64)>,
    /// Trainings abandoned for running past `train.max_secs`.
    pub trainings_abandoned: u64,
    /// Lists kept for cursor pages, and their estimated bytes (`serve.cursor_cache_bytes`).
    pub cursor_lists: u64,
    pub cursor_bytes: u64,
    /// Rate-limit buckets, and their estimated bytes.
    pub rate_limit_buckets: u64,
    pub rate_limit_bytes: u64,
    /// The bound of the store's page cache (`store.cache_bytes`).
    pub store_cache_limit_bytes: u64,
    /// This process's resident memory (`VmRSS`), when it can be read.
    pub resident_bytes: Option<u64>,
    /// The bytes live on the heap, when the binary counts them (`memory::CountingAllocator`).
    pub live_heap_bytes: Option<u64>,
    /// The newest complete drift window (`cairn_drift_*`), when there is one.
    pub drift: Option<cairn_engine::drift::WindowReport>,
}

/// The thresholds a drift window can pass, each with its `cairn_drift_alarm_fired` series.
const DRIFT_ALARMS: [&str; 6] = [
    "popularity_psi",
    "popularity_js",
    "event_mix_psi",
    "new_item_share",
    "new_user_share",
    "fallback_share",
];

/// The method label of a request: one of the standard methods, else `other`, so that requests
/// with made-up methods cannot add label sets (series) without end.
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("other")
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpMetrics {
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new();
        // Only fails for an empty bucket list, which LATENCY_BUCKETS is not; a summary would do then.
        let builder = builder
            .set_buckets_for_metric(Matcher::Full(LATENCY.to_string()), LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        HttpMetrics {
            recorder,
            handle,
            champion: Default::default(),
            live: Default::default(),
        }
    }

    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.live.observe(route, status, elapsed);
        let labels = [
            ("method", method_label(method).to_string()),
            ("route", route.to_string()),
            ("status", status.to_string()),
        ];
        with_local_recorder(&self.recorder, || {
            counter!(REQUESTS, &labels).increment(1);
            histogram!(LATENCY, &labels).record(elapsed.as_secs_f64());
        });
    }

    /// The Prometheus text exposition, with the engine gauges set to `engine`.
    pub fn render(&self, engine: &EngineGauges) -> String {
        with_local_recorder(&self.recorder, || {
            gauge!("cairn_items").set(engine.items as f64);
            gauge!("cairn_users").set(engine.users as f64);
            gauge!("cairn_events").set(engine.events as f64);
            gauge!("cairn_event_log_last_seq").set(engine.last_seq as f64);
            gauge!("cairn_model_loaded").set(if engine.model_loaded { 1.0 } else { 0.0 });
            gauge!("cairn_model_age_seconds").set(engine.model_age_seconds);
            gauge!("cairn_model_interactions").set(engine.model_interactions as f64);
            gauge!("cairn_store_writable").set(if engine.store_writable { 1.0 } else { 0.0 });
            counter!("cairn_events_expired_total").absolute(engine.events_expired);
            counter!("cairn_model_versions_refused_total").absolute(engine.refused_versions);
            let mut last = self.champion.lock().unwrap_or_else(|p| p.into_inner());
            let now = engine.champion.as_ref().map(|(v, _)| v.clone());
            if let Some(old) = last.as_ref().filter(|old| Some(*old) != now.as_ref()) {
                gauge!("cairn_model_champion", "version" => old.clone()).set(0.0);
            }
            if let Some((version, created)) = &engine.champion {
                gauge!("cairn_model_champion", "version" => version.clone()).set(1.0);
                gauge!("cairn_model_champion_created_seconds").set(*created as f64);
            }
            *last = now;
            counter!("cairn_trainings_abandoned_total").absolute(engine.trainings_abandoned);

            let caches = [
                ("cursor_pages", engine.cursor_lists, engine.cursor_bytes),
                (
                    "rate_limit",
                    engine.rate_limit_buckets,
                    engine.rate_limit_bytes,
                ),
            ];
            for (cache, entries, bytes) in caches {
                gauge!("cairn_cache_entries", "cache" => cache).set(entries as f64);
                gauge!("cairn_cache_bytes", "cache" => cache).set(bytes as f64);
            }
            gauge!("cairn_cache_limit_bytes", "cache" => "store_pages")
                .set(engine.store_cache_limit_bytes as f64);
            if let Some(rss) = engine.resident_bytes {
                gauge!("cairn_process_resident_bytes").set(rss as f64);
            }
            if let Some(live) = engine.live_heap_bytes {
                gauge!("cairn_heap_live_bytes").set(live as f64);
            }
            if let Some(w) = &engine.drift {
                render_drift(w);
            }
        });
        self.handle.run_upkeep();
        self.handle.render()
    }
}

/// The figures of the newest complete drift window; a figure that could not be computed (no
/// events, no reference) is NaN.
fn render_drift(w: &cairn_engine::drift::WindowReport) {
    let or_nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
    let figures = [
        ("cairn_drift_window_end_seconds", w.ended_at),
        ("cairn_drift_events", w.events),
        ("cairn_drift_popularity_psi", or_nan(w.popularity_psi)),
        ("cairn_drift_popularity_js", or_nan(w.popularity_js)),
        ("cairn_drift_event_mix_psi", or_nan(w.event_mix_psi)),
        ("cairn_drift_new_item_share", or_nan(w.new_item_share)),
        ("cairn_drift_new_user_share", or_nan(w.new_user_share)),
        ("cairn_drift_lists", w.lists as f64),
        ("cairn_drift_coverage", or_nan(w.coverage)),
        ("cairn_drift_exposure_gini", or_nan(w.exposure_gini)),
        ("cairn_drift_fallback_share", or_nan(w.fallback_share)),
    ];
    for (name, value) in figures {
        gauge!(name).set(value);
    }
    let quantiles = w.score_quantiles;
    for (q, value) in [
        ("0.1", quantiles.map(|q| q.p10)),
        ("0.5", quantiles.map(|q| q.p50)),
        ("0.9", quantiles.map(|q| q.p90)),
    ] {
        gauge!("cairn_drift_score", "quantile" => q).set(or_nan(value));
    }
    gauge!("cairn_drift_alarm").set(if w.alarms.is_empty() { 0.0 } else { 1.0 });
    for name in DRIFT_ALARMS {
        let fired = w.alarms.iter().any(|a| a == name);
        gauge!("cairn_drift_alarm_fired", "threshold" => name).set(if fired { 1.0 } else { 0.0 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = HttpMetrics::new();
        m.observe_request("GET", "/v1/items/{id}", 404, Duration::from_millis(3));
        m.observe_request("GET", "/v1/items/{id}", 404, Duration::from_millis(3));
        let text = m.render(&EngineGauges {
            items: 7,
            events_expired: 3,
            ..Default::default()
        });
        assert!(text.contains("cairn_events_expired_total 3"), "{text}");
        assert!(
            text.contains(
                r#"cairn_http_requests_total{method="GET",route="/v1/items/{id}",status="404"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains("cairn_http_request_duration_seconds_bucket{"),
            "{text}"
        );
        assert!(text.contains("cairn_items 7"), "{text}");
    }

    #[test]
    fn made_up_methods_share_one_label() {
        let m = HttpMetrics::new();
        for i in 0..100 {
            m.observe_request(&format!("X{i}"), "unmatched", 405, Duration::from_millis(1));
        }
        m.observe_request("GET", "unmatched", 404, Duration::from_millis(1));
        let text = m.render(&EngineGauges::default());
        let series = text
            .lines()
            .filter(|l| l.starts_with("cairn_http_requests_total{"))
            .count();
        assert_eq!(series, 2, "{text}");
        assert!(
            text.contains(
                r#"cairn_http_requests_total{method="other",route="unmatched",status="405"} 100"#
            ),
            "{text}"
        );
    }

    #[test]
    fn cache_gauges_are_exported() {
        let m = HttpMetrics::new();
        let text = m.render(&EngineGauges {
            cursor_lists: 3,
            cursor_bytes: 1200,
            rate_limit_buckets: 2,
            rate_limit_bytes: 300,
            store_cache_limit_bytes: 64,
            resident_bytes: Some(4096),
            live_heap_bytes: Some(2048),
            ..Default::default()
        });
        for line in [
            r#"cairn_cache_entries{cache="cursor_pages"} 3"#,
            r#"cairn_cache_bytes{cache="cursor_pages"} 1200"#,
            r#"cairn_cache_entries{cache="rate_limit"} 2"#,
            r#"cairn_cache_bytes{cache="rate_limit"} 300"#,
            r#"cairn_cache_limit_bytes{cache="store_pages"} 64"#,
            "cairn_process_resident_bytes 4096",
            "cairn_heap_live_bytes 2048",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
