//! The ranker's guard: before a trained ranker orders anything, the same training is repeated on
//! the log without its newest events (the next period as it looks after a training: one time cut,
//! `train.ranker.label_fraction` of the events), and on those held-out events the ranker's order
//! is compared, user by user, with each single retriever's own order. The ranker serves only when
//! it beats the best of them by more than one standard error of the paired difference; otherwise
//! the served lists are ordered by that best retriever (re-ranking rules still apply after).
//! The decision and its figures are kept in the model set ([`GuardReport`]).
//!
//! Why: on a next-period test the ranker, trained on users' own newest events, can lose to
//! item-kNN alone (docs/bench/pipeline.md); the guard makes the served order at least as good as
//! the best single retriever on the newest data the training has, by construction.

use std::collections::{HashMap, HashSet};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::guard_report::{GuardReport, SourceScore};
use crate::model_set::ModelSet;
use crate::placement::{PlacementConfig, Source};
use crate::request::{Context, HistoryConfig};
use crate::retrieve::{self, Retrieval};
use crate::score::score_with_ranker;
use crate::snapshot::Snapshot;
use crate::training::{past_history, per_user, LabelEvent};

/// The list length the guard compares orders at (NDCG@10).
pub const GUARD_K: usize = 10;

/// Binary NDCG@k of `ranked` against the `targets` (the same definition as `cairn-eval`'s and the
/// peer harness's: gain 1 / log2(rank + 2), ideal over min(k, |targets|)).
pub(crate) fn ndcg_at(ranked: &[u32], targets: &HashSet<u32>, k: usize) -> f64 {
    let discount = |r: usize| 1.0 / ((r + 2) as f64).log2();
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, i)| targets.contains(i))
        .map(|(r, _)| discount(r))
        .sum();
    let idcg: f64 = (0..k.min(targets.len())).map(discount).sum();
    if idcg > 0.0 {
        dcg / idcg
    } else {
        0.0
    }
}

/// A source's own order of the retrieved candidates.
pub(crate) fn source_order(r: &Retrieval, source: Source) -> Vec<u32> {
    let mut own: Vec<(u32, u32)> = r
        .candidates
        .iter()
        .filter(|c| c.retrieved_by(source))
        .map(|c| (c.rank[source.index()], c.item))
        .collect();
    own.sort_unstable();
    own.into_iter().map(|(_, i)| i).collect()
}

/// The ranker's order of the retrieved candidates, as re-ranking with no rules would place them
/// (relevance, then fusion, then item on ties).
fn ranker_order(
    m: &ModelSet,
    ctx: &Context,
    r: &Retrieval,
    placement: &PlacementConfig,
) -> Vec<u32> {
    let scores = score_with_ranker(m, ctx, r, placement);
    let c = &r.candidates;
    let mut order: Vec<usize> = (0..c.len()).collect();
    order.sort_by(|&a, &b| {
        scores.relevance[b]
            .total_cmp(&scores.relevance[a])
            .then(scores.fusion[b].total_cmp(&scores.fusion[a]))
            .then(c[a].item.cmp(&c[b].item))
    });
    order.into_iter().map(|i| c[i].item).collect()
}

/// Mean and standard error of the mean (0 for fewer than two values).
fn mean_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let m = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (m, 0.0);
    }
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

