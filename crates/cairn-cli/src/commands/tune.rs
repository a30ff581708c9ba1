//! `cairn tune`: seeded random search over one model's hyperparameters on a split's validation stage;
//! prints the trials, scores the default and the best setting once on the test stage, and writes the
//! best setting as a reusable TOML or JSON configuration (`cairn eval --model-file` reads it back).

use std::path::PathBuf;

use anyhow::Context as _;
use cairn_eval::tune::{default_space, objective_options, parse_space, random_search, TunedConfig};
use cairn_eval::{evaluate_ranking, read_split_dir, EvalTask, Protocol, Role};
use cairn_models::ModelSpec;
use clap::Args;

use super::Context;

#[derive(Args)]
pub struct TuneArgs {
    /// A split folder written by the peers' splits.py; it needs validation files.
    #[arg(long, conflicts_with = "data")]
    pub split_dir: Option<PathBuf>,
    /// A dataset to split here with a Rust splitter (see `cairn eval --data`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Protocol (see `cairn eval --protocol`).
    #[arg(long)]
    pub protocol: Option<String>,
    /// Positives are ratings >= this (only with --data).
    #[arg(long)]
    pub min_rating: Option<f32>,
    /// The model to tune (a name of the models registry).
    #[arg(long)]
    pub model: String,
    /// Number of settings tried, the default setting included.
    #[arg(long, default_value_t = 20)]
    pub trials: usize,
    /// Objective on the validation users, e.g. NDCG@100, RecallLiang@20, MAP@10, AUC.
    #[arg(long, default_value = "NDCG@100")]
    pub metric: String,
    /// Search space, e.g. `neighbours=int:10:1000:log,shrinkage=float:0:100`
    /// (default: each quality knob ×/÷ 4 for integers, ×/÷ 10 for floats, log-uniform).
    #[arg(long)]
    pub space: Option<String>,
    /// Seed of the search (and of Rust splitters).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where to write the best setting (.toml or .json).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(_ctx: &Context, args: TuneArgs) -> anyhow::Result<()> {
    let base = ModelSpec::default_for(&args.model).with_context(|| {
        format!(
            "unknown model `{}` (known: {})",
            args.model,
            ModelSpec::known_names().join(", ")
        )
    })?;
    let space = match &args.space {
        Some(text) => parse_space(text)?,
        None => default_space(&base)?,
    };
    if space.is_empty() && args.trials > 1 {
        anyhow::bail!(
            "{} has no hyperparameter to search; give --space",
            base.name()
        );
    }
    let (split, source) = if let Some(dir) = &args.split_dir {
        let protocol = args
            .protocol
            .as_deref()
            .map(str::parse::<Protocol>)
            .transpose()?;
        let split =
            read_split_dir(dir, protocol).with_context(|| format!("reading {}", dir.display()))?;
        (split, dir.display().to_string())
    } else if let Some(path) = &args.data {
        let protocol = args.protocol.as_deref().unwrap_or("holdout");
        let split =
            cairn_eval::splitters::split_dataset(path, protocol, args.min_rating, args.seed)
                .with_context(|| format!("splitting {}", path.display()))?;
        (
            split,
            format!("{} ({protocol}, seed {})", path.display(), args.seed),
        )
    } else {
        anyhow::bail!("give --split-dir or --data");
    };
    let validation = split
        .stages_with_role(Role::Validation)
        .next()
        .context("the split has no validation stage to tune on")?;
    let task = EvalTask::build(&split, validation);
    eprintln!(
        "tuning {} on {} validation users of {source}: {} trials by {}, space {}",
        base.name(),
        task.users_with_targets(),
        args.trials,
        args.metric,
        serde_json::to_string(&space)?
    );
    let result = random_search(
        &base,
        &space,
        &task,
        &args.metric,
        args.trials,
        args.seed,
        &mut |n, t| {
            eprintln!(
                "trial {n:>3}  {} = {:.4}  fit {:.2}s  {}",
                args.metric,
                t.value,
                t.fit_s,
                serde_json::to_string(&t.spec).unwrap_or_default()
            );
        },
    )?;
    let best = result.best_trial();
    println!(
        "best {} = {:.4} (default {:.4}) on validation: {}",
        args.metric,
        best.value,
        result.trials[0].value,
        serde_json::to_string(&best.spec)?
    );
    // One honest hold-out number for the default and the chosen setting.
    if let Some(test) = split.stages_with_role(Role::Test).next() {
        let task = EvalTask::build(&split, test);
        let opts = objective_options(&args.metric)?;
        for (label, spec) in [("default", &result.trials[0].spec), ("best", &best.spec)] {
            let model = spec
                .try_fit_ordered(&task.train, Some(&task.train_order))
                .with_context(|| format!("fitting the {label} setting on the test stage"))?;
            let r = evaluate_ranking(model.as_ref(), &task, &opts, &|_| {});
            let values = r
                .per_user
                .columns
                .get(&args.metric)
                .cloned()
                .unwrap_or_default();
            let v = cairn_eval::stats::mean(&cairn_eval::stats::defined(&values));
            println!("test {} = {v:.4} with the {label} setting", args.metric);
        }
    }
    if let Some(path) = &args.out {
        TunedConfig::new(&result, &source).write(path)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
