//! Approximate nearest-neighbour search over model embeddings with an HNSW graph (Malkov &
//! Yashunin, "Efficient and robust approximate nearest neighbor search using Hierarchical
//! Navigable Small World graphs", 2018).
//!
//! Serving uses it to fetch candidate items for a user vector: maximum inner product over item
//! factors ([`Metric::InnerProduct`]), searched directly in the graph as hnswlib's `ip` space
//! does. Scores are always "higher is better". [`exact_search`] is the brute-force reference.
//!
//! ```
//! use cairn_ann::{HnswConfig, HnswIndex, Metric};
//! let vectors: Vec<f32> = (0..200 * 4).map(|i| ((i * 37 % 101) as f32) / 101.0 - 0.5).collect();
//! let config = HnswConfig { metric: Metric::L2, ..HnswConfig::default() };
//! let index = HnswIndex::build_serial(&vectors, 4, &config).unwrap();
//! let hits = index.search(&vectors[40..44], 5, 64);
//! assert_eq!(hits[0].0, 10);
//! ```

mod config;
mod error;
mod exact;
mod graph;
mod index;
mod kernels;
mod scratch;

pub use config::{HnswConfig, Metric};
pub use error::AnnError;
pub use exact::exact_search;
pub use index::HnswIndex;

#[cfg(test)]
mod tests;
