//! Readers shared by the benchmark examples: ML-1M's OMDb extras and users.dat, and catalog items
//! built from a split folder's `item_features.csv`.

#![allow(dead_code)] // each example uses part of it

use std::collections::HashMap;
use std::path::PathBuf;

use cairn_core::{Item, PropertyValue, User};
use std::time::Instant;

use cairn_eval::{evaluate_ranking, EvalTask, RankingOptions};
use cairn_models::Recommender;

/// ISO-8859-1 bytes to a String (each byte is its code point).
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

/// ML-1M OMDb extras: id → (title, plot).
pub fn read_extras(path: &PathBuf) -> Result<HashMap<String, (String, String)>, String> {
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
pub fn read_users(path: &PathBuf) -> Result<HashMap<String, User>, String> {
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
pub fn build_items(
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

/// Mean of the finite values (users without targets give NaN and do not count).
pub fn mean(values: &[f64]) -> f64 {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The cut-offs every example reports (and chooses settings by).
fn report_options() -> RankingOptions {
    RankingOptions {
        ks: vec![10, 20, 50, 100],
        auc: false,
        ..RankingOptions::default()
    }
}

/// The mean of one metric (e.g. `NDCG@100`) over the task's users, for choosing settings on a
/// validation stage.
pub fn mean_metric(model: &dyn Recommender, task: &EvalTask, key: &str) -> f64 {
    let result = evaluate_ranking(model, task, &report_options(), &|_| {});
    result
        .per_user
        .columns
        .get(key)
        .map_or(f64::NAN, |c| mean(c))
}

/// Evaluates `model` on the task and prints one JSON line with the main metrics.
pub fn report(
    name: &str,
    split: &str,
    model: &dyn Recommender,
    task: &EvalTask,
    fit_s: f64,
    extra: serde_json::Value,
) {
    let start = Instant::now();
    let result = evaluate_ranking(model, task, &report_options(), &|_| {});
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
        "RecallLiang@50",
        "Recall@50",
        "NDCG@100",
    ] {
        if let Some(col) = result.per_user.columns.get(key) {
            line[key] = serde_json::json!((mean(col) * 1e6).round() / 1e6);
        }
    }
    println!("{line}");
}
