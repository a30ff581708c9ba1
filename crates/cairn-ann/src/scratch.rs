//! Per-thread working memory for graph walks: a generation-stamped visited set and the two heaps,
//! reused across queries so a search allocates only its result.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A candidate ordered so that the NEAREST is at the top of a `BinaryHeap`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Near(pub f32, pub u32);

/// A result ordered so that the FARTHEST is at the top of a `BinaryHeap` (the one to evict).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Far(pub f32, pub u32);

impl PartialEq for Near {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Near {}
impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Near {
    #[inline(always)]
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .0
            .total_cmp(&self.0)
            .then_with(|| other.1.cmp(&self.1))
    }
}

impl PartialEq for Far {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Far {}
impl PartialOrd for Far {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Far {
    #[inline(always)]
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .total_cmp(&other.0)
            .then_with(|| self.1.cmp(&other.1))
    }
}

#[derive(Default)]
pub(crate) struct Scratch {
    /// `visited[i] == stamp` means node `i` was seen in the current walk.
    pub visited: Vec<u32>,
    pub stamp: u32,
    pub cand: BinaryHeap<Near>,
    pub top: BinaryHeap<Far>,
    /// Unvisited neighbours of the node being expanded, gathered first so their vectors can be
    /// prefetched before any distance is computed.
    pub pending: Vec<u32>,
    /// Candidates sorted nearest first (walk results, pruning input).
    pub sorted: Vec<(f32, u32)>,
    pub selected: Vec<(f32, u32)>,
    /// The re-pruned list of an existing node that gained a link.
    pub pruned: Vec<(f32, u32)>,
}

impl Scratch {
    /// Starts a new walk over an index of `n` nodes: O(1) except when the stamp wraps.
    #[inline]
    pub fn begin(&mut self, n: usize) {
        if self.visited.len() < n {
            self.visited.resize(n, 0);
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.visited.fill(0);
            self.stamp = 1;
        }
        self.cand.clear();
        self.top.clear();
    }

    /// Moves the result heap into `sorted`, nearest first (ties by id).
    pub fn drain_top_sorted(&mut self) {
        self.sorted.clear();
        self.sorted
            .extend(self.top.drain().map(|Far(d, id)| (d, id)));
        self.sorted
            .sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch space. A re-entrant call (a search started from inside a
/// filter closure) gets a fresh one instead of panicking on the busy borrow.
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heaps_pop_nearest_candidate_and_farthest_result() {
        let mut cand = BinaryHeap::new();
        let mut top = BinaryHeap::new();
        for (d, id) in [(0.5, 1), (-2.0, 2), (3.0, 3)] {
            cand.push(Near(d, id));
            top.push(Far(d, id));
        }
        assert_eq!(cand.pop().map(|n| n.1), Some(2));
        assert_eq!(top.pop().map(|f| f.1), Some(3));
    }

    #[test]
    fn stamp_wrap_clears_the_visited_set() {
        let mut s = Scratch::default();
        s.begin(4);
        s.visited[2] = s.stamp;
        s.stamp = u32::MAX;
        s.visited[1] = u32::MAX;
        s.begin(4);
        assert_eq!(s.stamp, 1);
        assert!(s.visited.iter().all(|&v| v == 0));
    }
}
