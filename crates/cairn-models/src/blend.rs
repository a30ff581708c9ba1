//! Blending: a weighted sum of several recommenders' scores. Each member's scores are standardised
//! per user (zero mean, unit variance over the catalogue) before weighting, so that models on
//! different scales (similarity sums, dot products, popularity counts) mix meaningfully.
//!
//! Weights can be learned on validation users ([`Blend::learn`]): coordinate ascent over a small grid
//! of weights per member, maximising NDCG@k of the blended ranking with each user's history excluded.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::registry::FittedModel;
use crate::{top_k, Recommender};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Blend {
    pub members: Vec<FittedModel>,
    pub weights: Vec<f32>,
}

/// A validation user: fold-in history and held-out target items.
pub type ValidationUser = (Vec<(u32, f32)>, Vec<u32>);

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

impl Blend {
    pub fn new(members: Vec<FittedModel>, weights: Vec<f32>) -> Self {
        Blend { members, weights }
    }

    /// Learns weights on validation users. The first member starts at weight 1 and the others at 0;
    /// then, `rounds` times, each member's weight is set to the best value of `grid` with the others
    /// fixed. Members must agree on the number of items.
    pub fn learn(
        members: Vec<FittedModel>,
        validation: &[ValidationUser],
        grid: &[f32],
        rounds: usize,
        k: usize,
    ) -> Self {
        let n_items = members.first().map_or(0, |m| m.n_items());
        // Standardised scores of every member for every validation user, computed once.
        let cached: Vec<Vec<Vec<f32>>> = validation
            .par_iter()
            .map(|(history, _)| {
                members
                    .iter()
                    .map(|m| {
                        let mut s = vec![0f32; n_items];
                        m.score(history, &mut s);
                        standardise(&mut s);
                        s
                    })
                    .collect()
            })
            .collect();
        let columns: Vec<u32> = (0..n_items as u32).collect();
        let weights = search_weights(&cached, validation, &columns, grid, rounds, k);
        Blend { members, weights }
    }
}

impl Recommender for Blend {
    fn name(&self) -> &'static str {
        "blend"
    }

    fn n_items(&self) -> usize {
        self.members.first().map_or(0, |m| m.n_items())
    }

    fn score(&self, history: &[(u32, f32)], scores: &mut [f32]) {
        scores.fill(0.0);
        let mut member_scores = vec![0f32; scores.len()];
        for (m, &w) in self.members.iter().zip(&self.weights) {
            if w == 0.0 || m.n_items() != scores.len() {
                continue;
            }
            m.score(history, &mut member_scores);
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
}
