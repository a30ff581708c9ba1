//! A sequence-aware item-to-next-item transition model: the next item depends on the order of the
//! user's last few events, not only on the set of items they touched.
//!
//! Fit: in every training user's history, in time order, each item `i` at position `p` and each item
//! `j` at position `p + d` with `1 ≤ d ≤ gap` add `step_decay^(d−1)` to the count `c(i → j)` (and
//! `backward · step_decay^(d−1)` to `c(j → i)`, 0 by default: strictly forward). The counts are
//! normalised like item-kNN's cosine with shrinkage, with an exponent that moves the norm between
//! the source and the target item:
//!
//! `s(i → j) = c(i → j) / (n_i^α · n_j^(1−α) + shrinkage)`,
//!
//! where `n_i` is the number of training users who touched `i` (α = 0.5 is the cosine; α = 1 is the
//! conditional frequency of `j` after `i`, which favours popular targets). Each item keeps its
//! `neighbours` strongest successors.
//!
//! Scoring: the user's newest `last_n` events, newest first, the `r`-th (r = 0 newest) weighing
//! `recency^r` times its strength, each adding its successors' similarities.
//!
//! The fit has no randomness and is independent of the number of threads: the counts are summed in
//! the order the pairs are generated (users in index order), and each item's row is normalised and
//! cut on its own.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use cairn_core::CsrMatrix;

use crate::{ModelError, Recommender, SimilarItems};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TransitionConfig {
    /// Pairs at most this many steps apart in a user's time-ordered history count.
    pub gap: usize,
    /// A pair `d` steps apart counts `step_decay^(d−1)`; in (0, 1].
    pub step_decay: f32,
    /// Weight of the reverse direction (an item counting as a successor of the one after it); 0 is
    /// strictly forward, 1 counts both directions equally.
    #[serde(default)]
    pub backward: f32,
    /// Added to the normaliser; damps transitions resting on few users.
    pub shrinkage: f32,
    /// Exponent of the source item's popularity in the normaliser, in [0, 1]; the target's is `1 − alpha`.
    pub alpha: f32,
    /// Successors kept per item.
    pub neighbours: usize,
    /// Newest events of the history used when scoring.
    pub last_n: usize,
    /// The `r`-th newest event (0 = newest) weighs `recency^r`; in (0, 1].
    pub recency: f32,
}

impl Default for TransitionConfig {
    fn default() -> Self {
        TransitionConfig {
            gap: 3,
            step_decay: 0.5,
            backward: 0.0,
            shrinkage: 10.0,
            alpha: 0.5,
            neighbours: 100,
            last_n: 5,
            recency: 0.7,
        }
    }
}

impl TransitionConfig {
    fn validate(&self) -> Result<(), ModelError> {
        let bad = |reason: &str| {
            Err(ModelError::InvalidConfig {
                model: "transition",
                reason: reason.to_string(),
            })
        };
        if self.gap == 0 {
            return bad("gap must be at least 1");
        }
        if !(self.step_decay > 0.0 && self.step_decay <= 1.0) {
            return bad("step_decay must be in (0, 1]");
        }
        if !(self.backward >= 0.0 && self.backward.is_finite()) {
            return bad("backward must be a finite number >= 0");
        }
        if !(self.shrinkage >= 0.0 && self.shrinkage.is_finite()) {
            return bad("shrinkage must be a finite number >= 0");
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return bad("alpha must be in [0, 1]");
        }
        if self.neighbours == 0 {
            return bad("neighbours must be at least 1");
        }
        if self.last_n == 0 {
            return bad("last_n must be at least 1");
        }
        if !(self.recency > 0.0 && self.recency <= 1.0) {
            return bad("recency must be in (0, 1]");
        }
        Ok(())
    }
}

/// The fitted transition model: each item's strongest successors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transition {
    pub config: TransitionConfig,
    /// Row i lists the items that follow i, with their normalised weights, strongest first.
    pub successors: CsrMatrix,
}

