//! Cold-items benchmark on a peers split folder (`splits.py ... cold-items`): fits the content and
//! hybrid models on `train.csv`, with item features from `item_features.csv` (and optionally the
//! OMDb plots of ML-1M), and scores each test user on the cold items only, with cairn-eval's metrics
//! (the definitions of the peers' `metrics.py`). Prints one JSON line per model.
//!
//! ```text
//! cargo run --release -p cairn-lab --example cold_items -- SPLIT_DIR [--models content,hybrid,new-users]
//!     [--factors 64] [--epochs 30] [--identity-share 0.3] [--loss warp|bpr] [--lr 0.05]
//!     [--extras ../shared/data/ml-1m/movies_extrainfos.dat] [--stage test|validation]
//!     [--new-users] [--users-dat ../shared/data/ml-1m/users.dat] [--segment-smoothing 20]
//!     [--tag-weight 1] [--text-weight 1] [--hybrid-tag-weight W] [--hybrid-text-weight W]
//!     [--blend 0.2,0.3] [--collective-lambda 1000] [--cold-lambda 1]
//! ```
//!
//! `collective` is collective EASE: the cold items' columns come from its features-only solve
//! (`--cold-lambda`).
//!
//! `--hybrid-*-weight` give the hybrid its own feature group weights (text weight 0: no plots in
//! the hybrid, which keeps its fit fast), while the content model and the blend's content part use
//! `--tag-weight` / `--text-weight`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

mod common;

use common::{build_items, mean, read_extras, read_users, report};

use cairn_content::{ContentModel, FeatureConfig, FeatureSpace};
use cairn_core::{CsrMatrix, User};
use cairn_eval::{read_split_dir, EvalTask};
use cairn_lab::{
    hybrid, CollectiveConfig, CollectiveEase, HybridConfig, HybridModel, Loss, SegmentPopularity,
};
use cairn_models::blend::standardise;
use cairn_models::{Blend, Recommender};

