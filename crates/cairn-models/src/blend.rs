//! Blending: a weighted sum of several recommenders' scores. Each member's scores are standardised
//! per user (zero mean, unit variance over the catalogue) before weighting, so that models on
//! different scales (similarity sums, dot products, popularity counts, cosines) mix meaningfully.
//!
//! Weights can be learned on validation users ([`Blend::learn`], [`Blend::learn_with`]): coordinate
//! ascent over a small grid of weights per member, maximising NDCG@k of the blended ranking with each
//! user's history excluded, optionally ranking only a candidate set (as the cold-items protocol does).
//!
//! There is one blend for every kind of member: the registry's [`FittedModel`]s (the default, which
//! serialises with them) or any other [`Recommender`], e.g. `Blend<Arc<dyn Recommender>>` mixing the
//! collaborative models with the content and research models of other crates.

use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::registry::FittedModel;
use crate::{top_k, Recommender};

/// `members[m]` weighted `weights[m]`. Members should rank the same items; the blend ranks the
/// smallest `n_items` among them (a member that knows more items is cut to those).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Blend<M = FittedModel> {
    pub members: Vec<M>,
    pub weights: Vec<f32>,
}

/// A validation user: fold-in history and held-out target items.
pub type ValidationUser = (Vec<(u32, f32)>, Vec<u32>);

/// How [`Blend::learn_with`] searches.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnOptions {
    /// Weights tried for each member.
    pub grid: Vec<f32>,
    /// Passes of coordinate ascent over the members.
    pub rounds: usize,
    /// The NDCG cut-off that is maximised.
    pub k: usize,
    /// When set, the only items ranked (e.g. the cold items); otherwise every item.
    pub candidates: Option<Vec<u32>>,
}

impl Default for LearnOptions {
    fn default() -> Self {
        LearnOptions {
            grid: vec![0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0],
            rounds: 2,
            k: 100,
            candidates: None,
        }
    }
}

/// A shared model ranks as the model it shares, so that a blend can hold models of different types
/// (`Blend<Arc<dyn Recommender>>`).
impl<R: Recommender + ?Sized> Recommender for Arc<R> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn n_items(&self) -> usize {
        (**self).n_items()
    }

    fn score(&self, history: &[(u32, f32)], scores: &mut [f32]) {
        (**self).score(history, scores)
    }
}

/// Standardises `scores` in place; a constant vector becomes all zeros.
pub fn standardise(scores: &mut [f32]) {
    let n = scores.len().max(1) as f64;
    let mean = scores.iter().map(|&s| s as f64).sum::<f64>() / n;
    let var = scores
        .iter()
        .map(|&s| (s as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    let inv = if var > 0.0 { 1.0 / var.sqrt() } else { 0.0 };
    for s in scores.iter_mut() {
        *s = ((*s as f64 - mean) * inv) as f32;
    }
}

/// NDCG@k of one ranking of items (binary gain, IDCG over min(k, |targets|) ranks).
fn ndcg(ranked: &[u32], targets: &[u32], k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, i)| targets.contains(i))
        .map(|(r, _)| 1.0 / ((r + 2) as f64).log2())
        .sum();
    let idcg: f64 = (0..k.min(targets.len()))
        .map(|r| 1.0 / ((r + 2) as f64).log2())
        .sum();
    if idcg > 0.0 {
        dcg / idcg
    } else {
        0.0
    }
}

/// Coordinate ascent for blend weights. `scores[user][member][c]` is a member's standardised score
/// of item `columns[c]` for validation user `user`. The first member starts at weight 1 and the
/// others at 0, so the result is never worse on validation than the first member alone; then,
/// `rounds` times, each weight in turn takes the value of `grid` that maximises mean NDCG@k of the
/// blended ranking (each user's history excluded). Ties keep the earlier setting.
pub fn search_weights(
    scores: &[Vec<Vec<f32>>],
    validation: &[ValidationUser],
    columns: &[u32],
    grid: &[f32],
    rounds: usize,
    k: usize,
) -> Vec<f32> {
    let n_members = scores.first().map_or(0, |s| s.len());
    let k = k.max(1);
    let evaluate = |weights: &[f32]| -> f64 {
        let total: f64 = scores
            .par_iter()
            .zip(validation)
            .map_init(
                || vec![0f32; columns.len()],
                |sum, (member_scores, (history, targets))| {
                    sum.fill(0.0);
                    for (s, &w) in member_scores.iter().zip(weights) {
                        if w != 0.0 {
                            sum.iter_mut().zip(s).for_each(|(a, b)| *a += w * b);
                        }
                    }
                    let seen = |c: u32| history.iter().any(|h| h.0 == columns[c as usize]);
                    let ranked: Vec<u32> = top_k(sum, k, seen)
                        .into_iter()
                        .map(|(c, _)| columns[c as usize])
                        .collect();
                    ndcg(&ranked, targets, k)
                },
            )
            .sum();
        total / validation.len().max(1) as f64
    };
    let mut weights = vec![0f32; n_members];
    if let Some(w) = weights.first_mut() {
        *w = 1.0;
    }
    let mut best = evaluate(&weights);
    for _ in 0..rounds {
        for m in 0..n_members {
            for &candidate in grid {
                let mut trial = weights.clone();
                trial[m] = candidate;
                if trial == weights || trial.iter().all(|&w| w == 0.0) {
                    continue;
                }
                let score = evaluate(&trial);
                if score > best {
                    best = score;
                    weights = trial;
                }
            }
        }
    }
    weights
}