impl Transition {
    /// Fits on `sequences`: one per training user, item indices below `n_items` in time order
    /// (oldest first). An item repeated in a sequence counts at its first position only.
    pub fn fit(
        n_items: usize,
        sequences: &[Vec<u32>],
        config: TransitionConfig,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        if let Some(&bad) = sequences.iter().flatten().find(|&&i| i as usize >= n_items) {
            return Err(ModelError::InvalidConfig {
                model: "transition",
                reason: format!("item index {bad} in a sequence is not below n_items = {n_items}"),
            });
        }
        let mut users_of = vec![0u32; n_items];
        let mut pairs: Vec<(u32, u32, f32)> = Vec::new();
        let mut seen = vec![false; n_items];
        let mut seq: Vec<u32> = Vec::new();
        for raw in sequences {
            seq.clear();
            for &i in raw {
                if !std::mem::replace(&mut seen[i as usize], true) {
                    seq.push(i);
                }
            }
            for &i in &seq {
                seen[i as usize] = false;
                users_of[i as usize] += 1;
            }
            for (p, &i) in seq.iter().enumerate() {
                let mut w = 1.0f32;
                for &j in seq.iter().skip(p + 1).take(config.gap) {
                    pairs.push((i, j, w));
                    if config.backward > 0.0 {
                        pairs.push((j, i, config.backward * w));
                    }
                    w *= config.step_decay;
                }
            }
        }
        // A stable sort keeps each (i, j)'s pairs in generation order, so the sums below do not
        // depend on anything but the input.
        pairs.sort_by_key(|&(i, j, _)| (i, j));
        let mut counts: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n_items];
        for (i, j, w) in pairs {
            let row = &mut counts[i as usize];
            match row.last_mut() {
                Some(last) if last.0 == j => last.1 += f64::from(w),
                _ => row.push((j, f64::from(w))),
            }
        }
        let norm: Vec<f64> = users_of.iter().map(|&n| f64::from(n)).collect();
        let (alpha, shrinkage) = (f64::from(config.alpha), f64::from(config.shrinkage));
        let rows: Vec<Vec<(u32, f32)>> = counts
            .into_par_iter()
            .enumerate()
            .map(|(i, row)| {
                let mut row: Vec<(u32, f32)> = row
                    .into_iter()
                    .map(|(j, c)| {
                        let denom =
                            norm[i].powf(alpha) * norm[j as usize].powf(1.0 - alpha) + shrinkage;
                        (j, (c / denom.max(f64::MIN_POSITIVE)) as f32)
                    })
                    .collect();
                let keep = config.neighbours.min(row.len());
                let order =
                    |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
                if keep < row.len() {
                    row.select_nth_unstable_by(keep, order);
                    row.truncate(keep);
                }
                row.sort_by(order);
                row
            })
            .collect();
        let mut indptr = Vec::with_capacity(n_items + 1);
        indptr.push(0);
        let mut indices = Vec::new();
        let mut values = Vec::new();
        for row in rows {
            for (j, s) in row {
                indices.push(j);
                values.push(s);
            }
            indptr.push(indices.len());
        }
        Ok(Transition {
            config,
            successors: CsrMatrix {
                n_rows: n_items,
                n_cols: n_items,
                indptr,
                indices,
                values,
            },
        })
    }

    /// The history entry (among the newest `last_n`) that contributes most to `item`'s score.
    pub fn strongest_reason(&self, history: &[(u32, f32)], item: u32) -> Option<u32> {
        self.recent(history)
            .filter_map(|(h, w)| {
                let (next, sims) = self.successors.row(h as usize);
                let at = next.iter().position(|&n| n == item)?;
                Some((h, w * sims[at]))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(h, _)| h)
    }

    /// The newest `last_n` usable events, newest first, with their recency-weighted strengths.
    fn recent<'a>(&'a self, history: &'a [(u32, f32)]) -> impl Iterator<Item = (u32, f32)> + 'a {
        let n = self.successors.n_rows;
        history
            .iter()
            .rev()
            .filter(move |&&(h, w)| (h as usize) < n && w > 0.0)
            .take(self.config.last_n)
            .scan(1.0f32, |weight, &(h, w)| {
                let out = (h, *weight * w);
                *weight *= self.config.recency;
                Some(out)
            })
    }
}

impl Recommender for Transition {
    fn name(&self) -> &'static str {
        "transition"
    }

    fn n_items(&self) -> usize {
        self.successors.n_rows
    }

    fn score(&self, history: &[(u32, f32)], scores: &mut [f32]) {
        scores.fill(0.0);
        for (h, w) in self.recent(history) {
            let (next, sims) = self.successors.row(h as usize);
            for (&j, &s) in next.iter().zip(sims) {
                scores[j as usize] += w * s;
            }
        }
    }
}

