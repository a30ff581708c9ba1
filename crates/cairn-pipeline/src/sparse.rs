//! Retrieval over the items a source actually touched, instead of dense score arrays over the
//! whole catalog: item-kNN scores are accumulated from the seeds' neighbour rows only, and a
//! source's best allowed items are found without asking the (costly) allow check about items
//! that cannot make the list.
//!
//! Every function here returns exactly what the dense path returns (`ItemKnn::score` into a
//! zeroed array, then `top_k` with the allow check as its skip), bit for bit; the tests hold them
//! to it.

use cairn_core::CsrMatrix;

/// Scores of the items some seed touched, by item index; every other item scores 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseScores {
    /// (item, score), sorted by item.
    entries: Vec<(u32, f32)>,
}

impl SparseScores {
    /// Σ weight × similarity over the seeds' neighbour rows, as `ItemKnn::score` computes it:
    /// seeds outside the matrix or with a weight <= 0 count for nothing, and each item's terms
    /// are added in seed order starting from 0.0, so the sums equal the dense ones exactly.
    pub fn item_knn(neighbours: &CsrMatrix, seeds: &[(u32, f32)]) -> SparseScores {
        let mut terms: Vec<(u32, f32)> = Vec::new();
        for &(h, w) in seeds {
            if h as usize >= neighbours.n_rows || w <= 0.0 {
                continue;
            }
            let (items, sims) = neighbours.row(h as usize);
            terms.extend(items.iter().zip(sims).map(|(&j, &s)| (j, w * s)));
        }
        // Stable: an item's terms stay in seed order.
        terms.sort_by_key(|t| t.0);
        let mut entries: Vec<(u32, f32)> = Vec::with_capacity(terms.len());
        for (j, term) in terms {
            match entries.last_mut() {
                Some(last) if last.0 == j => last.1 += term,
                _ => entries.push((j, 0.0 + term)),
            }
        }
        SparseScores { entries }
    }

    /// The item's score; 0 for an item no seed touched.
    pub fn get(&self, item: u32) -> f32 {
        self.entries
            .binary_search_by_key(&item, |e| e.0)
            .map_or(0.0, |at| self.entries[at].1)
    }

    /// The `quota` best allowed items with a positive score, best first (ties: lower index).
    pub fn best_allowed(&self, quota: usize, allow: &dyn Fn(u32) -> bool) -> Vec<(u32, f32)> {
        let mut ranked: Vec<(u32, f32)> = self
            .entries
            .iter()
            .copied()
            .filter(|&(_, s)| s.is_finite() && s > 0.0)
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked
            .into_iter()
            .filter(|&(i, _)| allow(i))
            .take(quota)
            .collect()
    }
}

/// `top_k(scores, quota, |i| scores[i] <= 0.0 || !allow(i))`, asking `allow` only about the head
/// of the ranking: the best items regardless of `allow` come first, and only if too few of them
/// are allowed is a longer head ranked.
pub fn best_positive_allowed(
    scores: &[f32],
    quota: usize,
    allow: &dyn Fn(u32) -> bool,
) -> Vec<(u32, f32)> {
    if quota == 0 {
        return Vec::new();
    }
    // Room for the seen items and a few hidden ones, so that one pass is the rule.
    let mut head_len = quota + quota / 4 + 16;
    loop {
        let head = top_positive(scores, head_len);
        let whole = head.len() < head_len;
        let allowed: Vec<(u32, f32)> = head
            .into_iter()
            .filter(|&(i, _)| allow(i))
            .take(quota)
            .collect();
        // The head is a prefix of the whole ranking, so its first `quota` allowed items are the
        // answer; when the head is the whole ranking, so is whatever it holds.
        if allowed.len() == quota || whole {
            return allowed;
        }
        head_len = head_len.saturating_mul(4);
    }
}

/// Items scanned together: one vectorised maximum per block decides whether any of them can
/// enter the kept set, so most blocks are passed over without looking at their items.
const SCAN_BLOCK: usize = 32;

/// `top_k(scores, k, |i| scores[i] <= 0.0)`: the `k` best finite positive scores, best first,
/// ties to the lower index.
///
/// Items that beat the current floor go to an unsorted buffer; when it holds `2k`, the best `k`
/// are selected and the floor rises to the weakest of them. Insertion is a push, and the
/// selections cost O(k) per k insertions, where keeping the set sorted or in a heap costs a
/// search per insertion.
pub fn top_positive(scores: &[f32], k: usize) -> Vec<(u32, f32)> {
    if k == 0 {
        return Vec::new();
    }
    let better = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    let mut kept: Vec<(u32, f32)> = Vec::with_capacity(2 * k);
    // Scanning in index order, everything kept has a lower index than the item at hand, so an
    // item must beat the floor outright: on a tie the lower index stays.
    let mut floor = 0.0f32;
    for (b, block) in scores.chunks(SCAN_BLOCK).enumerate() {
        if block_max(block) <= floor {
            continue;
        }
        for (offset, &s) in block.iter().enumerate() {
            // Infinities pass the block maximum and are skipped here; NaN fails `s > floor`.
            if s > floor && s.is_finite() {
                kept.push(((b * SCAN_BLOCK + offset) as u32, s));
                if kept.len() == 2 * k {
                    kept.select_nth_unstable_by(k - 1, better);
                    kept.truncate(k);
                    floor = kept[k - 1].1;
                }
            }
        }
    }
    kept.sort_unstable_by(better);
    kept.truncate(k);
    kept
}

