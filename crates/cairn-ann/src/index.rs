use std::fmt;
use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::graph::{as_atomic, Entry, GraphView, Inserter, NodeLocks};
use crate::kernels::{dispatch, dot_portable, Space};
use crate::scratch::with_scratch;
use crate::{AnnError, HnswConfig, Metric};

/// Ids are `u32`; one value is kept free so `n` itself always fits.
const MAX_NODES: usize = u32::MAX as usize - 1;

/// An HNSW graph over owned vectors.
///
/// Layer assignment is a pure function of `config.seed` and the node id, so
/// [`HnswIndex::build_serial`] (and [`HnswIndex::build`] in a one-thread rayon pool) always
/// produces the same graph for the same input. The multi-threaded build is not deterministic:
/// which neighbours a node sees depends on the interleaving of insertions.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "IndexParts")]
pub struct HnswIndex {
    config: HnswConfig,
    dim: usize,
    /// Row-major, `len() * dim` values; normalised when the metric is cosine.
    vectors: Vec<f32>,
    levels: Vec<u8>,
    links0: Vec<u32>,
    upper_start: Vec<usize>,
    upper: Vec<u32>,
    entry: Entry,
}

impl fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HnswIndex")
            .field("len", &self.len())
            .field("dim", &self.dim)
            .field("config", &self.config)
            .field("top_level", &self.entry.map(|(_, l)| l))
            .finish()
    }
}

impl HnswIndex {
    /// Builds an index over the row-major `vectors` (n × `dim`) on the current rayon pool.
    /// Deterministic only when that pool has one thread; see [`HnswIndex::build_serial`].
    pub fn build(vectors: &[f32], dim: usize, config: &HnswConfig) -> Result<Self, AnnError> {
        let threads = rayon::current_num_threads();
        Self::build_inner(vectors, dim, config, threads)
    }

    /// Builds on one thread, in id order: the same input and config always give the same graph.
    pub fn build_serial(
        vectors: &[f32],
        dim: usize,
        config: &HnswConfig,
    ) -> Result<Self, AnnError> {
        Self::build_inner(vectors, dim, config, 1)
    }

    /// Builds with exactly `threads` worker threads (a dedicated rayon pool).
    pub fn build_with_threads(
        vectors: &[f32],
        dim: usize,
        config: &HnswConfig,
        threads: usize,
    ) -> Result<Self, AnnError> {
        if threads <= 1 {
            return Self::build_serial(vectors, dim, config);
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| AnnError::InvalidConfig(format!("cannot start {threads} threads: {e}")))?;
        pool.install(|| Self::build_inner(vectors, dim, config, threads))
    }

    fn build_inner(
        vectors: &[f32],
        dim: usize,
        config: &HnswConfig,
        threads: usize,
    ) -> Result<Self, AnnError> {
        config.validate()?;
        if dim == 0 {
            return Err(AnnError::ZeroDimension);
        }
        if vectors.is_empty() {
            return Err(AnnError::Empty);
        }
        if !vectors.len().is_multiple_of(dim) {
            return Err(AnnError::RaggedInput {
                len: vectors.len(),
                dim,
            });
        }
        let n = vectors.len() / dim;
        if n > MAX_NODES {
            return Err(AnnError::TooMany { max: MAX_NODES });
        }
        let mut index = Self::empty(dim, config.clone());
        index.vectors.reserve_exact(vectors.len());
        for (row, v) in vectors.chunks_exact(dim).enumerate() {
            index.push_vector(v, row)?;
        }
        for id in 0..n {
            index.push_node(id);
        }
        let space = index.space();
        let ef_construction = config.ef_construction;
        let mut entry = None;
        {
            let ins = Inserter {
                g: GraphView {
                    vectors: &index.vectors,
                    dim,
                    m: config.m,
                    levels: &index.levels,
                    links0: as_atomic(&mut index.links0),
                    upper_start: &index.upper_start,
                    upper: as_atomic(&mut index.upper),
                },
                ef_construction,
                locks: if threads > 1 {
                    NodeLocks::striped()
                } else {
                    NodeLocks::none()
                },
                entry: Mutex::new(None),
            };
            // Ids come from a shared counter (as in hnswlib), so with several threads the graph
            // still grows roughly in id order instead of in `threads` separate ranges.
            let next = AtomicUsize::new(0);
            if threads > 1 {
                rayon::broadcast(|_| with_scratch(|s| ins.insert_counted(space, &next, n, s)));
            } else {
                with_scratch(|s| ins.insert_counted(space, &next, n, s));
            }
            if let Ok(e) = ins.entry.into_inner() {
                entry = e;
            }
        }
        index.entry = entry;
        Ok(index)
    }

