//! `cairn-bench soak`: a long run of mixed reads and writes against a running server.
//!
//! First the peak: the mixed workload closed-loop at each `--peak-concurrency`, the best rate of
//! successful requests kept. Then the soak: the same mix open-loop at `--fraction` of that peak for
//! `--duration`, while a second task forces a training (`POST /v1/train`) every `--train-every` and
//! a third samples the server's resident memory (`VmRSS` of `/proc/PID/status`) every
//! `--rss-every`. Every minute one row goes to `minutes.csv` (requests, errors, latency
//! percentiles, memory, events stored, trainings), each memory sample to `rss.csv`, and at the end
//! a summary (RSS growth after the warm-up, p99 per minute) to `summary.json` and stdout.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tokio::time::Instant;

use super::client::{Connection, Target};
use super::http::request;
use super::proc_stats::loadavg_1m;
use super::stats::percentile;

#[derive(Args, Debug, Clone)]
pub struct SoakArgs {
    /// The server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub url: String,
    /// The server's process id, whose resident memory is sampled.
    #[arg(long)]
    pub server_pid: u32,
    /// Where minutes.csv, rss.csv and summary.json go (created).
    #[arg(long)]
    pub out: PathBuf,
    /// How long the soak runs at the chosen rate, e.g. 30m.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// The share of the peak to run at.
    #[arg(long, default_value_t = 0.7)]
    pub fraction: f64,
    /// Run at this rate instead of measuring the peak (requests per second).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Closed-loop connection counts tried to find the peak.
    #[arg(long, default_value = "4,16,48")]
    pub peak_concurrency: String,
    /// Measured time per peak run (after 3 s unmeasured).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub peak_duration: Duration,
    /// Connections of the soak (the open-loop rate is spread over them).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Interval between forced trainings; 0s forces none.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub train_every: Duration,
    /// Interval between memory samples.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub rss_every: Duration,
    /// Minutes left out of the RSS growth (caches filling, first trainings).
    #[arg(long, default_value_t = 5)]
    pub warmup_minutes: usize,
    /// Users drawn for requests and events: ids from --user-template with numbers
    /// --first-id..--first-id+--users.
    #[arg(long, default_value_t = 1000)]
    pub users: u64,
    #[arg(long, default_value_t = 2000)]
    pub items: u64,
    /// `{}` is the number; `{:04}` pads it with zeros to 4 digits (the demo's `user-0001`).
    #[arg(long, default_value = "user-{:04}")]
    pub user_template: String,
    #[arg(long, default_value = "sku-{:05}")]
    pub item_template: String,
    #[arg(long, default_value_t = 1)]
    pub first_id: u64,
    /// Weights of the mix: recommendations, similar items, popular, event batches.
    #[arg(
        long,
        default_value = "recommendations=55,similar=20,popular=10,events=15"
    )]
    pub mix: String,
    /// Events per batch.
    #[arg(long, default_value_t = 5)]
    pub batch: usize,
    /// Distinct event ids the writes cycle through; 0 = every event new. With a number, once that
    /// many events are stored the writes are acknowledged duplicates, so the log (and what memory
    /// is proportional to) stops growing: the soak then shows whether RSS is flat on fixed data.
    #[arg(long, default_value_t = 0)]
    pub event_ids: u64,
    /// An API key (admin, for the forced trainings and /metrics) when the server has keys.
    #[arg(long, env = "CAIRN_SOAK_KEY")]
    pub key: Option<String>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Client runtime threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// The kinds of request in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Recommendations,
    Similar,
    Popular,
    Events,
}

impl Kind {
    fn is_write(self) -> bool {
        self == Kind::Events
    }
}

/// The mix's cumulative weights.
#[derive(Debug, Clone)]
struct Mix {
    kinds: Vec<(Kind, f64)>,
    total: f64,
}

