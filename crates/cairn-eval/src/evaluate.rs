//! Scores one fitted model on one [`EvalTask`]: ranks the candidates of every user with targets
//! (excluding the user's history), then computes every per-user metric and the catalog-level ones.

use std::collections::BTreeMap;

use cairn_models::{top_k, Recommender};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::metrics::beyond::average_popularity;
use crate::metrics::{
    auc, gini, group_exposure, intra_list_diversity, miscalibration, novelty, GroupExposure,
    NormalizedFeatures, Relevance,
};
use crate::task::EvalTask;

/// Which metrics to compute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankingOptions {
    /// Cut-offs; the ranked lists are `max(ks)` long.
    pub ks: Vec<usize>,
    /// Exact AUC over all candidates (one sort of the full score vector per user).
    pub auc: bool,
    /// How items with equal scores are ordered in a ranked list.
    #[serde(default)]
    pub ties: TieBreak,
}

impl Default for RankingOptions {
    fn default() -> Self {
        RankingOptions {
            ks: vec![10, 20, 50, 100],
            auc: true,
            ties: TieBreak::LowerIndex,
        }
    }
}

/// Order of equally scored items. The lower index is what serving does (`cairn_models::top_k`), but
/// item indices follow ids, and ids can carry information (older MovieLens films have lower ids): a
/// model that scores many items equally, such as popularity on cold items, then inherits that order.
/// `Random` orders ties by a seeded permutation of the items, the same for every user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TieBreak {
    #[default]
    LowerIndex,
    Random {
        seed: u64,
    },
}

impl RankingOptions {
    pub fn list_len(&self) -> usize {
        self.ks.iter().copied().max().unwrap_or(0)
    }
}

/// Per-user values of every metric, one column per metric, rows aligned with `users`. NaN marks a
/// value that is undefined for that user (left out of means).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PerUser {
    pub users: Vec<String>,
    pub columns: BTreeMap<String, Vec<f64>>,
}

/// Share of recommendation slots and of training interactions per item-popularity decile (decile 0 =
/// the most popular tenth of the catalog).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PopularityBins {
    pub k: usize,
    pub recommended_share: Vec<f64>,
    pub training_share: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankingResult {
    pub per_user: PerUser,
    /// Catalog-level metrics: Coverage@k, Gini@k.
    pub aggregates: BTreeMap<String, f64>,
    pub popularity_bins: Option<PopularityBins>,
    /// Exposure per item group at the popularity bins' k, where the task has item groups.
    pub group_exposure: Option<GroupExposure>,
    /// The ranked lists of the evaluated users (item indices, best first), aligned with `per_user`.
    #[serde(skip)]
    pub lists: Vec<Vec<u32>>,
}

/// Metric names in display order for these options (the keys of `metrics.py` where it has them).
/// `groups`: the task has item groups, so miscalibration is computed.
pub fn metric_names(
    opts: &RankingOptions,
    graded: bool,
    features: bool,
    groups: bool,
) -> Vec<String> {
    let mut names = Vec::new();
    for &k in &opts.ks {
        for base in [
            "RecallLiang",
            "Recall",
            "Precision",
            "NDCG",
            "MAP",
            "HitRate",
        ] {
            names.push(format!("{base}@{k}"));
        }
        if graded {
            names.push(format!("NDCGgraded@{k}"));
        }
        names.push(format!("Novelty@{k}"));
        names.push(format!("ARP@{k}"));
        if features {
            names.push(format!("ILD@{k}"));
        }
        if groups {
            names.push(format!("Miscalibration@{k}"));
        }
    }
    names.push(format!("MRR@{}", opts.list_len()));
    if opts.auc {
        names.push("AUC".to_string());
    }
    names
}

