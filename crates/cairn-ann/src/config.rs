use serde::{Deserialize, Serialize};

use crate::AnnError;

/// What "near" means. Every search reports a score where higher is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Maximum inner product (MIPS): score = `q · x`. Item norms matter, as they do for
    /// matrix-factorisation item factors.
    #[default]
    InnerProduct,
    /// Cosine similarity: vectors are normalised when added; score = `cos(q, x)`.
    Cosine,
    /// Euclidean distance: score = `-‖q − x‖²`.
    L2,
}

/// HNSW parameters (Malkov & Yashunin). The defaults match hnswlib's usual settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HnswConfig {
    /// Links per node on the upper layers; layer 0 keeps up to `2 * m`.
    pub m: usize,
    /// Candidate list size while inserting: larger builds slower and gives a better graph.
    pub ef_construction: usize,
    /// Default candidate list size for [`crate::HnswIndex::search_default`].
    pub ef_search: usize,
    pub metric: Metric,
    /// Seeds the layer assignment of every node, so serial builds are reproducible.
    pub seed: u64,
}

impl Default for HnswConfig {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
            metric: Metric::InnerProduct,
            seed: 42,
        }
    }
}

/// Upper bound on `m`: layer-0 lists hold `2 * m` ids and the per-node level is a `u8`.
pub(crate) const MAX_M: usize = 1024;

impl HnswConfig {
    pub(crate) fn validate(&self) -> Result<(), AnnError> {
        if self.m < 2 || self.m > MAX_M {
            return Err(AnnError::InvalidConfig(format!(
                "m must be in 2..={MAX_M}, got {}",
                self.m
            )));
        }
        if self.ef_construction == 0 {
            return Err(AnnError::InvalidConfig(
                "ef_construction must be at least 1".into(),
            ));
        }
        if self.ef_search == 0 {
            return Err(AnnError::InvalidConfig(
                "ef_search must be at least 1".into(),
            ));
        }
        Ok(())
    }
}
