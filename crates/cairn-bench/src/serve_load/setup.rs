//! `cairn-bench serve-setup`: fills a Cairn data directory with the synthetic shop through the
//! engine (the same validation and store writes as `POST /v1/events`, minus HTTP), then trains the
//! model set that `cairn serve` loads, and reports how long that took and how big it is.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_engine::{Config, Engine};
use cairn_models::{AlsConfig, ModelSpec};
use clap::Args;
use serde::Serialize;

use super::proc_stats::loadavg_1m;
use super::synth::{users_in_id_order, Shop};

/// Written into the data directory, so `cairn --config D/cairn.toml train` refits the same models.
pub const CONFIG_FILE: &str = "cairn.toml";

#[derive(Args, Debug, Clone)]
pub struct SetupArgs {
    /// A new or empty data directory.
    #[arg(long)]
    pub data_dir: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    pub items: u32,
    #[arg(long, default_value_t = 1_000_000)]
    pub users: u64,
    /// Mean events per user (each user has at least one).
    #[arg(long, default_value_t = 8.0)]
    pub events_per_user: f64,
    #[arg(long, default_value_t = 100)]
    pub categories: u16,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// `train.model`: a model name such as als, ease, bpr; item-knn leaves it unset.
    #[arg(long, default_value = "als")]
    pub model: String,
    /// Factors of a factor model (ALS, BPR).
    #[arg(long, default_value_t = 64)]
    pub factors: usize,
    /// Training iterations of ALS/BPR (model default when absent).
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Events per store write (one fsynced transaction each).
    #[arg(long, default_value_t = 5000)]
    pub batch: usize,
}

#[derive(Serialize)]
struct SetupReport {
    data_dir: String,
    items: u32,
    users: u64,
    events: u64,
    model: String,
    load_seconds: f64,
    events_per_second: f64,
    train_seconds: f64,
    total_seconds: f64,
    model_version: String,
    trained_users: usize,
    trained_items: usize,
    interactions: usize,
    store_bytes: u64,
    model_bytes: u64,
    loadavg_1m_before: f64,
}

/// The `train.model` for a model name, with the factor and iteration settings applied.
pub fn model_spec(
    name: &str,
    factors: usize,
    iterations: Option<usize>,
) -> Result<Option<ModelSpec>> {
    let spec = ModelSpec::default_for(name).with_context(|| {
        format!(
            "unknown model `{name}`; known: {}",
            ModelSpec::known_names().join(", ")
        )
    })?;
    Ok(match spec {
        ModelSpec::ItemKnn(_) => None,
        ModelSpec::Als(c) => Some(ModelSpec::Als(AlsConfig {
            factors,
            iterations: iterations.unwrap_or(c.iterations),
            ..c
        })),
        ModelSpec::Bpr(mut c) => {
            c.factors = factors;
            if let Some(n) = iterations {
                c.iterations = n;
            }
            Some(ModelSpec::Bpr(c))
        }
        other => Some(other),
    })
}

/// The configuration file text: the model to train, and no background retraining, so a load test
/// measures serving alone.
pub fn config_text(model: Option<&ModelSpec>) -> Result<String> {
    let mut train = toml::Table::new();
    train.insert("interval_secs".into(), toml::Value::Integer(0));
    if let Some(spec) = model {
        train.insert(
            "model".into(),
            toml::Value::try_from(spec).context("writing train.model as TOML")?,
        );
    }
    let mut root = toml::Table::new();
    root.insert("train".into(), toml::Value::Table(train));
    Ok(format!(
        "# Written by `cairn-bench serve-setup`.\n{}",
        toml::to_string(&root)?
    ))
}

