//! The approximate nearest-neighbour index over the factor model's item vectors, so that the
//! embedding retriever does not score every item on every request of a large catalog.

use cairn_ann::{HnswConfig, HnswIndex, Metric};
use serde::{Deserialize, Serialize};

use crate::PipelineError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnnConfig {
    /// Below this many items the embedding retriever scores every item exactly.
    pub min_items: usize,
    /// HNSW graph degree and build/search breadth.
    pub m: usize,
    pub ef_construction: usize,
    pub ef_search: usize,
}

impl Default for AnnConfig {
    fn default() -> Self {
        AnnConfig {
            min_items: 20_000,
            m: 16,
            ef_construction: 100,
            ef_search: 64,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemIndex {
    index: HnswIndex,
    ef_search: usize,
    /// Item biases are folded in as one more coordinate (the query's is 1), so that inner
    /// product search ranks by the model's own score.
    biased: bool,
}

impl ItemIndex {
    /// `None` when the catalog is small enough to score exactly.
    pub fn build(
        vectors: &[f32],
        dim: usize,
        bias: Option<&[f32]>,
        config: &AnnConfig,
    ) -> Result<Option<ItemIndex>, PipelineError> {
        let n = vectors.len().checked_div(dim).unwrap_or(0);
        if n < config.min_items.max(1) {
            return Ok(None);
        }
        let hnsw = HnswConfig {
            m: config.m,
            ef_construction: config.ef_construction,
            ef_search: config.ef_search,
            metric: Metric::InnerProduct,
            ..HnswConfig::default()
        };
        let err = PipelineError::Ann;
        let index = match bias {
            Some(b) => {
                let mut augmented = Vec::with_capacity(n * (dim + 1));
                for (v, &bi) in vectors.chunks_exact(dim).zip(b) {
                    augmented.extend_from_slice(v);
                    augmented.push(bi);
                }
                HnswIndex::build(&augmented, dim + 1, &hnsw).map_err(err)?
            }
            None => HnswIndex::build(vectors, dim, &hnsw).map_err(err)?,
        };
        Ok(Some(ItemIndex {
            index,
            ef_search: config.ef_search,
            biased: bias.is_some(),
        }))
    }

    /// The `k` allowed items with the highest score for this user vector, best first.
    pub fn nearest(&self, user: &[f32], k: usize, allow: &dyn Fn(u32) -> bool) -> Vec<(u32, f32)> {
        let ef = self.ef_search.max(k);
        if self.biased {
            let mut q = Vec::with_capacity(user.len() + 1);
            q.extend_from_slice(user);
            q.push(1.0);
            self.index.search_filtered(&q, k, ef, allow)
        } else {
            self.index.search_filtered(user, k, ef, allow)
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn nearest_items_match_exact_scores_with_biases() {
        let (n, dim) = (3000, 16);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let vectors: Vec<f32> = (0..n * dim).map(|_| rng.random::<f32>() - 0.5).collect();
        let bias: Vec<f32> = (0..n).map(|_| rng.random::<f32>() * 0.5).collect();
        let config = AnnConfig {
            min_items: 1000,
            ..AnnConfig::default()
        };
        let index = ItemIndex::build(&vectors, dim, Some(&bias), &config)
            .unwrap()
            .unwrap();
        let small = AnnConfig {
            min_items: n + 1,
            ..config.clone()
        };
        assert!(ItemIndex::build(&vectors, dim, None, &small)
            .unwrap()
            .is_none());
        let mut hits = 0;
        for _ in 0..50 {
            let user: Vec<f32> = (0..dim).map(|_| rng.random::<f32>() - 0.5).collect();
            let score = |i: usize| {
                vectors[i * dim..(i + 1) * dim]
                    .iter()
                    .zip(&user)
                    .map(|(a, b)| a * b)
                    .sum::<f32>()
                    + bias[i]
            };
            let mut exact: Vec<usize> = (0..n).filter(|i| i % 3 != 0).collect();
            exact.sort_by(|&a, &b| score(b).total_cmp(&score(a)));
            let got = index.nearest(&user, 10, &|i| i % 3 != 0);
            assert!(got.iter().all(|&(i, _)| i % 3 != 0), "filter obeyed");
            for &(i, s) in &got {
                assert!(
                    (s - score(i as usize)).abs() < 1e-4,
                    "the score is the model's"
                );
            }
            hits += got
                .iter()
                .filter(|(i, _)| exact[..10].contains(&(*i as usize)))
                .count();
        }
        assert!(
            hits as f64 / 500.0 >= 0.9,
            "recall@10 {}",
            hits as f64 / 500.0
        );
    }
}
