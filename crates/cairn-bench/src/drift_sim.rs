//! `cairn-bench drift-sim`: does the drift alarm fire within one window of a planted shift, and
//! stay quiet over a long stable run? Drives a running server (`cairn serve` with `[drift]` windows
//! of a few seconds) through its HTTP API only:
//!
//! 1. a seeded shop: `--items` items whose popularity is Zipf(`--zipf`) over a fixed order, and
//!    `--users` users drawn uniformly; events are `view`, with `--purchase-share` of `purchase`;
//! 2. `--train-events` events from that model, then `POST /v1/train` (the champion and its saved
//!    reference);
//! 3. `--stable-windows` windows, each with `--events-per-window` events from the same model (one
//!    batch sent just after the window opens) and `--lists-per-window` recommendation requests;
//! 4. `--shift-windows` windows after a planted shift: `popularity` rotates the order by half the
//!    catalog (the head becomes items of the tail), `mix` raises the purchase share to
//!    `--shifted-purchase-share`; `--shift-fraction` of the events follow the shifted model;
//! 5. `GET /v1/drift`: each window's figures and alarms, matched to the phase it was sent in.
//!
//! Prints one JSON summary (false alarms over the stable windows, windows from the shift to the
//! first input alarm) and writes every window's row to `--out` when given.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shift {
    /// The popularity order rotates by half the catalog.
    Popularity,
    /// The event-type mix moves (more purchases).
    Mix,
}

#[derive(Args, Debug, Clone)]
pub struct DriftSimArgs {
    /// The server, e.g. http://127.0.0.1:18490 (its `[drift]` windows should be a few seconds).
    #[arg(long)]
    pub url: String,
    /// An API key with admin scope, when the server has keys.
    #[arg(long, env = "CAIRN_SIM_KEY")]
    pub key: Option<String>,
    #[arg(long, default_value_t = 500)]
    pub items: usize,
    #[arg(long, default_value_t = 300)]
    pub users: usize,
    /// Exponent of the Zipf popularity.
    #[arg(long, default_value_t = 1.0)]
    pub zipf: f64,
    #[arg(long, default_value_t = 0.1)]
    pub purchase_share: f64,
    #[arg(long, default_value_t = 20_000)]
    pub train_events: usize,
    #[arg(long, default_value_t = 600)]
    pub events_per_window: usize,
    #[arg(long, default_value_t = 10)]
    pub lists_per_window: usize,
    #[arg(long, default_value_t = 30)]
    pub stable_windows: usize,
    #[arg(long, default_value_t = 3)]
    pub shift_windows: usize,
    #[arg(long, value_enum, default_value_t = Shift::Popularity)]
    pub shift: Shift,
    /// Share of the events after the shift that follow the shifted model (the rest the old one).
    #[arg(long, default_value_t = 1.0)]
    pub shift_fraction: f64,
    #[arg(long, default_value_t = 0.4)]
    pub shifted_purchase_share: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where every window's row goes (JSON).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The seeded shop: a popularity order over the items and a way to draw events from it.
struct Model {
    cdf: Vec<f64>,
    items: usize,
    users: usize,
    rng: ChaCha8Rng,
}

impl Model {
    fn new(args: &DriftSimArgs) -> Model {
        let weights: Vec<f64> = (0..args.items)
            .map(|r| 1.0 / (r as f64 + 1.0).powf(args.zipf))
            .collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cdf = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        Model {
            cdf,
            items: args.items,
            users: args.users,
            rng: ChaCha8Rng::seed_from_u64(args.seed),
        }
    }

