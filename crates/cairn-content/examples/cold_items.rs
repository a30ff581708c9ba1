//! Cold-items benchmark on a peers split folder (`splits.py ... cold-items`): fits the content and
//! hybrid models on `train.csv`, with item features from `item_features.csv` (and optionally the
//! OMDb plots of ML-1M), and scores each test user on the cold items only, with cairn-eval's metrics
//! (the definitions of the peers' `metrics.py`). Prints one JSON line per model.
//!
//! ```text
//! cargo run --release -p cairn-content --example cold_items -- SPLIT_DIR [--models content,hybrid]
//!     [--factors 64] [--epochs 30] [--identity-share 0.3] [--loss warp|bpr] [--lr 0.05]
//!     [--extras ../shared/data/ml-1m/movies_extrainfos.dat] [--stage test|validation]
//!     [--new-users] [--users-dat ../shared/data/ml-1m/users.dat]
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use cairn_content::{
    hybrid, Blend, ContentModel, FeatureConfig, FeatureSpace, HybridConfig, HybridModel, Loss,
};
use cairn_core::{CsrMatrix, Item, PropertyValue, User};
use cairn_eval::{evaluate_ranking, read_split_dir, EvalTask, RankingOptions};
use cairn_models::Recommender;

struct Args {
    split: PathBuf,
    models: Vec<String>,
    stage: String,
    hybrid: HybridConfig,
    features: FeatureConfig,
    extras: Option<PathBuf>,
    users_dat: Option<PathBuf>,
    new_users: bool,
    saturation: f32,
    blends: Vec<f32>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut args = Args {
        split: PathBuf::new(),
        models: vec!["content".into(), "hybrid".into()],
        stage: "test".into(),
        hybrid: HybridConfig::default(),
        features: FeatureConfig::default(),
        extras: None,
        users_dat: None,
        new_users: false,
        saturation: cairn_content::content::DEFAULT_SATURATION,
        blends: Vec::new(),
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
            "--saturation" => args.saturation = num(value()?)? as f32,
            "--no-idf" => args.features.label_idf = false,
            "--tag-weight" => args.features.group_weights[1] = num(value()?)? as f32,
            "--text-weight" => args.features.group_weights[3] = num(value()?)? as f32,
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

/// ISO-8859-1 bytes to a String (each byte is its code point).
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

/// ML-1M OMDb extras: id → (title, plot).
fn read_extras(path: &PathBuf) -> Result<HashMap<String, (String, String)>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = match std::str::from_utf8(&bytes) {
        Ok(s) => s.to_string(),
        Err(_) => latin1(&bytes),
    };
    let mut out = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split("::").collect();
        if f.len() >= 10 {
            out.insert(f[0].to_string(), (f[1].to_string(), f[9].to_string()));
        }
    }
    Ok(out)
}

/// ML-1M users.dat: id → properties (gender, age band, occupation).
fn read_users(path: &PathBuf) -> Result<HashMap<String, User>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = HashMap::new();
    for line in latin1(&bytes).lines() {
        let f: Vec<&str> = line.split("::").collect();
        if f.len() >= 4 {
            let mut u = User::new(f[0]);
            u.properties
                .insert("gender".into(), PropertyValue::String(f[1].into()));
            u.properties
                .insert("age".into(), PropertyValue::String(f[2].into()));
            u.properties
                .insert("occupation".into(), PropertyValue::String(f[3].into()));
            out.insert(f[0].to_string(), u);
        }
    }
    Ok(out)
}