pub fn run(args: &SetupArgs) -> Result<()> {
    if args.items == 0 || args.users == 0 || args.batch == 0 {
        bail!("--items, --users and --batch must be at least 1");
    }
    if !(args.events_per_user >= 1.0 && args.events_per_user <= 10_000.0) {
        bail!("--events-per-user must be between 1 and 10000");
    }
    let loadavg = loadavg_1m();
    let started = Instant::now();
    let spec = model_spec(&args.model, args.factors, args.iterations)?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let config_path = args.data_dir.join(CONFIG_FILE);
    std::fs::write(&config_path, config_text(spec.as_ref())?)
        .with_context(|| format!("writing {}", config_path.display()))?;
    let mut config = Config::load(Some(&config_path))?;
    config.data_dir = args.data_dir.clone();
    let engine = Engine::open(config)?;
    if engine.stats()?.events > 0 {
        bail!(
            "{} already holds events; give serve-setup a new directory",
            args.data_dir.display()
        );
    }
    let shop = Shop::new(
        args.items,
        args.categories,
        args.seed,
        cairn_core::now_unix(),
    );
    load_items(&engine, &shop)?;
    let events = load_events(&engine, &shop, args)?;
    let load_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "# stored {} items and {events} events in {load_seconds:.0}s; training {}...",
        args.items, args.model
    );
    let report = engine.train().context("training")?;
    let store_bytes = file_size(&args.data_dir.join("cairn.redb"));
    let out = SetupReport {
        data_dir: args.data_dir.display().to_string(),
        items: args.items,
        users: args.users,
        events,
        model: args.model.clone(),
        load_seconds,
        events_per_second: events as f64 / load_seconds,
        train_seconds: report.seconds,
        total_seconds: started.elapsed().as_secs_f64(),
        model_version: report.version,
        trained_users: report.users,
        trained_items: report.items,
        interactions: report.interactions,
        store_bytes,
        model_bytes: file_size(&report.path),
        loadavg_1m_before: loadavg,
    };
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

fn load_items(engine: &Engine, shop: &Shop) -> Result<()> {
    let ids: Vec<u32> = (0..shop.n_items()).collect();
    for chunk in ids.chunks(10_000) {
        engine.put_items(chunk.iter().map(|&i| shop.item(i)).collect())?;
    }
    Ok(())
}

fn load_events(engine: &Engine, shop: &Shop, args: &SetupArgs) -> Result<u64> {
    let expected = (args.users as f64 * args.events_per_user) as u64;
    let started = Instant::now();
    let mut last_report = started;
    let mut stored = 0u64;
    let mut batch = Vec::with_capacity(args.batch + 64);
    let order = users_in_id_order(args.users);
    for (n, &u) in order.iter().enumerate() {
        batch.extend(shop.user_events(u, args.events_per_user));
        let last = n + 1 == order.len();
        if batch.len() >= args.batch || (last && !batch.is_empty()) {
            let outcome = engine.add_events(std::mem::take(&mut batch))?;
            stored += outcome.stored as u64;
        }
        if last_report.elapsed() >= Duration::from_secs(10) || last {
            last_report = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            let rate = stored as f64 / secs;
            let eta = expected.saturating_sub(stored) as f64 / rate.max(1.0);
            eprintln!(
                "# {stored} of about {expected} events, {}/{} users, {rate:.0} events/s, about {eta:.0}s left",
                n + 1,
                order.len()
            );
        }
    }
    Ok(stored)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_text_round_trips_through_the_engine_config() {
        let spec = model_spec("als", 64, Some(3)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        std::fs::write(&path, config_text(spec.as_ref()).unwrap()).unwrap();
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.train.model, spec);
        assert_eq!(config.train.interval_secs, 0);
        assert!(model_spec("item-knn", 64, None).unwrap().is_none());
        assert!(model_spec("nope", 64, None).is_err());
    }

    #[test]
    fn a_small_shop_loads_trains_and_recommends() {
        let dir = tempfile::tempdir().unwrap();
        let args = SetupArgs {
            data_dir: dir.path().join("data"),
            items: 300,
            users: 400,
            events_per_user: 6.0,
            categories: 10,
            seed: 3,
            model: "als".into(),
            factors: 8,
            iterations: Some(2),
            batch: 500,
        };
        run(&args).unwrap();
        let mut config = Config::load(Some(&args.data_dir.join(CONFIG_FILE))).unwrap();
        config.data_dir = args.data_dir.clone();
        let engine = Engine::open(config).unwrap();
        let stats = engine.stats().unwrap();
        assert_eq!(stats.items, 300);
        assert!(stats.events >= 400);
        let info = engine.model_info().expect("a trained model");
        assert_eq!(info.users, 400);
        let recs = engine
            .recommend(&cairn_engine::RecommendRequest {
                user_id: "user-7".into(),
                k: 10,
                exclude_seen: true,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(recs.items.len(), 10);
        assert!(recs.items.iter().any(|r| r.source == "embedding"));
        drop(engine);
        assert!(
            run(&args).is_err(),
            "a second setup into the same directory is refused"
        );
    }
}
