//! `cairn-bench serve-profile`: the engine calls behind each endpoint, timed in-process on one thread
//! (no HTTP), plus the stages a personalised request goes through, on the same users: the history
//! read from the store, then the pipeline's retrieval, scoring and re-ranking. Comparing these with
//! the load test's latencies shows where a request's time goes.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use std::collections::HashSet;

use cairn_engine::{Config, Engine, ModelSet, RecommendRequest};
use cairn_pipeline::{self as pipeline, retrieve, Activity, Context, HistoryEvent};
use clap::Args;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::proc_stats::{cpu_seconds, loadavg_1m};
use super::setup::CONFIG_FILE;
use super::stats::LatencySummary;
use super::synth::{item_id, user_id};

#[derive(Args, Debug, Clone)]
pub struct ProfileArgs {
    /// A directory made by serve-setup (not in use by a running server).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Calls per measured operation.
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
    /// Users are drawn from `user-0` up to this.
    #[arg(long, default_value_t = 1_000_000)]
    pub users: u64,
    #[arg(long, default_value_t = 100_000)]
    pub items: u64,
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Draw users from this file (one user id a line) instead of `user-0 ..`, e.g. the heavy users
    /// of an imported dataset.
    #[arg(long)]
    pub user_ids: Option<PathBuf>,
    /// Also write every `engine.recommend` list (user, then each item's id, score, source and
    /// reason) to this file, one JSON line per call, to check that a change keeps the lists.
    #[arg(long)]
    pub lists: Option<PathBuf>,
}

/// One `engine.recommend` answer as `--lists` writes it.
#[derive(Serialize)]
struct ListLine<'a> {
    user: &'a str,
    items: Vec<(&'a str, f32, &'a str, &'a str)>,
}

#[derive(Serialize)]
struct StageLine {
    kind: &'static str,
    stage: &'static str,
    #[serde(flatten)]
    latency: LatencySummary,
    /// CPU time per call: on a busy machine, wall time also counts waiting for a core.
    cpu_ms_per_call: f64,
    loadavg_1m_before: f64,
}