    /// `n` events: a share `shifted` of them follow the shifted model (the popularity order
    /// rotated by `rotate`, purchases at `shifted_purchase`), the others the original one
    /// (purchases at `purchase`).
    fn events(
        &mut self,
        n: usize,
        purchase: f64,
        rotate: usize,
        shifted_purchase: f64,
        shifted: f64,
    ) -> Vec<Value> {
        (0..n)
            .map(|_| {
                let moved = self.rng.random::<f64>() < shifted;
                let user = self.rng.random_range(0..self.users);
                let x: f64 = self.rng.random();
                let rank = self.cdf.partition_point(|c| *c < x).min(self.items - 1);
                let (item, p) = if moved {
                    ((rank + rotate) % self.items, shifted_purchase)
                } else {
                    (rank, purchase)
                };
                let kind = if self.rng.random::<f64>() < p {
                    "purchase"
                } else {
                    "view"
                };
                json!({"user_id": format!("u{user}"), "item_id": format!("i{item}"), "type": kind})
            })
            .collect()
    }
}

/// A blocking HTTP/1.1 exchange with `Connection: close`: (status, JSON body). Also the client of
/// `experiment-sim`.
pub(crate) struct Http {
    addr: SocketAddr,
    host: String,
    key: Option<String>,
}

impl Http {
    pub(crate) fn new(url: &str, key: Option<String>) -> Result<Http> {
        let host = url
            .strip_prefix("http://")
            .with_context(|| format!("only http:// URLs are supported, not `{url}`"))?
            .trim_end_matches('/')
            .to_string();
        let addr = host
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve `{host}`"))?
            .next()
            .with_context(|| format!("`{host}` resolves to no address"))?;
        Ok(Http { addr, host, key })
    }

    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let mut stream = TcpStream::connect(self.addr)
            .with_context(|| format!("cannot connect to {}", self.addr))?;
        stream.set_read_timeout(Some(Duration::from_secs(600)))?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let auth = self
            .key
            .as_ref()
            .map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n\
             {auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        )?;
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf)?;
        let text = String::from_utf8_lossy(&buf);
        let (head, rest) = text
            .split_once("\r\n\r\n")
            .with_context(|| format!("{method} {path}: no complete response"))?;
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("{method} {path}: bad status line"))?;
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            bail!("{method} {path}: chunked responses are not read by this client");
        }
        let value = if rest.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(rest).with_context(|| format!("{method} {path}: not JSON"))?
        };
        Ok((status, value))
    }

    pub(crate) fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let (status, value) = self.call(method, path, body)?;
        if !(200..300).contains(&status) {
            bail!("{method} {path}: {status} {value}");
        }
        Ok(value)
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Sleeps until `after_ms` past the next multiple of the window; returns that window's start.
fn wait_for_next_window(window_ms: u128, after_ms: u128) -> u128 {
    let now = now_ms();
    let start = (now / window_ms + 1) * window_ms;
    std::thread::sleep(Duration::from_millis((start + after_ms - now) as u64));
    start
}

/// One window's row in the output.
#[derive(Debug, Serialize)]
struct Row {
    phase: &'static str,
    /// 1-based within its phase.
    index: usize,
    started_at: f64,
    events: f64,
    lists: u64,
    popularity_psi: Option<f64>,
    popularity_js: Option<f64>,
    event_mix_psi: Option<f64>,
    new_item_share: Option<f64>,
    coverage: Option<f64>,
    exposure_gini: Option<f64>,
    fallback_share: Option<f64>,
    alarms: Vec<String>,
    input_alarm: bool,
}

#[derive(Debug, Serialize)]
struct Summary {
    shift: Shift,
    shift_fraction: f64,
    window_secs: u64,
    events_per_window: usize,
    stable_windows: usize,
    /// Stable windows whose report was found (sent within one window).
    stable_windows_measured: usize,
    /// Stable windows that raised an input alarm.
    false_alarms: usize,
    /// 1 when the first window after the shift alarmed; `None` when none of them did.
    windows_to_alarm: Option<usize>,
    /// The largest popularity PSI and JS over the stable windows, and the first shifted window's.
    stable_max_psi: Option<f64>,
    stable_max_js: Option<f64>,
    shifted_first_psi: Option<f64>,
    shifted_first_js: Option<f64>,
    shifted_first_mix_psi: Option<f64>,
    thresholds: Value,
    champion: String,
    seed: u64,
}

