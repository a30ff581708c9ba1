//! Top-k selection without sorting the whole score vector.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

#[derive(PartialEq)]
struct MinScored(f32, u32);

impl Eq for MinScored {}

impl PartialOrd for MinScored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MinScored {
    // Reversed so that the heap's top is the weakest kept candidate; ties keep the lower index.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .0
            .total_cmp(&self.0)
            .then_with(|| self.1.cmp(&other.1))
    }
}

/// The `k` strongest entries of row `item` of a neighbour table (item-kNN's neighbours, the
/// transition model's successors), best first; an item outside the table has none.
pub(crate) fn top_k_of_row(rows: &cairn_core::CsrMatrix, item: u32, k: usize) -> Vec<(u32, f32)> {
    if item as usize >= rows.n_rows {
        return Vec::new();
    }
    let (cols, values) = rows.row(item as usize);
    let mut scores = vec![f32::NEG_INFINITY; rows.n_rows];
    for (&j, &s) in cols.iter().zip(values) {
        scores[j as usize] = s;
    }
    top_k(&scores, k, |_| false)
}

/// The `k` best `(index, score)` pairs, best first, skipping indices for which `skip` is true and
/// scores that are not finite. Ties are broken by lower index, so results are deterministic.
pub fn top_k(scores: &[f32], k: usize, skip: impl Fn(u32) -> bool) -> Vec<(u32, f32)> {
    if k == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<MinScored> = BinaryHeap::with_capacity(k + 1);
    for (i, &s) in scores.iter().enumerate() {
        if !s.is_finite() {
            continue;
        }
        let i = i as u32;
        if heap.len() == k {
            let weakest = heap.peek().expect("heap is full");
            if s < weakest.0 || (s == weakest.0 && i > weakest.1) {
                continue;
            }
        }
        if skip(i) {
            continue;
        }
        heap.push(MinScored(s, i));
        if heap.len() > k {
            heap.pop();
        }
    }
    let mut out: Vec<(u32, f32)> = heap.into_iter().map(|m| (m.1, m.0)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn picks_the_best_and_skips() {
        let s = [0.1, 0.9, 0.5, 0.9, f32::NAN, 0.7];
        assert_eq!(top_k(&s, 3, |_| false), vec![(1, 0.9), (3, 0.9), (5, 0.7)]);
        assert_eq!(top_k(&s, 2, |i| i == 1), vec![(3, 0.9), (5, 0.7)]);
        assert!(top_k(&s, 0, |_| false).is_empty());
    }

    proptest! {
        #[test]
        fn agrees_with_a_full_sort(scores in prop::collection::vec(-10.0f32..10.0, 0..300), k in 0usize..50) {
            let mut all: Vec<(u32, f32)> = scores.iter().enumerate().map(|(i, &s)| (i as u32, s)).collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            all.truncate(k);
            prop_assert_eq!(top_k(&scores, k, |_| false), all);
        }
    }
}