struct Args {
    split: PathBuf,
    models: Vec<String>,
    stage: String,
    hybrid: HybridConfig,
    features: FeatureConfig,
    /// Group weights of the hybrid's feature space, when they differ from the content model's
    /// (`--hybrid-tag-weight`, `--hybrid-text-weight`; text weight 0 leaves text out of the hybrid).
    hybrid_tag_weight: Option<f32>,
    hybrid_text_weight: Option<f32>,
    extras: Option<PathBuf>,
    users_dat: Option<PathBuf>,
    new_users: bool,
    saturation: f32,
    segment_smoothing: f32,
    blends: Vec<f32>,
    collective: CollectiveConfig,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut args = Args {
        split: PathBuf::new(),
        models: vec!["content".into(), "hybrid".into()],
        stage: "test".into(),
        hybrid: HybridConfig::default(),
        features: FeatureConfig::default(),
        hybrid_tag_weight: None,
        hybrid_text_weight: None,
        extras: None,
        users_dat: None,
        new_users: false,
        saturation: cairn_content::content::DEFAULT_SATURATION,
        segment_smoothing: 20.0,
        blends: Vec::new(),
        collective: CollectiveConfig {
            lambda: 1000.0,
            ..CollectiveConfig::default()
        },
    };
    let mut split = None;
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        let num = |s: String| s.parse::<f64>().map_err(|e| format!("{s}: {e}"));
        match a.as_str() {
            "--models" => args.models = value()?.split(',').map(String::from).collect(),
            "--stage" => args.stage = value()?,
            "--factors" => args.hybrid.factors = num(value()?)? as usize,
            "--epochs" => args.hybrid.epochs = num(value()?)? as usize,
            "--lr" => args.hybrid.learning_rate = num(value()?)? as f32,
            "--l2" => args.hybrid.l2 = num(value()?)? as f32,
            "--alpha" => args.hybrid.history_exponent = num(value()?)? as f32,
            "--seed" => args.hybrid.seed = num(value()?)? as u64,
            "--identity-share" => args.hybrid.identity_share = num(value()?)? as f32,
            "--trials" => {
                args.hybrid.loss = Loss::Warp {
                    max_trials: num(value()?)? as usize,
                }
            }
            "--blend" => {
                args.blends = value()?
                    .split(',')
                    .map(|w| w.parse::<f32>().map_err(|e| format!("{w}: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--collective-lambda" => args.collective.lambda = num(value()?)? as f32,
            "--cold-lambda" => args.collective.cold_lambda = num(value()?)? as f32,
            "--segment-smoothing" => args.segment_smoothing = num(value()?)? as f32,
            "--saturation" => args.saturation = num(value()?)? as f32,
            "--no-idf" => args.features.label_idf = false,
            "--tag-weight" => args.features.group_weights[1] = num(value()?)? as f32,
            "--text-weight" => args.features.group_weights[3] = num(value()?)? as f32,
            "--hybrid-tag-weight" => args.hybrid_tag_weight = Some(num(value()?)? as f32),
            "--hybrid-text-weight" => args.hybrid_text_weight = Some(num(value()?)? as f32),
            "--user-identity" => args.hybrid.user_identity = true,
            "--tie" => args.hybrid.tie_context = true,
            "--history-dropout" => args.hybrid.history_dropout = num(value()?)? as f32,
            "--projection" => args.hybrid.projection_lambda = num(value()?)? as f32,
            "--no-bias" => args.hybrid.item_bias = false,
            "--dropout" => args.hybrid.feature_dropout = num(value()?)? as f32,
            "--context-identity-share" => {
                args.hybrid.context_identity_share = num(value()?)? as f32
            }
            "--loss" => {
                args.hybrid.loss = match value()?.as_str() {
                    "bpr" => Loss::Bpr,
                    "warp" => Loss::Warp { max_trials: 10 },
                    other => return Err(format!("unknown loss {other}")),
                }
            }
            "--extras" => args.extras = Some(PathBuf::from(value()?)),
            "--users-dat" => args.users_dat = Some(PathBuf::from(value()?)),
            "--new-users" => args.new_users = true,
            _ if !a.starts_with("--") => split = Some(PathBuf::from(a)),
            _ => return Err(format!("unknown flag {a}")),
        }
    }
    args.split = split.ok_or("usage: cold_items SPLIT_DIR [flags]")?;
    Ok(args)
}

/// Scores the task's users as the training users they are (their own embeddings included). The
/// evaluator hands a model only histories, so users are found again by their history.
struct KnownUsers<'a> {
    model: &'a HybridModel,
    by_history: HashMap<Vec<u32>, u32>,
}

impl<'a> KnownUsers<'a> {
    fn new(model: &'a HybridModel, task: &EvalTask) -> Self {
        let by_history = task
            .users
            .iter()
            .filter_map(|u| {
                let index = task.train.users.get(&u.id)?;
                Some((u.history.iter().map(|h| h.0).collect(), index))
            })
            .collect();
        KnownUsers { model, by_history }
    }
}

impl Recommender for KnownUsers<'_> {
    fn name(&self) -> &'static str {
        "hybrid-known-users"
    }

    fn n_items(&self) -> usize {
        self.model.n_items()
    }