impl Mix {
    fn parse(text: &str) -> Result<Mix> {
        let mut kinds = Vec::new();
        let mut total = 0.0;
        for part in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .with_context(|| format!("--mix: `{part}` is not name=weight"))?;
            let kind = match name.trim() {
                "recommendations" => Kind::Recommendations,
                "similar" => Kind::Similar,
                "popular" => Kind::Popular,
                "events" => Kind::Events,
                other => bail!(
                    "--mix: unknown kind `{other}` (recommendations, similar, popular, events)"
                ),
            };
            let weight: f64 = weight
                .trim()
                .parse()
                .ok()
                .filter(|w: &f64| w.is_finite() && *w >= 0.0)
                .with_context(|| format!("--mix: `{weight}` is not a weight >= 0"))?;
            total += weight;
            kinds.push((kind, total));
        }
        if total <= 0.0 {
            bail!("--mix: the weights add up to 0");
        }
        Ok(Mix { kinds, total })
    }

    fn draw(&self, rng: &mut ChaCha8Rng) -> Kind {
        let x = rng.random_range(0.0..self.total);
        self.kinds
            .iter()
            .find(|(_, upto)| x < *upto)
            .map_or(self.kinds[self.kinds.len() - 1].0, |(k, _)| *k)
    }
}

/// Formats `n` into a template holding `{}` or `{:0W}`.
fn format_id(template: &str, n: u64) -> String {
    if let Some(start) = template.find("{:0") {
        if let Some(len) = template[start..].find('}') {
            let width: usize = template[start + 3..start + len].parse().unwrap_or(0);
            return format!(
                "{}{n:0width$}{}",
                &template[..start],
                &template[start + len + 1..]
            );
        }
    }
    template.replacen("{}", &n.to_string(), 1)
}

/// What requests look like: ids, mix, key.
struct Workload {
    target: Target,
    key: Option<String>,
    mix: Mix,
    users: (String, u64, u64),
    items: (String, u64, u64),
    batch: usize,
    seed: u64,
    /// See [`SoakArgs::event_ids`].
    event_ids: u64,
}

impl Workload {
    /// The id of the `i`-th event of connection `conn`'s `n`-th request.
    fn event_id(&self, conn: usize, n: u64, i: usize) -> String {
        if self.event_ids == 0 {
            return format!("soak:{}:{conn}:{n}:{i}", self.seed);
        }
        // Each connection walks through the ids from its own offset.
        let k = n * self.batch as u64 + i as u64 + conn as u64 * 7919;
        format!("soak:{}:{}", self.seed, k % self.event_ids)
    }

    fn user(&self, rng: &mut ChaCha8Rng) -> String {
        let (t, first, n) = &self.users;
        format_id(t, first + rng.random_range(0..*n))
    }

    fn item(&self, rng: &mut ChaCha8Rng) -> String {
        let (t, first, n) = &self.items;
        format_id(t, first + rng.random_range(0..*n))
    }

    /// The next request of connection `conn`, its `n`-th: its kind and bytes.
    fn next(&self, rng: &mut ChaCha8Rng, conn: usize, n: u64) -> (Kind, Vec<u8>) {
        let kind = self.mix.draw(rng);
        let host = &self.target.host;
        let key = self.key.as_deref();
        let bytes = match kind {
            Kind::Recommendations => {
                let path = format!("/v1/users/{}/recommendations?k=10", self.user(rng));
                request("GET", host, &path, key, "")
            }
            Kind::Similar => {
                let path = format!("/v1/items/{}/similar?k=10", self.item(rng));
                request("GET", host, &path, key, "")
            }
            Kind::Popular => request("GET", host, "/v1/popular?k=10", key, ""),
            Kind::Events => {
                let events: Vec<serde_json::Value> = (0..self.batch)
                    .map(|i| {
                        let event_type = if rng.random_bool(0.1) {
                            "purchase"
                        } else {
                            "view"
                        };
                        serde_json::json!({
                            "event_id": self.event_id(conn, n, i),
                            "user_id": self.user(rng),
                            "item_id": self.item(rng),
                            "type": event_type,
                        })
                    })
                    .collect();
                let body = serde_json::json!({ "events": events }).to_string();
                request("POST", host, "/v1/events", key, &body)
            }
        };
        (kind, bytes)
    }
}

/// One completed request.
#[derive(Debug, Clone, Copy)]
struct Done {
    kind: Kind,
    /// From the intended send time (open loop) to the end of the response.
    micros: u32,
    ok: bool,
}

/// Completed requests by the minute they finished in.
#[derive(Default)]
struct Minutes {
    by_minute: Vec<Vec<Done>>,
    error_samples: Vec<String>,
}

impl Minutes {
    fn record(&mut self, minute: usize, done: Done) {
        if self.by_minute.len() <= minute {
            self.by_minute.resize_with(minute + 1, Vec::new);
        }
        self.by_minute[minute].push(done);
    }

    fn error(&mut self, message: String) {
        if self.error_samples.len() < 10 && !self.error_samples.contains(&message) {
            self.error_samples.push(message);
        }
    }

