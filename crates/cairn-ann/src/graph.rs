//! The HNSW graph walk and insertion (Malkov & Yashunin, algorithms 1, 2 and 4), generic over the
//! distance kernel and over how link lists are read: plain `u32` for a finished index, `AtomicU32`
//! while several threads build it.
//!
//! Layout: layer 0 keeps `1 + 2m` u32 per node (a count, then ids) in one flat array. Upper layers
//! are rare (a fraction `1/m` of nodes reach layer 1), so only those nodes own blocks of `1 + m`
//! u32 in a second flat array, one block per layer above 0, starting at `upper_start[node]`.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use crate::kernels::{prefetch, prefetch_at, Distance, L2Sq, NegDot, Portable, Space};
use crate::scratch::{Far, Near, Scratch};

/// Read access to a flat link array.
pub(crate) trait Links: Sync {
    fn load(&self, i: usize) -> u32;
}

impl Links for [u32] {
    #[inline(always)]
    fn load(&self, i: usize) -> u32 {
        self[i]
    }
}

impl Links for [AtomicU32] {
    #[inline(always)]
    fn load(&self, i: usize) -> u32 {
        self[i].load(Relaxed)
    }
}

/// Reinterprets an exclusively borrowed `u32` slice as atomics for a parallel build.
pub(crate) fn as_atomic(v: &mut [u32]) -> &[AtomicU32] {
    const _: () = assert!(std::mem::align_of::<AtomicU32>() == std::mem::align_of::<u32>());
    // SAFETY: AtomicU32 has the size and (checked above) alignment of u32, and the `&mut` borrow
    // guarantees no other access to the memory while the returned shared borrow lives.
    unsafe { &*(v as *mut [u32] as *const [AtomicU32]) }
}

/// One borrowed view of a graph.
pub(crate) struct GraphView<'a, L: Links + ?Sized> {
    pub vectors: &'a [f32],
    pub dim: usize,
    pub m: usize,
    pub levels: &'a [u8],
    pub links0: &'a L,
    pub upper_start: &'a [usize],
    pub upper: &'a L,
}

impl<L: Links + ?Sized> GraphView<'_, L> {
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    #[inline(always)]
    pub fn vector(&self, node: usize) -> &[f32] {
        &self.vectors[node * self.dim..(node + 1) * self.dim]
    }

    #[inline(always)]
    pub fn max_links(&self, level: usize) -> usize {
        if level == 0 {
            2 * self.m
        } else {
            self.m
        }
    }

    /// The link array of `level` and the offset of `node`'s block in it (count first).
    #[inline(always)]
    pub fn block(&self, node: usize, level: usize) -> (&L, usize) {
        if level == 0 {
            (self.links0, node * (1 + 2 * self.m))
        } else {
            (
                self.upper,
                self.upper_start[node] + (level - 1) * (1 + self.m),
            )
        }
    }

    /// Greedy descent on one upper layer (algorithm 2 with ef = 1).
    #[inline(always)]
    pub fn greedy<D: Distance>(
        &self,
        q: &[f32],
        mut cur: u32,
        mut cur_d: f32,
        level: usize,
    ) -> (u32, f32) {
        loop {
            let mut changed = false;
            let (links, base) = self.block(cur as usize, level);
            let count = (links.load(base) as usize).min(self.max_links(level));
            for j in 1..=count {
                let nb = links.load(base + j);
                let d = D::dist(q, self.vector(nb as usize));
                if d < cur_d {
                    cur_d = d;
                    cur = nb;
                    changed = true;
                }
            }
            if !changed {
                return (cur, cur_d);
            }
        }
    }

    /// Best-first search of one layer from the entry `(ep, its distance)` (algorithm 2). Leaves up to `ef` nearest allowed
    /// nodes in `s.top`. Disallowed nodes are still expanded, so filtering does not cut the graph.
    #[inline(always)]
    pub fn search_layer<D: Distance, F: Fn(u32) -> bool>(
        &self,
        q: &[f32],
        (ep, ep_d): (u32, f32),
        ef: usize,
        level: usize,
        s: &mut Scratch,
        allow: &F,
    ) {
        s.begin(self.len());
        let Scratch {
            visited,
            stamp,
            cand,
            top,
            pending,
            ..
        } = s;
        let stamp = *stamp;
        visited[ep as usize] = stamp;
        cand.push(Near(ep_d, ep));
        if allow(ep) {
            top.push(Far(ep_d, ep));
        }
        // Until `ef` results are held, every candidate is worth expanding.
        let mut bound = if top.len() >= ef {
            top.peek().map_or(f32::INFINITY, |f| f.0)
        } else {
            f32::INFINITY
        };
        while let Some(Near(d, c)) = cand.pop() {
            if d > bound {
                break;
            }
            let (links, base) = self.block(c as usize, level);
            let count = (links.load(base) as usize).min(self.max_links(level));
            for j in 1..=count {
                prefetch_at(visited, links.load(base + j) as usize);
            }
            pending.clear();
            for j in 1..=count {
                let nb = links.load(base + j);
                let seen = &mut visited[nb as usize];
                if *seen != stamp {
                    *seen = stamp;
                    pending.push(nb);
                    prefetch(self.vector(nb as usize));
                }
            }
            for &nb in pending.iter() {
                let dn = D::dist(q, self.vector(nb as usize));
                if dn < bound {
                    cand.push(Near(dn, nb));
                    if allow(nb) {
                        top.push(Far(dn, nb));
                        if top.len() > ef {
                            top.pop();
                        }
                        if top.len() >= ef {
                            bound = top.peek().map_or(f32::INFINITY, |f| f.0);
                        }
                    }
                }
            }
        }
    }

    /// The neighbour-selection heuristic (algorithm 4, as hnswlib implements it): walk the
    /// candidates nearest first and keep one only if it is nearer to the base than to every kept
    /// one. This spreads links across directions, which keeps clustered data navigable.
    #[inline(always)]
    pub fn select_heuristic<D: Distance>(
        &self,
        sorted: &[(f32, u32)],
        m: usize,
        out: &mut Vec<(f32, u32)>,
    ) {
        out.clear();
        if sorted.len() <= m {
            out.extend_from_slice(sorted);
            return;
        }
        for &(d, e) in sorted {
            if out.len() >= m {
                break;
            }
            let ve = self.vector(e as usize);
            if out
                .iter()
                .all(|&(_, r)| D::dist(ve, self.vector(r as usize)) >= d)
            {
                out.push((d, e));
            }
        }
    }
}

