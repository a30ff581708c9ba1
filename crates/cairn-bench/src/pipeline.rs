//! Offline evaluation of the serving pipeline, stage by stage, on a temporal split: the recall of
//! each retriever's candidates and of their union, then NDCG@10 of each retriever's own order, of
//! reciprocal-rank fusion, and of the learned ranker. It runs the engine's own pipeline code on a
//! model set fitted from the split's training file, with no server or store in between.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use cairn_core::Item;
use cairn_engine::config::ServeConfig;
use cairn_eval::metrics::Relevance;
use cairn_pipeline::offline::catalog_from_features;
use cairn_pipeline::{
    self as pipeline, retrieve, score_with_ranker, Context, HistoryEvent, ModelSet,
    PlacementConfig, Quota, Seeds, Snapshot, Source, TrainConfig,
};
use serde_json::json;

struct Rating {
    user: String,
    item: String,
    ts: i64,
}

fn read_ratings(path: &Path) -> Result<Vec<Rating>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut lines = BufReader::new(file).lines();
    let header = lines.next().context("empty file")??;
    if !header.starts_with("user,item") || !header.ends_with(",ts") {
        bail!(
            "{}: expected a user,item,...,ts header, got {header}",
            path.display()
        );
    }
    let mut out = Vec::new();
    for (n, line) in lines.enumerate() {
        let line = line?;
        let f: Vec<&str> = line.split(',').collect();
        let ts = f
            .last()
            .and_then(|t| t.parse::<f64>().ok())
            .with_context(|| format!("{}:{}: bad timestamp", path.display(), n + 2))?;
        out.push(Rating {
            user: f[0].to_string(),
            item: f[1].to_string(),
            ts: ts as i64,
        });
    }
    Ok(out)
}

/// Items with `genre:` features as categories and the rest as tags.
fn read_catalog(path: &Path) -> Result<Vec<Item>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let lines = BufReader::new(file)
        .lines()
        .skip(1)
        .collect::<std::io::Result<Vec<String>>>()?;
    Ok(catalog_from_features(
        lines.iter().filter_map(|line| line.split_once(',')),
    ))
}

fn snapshot(train: &[Rating]) -> Snapshot {
    let mut snapshot = Snapshot::builder();
    for r in train {
        snapshot.push(&r.user, &r.item, 1.0, r.ts);
    }
    snapshot.finish(train.len() as u64)
}

/// Every source at the same quota, no re-ranking rules: the pipeline's relevance order alone.
fn eval_placement(quota: usize) -> PlacementConfig {
    PlacementConfig {
        retrievers: Source::ALL
            .iter()
            .map(|&source| Quota { source, quota })
            .collect(),
        seeds: Seeds::User,
        use_ranker: true,
        ranker_candidates: PlacementConfig::default().ranker_candidates,
        max_per_category: 0,
        mmr_lambda: 1.0,
        exploration: 0.0,
        new_item_days: 14.0,
        new_item_slots: 0,
        calibration_lambda: 0.0,
        popularity_lambda: 0.0,
        short_head_share: PlacementConfig::default().short_head_share,
    }
}

/// Per user, the events of `rows` after the newest `fraction` of each user's own timeline goes to
/// the test side (users with at least 5 events).
fn per_user_temporal(rows: Vec<Rating>, fraction: f64) -> (Vec<Rating>, Vec<Rating>) {
    let mut by_user: HashMap<String, Vec<Rating>> = HashMap::new();
    for r in rows {
        by_user.entry(r.user.clone()).or_default().push(r);
    }
    let mut users: Vec<String> = by_user.keys().cloned().collect();
    users.sort();
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for u in users {
        let mut list = by_user.remove(&u).unwrap_or_default();
        list.sort_by(|a, b| a.ts.cmp(&b.ts).then(a.item.cmp(&b.item)));
        let n_test = if list.len() >= 5 {
            ((list.len() as f64) * fraction).ceil() as usize
        } else {
            0
        };
        let cut = list.len() - n_test;
        let tail = list.split_off(cut);
        train.extend(list);
        test.extend(tail);
    }
    (train, test)
}