/// Ranks and scores every user with targets. `progress` is told how many users were done.
pub fn evaluate_ranking(
    model: &dyn Recommender,
    task: &EvalTask,
    opts: &RankingOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> RankingResult {
    let n_items = task.n_items();
    let list_len = opts.list_len();
    let candidate_mask: Option<Vec<bool>> = task.candidates.as_ref().map(|c| {
        let mut m = vec![false; n_items];
        for &i in c {
            m[i as usize] = true;
        }
        m
    });
    let features = task.features.as_ref().map(NormalizedFeatures::new);
    let graded = task.users.iter().any(|u| u.gains.is_some());
    let groups = task.groups.as_ref();
    let names = metric_names(opts, graded, features.is_some(), groups.is_some());
    let evaluated: Vec<usize> = (0..task.users.len())
        .filter(|&u| !task.users[u].targets.is_empty())
        .collect();
    let n_fit_users = task.train.n_users();

    // position -> item; ranking the permuted scores breaks ties by position.
    let order: Option<Vec<u32>> = match opts.ties {
        TieBreak::LowerIndex => None,
        TieBreak::Random { seed } => {
            let mut perm: Vec<u32> = (0..n_items as u32).collect();
            perm.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
            Some(perm)
        }
    };
    let rows: Vec<(Vec<u32>, Vec<f64>)> = evaluated
        .par_iter()
        .map_init(
            || (vec![0f32; n_items], vec![0f32; n_items]),
            |(scores, permuted), &u| {
                let user = &task.users[u];
                scores.iter_mut().for_each(|s| *s = 0.0);
                model.score(&user.history, scores);
                let seen_in_order: Vec<u32> = user.history.iter().map(|h| h.0).collect();
                let mut seen = seen_in_order.clone();
                seen.sort_unstable();
                let is_candidate = |i: u32| {
                    seen.binary_search(&i).is_err()
                        && candidate_mask.as_ref().is_none_or(|m| m[i as usize])
                };
                let ranked: Vec<u32> = match &order {
                    None => top_k(scores, list_len, |i| !is_candidate(i))
                        .into_iter()
                        .map(|(i, _)| i)
                        .collect(),
                    Some(perm) => {
                        for (slot, &item) in permuted.iter_mut().zip(perm) {
                            *slot = scores[item as usize];
                        }
                        top_k(permuted, list_len, |j| !is_candidate(perm[j as usize]))
                            .into_iter()
                            .map(|(j, _)| perm[j as usize])
                            .collect()
                    }
                };
                let rel = Relevance::new(&ranked, &user.targets, user.gains.as_deref());
                let mut values = Vec::with_capacity(names.len());
                let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
                for &k in &opts.ks {
                    values.push(nan(rel.recall_liang(k)));
                    values.push(nan(rel.recall(k)));
                    values.push(nan(rel.precision(k)));
                    values.push(nan(rel.ndcg(k)));
                    values.push(nan(rel.average_precision(k)));
                    values.push(nan(rel.hit_rate(k)));
                    if graded {
                        values.push(nan(rel.ndcg_graded(k)));
                    }
                    let top = &ranked[..k.min(ranked.len())];
                    values.push(nan(novelty(top, &task.item_popularity, n_fit_users)));
                    values.push(nan(average_popularity(top, &task.item_popularity)));
                    if let Some(f) = &features {
                        values.push(nan(intra_list_diversity(top, f)));
                    }
                    if let Some(g) = groups {
                        values.push(nan(miscalibration(&seen_in_order, top, g)));
                    }
                }
                values.push(nan(rel.reciprocal_rank(list_len)));
                if opts.auc {
                    values.push(nan(auc(scores, &user.targets, is_candidate)));
                }
                progress(1);
                (ranked, values)
            },
        )
        .collect();

    let mut columns: BTreeMap<String, Vec<f64>> = names
        .iter()
        .map(|n| (n.clone(), Vec::with_capacity(rows.len())))
        .collect();
    for (_, values) in &rows {
        for (name, v) in names.iter().zip(values) {
            if let Some(col) = columns.get_mut(name) {
                col.push(*v);
            }
        }
    }
    let lists: Vec<Vec<u32>> = rows.into_iter().map(|(l, _)| l).collect();
    let aggregates = catalog_metrics(task, &lists, &opts.ks);
    let bins_k = opts
        .ks
        .iter()
        .copied()
        .find(|&k| k >= 10)
        .or(opts.ks.first().copied());
    let popularity_bins = bins_k.map(|k| popularity_bins(task, &lists, k));
    let group_exposure = match (bins_k, groups) {
        (Some(k), Some(g)) => {
            let catalog: Vec<u32> = match &task.candidates {
                Some(c) => c.clone(),
                None => (0..task.n_items() as u32).collect(),
            };
            Some(group_exposure(
                lists.iter().map(Vec::as_slice),
                k,
                g,
                &catalog,
                &task.item_popularity,
            ))
        }
        _ => None,
    };
    RankingResult {
        per_user: PerUser {
            users: evaluated
                .iter()
                .map(|&u| task.users[u].id.clone())
                .collect(),
            columns,
        },
        aggregates,
        popularity_bins,
        group_exposure,
        lists,
    }
}

/// Coverage@k (distinct recommended items / catalog) and Gini@k of the exposure counts over the catalog.
fn catalog_metrics(task: &EvalTask, lists: &[Vec<u32>], ks: &[usize]) -> BTreeMap<String, f64> {
    let catalog: Vec<u32> = match &task.candidates {
        Some(c) => c.clone(),
        None => (0..task.n_items() as u32).collect(),
    };
    let mut out = BTreeMap::new();
    for &k in ks {
        let mut exposure = vec![0f64; task.n_items()];
        for list in lists {
            for &i in list.iter().take(k) {
                exposure[i as usize] += 1.0;
            }
        }
        let catalog_exposure: Vec<f64> = catalog.iter().map(|&i| exposure[i as usize]).collect();
        let covered = catalog_exposure.iter().filter(|&&e| e > 0.0).count();
        let coverage = if catalog.is_empty() {
            0.0
        } else {
            covered as f64 / catalog.len() as f64
        };
        out.insert(format!("Coverage@{k}"), coverage);
        if let Some(g) = gini(&catalog_exposure) {
            out.insert(format!("Gini@{k}"), g);
        }
    }
    out
}

fn popularity_bins(task: &EvalTask, lists: &[Vec<u32>], k: usize) -> PopularityBins {
    const BINS: usize = 10;
    let mut catalog: Vec<u32> = match &task.candidates {
        Some(c) => c.clone(),
        None => (0..task.n_items() as u32).collect(),
    };
    catalog.sort_by_key(|&i| (std::cmp::Reverse(task.item_popularity[i as usize]), i));
    let mut bin_of = vec![usize::MAX; task.n_items()];
    for (rank, &i) in catalog.iter().enumerate() {
        bin_of[i as usize] = rank * BINS / catalog.len().max(1);
    }
    let mut recommended = vec![0f64; BINS];
    let mut training = vec![0f64; BINS];
    for list in lists {
        for &i in list.iter().take(k) {
            if let Some(b) = recommended.get_mut(bin_of[i as usize]) {
                *b += 1.0;
            }
        }
    }
    for &i in &catalog {
        training[bin_of[i as usize]] += f64::from(task.item_popularity[i as usize]);
    }
    let normalize = |v: Vec<f64>| {
        let total: f64 = v.iter().sum();
        v.into_iter()
            .map(|x| if total > 0.0 { x / total } else { 0.0 })
            .collect()
    };
    PopularityBins {
        k,
        recommended_share: normalize(recommended),
        training_share: normalize(training),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::EvalUser;
    use cairn_core::{IdMap, InteractionMatrix};
    use cairn_models::Popularity;

    fn task() -> EvalTask {
        // 3 training users over 4 items; popularity = [3, 2, 1, 0]
        let users = IdMap::from_ids(vec!["a".into(), "b".into(), "c".into()]);
        let items = IdMap::from_ids((0..4).map(|i| i.to_string()).collect());
        let train = InteractionMatrix::from_triplets(
            users,
            items,
            vec![
                (0, 0, 1.0),
                (1, 0, 1.0),
                (2, 0, 1.0),
                (0, 1, 1.0),
                (1, 1, 1.0),
                (2, 2, 1.0),
            ],
        );
        EvalTask {
            name: "test".into(),
            item_popularity: vec![3, 2, 1, 0],
            train_order: (0..train.user_items.n_rows)
                .map(|u| train.user_items.row(u).0.to_vec())
                .collect(),
            train,
            users: vec![
                EvalUser {
                    id: "x".into(),
                    history: vec![(0, 1.0)],
                    targets: vec![2],
                    gains: None,
                },
                EvalUser {
                    id: "y".into(),
                    history: vec![],
                    targets: vec![],
                    gains: None,
                },
                EvalUser {
                    id: "z".into(),
                    history: vec![(1, 1.0)],
                    targets: vec![0, 3],
                    gains: None,
                },
            ],
            candidates: None,
            features: None,
            groups: None,
            ratings: None,
        }
    }

    #[test]
    fn popularity_ranks_exclude_history_and_skip_users_without_targets() {
        let t = task();
        let model = Popularity::from_matrix(&t.train.user_items);
        let opts = RankingOptions {
            ks: vec![1, 2],
            auc: true,
            ..RankingOptions::default()
        };
        let r = evaluate_ranking(&model, &t, &opts, &|_| {});
        assert_eq!(r.per_user.users, vec!["x", "z"]);
        assert_eq!(r.lists, vec![vec![1, 2], vec![0, 2]]);
        let col = |n: &str| r.per_user.columns[n].clone();
        // x: [1, 2] vs {2} -> miss then hit; z: [0, 2] vs {0, 3} -> hit then miss
        assert_eq!(col("HitRate@1"), vec![0.0, 1.0]);
        assert_eq!(col("RecallLiang@2"), vec![1.0, 0.5]);
        assert_eq!(col("MRR@2"), vec![0.5, 1.0]);
        // x: candidates 1 (2), 2 (1), 3 (0); positive 2 beats item 3 -> 1/2.
        // z: candidates 0 (3), 2 (1), 3 (0); positives 0 and 3: 0 beats 2 negatives... only item 2 is negative -> (1 + 0)/2
        assert_eq!(col("AUC"), vec![0.5, 0.5]);
        assert_eq!(r.aggregates["Coverage@1"], 0.5);
        assert_eq!(r.aggregates["Coverage@2"], 0.75);
        // exposure at k=1 over 4 items: [1, 1, 0, 0] -> gini = ((-3*0) + (-1*0) + 1*1 + 3*1)/(4*2) = 0.5
        assert_eq!(r.aggregates["Gini@1"], 0.5);
        let novelty_x = -(2.0f64 / 3.0).log2();
        assert!((col("Novelty@1")[0] - novelty_x).abs() < 1e-12);
        assert_eq!(col("ARP@2"), vec![1.5, 2.0]);
    }

    #[test]
    fn candidates_restrict_the_ranking() {
        let mut t = task();
        t.candidates = Some(vec![2, 3]);
        let model = Popularity::from_matrix(&t.train.user_items);
        let opts = RankingOptions {
            ks: vec![2],
            auc: false,
            ..RankingOptions::default()
        };
        let r = evaluate_ranking(&model, &t, &opts, &|_| {});
        assert_eq!(r.lists, vec![vec![2, 3], vec![2, 3]]);
        assert_eq!(r.aggregates["Coverage@2"], 1.0);
    }

    #[test]
    fn random_tie_break_reorders_only_equal_scores() {
        let mut t = task();
        // every item scored 0, as for popularity on cold items: the whole order is ties
        t.item_popularity = vec![0; 4];
        let flat = Popularity {
            scores: vec![0.0; 4],
        };
        let mut seen_orders = std::collections::HashSet::new();
        for seed in 0..20 {
            let opts = RankingOptions {
                ks: vec![3],
                auc: false,
                ties: TieBreak::Random { seed },
            };
            let r = evaluate_ranking(&flat, &t, &opts, &|_| {});
            // history stays excluded whatever the order
            assert!(!r.lists[0].contains(&0) && !r.lists[1].contains(&1));
            seen_orders.insert(r.lists[0].clone());
            let again = evaluate_ranking(&flat, &t, &opts, &|_| {});
            assert_eq!(again.lists, r.lists, "seeded");
        }
        assert!(seen_orders.len() > 1, "ties are not always in index order");
        // distinct scores are never reordered
        let model = Popularity::from_matrix(&t.train.user_items);
        let opts = RankingOptions {
            ks: vec![2],
            auc: false,
            ties: TieBreak::Random { seed: 3 },
        };
        let r = evaluate_ranking(&model, &t, &opts, &|_| {});
        assert_eq!(r.lists[0], vec![1, 2]);
    }

    #[test]
    fn item_groups_add_miscalibration_and_group_exposure() {
        let mut t = task();
        // items 0 and 2 are "a", 1 is "b", 3 is both
        t.groups = Some(crate::metrics::ItemGroups::from_pairs(
            4,
            [(0, "a"), (1, "b"), (2, "a"), (3, "a"), (3, "b")],
        ));
        let model = Popularity::from_matrix(&t.train.user_items);
        let opts = RankingOptions {
            ks: vec![1, 2],
            auc: false,
            ..RankingOptions::default()
        };
        let r = evaluate_ranking(&model, &t, &opts, &|_| {});
        let col = |n: &str| r.per_user.columns[n].clone();
        // x: history {0} (a), list [1] (b) at k = 1 -> KL = ln(1 / 0.01)
        assert!((col("Miscalibration@1")[0] - 100f64.ln()).abs() < 1e-12);
        // x at k = 2: list [1, 2] -> q = [0.5, 0.5], p = [1, 0]
        let q: f64 = 0.99 * 0.5 + 0.01;
        assert!((col("Miscalibration@2")[0] - (1.0 / q).ln()).abs() < 1e-12);
        // z: history {1} (b), list [0, 2] (a, a) at k = 2 -> ln(1 / 0.01)
        assert!((col("Miscalibration@2")[1] - 100f64.ln()).abs() < 1e-12);
        let e = r.group_exposure.unwrap();
        // at the popularity bins' k (no k >= 10 here: the first, 1)
        assert_eq!(e.k, 1);
        assert_eq!(e.groups, vec!["a", "b"]);
        // slots at k = 1: 1 (b) for x, 0 (a) for z
        assert_eq!(e.exposure, vec![0.5, 0.5]);
        // catalog: a = 1 + 1 + 0.5, b = 1 + 0.5
        assert_eq!(e.catalog_share, vec![2.5 / 4.0, 1.5 / 4.0]);
    }
}
