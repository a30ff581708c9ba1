//! Warm-items benchmark on a peers strong-generalization split folder (`train.csv`, `validation_tr/te`,
//! `test_tr/te`, `item_features.csv`): in one run, fits Cairn's collaborative members (EASE, ALS,
//! user-kNN by default) and their validation-learned blend, the hybrid on interactions plus item
//! features, and blends of the hybrid with the collaborative members whose weights are learned on the
//! validation users (NDCG@100). Every model is then scored once on the test users. One JSON line per
//! model, with cairn-eval's metrics (the definitions of the peers' `metrics.py`).
//!
//! ```text
//! cargo run --release -p cairn-lab --example warm_items -- SPLIT_DIR
//!     [--cf '[{"model":"ease","lambda":1000.0}, ...]'] [--factors 64] [--epochs 20] [--lr 0.05]
//!     [--identity-share 0.6] [--context-identity-share 0.9] [--trials 10] [--loss warp|bpr]
//!     [--tag-weight 1] [--text-weight 1] [--extras ../shared/data/ml-1m/movies_extrainfos.dat]
//!     [--saturation 0.3] [--no-hybrid] [--collective-lambda 1000]
//!     [--collective-weights 0,1,3,10,30,100]
//! ```
//!
//! Collective EASE (interactions plus item features in one closed form) is fitted at every item
//! feature weight of `--collective-weights`; the weight with the best validation NDCG@100 is scored
//! once on the test users.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use cairn_content::{ContentModel, FeatureConfig, FeatureSpace};
use cairn_eval::{read_split_dir, EvalTask};
use cairn_lab::{hybrid, CollectiveConfig, CollectiveEase, HybridConfig, Loss};
use cairn_models::blend::{LearnOptions, ValidationUser};
use cairn_models::{Blend, FittedModel, ModelSpec, Recommender};
use common::{build_items, mean_metric, read_extras, report};

/// The members of the best collaborative blend of docs/bench/models.md (weights learned again here).
const DEFAULT_CF: &str = r#"[{"model":"ease","lambda":1000.0},{"model":"als","factors":128,"regularization":100.0,"alpha":10.0},{"model":"user-knn","neighbours":50}]"#;