impl SimilarItems for Transition {
    /// The items that most often come next after `item`.
    fn similar(&self, item: u32, k: usize) -> Vec<(u32, f32)> {
        crate::topk::top_k_of_row(&self.successors, item, k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top_k;
    use crate::{ItemKnn, ItemKnnConfig};

    /// Six items; one user per rotation of 0 → 1 → … → 5, so every user has every item: the sets
    /// are identical and only the order says what comes next.
    fn rotations() -> (CsrMatrix, Vec<Vec<u32>>) {
        let sequences: Vec<Vec<u32>> = (0..6u32)
            .map(|start| (0..6u32).map(|k| (start + k) % 6).collect())
            .collect();
        let triplets = sequences
            .iter()
            .enumerate()
            .flat_map(|(u, s)| s.iter().map(move |&i| (u as u32, i, 1.0)))
            .collect();
        (CsrMatrix::from_triplets(6, 6, triplets), sequences)
    }

    fn ranked(model: &dyn Recommender, history: &[(u32, f32)]) -> Vec<(u32, f32)> {
        let mut scores = vec![0f32; model.n_items()];
        model.score(history, &mut scores);
        top_k(&scores, 6, |i| history.iter().any(|&(h, _)| h == i))
    }

    #[test]
    fn the_order_of_the_history_decides_the_next_item_where_item_knn_cannot_tell() {
        let (matrix, sequences) = rotations();
        let model = Transition::fit(6, &sequences, TransitionConfig::default()).unwrap();
        let knn = ItemKnn::fit(&matrix, ItemKnnConfig::default());
        // Same two items, in both orders: the successor of the newest one comes first.
        for (history, next) in [([(0, 1.0), (2, 1.0)], 3), ([(2, 1.0), (0, 1.0)], 1)] {
            let list = ranked(&model, &history);
            assert_eq!(list[0].0, next, "{history:?}: {list:?}");
            assert!(list[0].1 > list[1].1, "a strict win, not a tie: {list:?}");
            // item-kNN gives every unseen item the same score: it cannot tell.
            let knn_list = ranked(&knn, &history);
            assert_eq!(knn_list.len(), 4);
            assert!(
                knn_list.iter().all(|&(_, s)| s == knn_list[0].1),
                "{knn_list:?}"
            );
        }
        assert_eq!(model.strongest_reason(&[(0, 1.0), (2, 1.0)], 3), Some(2));
        assert_eq!(model.similar(4, 1)[0].0, 5);
    }

    #[test]
    fn events_older_than_last_n_are_ignored() {
        let (_, sequences) = rotations();
        let config = TransitionConfig {
            last_n: 1,
            ..TransitionConfig::default()
        };
        let model = Transition::fit(6, &sequences, config).unwrap();
        let mut a = vec![0f32; 6];
        let mut b = vec![0f32; 6];
        model.score(&[(0, 1.0), (3, 1.0)], &mut a);
        model.score(&[(3, 1.0)], &mut b);
        assert_eq!(a, b);
    }

    /// Users walk a ring of items with small random skips; the next item follows the newest one.
    fn markov_walks(seed: u64, users: usize, n_items: u32) -> Vec<Vec<u32>> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..users)
            .map(|_| {
                let mut at = rng.random_range(0..n_items);
                let mut seq = vec![at];
                while seq.len() < 12 {
                    at = (at + rng.random_range(1..3)) % n_items;
                    if !seq.contains(&at) {
                        seq.push(at);
                    }
                }
                seq
            })
            .collect()
    }

    #[test]
    fn beats_item_knn_on_the_next_item_of_sequential_data() {
        let n_items = 60u32;
        let train = markov_walks(7, 400, n_items);
        let held = markov_walks(8, 200, n_items);
        let matrix = CsrMatrix::from_triplets(
            train.len(),
            n_items as usize,
            train
                .iter()
                .enumerate()
                .flat_map(|(u, s)| s.iter().map(move |&i| (u as u32, i, 1.0)))
                .collect(),
        );
        let model = Transition::fit(n_items as usize, &train, TransitionConfig::default()).unwrap();
        let knn = ItemKnn::fit(&matrix, ItemKnnConfig::default());
        let hits = |m: &dyn Recommender| {
            held.iter()
                .filter(|s| {
                    let (history, next) = (&s[..s.len() - 1], s[s.len() - 1]);
                    let history: Vec<(u32, f32)> = history.iter().map(|&i| (i, 1.0)).collect();
                    ranked(m, &history).iter().take(1).any(|&(i, _)| i == next)
                })
                .count()
        };
        let (seq_hits, knn_hits) = (hits(&model), hits(&knn));
        assert!(
            seq_hits > knn_hits + 20,
            "transition {seq_hits} vs item-knn {knn_hits} hits@1 of 200"
        );
    }

    #[test]
    fn same_model_on_one_and_three_threads_and_after_a_round_trip() {
        let sequences = markov_walks(3, 300, 80);
        let config = TransitionConfig {
            backward: 0.3,
            neighbours: 7,
            ..TransitionConfig::default()
        };
        let fit_on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| Transition::fit(80, &sequences, config).unwrap())
        };
        let (one, three) = (fit_on(1), fit_on(3));
        assert_eq!(one.successors, three.successors);
        assert_eq!(one.successors, fit_on(1).successors);
        assert!(one.successors.indptr.windows(2).all(|w| w[1] - w[0] <= 7));

        let bytes = postcard::to_allocvec(&one).unwrap();
        let back: Transition = postcard::from_bytes(&bytes).unwrap();
        let json: Transition = serde_json::from_str(&serde_json::to_string(&one).unwrap()).unwrap();
        let history = [(5, 1.0), (6, 1.0), (8, 2.0)];
        assert_eq!(ranked(&one, &history), ranked(&back, &history));
        assert_eq!(ranked(&one, &history), ranked(&json, &history));
        assert_eq!(back.config, config);
    }

    #[test]
    fn bad_configurations_and_indices_are_errors() {
        let seqs = vec![vec![0, 1]];
        for config in [
            TransitionConfig {
                gap: 0,
                ..TransitionConfig::default()
            },
            TransitionConfig {
                recency: 0.0,
                ..TransitionConfig::default()
            },
            TransitionConfig {
                alpha: 1.5,
                ..TransitionConfig::default()
            },
            TransitionConfig {
                step_decay: f32::NAN,
                ..TransitionConfig::default()
            },
        ] {
            assert!(matches!(
                Transition::fit(2, &seqs, config),
                Err(ModelError::InvalidConfig { .. })
            ));
        }
        assert!(Transition::fit(1, &seqs, TransitionConfig::default()).is_err());
    }
}
