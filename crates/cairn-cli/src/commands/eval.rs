//! `cairn eval`: score models offline on a split, print a table, write JSON and an HTML report.
//!
//! The split comes from a folder written by the peers' `splits.py` (`--split-dir`, protocol from its
//! `meta.json`), or is made here from a dataset file with a Rust splitter (`--data`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use cairn_eval::report::{table, write_lists, write_report};
use cairn_eval::runner::StageSelection;
use cairn_eval::stats::CiConfig;
use cairn_eval::tune::TunedConfig;
use cairn_eval::{
    read_split_dir, External, ModelChoice, Protocol, RankingOptions, RunConfig, TieBreak,
};
use clap::{Args, ValueEnum};

use super::pipeline_model::{self, ServedPipeline};
use super::Context;

#[derive(Args)]
pub struct EvalArgs {
    /// A split folder written by the peers' splits.py (train.csv, test.csv, ... and meta.json).
    #[arg(long, conflicts_with = "data")]
    pub split_dir: Option<PathBuf>,
    /// A dataset to split here: a MovieLens folder (ratings.csv or u.data) or a `user,item[,rating][,ts]` CSV.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Protocol. With --split-dir: overrides meta.json (explicit-ml100k, strong-gen, weak-gen,
    /// cold-items, temporal). With --data: holdout, leave-last-out, temporal, strong-gen, cold-items, k-fold.
    #[arg(long)]
    pub protocol: Option<String>,
    /// Comma-separated model names (ranking models of the registry, the rating baselines
    /// `baseline`, `global-mean`, or `pipeline`: the served pipeline with this configuration).
    #[arg(long, default_value = "popularity,item-knn", value_delimiter = ',')]
    pub models: Vec<String>,
    /// Model configurations written by `cairn tune --out` (TOML or JSON), evaluated after --models.
    #[arg(long)]
    pub model_file: Vec<PathBuf>,
    /// Cut-offs.
    #[arg(long, default_value = "10,20,50,100", value_delimiter = ',')]
    pub k: Vec<usize>,
    /// Skip the exact AUC (one full sort per user).
    #[arg(long)]
    pub no_auc: bool,
    /// Order of equally scored items: the lower item index (as serving does), or a seeded random
    /// permutation (use it where a model scores many items equally, e.g. popularity on cold items).
    #[arg(long, value_enum, default_value_t = Ties::Index)]
    pub ties: Ties,
    /// Which stages to score.
    #[arg(long, value_enum, default_value_t = Stages::Test)]
    pub stage: Stages,
    /// Model the others are compared against (default: the first).
    #[arg(long)]
    pub baseline: Option<String>,
    /// Bootstrap resamples for the intervals.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Seed for the bootstrap and for Rust splitters.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Positives are ratings >= this (only with --data).
    #[arg(long)]
    pub min_rating: Option<f32>,
    /// Folder for report.json and report.html.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write every ranked list to `OUT/lists/<stage>__<model>.csv` (user,item,rank).
    #[arg(long, requires = "out")]
    pub lists: bool,
    /// Columns of the printed table (default: a headline set).
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Re-ranking variants of the `pipeline` model, each evaluated on the same fit: knobs of the
    /// default placement joined by `+`, e.g. `calibration=0.3`, `popularity=0.2`,
    /// `calibration=0.3+popularity=0.2`. Listed in order, they draw the trade-off curve of the
    /// HTML report.
    #[arg(long, value_delimiter = ',')]
    pub rerank: Vec<String>,
    /// Item groups for miscalibration and exposure by group: the split's features named
    /// `<GROUP_BY>:<group>` (e.g. `genre`, `brand`). Default: `genre` where the split has it, else
    /// every feature.
    #[arg(long)]
    pub group_by: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Ties {
    Index,
    Random,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Stages {
    Test,
    Validation,
    All,
}

pub fn run(ctx: &Context, args: EvalArgs) -> anyhow::Result<()> {
    let mut models = Vec::new();
    let window = args.k.iter().copied().max().unwrap_or(0);
    let mut pipeline: Option<Arc<ServedPipeline>> = None;
    for name in args
        .models
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
    {
        models.push(if name == pipeline_model::NAME {
            let served = Arc::new(ServedPipeline::new(ctx.config()?, window));
            pipeline = Some(Arc::clone(&served));
            ModelChoice::External(External(served))
        } else {
            ModelChoice::by_name(name)?
        });
    }
    if !args.rerank.is_empty() {
        let base = match &pipeline {
            Some(p) => Arc::clone(p),
            None => Arc::new(ServedPipeline::new(ctx.config()?, window)),
        };
        for knobs in args
            .rerank
            .iter()
            .map(|k| k.trim())
            .filter(|k| !k.is_empty())
        {
            models.push(ModelChoice::External(External(Arc::new(
                base.variant(knobs)?,
            ))));
        }
    }
    for path in &args.model_file {
        models.push(ModelChoice::Ranking(TunedConfig::read_model(path)?));
    }
    let config = RunConfig {
        ranking: RankingOptions {
            ks: args.k.clone(),
            auc: !args.no_auc,
            ties: match args.ties {
                Ties::Index => TieBreak::LowerIndex,
                Ties::Random => TieBreak::Random { seed: args.seed },
            },
        },
        ci: CiConfig {
            resamples: args.bootstrap,
            level: 0.95,
            seed: args.seed,
        },
        stages: match args.stage {
            Stages::Test => StageSelection::Test,
            Stages::Validation => StageSelection::Validation,
            Stages::All => StageSelection::All,
        },
        baseline: args.baseline.clone(),
        keep_lists: args.lists,
        group_by: args.group_by.clone(),
    };
    let (split, source) = load_split(&args)?;
    let progress = crate::progress::Bars::default();
    let mut report = cairn_eval::run(&split, &source, &models, &config, &progress)?;
    report.run.command_line = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let columns = if args.columns.is_empty() {
        table::default_columns(&report)
    } else {
        args.columns.clone()
    };
    print!("{}", table::render(&report, &columns));
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(dir) = &args.out {
        let (json, html) = write_report(&report, dir)?;
        eprintln!("wrote {} and {}", json.display(), html.display());
        if args.lists {
            let files = write_lists(&report, dir)?;
            eprintln!(
                "wrote {} ranked-list files under {}",
                files.len(),
                dir.join("lists").display()
            );
        }
    }
    Ok(())
}

fn load_split(args: &EvalArgs) -> anyhow::Result<(cairn_eval::SplitSet, String)> {
    if let Some(dir) = &args.split_dir {
        let protocol = args
            .protocol
            .as_deref()
            .map(str::parse::<Protocol>)
            .transpose()?;
        let split = read_split_dir(dir, protocol)
            .with_context(|| format!("reading the split folder {}", dir.display()))?;
        return Ok((split, dir.display().to_string()));
    }
    if let Some(path) = &args.data {
        let protocol = args.protocol.as_deref().unwrap_or("holdout");
        let split =
            cairn_eval::splitters::split_dataset(path, protocol, args.min_rating, args.seed)
                .with_context(|| format!("splitting {}", path.display()))?;
        return Ok((
            split,
            format!("{} ({protocol}, seed {})", path.display(), args.seed),
        ));
    }
    anyhow::bail!("give --split-dir (a folder from splits.py) or --data (a dataset to split)")
}