    fn take(&mut self, minute: usize) -> Vec<Done> {
        self.by_minute
            .get_mut(minute)
            .map(std::mem::take)
            .unwrap_or_default()
    }
}

/// How a run paces its requests.
#[derive(Debug, Clone, Copy)]
enum Pace {
    Closed,
    /// Total requests per second over all connections.
    Open(f64),
}

/// Runs one connection until `until`, recording into `minutes` by minute since `start` (requests
/// that finish before `start` are not recorded: they warm up).
#[allow(clippy::too_many_arguments)]
async fn drive(
    work: Arc<Workload>,
    pace: Pace,
    connections: usize,
    index: usize,
    start: Instant,
    until: Instant,
    minutes: Arc<Mutex<Minutes>>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(
        work.seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let interval = match pace {
        Pace::Closed => None,
        Pace::Open(rate) => Some(Duration::from_secs_f64(connections as f64 / rate)),
    };
    let mut due = interval
        .map(|every| Instant::now() + every.mul_f64(index as f64 / connections.max(1) as f64));
    let mut connection: Option<Connection> = None;
    let mut n = 0u64;
    loop {
        let started = match (due, interval) {
            (Some(at), Some(every)) => {
                due = Some(at + every);
                if Instant::now() < at {
                    tokio::time::sleep_until(at).await;
                }
                // Late sends count from when they were due (no coordinated omission).
                at
            }
            _ => Instant::now(),
        };
        if started >= until {
            break;
        }
        n += 1;
        let (kind, bytes) = work.next(&mut rng, index, n);
        if connection.is_none() {
            match Connection::open(work.target.addr).await {
                Ok(c) => connection = Some(c),
                Err(e) => {
                    let finished = Instant::now();
                    if finished >= start {
                        let mut m = minutes.lock().unwrap_or_else(|p| p.into_inner());
                        m.record(minute_of(start, finished), failed(kind, started, finished));
                        m.error(format!("connect: {e}"));
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(conn) = connection.as_mut() else {
            continue;
        };
        let outcome = conn.exchange(&bytes).await;
        let finished = Instant::now();
        if finished < start {
            if !matches!(outcome, Ok((_, false))) {
                connection = None;
            }
            continue;
        }
        let micros =
            u32::try_from(finished.duration_since(started).as_micros()).unwrap_or(u32::MAX);
        let minute = minute_of(start, finished);
        let mut m = minutes.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok((status, close)) => {
                let ok = status == 200;
                m.record(minute, Done { kind, micros, ok });
                if !ok {
                    m.error(format!("{kind:?}: HTTP status {status}"));
                }
                if close {
                    connection = None;
                }
            }
            Err(e) => {
                m.record(
                    minute,
                    Done {
                        kind,
                        micros,
                        ok: false,
                    },
                );
                m.error(format!("{kind:?}: {e}"));
                connection = None;
            }
        }
    }
}

fn failed(kind: Kind, started: Instant, finished: Instant) -> Done {
    Done {
        kind,
        micros: u32::try_from(finished.duration_since(started).as_micros()).unwrap_or(u32::MAX),
        ok: false,
    }
}

fn minute_of(start: Instant, at: Instant) -> usize {
    (at.saturating_duration_since(start).as_secs() / 60) as usize
}

/// Latency figures of a set of completed requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
struct Latency {
    requests: u64,
    errors: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn latency(done: &[Done], keep: impl Fn(&Done) -> bool) -> Latency {
    let mut ok: Vec<u32> = done
        .iter()
        .filter(|d| keep(d) && d.ok)
        .map(|d| d.micros)
        .collect();
    ok.sort_unstable();
    let ms = |p: f64| percentile(&ok, p).map_or(f64::NAN, |us| f64::from(us) / 1000.0);
    Latency {
        requests: done.iter().filter(|d| keep(d)).count() as u64,
        errors: done.iter().filter(|d| keep(d) && !d.ok).count() as u64,
        p50_ms: ms(50.0),
        p99_ms: ms(99.0),
        max_ms: ms(100.0),
    }
}

/// A memory sample.
#[derive(Debug, Clone, Copy)]
struct RssSample {
    seconds: f64,
    kib: u64,
}

/// `VmRSS` of process `pid`, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    cairn_engine::memory::parse_vm_rss(&status).map(|b| b / 1024)
}

/// What a forced training did.
#[derive(Debug, Clone)]
struct Training {
    finished_minute: usize,
    seconds: f64,
    status: u16,
}

/// Figures read from the server's /metrics at a minute's end.
#[derive(Debug, Clone, Copy, Default)]
struct Scrape {
    events: Option<f64>,
    cursor_bytes: Option<f64>,
    cursor_lists: Option<f64>,
    heap_live_bytes: Option<f64>,
}

fn parse_scrape(text: &str) -> Scrape {
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().parse::<f64>().ok())
    };
    Scrape {
        events: value("cairn_events "),
        cursor_bytes: value("cairn_cache_bytes{cache=\"cursor_pages\"} "),
        cursor_lists: value("cairn_cache_entries{cache=\"cursor_pages\"} "),
        heap_live_bytes: value("cairn_heap_live_bytes "),
    }
}

/// One blocking request on a fresh connection that the server closes after: (status, body).
fn one_shot(target: &Target, method: &str, path: &str, key: Option<&str>) -> Result<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(target.addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(600)))?;
    let mut bytes = request(method, &target.host, path, key, "");
    // Ask the server to close, so the body ends where the stream does.
    let marker = b"\r\n\r\n";
    let head_end = bytes
        .windows(4)
        .position(|w| w == marker)
        .context("malformed request")?;
    bytes.splice(head_end + 2..head_end + 2, *b"Connection: close\r\n");
    stream.write_all(&bytes)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status line")?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    ))
}

