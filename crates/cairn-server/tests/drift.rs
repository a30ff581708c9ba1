//! Drift monitoring through the real server: a champion trained on a seeded popularity model, then
//! windows of events from the same model (no input alarm), then one window whose popularity moved
//! (the alarm fires in that window), with the gauges and the reference surviving a restart.
//! Windows are 2 s long; each window's events go in one batch, sent just after its start.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_core::{Event, Item};
use cairn_engine::Config;
use serde_json::{json, Value};

mod common;

const ITEMS: usize = 200;
const USERS: usize = 100;
const WINDOW_SECS: u64 = 2;

/// A seeded Zipf(1) popularity over the items, read through a rotation: rank `r` is item
/// `(r + shift) % ITEMS`, so a shift moves the head of the distribution to items of the tail.
struct Popularity {
    cdf: Vec<f64>,
    state: u64,
}

impl Popularity {
    fn new(seed: u64) -> Popularity {
        let weights: Vec<f64> = (0..ITEMS).map(|r| 1.0 / (r as f64 + 1.0)).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cdf = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        Popularity {
            cdf,
            state: seed | 1,
        }
    }

    fn next(&mut self) -> f64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        (self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn events(&mut self, n: usize, shift: usize) -> Vec<Event> {
        (0..n)
            .map(|_| {
                let u = (self.next() * USERS as f64) as usize % USERS;
                let x = self.next();
                let rank = self.cdf.partition_point(|c| *c < x).min(ITEMS - 1);
                let kind = if self.next() < 0.9 {
                    "view"
                } else {
                    "purchase"
                };
                Event::new(
                    format!("u{u}"),
                    format!("i{}", (rank + shift) % ITEMS),
                    kind,
                )
            })
            .collect()
    }
}

fn configure(c: &mut Config) {
    c.train.ranker.enabled = false;
    c.train.interval_secs = 0;
    c.drift.window_secs = WINDOW_SECS;
    c.drift.min_window_events = 150;
    c.drift.top_items = 10;
}

/// Sleeps until 100 ms after the next window boundary.
fn wait_for_next_window() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let step = Duration::from_secs(WINDOW_SECS).as_millis();
    let next = (now.as_millis() / step + 1) * step + 100;
    std::thread::sleep(Duration::from_millis((next - now.as_millis()) as u64));
}

fn post_events(base: &str, events: &[Event]) {
    let reply = common::client()
        .post(format!("{base}/v1/events"))
        .json(&json!({ "events": events }))
        .send()
        .unwrap();
    assert!(reply.status().is_success(), "{}", reply.text().unwrap());
}