impl<M: Recommender> Blend<M> {
    pub fn new(members: Vec<M>, weights: Vec<f32>) -> Self {
        Blend { members, weights }
    }

    /// Learns weights on validation users, ranking every item: [`Blend::learn_with`] with this
    /// grid, number of rounds and cut-off.
    pub fn learn(
        members: Vec<M>,
        validation: &[ValidationUser],
        grid: &[f32],
        rounds: usize,
        k: usize,
    ) -> Self {
        let options = LearnOptions {
            grid: grid.to_vec(),
            rounds,
            k,
            candidates: None,
        };
        Self::learn_with(members, validation, &options)
    }

    /// Learns weights on validation users ([`search_weights`]). The first member starts at weight 1
    /// and the others at 0, so the result is never worse on validation than the first member alone;
    /// then each weight in turn is set to the best grid value with the others fixed, `rounds` times.
    /// Ties keep the earlier setting, so the search is deterministic.
    pub fn learn_with(
        members: Vec<M>,
        validation: &[ValidationUser],
        options: &LearnOptions,
    ) -> Self {
        let n_items = min_items(&members);
        let candidates: Vec<u32> = match &options.candidates {
            Some(c) => c
                .iter()
                .copied()
                .filter(|&i| (i as usize) < n_items)
                .collect(),
            None => (0..n_items as u32).collect(),
        };
        // Per user and member: standardised scores (over all items, as `score` does) of the
        // candidates, computed once.
        let cached: Vec<Vec<Vec<f32>>> = validation
            .par_iter()
            .map(|(history, _)| {
                members
                    .iter()
                    .map(|m| {
                        let mut full = vec![0f32; m.n_items()];
                        m.score(history, &mut full);
                        full.truncate(n_items);
                        standardise(&mut full);
                        match options.candidates {
                            Some(_) => candidates.iter().map(|&i| full[i as usize]).collect(),
                            None => full,
                        }
                    })
                    .collect()
            })
            .collect();
        let weights = search_weights(
            &cached,
            validation,
            &candidates,
            &options.grid,
            options.rounds,
            options.k,
        );
        Blend { members, weights }
    }
}

/// The smallest number of items among the members (0 without members).
fn min_items<M: Recommender>(members: &[M]) -> usize {
    members.iter().map(|m| m.n_items()).min().unwrap_or(0)
}