    /// An index with no vectors yet, to be filled by [`HnswIndex::insert`].
    pub fn new(dim: usize, config: &HnswConfig) -> Result<Self, AnnError> {
        config.validate()?;
        if dim == 0 {
            return Err(AnnError::ZeroDimension);
        }
        Ok(Self::empty(dim, config.clone()))
    }

    fn empty(dim: usize, config: HnswConfig) -> Self {
        Self {
            config,
            dim,
            vectors: Vec::new(),
            levels: Vec::new(),
            links0: Vec::new(),
            upper_start: Vec::new(),
            upper: Vec::new(),
            entry: None,
        }
    }

    /// Validates `v` (as row `row` of the input) and appends it, normalised for cosine.
    fn push_vector(&mut self, v: &[f32], row: usize) -> Result<(), AnnError> {
        let v = prepare(v, self.dim, self.config.metric, row)?;
        self.vectors.extend_from_slice(&v);
        Ok(())
    }

    /// Draws the node's layer and reserves its (empty) link blocks.
    fn push_node(&mut self, id: usize) {
        let m = self.config.m;
        let level = level_for(self.config.seed, id as u64, m);
        self.levels.push(level);
        self.links0.resize(self.links0.len() + 1 + 2 * m, 0);
        self.upper_start.push(self.upper.len());
        self.upper
            .resize(self.upper.len() + level as usize * (1 + m), 0);
    }

    /// Adds one vector and links it into the graph; returns its id (the previous `len()`).
    pub fn insert(&mut self, vector: &[f32]) -> Result<u32, AnnError> {
        let id = self.len();
        if id >= MAX_NODES {
            return Err(AnnError::TooMany { max: MAX_NODES });
        }
        self.push_vector(vector, 0)?;
        self.push_node(id);
        let space = self.space();
        let ins = Inserter {
            g: GraphView {
                vectors: &self.vectors,
                dim: self.dim,
                m: self.config.m,
                levels: &self.levels,
                links0: as_atomic(&mut self.links0),
                upper_start: &self.upper_start,
                upper: as_atomic(&mut self.upper),
            },
            ef_construction: self.config.ef_construction,
            locks: NodeLocks::none(),
            entry: Mutex::new(self.entry),
        };
        with_scratch(|s| ins.insert_counted(space, &AtomicUsize::new(id), id + 1, s));
        let entry = ins.entry.into_inner().unwrap_or_else(|p| p.into_inner());
        self.entry = entry;
        Ok(id as u32)
    }

    /// The `k` best ids for `query`, best first, as `(id, score)` with higher scores better.
    /// `ef` (raised to at least `k`) trades speed for recall. A query of the wrong dimension or
    /// with non-finite values finds nothing; use [`HnswIndex::try_search`] to get the reason.
    pub fn search(&self, query: &[f32], k: usize, ef: usize) -> Vec<(u32, f32)> {
        self.try_search(query, k, ef).unwrap_or_default()
    }

    /// [`HnswIndex::search`] with `ef = config.ef_search`.
    pub fn search_default(&self, query: &[f32], k: usize) -> Vec<(u32, f32)> {
        self.search(query, k, self.config.ef_search)
    }

    /// Like [`HnswIndex::search`], but reports a malformed query as an error.
    pub fn try_search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
    ) -> Result<Vec<(u32, f32)>, AnnError> {
        self.try_search_filtered(query, k, ef, |_| true)
    }

    /// Only ids for which `allow` is true are returned. Disallowed nodes are still walked
    /// through, so a filter that rejects most nodes costs time, not reachability; when fewer
    /// than `k` allowed ids are reachable, fewer are returned.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        allow: impl Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        self.try_search_filtered(query, k, ef, allow)
            .unwrap_or_default()
    }

    pub fn try_search_filtered(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        allow: impl Fn(u32) -> bool,
    ) -> Result<Vec<(u32, f32)>, AnnError> {
        let q = prepare(query, self.dim, self.config.metric, 0)?;
        let Some((ep, top_level)) = self.entry else {
            return Ok(Vec::new());
        };
        if k == 0 {
            return Ok(Vec::new());
        }
        let ef = ef.max(k);
        let g = self.view();
        let space = self.space();
        Ok(with_scratch(|s| {
            dispatch!(space, D => {
                let mut cur = ep;
                let mut cur_d = D::dist(&q, g.vector(ep as usize));
                for l in (1..=top_level as usize).rev() {
                    (cur, cur_d) = g.greedy::<D>(&q, cur, cur_d, l);
                }
                g.search_layer::<D, _>(&q, (cur, cur_d), ef, 0, s, &allow);
                s.drain_top_sorted();
                s.sorted.iter().take(k).map(|&(d, id)| (id, -d)).collect()
            })
        }))
    }

    pub fn len(&self) -> usize {
        self.levels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn config(&self) -> &HnswConfig {
        &self.config
    }

    /// The stored vector of `id` (normalised for cosine), if it exists.
    pub fn vector(&self, id: u32) -> Option<&[f32]> {
        let i = id as usize;
        (i < self.len()).then(|| &self.vectors[i * self.dim..(i + 1) * self.dim])
    }

    fn space(&self) -> Space {
        match self.config.metric {
            Metric::L2 => Space::L2,
            Metric::InnerProduct | Metric::Cosine => Space::Dot,
        }
    }

    fn view(&self) -> GraphView<'_, [u32]> {
        GraphView {
            vectors: &self.vectors,
            dim: self.dim,
            m: self.config.m,
            levels: &self.levels,
            links0: &self.links0,
            upper_start: &self.upper_start,
            upper: &self.upper,
        }
    }
}

