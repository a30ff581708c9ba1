//! User-based k-nearest-neighbours. There is nothing to train beyond weighting the matrix: a user
//! (known or new) is compared with every training user who shares an item, through the inverted
//! item → users index, and the `neighbours` most similar users vote for their items. Fold-in is
//! therefore exact and free.

use serde::{Deserialize, Serialize};

use cairn_core::CsrMatrix;

use crate::item_knn::weighted;
use crate::{KnnWeighting, Recommender};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserKnnConfig {
    pub neighbours: usize,
    /// Added to the cosine denominator.
    pub shrinkage: f32,
    pub weighting: KnnWeighting,
}

impl Default for UserKnnConfig {
    fn default() -> Self {
        UserKnnConfig {
            neighbours: 100,
            shrinkage: 10.0,
            weighting: KnnWeighting::Cosine,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserKnn {
    pub config: UserKnnConfig,
    /// Weighted users × items.
    pub user_items: CsrMatrix,
    /// Its transpose: the users of each item.
    pub item_users: CsrMatrix,
    pub user_norms: Vec<f32>,
}

impl UserKnn {
    pub fn fit(user_items: &CsrMatrix, config: UserKnnConfig) -> Self {
        let w = weighted(user_items, config.weighting);
        let user_norms = (0..w.n_rows)
            .map(|u| w.row(u).1.iter().map(|v| v * v).sum::<f32>().sqrt())
            .collect();
        UserKnn {
            config,
            item_users: w.transpose(),
            user_items: w,
            user_norms,
        }
    }
}

impl Recommender for UserKnn {
    fn name(&self) -> &'static str {
        "user-knn"
    }

    fn n_items(&self) -> usize {
        self.user_items.n_cols
    }

    fn score(&self, history: &[(u32, f32)], scores: &mut [f32]) {
        scores.fill(0.0);
        let n_items = self.n_items();
        // The history is weighted like a training row (binary items with their strengths; the idf of
        // the query user does not change its neighbours' ranking, so it is left out).
        let mut sims = vec![0f32; self.user_items.n_rows];
        let mut touched = Vec::new();
        let mut query_norm = 0f32;
        for &(h, w) in history {
            if h as usize >= n_items || w <= 0.0 {
                continue;
            }
            let q = match self.config.weighting {
                KnnWeighting::Cosine => 1.0 + w.max(1.0).ln(),
                _ => w.sqrt(),
            };
            query_norm += q * q;
            let (users, vals) = self.item_users.row(h as usize);
            for (&u, &v) in users.iter().zip(vals) {
                if sims[u as usize] == 0.0 {
                    touched.push(u);
                }
                sims[u as usize] += q * v;
            }
        }
        let query_norm = query_norm.sqrt();
        let mut candidates: Vec<(u32, f32)> = touched
            .into_iter()
            .map(|u| {
                let denom = query_norm * self.user_norms[u as usize] + self.config.shrinkage;
                (u, sims[u as usize] / denom.max(f32::MIN_POSITIVE))
            })
            .collect();
        let keep = self.config.neighbours.min(candidates.len());
        if keep < candidates.len() {
            candidates.select_nth_unstable_by(keep, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            candidates.truncate(keep);
        }
        for (u, sim) in candidates {
            let (items, vals) = self.user_items.row(u as usize);
            for (&i, &v) in items.iter().zip(vals) {
                scores[i as usize] += sim * v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::*;

    #[test]
    fn beats_popularity_with_every_weighting() {
        let data = planted(51, 600, 150, 6, 40);
        let pop = popularity_recall(&data, 10);
        for weighting in [
            KnnWeighting::Cosine,
            KnnWeighting::TfIdf,
            KnnWeighting::Bm25 { k1: 1.2, b: 0.75 },
        ] {
            let knn = UserKnn::fit(
                &data.train,
                UserKnnConfig {
                    weighting,
                    ..UserKnnConfig::default()
                },
            );
            let recall = recall_at(&knn, &data.held_out, 10);
            assert!(
                recall > pop * 1.3 && recall > pop + 0.05,
                "{weighting:?}: {recall} vs pop {pop}"
            );
        }
    }

    #[test]
    fn round_trips_and_a_training_user_is_their_own_neighbour() {
        let data = planted(52, 300, 20, 5, 30);
        let knn = UserKnn::fit(&data.train, UserKnnConfig::default());
        let back: UserKnn = postcard::from_bytes(&postcard::to_allocvec(&knn).unwrap()).unwrap();
        assert_eq!(
            top_lists(&knn, &data.held_out, 10),
            top_lists(&back, &data.held_out, 10)
        );
        // With one neighbour, a training user's own row is the nearest, so their items score highest.
        let one = UserKnn::fit(
            &data.train,
            UserKnnConfig {
                neighbours: 1,
                shrinkage: 0.0,
                ..UserKnnConfig::default()
            },
        );
        let history = history_of(&data.train, 3);
        let mut scores = vec![0f32; one.n_items()];
        one.score(&history, &mut scores);
        let best = crate::top_k(&scores, history.len(), |_| false);
        assert!(best.iter().all(|(i, _)| history.iter().any(|h| h.0 == *i)));
    }
}
