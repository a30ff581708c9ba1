//! Cairn's metrics against the peers harness's reference implementation (`../shared/peers/metrics.py`)
//! on the same random inputs, to 1e-6. Runs only where Python with numpy and scipy and the shared folder
//! are present; otherwise prints why it skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_core::CsrMatrix;
use cairn_eval::metrics::beyond::average_popularity;
use cairn_eval::metrics::{
    auc, catalog_coverage, intra_list_diversity, mae, novelty, rmse, NormalizedFeatures, Relevance,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

const N_USERS: usize = 40;
const N_ITEMS: usize = 60;
const LIST_LEN: usize = 20;
const KS: [usize; 3] = [1, 5, 20];

type PerUserMetric = Box<dyn Fn(&Relevance) -> Option<f64>>;

fn peers_dir() -> PathBuf {
    std::env::var_os("CAIRN_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/peers"))
}

/// A Python that can import numpy and scipy, if there is one.
fn python() -> Result<String, String> {
    let mut candidates: Vec<String> = Vec::new();
    if let Ok(p) = std::env::var("CAIRN_PEERS_PYTHON") {
        candidates.push(p);
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(
            Path::new(&home)
                .join(".cache/peers-venv/bin/python")
                .display()
                .to_string(),
        );
    }
    candidates.push("python3".to_string());
    for c in &candidates {
        let ok = Command::new(c)
            .args(["-c", "import numpy, scipy"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Ok(c.clone());
        }
    }
    Err(format!(
        "no Python with numpy and scipy among {candidates:?}"
    ))
}

struct Inputs {
    lists: Vec<Vec<u32>>,
    targets: Vec<Vec<u32>>,
    scores: Vec<Vec<f32>>,
    excluded: Vec<Vec<u32>>,
    features: Vec<Vec<u8>>,
    counts: Vec<u32>,
    n_train_users: usize,
    ratings: Vec<(f64, f64)>,
}

fn inputs(seed: u64) -> Inputs {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut all: Vec<u32> = (0..N_ITEMS as u32).collect();
    let mut lists = Vec::new();
    let mut targets = Vec::new();
    let mut scores = Vec::new();
    let mut excluded = Vec::new();
    for u in 0..N_USERS {
        all.shuffle(&mut rng);
        // some lists are short (padding in metrics.py)
        let len = if u % 7 == 3 { 15 } else { LIST_LEN };
        lists.push(all[..len].to_vec());
        all.shuffle(&mut rng);
        let n_t = rng.random_range(0..12);
        let mut t = all[..n_t].to_vec();
        t.sort_unstable();
        targets.push(t);
        // scores on a coarse grid, so that ties occur
        scores.push(
            (0..N_ITEMS)
                .map(|_| rng.random_range(0..20) as f32 / 4.0)
                .collect(),
        );
        all.shuffle(&mut rng);
        let n_e = rng.random_range(0..8);
        let mut e = all[..n_e].to_vec();
        e.sort_unstable();
        excluded.push(e);
    }
    let features = (0..N_ITEMS)
        .map(|_| (0..5).map(|_| u8::from(rng.random_bool(0.3))).collect())
        .collect();
    let counts = (0..N_ITEMS).map(|_| rng.random_range(0..30)).collect();
    let ratings = (0..50)
        .map(|_| {
            (
                rng.random_range(1.0..5.0),
                f64::from(rng.random_range(1..=5)),
            )
        })
        .collect();
    Inputs {
        lists,
        targets,
        scores,
        excluded,
        features,
        counts,
        n_train_users: 30,
        ratings,
    }
}

const SCRIPT: &str = r#"
import json, math, sys
import numpy as np
import scipy.sparse as sp
sys.path.insert(0, sys.argv[1])
import metrics as M
d = json.load(open(sys.argv[2]))
lists, targets, ks = d["lists"], d["targets"], d["ks"]
out = {"per_user": {}, "batch": {}}
for k in ks:
    out["per_user"][f"RecallLiang@{k}"] = [M.recall_liang_at_k(l, t, k) for l, t in zip(lists, targets)]
    out["per_user"][f"Recall@{k}"] = [M.recall_at_k(l, t, k) for l, t in zip(lists, targets)]
    out["per_user"][f"Precision@{k}"] = [M.precision_at_k(l, t, k) for l, t in zip(lists, targets)]
    out["per_user"][f"NDCG@{k}"] = [M.ndcg_at_k(l, t, k) for l, t in zip(lists, targets)]
    out["per_user"][f"MAP@{k}"] = [M.ap_at_k(l, t, k) for l, t in zip(lists, targets)]
    out["per_user"][f"HitRate@{k}"] = [M.hit_rate_at_k(l, t, k) for l, t in zip(lists, targets)]
    out["per_user"][f"MRR@{k}"] = [M.reciprocal_rank(l, t, k) for l, t in zip(lists, targets)]
out["per_user"]["AUC"] = [M.auc_user(s, t, e) for s, t, e in zip(d["scores"], targets, d["excluded"])]
F = np.array(d["features"], dtype=float)
out["per_user"]["ILD@10"] = [M.intra_list_diversity(l[:10], F) for l in lists]
n_items = len(d["counts"])
K = max(len(l) for l in lists)
topk = -np.ones((len(lists), K), dtype=np.int64)
for u, l in enumerate(lists):
    topk[u, :len(l)] = l
rows = [u for u, t in enumerate(targets) for _ in t]
cols = [i for t in targets for i in t]
T = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(lists), n_items))
out["batch"].update(M.topk_metrics(topk, T, ks=tuple(ks)))
er = [u for u, e in enumerate(d["excluded"]) for _ in e]
ec = [i for e in d["excluded"] for i in e]
E = sp.csr_matrix((np.ones(len(er)), (er, ec)), shape=(len(lists), n_items))
s, n = M.batch_auc(np.array(d["scores"]), T, E)
out["batch"]["AUC"] = s / n
keep = np.diff(T.indptr) > 0
out["batch"].update(M.beyond_accuracy(topk[keep], n_items, d["counts"], d["n_train_users"], 10, features=F))
out["batch"]["Coverage@5(all)"] = M.catalog_coverage(lists, n_items, 5)
out["batch"]["Novelty@5(all)"] = M.novelty(lists, d["counts"], d["n_train_users"], 5)
p = [r[0] for r in d["ratings"]]; t = [r[1] for r in d["ratings"]]
out["batch"]["RMSE"] = M.rmse(p, t)
out["batch"]["MAE"] = M.mae(p, t)
print(json.dumps(out).replace("NaN", "null"))
"#;