/// Catalog items of the task's universe, from `item_features.csv`: `genre:X` becomes a category,
/// every other feature (`tag:…`, `director:…`, `actor:…`) a tag; plus title and plot from the extras.
fn build_items(
    split: &cairn_eval::SplitSet,
    task: &EvalTask,
    extras: Option<&HashMap<String, (String, String)>>,
) -> Vec<Item> {
    let mut items: Vec<Item> = task.train.items.ids().iter().map(Item::new).collect();
    for (v, feature) in split.item_features.iter().flatten() {
        let id = split.vocab.items.id(*v);
        let Some(i) = task.train.items.get(id) else {
            continue;
        };
        let item = &mut items[i as usize];
        match feature.split_once(':') {
            Some(("genre", g)) => item.categories.push(g.to_string()),
            _ => item.tags.push(feature.clone()),
        }
    }
    if let Some(extras) = extras {
        for item in &mut items {
            if let Some((title, plot)) = extras.get(&item.id) {
                item.title = Some(title.clone());
                item.description = Some(plot.clone());
            }
        }
    }
    items
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

fn mean(values: &[f64]) -> f64 {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn report(
    name: &str,
    split: &str,
    model: &dyn Recommender,
    task: &EvalTask,
    fit_s: f64,
    extra: serde_json::Value,
) {
    let opts = RankingOptions {
        ks: vec![10, 20, 50, 100],
        auc: false,
        ..RankingOptions::default()
    };
    let start = Instant::now();
    let result = evaluate_ranking(model, task, &opts, &|_| {});
    let predict_s = start.elapsed().as_secs_f64();
    let mut line = serde_json::json!({
        "split": split, "model": name, "fit_s": fit_s, "predict_s": predict_s,
        "n_eval_users": result.per_user.users.len(), "params": extra,
    });
    for key in [
        "Recall@10",
        "NDCG@10",
        "Recall@20",
        "NDCG@20",
        "RecallLiang@20",
        "Recall@50",
        "NDCG@100",
    ] {
        if let Some(col) = result.per_user.columns.get(key) {
            line[key] = serde_json::json!((mean(col) * 1e6).round() / 1e6);
        }
    }
    println!("{line}");
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
                    hybrid::fit(interactions, &features, None, &args.hybrid)
                        .map_err(|e| e.to_string())?,
                );
                let fit_s = features_s + start.elapsed().as_secs_f64();
                let params = serde_json::json!({
                    "hybrid": serde_json::to_value(&args.hybrid).map_err(|e| e.to_string())?,
                    "features": serde_json::to_value(&args.features).map_err(|e| e.to_string())?,
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
                        let blend =
                            Blend::new(vec![(model.clone(), 1.0 - w), (content.clone(), w)]);
                        let mut p = params.clone();
                        p["content_weight"] = serde_json::json!(w);
                        report("cairn-blend", &split_name, &blend, &task, fit_s, p);
                    }
                }
                if args.new_users {
                    new_users_curve(&args, &task, &features, &split_name)?;
                }
            }
            other => return Err(format!("unknown model {other}")),
        }
    }
    Ok(())
}

/// Quality for users who are new to the model: refits without the evaluated users' rows, then scores
/// each from only their first 0 (properties only), 1, 3, 5 events (by time), ranking all items.
fn new_users_curve(
    args: &Args,
    task: &EvalTask,
    features: &CsrMatrix,
    split_name: &str,
) -> Result<(), String> {
    let users = args.users_dat.as_ref().map(read_users).transpose()?;
    // Every 10th training user becomes new: their rows leave the fit; all but the first 5 of their
    // events (in file order, which the split keeps by time where it has timestamps) are targets.
    let m = &task.train.user_items;
    let new: Vec<usize> = (0..m.n_rows)
        .filter(|u| u % 10 == 0 && m.row_len(*u) >= 10)
        .collect();
    let mut is_new = vec![false; m.n_rows];
    for &u in &new {
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
    // Histories: the task's fold-in order is oldest first; targets are events after the 5th.
    let histories: HashMap<&str, &Vec<(u32, f32)>> = task
        .users
        .iter()
        .map(|u| (u.id.as_str(), &u.history))
        .collect();
    let mut curve = BTreeMap::new();
    let mut pop = vec![0f32; m.n_cols];
    for &i in &fit_matrix.indices {
        pop[i as usize] += 1.0;
    }
    for n_events in [0usize, 1, 3, 5] {
        let mut ndcg = Vec::new();
        let mut ndcg_pop = Vec::new();
        let mut scores = vec![0f32; m.n_cols];
        for &u in &new {
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
            model.score_user(given, uf.as_deref(), &mut scores);
            let seen: Vec<u32> = given.iter().map(|h| h.0).collect();
            let rank = |s: &[f32]| -> Vec<u32> {
                cairn_models::top_k(s, 20, |i| seen.contains(&i))
                    .into_iter()
                    .map(|x| x.0)
                    .collect()
            };
            let rel = cairn_eval::metrics::Relevance::new(&rank(&scores), &targets, None);
            ndcg.push(rel.ndcg(20).unwrap_or(0.0));
            let rel = cairn_eval::metrics::Relevance::new(&rank(&pop), &targets, None);
            ndcg_pop.push(rel.ndcg(20).unwrap_or(0.0));
        }
        curve.insert(
            format!("{n_events}"),
            serde_json::json!({"hybrid_NDCG@20": mean(&ndcg), "pop_NDCG@20": mean(&ndcg_pop), "users": ndcg.len()}),
        );
    }
    println!(
        "{}",
        serde_json::json!({"split": split_name, "curve": "new-users", "user_features": user_features.is_some(), "fit_s": fit_s, "points": curve})
    );
    Ok(())
}
