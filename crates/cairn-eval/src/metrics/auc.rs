//! Exact per-user AUC over the candidate items, with ties counting one half (the Mann–Whitney
//! statistic computed from average ranks, as `scipy.stats.rankdata` does in `metrics.py`).

/// AUC of one user's scores. Candidates are the items for which `is_candidate` holds; positives are the
/// candidate targets (`targets` sorted). `None` when there is no positive or no negative candidate.
pub fn auc(scores: &[f32], targets: &[u32], is_candidate: impl Fn(u32) -> bool) -> Option<f64> {
    let mut cands: Vec<(f64, bool)> = scores
        .iter()
        .enumerate()
        .filter(|&(i, _)| is_candidate(i as u32))
        .map(|(i, &s)| (f64::from(s), targets.binary_search(&(i as u32)).is_ok()))
        .collect();
    let n_pos = cands.iter().filter(|c| c.1).count();
    let n_neg = cands.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    cands.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of the positives' average ranks (1-based, ascending scores).
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < cands.len() {
        let mut end = start + 1;
        while end < cands.len() && cands[end].0 == cands[start].0 {
            end += 1;
        }
        let average_rank = (start + 1 + end) as f64 / 2.0;
        let positives = cands[start..end].iter().filter(|c| c.1).count();
        rank_sum += average_rank * positives as f64;
        start = end;
    }
    let n_pos = n_pos as f64;
    Some((rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_values_from_metrics_py() {
        let s = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
        assert_eq!(auc(&s, &[1, 4], |_| true), Some(0.5));
        let got = auc(&s, &[1, 4], |i| i != 0).unwrap();
        assert!((got - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(auc(&[1.0, 1.0, 0.0], &[0], |_| true), Some(0.75));
    }

    #[test]
    fn undefined_without_positives_or_negatives() {
        assert_eq!(auc(&[1.0, 2.0], &[], |_| true), None);
        assert_eq!(auc(&[1.0, 2.0], &[0, 1], |_| true), None);
        assert_eq!(auc(&[1.0, 2.0], &[0], |i| i == 0), None);
    }
}