    fn score(&self, history: &[(u32, f32)], scores: &mut [f32]) {
        let key: Vec<u32> = history.iter().map(|h| h.0).collect();
        match self.by_history.get(&key) {
            Some(&u) => self.model.score_known_user(u, history, None, scores),
            None => self.model.score(history, scores),
        }
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let split = read_split_dir(&args.split, None).map_err(|e| e.to_string())?;
    let stage = split
        .stages
        .iter()
        .find(|s| s.name == args.stage)
        .ok_or(format!("no stage {}", args.stage))?;
    let task = EvalTask::build(&split, stage);
    let split_name = args
        .split
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let extras = args.extras.as_ref().map(read_extras).transpose()?;
    let items = build_items(&split, &task, extras.as_ref());
    let interactions = &task.train.user_items;
    eprintln!(
        "# {split_name} {}: {} users, {} items ({} candidates), {} train pairs",
        args.stage,
        interactions.n_rows,
        interactions.n_cols,
        task.candidates.as_ref().map_or(0, |c| c.len()),
        interactions.nnz()
    );

    let start = Instant::now();
    let space = FeatureSpace::fit_items(&items, &args.features).map_err(|e| e.to_string())?;
    let features = space.item_matrix(&items);
    let features_s = start.elapsed().as_secs_f64();
    eprintln!(
        "# {} features, {} nonzeros, built in {features_s:.3}s",
        space.n_features(),
        features.nnz()
    );

    let mut hybrid_config = args.features.clone();
    if let Some(w) = args.hybrid_tag_weight {
        hybrid_config.group_weights[1] = w;
    }
    if let Some(w) = args.hybrid_text_weight {
        hybrid_config.group_weights[3] = w;
    }
    let hybrid_features = if hybrid_config == args.features {
        features.clone()
    } else {
        let start = Instant::now();
        let space = FeatureSpace::fit_items(&items, &hybrid_config).map_err(|e| e.to_string())?;
        let m = space.item_matrix(&items);
        eprintln!(
            "# hybrid: {} features, {} nonzeros, built in {:.3}s",
            space.n_features(),
            m.nnz(),
            start.elapsed().as_secs_f64()
        );
        m
    };

    for name in &args.models {
        match name.as_str() {
            "content" => {
                let start = Instant::now();
                let model = ContentModel::new(features.clone())
                    .map_err(|e| e.to_string())?
                    .with_saturation(args.saturation);
                let fit_s = features_s + start.elapsed().as_secs_f64();
                let params = serde_json::json!({
                    "saturation": args.saturation,
                    "features": serde_json::to_value(&args.features).map_err(|e| e.to_string())?,
                });
                report("cairn-content", &split_name, &model, &task, fit_s, params);
            }
            "hybrid" => {
                let start = Instant::now();
                let model = Arc::new(
                    hybrid::fit(interactions, &hybrid_features, None, &args.hybrid)
                        .map_err(|e| e.to_string())?,
                );
                let fit_s = features_s + start.elapsed().as_secs_f64();
                let params = serde_json::json!({
                    "hybrid": serde_json::to_value(&args.hybrid).map_err(|e| e.to_string())?,
                    "features": serde_json::to_value(&hybrid_config).map_err(|e| e.to_string())?,
                    "content_features": serde_json::to_value(&args.features).map_err(|e| e.to_string())?,
                });
                if args.hybrid.user_identity {
                    let known = KnownUsers::new(&model, &task);
                    report(
                        "cairn-hybrid-known-users",
                        &split_name,
                        &known,
                        &task,
                        fit_s,
                        params.clone(),
                    );
                }
                report(
                    "cairn-hybrid",
                    &split_name,
                    &*model,
                    &task,
                    fit_s,
                    params.clone(),
                );
                if !args.blends.is_empty() {
                    let content: Arc<dyn Recommender> = Arc::new(
                        ContentModel::new(features.clone())
                            .map_err(|e| e.to_string())?
                            .with_saturation(args.saturation),
                    );
                    for &w in &args.blends {
                        let hybrid: Arc<dyn Recommender> = model.clone();
                        let blend = Blend::new(vec![hybrid, content.clone()], vec![1.0 - w, w]);
                        let mut p = params.clone();
                        p["content_weight"] = serde_json::json!(w);
                        report("cairn-blend", &split_name, &blend, &task, fit_s, p);
                    }
                }
                if args.new_users {
                    new_users_curve(&args, &task, &hybrid_features, &split_name)?;
                }
            }
            "collective" => {
                let start = Instant::now();
                let model = CollectiveEase::fit(interactions, &features, None, args.collective)
                    .map_err(|e| e.to_string())?;
                let fit_s = features_s + start.elapsed().as_secs_f64();
                let params = serde_json::json!({
                    "collective": args.collective,
                    "features": serde_json::to_value(&args.features).map_err(|e| e.to_string())?,
                });
                report(
                    "cairn-collective-ease",
                    &split_name,
                    &model,
                    &task,
                    fit_s,
                    params,
                );
            }
            // The new-users curve alone, without the cold-items fit.
            "new-users" => new_users_curve(&args, &task, &hybrid_features, &split_name)?,
            other => return Err(format!("unknown model {other}")),
        }
    }
    Ok(())
}

/// NDCG@20 of `scores` for one user, with the given events excluded from the ranking.
fn ndcg_20(scores: &[f32], given: &[(u32, f32)], targets: &[u32]) -> f64 {
    let ranked: Vec<u32> = cairn_models::top_k(scores, 20, |i| given.iter().any(|h| h.0 == i))
        .into_iter()
        .map(|x| x.0)
        .collect();
    cairn_eval::metrics::Relevance::new(&ranked, targets, None)
        .ndcg(20)
        .unwrap_or(0.0)
}

/// Weights of segment popularity tried against the hybrid (both standardised per user); the last
/// is segment popularity alone in effect.
const SEGMENT_WEIGHTS: [f32; 9] = [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 4.0, 8.0, 1000.0];

/// The setting (of `n`) with the best validation score, the first of equals, and that score.
fn best_setting(n: usize, validation: impl Fn(usize) -> f64) -> (usize, f64) {
    let mut best = (0usize, f64::NEG_INFINITY);
    for k in 0..n {
        let v = validation(k);
        if v > best.1 {
            best = (k, v);
        }
    }
    best
}

/// Weights of the user properties' columns in collective EASE (0: history only).
const COLLECTIVE_USER_WEIGHTS: [f32; 5] = [0.0, 1.0, 3.0, 10.0, 30.0];

/// Quality for users who are new to the model: refits without the new users' rows, then scores each
/// from only their first 0 (properties only), 1, 3, 5 events, ranking all items. Two groups of new
/// users: every 10th training user (the test group) and those 5 places further on (the validation
/// group, on which the weight of segment popularity in the blend is chosen for each number of events).
fn new_users_curve(
    args: &Args,
    task: &EvalTask,
    features: &CsrMatrix,
    split_name: &str,
) -> Result<(), String> {
    let users = args.users_dat.as_ref().map(read_users).transpose()?;
    // Their rows leave the fit; all but the first 5 of their events (in file order, which the
    // split keeps by time where it has timestamps) are targets.
    let m = &task.train.user_items;
    let group = |rest: usize| -> Vec<usize> {
        (0..m.n_rows)
            .filter(|u| u % 10 == rest && m.row_len(*u) >= 10)
            .collect()
    };
    let (new, validation) = (group(0), group(5));
    let mut is_new = vec![false; m.n_rows];
    for &u in new.iter().chain(&validation) {
        is_new[u] = true;
    }
    let mut triplets = Vec::new();
    for (u, _) in is_new.iter().enumerate().filter(|(_, new)| !**new) {
        let (c, v) = m.row(u);
        triplets.extend(c.iter().zip(v).map(|(&i, &x)| (u as u32, i, x)));
    }
    let fit_matrix = CsrMatrix::from_triplets(m.n_rows, m.n_cols, triplets);
    let user_space_and_rows = users.map(|users| {
        let list: Vec<User> = task
            .train
            .users
            .ids()
            .iter()
            .map(|id| users.get(id).cloned().unwrap_or_else(|| User::new(id)))
            .collect();
        let space = FeatureSpace::fit_users(&list, &FeatureConfig::default());
        space.map(|s| s.user_matrix(&list))
    });
    let user_features = user_space_and_rows.transpose().map_err(|e| e.to_string())?;
    let start = Instant::now();
    let model = hybrid::fit(&fit_matrix, features, user_features.as_ref(), &args.hybrid)
        .map_err(|e| e.to_string())?;
    let fit_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let segments = user_features
        .as_ref()
        .map(|uf| SegmentPopularity::fit(&fit_matrix, uf, args.segment_smoothing))
        .transpose()
        .map_err(|e| e.to_string())?;
    let segment_fit_s = start.elapsed().as_secs_f64();
    // Collective EASE over the same rows, item features and properties, one fit per property
    // weight; the weight is chosen on the validation group like the blend's.
    let start = Instant::now();
    let collective: Vec<CollectiveEase> = COLLECTIVE_USER_WEIGHTS
        .iter()
        .map(|&w| {
            let config = CollectiveConfig {
                user_feature_weight: w,
                ..args.collective
            };
            CollectiveEase::fit(&fit_matrix, features, user_features.as_ref(), config)
        })
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let collective_fit_s = start.elapsed().as_secs_f64() / COLLECTIVE_USER_WEIGHTS.len() as f64;
    // Histories: the task's fold-in order is oldest first; targets are events after the 5th.
    let histories: HashMap<&str, &Vec<(u32, f32)>> = task
        .users
        .iter()
        .map(|u| (u.id.as_str(), &u.history))
        .collect();
    let mut pop = vec![0f32; m.n_cols];
    for &i in &fit_matrix.indices {
        pop[i as usize] += 1.0;
    }
    // Per user of a group and number of events: NDCG@20 of popularity, the hybrid, segment
    // popularity, and the blend at every weight of SEGMENT_WEIGHTS.
    struct Point {
        pop: f64,
        hybrid: f64,
        collective: Vec<f64>,
        segment: f64,
        blend: Vec<f64>,
    }
    let score_group = |users: &[usize], n_events: usize| -> Vec<Point> {
        let mut out = Vec::new();
        let mut scores = vec![0f32; m.n_cols];
        let mut seg = vec![0f32; m.n_cols];
        let mut mixed = vec![0f32; m.n_cols];
        for &u in users {
            let id = task.train.users.id(u as u32);
            let Some(history) = histories.get(id) else {
                continue;
            };
            if history.len() < 10 {
                continue;
            }
            let given = &history[..n_events];
            let mut targets: Vec<u32> = history[5..].iter().map(|h| h.0).collect();
            targets.sort_unstable();
            let uf = user_features.as_ref().map(|f| {
                let (c, v) = f.row(u);
                c.iter().copied().zip(v.iter().copied()).collect::<Vec<_>>()
            });
            let collective = collective
                .iter()
                .map(|c| {
                    c.score_user(given, uf.as_deref(), &mut scores);
                    ndcg_20(&scores, given, &targets)
                })
                .collect();
            model.score_user(given, uf.as_deref(), &mut scores);
            let hybrid = ndcg_20(&scores, given, &targets);
            let (segment, blend) = match (&segments, &uf) {
                (Some(s), Some(uf)) => {
                    s.score(uf, &mut seg);
                    let segment = ndcg_20(&seg, given, &targets);
                    standardise(&mut scores);
                    standardise(&mut seg);
                    let blend = SEGMENT_WEIGHTS
                        .iter()
                        .map(|&w| {
                            for ((x, h), s) in mixed.iter_mut().zip(&scores).zip(&seg) {
                                *x = h + w * s;
                            }
                            ndcg_20(&mixed, given, &targets)
                        })
                        .collect();
                    (segment, blend)
                }
                _ => (f64::NAN, Vec::new()),
            };
            out.push(Point {
                pop: ndcg_20(&pop, given, &targets),
                hybrid,
                collective,
                segment,
                blend,
            });
        }
        out
    };
    let mut curve = BTreeMap::new();
    for n_events in [0usize, 1, 3, 5] {
        let test = score_group(&new, n_events);
        let valid = score_group(&validation, n_events);
        let avg = |points: &[Point], f: &dyn Fn(&Point) -> f64| {
            mean(&points.iter().map(f).collect::<Vec<_>>())
        };
        let mut point = serde_json::json!({
            "users": test.len(),
            "validation_users": valid.len(),
            "pop_NDCG@20": avg(&test, &|p| p.pop),
            "hybrid_NDCG@20": avg(&test, &|p| p.hybrid),
        });
        let best = best_setting(COLLECTIVE_USER_WEIGHTS.len(), |k| {
            avg(&valid, &|p| p.collective[k])
        });
        point["collective_NDCG@20"] = serde_json::json!(avg(&test, &|p| p.collective[best.0]));
        point["collective_user_feature_weight"] =
            serde_json::json!(COLLECTIVE_USER_WEIGHTS[best.0]);
        if segments.is_some() {
            // The weight with the best validation NDCG@20 (the first of equals).
            let best = best_setting(SEGMENT_WEIGHTS.len(), |k| avg(&valid, &|p| p.blend[k]));
            point["segment_pop_NDCG@20"] = serde_json::json!(avg(&test, &|p| p.segment));
            point["blend_NDCG@20"] = serde_json::json!(avg(&test, &|p| p.blend[best.0]));
            point["blend_segment_weight"] = serde_json::json!(SEGMENT_WEIGHTS[best.0]);
            point["blend_validation_NDCG@20"] = serde_json::json!(best.1);
        }
        curve.insert(format!("{n_events}"), point);
    }
    println!(
        "{}",
        serde_json::json!({"split": split_name, "curve": "new-users", "user_features": user_features.is_some(),
            "fit_s": fit_s, "segment_fit_s": segment_fit_s, "collective_fit_s": collective_fit_s, "collective": args.collective, "segment_smoothing": args.segment_smoothing, "points": curve})
    );
    Ok(())
}