struct Args {
    split: PathBuf,
    cf: Vec<ModelSpec>,
    hybrid: HybridConfig,
    features: FeatureConfig,
    extras: Option<PathBuf>,
    /// Fit the HybridModel (slow on ML-1M: sequential WARP); without it only the content model
    /// carries the features.
    fit_hybrid: bool,
    saturation: f32,
    collective_lambda: f32,
    collective_weights: Vec<f32>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut split = None;
    let mut cf = DEFAULT_CF.to_string();
    let mut hybrid = HybridConfig::default();
    let mut features = FeatureConfig::default();
    let mut extras = None;
    let mut fit_hybrid = true;
    let mut saturation = cairn_content::content::DEFAULT_SATURATION;
    let mut collective_lambda = 1000.0;
    let mut collective_weights = vec![0.0, 1.0, 3.0, 10.0, 30.0, 100.0];
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        let num = |s: String| s.parse::<f64>().map_err(|e| format!("{s}: {e}"));
        match a.as_str() {
            "--cf" => cf = value()?,
            "--factors" => hybrid.factors = num(value()?)? as usize,
            "--epochs" => hybrid.epochs = num(value()?)? as usize,
            "--lr" => hybrid.learning_rate = num(value()?)? as f32,
            "--l2" => hybrid.l2 = num(value()?)? as f32,
            "--alpha" => hybrid.history_exponent = num(value()?)? as f32,
            "--seed" => hybrid.seed = num(value()?)? as u64,
            "--identity-share" => hybrid.identity_share = num(value()?)? as f32,
            "--context-identity-share" => hybrid.context_identity_share = num(value()?)? as f32,
            "--trials" => {
                hybrid.loss = Loss::Warp {
                    max_trials: num(value()?)? as usize,
                }
            }
            "--loss" => {
                hybrid.loss = match value()?.as_str() {
                    "bpr" => Loss::Bpr,
                    "warp" => Loss::Warp { max_trials: 10 },
                    other => return Err(format!("unknown loss {other}")),
                }
            }
            "--tag-weight" => features.group_weights[1] = num(value()?)? as f32,
            "--text-weight" => features.group_weights[3] = num(value()?)? as f32,
            "--extras" => extras = Some(PathBuf::from(value()?)),
            "--no-hybrid" => fit_hybrid = false,
            "--saturation" => saturation = num(value()?)? as f32,
            "--collective-lambda" => collective_lambda = num(value()?)? as f32,
            "--collective-weights" => {
                collective_weights = value()?
                    .split(',')
                    .map(|w| num(w.to_string()).map(|w| w as f32))
                    .collect::<Result<_, _>>()?
            }
            _ if !a.starts_with("--") => split = Some(PathBuf::from(a)),
            _ => return Err(format!("unknown flag {a}")),
        }
    }
    let cf = serde_json::from_str::<Vec<ModelSpec>>(&cf).map_err(|e| format!("--cf: {e}"))?;
    Ok(Args {
        split: split.ok_or("usage: warm_items SPLIT_DIR [flags]")?,
        cf,
        hybrid,
        features,
        extras,
        fit_hybrid,
        saturation,
        collective_lambda,
        collective_weights,
    })
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn stage_task(split: &cairn_eval::SplitSet, name: &str) -> Result<EvalTask, String> {
    let stage = split
        .stages
        .iter()
        .find(|s| s.name == name)
        .ok_or(format!("no stage {name}"))?;
    Ok(EvalTask::build(split, stage))
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let split = read_split_dir(&args.split, None).map_err(|e| e.to_string())?;
    let validation = stage_task(&split, "validation")?;
    let test = stage_task(&split, "test")?;
    // Strong generalization: both stages fit on train.csv over the same universe, so one fit
    // serves both; refuse anything else rather than mix indices.
    if validation.train.user_items != test.train.user_items
        || validation.train.items.ids() != test.train.items.ids()
    {
        return Err("validation and test stages fit on different data".into());
    }
    let name = args
        .split
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let interactions = &test.train.user_items;
    eprintln!(
        "# {name}: {} train users, {} items, {} train pairs, {} validation / {} test users; {} threads",
        interactions.n_rows,
        interactions.n_cols,
        interactions.nnz(),
        validation.users_with_targets(),
        test.users_with_targets(),
        rayon::current_num_threads()
    );
    let valid_users: Vec<ValidationUser> = validation
        .users
        .iter()
        .filter(|u| !u.targets.is_empty())
        .map(|u| (u.history.clone(), u.targets.clone()))
        .collect();
    let options = LearnOptions::default();

    // Collaborative members, each alone, then their learned blend (docs/bench/models.md's best).
    let mut cf: Vec<FittedModel> = Vec::new();
    let mut cf_fit_s = 0.0;
    for spec in &args.cf {
        let start = Instant::now();
        let model = spec.fit_model(&test.train).map_err(|e| e.to_string())?;
        let fit_s = start.elapsed().as_secs_f64();
        cf_fit_s += fit_s;
        let params = serde_json::to_value(spec).map_err(|e| e.to_string())?;
        report(
            &format!("cairn-{}", spec.name()),
            &name,
            &model,
            &test,
            fit_s,
            params,
        );
        cf.push(model);
    }
    let start = Instant::now();
    let cf_blend = Blend::learn_with(cf.clone(), &valid_users, &options);
    let learn_s = start.elapsed().as_secs_f64();
    report(
        "cairn-cf-blend",
        &name,
        &cf_blend,
        &test,
        cf_fit_s + learn_s,
        serde_json::json!({"members": args.cf, "weights": cf_blend.weights}),
    );

    // Feature-based members: the content model (features only, a profile of the history's
    // features) and the hybrid (interactions and features together).
    let extras = args.extras.as_ref().map(read_extras).transpose()?;
    let items = build_items(&split, &test, extras.as_ref());
    let start = Instant::now();
    let space = FeatureSpace::fit_items(&items, &args.features).map_err(|e| e.to_string())?;
    let features = space.item_matrix(&items);
    let features_s = start.elapsed().as_secs_f64();
    let feature_params = serde_json::json!({
        "features": serde_json::to_value(&args.features).map_err(|e| e.to_string())?,
        "n_features": space.n_features(),
        "saturation": args.saturation,
    });
    let start = Instant::now();
    let content: Arc<dyn Recommender> = Arc::new(
        ContentModel::new(features.clone())
            .map_err(|e| e.to_string())?
            .with_saturation(args.saturation),
    );
    let content_fit_s = features_s + start.elapsed().as_secs_f64();
    report(
        "cairn-content",
        &name,
        &*content,
        &test,
        content_fit_s,
        feature_params.clone(),
    );
    let mut feature_members = vec![("content", content, content_fit_s)];
    if !args.collective_weights.is_empty() {
        let (model, fit_s, params) =
            choose_collective(&args, interactions, &features, &validation)?;
        let mut p = feature_params.clone();
        p["collective"] = params;
        let model: Arc<dyn Recommender> = Arc::new(model);
        report(
            "cairn-collective-ease",
            &name,
            &*model,
            &test,
            features_s + fit_s,
            p,
        );
        feature_members.push(("collective", model, features_s + fit_s));
    }
    if args.fit_hybrid {
        let start = Instant::now();
        let model =
            hybrid::fit(interactions, &features, None, &args.hybrid).map_err(|e| e.to_string())?;
        let hybrid_fit_s = features_s + start.elapsed().as_secs_f64();
        let mut params = feature_params.clone();
        params["hybrid"] = serde_json::to_value(&args.hybrid).map_err(|e| e.to_string())?;
        let hybrid: Arc<dyn Recommender> = Arc::new(model);
        report("cairn-hybrid", &name, &*hybrid, &test, hybrid_fit_s, params);
        feature_members.push(("hybrid", hybrid, hybrid_fit_s));
    }

    // Feature-based members blended with the collaborative ones, weights learned on validation
    // users: with EASE first and the feature members last, the search passes through the
    // collaborative blend's weights, so on validation it can only improve on it.
    let cf_members = || -> Vec<Arc<dyn Recommender>> {
        cf.iter()
            .map(|m| Arc::new(m.clone()) as Arc<dyn Recommender>)
            .collect()
    };
    let mut combos: Vec<Vec<usize>> = (0..feature_members.len()).map(|k| vec![k]).collect();
    if feature_members.len() > 1 {
        combos.push((0..feature_members.len()).collect());
    }
    for combo in combos {
        let mut members = cf_members();
        let mut fit_s = cf_fit_s;
        let mut names = Vec::new();
        for &k in &combo {
            let (member, model, s) = &feature_members[k];
            members.push(model.clone());
            fit_s += s;
            names.push(*member);
        }
        let start = Instant::now();
        let blend = Blend::learn_with(members, &valid_users, &options);
        let learn_s = start.elapsed().as_secs_f64();
        let mut params = feature_params.clone();
        params["members"] = serde_json::json!({"cf": args.cf, "features": names});
        params["weights"] = serde_json::json!(blend.weights);
        report(
            &format!("cairn-cf+{}-blend", names.join("+")),
            &name,
            &blend,
            &test,
            fit_s + learn_s,
            params,
        );
    }
    Ok(())
}

