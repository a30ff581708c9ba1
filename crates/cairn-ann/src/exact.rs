use std::collections::BinaryHeap;

use crate::kernels::{dispatch, dot_portable, Space};
use crate::scratch::Far;
use crate::Metric;

/// Brute-force top `k` of `query` against every row of the row-major `vectors` (n × `dim`), best
/// first with the same scores as [`crate::HnswIndex::search`]; ties go to the lower id. The ground
/// truth for recall. Returns nothing when the shapes do not fit or `k` is 0; a cosine row or query
/// of zero length scores 0.
pub fn exact_search(
    vectors: &[f32],
    dim: usize,
    query: &[f32],
    k: usize,
    metric: Metric,
) -> Vec<(u32, f32)> {
    if dim == 0 || query.len() != dim || !vectors.len().is_multiple_of(dim) || k == 0 {
        return Vec::new();
    }
    let n = vectors.len() / dim;
    let space = match metric {
        Metric::L2 => Space::L2,
        Metric::InnerProduct | Metric::Cosine => Space::Dot,
    };
    let q_norm = dot_portable(query, query).sqrt();
    let mut heap: BinaryHeap<Far> = BinaryHeap::with_capacity(k + 1);
    dispatch!(space, D => {
        for (i, row) in vectors.chunks_exact(dim).enumerate() {
            let mut d = D::dist(query, row);
            if metric == Metric::Cosine {
                let norms = q_norm * dot_portable(row, row).sqrt();
                d = if norms > 0.0 { d / norms } else { 0.0 };
            }
            if heap.len() < k {
                heap.push(Far(d, i as u32));
            } else if heap.peek().is_some_and(|w| Far(d, i as u32) < *w) {
                heap.pop();
                heap.push(Far(d, i as u32));
            }
        }
    });
    let mut out: Vec<(u32, f32)> = heap.into_iter().map(|Far(d, id)| (id, -d)).collect();
    out.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out.truncate(k.min(n));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_follow_each_metric() {
        let v = [1.0, 0.0, 3.0, 0.0, 0.0, 2.0];
        let q = [1.0, 0.0];
        assert_eq!(
            exact_search(&v, 2, &q, 3, Metric::InnerProduct),
            vec![(1, 3.0), (0, 1.0), (2, 0.0)]
        );
        assert_eq!(
            exact_search(&v, 2, &q, 2, Metric::Cosine),
            vec![(0, 1.0), (1, 1.0)]
        );
        assert_eq!(
            exact_search(&v, 2, &q, 3, Metric::L2),
            vec![(0, -0.0), (1, -4.0), (2, -5.0)]
        );
    }

    #[test]
    fn bad_shapes_give_nothing() {
        assert!(exact_search(&[1.0, 2.0, 3.0], 2, &[1.0, 0.0], 1, Metric::L2).is_empty());
        assert!(exact_search(&[1.0, 2.0], 2, &[1.0], 1, Metric::L2).is_empty());
        assert!(exact_search(&[1.0, 2.0], 2, &[1.0, 0.0], 0, Metric::L2).is_empty());
    }
}
