//! `cairn-bench`: Cairn's models on the peers harness's split folders and synthetic data, printing
//! one JSON line per result (see docs/bench/models.md for the commands and tables).

mod data;
mod drift_sim;
mod experiment_sim;
mod explicit;
mod factors;
mod grids;
mod metrics;
mod pipeline;
mod serve_load;
mod speed;
mod strong;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Benchmarks of Cairn's models against the peers harness")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Strong-generalization accuracy: tune on validation users, score test users once.
    Strong {
        split: PathBuf,
        /// Comma-separated model grids (see grids.rs).
        #[arg(long, default_value = "pop,als")]
        models: String,
        /// Factor counts (comma-separated); a model's grid is searched at each of them.
        #[arg(long, default_value = "64", value_delimiter = ',')]
        factors: Vec<usize>,
        /// Search the harness's `--grid full` (for ALS: 7 penalties × 7 confidence weights, and
        /// Cairn's frequency-scaled penalty beside the constant one) instead of `--grid quick`.
        #[arg(long)]
        tune: bool,
        /// A JSON ModelSpec (or list of them) to use instead of a named grid.
        #[arg(long)]
        spec: Option<String>,
        #[arg(long)]
        verbose: bool,
        /// Blend the --spec models, with weights learned on the validation users.
        #[arg(long)]
        blend: bool,
    },
    /// The validation curve of the autoencoder on a strong-gen split folder: one JSON line every
    /// `--every` epochs with the mean training loss and the validation users' metrics (the test users
    /// are not read), to choose the epoch count and the other settings on validation.
    VaeCurve {
        split: PathBuf,
        /// A `VaeConfig` as JSON; fields left out keep their defaults.
        #[arg(long, default_value = "{}")]
        config: String,
        #[arg(long, default_value_t = 5)]
        every: usize,
        /// Then blend with EASE at this λ (weights learned on validation) and score the test users.
        #[arg(long)]
        ease_lambda: Option<f32>,
    },
    /// Strong generalization with item factors trained elsewhere (jobs/spark/train_als.py's
    /// output folder): held-out users folded in as Cairn serves them, the fold-in λ picked on the
    /// validation users.
    StrongFactors {
        split: PathBuf,
        /// The folder with item_factors/ and manifest.json.
        factors: PathBuf,
        /// Fold-in penalties to try (comma-separated); by default the manifest's reg_param × mean
        /// interactions per user, MLlib's penalty of the mean user.
        #[arg(long, value_delimiter = ',')]
        fold_in_regularization: Vec<f32>,
    },
    /// Explicit ratings on the official ml-100k folds: RMSE and fit time per fold.
    Explicit {
        split: PathBuf,
        #[arg(long, default_value = "biased-mf,svdpp")]
        models: String,
    },
    /// The serving pipeline stage by stage on a temporal split folder (train.csv/test.csv with
    /// timestamps, item_features.csv): each retriever's candidate recall, then NDCG@10 of each
    /// retriever, of rank fusion and of the learned ranker.
    Pipeline {
        split: PathBuf,
        /// Re-split train+test per user: this share of each user's newest events is the test.
        #[arg(long)]
        per_user_last: Option<f64>,
        /// Candidates per retriever.
        #[arg(long, default_value_t = 200)]
        quota: usize,
        /// `train.ranker` settings as JSON, e.g. '{"trees":200,"max_leaves":7}'.
        #[arg(long)]
        ranker: Option<String>,
    },
    /// Seconds per iteration on a synth.py folder.
    Speed {
        model: String,
        data: PathBuf,
        #[arg(long, default_value = "64,128")]
        factors: String,
        #[arg(long, default_value_t = 15)]
        iterations: usize,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// ALS solver as JSON (an `AlsSolver`, e.g. '{"cg":{"steps":3}}', implicit's method);
        /// the default is `AlsConfig`'s.
        #[arg(long)]
        solver: Option<String>,
    },
    /// A data directory with a synthetic shop and a trained model set, for `cairn serve`.
    ServeSetup(serve_load::SetupArgs),
    /// Latency and throughput of a running server under concurrent clients.
    Load(serve_load::LoadArgs),
    /// In-process timings of the engine calls and stages behind the served endpoints.
    ServeProfile(serve_load::ProfileArgs),
    /// A long run of mixed reads and writes at a share of the peak, trainings forced every
    /// minute, the server's memory sampled: one CSV row per minute.
    Soak(serve_load::SoakArgs),
    /// Drift alarms against a running server: a long stable run of windows, then a planted shift
    /// in popularity or event mix; windows until the alarm and false alarms (docs/BENCHMARKS.md).
    DriftSim(drift_sim::DriftSimArgs),
    /// Online experiments against a running server: simulated users with planted tastes and a
    /// position-biased click model; A/A false positives, SRM, power of a planted lift, and
    /// interleaving against A/B (docs/BENCHMARKS.md, "Experiments simulated over HTTP").
    ExperimentSim(experiment_sim::ExperimentSimArgs),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Strong {
            split,
            models,
            factors,
            spec,
            verbose,
            blend,
            tune,
        } => {
            let data = data::read_strong(&split)?;
            eprintln!(
                "# {}: {} train users, {} items, {} validation users, {} test users",
                split.display(),
                data.train.n_users(),
                data.train.n_items(),
                data.validation.users.len(),
                data.test.users.len()
            );
            let grids: Vec<(String, Vec<cairn_models::ModelSpec>)> = match spec {
                Some(json) => {
                    let specs = serde_json::from_str::<Vec<cairn_models::ModelSpec>>(&json)
                        .or_else(|_| serde_json::from_str(&json).map(|s| vec![s]))
                        .context("--spec must be a ModelSpec or a list of them")?;
                    vec![("spec".into(), specs)]
                }
                None => models
                    .split(',')
                    .map(|m| {
                        let width = if tune {
                            grids::Width::Full
                        } else {
                            grids::Width::Quick
                        };
                        grids::grid_over(m, &factors, width)
                            .map(|g| (m.to_string(), g))
                            .with_context(|| format!("no grid named {m}"))
                    })
                    .collect::<Result<_>>()?,
            };
            if blend {
                let members = grids.into_iter().flat_map(|(_, g)| g).collect::<Vec<_>>();
                let line = strong::blend(&data, &members)?;
                println!("{line}");
                return Ok(());
            }
            for (name, grid) in grids {
                let out = strong::tune_and_test(&data, &grid, verbose)?;
                let mut line = serde_json::to_value(&out)?;
                line["model"] = name.into();
                line["split"] = split.display().to_string().into();
                line["threads"] = rayon::current_num_threads().into();
                line["loadavg_1m"] = speed::loadavg().into();
                println!("{line}");
            }
        }
        Command::VaeCurve {
            split,
            config,
            every,
            ease_lambda,
        } => {
            let config: cairn_models::VaeConfig =
                serde_json::from_str(&config).context("--config must be a VaeConfig")?;
            strong::vae_curve(&data::read_strong(&split)?, config, every, ease_lambda)?
        }
        Command::StrongFactors {
            split,
            factors,
            fold_in_regularization,
        } => {
            let data = data::read_strong(&split)?;
            let mut line = factors::run(&data, &factors, &fold_in_regularization)?;
            line["split"] = split.display().to_string().into();
            println!("{line}");
        }
        Command::Explicit { split, models } => explicit::run(&split, &models)?,
        Command::Pipeline {
            split,
            per_user_last,
            quota,
            ranker,
        } => pipeline::run(&split, per_user_last, quota, ranker.as_deref())?,
        Command::Speed {
            model,
            data,
            factors,
            iterations,
            threads,
            solver,
        } => {
            let solver = match solver {
                Some(json) => {
                    serde_json::from_str(&json).context("--solver must be an AlsSolver")?
                }
                None => cairn_models::AlsConfig::default().solver,
            };
            speed::run(&model, &data, &factors, iterations, threads, solver)?
        }
        Command::ServeSetup(args) => serve_load::setup(&args)?,
        Command::Load(args) => serve_load::load(&args)?,
        Command::ServeProfile(args) => serve_load::profile(&args)?,
        Command::Soak(args) => serve_load::soak(&args)?,
        Command::DriftSim(args) => drift_sim::run(&args)?,
        Command::ExperimentSim(args) => experiment_sim::run(&args)?,
    }
    Ok(())
}
