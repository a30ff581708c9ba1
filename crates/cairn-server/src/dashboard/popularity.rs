//! Item popularity over time, for the item page: each item's events per UTC day over the last
//! [`DAYS`] days, drawn as a bar chart.
//!
//! Why counts kept here, read from the log by position: the store indexes events by user (and by
//! log position), not by item, so a request cannot read one item's events without scanning the
//! whole log (8M events on the serving benchmark's data directory); and the training snapshot,
//! which does hold every (user, item, time), is dropped once the models are fitted and does not
//! exist at all in a server that loaded its model from disk. So the dashboard counts for itself:
//! a background task reads the log once after the server starts, then every [`REFRESH`] the
//! events appended since (by log position, so events of every writer count: the API, the batch
//! route, a `cairn import` over a shared PostgreSQL store), and an item page first reads at most
//! [`CATCH_UP_ON_PAGE`] new events itself, so an event posted a moment ago is on the chart.
//!
//! The price: one scan of the log per server start, on a blocking thread in the background (the
//! page says "still counting" until it ends), and memory of about 8 bytes per (item, day) with
//! events in the window plus one id per such item; a day leaving the window is dropped. Events
//! erased or expired after they were counted stay in the counts until the server restarts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use cairn_engine::Engine;
use maud::{html, Markup};

use super::when;

/// Days shown (today included).
pub const DAYS: usize = 90;
/// How often the background task reads the new events.
pub const REFRESH: Duration = Duration::from_secs(10);
/// Most events an item page reads from the log before it renders.
pub const CATCH_UP_ON_PAGE: usize = 20_000;
/// Events read per hold of the lock by the background task.
const CHUNK: usize = 20_000;
const DAY_SECS: i64 = 86_400;

/// The UTC day number (days since 1970-01-01) of unix seconds.
pub fn day_of(unix: i64) -> i64 {
    unix.div_euclid(DAY_SECS)
}

#[derive(Default)]
struct Counts {
    /// The log position read up to.
    seq: u64,
    /// The whole log has been read once (so the counts are whole).
    ready: bool,
    /// Events read since the start.
    read: u64,
    /// Per item, (day, events) in day order, only days within the window.
    items: HashMap<String, Vec<(i32, u32)>>,
    /// The day the window was last cut at.
    cut_at: i64,
}

impl Counts {
    /// Counts one event of `item` at `unix`, when its day is within the window ending `today`
    /// (an event dated in the future counts on its own day, which the window shows once it comes).
    fn add(&mut self, item: &str, unix: i64, today: i64) {
        let day = day_of(unix);
        if day <= today - DAYS as i64 {
            return;
        }
        let Ok(day) = i32::try_from(day) else { return };
        if !self.items.contains_key(item) {
            self.items.insert(item.to_string(), Vec::new());
        }
        let Some(days) = self.items.get_mut(item) else {
            return;
        };
        match days.binary_search_by_key(&day, |d| d.0) {
            Ok(i) => days[i].1 = days[i].1.saturating_add(1),
            Err(i) => days.insert(i, (day, 1)),
        }
    }

    /// Drops the days that left the window (once a day).
    fn cut(&mut self, today: i64) {
        if self.cut_at == today {
            return;
        }
        self.cut_at = today;
        let first = today - DAYS as i64 + 1;
        self.items.retain(|_, days| {
            days.retain(|d| i64::from(d.0) >= first);
            !days.is_empty()
        });
    }
}

/// The per-item daily counts (see the module's docs).
#[derive(Default)]
pub struct ItemDays {
    counts: Mutex<Counts>,
}

/// One item's chart data: events on each of the [`DAYS`] days ending `today`, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub today: i64,
    pub counts: Vec<u32>,
    /// The log was not read to its end yet: the counts are partial.
    pub partial: bool,
}

/// The dense series of `days` ending `today` from sparse (day, count) pairs.
pub fn series(days: &[(i32, u32)], today: i64) -> Vec<u32> {
    let first = today - DAYS as i64 + 1;
    let mut out = vec![0u32; DAYS];
    for &(d, c) in days {
        let d = i64::from(d);
        if (first..=today).contains(&d) {
            out[(d - first) as usize] += c;
        }
    }
    out
}

impl ItemDays {
    /// Reads up to `max` events after the position read so far; whether it reached the end.
    pub fn catch_up(&self, engine: &Engine, max: usize) -> Result<bool, cairn_engine::EngineError> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let today = day_of(cairn_core::now_unix());
        c.cut(today);
        let counts = &mut *c;
        let mut n = 0usize;
        let mut last = counts.seq;
        engine.store().scan_events(counts.seq, &mut |ev| {
            last = ev.seq;
            counts.add(&ev.item_id, ev.timestamp.0, today);
            n += 1;
            n < max
        })?;
        c.seq = last;
        c.read += n as u64;
        let done = n < max;
        if done {
            c.ready = true;
        }
        Ok(done)
    }

    /// The series of `item` as counted so far.
    pub fn series(&self, item: &str) -> Series {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let today = day_of(cairn_core::now_unix());
        Series {
            today,
            counts: series(c.items.get(item).map_or(&[][..], Vec::as_slice), today),
            partial: !c.ready,
        }
    }
}