/// Locks that serialise writers of one node's link lists during a parallel build. Striped: a
/// writer only ever holds one at a time, so sharing stripes cannot deadlock.
pub(crate) struct NodeLocks(Option<Vec<Mutex<()>>>);

const LOCK_STRIPES: usize = 1 << 14;

impl NodeLocks {
    pub fn none() -> Self {
        Self(None)
    }

    pub fn striped() -> Self {
        Self(Some((0..LOCK_STRIPES).map(|_| Mutex::new(())).collect()))
    }

    #[inline]
    pub fn lock(&self, node: u32) -> Option<MutexGuard<'_, ()>> {
        self.0
            .as_ref()
            .map(|v| lock_ignoring_poison(&v[node as usize % LOCK_STRIPES]))
    }
}

pub(crate) fn lock_ignoring_poison<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The entry point and top layer; `None` until the first node is inserted.
pub(crate) type Entry = Option<(u32, u8)>;

/// Everything an insertion needs: the graph (writable through atomics), locks and the entry.
pub(crate) struct Inserter<'a> {
    pub g: GraphView<'a, [AtomicU32]>,
    pub ef_construction: usize,
    pub locks: NodeLocks,
    pub entry: Mutex<Entry>,
}

impl Inserter<'_> {
    /// Inserts the ids handed out by `next` until they reach `end`, with the distance kernel for
    /// `space` on this CPU. Several threads may share `next`.
    ///
    /// The build loop gets its own `#[target_feature]` functions rather than `dispatch!`: its
    /// closure is large enough that LLVM kept it out of line, so the kernels were called, not
    /// inlined.
    pub fn insert_counted(&self, space: Space, next: &AtomicUsize, end: usize, s: &mut Scratch) {
        macro_rules! with_features {
            ($features:literal, $d:ty) => {{
                #[target_feature(enable = $features)]
                unsafe fn run(ins: &Inserter<'_>, next: &AtomicUsize, end: usize, s: &mut Scratch) {
                    ins.insert_loop::<$d>(next, end, s)
                }
                // SAFETY: only reached after cairn_simd::level() confirmed these CPU features.
                unsafe { run(self, next, end, s) }
            }};
        }
        #[cfg(target_arch = "x86_64")]
        {
            use crate::kernels::{Avx2Fma, Avx512};
            use cairn_simd::SimdLevel;
            match (space, cairn_simd::level()) {
                (Space::Dot, SimdLevel::Avx512) => {
                    with_features!("avx512f,avx2,fma", NegDot<Avx512>)
                }
                (Space::L2, SimdLevel::Avx512) => with_features!("avx512f,avx2,fma", L2Sq<Avx512>),
                (Space::Dot, SimdLevel::Avx2Fma) => with_features!("avx2,fma", NegDot<Avx2Fma>),
                (Space::L2, SimdLevel::Avx2Fma) => with_features!("avx2,fma", L2Sq<Avx2Fma>),
                (Space::Dot, SimdLevel::Portable) => {
                    self.insert_loop::<NegDot<Portable>>(next, end, s)
                }
                (Space::L2, SimdLevel::Portable) => {
                    self.insert_loop::<L2Sq<Portable>>(next, end, s)
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        match space {
            Space::Dot => self.insert_loop::<NegDot<Portable>>(next, end, s),
            Space::L2 => self.insert_loop::<L2Sq<Portable>>(next, end, s),
        }
    }

    #[inline(always)]
    fn insert_loop<D: Distance>(&self, next: &AtomicUsize, end: usize, s: &mut Scratch) {
        loop {
            let id = next.fetch_add(1, Relaxed);
            if id >= end {
                return;
            }
            self.insert::<D>(id as u32, s);
        }
    }

    /// Links `node` (whose vector and level are already stored) into the graph (algorithm 1).
    #[inline(always)]
    pub fn insert<D: Distance>(&self, node: u32, s: &mut Scratch) {
        let level = self.g.levels[node as usize] as usize;
        let guard = lock_ignoring_poison(&self.entry);
        let Some((ep, top_level)) = *guard else {
            let mut guard = guard;
            *guard = Some((node, level as u8));
            return;
        };
        let top_level = top_level as usize;
        // A node that raises the top layer holds the entry lock for its whole insertion, so
        // nobody starts from an entry point whose upper layers are still empty (as hnswlib does).
        let hold = if level > top_level {
            Some(guard)
        } else {
            drop(guard);
            None
        };
        let q = self.g.vector(node as usize);
        let mut cur = ep;
        let mut cur_d = D::dist(q, self.g.vector(ep as usize));
        for l in (level + 1..=top_level).rev() {
            (cur, cur_d) = self.g.greedy::<D>(q, cur, cur_d, l);
        }
        let allow_all = |_: u32| true;
        for l in (0..=level.min(top_level)).rev() {
            self.g
                .search_layer::<D, _>(q, (cur, cur_d), self.ef_construction, l, s, &allow_all);
            s.drain_top_sorted();
            s.sorted.retain(|&(_, id)| id != node);
            if let Some(&(d, id)) = s.sorted.first() {
                (cur, cur_d) = (id, d);
            }
            let sorted = std::mem::take(&mut s.sorted);
            self.g
                .select_heuristic::<D>(&sorted, self.g.m, &mut s.selected);
            s.sorted = sorted;
            self.write_links(node, l, &s.selected);
            let selected = std::mem::take(&mut s.selected);
            for &(d, nb) in &selected {
                self.link_back::<D>(nb, node, d, l, s);
            }
            s.selected = selected;
        }
        if let Some(mut guard) = hold {
            *guard = Some((node, level as u8));
        }
    }

    #[inline(always)]
    fn write_links(&self, node: u32, level: usize, list: &[(f32, u32)]) {
        let _lock = self.locks.lock(node);
        let (links, base) = self.g.block(node as usize, level);
        for (j, &(_, id)) in list.iter().enumerate() {
            links[base + 1 + j].store(id, Relaxed);
        }
        links[base].store(list.len() as u32, Relaxed);
    }

    /// Adds `node` to `nb`'s list on `level`, re-running the heuristic when the list is full.
    #[inline(always)]
    fn link_back<D: Distance>(&self, nb: u32, node: u32, d: f32, level: usize, s: &mut Scratch) {
        let _lock = self.locks.lock(nb);
        let (links, base) = self.g.block(nb as usize, level);
        let max = self.g.max_links(level);
        let count = (links[base].load(Relaxed) as usize).min(max);
        if (1..=count).any(|j| links[base + j].load(Relaxed) == node) {
            return;
        }
        if count < max {
            links[base + 1 + count].store(node, Relaxed);
            links[base].store(count as u32 + 1, Relaxed);
            return;
        }
        let vb = self.g.vector(nb as usize);
        s.sorted.clear();
        s.sorted.push((d, node));
        for j in 1..=count {
            let id = links[base + j].load(Relaxed);
            s.sorted.push((D::dist(vb, self.g.vector(id as usize)), id));
        }
        s.sorted
            .sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        self.g.select_heuristic::<D>(&s.sorted, max, &mut s.pruned);
        for (j, &(_, id)) in s.pruned.iter().enumerate() {
            links[base + 1 + j].store(id, Relaxed);
        }
        links[base].store(s.pruned.len() as u32, Relaxed);
    }
}
