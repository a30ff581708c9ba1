use std::cmp::Ordering;

use crate::data::RankingData;

/// Gain of a relevance grade in DCG: `2^label - 1`, so label 0 earns nothing.
pub(crate) fn gain(label: f32) -> f64 {
    (label as f64).exp2() - 1.0
}

/// Position discount in DCG for a 0-based rank.
pub(crate) fn discount(rank: usize) -> f64 {
    1.0 / ((rank + 2) as f64).log2()
}

/// Order of rows as a ranker would show them: score descending. Ties put the lower label first so
/// that tied scores earn the pessimistic NDCG (a constant scorer is not rewarded by row order), and
/// NaN scores rank last.
pub(crate) fn ranking_order(scores: &[f32], labels: &[f32], order: &mut Vec<u32>) {
    // Integer keys compare much faster than chained float comparisons; this sort runs for every
    // group in every boosting round.
    let mut keyed: Vec<(u32, u32, u32)> = scores
        .iter()
        .zip(labels)
        .enumerate()
        .map(|(i, (&s, &l))| {
            let s = if s.is_nan() { f32::NEG_INFINITY } else { s };
            (!ordered_bits(s), ordered_bits(l), i as u32)
        })
        .collect();
    keyed.sort_unstable();
    order.clear();
    order.extend(keyed.iter().map(|k| k.2));
}

/// Maps an f32 to a u32 whose unsigned order is the float order (for non-NaN values).
fn ordered_bits(v: f32) -> u32 {
    let v = if v == 0.0 { 0.0 } else { v };
    let bits = v.to_bits();
    if bits & (1 << 31) != 0 {
        !bits
    } else {
        bits | (1 << 31)
    }
}

/// DCG@k of the ideal order (labels descending).
pub(crate) fn ideal_dcg(labels: &[f32], k: usize, scratch: &mut Vec<f32>) -> f64 {
    scratch.clear();
    scratch.extend_from_slice(labels);
    scratch.sort_unstable_by(|a, b| b.partial_cmp(a).unwrap_or(Ordering::Equal));
    scratch
        .iter()
        .take(k)
        .enumerate()
        .map(|(rank, &l)| gain(l) * discount(rank))
        .sum()
}

/// NDCG@k of one group (gain `2^label - 1`, discount `1/log2(rank + 2)`). Tied scores are ordered
/// pessimistically (lower label first). A group with no positive label has no ideal DCG and returns
/// 0.0; [`mean_ndcg`] skips such groups. Extra entries of the longer slice are ignored.
pub fn ndcg_at(scores: &[f32], labels: &[f32], k: usize) -> f64 {
    let n = scores.len().min(labels.len());
    let (scores, labels) = (&scores[..n], &labels[..n]);
    let ideal = ideal_dcg(labels, k, &mut Vec::new());
    if ideal <= 0.0 {
        return 0.0;
    }
    let mut order = Vec::new();
    ranking_order(scores, labels, &mut order);
    let dcg: f64 = order
        .iter()
        .take(k)
        .enumerate()
        .map(|(rank, &row)| gain(labels[row as usize]) * discount(rank))
        .sum();
    (dcg / ideal).clamp(0.0, 1.0)
}

/// Mean NDCG@k over the groups of `data` that have at least one positive label; 0.0 when none has.
/// `scores` holds one score per row of `data`; groups past its end are not counted.
pub fn mean_ndcg(data: &RankingData, scores: &[f32], k: usize) -> f64 {
    let mut sum = 0.0;
    let mut counted = 0usize;
    let mut start = 0;
    for &size in &data.group_sizes {
        let end = start + size;
        if end > scores.len() || end > data.labels.len() {
            break;
        }
        let labels = &data.labels[start..end];
        if labels.iter().any(|&l| l > 0.0) {
            sum += ndcg_at(&scores[start..end], labels, k);
            counted += 1;
        }
        start = end;
    }
    if counted == 0 {
        0.0
    } else {
        sum / counted as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_values() {
        // Relevant item at rank 1 (0-based) of 3: DCG = 1/log2(3), ideal = 1.
        let v = ndcg_at(&[0.9, 0.8, 0.1], &[0.0, 1.0, 0.0], 10);
        assert!((v - 1.0 / 3f64.log2()).abs() < 1e-12);
        // Graded: labels 2 and 1, ranked in reverse. DCG = 1 + 3/log2(3); ideal = 3 + 1/log2(3).
        let v = ndcg_at(&[0.9, 0.5], &[1.0, 2.0], 10);
        let expected = (1.0 + 3.0 / 3f64.log2()) / (3.0 + 1.0 / 3f64.log2());
        assert!((v - expected).abs() < 1e-12);
        // Truncation: the only relevant row at rank 2 with k = 2 scores zero.
        assert_eq!(ndcg_at(&[3.0, 2.0, 1.0], &[0.0, 0.0, 1.0], 2), 0.0);
        assert_eq!(ndcg_at(&[3.0, 2.0, 1.0], &[0.0, 0.0, 0.0], 2), 0.0);
    }

    #[test]
    fn ties_are_pessimistic_and_nan_scores_rank_last() {
        let constant = ndcg_at(&[1.0, 1.0, 1.0], &[1.0, 0.0, 0.0], 10);
        assert!((constant - 0.5).abs() < 1e-12, "{constant}");
        let nan_first = ndcg_at(&[f32::NAN, 0.0], &[1.0, 0.0], 10);
        assert!((nan_first - 1.0 / 3f64.log2()).abs() < 1e-12);
    }

    #[test]
    fn mean_skips_groups_without_positives() {
        let data = RankingData {
            n_features: 1,
            features: vec![0.0; 5],
            labels: vec![1.0, 0.0, 0.0, 0.0, 1.0],
            group_sizes: vec![2, 1, 2],
        };
        // Group 0 perfect (1.0), group 1 skipped, group 2 relevant at rank 1.
        let m = mean_ndcg(&data, &[2.0, 1.0, 0.0, 5.0, 4.0], 10);
        assert!((m - (1.0 + 1.0 / 3f64.log2()) / 2.0).abs() < 1e-12);
        assert_eq!(mean_ndcg(&RankingData::new(1), &[], 10), 0.0);
    }
}