/// The largest value of a block, ignoring NaN. Eight independent lanes, so that the compiler
/// vectorises it instead of chaining one comparison after another.
#[inline]
fn block_max(block: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = block.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = if v > *lane { v } else { *lane };
        }
    }
    for &v in chunks.remainder() {
        lanes[0] = if v > lanes[0] { v } else { lanes[0] };
    }
    lanes
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, |m, v| if v > m { v } else { m })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_models::{top_k, ItemKnn, ItemKnnConfig, Recommender};
    use proptest::prelude::*;

    fn knn(n: usize, rows: &[Vec<(u32, f32)>]) -> ItemKnn {
        let mut triplets = Vec::new();
        for (r, row) in rows.iter().enumerate().take(n) {
            for &(c, v) in row {
                if (c as usize) < n && c as usize != r {
                    triplets.push((r as u32, c, v));
                }
            }
        }
        // Repeated (row, item) pairs are summed: a neighbour list holds each item once.
        ItemKnn {
            config: ItemKnnConfig::default(),
            neighbours: CsrMatrix::from_triplets(n, n, triplets),
        }
    }

    fn score() -> impl Strategy<Value = f32> {
        prop_oneof![
            6 => -0.5f32..2.0,
            1 => Just(0.0f32),
            1 => prop::sample::select(vec![0.25f32, 1.0, f32::NAN, f32::INFINITY]),
        ]
    }

    proptest! {
        #[test]
        fn sparse_knn_equals_the_dense_scores_and_top_k(
            n in 1usize..60,
            rows in prop::collection::vec(prop::collection::vec((0u32..60, -0.5f32..1.5), 0..12), 1..60),
            seeds in prop::collection::vec((0u32..70, -1.0f32..3.0), 0..10),
            quota in 0usize..30,
            banned in prop::collection::vec(0u32..60, 0..20),
        ) {
            let model = knn(n, &rows);
            let mut dense = vec![0f32; n];
            model.score(&seeds, &mut dense);
            let sparse = SparseScores::item_knn(&model.neighbours, &seeds);
            for (i, d) in dense.iter().enumerate() {
                prop_assert_eq!(d.to_bits(), sparse.get(i as u32).to_bits(), "item {}", i);
            }
            let allow = |i: u32| !banned.contains(&i);
            let expected = top_k(&dense, quota, |i| dense[i as usize] <= 0.0 || !allow(i));
            prop_assert_eq!(sparse.best_allowed(quota, &allow), expected);
        }

        #[test]
        fn head_first_top_k_equals_top_k_with_the_allow_check(
            scores in prop::collection::vec(score(), 0..400),
            quota in 0usize..60,
            banned_every in 1u32..8,
            ban_head in any::<bool>(),
        ) {
            // Either a regular share of items is banned, or the best ones are, which forces the
            // longer head.
            let mut best: Vec<u32> = (0..scores.len() as u32).collect();
            best.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
            let head: Vec<u32> = best.into_iter().take(quota * 2).collect();
            let allow = |i: u32| {
                if ban_head {
                    !head.contains(&i)
                } else {
                    banned_every == 1 || !i.is_multiple_of(banned_every)
                }
            };
            let expected = top_k(&scores, quota, |i| scores[i as usize] <= 0.0 || !allow(i));
            prop_assert_eq!(best_positive_allowed(&scores, quota, &allow), expected);
        }
    }

    proptest! {
        #[test]
        fn buffered_scan_equals_top_k(
            scores in prop::collection::vec(score(), 0..900),
            k in 0usize..80,
        ) {
            let expected = top_k(&scores, k, |i| scores[i as usize] <= 0.0);
            prop_assert_eq!(top_positive(&scores, k), expected);
        }
    }

    #[test]
    fn allow_is_asked_about_the_head_only() {
        let scores: Vec<f32> = (0..10_000).map(|i| (i % 997) as f32).collect();
        let asked = std::cell::Cell::new(0);
        let allow = |i: u32| {
            asked.set(asked.get() + 1);
            !i.is_multiple_of(10)
        };
        let got = best_positive_allowed(&scores, 20, &allow);
        assert_eq!(got.len(), 20);
        assert!(asked.get() < 30, "asked {} times", asked.get());
        let dense = top_k(&scores, 20, |i| scores[i as usize] <= 0.0 || !allow(i));
        assert_eq!(got, dense);
    }
}