pub fn run(args: &DriftSimArgs) -> Result<()> {
    if args.items < 2 || args.users == 0 || args.events_per_window == 0 {
        bail!("--items must be at least 2, --users and --events-per-window at least 1");
    }
    let http = Http::new(&args.url, args.key.clone())?;
    let status = http.ok("GET", "/v1/drift", None)?;
    if status["enabled"] != true {
        bail!("drift monitoring is off on the server (drift.enabled)");
    }
    let window_secs = status["window_secs"].as_u64().context("window_secs")?;
    let window_ms = u128::from(window_secs) * 1000;
    let mut model = Model::new(args);

    eprintln!("drift-sim: {} items, training events", args.items);
    let items: Vec<Value> = (0..args.items)
        .map(|i| json!({"id": format!("i{i}")}))
        .collect();
    for chunk in items.chunks(1000) {
        http.ok("POST", "/v1/items", Some(&json!({ "items": chunk })))?;
    }
    let mut left = args.train_events;
    while left > 0 {
        let n = left.min(5000);
        let events = model.events(n, args.purchase_share, 0, args.purchase_share, 0.0);
        http.ok("POST", "/v1/events", Some(&json!({ "events": events })))?;
        left -= n;
    }
    let trained = http.ok("POST", "/v1/train", None)?;
    let champion = trained["version"].as_str().unwrap_or_default().to_string();
    if trained["serving"] != true {
        bail!("the trained version does not serve: {trained}");
    }
    eprintln!("drift-sim: champion {champion}; {window_secs} s windows");

    let (rotate, shifted_purchase) = match args.shift {
        Shift::Popularity => (args.items / 2, args.purchase_share),
        Shift::Mix => (0, args.shifted_purchase_share),
    };
    let mut sent: Vec<(&'static str, usize, u128)> = Vec::new();
    let total = args.stable_windows + args.shift_windows;
    for w in 0..total {
        let start = wait_for_next_window(window_ms, 150);
        let (phase, index) = if w < args.stable_windows {
            ("stable", w + 1)
        } else {
            ("shifted", w - args.stable_windows + 1)
        };
        let fraction = if phase == "stable" {
            0.0
        } else {
            args.shift_fraction
        };
        let events = model.events(
            args.events_per_window,
            args.purchase_share,
            rotate,
            shifted_purchase,
            fraction,
        );
        http.ok("POST", "/v1/events", Some(&json!({ "events": events })))?;
        for _ in 0..args.lists_per_window {
            let user = model.rng.random_range(0..args.users);
            http.ok(
                "GET",
                &format!("/v1/users/u{user}/recommendations?k=10"),
                None,
            )?;
        }
        let spent = now_ms() - start;
        if spent + 100 > window_ms {
            eprintln!(
                "drift-sim: window {} took {spent} ms of {window_ms}: its requests may spill into the next window",
                w + 1
            );
        }
        sent.push((phase, index, start));
    }
    wait_for_next_window(window_ms, 300);
    let status = http.ok("GET", "/v1/drift", None)?;
    let windows = status["windows"].as_array().context("windows")?;
    let mut rows = Vec::new();
    for (phase, index, start) in &sent {
        let started = *start as f64 / 1000.0;
        let Some(w) = windows
            .iter()
            .find(|w| (w["started_at"].as_f64().unwrap_or(-1.0) - started).abs() < 1e-6)
        else {
            continue;
        };
        rows.push(Row {
            phase,
            index: *index,
            started_at: started,
            events: w["events"].as_f64().unwrap_or(0.0),
            lists: w["lists"].as_u64().unwrap_or(0),
            popularity_psi: w["popularity_psi"].as_f64(),
            popularity_js: w["popularity_js"].as_f64(),
            event_mix_psi: w["event_mix_psi"].as_f64(),
            new_item_share: w["new_item_share"].as_f64(),
            coverage: w["coverage"].as_f64(),
            exposure_gini: w["exposure_gini"].as_f64(),
            fallback_share: w["fallback_share"].as_f64(),
            alarms: w["alarms"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            input_alarm: w["input_alarm"] == true,
        });
    }
    let stable: Vec<&Row> = rows.iter().filter(|r| r.phase == "stable").collect();
    let shifted: Vec<&Row> = rows.iter().filter(|r| r.phase == "shifted").collect();
    let max = |it: &mut dyn Iterator<Item = Option<f64>>| it.flatten().reduce(f64::max);
    let summary = Summary {
        shift: args.shift,
        shift_fraction: args.shift_fraction,
        window_secs,
        events_per_window: args.events_per_window,
        stable_windows: args.stable_windows,
        stable_windows_measured: stable.len(),
        false_alarms: stable.iter().filter(|r| r.input_alarm).count(),
        windows_to_alarm: shifted.iter().find(|r| r.input_alarm).map(|r| r.index),
        stable_max_psi: max(&mut stable.iter().map(|r| r.popularity_psi)),
        stable_max_js: max(&mut stable.iter().map(|r| r.popularity_js)),
        shifted_first_psi: shifted.first().and_then(|r| r.popularity_psi),
        shifted_first_js: shifted.first().and_then(|r| r.popularity_js),
        shifted_first_mix_psi: shifted.first().and_then(|r| r.event_mix_psi),
        thresholds: status["thresholds"].clone(),
        champion,
        seed: args.seed,
    };
    if let Some(out) = &args.out {
        std::fs::write(
            out,
            serde_json::to_string_pretty(&json!({ "summary": &summary, "windows": &rows }))?,
        )
        .with_context(|| format!("cannot write {}", out.display()))?;
    }
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