/// The data of a chunked body.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// One row of minutes.csv.
#[derive(Debug, Clone, Serialize)]
struct MinuteRow {
    minute: usize,
    #[serde(flatten)]
    all: Latency,
    rps: f64,
    read_p99_ms: f64,
    write_p99_ms: f64,
    rss_mib_end: f64,
    rss_mib_max: f64,
    /// The lowest sample of the minute: the RSS between trainings' transients.
    rss_mib_min: f64,
    /// The bytes live on the server's heap at the minute's end (`cairn_heap_live_bytes`).
    heap_live_mib: f64,
    events_stored: f64,
    cursor_lists: f64,
    cursor_mib: f64,
    trainings: usize,
    train_seconds_max: f64,
    train_errors: usize,
    loadavg_1m: f64,
}

const CSV_HEADER: &str = "minute,requests,errors,rps,p50_ms,p99_ms,max_ms,read_p99_ms,write_p99_ms,rss_mib_end,rss_mib_max,rss_mib_min,heap_live_mib,events_stored,cursor_lists,cursor_mib,trainings,train_seconds_max,train_errors,loadavg_1m";

impl MinuteRow {
    fn csv(&self) -> String {
        let f = |x: f64| {
            if x.is_finite() {
                format!("{x:.2}")
            } else {
                String::new()
            }
        };
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            self.minute,
            self.all.requests,
            self.all.errors,
            f(self.rps),
            f(self.all.p50_ms),
            f(self.all.p99_ms),
            f(self.all.max_ms),
            f(self.read_p99_ms),
            f(self.write_p99_ms),
            f(self.rss_mib_end),
            f(self.rss_mib_max),
            f(self.rss_mib_min),
            f(self.heap_live_mib),
            f(self.events_stored),
            f(self.cursor_lists),
            f(self.cursor_mib),
            self.trainings,
            f(self.train_seconds_max),
            self.train_errors,
            f(self.loadavg_1m),
        )
    }
}

#[derive(Debug, Serialize)]
struct PeakRun {
    concurrency: usize,
    rps: f64,
    errors: u64,
    p99_ms: f64,
}

#[derive(Debug, Serialize)]
struct Summary {
    url: String,
    mix: String,
    batch: usize,
    peak: Vec<PeakRun>,
    peak_rps: Option<f64>,
    target_rps: f64,
    concurrency: usize,
    minutes: usize,
    warmup_minutes: usize,
    requests: u64,
    errors: u64,
    error_samples: Vec<String>,
    /// RSS at the end of the warm-up and at the end, and the growth between, in percent.
    rss_mib_after_warmup: f64,
    rss_mib_end: f64,
    rss_mib_max_after_warmup: f64,
    rss_growth_pct: f64,
    /// The largest RSS after the warm-up over the RSS at its end, in percent.
    rss_max_growth_pct: f64,
    /// The lowest RSS sample of the last minute of the warm-up and of the last minute, and the
    /// growth between, in percent: the RSS without a training's transient.
    rss_min_mib_after_warmup: f64,
    rss_min_mib_end: f64,
    rss_min_growth_pct: f64,
    /// The live heap (`cairn_heap_live_bytes`) at the end of the warm-up and at the end, and the
    /// growth between, in percent: a leak grows it, an allocator keeping pages does not.
    heap_live_mib_after_warmup: f64,
    heap_live_mib_end: f64,
    heap_live_growth_pct: f64,
    /// The p99 of each minute after the warm-up: lowest, median, highest.
    p99_ms_min: f64,
    p99_ms_median: f64,
    p99_ms_max: f64,
    events_stored_start: f64,
    events_stored_end: f64,
    trainings: usize,
    train_errors: usize,
}

