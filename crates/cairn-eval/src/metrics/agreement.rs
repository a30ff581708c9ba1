//! How much two ranked lists agree: overlap@k, rank-biased overlap (RBO) and Kendall's τ on the
//! items both lists hold. The shadow tests (`cairn-engine`'s `shadow` module) compare a challenger's
//! list with the served one through these; offline, they compare any two rankings.
//!
//! The lists are item ids, best first, each item at most once (a repeated item counts at its first
//! position only). Every function is symmetric in its two lists and returns `None` where the measure
//! is undefined, so averages can skip it (as the other metrics of this module do).

use std::collections::HashMap;
use std::collections::HashSet;
use std::hash::Hash;

/// The items of `list` from the first occurrence of each, at most `k` of them.
fn head<T: Eq + Hash>(list: &[T], k: usize) -> Vec<&T> {
    let mut seen = HashSet::new();
    list.iter().filter(|x| seen.insert(*x)).take(k).collect()
}

/// Share of the top `k` that two lists have in common: `|A_k ∩ B_k| / min(k, max(|A|, |B|))`,
/// where `A_k` is the first `k` items of `a`. Dividing by the longer list's length (when both are
/// shorter than `k`) makes a list's overlap with itself 1 at any length. `None` when `k` is 0 or
/// both lists are empty; in `[0, 1]` otherwise.
pub fn overlap_at_k<T: Eq + Hash>(a: &[T], b: &[T], k: usize) -> Option<f64> {
    let (a, b) = (head(a, k), head(b, k));
    let depth = k.min(a.len().max(b.len()));
    if depth == 0 {
        return None;
    }
    let a: HashSet<&T> = a.into_iter().collect();
    let common = b.iter().filter(|x| a.contains(*x)).count();
    Some(common as f64 / depth as f64)
}

/// Rank-biased overlap with persistence `p` in (0, 1), in its extrapolated form for finite lists
/// (Webber, Moffat and Zobel 2010, "A similarity measure for indefinite rankings", eq. 32), which
/// allows lists of different lengths. With `S` the shorter list of length `s`, `L` the longer of
/// length `l`, and `X_d` the number of items the first `d` of each hold in common (for `d > s`, all
/// of `S` against the first `d` of `L`):
///
/// `RBO_ext = (1-p)/p · (Σ_{d=1..l} X_d/d · p^d + Σ_{d=s+1..l} X_s (d-s)/(s d) · p^d)
///            + ((X_l - X_s)/l + X_s/s) · p^l`
///
/// It is 1 for two identical lists, 0 for two lists with no item in common, and weighs agreement
/// at the top more (with `p = 0.9`, the first 10 ranks carry 86% of the weight). `None` when both
/// lists are empty or `p` is outside (0, 1); 0 when only one is empty.
pub fn rbo_ext<T: Eq + Hash>(a: &[T], b: &[T], p: f64) -> Option<f64> {
    if !(p > 0.0 && p < 1.0) {
        return None;
    }
    let (a, b) = (head(a, usize::MAX), head(b, usize::MAX));
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let (s, l) = (short.len(), long.len());
    if l == 0 {
        return None;
    }
    if s == 0 {
        return Some(0.0);
    }
    let mut in_short: HashSet<&T> = HashSet::with_capacity(s);
    let mut in_long: HashSet<&T> = HashSet::with_capacity(l);
    let mut x = 0usize; // X_d
    let mut x_s = 0usize;
    let mut sum = 0.0;
    let mut weight = 1.0; // p^d
    for d in 1..=l {
        weight *= p;
        if d <= s {
            let item = short[d - 1];
            if in_long.contains(item) {
                x += 1;
            }
            in_short.insert(item);
        }
        let item = long[d - 1];
        if in_short.contains(item) {
            x += 1;
        }
        in_long.insert(item);
        if d == s {
            x_s = x;
        }
        sum += x as f64 / d as f64 * weight;
        if d > s {
            sum += x_s as f64 * (d - s) as f64 / (s * d) as f64 * weight;
        }
    }
    let x_l = x;
    let tail = ((x_l - x_s) as f64 / l as f64 + x_s as f64 / s as f64) * weight;
    Some(((1.0 - p) / p * sum + tail).clamp(0.0, 1.0))
}