/// Collective EASE at every item feature weight of `--collective-weights`: the one with the best
/// validation NDCG@100 (the first of equals), its fit time, and every weight's validation score.
fn choose_collective(
    args: &Args,
    interactions: &cairn_core::CsrMatrix,
    features: &cairn_core::CsrMatrix,
    validation: &EvalTask,
) -> Result<(CollectiveEase, f64, serde_json::Value), String> {
    let mut best: Option<(CollectiveEase, f64, f64)> = None;
    let mut tried = Vec::new();
    for &weight in &args.collective_weights {
        let config = CollectiveConfig {
            lambda: args.collective_lambda,
            item_feature_weight: weight,
            ..CollectiveConfig::default()
        };
        let start = Instant::now();
        let model =
            CollectiveEase::fit(interactions, features, None, config).map_err(|e| e.to_string())?;
        let fit_s = start.elapsed().as_secs_f64();
        let ndcg = mean_metric(&model, validation, "NDCG@100");
        eprintln!("# collective EASE λ {} weight {weight}: validation NDCG@100 {ndcg:.4}, fit {fit_s:.1}s", args.collective_lambda);
        tried.push(serde_json::json!({"item_feature_weight": weight, "validation_NDCG@100": ndcg, "fit_s": fit_s}));
        if best.as_ref().is_none_or(|b| ndcg > b.2) {
            best = Some((model, fit_s, ndcg));
        }
    }
    let (model, fit_s, _) = best.ok_or("--collective-weights is empty")?;
    let params = serde_json::json!({"config": model.config, "validation": tried});
    Ok((model, fit_s, params))
}