/// Compares `models.ranker` (fitted, like the retrievers of `models`, on `past` alone) with each
/// of the placement's retrievers on the held-out `future` events, paired over at most `max_users`
/// of its users (drawn with `seed`), and decides which orders the served lists. `None` when no
/// held-out user has a new item to find (nothing to decide on: the ranker serves unchecked).
pub fn evaluate(
    models: &ModelSet,
    past: &Snapshot,
    future: &[LabelEvent],
    serve: &HistoryConfig,
    placement: &PlacementConfig,
    max_users: usize,
    seed: u64,
) -> Option<GuardReport> {
    let placement = PlacementConfig {
        exploration: 0.0,
        use_ranker: true,
        ..placement.clone()
    };
    let mut sources: Vec<Source> = Vec::new();
    for q in &placement.retrievers {
        if !sources.contains(&q.source) {
            sources.push(q.source);
        }
    }
    if sources.is_empty() {
        return None;
    }
    let past_by_user = per_user(&past.events);
    // Like a next-period test: users with a past, items the past's collaborative models know.
    // For a user with no past every order is the same popularity-led fusion, so such users would
    // only favour the non-personal sources in a comparison whose choice cannot change their list.
    let mut wanted: HashMap<&str, HashSet<u32>> = HashMap::new();
    for (u, i, s) in future {
        if *s > 0.0 && past.users.get(u).is_some() {
            if let Some(t) = models
                .table
                .ids
                .get(i)
                .filter(|&t| (t as usize) < models.table.n_cf)
            {
                wanted.entry(u.as_str()).or_default().insert(t);
            }
        }
    }
    let mut users: Vec<&str> = wanted.keys().copied().collect();
    users.sort_unstable();
    users.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    users.truncate(max_users);
    users.sort_unstable();

    let mut per_source: Vec<Vec<f64>> = vec![Vec::new(); sources.len()];
    let mut ranker: Vec<f64> = Vec::new();
    for user in users {
        let history = past_history(models, past, &past_by_user, user, serve);
        // Every past item of the user, not only the served window: a repeat is not a new find.
        let known: HashSet<u32> = past
            .users
            .get(user)
            .and_then(|u| past_by_user.get(&u))
            .map(|evs| {
                evs.iter()
                    .filter_map(|&(i, _, _)| models.table.ids.get(past.items.id(i)))
                    .collect()
            })
            .unwrap_or_default();
        let targets: HashSet<u32> = wanted[user]
            .iter()
            .copied()
            .filter(|i| !known.contains(i))
            .collect();
        if targets.is_empty() {
            continue;
        }
        let seen: HashSet<u32> = history.iter().filter_map(|e| e.item).collect();
        let allow = |i: u32| !seen.contains(&i);
        let ctx = Context::for_history(&models.table, &history, serve, &allow, GUARD_K);
        let r = retrieve::retrieve(models, &ctx, &placement);
        for (s, scores) in sources.iter().zip(per_source.iter_mut()) {
            scores.push(ndcg_at(&source_order(&r, *s), &targets, GUARD_K));
        }
        if models.ranker.is_some() {
            let order = ranker_order(models, &ctx, &r, &placement);
            ranker.push(ndcg_at(&order, &targets, GUARD_K));
        }
    }
    let n = per_source[0].len();
    if n == 0 {
        return None;
    }
    let scores: Vec<SourceScore> = sources
        .iter()
        .zip(&per_source)
        .map(|(&source, v)| SourceScore {
            source,
            ndcg: mean_se(v).0,
        })
        .collect();
    let best = (0..scores.len())
        .max_by(|&a, &b| scores[a].ndcg.total_cmp(&scores[b].ndcg).then(b.cmp(&a)))
        .expect("at least one source");
    let (ranker_ndcg, diff_mean, diff_se) = if ranker.is_empty() {
        (None, 0.0, 0.0)
    } else {
        let diffs: Vec<f64> = ranker
            .iter()
            .zip(&per_source[best])
            .map(|(a, b)| a - b)
            .collect();
        let (d, se) = mean_se(&diffs);
        (Some(mean_se(&ranker).0), d, se)
    };
    let passed = ranker_ndcg.is_some() && diff_mean - diff_se > 0.0;
    Some(GuardReport {
        users: n,
        ranker_ndcg,
        best_source: sources[best],
        best_ndcg: scores[best].ndcg,
        sources: scores,
        diff_mean,
        diff_se,
        fallback: (!passed).then_some(sources[best]),
    })
}

#[cfg(test)]
mod tests {
    use cairn_core::Item;
    use cairn_rank::{Ranker, RankerConfig};

    use super::*;
    use crate::features;
    use crate::model_set::TrainedRanker;
    use crate::training::examples;
    use crate::TrainConfig;

    fn serve() -> HistoryConfig {
        HistoryConfig {
            history_limit: 50,
            recent_items: 10,
            recency_half_life_days: 30.0,
        }
    }

    /// Every retriever, no re-ranking rule: the list is the scoring order.
    fn placement() -> PlacementConfig {
        PlacementConfig {
            exploration: 0.0,
            new_item_slots: 0,
            max_per_category: 0,
            ..PlacementConfig::default()
        }
    }

    /// 300 users in 4 clusters of 20 items (the clusters are the items' categories); each user
    /// chooses 12 distinct items of their cluster, one per period, all users in every period.
    fn log() -> (Snapshot, Vec<Item>) {
        let mut b = Snapshot::builder();
        for step in 0..12i64 {
            for u in 0..300i64 {
                let c = u % 4;
                let item = c * 20 + (u * 7 + step * 3) % 20;
                b.push(&format!("u{u}"), &format!("i{item}"), 1.0, step * 1000 + u);
            }
        }
        let catalog = (0..80)
            .map(|i| {
                let mut item = Item::new(format!("i{i}"));
                item.categories.push(format!("c{}", i / 20));
                item
            })
            .collect();
        (b.finish(3600), catalog)
    }

    /// The retrievers fitted on the log without its newest 20%, and those newest events.
    fn held_out() -> (ModelSet, Snapshot, Vec<LabelEvent>) {
        let (snapshot, catalog) = log();
        let (past, future) = snapshot.split_newest(0.2);
        let config = TrainConfig {
            model: None,
            ..TrainConfig::default()
        };
        let models = ModelSet::fit_models(&past, &catalog, &config, past.reference_time).unwrap();
        (models, past, future)
    }