pub fn run(
    split: &Path,
    per_user_last: Option<f64>,
    quota: usize,
    ranker: Option<&str>,
) -> Result<()> {
    let mut train = read_ratings(&split.join("train.csv"))?;
    let mut test = read_ratings(&split.join("test.csv"))?;
    let protocol = match per_user_last {
        Some(f) => {
            train.append(&mut test);
            (train, test) = per_user_temporal(train, f);
            format!(
                "per-user temporal, last {:.0}% of each user's events",
                f * 100.0
            )
        }
        None => "the split's own test.csv (global time cut)".to_string(),
    };
    let catalog = read_catalog(&split.join("item_features.csv"))?;
    let snap = snapshot(&train);
    let placement = eval_placement(quota);
    let serve = ServeConfig::default();
    let mut train_config = TrainConfig::default();
    if let Some(json) = ranker {
        train_config.ranker =
            serde_json::from_str(json).context("--ranker must be a train.ranker JSON object")?;
    }
    let started = Instant::now();
    let models = ModelSet::fit(
        &snap,
        &catalog,
        &train_config,
        &serve.history(),
        &placement,
        snap.reference_time,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let fit_s = started.elapsed().as_secs_f64();
    let ranker = models
        .ranker
        .as_ref()
        .context("no ranker was trained (log too small?)")?;
    eprintln!(
        "# {}: {} train events, {} test events; fit {fit_s:.1}s; ranker on {} lists, validation NDCG@10 {:.4} vs fusion {:.4}",
        split.display(),
        train.len(),
        test.len(),
        ranker.train_groups,
        ranker.valid_ndcg,
        ranker.fusion_ndcg
    );

    let mut history: HashMap<&str, Vec<&Rating>> = HashMap::new();
    for r in &train {
        history.entry(&r.user).or_default().push(r);
    }
    let mut targets: HashMap<&str, HashSet<u32>> = HashMap::new();
    for r in &test {
        let seen = history.get(r.user.as_str());
        let known = models.table.ids.get(&r.item);
        if let Some(i) = known {
            if !seen.is_some_and(|h| h.iter().any(|x| x.item == r.item)) {
                targets.entry(&r.user).or_default().insert(i);
            }
        }
    }
    let mut users: Vec<&str> = targets.keys().copied().collect();
    users.sort_unstable();

    let names: Vec<String> = Source::ALL
        .iter()
        .map(|s| s.name().to_string())
        .chain(["union", "ranker head", "fusion", "ranker", "served"].map(String::from))
        .collect();
    let mut recall: HashMap<String, Vec<f64>> = HashMap::new();
    let mut ndcg: HashMap<String, Vec<f64>> = HashMap::new();
    for user in &users {
        let mut events: Vec<HistoryEvent> = history
            .get(user)
            .map(|h| {
                h.iter()
                    .map(|r| HistoryEvent {
                        item: models.table.ids.get(&r.item),
                        strength: 1.0,
                        timestamp: r.ts,
                    })
                    .collect()
            })
            .unwrap_or_default();
        events.sort_by_key(|e| e.timestamp);
        let seen: HashSet<u32> = events.iter().filter_map(|e| e.item).collect();
        let allow = |i: u32| !seen.contains(&i);
        let ctx = Context::for_history(&models.table, &events, &serve.history(), &allow, 10);
        // Relevance wants the targets sorted.
        let mut target: Vec<u32> = targets[user].iter().copied().collect();
        target.sort_unstable();
        let r = retrieve::retrieve(&models, &ctx, &placement);
        let mut record = |name: &str, ranked: &[u32]| {
            let rel = Relevance::new(ranked, &target, None);
            recall
                .entry(name.to_string())
                .or_default()
                .push(rel.recall(quota).unwrap_or(0.0));
            ndcg.entry(name.to_string())
                .or_default()
                .push(rel.ndcg(10).unwrap_or(0.0));
        };
        for s in Source::ALL {
            let mut own: Vec<(u32, u32)> = r
                .candidates
                .iter()
                .filter(|c| c.retrieved_by(s))
                .map(|c| (c.rank[s.index()], c.item))
                .collect();
            own.sort_unstable();
            record(s.name(), &own.iter().map(|&(_, i)| i).collect::<Vec<_>>());
        }
        let order_by = |scores: &[f32]| {
            let mut idx: Vec<usize> = (0..r.candidates.len()).collect();
            idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
            idx.into_iter()
                .map(|c| r.candidates[c].item)
                .collect::<Vec<u32>>()
        };
        // The ranker's own order, whatever its guard decided.
        let scores = score_with_ranker(&models, &ctx, &r, &placement);
        // The candidates the ranker reorders: what it can find at best.
        let head: Vec<u32> = pipeline::fusion_head(&scores.fusion, placement.ranker_candidates)
            .into_iter()
            .map(|c| r.candidates[c].item)
            .collect();
        recall.entry("ranker head".into()).or_default().push(
            Relevance::new(&head, &target, None)
                .recall(head.len().max(1))
                .unwrap_or(0.0),
        );
        let union: Vec<u32> = order_by(&scores.fusion);
        // Union recall counts every candidate, whatever its position.
        let rel = Relevance::new(&union, &target, None);
        recall
            .entry("union".into())
            .or_default()
            .push(rel.recall(union.len().max(1)).unwrap_or(0.0));
        ndcg.entry("fusion".into())
            .or_default()
            .push(rel.ndcg(10).unwrap_or(0.0));
        let by_ranker = order_by(&scores.relevance);
        let rel = Relevance::new(&by_ranker, &target, None);
        ndcg.entry("ranker".into())
            .or_default()
            .push(rel.ndcg(10).unwrap_or(0.0));
        // What serving lists: every stage, the guard's choice included (no re-ranking rules).
        let served: Vec<u32> = pipeline::run(&models, &ctx, &placement)
            .iter()
            .map(|x| x.item)
            .collect();
        ndcg.entry("served".into()).or_default().push(
            Relevance::new(&served, &target, None)
                .ndcg(10)
                .unwrap_or(0.0),
        );
    }
    let mean = |v: Option<&Vec<f64>>| v.map(|v| v.iter().sum::<f64>() / v.len().max(1) as f64);
    let se = |v: Option<&Vec<f64>>| {
        v.map(|v| {
            let n = v.len().max(2) as f64;
            let m = v.iter().sum::<f64>() / n;
            (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt()
        })
    };
    println!("| stage | candidate recall@{quota} | NDCG@10 (± s.e.) |");
    println!("|---|---|---|");
    for name in &names {
        let r = mean(recall.get(name)).map_or("".into(), |x| format!("{x:.4}"));
        let n = match (mean(ndcg.get(name)), se(ndcg.get(name))) {
            (Some(m), Some(s)) => format!("{m:.4} ± {s:.4}"),
            _ => String::new(),
        };
        println!("| {name} | {r} | {n} |");
    }
    // Paired per-user difference between the ranker and the best single retriever.
    let best = Source::ALL
        .iter()
        .map(|s| s.name().to_string())
        .max_by(|a, b| {
            mean(ndcg.get(a))
                .unwrap_or(0.0)
                .total_cmp(&mean(ndcg.get(b)).unwrap_or(0.0))
        })
        .unwrap_or_default();
    let paired = |of: &str| {
        let diffs: Vec<f64> = ndcg[of]
            .iter()
            .zip(&ndcg[&best])
            .map(|(a, b)| a - b)
            .collect();
        (
            mean(Some(&diffs)).unwrap_or(0.0),
            se(Some(&diffs)).unwrap_or(0.0),
        )
    };
    let (d, d_se) = paired("ranker");
    let (sd, sd_se) = paired("served");
    println!();
    for (of, d, d_se) in [("ranker", d, d_se), ("served", sd, sd_se)] {
        println!(
            "{of} − {best} (best single retriever), paired over {} users: {d:+.4} ± {d_se:.4} (t = {:.2})",
            users.len(),
            d / d_se.max(1e-12)
        );
    }
    match &models.guard {
        Some(g) => println!(
            "guard (newest {:.0}% of the training log, {} users): ranker {} vs best single {} {:.4}, \
             paired {:+.4} ± {:.4}: {}",
            train_config.ranker.label_fraction * 100.0,
            g.users,
            g.ranker_ndcg.map_or("none".into(), |x| format!("{x:.4}")),
            g.best_source.name(),
            g.best_ndcg,
            g.diff_mean,
            g.diff_se,
            match g.fallback {
                Some(s) => format!("refused, {} serves", s.name()),
                None => "kept, the ranker serves".into(),
            }
        ),
        None => println!("guard: none (off, or nothing held out to compare on)"),
    }
    let line = json!({
        "ranker_minus_best": {"best": best, "mean": d, "se": d_se},
        "served_minus_best": {"best": best, "mean": sd, "se": sd_se},
        "guard": models.guard,
        "split": split.display().to_string(),
        "protocol": protocol,
        "users": users.len(),
        "train_events": train.len(),
        "quota": quota,
        "fit_s": fit_s,
        "ranker_train_users": ranker.train_groups,
        "recall": names.iter().filter_map(|n| Some((n.clone(), mean(recall.get(n))?))).collect::<HashMap<_, _>>(),
        "ndcg10": names.iter().filter_map(|n| Some((n.clone(), mean(ndcg.get(n))?))).collect::<HashMap<_, _>>(),
    });
    println!("{line}");
    Ok(())
}
