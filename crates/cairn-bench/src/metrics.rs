//! The scores the bench prints for strong generalization, with the ranking metrics of the peers harness
//! (`metrics.py`) as cairn-eval defines them (`cairn_eval::metrics::Relevance`): per user, binary gain,
//! users without targets skipped: RecallLiang@k = hits@k / min(k, |T|); NDCG@k with IDCG over
//! min(k, |T|) ranks; Recall@20 = hits@20 / |T|.

use cairn_eval::metrics::Relevance;

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Scores {
    pub recall_liang_20: f64,
    pub recall_liang_50: f64,
    pub ndcg_100: f64,
    pub recall_20: f64,
    pub users: usize,
}

/// Per-user metrics of one ranked list: RecallLiang@20, RecallLiang@50, NDCG@100, Recall@20; `None`
/// when the user has no targets. Repeated targets count once.
pub fn user_metrics(ranked: &[u32], targets: &[u32]) -> Option<[f64; 4]> {
    let mut t = targets.to_vec();
    t.sort_unstable();
    t.dedup();
    let r = Relevance::new(ranked, &t, None);
    Some([
        r.recall_liang(20)?,
        r.recall_liang(50)?,
        r.ndcg(100)?,
        r.recall(20)?,
    ])
}

pub fn mean(per_user: impl IntoIterator<Item = Option<[f64; 4]>>) -> Scores {
    let mut sum = [0f64; 4];
    let mut n = 0;
    for m in per_user.into_iter().flatten() {
        for (s, v) in sum.iter_mut().zip(m) {
            *s += v;
        }
        n += 1;
    }
    let d = n.max(1) as f64;
    Scores {
        recall_liang_20: sum[0] / d,
        recall_liang_50: sum[1] / d,
        ndcg_100: sum[2] / d,
        recall_20: sum[3] / d,
        users: n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_values() {
        // Targets {1, 2, 3}; ranked [1, 9, 2]: hits@20 = 2, Liang denominator min(20, 3) = 3.
        let m = user_metrics(&[1, 9, 2], &[1, 2, 3]).unwrap();
        assert!((m[0] - 2.0 / 3.0).abs() < 1e-12);
        let dcg = 1.0 + 1.0 / 4f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!((m[2] - dcg / idcg).abs() < 1e-12);
        assert!(user_metrics(&[1], &[]).is_none());
    }
}
