//! `cairn-bench serve-profile`: the engine calls behind each endpoint, timed in-process on one thread
//! (no HTTP), plus the stages a personalised request goes through, each timed alone on the same users:
//! the history read from the store, the ranking model's scores over every item, the top-k pass, and
//! the content model's new-item pass. Comparing these with the load test's latencies shows where a
//! request's time goes.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cairn_engine::{Config, Engine, ModelSet, RecommendRequest};
use cairn_models::{top_k, Recommender};
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
    let users: Vec<String> = (0..args.requests)
        .map(|_| user_id(rng.random_range(0..args.users)))
        .collect();
    let items: Vec<String> = (0..args.requests)
        .map(|_| item_id(rng.random_range(0..args.items) as u32))
        .collect();

    time_each("engine.recommend", &users, |u| {
        engine.recommend(&RecommendRequest {
            user_id: u.clone(),
            k: args.k,
            exclude_seen: true,
            category: None,
        })?;
        Ok(())
    })?;
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
    // Histories as model indices with unit weights: the same shape of input the engine builds.
    let histories: Vec<Vec<(u32, f32)>> = users
        .iter()
        .map(|u| {
            Ok(engine
                .store()
                .user_events(u, history_limit)?
                .iter()
                .filter_map(|e| models.items.get(&e.item_id).map(|i| (i, 1.0)))
                .collect())
        })
        .collect::<Result<_>>()?;
    let n = models.items.len();
    let ranker: &dyn Recommender = match &models.main {
        Some(main) => main,
        None => &models.knn,
    };
    let mut scores = vec![0f32; n];
    time_each("ranker fold-in + score (all items)", &histories, |h| {
        ranker.score(h, &mut scores);
        Ok(())
    })?;
    time_each("top_k (no filter)", &histories, |h| {
        ranker.score(h, &mut scores);
        std::hint::black_box(top_k(&scores, args.k, |_| false));
        Ok(())
    })?;
    if let Some(content) = &models.content {
        let mut content_scores = vec![0f32; content.items.len()];
        let content_histories: Vec<Vec<(u32, f32)>> = histories
            .iter()
            .map(|h| {
                h.iter()
                    .filter_map(|&(i, w)| content.items.get(models.items.id(i)).map(|c| (c, w)))
                    .collect()
            })
            .collect();
        time_each("content.score (all items)", &content_histories, |h| {
            content.model.score(h, &mut content_scores);
            Ok(())
        })?;
        // The new-item pass looks every positively scored item up by id to leave out items the
        // collaborative model knows; when nearly all items are known, that is one lookup per item.
        time_each("content.score + new-item top_k", &content_histories, |h| {
            content.model.score(h, &mut content_scores);
            std::hint::black_box(top_k(&content_scores, 1, |i| {
                content_scores[i as usize] <= 0.0 || models.items.get(content.items.id(i)).is_some()
            }));
            Ok(())
        })?;
    }
    Ok(())
}