/// Runs `op` once per input and prints the latency summary of the calls as one JSON line.
fn time_each<T>(
    stage: &'static str,
    inputs: &[T],
    mut op: impl FnMut(&T) -> Result<()>,
) -> Result<()> {
    let loadavg = loadavg_1m();
    let mut micros = Vec::with_capacity(inputs.len());
    let cpu_before = cpu_seconds(std::process::id());
    let started = Instant::now();
    for input in inputs {
        let t = Instant::now();
        op(input)?;
        micros.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(std::process::id()) - cpu_before;
    let line = StageLine {
        kind: "profile",
        stage,
        latency: LatencySummary::new(micros, 0, seconds),
        cpu_ms_per_call: cpu * 1000.0 / inputs.len().max(1) as f64,
        loadavg_1m_before: loadavg,
    };
    println!("{}", serde_json::to_string(&line)?);
    Ok(())
}

pub fn run(args: &ProfileArgs) -> Result<()> {
    if args.requests == 0 || args.users == 0 || args.items == 0 {
        bail!("--requests, --users and --items must be at least 1");
    }
    let mut config = Config::load(Some(&args.data_dir.join(CONFIG_FILE)))?;
    config.data_dir = args.data_dir.clone();
    let history_limit = config.serve.history_limit;
    let engine = Engine::open(config).context("opening the data directory")?;
    // The engine keeps its model set private; the same file loaded again gives the stage timings.
    let models = ModelSet::load_latest(&args.data_dir.join("models"))?
        .context("no trained model in the data directory; run serve-setup first")?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let users: Vec<String> = match &args.user_ids {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let ids: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            if ids.is_empty() {
                bail!("{}: no user ids", path.display());
            }
            (0..args.requests)
                .map(|_| ids[rng.random_range(0..ids.len())].to_string())
                .collect()
        }
        None => (0..args.requests)
            .map(|_| user_id(rng.random_range(0..args.users)))
            .collect(),
    };
    // Items likewise: the synthetic ids, or with --user-ids the served model's own items.
    let items: Vec<String> = if args.user_ids.is_some() && !models.items.is_empty() {
        (0..args.requests)
            .map(|_| {
                let j = rng.random_range(0..models.items.len()) as u32;
                models.items.id(j).to_string()
            })
            .collect()
    } else {
        (0..args.requests)
            .map(|_| item_id(rng.random_range(0..args.items) as u32))
            .collect()
    };

    let mut lists = Vec::with_capacity(if args.lists.is_some() { users.len() } else { 0 });
    time_each("engine.recommend", &users, |u| {
        let list = engine.recommend(&RecommendRequest {
            user_id: u.clone(),
            k: args.k,
            exclude_seen: true,
            ..RecommendRequest::default()
        })?;
        if args.lists.is_some() {
            lists.push(list);
        }
        Ok(())
    })?;
    if let Some(path) = &args.lists {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        for (user, list) in users.iter().zip(&lists) {
            let line = ListLine {
                user,
                items: list
                    .items
                    .iter()
                    .map(|r| {
                        (
                            r.item_id.as_str(),
                            r.score,
                            r.source.name(),
                            r.reason.as_str(),
                        )
                    })
                    .collect(),
            };
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    time_each("engine.similar_items", &items, |i| {
        engine.similar_items(i, args.k, None)?;
        Ok(())
    })?;
    time_each("engine.popular", &users, |_| {
        engine.popular(args.k, None)?;
        Ok(())
    })?;

    time_each("store.user_events", &users, |u| {
        engine.store().user_events(u, history_limit)?;
        Ok(())
    })?;
    // The whole-history seen items (the engine reads them only when the history read is cut).
    time_each("store.user_items", &users, |u| {
        engine.store().user_items(u)?;
        Ok(())
    })?;
    // The pipeline's stages on the same users, with contexts built as the engine builds them.
    let serve = engine.config().serve.clone();
    let placement = serve.placements[&serve.default_placement].clone();
    let strength =
        |e: &cairn_core::StoredEvent| engine.config().event_types.strength(&e.event_type, e.value);
    let histories: Vec<Vec<HistoryEvent>> = users
        .iter()
        .map(|u| {
            Ok(engine
                .store()
                .user_events(u, history_limit)?
                .iter()
                .map(|e| HistoryEvent {
                    item: models.table.ids.get(&e.item_id),
                    strength: strength(e),
                    timestamp: e.timestamp.0,
                })
                .collect())
        })
        .collect::<Result<_>>()?;
    let boost = |_: u32| 1.0;
    // Per user: seeds, activity, and the seen items.
    type UserInput = (Vec<(u32, f32)>, Activity, HashSet<u32>);
    let contexts: Vec<UserInput> = histories
        .iter()
        .map(|h| {
            let pairs: Vec<(Option<u32>, f32)> = h.iter().map(|e| (e.item, e.strength)).collect();
            (
                pipeline::seeds(h, serve.recent_items, serve.recency_half_life_days),
                Activity::from_events(&models.table, &pairs, &[]),
                h.iter().filter_map(|e| e.item).collect(),
            )
        })
        .collect();
    // Runs `stage` on a request context built as the engine builds it (cloning the inputs is part
    // of every measured call alike).
    let with_context = |c: &UserInput, stage: &dyn Fn(&Context)| {
        let seen = c.2.clone();
        let allow = move |i: u32| !seen.contains(&i);
        stage(&Context {
            seeds: c.0.clone(),
            activity: c.1.clone(),
            allow: &allow,
            boost: &boost,
            window: serve.list_window,
            seed: 0,
        });
        Ok(())
    };
    time_each("pipeline: retrieve", &contexts, |c| {
        with_context(c, &|ctx| {
            std::hint::black_box(retrieve::retrieve(&models, ctx, &placement));
        })
    })?;
    time_each("pipeline: retrieve + score", &contexts, |c| {
        with_context(c, &|ctx| {
            let r = retrieve::retrieve(&models, ctx, &placement);
            std::hint::black_box(pipeline::score_candidates(&models, ctx, &r, &placement));
        })
    })?;
    time_each("pipeline: retrieve + score + rerank", &contexts, |c| {
        with_context(c, &|ctx| {
            std::hint::black_box(pipeline::run(&models, ctx, &placement));
        })
    })?;
    Ok(())
}
