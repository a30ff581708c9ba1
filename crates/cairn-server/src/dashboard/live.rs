//! The overview's live figures: counters the request metrics feed (lock-free), and a sampler task
//! that turns them into one [`Sample`] every [`SAMPLE_EVERY`], kept in a bounded ring
//! ([`SAMPLES_KEPT`], three hours), from which the overview draws its charts. No Prometheus needed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use cairn_engine::Engine;

/// How often the sampler takes a sample.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Samples kept: three hours at [`SAMPLE_EVERY`].
pub const SAMPLES_KEPT: usize = 1080;

/// Latency buckets: bucket `i` holds latencies below `FIRST_BOUND_US * GROWTH^i` microseconds;
/// the last one everything above. 50 µs up to about 110 s in steps of 20%.
const BUCKETS: usize = 82;
const FIRST_BOUND_US: f64 = 50.0;
const GROWTH: f64 = 1.2;

fn bucket_bound_us(i: usize) -> f64 {
    FIRST_BOUND_US * GROWTH.powi(i as i32)
}

fn bucket_of(us: f64) -> usize {
    if us < FIRST_BOUND_US {
        return 0;
    }
    let i = ((us / FIRST_BOUND_US).ln() / GROWTH.ln()).floor() as usize + 1;
    i.min(BUCKETS - 1)
}

/// Whether a route template serves recommendations (what the overview's latency figures are of).
pub fn is_recommendation_route(route: &str) -> bool {
    matches!(
        route,
        "/v1/users/{id}/recommendations"
            | "/v1/recommendations/batch"
            | "/v1/items/{id}/similar"
            | "/v1/popular"
            | "/v1/trending"
    )
}

/// Cumulative counts since the server started, fed by every API request.
pub struct LiveCounters {
    requests: AtomicU64,
    client_errors: AtomicU64,
    server_errors: AtomicU64,
    recommendations: AtomicU64,
    latency: [AtomicU64; BUCKETS],
}

