//! Factors trained outside Cairn (the Spark job `jobs/spark/train_als.py`) on a strong-generalization
//! split, scored as Cairn serves them: the item vectors become Cairn's ALS model
//! (`ImplicitAls::from_factors`, what `cairn import factors` builds) and every held-out user is
//! folded in from their history against them. The fold-in penalty λ is picked on the validation
//! users from `--fold-in-regularization`, then the test users are scored once, as `strong` does
//! for Cairn's own models.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cairn_import::factors::read_factor_table;
use cairn_models::{AlsConfig, ImplicitAls};

use crate::data::StrongSplit;
use crate::strong::evaluate;

pub fn run(split: &StrongSplit, dir: &Path, regularizations: &[f32]) -> Result<serde_json::Value> {
    let manifest_path = dir.join("manifest.json");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("reading {}", manifest_path.display()))?,
    )
    .with_context(|| format!("{}: not JSON", manifest_path.display()))?;
    let param = |key: &str| {
        manifest["params"][key]
            .as_f64()
            .with_context(|| format!("{}: params.{key} is missing", manifest_path.display()))
    };
    let rank = param("rank")? as usize;
    let alpha = param("alpha")? as f32;
    let reg_param = param("reg_param")?;
    let mean_len = manifest["mean_user_interactions"]
        .as_f64()
        .context("manifest: mean_user_interactions is missing")?;
    let t0 = Instant::now();
    let table = read_factor_table(&dir.join("item_factors"), Some(rank))?;
    let read_s = t0.elapsed().as_secs_f64();
    let items = &split.train.items;
    let mut item_factors = vec![0f32; items.len() * rank];
    let (mut placed, mut outside) = (0usize, 0usize);
    for n in 0..table.len() {
        match items.get(&table.ids[n]) {
            Some(i) => {
                let i = i as usize;
                item_factors[i * rank..(i + 1) * rank].copy_from_slice(table.vector(n));
                placed += 1;
            }
            None => outside += 1,
        }
    }
    if placed == 0 {
        bail!("no item of {} is in the split's items", dir.display());
    }
    // MLlib's penalty of a user with the mean number of interactions, then the grid.
    let default = (reg_param * mean_len) as f32;
    let grid: Vec<f32> = if regularizations.is_empty() {
        vec![default]
    } else {
        regularizations.to_vec()
    };
    let model_for = |regularization: f32| {
        ImplicitAls::from_factors(
            AlsConfig {
                factors: rank,
                regularization,
                alpha,
                reg_exponent: 0.0,
                binarize: true,
                ..AlsConfig::default()
            },
            Vec::new(),
            item_factors.clone(),
            mean_len as f32,
        )
    };
    let mut best: Option<(f64, f32)> = None;
    let mut tried = Vec::new();
    for &l in &grid {
        let v = evaluate(&model_for(l), &split.validation);
        eprintln!("  fold-in λ {l}: validation ndcg@100 {:.4}", v.ndcg_100);
        tried.push(
            serde_json::json!({"fold_in_regularization": l, "validation_ndcg_100": v.ndcg_100}),
        );
        if best.is_none_or(|b| v.ndcg_100 > b.0) {
            best = Some((v.ndcg_100, l));
        }
    }
    let (validation_ndcg, chosen) = best.context("empty grid")?;
    let t0 = Instant::now();
    let test = evaluate(&model_for(chosen), &split.test);
    let predict_s = t0.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "model": "spark-als-factors",
        "factors": dir.display().to_string(),
        "params": manifest["params"],
        "spark_training_seconds": manifest["training_seconds"],
        "spark_job_seconds": manifest["job_seconds"],
        "spark_version": manifest["spark_version"],
        "spark_master": manifest["master"],
        "items_placed": placed,
        "items_outside_split": outside,
        "items_without_vector": items.len() - placed,
        "default_fold_in_regularization": default,
        "tried": tried,
        "chosen_fold_in_regularization": chosen,
        "validation_ndcg_100": validation_ndcg,
        "test": test,
        "read_s": read_s,
        "predict_s": predict_s,
        "threads": rayon::current_num_threads(),
        "loadavg_1m": crate::speed::loadavg(),
    }))
}