pub fn run(args: &SoakArgs) -> Result<()> {
    if !(args.fraction > 0.0 && args.fraction <= 1.0) {
        bail!("--fraction must be in (0, 1]");
    }
    if args.duration.as_secs() < 60 {
        bail!("--duration must be at least a minute");
    }
    if args.concurrency == 0 || args.batch == 0 || args.users == 0 || args.items == 0 {
        bail!("--concurrency, --batch, --users and --items must be at least 1");
    }
    if rss_kib(args.server_pid).is_none() {
        bail!(
            "cannot read /proc/{}/status: is --server-pid the server's process id?",
            args.server_pid
        );
    }
    let peak_concurrency: Vec<usize> = args
        .peak_concurrency
        .split(',')
        .map(|s| s.trim().parse().ok().filter(|n| *n > 0))
        .collect::<Option<_>>()
        .context("--peak-concurrency: a comma-separated list of numbers >= 1")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let work = Arc::new(Workload {
        target: Target::new(&args.url, "/", 1)?,
        key: args.key.clone(),
        mix: Mix::parse(&args.mix)?,
        users: (args.user_template.clone(), args.first_id, args.users),
        items: (args.item_template.clone(), args.first_id, args.items),
        batch: args.batch,
        seed: args.seed,
        event_ids: args.event_ids,
    });
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .context("starting the client runtime")?;
    runtime.block_on(soak(args, work, &peak_concurrency))
}

