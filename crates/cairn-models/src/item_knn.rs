//! Item-based k-nearest-neighbours on co-occurrence: cosine similarity with shrinkage, keeping the `k`
//! most similar items per item. A user is scored by summing the similarities of the items they touched,
//! which makes fold-in free: new events change the next recommendation immediately.
//!
//! Besides cosine, the item vectors (over users) can be weighted as `implicit` does before taking
//! plain dot products: TF-IDF (`sqrt(x) · idf_u`) or BM25 (`x (K1 + 1) / (K1 · norm_i + x) · idf_u`,
//! `norm_i = 1 − B + B · |i| / mean|i|`), with `idf_u = ln(n_items) − ln(1 + n_u)` so that users who
//! touched everything say little about similarity.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use cairn_core::CsrMatrix;

use crate::{Recommender, SimilarItems};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ItemKnnConfig {
    /// Neighbours kept per item.
    pub neighbours: usize,
    /// Added to the cosine denominator; damps similarities resting on few co-occurrences.
    pub shrinkage: f32,
    /// Users with more items than this contribute only their last `max_user_items` items, bounding the
    /// quadratic cost of heavy users.
    pub max_user_items: usize,
    /// How item vectors are weighted before similarities are taken.
    #[serde(default)]
    pub weighting: KnnWeighting,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KnnWeighting {
    /// Cosine of `1 + ln(strength)` vectors with shrinkage.
    #[default]
    Cosine,
    /// Dot products of TF-IDF weighted vectors.
    TfIdf,
    /// Dot products of BM25 weighted vectors.
    Bm25 { k1: f32, b: f32 },
}

impl Default for ItemKnnConfig {
    fn default() -> Self {
        ItemKnnConfig {
            neighbours: 100,
            shrinkage: 10.0,
            max_user_items: 500,
            weighting: KnnWeighting::Cosine,
        }
    }
}

/// The user × item matrix with values weighted for the similarity: `1 + ln(x)` for cosine, TF-IDF
/// or BM25 otherwise (see the module docs). Shared with user-kNN.
pub(crate) fn weighted(m: &CsrMatrix, weighting: KnnWeighting) -> CsrMatrix {
    let n_items = m.n_cols.max(1) as f32;
    let idf = |u: usize| (n_items.ln() - (1.0 + m.row_len(u) as f32).ln()).max(0.0);
    let mut out = m.clone();
    match weighting {
        KnnWeighting::Cosine => {
            for v in &mut out.values {
                *v = 1.0 + v.max(1.0).ln();
            }
        }
        KnnWeighting::TfIdf => {
            for u in 0..m.n_rows {
                let w = idf(u);
                for v in &mut out.values[m.indptr[u]..m.indptr[u + 1]] {
                    *v = v.max(0.0).sqrt() * w;
                }
            }
        }
        KnnWeighting::Bm25 { k1, b } => {
            let mut item_len = vec![0f32; m.n_cols];
            for (&i, &v) in m.indices.iter().zip(&m.values) {
                item_len[i as usize] += v;
            }
            let mean = item_len.iter().sum::<f32>() / n_items;
            for u in 0..m.n_rows {
                let w = idf(u);
                let range = m.indptr[u]..m.indptr[u + 1];
                for (v, &i) in out.values[range.clone()].iter_mut().zip(&m.indices[range]) {
                    let norm = 1.0 - b + b * item_len[i as usize] / mean.max(f32::MIN_POSITIVE);
                    *v = *v * (k1 + 1.0) / (k1 * norm + *v) * w;
                }
            }
        }
    }
    out
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemKnn {
    pub config: ItemKnnConfig,
    /// Row i lists item i's neighbours and similarities, strongest first.
    pub neighbours: CsrMatrix,
}

impl ItemKnn {
    /// Fits on a users × items matrix whose values are interaction strengths. Strengths are damped with
    /// `1 + ln(strength)` so that one heavy user does not dominate an item's vector.
    pub fn fit(user_items: &CsrMatrix, config: ItemKnnConfig) -> Self {
        let n_items = user_items.n_cols;
        let x = weighted(
            &capped_rows(user_items, config.max_user_items),
            config.weighting,
        );
        let cosine = matches!(config.weighting, KnnWeighting::Cosine);
        let item_users = x.transpose();
        let norms: Vec<f32> = (0..n_items)
            .map(|i| {
                item_users
                    .row(i)
                    .1
                    .iter()
                    .map(|v| v * v)
                    .sum::<f32>()
                    .sqrt()
            })
            .collect();

        let rows: Vec<Vec<(u32, f32)>> = (0..n_items)
            .into_par_iter()
            .map_init(
                || (vec![0f32; n_items], Vec::<u32>::new()),
                |(acc, touched), i| {
                    let (users, weights) = item_users.row(i);
                    for (&u, &wu) in users.iter().zip(weights) {
                        let (items, vals) = x.row(u as usize);
                        for (&j, &wj) in items.iter().zip(vals) {
                            if j as usize == i {
                                continue;
                            }
                            if acc[j as usize] == 0.0 {
                                touched.push(j);
                            }
                            acc[j as usize] += wu * wj;
                        }
                    }
                    let mut candidates: Vec<(u32, f32)> = touched
                        .drain(..)
                        .map(|j| {
                            let dot = std::mem::take(&mut acc[j as usize]);
                            if cosine {
                                let denom = norms[i] * norms[j as usize] + config.shrinkage;
                                (j, dot / denom)
                            } else {
                                (j, dot)
                            }
                        })
                        .collect();
                    let keep = config.neighbours.min(candidates.len());
                    if keep < candidates.len() {
                        candidates.select_nth_unstable_by(keep, |a, b| {
                            b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
                        });
                        candidates.truncate(keep);
                    }
                    candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                    candidates
                },
            )
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
        ItemKnn {
            config,
            neighbours: CsrMatrix {
                n_rows: n_items,
                n_cols: n_items,
                indptr,
                indices,
                values,
            },
        }
    }

    /// The history entry that contributes most to `item`'s score: the "because you liked X".
    pub fn strongest_reason(&self, history: &[(u32, f32)], item: u32) -> Option<u32> {
        history
            .iter()
            .filter_map(|&(h, w)| {
                let (nbrs, sims) = self.neighbours.row(h as usize);
                let at = nbrs.iter().position(|&n| n == item)?;
                Some((h, w * sims[at]))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(h, _)| h)
    }
}

/// Keeps only the last `cap` entries of each row (rows are in column order, so "last" is arbitrary but
/// deterministic; the point is bounding cost, not choosing).
fn capped_rows(m: &CsrMatrix, cap: usize) -> CsrMatrix {
    if (0..m.n_rows).all(|r| m.row_len(r) <= cap) {
        return m.clone();
    }
    let mut triplets = Vec::with_capacity(m.nnz());
    for r in 0..m.n_rows {
        let (cols, vals) = m.row(r);
        let skip = cols.len().saturating_sub(cap);
        for (&c, &v) in cols.iter().zip(vals).skip(skip) {
            triplets.push((r as u32, c, v));
        }
    }
    CsrMatrix::from_triplets(m.n_rows, m.n_cols, triplets)
}

impl Recommender for ItemKnn {
    fn name(&self) -> &'static str {
        "item-knn"
    }

    fn n_items(&self) -> usize {
        self.neighbours.n_rows
    }

    fn score(&self, history: &[(u32, f32)], scores: &mut [f32]) {
        scores.fill(0.0);
        for &(h, w) in history {
            if h as usize >= self.neighbours.n_rows || w <= 0.0 {
                continue;
            }
            let (nbrs, sims) = self.neighbours.row(h as usize);
            for (&j, &s) in nbrs.iter().zip(sims) {
                scores[j as usize] += w * s;
            }
        }
    }
}

impl SimilarItems for ItemKnn {
    fn similar(&self, item: u32, k: usize) -> Vec<(u32, f32)> {
        crate::topk::top_k_of_row(&self.neighbours, item, k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top_k;
    use cairn_core::InteractionMatrix;

    /// Two clusters: users 0-9 like items a0..a4, users 10-19 like b0..b4.
    fn clustered() -> InteractionMatrix {
        let mut rows = Vec::new();
        for u in 0..20 {
            let prefix = if u < 10 { "a" } else { "b" };
            for i in 0..5 {
                if (u + i) % 4 != 0 {
                    rows.push((format!("u{u}"), format!("{prefix}{i}"), 1.0));
                }
            }
        }
        InteractionMatrix::from_rows(rows.iter().map(|(u, i, v)| (u.as_str(), i.as_str(), *v)))
    }

    #[test]
    fn neighbours_stay_inside_their_cluster() {
        let m = clustered();
        let knn = ItemKnn::fit(&m.user_items, ItemKnnConfig::default());
        let a0 = m.items.get("a0").unwrap();
        for (j, s) in knn.similar(a0, 10) {
            assert!(m.items.id(j).starts_with('a'), "{} {s}", m.items.id(j));
            assert!(s > 0.0);
        }
    }

    #[test]
    fn weighted_variants_beat_popularity() {
        let data = crate::testdata::planted(41, 600, 150, 6, 40);
        let pop = crate::testdata::popularity_recall(&data, 10);
        for weighting in [
            KnnWeighting::Cosine,
            KnnWeighting::TfIdf,
            KnnWeighting::Bm25 { k1: 1.2, b: 0.75 },
        ] {
            let knn = ItemKnn::fit(
                &data.train,
                ItemKnnConfig {
                    weighting,
                    ..ItemKnnConfig::default()
                },
            );
            let recall = crate::testdata::recall_at(&knn, &data.held_out, 10);
            assert!(
                recall > pop * 1.3 && recall > pop + 0.05,
                "{weighting:?}: {recall} vs pop {pop}"
            );
            let back: ItemKnn =
                serde_json::from_str(&serde_json::to_string(&knn).unwrap()).unwrap();
            assert_eq!(
                crate::testdata::top_lists(&knn, &data.held_out, 10),
                crate::testdata::top_lists(&back, &data.held_out, 10)
            );
        }
    }

    #[test]
    fn bm25_weights_match_a_hand_computation() {
        // Two users, three items; user 0 has items {0, 1}, user 1 has item {0}.
        let m = CsrMatrix::from_triplets(2, 3, vec![(0, 0, 1.0), (0, 1, 1.0), (1, 0, 1.0)]);
        let w = weighted(&m, KnnWeighting::Bm25 { k1: 1.2, b: 0.75 });
        // item lengths [2, 1, 0], mean 1; idf_0 = ln 3 − ln 3 = 0, idf_1 = ln 3 − ln 2.
        let idf1 = 3f32.ln() - 2f32.ln();
        let norm0 = 1.0 - 0.75 + 0.75 * 2.0;
        assert_eq!(w.values[0], 0.0);
        assert_eq!(w.values[1], 0.0);
        assert!((w.values[2] - 2.2 / (1.2 * norm0 + 1.0) * idf1).abs() < 1e-6);
    }

    #[test]
    fn scores_follow_the_history() {
        let m = clustered();
        let knn = ItemKnn::fit(&m.user_items, ItemKnnConfig::default());
        let b1 = m.items.get("b1").unwrap();
        let mut scores = vec![0.0; m.n_items()];
        knn.score(&[(b1, 1.0)], &mut scores);
        let best = top_k(&scores, 3, |i| i == b1);
        assert!(best.iter().all(|&(j, _)| m.items.id(j).starts_with('b')));
        assert_eq!(knn.strongest_reason(&[(b1, 1.0)], best[0].0), Some(b1));
    }
}
