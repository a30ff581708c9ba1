//! Strong-generalization accuracy, the harness's protocol: fit on `train.csv`, pick the setting with
//! the best validation NDCG@100 (validation users folded in from `validation_tr`), then score the
//! test users once with that setting.

use std::time::Instant;

use anyhow::Result;
use cairn_models::{top_k, ModelSpec, Recommender};
use rayon::prelude::*;

use crate::data::{HeldOut, StrongSplit};
use crate::metrics::{mean, user_metrics, Scores};

pub fn evaluate(model: &dyn Recommender, held: &HeldOut) -> Scores {
    let n = model.n_items();
    mean(
        held.users
            .par_iter()
            .map_init(
                || vec![0f32; n],
                |scores, (history, targets)| {
                    model.score(history, scores);
                    let seen: std::collections::HashSet<u32> =
                        history.iter().map(|h| h.0).collect();
                    let ranked: Vec<u32> = top_k(scores, 100, |i| seen.contains(&i))
                        .into_iter()
                        .map(|p| p.0)
                        .collect();
                    user_metrics(&ranked, targets)
                },
            )
            .collect::<Vec<_>>(),
    )
}

#[derive(serde::Serialize)]
pub struct Outcome {
    pub chosen: ModelSpec,
    pub validation_ndcg_100: f64,
    pub test: Scores,
    pub fit_s: f64,
    pub predict_s: f64,
    pub grid_size: usize,
}

pub fn tune_and_test(split: &StrongSplit, grid: &[ModelSpec], verbose: bool) -> Result<Outcome> {
    let mut best: Option<(f64, ModelSpec, Box<dyn Recommender>, f64)> = None;
    for spec in grid {
        let t0 = Instant::now();
        let model = spec.try_fit(&split.train)?;
        let fit_s = t0.elapsed().as_secs_f64();
        let v = evaluate(model.as_ref(), &split.validation);
        if verbose {
            eprintln!(
                "  {} ndcg@100 {:.4} r@20 {:.4} fit {:.2}s",
                serde_json::to_string(spec)?,
                v.ndcg_100,
                v.recall_liang_20,
                fit_s
            );
        }
        if best.as_ref().is_none_or(|b| v.ndcg_100 > b.0) {
            best = Some((v.ndcg_100, spec.clone(), model, fit_s));
        }
    }
    let Some((val, chosen, model, fit_s)) = best else {
        anyhow::bail!("empty grid");
    };
    // Every fit is deterministic and the training data is the same, so the validation-time fit is
    // the model a refit would give.
    let t0 = Instant::now();
    let test = evaluate(model.as_ref(), &split.test);
    let predict_s = t0.elapsed().as_secs_f64();
    Ok(Outcome {
        chosen,
        validation_ndcg_100: val,
        test,
        fit_s,
        predict_s,
        grid_size: grid.len(),
    })
}

/// Fits every member on train, learns blend weights on the validation users (NDCG@100), scores test.
pub fn blend(split: &StrongSplit, members: &[ModelSpec]) -> Result<serde_json::Value> {
    let t0 = Instant::now();
    let fitted = members
        .iter()
        .map(|m| m.fit_model(&split.train))
        .collect::<Result<Vec<_>, _>>()?;
    let fit_s = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let grid = [0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0];
    let model = cairn_models::Blend::learn(fitted, &split.validation.users, &grid, 2, 100);
    let learn_s = t0.elapsed().as_secs_f64();
    let validation = evaluate(&model, &split.validation);
    let t0 = Instant::now();
    let test = evaluate(&model, &split.test);
    let predict_s = t0.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "model": "blend", "members": members, "weights": model.weights,
        "validation_ndcg_100": validation.ndcg_100, "test": test,
        "fit_s": fit_s, "learn_weights_s": learn_s, "predict_s": predict_s,
        "threads": rayon::current_num_threads(), "loadavg_1m": crate::speed::loadavg(),
    }))
}

/// Fits the autoencoder on train and prints, every `every` epochs (and after the last), the mean
/// training loss and the validation users' metrics, with the seconds spent training so far. With
/// `ease_lambda`, then fits EASE, learns the weights of a blend of the two on the validation users,
/// and scores the test users once with the final autoencoder, EASE and the blend (one JSON line).
pub fn vae_curve(
    split: &StrongSplit,
    config: cairn_models::VaeConfig,
    every: usize,
    ease_lambda: Option<f32>,
) -> Result<()> {
    let start = Instant::now();
    let mut eval_s = 0.0;
    let vae = cairn_models::MultVae::fit_with(
        &split.train.user_items,
        config,
        &cairn_models::Silent,
        &mut |epoch, loss, model| {
            if epoch % every.max(1) != 0 && epoch != config.epochs {
                return;
            }
            let t0 = Instant::now();
            let v = evaluate(model, &split.validation);
            let train_s = start.elapsed().as_secs_f64() - eval_s;
            eval_s += t0.elapsed().as_secs_f64();
            println!(
                "{}",
                serde_json::json!({
                    "epoch": epoch, "loss": loss, "validation": v, "train_s": train_s,
                    "threads": rayon::current_num_threads(), "loadavg_1m": crate::speed::loadavg(),
                })
            );
        },
    )?;
    let vae_fit_s = start.elapsed().as_secs_f64() - eval_s;
    let Some(lambda) = ease_lambda else {
        return Ok(());
    };
    let t0 = Instant::now();
    let ease = cairn_models::Ease::fit(
        &split.train.user_items,
        cairn_models::EaseConfig {
            lambda,
            ..cairn_models::EaseConfig::default()
        },
    )?;
    let ease_fit_s = t0.elapsed().as_secs_f64();
    let members = vec![
        cairn_models::FittedModel::Ease(ease),
        cairn_models::FittedModel::Vae(vae),
    ];
    let grid = [0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0];
    let blend = cairn_models::Blend::learn(members, &split.validation.users, &grid, 3, 100);
    let validation = evaluate(&blend, &split.validation);
    println!(
        "{}",
        serde_json::json!({
            "config": config, "ease_lambda": lambda, "weights": blend.weights,
            "blend_validation_ndcg_100": validation.ndcg_100,
            "test_vae": evaluate(&blend.members[1], &split.test),
            "test_ease": evaluate(&blend.members[0], &split.test),
            "test_blend": evaluate(&blend, &split.test),
            "vae_fit_s": vae_fit_s, "ease_fit_s": ease_fit_s,
            "threads": rayon::current_num_threads(), "loadavg_1m": crate::speed::loadavg(),
        })
    );
    Ok(())
}