/// Checks one vector and returns it as stored/searched: normalised for cosine.
fn prepare(v: &[f32], dim: usize, metric: Metric, row: usize) -> Result<Vec<f32>, AnnError> {
    if v.len() != dim {
        return Err(AnnError::DimensionMismatch {
            expected: dim,
            got: v.len(),
        });
    }
    if let Some(index) = v.iter().position(|x| !x.is_finite()) {
        return Err(AnnError::NonFinite { row, index });
    }
    if metric != Metric::Cosine {
        return Ok(v.to_vec());
    }
    let norm = dot_portable(v, v).sqrt();
    if !(norm > 0.0 && norm.is_finite()) {
        return Err(AnnError::ZeroVector { row });
    }
    Ok(v.iter().map(|x| x / norm).collect())
}

/// The HNSW layer of node `id`: `floor(-ln(u) / ln(m))` with `u` uniform in (0, 1], drawn from a
/// hash of (seed, id) so that it does not depend on insertion order or thread timing.
fn level_for(seed: u64, id: u64, m: usize) -> u8 {
    let mut z = seed.wrapping_add(id.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let u = ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let level = -u.ln() / (m as f64).ln();
    level.floor().min(32.0) as u8
}

/// The serialised form, checked before it becomes an index so a damaged file cannot cause an
/// out-of-bounds panic during search.
#[derive(Deserialize)]
struct IndexParts {
    config: HnswConfig,
    dim: usize,
    vectors: Vec<f32>,
    levels: Vec<u8>,
    links0: Vec<u32>,
    upper_start: Vec<usize>,
    upper: Vec<u32>,
    entry: Entry,
}

impl TryFrom<IndexParts> for HnswIndex {
    type Error = AnnError;

    fn try_from(p: IndexParts) -> Result<Self, AnnError> {
        let bad = |what: &str| Err(AnnError::Corrupt(what.to_string()));
        p.config.validate()?;
        let (n, m, dim) = (p.levels.len(), p.config.m, p.dim);
        if dim == 0 || n > MAX_NODES || n.checked_mul(dim) != Some(p.vectors.len()) {
            return bad("vector data does not match the node count");
        }
        if p.links0.len() != n * (1 + 2 * m) || p.upper_start.len() != n {
            return bad("link arrays do not match the node count");
        }
        let valid_list = |links: &[u32], max: usize| {
            links.first().is_some_and(|&c| {
                c as usize <= max && links[1..=c as usize].iter().all(|&id| (id as usize) < n)
            })
        };
        if !p
            .links0
            .chunks_exact(1 + 2 * m)
            .all(|b| valid_list(b, 2 * m))
        {
            return bad("layer-0 links out of range");
        }
        for (node, (&level, &start)) in p.levels.iter().zip(&p.upper_start).enumerate() {
            let end = start.checked_add(level as usize * (1 + m));
            let Some(blocks) = end.and_then(|end| p.upper.get(start..end)) else {
                return bad(&format!("upper links of node {node} out of range"));
            };
            if !blocks.chunks_exact(1 + m).all(|b| valid_list(b, m)) {
                return bad(&format!("upper links of node {node} out of range"));
            }
        }
        match p.entry {
            None if n > 0 => return bad("missing entry point"),
            Some((ep, top)) if (ep as usize) >= n || p.levels[ep as usize] != top => {
                return bad("bad entry point")
            }
            _ => {}
        }
        if p.levels.iter().any(|&l| Some(l) > p.entry.map(|(_, t)| t)) {
            return bad("a node lies above the entry point's layer");
        }
        if p.vectors.iter().any(|x| !x.is_finite()) {
            return bad("non-finite vector value");
        }
        Ok(Self {
            config: p.config,
            dim,
            vectors: p.vectors,
            levels: p.levels,
            links0: p.links0,
            upper_start: p.upper_start,
            upper: p.upper,
            entry: p.entry,
        })
    }
}