fn nan_or(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

fn mean_defined(v: &[f64]) -> f64 {
    let d: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    d.iter().sum::<f64>() / d.len() as f64
}

fn assert_close(what: &str, ours: f64, theirs: &Value) {
    match theirs.as_f64() {
        None => assert!(ours.is_nan(), "{what}: ours {ours}, metrics.py undefined"),
        Some(t) => assert!(
            (ours - t).abs() <= 1e-6,
            "{what}: ours {ours}, metrics.py {t}"
        ),
    }
}

#[test]
fn metrics_agree_with_peers_metrics_py() {
    let peers = peers_dir();
    if !peers.join("metrics.py").exists() {
        println!(
            "skipped: {} not found (set CAIRN_PEERS_DIR)",
            peers.join("metrics.py").display()
        );
        return;
    }
    let python = match python() {
        Ok(p) => p,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    for seed in [1u64, 2, 3] {
        let inp = inputs(seed);
        let dir = tempfile::tempdir().unwrap();
        let input_path = dir.path().join("inputs.json");
        let payload = json!({
            "lists": inp.lists, "targets": inp.targets, "scores": inp.scores, "excluded": inp.excluded,
            "features": inp.features, "counts": inp.counts, "n_train_users": inp.n_train_users,
            "ratings": inp.ratings, "ks": KS,
        });
        std::fs::write(&input_path, payload.to_string()).unwrap();
        let script_path = dir.path().join("reference.py");
        std::fs::write(&script_path, SCRIPT).unwrap();
        let output = Command::new(&python)
            .arg(&script_path)
            .arg(&peers)
            .arg(&input_path)
            .output()
            .expect("python runs");
        assert!(
            output.status.success(),
            "metrics.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let reference: Value =
            serde_json::from_slice(&output.stdout).expect("json from the reference");
        let per_user = &reference["per_user"];
        let batch = &reference["batch"];

        let rels: Vec<Relevance> = inp
            .lists
            .iter()
            .zip(&inp.targets)
            .map(|(l, t)| Relevance::new(l, t, None))
            .collect();
        let with_targets: Vec<usize> = (0..N_USERS)
            .filter(|&u| !inp.targets[u].is_empty())
            .collect();
        for k in KS {
            let columns: [(&str, PerUserMetric); 7] = [
                ("RecallLiang", Box::new(move |r| r.recall_liang(k))),
                ("Recall", Box::new(move |r| r.recall(k))),
                ("Precision", Box::new(move |r| r.precision(k))),
                ("NDCG", Box::new(move |r| r.ndcg(k))),
                ("MAP", Box::new(move |r| r.average_precision(k))),
                ("HitRate", Box::new(move |r| r.hit_rate(k))),
                ("MRR", Box::new(move |r| r.reciprocal_rank(k))),
            ];
            for (name, f) in &columns {
                let key = format!("{name}@{k}");
                let ours: Vec<f64> = rels.iter().map(|r| nan_or(f(r))).collect();
                for (u, v) in ours.iter().enumerate() {
                    assert_close(
                        &format!("seed {seed} user {u} {key}"),
                        *v,
                        &per_user[&key][u],
                    );
                }
                if batch.get(&key).is_some() {
                    let m: Vec<f64> = with_targets.iter().map(|&u| ours[u]).collect();
                    assert_close(
                        &format!("seed {seed} batch {key}"),
                        mean_defined(&m),
                        &batch[&key],
                    );
                }
            }
        }
        let aucs: Vec<f64> = (0..N_USERS)
            .map(|u| {
                let ex = &inp.excluded[u];
                nan_or(auc(&inp.scores[u], &inp.targets[u], |i| {
                    ex.binary_search(&i).is_err()
                }))
            })
            .collect();
        for (u, v) in aucs.iter().enumerate() {
            assert_close(
                &format!("seed {seed} user {u} AUC"),
                *v,
                &per_user["AUC"][u],
            );
        }
        assert_close("batch AUC", mean_defined(&aucs), &batch["AUC"]);

        let n_features = 5;
        let triplets = inp
            .features
            .iter()
            .enumerate()
            .flat_map(|(i, row)| {
                row.iter()
                    .enumerate()
                    .filter(|(_, &x)| x == 1)
                    .map(move |(f, _)| (i as u32, f as u32, 1.0))
            })
            .collect();
        let feats =
            NormalizedFeatures::new(&CsrMatrix::from_triplets(N_ITEMS, n_features, triplets));
        let ild: Vec<f64> = inp
            .lists
            .iter()
            .map(|l| nan_or(intra_list_diversity(&l[..10.min(l.len())], &feats)))
            .collect();
        for (u, v) in ild.iter().enumerate() {
            assert_close(
                &format!("seed {seed} user {u} ILD@10"),
                *v,
                &per_user["ILD@10"][u],
            );
        }
        let kept_lists: Vec<&[u32]> = with_targets
            .iter()
            .map(|&u| &inp.lists[u][..10.min(inp.lists[u].len())])
            .collect();
        let ild_kept: Vec<f64> = with_targets.iter().map(|&u| ild[u]).collect();
        assert_close("batch ILD@10", mean_defined(&ild_kept), &batch["ILD@10"]);
        assert_close(
            "batch Coverage@10",
            catalog_coverage(kept_lists.iter().copied(), N_ITEMS, 10),
            &batch["Coverage@10"],
        );
        let nov: Vec<f64> = kept_lists
            .iter()
            .map(|l| nan_or(novelty(l, &inp.counts, inp.n_train_users)))
            .collect();
        assert_close("batch Novelty@10", mean_defined(&nov), &batch["Novelty@10"]);
        let all5: Vec<&[u32]> = inp.lists.iter().map(|l| &l[..5]).collect();
        assert_close(
            "Coverage@5",
            catalog_coverage(all5.iter().copied(), N_ITEMS, 5),
            &batch["Coverage@5(all)"],
        );
        let nov5: Vec<f64> = all5
            .iter()
            .map(|l| nan_or(novelty(l, &inp.counts, inp.n_train_users)))
            .collect();
        assert_close("Novelty@5", mean_defined(&nov5), &batch["Novelty@5(all)"]);
        assert_close("RMSE", rmse(&inp.ratings).unwrap(), &batch["RMSE"]);
        assert_close("MAE", mae(&inp.ratings).unwrap(), &batch["MAE"]);
        // ARP has no counterpart in metrics.py; check it is the mean count of the list.
        let l = &inp.lists[0][..5];
        let want = l
            .iter()
            .map(|&i| f64::from(inp.counts[i as usize]))
            .sum::<f64>()
            / 5.0;
        assert_eq!(average_popularity(l, &inp.counts), Some(want));
    }
    println!(
        "metrics agree with {} on 3 random input sets",
        peers.join("metrics.py").display()
    );
}
