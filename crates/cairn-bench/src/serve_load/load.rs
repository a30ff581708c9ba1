//! `cairn-bench load`: drives a running server at each concurrency in turn and prints one JSON line
//! per concurrency (and rate, in open-loop mode).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;
use tokio::time::Instant;

use super::client::{run_connection, Pace, Target, Window};
use super::proc_stats::{cpu_seconds, loadavg_1m};
use super::stats::LatencySummary;

#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// The server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub url: String,
    /// Request path; `{}` is replaced by a uniform random number below --users.
    #[arg(long, default_value = "/v1/users/user-{}/recommendations?k=10")]
    pub path: String,
    /// Ids drawn for `{}` in --path.
    #[arg(long, visible_alias = "ids", default_value_t = 1_000_000)]
    pub users: u64,
    /// Comma-separated numbers of connections, run one after the other.
    #[arg(long, default_value = "1,8,64")]
    pub concurrency: String,
    /// Open loop: comma-separated total request rates per second, each run at every concurrency.
    /// Without it, each connection sends its next request when the previous response arrives.
    #[arg(long)]
    pub rate: Option<String>,
    /// Measured time per run, e.g. 20s.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Unmeasured time before each run, for connections and caches to settle.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Client runtime threads. One is enough for hundreds of connections and leaves the cores to the
    /// server, with which the client shares the machine.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The server's process id, to report its CPU use during each run.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// A name for the results (defaults to the path template).
    #[arg(long)]
    pub label: Option<String>,
}

#[derive(Serialize)]
struct RunLine<'a> {
    label: &'a str,
    path: &'a str,
    mode: &'static str,
    concurrency: usize,
    /// Offered rate (open loop only).
    #[serde(skip_serializing_if = "Option::is_none")]
    target_rps: Option<f64>,
    duration_s: f64,
    #[serde(flatten)]
    latency: LatencySummary,
    loadavg_1m_before: f64,
    /// CPU seconds per wall second over the measured window (2.0 is both cores of this machine).
    client_cpu_cores: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_cpu_cores: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    error_samples: Vec<String>,
}

fn parse_list<T: std::str::FromStr>(list: &str, what: &str) -> Result<Vec<T>> {
    list.split(',')
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("--{what}: `{s}` is not a number"))
        })
        .collect()
}

pub fn run(args: &LoadArgs) -> Result<()> {
    let concurrencies: Vec<usize> = parse_list(&args.concurrency, "concurrency")?;
    if concurrencies.contains(&0) {
        bail!("--concurrency values must be at least 1");
    }
    let paces: Vec<Pace> = match &args.rate {
        None => vec![Pace::Closed],
        Some(list) => {
            let rates: Vec<f64> = parse_list(list, "rate")?;
            if rates.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
                bail!("--rate values must be positive");
            }
            rates.into_iter().map(|rate| Pace::Open { rate }).collect()
        }
    };
    if args.duration.is_zero() {
        bail!("--duration must be positive");
    }
    let target = Arc::new(Target::new(&args.url, &args.path, args.users)?);
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
    let label = args.label.clone().unwrap_or_else(|| args.path.clone());
    for pace in &paces {
        for &concurrency in &concurrencies {
            let line = runtime.block_on(one_run(args, &target, *pace, concurrency, &label))?;
            println!("{}", serde_json::to_string(&line)?);
        }
    }
    Ok(())
}

async fn one_run<'a>(
    args: &'a LoadArgs,
    target: &Arc<Target>,
    pace: Pace,
    concurrency: usize,
    label: &'a str,
) -> Result<RunLine<'a>> {
    let loadavg = loadavg_1m();
    let start = Instant::now();
    let window = Window {
        measure_from: start + args.warmup,
        until: start + args.warmup + args.duration,
    };
    let tasks: Vec<_> = (0..concurrency)
        .map(|i| {
            let target = Arc::clone(target);
            let seed = args.seed;
            tokio::spawn(async move {
                run_connection(&target, pace, concurrency, i, window, seed).await
            })
        })
        .collect();
    let me = std::process::id();
    tokio::time::sleep_until(window.measure_from).await;
    let cpu_before = (cpu_seconds(me), args.server_pid.map(cpu_seconds));
    tokio::time::sleep_until(window.until).await;
    let cpu_after = (cpu_seconds(me), args.server_pid.map(cpu_seconds));
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut error_samples = Vec::new();
    for task in tasks {
        let r = task.await.context("a client connection panicked")?;
        latencies.extend(r.latencies_us);
        errors += r.errors;
        for m in r.error_samples {
            if error_samples.len() < 5 && !error_samples.contains(&m) {
                error_samples.push(m);
            }
        }
    }
    let seconds = args.duration.as_secs_f64();
    Ok(RunLine {
        label,
        path: &args.path,
        mode: match pace {
            Pace::Closed => "closed",
            Pace::Open { .. } => "open",
        },
        concurrency,
        target_rps: match pace {
            Pace::Closed => None,
            Pace::Open { rate } => Some(rate),
        },
        duration_s: seconds,
        latency: LatencySummary::new(latencies, errors, seconds),
        loadavg_1m_before: loadavg,
        client_cpu_cores: (cpu_after.0 - cpu_before.0) / seconds,
        server_cpu_cores: cpu_after
            .1
            .zip(cpu_before.1)
            .map(|(a, b)| (a - b) / seconds),
        error_samples,
    })
}
