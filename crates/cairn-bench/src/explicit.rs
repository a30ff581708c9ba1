//! Explicit ratings on the official ml-100k folds u1..u5: RMSE, MAE and fit time per fold.
//!
//! Hyperparameters are chosen without looking at any test fold: 10% of u1's training ratings (seeded)
//! are held out, every grid setting is fitted on the other 90%, and the setting with the lowest RMSE
//! there is then fitted on each fold's full training file and scored on its test file.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};
use cairn_core::CsrMatrix;
use cairn_eval::metrics::{mae, rmse};
use cairn_eval::task::RatingPair;
use cairn_models::{BiasedMf, MfConfig, RatingPredictor, SvdPlusPlus};

use crate::data::read_rating_fold;

fn fit(model: &str, train: &CsrMatrix, config: MfConfig) -> Result<Box<dyn RatingPredictor>> {
    Ok(match model {
        "biased-mf" => Box::new(BiasedMf::fit(train, config)),
        "svdpp" => Box::new(SvdPlusPlus::fit(train, config)),
        other => bail!("unknown rating model {other}"),
    })
}

fn grid(model: &str) -> Vec<MfConfig> {
    let mut out = Vec::new();
    let factors: &[usize] = if model == "svdpp" {
        &[20, 50]
    } else {
        &[50, 100, 200]
    };
    for &factors in factors {
        for epochs in [20, 40, 80] {
            for learning_rate in [0.005, 0.01] {
                for regularization in [0.02, 0.05, 0.1] {
                    out.push(MfConfig {
                        factors,
                        epochs,
                        learning_rate,
                        regularization,
                        bias_regularization: regularization,
                        ..MfConfig::default()
                    });
                }
            }
        }
    }
    out
}

/// RMSE and MAE with cairn-eval's definitions (sums over the pairs in order); no pairs gives 0 for
/// both, as this bench has always printed.
fn errors(model: &dyn RatingPredictor, test: &[RatingPair]) -> (f64, f64) {
    let pairs: Vec<(f64, f64)> = test
        .iter()
        .map(|p| (model.predict(p.user, p.item), f64::from(p.rating)))
        .collect();
    (rmse(&pairs).unwrap_or(0.0), mae(&pairs).unwrap_or(0.0))
}

/// u1's training matrix split 90/10 by a seeded hash of the pair.
fn validation_split(train: &CsrMatrix) -> (CsrMatrix, Vec<RatingPair>) {
    let mut fit = Vec::new();
    let mut held = Vec::new();
    for u in 0..train.n_rows {
        let (items, values) = train.row(u);
        for (&i, &r) in items.iter().zip(values) {
            let h = (u as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ (i as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            let h = (h ^ (h >> 31)).wrapping_mul(0x94D0_49BB_1331_11EB);
            if (h >> 33).is_multiple_of(10) {
                held.push(RatingPair {
                    user: Some(u as u32),
                    item: Some(i),
                    rating: r,
                });
            } else {
                fit.push((u as u32, i, r));
            }
        }
    }
    (
        CsrMatrix::from_triplets(train.n_rows, train.n_cols, fit),
        held,
    )
}

pub fn run(dir: &Path, models: &str) -> Result<()> {
    let u1 = read_rating_fold(&dir.join("u1"))?;
    let (tune_train, tune_held) = validation_split(&u1.train.user_items);
    for model in models.split(',') {
        let mut best: Option<(f64, MfConfig)> = None;
        for config in grid(model) {
            let fitted = fit(model, &tune_train, config)?;
            let (rmse, _) = errors(fitted.as_ref(), &tune_held);
            eprintln!(
                "  {model} {} validation rmse {rmse:.4}",
                serde_json::to_string(&config)?
            );
            if best.is_none_or(|b| rmse < b.0) {
                best = Some((rmse, config));
            }
        }
        let Some((val_rmse, config)) = best else {
            bail!("empty grid")
        };
        let mut folds = Vec::new();
        for k in 1..=5 {
            let fold = read_rating_fold(&dir.join(format!("u{k}")))?;
            let t0 = Instant::now();
            let fitted = fit(model, &fold.train.user_items, config)?;
            let fit_s = t0.elapsed().as_secs_f64();
            let t0 = Instant::now();
            let (rmse, mae) = errors(fitted.as_ref(), &fold.test);
            let predict_s = t0.elapsed().as_secs_f64();
            folds.push(serde_json::json!({"fold": k, "rmse": rmse, "mae": mae, "fit_s": fit_s, "predict_s": predict_s}));
        }
        let mean = |key: &str| {
            folds.iter().filter_map(|f| f[key].as_f64()).sum::<f64>() / folds.len() as f64
        };
        let line = serde_json::json!({
            "model": model, "chosen": config, "validation_rmse": val_rmse,
            "rmse": mean("rmse"), "mae": mean("mae"), "fit_s_mean": mean("fit_s"),
            "predict_s_mean": mean("predict_s"), "folds": folds, "threads": 1,
            "loadavg_1m": crate::speed::loadavg(),
        });
        println!("{line}");
    }
    Ok(())
}