async fn closed_run(work: &Arc<Workload>, concurrency: usize, measure: Duration) -> PeakRun {
    let minutes = Arc::new(Mutex::new(Minutes::default()));
    let settle = Duration::from_secs(3);
    let start = Instant::now() + settle;
    let until = start + measure;
    let tasks: Vec<_> = (0..concurrency)
        .map(|i| {
            tokio::spawn(drive(
                Arc::clone(work),
                Pace::Closed,
                concurrency,
                i,
                start,
                until,
                Arc::clone(&minutes),
            ))
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let done: Vec<Done> =
        std::mem::take(&mut minutes.lock().unwrap_or_else(|p| p.into_inner()).by_minute)
            .into_iter()
            .flatten()
            .collect();
    let l = latency(&done, |_| true);
    PeakRun {
        concurrency,
        rps: (l.requests - l.errors) as f64 / measure.as_secs_f64(),
        errors: l.errors,
        p99_ms: l.p99_ms,
    }
}

async fn soak(args: &SoakArgs, work: Arc<Workload>, peak_concurrency: &[usize]) -> Result<()> {
    let mut peak = Vec::new();
    let target_rps = match args.rate {
        Some(rate) => rate,
        None => {
            for &c in peak_concurrency {
                let run = closed_run(&work, c, args.peak_duration).await;
                eprintln!(
                    "[soak] peak run: {} connections, {:.1} ok req/s, {} errors, p99 {:.1} ms",
                    run.concurrency, run.rps, run.errors, run.p99_ms
                );
                peak.push(run);
            }
            let best = peak.iter().map(|r| r.rps).fold(0.0, f64::max);
            if best <= 0.0 {
                bail!(
                    "no request succeeded while finding the peak; is the server at {} up?",
                    args.url
                );
            }
            best * args.fraction
        }
    };
    let peak_rps = (!peak.is_empty()).then(|| peak.iter().map(|r| r.rps).fold(0.0, f64::max));
    eprintln!(
        "[soak] running at {target_rps:.1} req/s on {} connections for {:?}",
        args.concurrency, args.duration
    );

    let minutes = Arc::new(Mutex::new(Minutes::default()));
    let start = Instant::now();
    let until = start + args.duration;
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|i| {
            tokio::spawn(drive(
                Arc::clone(&work),
                Pace::Open(target_rps),
                args.concurrency,
                i,
                start,
                until,
                Arc::clone(&minutes),
            ))
        })
        .collect();

    // Forced trainings, one after the other.
    let trainings: Arc<Mutex<Vec<Training>>> = Arc::default();
    let trainer = (!args.train_every.is_zero()).then(|| {
        let work = Arc::clone(&work);
        let trainings = Arc::clone(&trainings);
        let every = args.train_every;
        tokio::spawn(async move {
            let mut next = start + every;
            while next < until {
                tokio::time::sleep_until(next).await;
                let began = Instant::now();
                let w = Arc::clone(&work);
                let status = tokio::task::spawn_blocking(move || {
                    one_shot(&w.target, "POST", "/v1/train", w.key.as_deref())
                })
                .await
                .ok()
                .and_then(Result::ok)
                .map_or(0, |(status, _)| status);
                let finished = Instant::now();
                trainings
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Training {
                        finished_minute: minute_of(start, finished),
                        seconds: finished.duration_since(began).as_secs_f64(),
                        status,
                    });
                next = (next + every).max(Instant::now());
            }
        })
    });

    // Memory samples.
    let samples: Arc<Mutex<Vec<RssSample>>> = Arc::default();
    let sampler = {
        let samples = Arc::clone(&samples);
        let pid = args.server_pid;
        let every = args.rss_every;
        let path = args.out.join("rss.csv");
        tokio::spawn(async move {
            let mut file = std::fs::File::create(&path).ok();
            if let Some(f) = file.as_mut() {
                let _ = writeln!(f, "seconds,rss_kib");
            }
            let mut next = start;
            while next <= until {
                tokio::time::sleep_until(next).await;
                if let Some(kib) = rss_kib(pid) {
                    let seconds = start.elapsed().as_secs_f64();
                    if let Some(f) = file.as_mut() {
                        let _ = writeln!(f, "{seconds:.1},{kib}");
                    }
                    samples
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(RssSample { seconds, kib });
                }
                next += every;
            }
        })
    };

    // One row per minute, written as each minute ends.
    let csv_path = args.out.join("minutes.csv");
    let mut csv = std::fs::File::create(&csv_path)
        .with_context(|| format!("creating {}", csv_path.display()))?;
    writeln!(csv, "{CSV_HEADER}")?;
    let total_minutes = args.duration.as_secs().div_ceil(60) as usize;
    let mut rows = Vec::new();
    let first_scrape = scrape(&work).await;
    for minute in 0..total_minutes {
        let end = (start + Duration::from_secs(60 * (minute as u64 + 1))).min(until);
        tokio::time::sleep_until(end).await;
        let scraped = scrape(&work).await;
        let done = minutes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(minute);
        let seconds = (end - (start + Duration::from_secs(60 * minute as u64))).as_secs_f64();
        let in_minute: Vec<RssSample> = samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|s| minute_of_secs(s.seconds) == minute)
            .copied()
            .collect();
        let trained: Vec<Training> = trainings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|t| t.finished_minute == minute)
            .cloned()
            .collect();
        let all = latency(&done, |_| true);
        let mib = |kib: u64| kib as f64 / 1024.0;
        let row = MinuteRow {
            minute,
            all,
            rps: all.requests as f64 / seconds,
            read_p99_ms: latency(&done, |d| !d.kind.is_write()).p99_ms,
            write_p99_ms: latency(&done, |d| d.kind.is_write()).p99_ms,
            rss_mib_end: rss_kib(args.server_pid)
                .or_else(|| in_minute.last().map(|s| s.kib))
                .map_or(f64::NAN, mib),
            rss_mib_max: in_minute.iter().map(|s| s.kib).max().map_or(f64::NAN, mib),
            rss_mib_min: in_minute.iter().map(|s| s.kib).min().map_or(f64::NAN, mib),
            heap_live_mib: scraped
                .heap_live_bytes
                .map_or(f64::NAN, |b| b / (1024.0 * 1024.0)),
            events_stored: scraped.events.unwrap_or(f64::NAN),
            cursor_lists: scraped.cursor_lists.unwrap_or(f64::NAN),
            cursor_mib: scraped
                .cursor_bytes
                .map_or(f64::NAN, |b| b / (1024.0 * 1024.0)),
            trainings: trained.len(),
            train_seconds_max: trained.iter().map(|t| t.seconds).fold(f64::NAN, f64::max),
            train_errors: trained.iter().filter(|t| t.status != 200).count(),
            loadavg_1m: loadavg_1m(),
        };
        writeln!(csv, "{}", row.csv())?;
        csv.flush()?;
        eprintln!("[soak] {}", row.csv());
        rows.push(row);
    }
    for t in tasks {
        let _ = t.await;
    }
    if let Some(t) = trainer {
        t.abort();
    }
    sampler.abort();

    let error_samples = minutes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .error_samples
        .clone();
    let trained = trainings.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let summary = summarize(
        args,
        &rows,
        SummaryInputs {
            peak,
            peak_rps,
            target_rps,
            error_samples,
            events_start: first_scrape.events.unwrap_or(f64::NAN),
            trainings: trained.len(),
            train_errors: trained.iter().filter(|t| t.status != 200).count(),
        },
    );
    let text = serde_json::to_string_pretty(&summary)?;
    std::fs::write(args.out.join("summary.json"), &text)?;
    println!("{text}");
    Ok(())
}