fn drift(base: &str) -> Value {
    common::client()
        .get(format!("{base}/v1/drift"))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// The input thresholds a window passed.
fn input_alarms(window: &Value) -> Vec<String> {
    window["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .filter(|a| *a != "fallback_share")
        .map(str::to_string)
        .collect()
}

/// A server whose champion was trained on 3,000 events of `model`.
fn start_trained(model: &mut Popularity, configure: impl FnOnce(&mut Config)) -> common::Running {
    let training = model.events(3000, 0);
    common::Running::start(configure, |e| {
        e.put_items((0..ITEMS).map(|i| Item::new(format!("i{i}"))).collect())
            .unwrap();
        e.add_events(training).unwrap();
        e.train().unwrap();
    })
}

#[test]
fn an_alarm_fires_in_the_window_of_a_shift_and_not_before() {
    let mut model = Popularity::new(7);
    let server = start_trained(&mut model, configure);
    let base = server.base.clone();
    let http = common::client();
    let status = drift(&base);
    let champion = status["reference_version"].as_str().unwrap().to_string();
    assert_eq!(status["window_secs"], WINDOW_SECS);

    // Stable windows: the training distribution, and some served lists.
    let stable_windows = 4;
    for _ in 0..stable_windows {
        wait_for_next_window();
        post_events(&base, &model.events(400, 0));
        for u in 0..10 {
            let reply = http
                .get(format!("{base}/v1/users/u{u}/recommendations?k=10"))
                .send()
                .unwrap();
            assert!(reply.status().is_success());
        }
    }
    wait_for_next_window();
    let before = drift(&base);
    let stable: Vec<&Value> = before["windows"]
        .as_array()
        .unwrap()
        .iter()
        // The training events of `prepare` fill a window without a reference: left out.
        .filter(|w| {
            w["events"].as_f64().unwrap() > 0.0 && w["reference_version"] == champion.as_str()
        })
        .collect();
    assert!(!stable.is_empty(), "{before}");
    for w in &stable {
        assert_eq!(
            input_alarms(w),
            Vec::<String>::new(),
            "a stable window: {w}"
        );
        assert_eq!(w["reference_version"], champion.as_str());
        assert!(w["popularity_psi"].as_f64().unwrap() < 0.1, "{w}");
        // The simulated users draw from the whole catalog, so a few stable events fall on items
        // that the 3,000 training events never drew (new to the reference): far below the alarm.
        assert!(w["new_item_share"].as_f64().unwrap() < 0.02, "{w}");
    }
    let events: f64 = stable.iter().map(|w| w["events"].as_f64().unwrap()).sum();
    assert_eq!(events, 400.0 * stable_windows as f64);
    // Every served first page was counted, in whichever window it fell.
    let served: u64 = before["windows"]
        .as_array()
        .unwrap()
        .iter()
        .chain(std::iter::once(&before["current"]))
        .map(|w| w["lists"].as_u64().unwrap())
        .sum();
    assert_eq!(served, 10 * stable_windows as u64);
    assert!(stable.iter().any(|w| w["coverage"].as_f64().unwrap() > 0.0));
    assert_eq!(before["input_alarms"], 0);

    // The shift: the head of popularity moves to what was the middle of the tail.
    post_events(&base, &model.events(400, ITEMS / 2));
    wait_for_next_window();
    let after = drift(&base);
    let windows = after["windows"].as_array().unwrap();
    let shifted = windows
        .iter()
        .rev()
        .find(|w| w["events"].as_f64().unwrap() > 0.0)
        .unwrap();
    let fired = input_alarms(shifted);
    assert!(fired.contains(&"popularity_psi".to_string()), "{shifted}");
    assert!(fired.contains(&"popularity_js".to_string()), "{shifted}");
    assert!(shifted["popularity_psi"].as_f64().unwrap() > 1.0);
    assert_eq!(after["input_alarms"], 1);

    // The gauges show the alarm while that window is the newest complete one.
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let last = windows.last().unwrap();
    if last == shifted {
        assert!(metrics.contains("cairn_drift_alarm 1"), "{metrics}");
        assert!(
            metrics.contains("cairn_drift_alarm_fired{threshold=\"popularity_psi\"} 1"),
            "{metrics}"
        );
    }
    assert!(metrics.contains("cairn_drift_popularity_psi "), "{metrics}");

    // The reference was saved with the version: after a restart the same champion is compared
    // against.
    let dir = server.stop();
    let path = dir.path().to_path_buf();
    let again = common::Running::start(
        |c| {
            configure(c);
            c.data_dir = path;
        },
        |_| {},
    );
    let status = drift(&again.base);
    assert_eq!(status["reference_version"], champion.as_str());
    drop(again);
    drop(dir);
}

#[test]
fn an_input_alarm_trains_at_once_when_configured() {
    let mut model = Popularity::new(11);
    let server = start_trained(&mut model, |c| {
        configure(c);
        c.drift.retrain_on_alarm = true;
    });
    let base = server.base.clone();
    let champion = drift(&base)["reference_version"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for_next_window();
    post_events(&base, &model.events(400, ITEMS / 2));
    // The window closes within 2 s; the training it starts takes a few seconds more.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let retrained = loop {
        let status = drift(&base);
        let now = status["reference_version"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if now != champion && !now.is_empty() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no new champion 120 s after the alarm: {status}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(retrained["input_alarms"], 1);
    let version = retrained["reference_version"].as_str().unwrap();
    let model_now: Value = common::client()
        .get(format!("{base}/v1/model"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(model_now["version"], version);
    let versions: Value = common::client()
        .get(format!("{base}/v1/models"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let trained_by: Vec<&str> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["metadata"]["trained_by"].as_str())
        .collect();
    assert!(trained_by.contains(&"drift"), "{versions}");
}
