//! `cairn import factors DIR`: user and item factors trained outside Cairn (the Spark job
//! `jobs/spark/train_als.py`, docs/SPARK.md) become a model version. The folder holds
//! `user_factors/` and `item_factors/` (Parquet: `id` string, `features` list of floats; see
//! `cairn_import::factors`) and `manifest.json` (the job's parameters). The factors become Cairn's
//! own ALS model type, so serving folds users in, searches the item vectors by ANN and ranks exactly
//! as for a model `cairn train` fits; the rest of the model set (popularity, item-kNN, content, the
//! ranker) is fitted on the stored events as in a training, and the version goes through the same
//! promotion gate.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use cairn_core::IdMap;
use cairn_engine::ImportedModel;
use cairn_import::factors::{read_factor_table, FactorTable};
use cairn_models::{AlsConfig, FittedModel, ImplicitAls};
use clap::Args;

use super::Context;

#[derive(Args)]
pub struct FactorsArgs {
    /// The folder the Spark job wrote: user_factors/, item_factors/ and manifest.json.
    dir: PathBuf,
    /// λ of the fold-in of users (every user is folded in from their history when served). By
    /// default MLlib's penalty of a user with the mean number of interactions: the manifest's
    /// reg_param × mean_user_interactions (MLlib scales regParam by each user's count).
    #[arg(long)]
    fold_in_regularization: Option<f32>,
}

/// What `manifest.json` must hold (the job writes more; all of it is kept in the version's
/// metadata).
struct Manifest {
    rank: usize,
    reg_param: f32,
    alpha: f32,
    iterations: usize,
    binarize: bool,
    mean_user_interactions: f64,
}

impl Manifest {
    fn parse(path: &Path, raw: &serde_json::Value) -> anyhow::Result<Manifest> {
        let format = raw.get("format").and_then(|f| f.as_str());
        if format != Some("cairn-factors") {
            bail!(
                "{}: `format` is {}, not \"cairn-factors\" (write it with jobs/spark/train_als.py)",
                path.display(),
                raw.get("format")
                    .map_or("missing".into(), |f| f.to_string())
            );
        }
        let number = |key: &str| -> anyhow::Result<f64> {
            let value = if key == "mean_user_interactions" {
                raw.get(key)
            } else {
                raw.get("params").and_then(|p| p.get(key))
            };
            match value.and_then(|v| v.as_f64()) {
                Some(x) if x.is_finite() && x >= 0.0 => Ok(x),
                _ => bail!(
                    "{}: `{key}` must be a number, not negative (found {})",
                    path.display(),
                    value.map_or("nothing".into(), |v| v.to_string())
                ),
            }
        };
        let rank = number("rank")? as usize;
        if rank == 0 {
            bail!("{}: `rank` must be at least 1", path.display());
        }
        Ok(Manifest {
            rank,
            reg_param: number("reg_param")? as f32,
            alpha: number("alpha")? as f32,
            iterations: number("iterations")? as usize,
            binarize: raw
                .get("params")
                .and_then(|p| p.get("binarize"))
                .and_then(|b| b.as_bool())
                .unwrap_or(true),
            mean_user_interactions: number("mean_user_interactions")?,
        })
    }
}

pub fn run(ctx: &Context, args: FactorsArgs) -> anyhow::Result<()> {
    let manifest_path = args.dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let raw: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not JSON", manifest_path.display()))?;
    let p = Manifest::parse(&manifest_path, &raw)?;
    let regularization = match args.fold_in_regularization {
        Some(l) if l.is_finite() && l > 0.0 => l,
        Some(l) => bail!("--fold-in-regularization must be a positive number, not {l}"),
        None => (f64::from(p.reg_param) * p.mean_user_interactions).max(1e-3) as f32,
    };
    let users = read_factor_table(&args.dir.join("user_factors"), Some(p.rank))?;
    let items = read_factor_table(&args.dir.join("item_factors"), Some(p.rank))?;
    eprintln!(
        "read {} user and {} item vectors of {} factors from {}",
        users.len(),
        items.len(),
        p.rank,
        args.dir.display()
    );
    let config = AlsConfig {
        factors: p.rank,
        iterations: p.iterations,
        regularization,
        alpha: p.alpha,
        reg_exponent: 0.0,
        binarize: p.binarize,
        ..AlsConfig::default()
    };
    let mean_user_len = p.mean_user_interactions as f32;
    let build = |snapshot: &cairn_pipeline::Snapshot| -> Result<FittedModel, String> {
        let user_factors = place(&users, &snapshot.users, "user")?;
        let item_factors = place(&items, &snapshot.items, "item")?;
        Ok(FittedModel::Als(ImplicitAls::from_factors(
            config,
            user_factors,
            item_factors,
            mean_user_len,
        )))
    };
    let source = serde_json::json!({
        "dir": absolute(&args.dir).display().to_string(),
        "fold_in_regularization": regularization,
        "manifest": raw,
    });
    let engine = ctx.open_engine()?;
    let progress = crate::progress::Training::new(&engine);
    let report = engine.import_model(
        "cli (import factors)",
        &progress,
        &ImportedModel {
            build: &build,
            source,
        },
    );
    progress.finish();
    let report = report?;
    println!(
        "imported the factors of {} as model {} over {} users x {} items ({} interactions; fold-in λ {regularization}); saved to {}",
        args.dir.display(),
        report.version,
        report.users,
        report.items,
        report.interactions,
        report.path.display()
    );
    super::train::print_gate(&report);
    Ok(())
}

/// The vectors of `table` in the rows of `ids` (the training data's indices); ids the training
/// data lacks are an error naming the file and row, ids without a vector get zeros.
fn place(table: &FactorTable, ids: &IdMap, kind: &str) -> Result<Vec<f32>, String> {
    let k = table.dim;
    let mut out = vec![0f32; ids.len() * k];
    for n in 0..table.len() {
        let Some(i) = ids.get(&table.ids[n]) else {
            return Err(format!(
                "{}: {kind} `{}` has no events in the training data (export the interactions \
                 with `cairn export interactions --without-holdout` from this data directory and \
                 train on that)",
                table.origin(n),
                table.ids[n]
            ));
        };
        out[i as usize * k..(i as usize + 1) * k].copy_from_slice(table.vector(n));
    }
    Ok(out)
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