/// Starts the background counting on the current tokio runtime (none: the item pages count on
/// their own, a page's worth at a time). It stops once the engine or the counts are dropped.
pub fn spawn_counter(engine: &Arc<Engine>, days: &Arc<ItemDays>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let (engine, days): (Weak<Engine>, Weak<ItemDays>) =
        (Arc::downgrade(engine), Arc::downgrade(days));
    runtime.spawn(async move {
        let mut ticker = tokio::time::interval(REFRESH);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let (Some(engine), Some(days)) = (engine.upgrade(), days.upgrade()) else {
                return;
            };
            let read = tokio::task::spawn_blocking(move || loop {
                match days.catch_up(&engine, CHUNK) {
                    Ok(true) => return Ok(()),
                    Ok(false) => continue,
                    Err(e) => return Err(e),
                }
            })
            .await;
            if let Ok(Err(e)) = read {
                tracing::warn!("the dashboard cannot read the event log for item popularity: {e}");
            }
        }
    });
}

/// The bar chart of one item's events per day.
pub fn chart(s: &Series) -> Markup {
    const W: f64 = 600.0;
    const H: f64 = 120.0;
    const PAD: f64 = 4.0;
    let total: u64 = s.counts.iter().map(|&c| u64::from(c)).sum();
    let max = s.counts.iter().copied().max().unwrap_or(0);
    let col = W / DAYS as f64;
    let scale = if max > 0 {
        (H - PAD) / f64::from(max)
    } else {
        0.0
    };
    let first = s.today - DAYS as i64 + 1;
    let date = |d: i64| when(d * DAY_SECS)[..10].to_string();
    html! {
        figure.chart #popularity {
            figcaption {
                "Events per day, the last " (DAYS) " days: "
                strong { (total) } " in all, at most " (max) " a day"
                @if s.partial { span.muted { " (still counting: the log is being read once since the server started)" } }
            }
            svg viewBox=(format!("0 0 {W} {H}")) preserveAspectRatio="none" role="img"
                aria-label=(format!("Events per day from {} to {}: {total} in all", date(first), date(s.today))) {
                line x1="0" y1=(H) x2=(W) y2=(H) class="axis" {}
                @for (i, &c) in s.counts.iter().enumerate() {
                    @if c > 0 {
                        rect x=(format!("{:.1}", i as f64 * col + 0.5)) y=(format!("{:.1}", H - f64::from(c) * scale))
                            width=(format!("{:.1}", (col - 1.0).max(0.5))) height=(format!("{:.1}", f64::from(c) * scale))
                            class="bar" {
                            title { (date(first + i as i64)) ": " (c) }
                        }
                    }
                }
            }
            p.muted.range { (date(first)) " – " (date(s.today)) " (UTC days)" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_fall_in_their_utc_day_and_old_days_leave_the_window() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(86_399), 0);
        assert_eq!(day_of(86_400), 1);
        assert_eq!(day_of(-1), -1);
        let today = 20_000;
        let noon = today * DAY_SECS + 43_200;
        let mut c = Counts::default();
        c.add("a", noon, today);
        c.add("a", today * DAY_SECS, today); // midnight: today
        c.add("a", today * DAY_SECS - 1, today); // a second before: yesterday
        c.add("a", noon - 89 * DAY_SECS, today); // the window's first day
        c.add("a", noon - 90 * DAY_SECS, today); // one day too old: not kept
        c.add("b", noon, today);
        let s = series(&c.items["a"], today);
        assert_eq!(s.len(), DAYS);
        assert_eq!(s[DAYS - 1], 2);
        assert_eq!(s[DAYS - 2], 1);
        assert_eq!(s[0], 1);
        assert_eq!(s.iter().sum::<u32>(), 4);
        // Ten days later the window has moved: the oldest counted day is gone.
        c.cut(today + 10);
        let later = series(&c.items["a"], today + 10);
        assert_eq!(later.iter().sum::<u32>(), 3);
        assert_eq!(later[DAYS - 11], 2);
        assert_eq!(c.items["a"].len(), 2);
    }

    #[test]
    fn the_chart_has_a_bar_per_day_with_events_and_labels_them() {
        let mut counts = vec![0; DAYS];
        counts[DAYS - 1] = 3;
        counts[DAYS - 2] = 2;
        let html = chart(&Series {
            today: 20_000,
            counts,
            partial: false,
        })
        .into_string();
        assert_eq!(html.matches("<rect").count(), 2, "{html}");
        assert!(
            html.contains("<strong>5</strong> in all, at most 3 a day"),
            "{html}"
        );
        assert!(html.contains(": 3</title>"), "{html}");
        assert!(!html.contains("still counting"));
    }
}