fn minute_of_secs(seconds: f64) -> usize {
    (seconds / 60.0).floor().max(0.0) as usize
}

async fn scrape(work: &Arc<Workload>) -> Scrape {
    let w = Arc::clone(work);
    tokio::task::spawn_blocking(move || one_shot(&w.target, "GET", "/metrics", w.key.as_deref()))
        .await
        .ok()
        .and_then(Result::ok)
        .filter(|(status, _)| *status == 200)
        .map_or_else(Scrape::default, |(_, body)| parse_scrape(&body))
}

struct SummaryInputs {
    peak: Vec<PeakRun>,
    peak_rps: Option<f64>,
    target_rps: f64,
    error_samples: Vec<String>,
    events_start: f64,
    trainings: usize,
    train_errors: usize,
}

fn summarize(args: &SoakArgs, rows: &[MinuteRow], inputs: SummaryInputs) -> Summary {
    let warm = args.warmup_minutes.min(rows.len().saturating_sub(1));
    let after = &rows[warm.min(rows.len())..];
    // The RSS at the end of the warm-up is the end of its last minute.
    let base = warm
        .checked_sub(1)
        .and_then(|i| rows.get(i))
        .map_or(f64::NAN, |r| r.rss_mib_end);
    let end = rows.last().map_or(f64::NAN, |r| r.rss_mib_end);
    let at_warm = |f: fn(&MinuteRow) -> f64| {
        warm.checked_sub(1)
            .and_then(|i| rows.get(i))
            .map_or(f64::NAN, f)
    };
    let at_end = |f: fn(&MinuteRow) -> f64| rows.last().map_or(f64::NAN, f);
    let growth = |from: f64, to: f64| (to - from) / from * 100.0;
    let (min_base, min_end) = (at_warm(|r| r.rss_mib_min), at_end(|r| r.rss_mib_min));
    let (heap_base, heap_end) = (at_warm(|r| r.heap_live_mib), at_end(|r| r.heap_live_mib));
    let max_after = after.iter().map(|r| r.rss_mib_max).fold(f64::NAN, f64::max);
    let mut p99: Vec<f64> = after
        .iter()
        .map(|r| r.all.p99_ms)
        .filter(|x| x.is_finite())
        .collect();
    p99.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        if p99.is_empty() {
            f64::NAN
        } else {
            p99[((p99.len() - 1) as f64 * q).round() as usize]
        }
    };
    Summary {
        url: args.url.clone(),
        mix: args.mix.clone(),
        batch: args.batch,
        peak: inputs.peak,
        peak_rps: inputs.peak_rps,
        target_rps: inputs.target_rps,
        concurrency: args.concurrency,
        minutes: rows.len(),
        warmup_minutes: warm,
        requests: rows.iter().map(|r| r.all.requests).sum(),
        errors: rows.iter().map(|r| r.all.errors).sum(),
        error_samples: inputs.error_samples,
        rss_mib_after_warmup: base,
        rss_mib_end: end,
        rss_mib_max_after_warmup: max_after,
        rss_growth_pct: (end - base) / base * 100.0,
        rss_max_growth_pct: (max_after - base) / base * 100.0,
        rss_min_mib_after_warmup: min_base,
        rss_min_mib_end: min_end,
        rss_min_growth_pct: growth(min_base, min_end),
        heap_live_mib_after_warmup: heap_base,
        heap_live_mib_end: heap_end,
        heap_live_growth_pct: growth(heap_base, heap_end),
        p99_ms_min: pick(0.0),
        p99_ms_median: pick(0.5),
        p99_ms_max: pick(1.0),
        events_stored_start: inputs.events_start,
        events_stored_end: rows.last().map_or(f64::NAN, |r| r.events_stored),
        trainings: inputs.trainings,
        train_errors: inputs.train_errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_their_template() {
        assert_eq!(format_id("user-{:04}", 7), "user-0007");
        assert_eq!(format_id("sku-{:05}", 123), "sku-00123");
        assert_eq!(format_id("user-{}", 42), "user-42");
        assert_eq!(format_id("item-{}-x", 3), "item-3-x");
    }

    #[test]
    fn the_mix_draws_by_weight() {
        let mix = Mix::parse("recommendations=3,events=1").unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let writes = (0..4000)
            .filter(|_| mix.draw(&mut rng) == Kind::Events)
            .count();
        assert!((800..1200).contains(&writes), "{writes}");
        assert!(Mix::parse("nothing=1").is_err());
        assert!(Mix::parse("events=0").is_err());
        assert!(Mix::parse("events=x").is_err());
    }

    #[test]
    fn with_event_ids_set_the_writes_cycle_through_that_many_ids() {
        let work = Workload {
            target: Target::new("http://127.0.0.1:9", "/", 1).unwrap(),
            key: None,
            mix: Mix::parse("events=1").unwrap(),
            users: ("user-{:04}".into(), 1, 10),
            items: ("sku-{:05}".into(), 1, 10),
            batch: 5,
            seed: 9,
            event_ids: 100,
        };
        let ids: std::collections::BTreeSet<String> = (0..4)
            .flat_map(|conn| (0..500).flat_map(move |n| (0..5).map(move |i| (conn, n, i))))
            .map(|(conn, n, i)| work.event_id(conn, n, i))
            .collect();
        assert_eq!(ids.len(), 100, "10,000 events, 100 distinct ids");
        let unique = Workload {
            event_ids: 0,
            ..work
        };
        assert_ne!(unique.event_id(0, 1, 0), unique.event_id(0, 21, 0));
    }

    #[test]
    fn event_batches_are_json_with_unique_ids() {
        let work = Workload {
            target: Target::new("http://127.0.0.1:9", "/", 1).unwrap(),
            key: Some("k".into()),
            mix: Mix::parse("events=1").unwrap(),
            users: ("user-{:04}".into(), 1, 10),
            items: ("sku-{:05}".into(), 1, 10),
            batch: 3,
            seed: 9,
            event_ids: 0,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (kind, bytes) = work.next(&mut rng, 2, 5);
        assert_eq!(kind, Kind::Events);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("POST /v1/events HTTP/1.1\r\n"), "{text}");
        assert!(text.contains("Authorization: Bearer k\r\n"), "{text}");
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        let events = json["events"].as_array().unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0]["event_id"], "soak:9:2:5:0");
        assert_eq!(events[2]["event_id"], "soak:9:2:5:2");
        assert!(events[0]["user_id"]
            .as_str()
            .unwrap()
            .starts_with("user-00"));
        // Each is an event as the API reads it.
        for e in events {
            let event: cairn_core::Event = serde_json::from_value(e.clone()).unwrap();
            assert!(["view", "purchase"].contains(&event.event_type.as_str()));
        }
    }

    #[test]
    fn scrapes_and_chunked_bodies() {
        let text = "# HELP x\ncairn_events 1234\ncairn_cache_bytes{cache=\"cursor_pages\"} 2048\ncairn_cache_entries{cache=\"cursor_pages\"} 3\ncairn_heap_live_bytes 4096\n";
        let s = parse_scrape(text);
        assert_eq!(s.heap_live_bytes, Some(4096.0));
        assert_eq!(s.events, Some(1234.0));
        assert_eq!(s.cursor_bytes, Some(2048.0));
        assert_eq!(s.cursor_lists, Some(3.0));
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
    }

    #[test]
    fn latency_splits_errors_from_percentiles() {
        let done = [
            Done {
                kind: Kind::Popular,
                micros: 1000,
                ok: true,
            },
            Done {
                kind: Kind::Events,
                micros: 3000,
                ok: true,
            },
            Done {
                kind: Kind::Events,
                micros: 9000,
                ok: false,
            },
        ];
        let all = latency(&done, |_| true);
        assert_eq!((all.requests, all.errors), (3, 1));
        assert_eq!(all.p50_ms, 1.0);
        assert_eq!(all.max_ms, 3.0);
        let writes = latency(&done, |d| d.kind.is_write());
        assert_eq!((writes.requests, writes.errors, writes.p99_ms), (2, 1, 3.0));
    }
}