/// Kendall's τ between the orders two lists give the items they both hold:
/// `(concordant − discordant) / (n (n − 1) / 2)` over the `n` shared items (no ties: every item
/// has one rank in each list). 1 when both put the shared items in the same order, −1 when in
/// reverse order. `None` when fewer than two items are shared. It says nothing of the items only
/// one list holds; read it beside [`overlap_at_k`].
pub fn kendall_tau_shared<T: Eq + Hash>(a: &[T], b: &[T]) -> Option<f64> {
    let a = head(a, usize::MAX);
    let rank_b: HashMap<&T, usize> = head(b, usize::MAX)
        .into_iter()
        .enumerate()
        .map(|(r, x)| (x, r))
        .collect();
    // The shared items in `a`'s order, as their ranks in `b`.
    let ranks: Vec<usize> = a.iter().filter_map(|x| rank_b.get(x).copied()).collect();
    let n = ranks.len();
    if n < 2 {
        return None;
    }
    let mut score = 0i64;
    for i in 0..n {
        for j in i + 1..n {
            score += if ranks[i] < ranks[j] { 1 } else { -1 };
        }
    }
    Some(score as f64 / (n * (n - 1) / 2) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn overlap_counts_the_common_head() {
        assert_eq!(overlap_at_k(&[1, 2, 3, 4], &[4, 3, 9, 8], 4), Some(0.5));
        assert_eq!(overlap_at_k(&[1, 2, 3, 4], &[4, 3, 9, 8], 2), Some(0.0));
        // Shorter lists than k: divided by the longer list's length.
        assert_eq!(overlap_at_k(&[1, 2], &[2, 1], 10), Some(1.0));
        assert_eq!(overlap_at_k(&[1, 2], &[2, 5, 6, 7], 10), Some(0.25));
        assert_eq!(overlap_at_k::<u32>(&[], &[], 10), None);
        assert_eq!(overlap_at_k(&[1], &[1], 0), None);
        assert_eq!(overlap_at_k(&[1, 2], &[], 5), Some(0.0));
    }

    #[test]
    fn rbo_of_known_cases() {
        let p = 0.9;
        assert!(close(rbo_ext(&[1, 2, 3], &[1, 2, 3], p).unwrap(), 1.0));
        assert!(close(rbo_ext(&[1, 2, 3], &[4, 5, 6], p).unwrap(), 0.0));
        assert_eq!(rbo_ext::<u32>(&[], &[], p), None);
        assert_eq!(rbo_ext(&[1], &[], p), Some(0.0));
        assert_eq!(rbo_ext(&[1], &[1], 1.0), None);
        // Two lists of depth 2 that swap their items: X_1 = 0, X_2 = 2;
        // (1-p)/p (0 + 2/2 p²) + 2/2 p² = (1-p) p + p² = p.
        assert!(close(rbo_ext(&[1, 2], &[2, 1], p).unwrap(), p));
        // Agreement at the top weighs more than at the bottom.
        let top = rbo_ext(&[1, 2, 3, 4], &[1, 2, 8, 9], p).unwrap();
        let bottom = rbo_ext(&[1, 2, 3, 4], &[8, 9, 3, 4], p).unwrap();
        assert!(top > bottom, "{top} {bottom}");
        // A prefix of a list, extrapolated, agrees fully with it.
        assert!(close(rbo_ext(&[1, 2], &[1, 2, 3, 4], p).unwrap(), 1.0));
    }

    #[test]
    fn tau_of_known_cases() {
        assert_eq!(kendall_tau_shared(&[1, 2, 3], &[1, 2, 3]), Some(1.0));
        assert_eq!(kendall_tau_shared(&[1, 2, 3], &[3, 2, 1]), Some(-1.0));
        // Shared: 1, 2, 3 in a; b orders them 2, 1, 3: pairs (1,2) discordant, (1,3) and (2,3)
        // concordant: (2 - 1) / 3.
        assert!(close(
            kendall_tau_shared(&[1, 9, 2, 3], &[2, 1, 8, 3]).unwrap(),
            1.0 / 3.0
        ));
        assert_eq!(kendall_tau_shared(&[1, 2], &[2, 3]), None);
    }

    fn list() -> impl Strategy<Value = Vec<u8>> {
        // Distinct items from a small alphabet, so lists share some.
        proptest::sample::subsequence((0u8..30).collect::<Vec<_>>(), 0..20).prop_shuffle()
    }

    proptest! {
        #[test]
        fn a_list_agrees_fully_with_itself(a in list(), p in 0.05f64..0.99) {
            prop_assume!(!a.is_empty());
            prop_assert!(close(rbo_ext(&a, &a, p).unwrap(), 1.0));
            prop_assert_eq!(overlap_at_k(&a, &a, a.len()), Some(1.0));
            if a.len() >= 2 {
                prop_assert_eq!(kendall_tau_shared(&a, &a), Some(1.0));
            }
        }

        #[test]
        fn measures_are_symmetric_and_bounded(a in list(), b in list(), k in 1usize..25, p in 0.05f64..0.99) {
            let o = overlap_at_k(&a, &b, k);
            prop_assert_eq!(o, overlap_at_k(&b, &a, k));
            if let Some(o) = o {
                prop_assert!((0.0..=1.0).contains(&o));
            }
            let r = rbo_ext(&a, &b, p);
            let r2 = rbo_ext(&b, &a, p);
            prop_assert_eq!(r.is_some(), r2.is_some());
            if let (Some(r), Some(r2)) = (r, r2) {
                prop_assert!(close(r, r2), "{r} {r2}");
                prop_assert!((0.0..=1.0).contains(&r));
            }
            let t = kendall_tau_shared(&a, &b);
            prop_assert_eq!(t, kendall_tau_shared(&b, &a));
            if let Some(t) = t {
                prop_assert!((-1.0..=1.0).contains(&t));
            }
        }

        #[test]
        fn reversing_one_list_negates_tau(a in list(), b in list()) {
            let mut r = b.clone();
            r.reverse();
            if let (Some(t), Some(u)) = (kendall_tau_shared(&a, &b), kendall_tau_shared(&a, &r)) {
                prop_assert!(close(t, -u));
            }
        }

        #[test]
        fn disjoint_lists_have_no_agreement(a in list(), p in 0.05f64..0.99) {
            prop_assume!(!a.is_empty());
            let b: Vec<u8> = a.iter().map(|x| x + 100).collect();
            prop_assert_eq!(rbo_ext(&a, &b, p), Some(0.0));
            prop_assert_eq!(overlap_at_k(&a, &b, a.len()), Some(0.0));
            prop_assert_eq!(kendall_tau_shared(&a, &b), None);
        }
    }
}