impl Default for LiveCounters {
    fn default() -> Self {
        LiveCounters {
            requests: AtomicU64::new(0),
            client_errors: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            recommendations: AtomicU64::new(0),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    pub requests: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub recommendations: u64,
    latency: Vec<u64>,
}

impl LiveCounters {
    pub fn observe(&self, route: &str, status: u16, elapsed: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if (400..500).contains(&status) {
            self.client_errors.fetch_add(1, Ordering::Relaxed);
        } else if status >= 500 {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        if is_recommendation_route(route) {
            self.recommendations.fetch_add(1, Ordering::Relaxed);
            let us = elapsed.as_secs_f64() * 1e6;
            self.latency[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn totals(&self) -> Totals {
        Totals {
            requests: self.requests.load(Ordering::Relaxed),
            client_errors: self.client_errors.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            recommendations: self.recommendations.load(Ordering::Relaxed),
            latency: self
                .latency
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
        }
    }
}

/// The `q` quantile (0..1) of a bucketed latency count, in milliseconds, interpolated inside the
/// bucket; `None` without any count.
fn quantile_ms(counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut seen = 0.0;
    for (i, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let next = seen + c as f64;
        if next >= rank {
            let low = if i == 0 { 0.0 } else { bucket_bound_us(i - 1) };
            let high = bucket_bound_us(i);
            let within = ((rank - seen) / c as f64).clamp(0.0, 1.0);
            return Some((low + within * (high - low)) / 1000.0);
        }
        seen = next;
    }
    Some(bucket_bound_us(BUCKETS - 1) / 1000.0)
}

/// What happened in one sampling interval, as rates per minute.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Unix seconds at the end of the interval.
    pub at: i64,
    pub events_per_min: f64,
    pub requests_per_min: f64,
    pub recommendations_per_min: f64,
    /// Latency of the recommendation requests of the interval; `None` when there were none.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// 4xx and 5xx answers in the interval.
    pub client_errors: u64,
    pub server_errors: u64,
}

impl Sample {
    /// The sample between two readings `secs` apart; `events` is the growth of the event log.
    pub fn between(before: &Totals, after: &Totals, events: u64, secs: f64, at: i64) -> Sample {
        let per_min = |d: u64| d as f64 * 60.0 / secs.max(1e-3);
        let latency: Vec<u64> = after
            .latency
            .iter()
            .zip(&before.latency)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        Sample {
            at,
            events_per_min: per_min(events),
            requests_per_min: per_min(after.requests.saturating_sub(before.requests)),
            recommendations_per_min: per_min(
                after.recommendations.saturating_sub(before.recommendations),
            ),
            p50_ms: quantile_ms(&latency, 0.50),
            p99_ms: quantile_ms(&latency, 0.99),
            client_errors: after.client_errors.saturating_sub(before.client_errors),
            server_errors: after.server_errors.saturating_sub(before.server_errors),
        }
    }
}

/// The bounded ring of samples.
pub struct Ring {
    samples: Mutex<VecDeque<Sample>>,
    cap: usize,
}

impl Ring {
    pub fn new(cap: usize) -> Ring {
        Ring {
            samples: Mutex::new(VecDeque::with_capacity(cap.min(4096))),
            cap: cap.max(1),
        }
    }

    pub fn push(&self, sample: Sample) {
        let mut s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        while s.len() >= self.cap {
            s.pop_front();
        }
        s.push_back(sample);
    }

    /// Oldest first.
    pub fn snapshot(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// Starts the sampler on the current tokio runtime (none: nothing is sampled). It stops by itself
/// once the engine and the counters are dropped.
pub fn spawn_sampler(engine: &Arc<Engine>, counters: &Arc<LiveCounters>, ring: &Arc<Ring>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let (engine, counters, ring): (Weak<Engine>, Weak<LiveCounters>, Weak<Ring>) = (
        Arc::downgrade(engine),
        Arc::downgrade(counters),
        Arc::downgrade(ring),
    );
    runtime.spawn(async move {
        let mut ticker = tokio::time::interval(SAMPLE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<(std::time::Instant, Totals, u64)> = None;
        loop {
            ticker.tick().await;
            let (Some(engine), Some(counters), Some(ring)) =
                (engine.upgrade(), counters.upgrade(), ring.upgrade())
            else {
                return;
            };
            let seq = match tokio::task::spawn_blocking(move || engine.stats()).await {
                Ok(Ok(stats)) => stats.last_seq,
                _ => continue,
            };
            let now = (std::time::Instant::now(), counters.totals(), seq);
            if let Some((at, totals, seq)) = &last {
                let secs = now.0.duration_since(*at).as_secs_f64();
                ring.push(Sample::between(
                    totals,
                    &now.1,
                    now.2.saturating_sub(*seq),
                    secs,
                    cairn_core::now_unix(),
                ));
            }
            last = Some(now);
        }
    });
}

/// A line chart of `points` (x: unix seconds, y: value) as an inline SVG, with its maximum
/// labelled. Server-rendered: no script.
pub fn line_chart(title: &str, unit: &str, points: &[(i64, f64)]) -> maud::Markup {
    const W: f64 = 600.0;
    const H: f64 = 140.0;
    const PAD: f64 = 4.0;
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let (x0, x1) = match (points.first(), points.last()) {
        (Some(a), Some(b)) => (a.0, b.0.max(a.0 + 1)),
        _ => (0, 1),
    };
    let scale_y = if max > 0.0 {
        (H - 2.0 * PAD) / max
    } else {
        0.0
    };
    let path: String = points
        .iter()
        .map(|(x, y)| {
            let px = PAD + (x - x0) as f64 / (x1 - x0) as f64 * (W - 2.0 * PAD);
            let py = H - PAD - y * scale_y;
            format!("{px:.1},{py:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ");
    let latest = points.last().map(|p| p.1);
    maud::html! {
        figure.chart {
            figcaption {
                (title) ": "
                @match latest { Some(v) => strong { (fmt_num(v)) " " (unit) }, None => span.muted { "no samples yet" } }
                span.muted { " (max " (fmt_num(max)) ")" }
            }
            svg viewBox=(format!("0 0 {W} {H}")) preserveAspectRatio="none" role="img"
                aria-label=(format!("{title} over the last {} samples", points.len())) {
                line x1="0" y1=(H - PAD) x2=(W) y2=(H - PAD) class="axis" {}
                @if points.len() >= 2 {
                    polyline points=(path) class="series" {}
                }
            }
        }
    }
}

/// A figure with at most 3 significant decimals, no trailing zeros.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_grow_and_cover_every_latency() {
        assert_eq!(bucket_of(0.0), 0);
        assert_eq!(bucket_of(49.0), 0);
        assert_eq!(bucket_of(50.0), 1);
        assert_eq!(bucket_of(1e12), BUCKETS - 1);
        for us in [70.0, 1000.0, 25_000.0, 3e6] {
            let i = bucket_of(us);
            assert!(
                us < bucket_bound_us(i) && us >= bucket_bound_us(i - 1),
                "{us}"
            );
        }
    }

    #[test]
    fn a_sample_has_rates_quantiles_and_errors_of_its_interval_only() {
        let c = LiveCounters::default();
        c.observe(
            "/v1/users/{id}/recommendations",
            200,
            Duration::from_millis(1),
        );
        let before = c.totals();
        for _ in 0..98 {
            c.observe(
                "/v1/users/{id}/recommendations",
                200,
                Duration::from_millis(2),
            );
        }
        c.observe("/v1/popular", 200, Duration::from_millis(200));
        c.observe("/v1/popular", 200, Duration::from_millis(200));
        c.observe("/v1/items/{id}", 404, Duration::from_millis(1));
        c.observe("/v1/events", 503, Duration::from_millis(1));
        let s = Sample::between(&before, &c.totals(), 30, 30.0, 100);
        assert_eq!(s.recommendations_per_min, 200.0);
        assert_eq!(s.requests_per_min, 204.0);
        assert_eq!(s.events_per_min, 60.0);
        assert_eq!((s.client_errors, s.server_errors), (1, 1));
        let p50 = s.p50_ms.unwrap();
        assert!((1.6..=2.4).contains(&p50), "{p50}");
        let p99 = s.p99_ms.unwrap();
        assert!((160.0..=240.0).contains(&p99), "{p99}");
        let idle = Sample::between(&c.totals(), &c.totals(), 0, 10.0, 110);
        assert_eq!((idle.p50_ms, idle.recommendations_per_min), (None, 0.0));
    }

    #[test]
    fn the_ring_keeps_the_newest() {
        let r = Ring::new(3);
        let c = LiveCounters::default();
        for at in 0..5 {
            r.push(Sample::between(&c.totals(), &c.totals(), 0, 1.0, at));
        }
        let at: Vec<i64> = r.snapshot().iter().map(|s| s.at).collect();
        assert_eq!(at, [2, 3, 4]);
    }

    #[test]
    fn charts_draw_a_line_only_with_two_points() {
        let one = line_chart("events", "/min", &[(0, 1.0)]).into_string();
        assert!(!one.contains("polyline"));
        let two = line_chart("events", "/min", &[(0, 1.0), (10, 3.0)]).into_string();
        assert!(two.contains("<polyline"), "{two}");
        assert_eq!(fmt_num(1234.4), "1234");
        assert_eq!(fmt_num(2.50), "2.5");
        assert_eq!(fmt_num(0.0), "0");
    }
}