impl<M: Recommender> Recommender for Blend<M> {
    fn name(&self) -> &'static str {
        "blend"
    }

    fn n_items(&self) -> usize {
        min_items(&self.members)
    }

    /// A member with weight 0 is not scored: it would add nothing.
    fn score(&self, history: &[(u32, f32)], scores: &mut [f32]) {
        let n = self.n_items().min(scores.len());
        scores.fill(0.0);
        let mut member_scores = vec![0f32; n];
        let mut longer = Vec::new();
        for (m, &w) in self.members.iter().zip(&self.weights) {
            if w == 0.0 {
                continue;
            }
            if m.n_items() == n {
                member_scores.fill(0.0);
                m.score(history, &mut member_scores);
            } else {
                // A member that knows more items scores them all; the blend keeps the first `n`.
                longer.clear();
                longer.resize(m.n_items(), 0f32);
                m.score(history, &mut longer);
                member_scores.copy_from_slice(&longer[..n]);
            }
            standardise(&mut member_scores);
            for (s, v) in scores.iter_mut().zip(&member_scores) {
                *s += w * v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::*;
    use crate::{ItemKnnConfig, ModelSpec, Popularity};
    use cairn_core::InteractionMatrix;

    struct Fixed(Vec<f32>);

    impl Recommender for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }
        fn n_items(&self) -> usize {
            self.0.len()
        }
        fn score(&self, _: &[(u32, f32)], scores: &mut [f32]) {
            scores.copy_from_slice(&self.0);
        }
    }

    #[test]
    fn standardising_gives_zero_mean_unit_variance() {
        let mut s = [1.0, 2.0, 3.0, 4.0];
        standardise(&mut s);
        let mean: f32 = s.iter().sum::<f32>() / 4.0;
        let var: f32 = s.iter().map(|v| v * v).sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5, "{s:?}");
        let mut flat = [2.0; 3];
        standardise(&mut flat);
        assert_eq!(flat, [0.0; 3]);
    }

    #[test]
    fn learned_blend_is_no_worse_than_its_first_member_and_round_trips() {
        let data = planted(71, 600, 200, 6, 40);
        let (validation, test) = data.held_out.split_at(100);
        let pop = FittedModel::Popularity(Popularity::from_matrix(&data.train));
        let matrix = InteractionMatrix {
            user_items: data.train.clone(),
            ..InteractionMatrix::default()
        };
        let knn = ModelSpec::ItemKnn(ItemKnnConfig::default())
            .fit_model(&matrix)
            .unwrap();
        let blend = Blend::learn(
            vec![pop, knn],
            validation,
            &[0.0, 0.5, 1.0, 2.0, 4.0],
            2,
            10,
        );
        // Starting from popularity alone, learning must move weight to the far better kNN.
        assert!(blend.weights[1] > 0.0, "{:?}", blend.weights);
        let pop_recall = popularity_recall(&data, 10);
        let recall = recall_at(&blend, test, 10);
        assert!(recall > pop_recall * 1.3, "{recall} vs pop {pop_recall}");
        let back: Blend = postcard::from_bytes(&postcard::to_allocvec(&blend).unwrap()).unwrap();
        assert_eq!(top_lists(&blend, test, 10), top_lists(&back, test, 10));
    }

    #[test]
    fn standardised_parts_are_weighted() {
        let a: Arc<dyn Recommender> = Arc::new(Fixed(vec![0.0, 1.0, 2.0]));
        let b: Arc<dyn Recommender> = Arc::new(Fixed(vec![200.0, 100.0, 0.0]));
        let blend = Blend::new(vec![a.clone(), b.clone()], vec![1.0, 1.0]);
        let mut s = vec![0f32; 3];
        blend.score(&[], &mut s);
        // Opposite orders with equal weights cancel, whatever the scales.
        assert!(s.iter().all(|x| x.abs() < 1e-5), "{s:?}");
        let blend = Blend::new(vec![a, b], vec![2.0, 1.0]);
        blend.score(&[], &mut s);
        assert!(s[2] > s[1] && s[1] > s[0]);
    }

    fn two_models() -> (Arc<dyn Recommender>, Arc<dyn Recommender>) {
        // The first model prefers the low items, the second the high ones.
        let low = Fixed((0..10).map(|i| 10.0 - i as f32).collect());
        let high = Fixed((0..10).map(|i| i as f32).collect());
        (Arc::new(low), Arc::new(high))
    }

    #[test]
    fn learning_moves_weight_to_the_model_that_finds_the_targets() {
        let (low, high) = two_models();
        let validation: Vec<ValidationUser> = vec![(vec![], vec![9, 8]), (vec![(9, 1.0)], vec![8])];
        let options = LearnOptions {
            k: 2,
            ..LearnOptions::default()
        };
        let blend = Blend::learn_with(vec![low, high], &validation, &options);
        let w = &blend.weights;
        assert!(w[1] > w[0], "{w:?}");
        let mut s = vec![0f32; 10];
        blend.score(&[], &mut s);
        let best = top_k(&s, 2, |_| false);
        assert_eq!(best.iter().map(|b| b.0).collect::<Vec<_>>(), vec![9, 8]);
    }

    #[test]
    fn learning_keeps_the_first_model_when_it_is_already_best() {
        let (low, high) = two_models();
        let validation: Vec<ValidationUser> = vec![(vec![], vec![0]), (vec![], vec![1])];
        let blend = Blend::learn_with(vec![low, high], &validation, &LearnOptions::default());
        assert_eq!(blend.weights[0], 1.0);
        assert!(blend.weights[1] < 1.0, "{:?}", blend.weights);
    }

    #[test]
    fn learning_ranks_only_the_candidates() {
        // Among candidates {2, 3} a model preferring low items ranks the target 2 first, although the
        // high-preferring first model wins over all items. (Squares keep the two from cancelling.)
        let high: Arc<dyn Recommender> = Arc::new(Fixed((0..10).map(|i| i as f32).collect()));
        let low: Arc<dyn Recommender> = Arc::new(Fixed(
            (0..10).map(|i| ((10 - i) * (10 - i)) as f32).collect(),
        ));
        let validation: Vec<ValidationUser> = vec![(vec![], vec![2])];
        let options = LearnOptions {
            k: 1,
            candidates: Some(vec![2, 3]),
            ..LearnOptions::default()
        };
        let blend = Blend::learn_with(vec![high, low], &validation, &options);
        assert!(blend.weights[1] > 0.0, "{:?}", blend.weights);
        let mut s = vec![0f32; 10];
        blend.score(&[], &mut s);
        assert!(s[2] > s[3], "{s:?}");
    }
}