    /// A ranker trained on the held-out lists themselves, their labels kept (it has seen the
    /// answers: a good ranker) or reversed (it learns to put the chosen items last: a bad one).
    fn ranker_on_answers(
        models: &ModelSet,
        past: &Snapshot,
        future: &[LabelEvent],
        reversed: bool,
    ) -> TrainedRanker {
        let mut users: Vec<String> = future.iter().map(|e| e.0.clone()).collect();
        users.sort_unstable();
        users.dedup();
        let mut sets = examples(
            models,
            past,
            future,
            &serve(),
            &placement(),
            &[users.as_slice()],
        );
        let mut data = sets.pop().unwrap().data;
        assert!(
            data.group_sizes.len() > 100,
            "{} lists",
            data.group_sizes.len()
        );
        if reversed {
            data.labels.iter_mut().for_each(|l| *l = 1.0 - *l);
        }
        let config = RankerConfig {
            trees: 100,
            learning_rate: 0.3,
            max_leaves: 31,
            min_data_in_leaf: 1,
            seed: 7,
            ..RankerConfig::default()
        };
        TrainedRanker {
            ranker: Ranker::fit(&data, None, &config).unwrap(),
            feature_names: features::feature_names(),
            train_groups: data.group_sizes.len(),
            valid_groups: 0,
            valid_ndcg: 0.0,
            fusion_ndcg: 0.0,
        }
    }

    fn served_top(models: &ModelSet, past: &Snapshot, user: &str) -> (Vec<u32>, Retrieval) {
        let past_by_user = per_user(&past.events);
        let history = past_history(models, past, &past_by_user, user, &serve());
        let seen: HashSet<u32> = history.iter().filter_map(|e| e.item).collect();
        let allow = |i: u32| !seen.contains(&i);
        let ctx = Context::for_history(&models.table, &history, &serve(), &allow, GUARD_K);
        let served: Vec<u32> = crate::run(models, &ctx, &placement())
            .iter()
            .map(|r| r.item)
            .collect();
        let r = retrieve::retrieve(models, &ctx, &placement());
        (served, r)
    }

    #[test]
    fn a_ranker_worse_than_the_best_retriever_is_refused_and_that_retriever_serves() {
        let (mut models, past, future) = held_out();
        models.ranker = Some(ranker_on_answers(&models, &past, &future, true));
        let report = evaluate(&models, &past, &future, &serve(), &placement(), 4000, 1).unwrap();
        assert_eq!(report.users, 300);
        let ranker = report.ranker_ndcg.unwrap();
        assert!(ranker < report.best_ndcg, "{report:?}");
        assert!(report.diff_mean - report.diff_se <= 0.0);
        assert_eq!(report.fallback, Some(report.best_source));
        assert!(!report.ranker_serves());
        // Item-kNN finds a user's cluster; popularity does not know it.
        assert_eq!(report.best_source, Source::ItemKnn, "{report:?}");
        let knn = report.sources.iter().find(|s| s.source == Source::ItemKnn);
        assert_eq!(knn.map(|s| s.ndcg), Some(report.best_ndcg));

        // Served with the report: item-kNN's own order, not the ranker's.
        models.guard = Some(report);
        for user in ["u0", "u1", "u117", "u299"] {
            let (served, r) = served_top(&models, &past, user);
            let knn = source_order(&r, Source::ItemKnn);
            let n = knn.len().min(GUARD_K);
            assert!(n > 0, "{user}");
            assert_eq!(served[..n], knn[..n], "{user}");
        }
    }

    #[test]
    fn a_ranker_better_than_every_retriever_is_kept_and_serves() {
        let (mut models, past, future) = held_out();
        models.ranker = Some(ranker_on_answers(&models, &past, &future, false));
        let report = evaluate(&models, &past, &future, &serve(), &placement(), 4000, 1).unwrap();
        assert!(report.diff_mean - report.diff_se > 0.0, "{report:?}");
        assert!(report.ranker_ndcg.unwrap() > report.best_ndcg);
        assert_eq!(report.fallback, None);
        assert!(report.ranker_serves());
        models.guard = Some(report);
        let (served, r) = served_top(&models, &past, "u5");
        let knn: Vec<u32> = source_order(&r, Source::ItemKnn)
            .into_iter()
            .take(GUARD_K)
            .collect();
        assert_ne!(served, knn, "the ranker orders the list");
    }

    #[test]
    fn without_a_ranker_the_guard_falls_back_and_caps_its_users() {
        let (models, past, future) = held_out();
        let report = evaluate(&models, &past, &future, &serve(), &placement(), 50, 1).unwrap();
        assert_eq!(report.users, 50);
        assert_eq!(report.ranker_ndcg, None);
        assert_eq!(report.fallback, Some(report.best_source));
        assert_eq!(
            evaluate(&models, &past, &[], &serve(), &placement(), 50, 1),
            None
        );
    }

    #[test]
    fn ndcg_is_the_binary_definition() {
        let t: HashSet<u32> = [3, 9].into_iter().collect();
        assert_eq!(ndcg_at(&[3, 9, 1], &t, 10), 1.0);
        assert_eq!(ndcg_at(&[1, 2], &t, 10), 0.0);
        let d = |r: f64| 1.0 / (r + 2.0).log2();
        let want = d(1.0) / (d(0.0) + d(1.0));
        assert!((ndcg_at(&[1, 3], &t, 10) - want).abs() < 1e-12);
        // Beyond k counts nothing.
        assert_eq!(ndcg_at(&[1, 3], &t, 1), 0.0);
    }
}
