//! Top-k accuracy metrics of one ranked list against one target set.
//!
//! `rel_r` is the gain of the item at rank r (1-based): 1 for a target (binary gain) or the target's
//! grade (graded gain), 0 otherwise; ranks past the end of a short list count as 0.

/// The relevance profile of one ranked list.
#[derive(Debug, Clone)]
pub struct Relevance {
    /// Binary relevance of each ranked position.
    hit: Vec<bool>,
    /// Graded gain of each ranked position (equal to `hit` as 0/1 without grades).
    gain: Vec<f64>,
    /// Gains of all targets, best first (for the graded ideal DCG).
    ideal_gains: Vec<f64>,
    n_targets: usize,
}

impl Relevance {
    /// `targets` sorted and distinct; `gains` parallel to `targets` (None = binary).
    pub fn new(ranked: &[u32], targets: &[u32], gains: Option<&[f32]>) -> Relevance {
        let mut hit = Vec::with_capacity(ranked.len());
        let mut gain = Vec::with_capacity(ranked.len());
        for item in ranked {
            match targets.binary_search(item) {
                Ok(pos) => {
                    hit.push(true);
                    gain.push(gains.map_or(1.0, |g| f64::from(g[pos])));
                }
                Err(_) => {
                    hit.push(false);
                    gain.push(0.0);
                }
            }
        }
        let mut ideal_gains: Vec<f64> = match gains {
            Some(g) => g.iter().map(|&x| f64::from(x)).collect(),
            None => vec![1.0; targets.len()],
        };
        ideal_gains.sort_by(|a, b| b.total_cmp(a));
        Relevance {
            hit,
            gain,
            ideal_gains,
            n_targets: targets.len(),
        }
    }

    pub fn n_targets(&self) -> usize {
        self.n_targets
    }

    /// hits@k.
    pub fn hits(&self, k: usize) -> usize {
        self.hit.iter().take(k).filter(|&&h| h).count()
    }

    fn defined(&self) -> bool {
        self.n_targets > 0
    }

    /// hits@k / min(k, |T|) (Liang et al. 2018).
    pub fn recall_liang(&self, k: usize) -> Option<f64> {
        self.defined()
            .then(|| self.hits(k) as f64 / k.min(self.n_targets) as f64)
    }

    /// hits@k / |T|.
    pub fn recall(&self, k: usize) -> Option<f64> {
        self.defined()
            .then(|| self.hits(k) as f64 / self.n_targets as f64)
    }

    /// hits@k / k.
    pub fn precision(&self, k: usize) -> Option<f64> {
        (self.defined() && k > 0).then(|| self.hits(k) as f64 / k as f64)
    }

    /// Binary-gain NDCG: DCG@k / IDCG@k with IDCG over min(k, |T|) positions.
    pub fn ndcg(&self, k: usize) -> Option<f64> {
        if !self.defined() || k == 0 {
            return None;
        }
        let dcg: f64 = self
            .hit
            .iter()
            .take(k)
            .enumerate()
            .filter(|(_, &h)| h)
            .map(|(r, _)| discount(r))
            .sum();
        let idcg: f64 = (0..k.min(self.n_targets)).map(discount).sum();
        Some(dcg / idcg)
    }

    /// Graded NDCG: the gain at a rank is the target's grade; the ideal list holds the best
    /// min(k, |T|) grades in decreasing order.
    pub fn ndcg_graded(&self, k: usize) -> Option<f64> {
        if !self.defined() || k == 0 {
            return None;
        }
        let dcg: f64 = self
            .gain
            .iter()
            .take(k)
            .enumerate()
            .map(|(r, g)| g * discount(r))
            .sum();
        let idcg: f64 = self
            .ideal_gains
            .iter()
            .take(k)
            .enumerate()
            .map(|(r, g)| g * discount(r))
            .sum();
        (idcg > 0.0).then(|| dcg / idcg)
    }

    /// AP@k = (1 / min(k, |T|)) Σ_r rel_r · hits@r / r.
    pub fn average_precision(&self, k: usize) -> Option<f64> {
        if !self.defined() || k == 0 {
            return None;
        }
        let mut hits = 0usize;
        let mut sum = 0.0;
        for (r, &h) in self.hit.iter().take(k).enumerate() {
            if h {
                hits += 1;
                sum += hits as f64 / (r + 1) as f64;
            }
        }
        Some(sum / k.min(self.n_targets) as f64)
    }

    /// 1 / rank of the first target within the first k, else 0.
    pub fn reciprocal_rank(&self, k: usize) -> Option<f64> {
        self.defined().then(|| {
            self.hit
                .iter()
                .take(k)
                .position(|&h| h)
                .map_or(0.0, |r| 1.0 / (r + 1) as f64)
        })
    }

    /// 1 if any target is in the top k.
    pub fn hit_rate(&self, k: usize) -> Option<f64> {
        self.defined()
            .then(|| if self.hits(k) > 0 { 1.0 } else { 0.0 })
    }
}

/// 1 / log2(r + 2) for the 0-based rank r.
fn discount(r: usize) -> f64 {
    1.0 / ((r + 2) as f64).log2()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("defined");
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    // metrics.py's self-test case: ranked [5, 3, 8, 1, 9], targets {3, 9, 7} -> rel 0 1 0 0 1.
    fn case() -> Relevance {
        Relevance::new(&[5, 3, 8, 1, 9], &[3, 7, 9], None)
    }

    #[test]
    fn hand_computed_values() {
        let r = case();
        close(r.recall_liang(5), 2.0 / 3.0);
        close(r.recall_liang(2), 1.0 / 2.0);
        close(r.recall(2), 1.0 / 3.0);
        close(r.recall(5), 2.0 / 3.0);
        close(r.precision(5), 0.4);
        close(r.precision(10), 0.2);
        // DCG@5 = 1/log2 3 + 1/log2 6, IDCG over 3 ranks = 1 + 1/log2 3 + 1/2
        let dcg = 1.0 / 3f64.log2() + 1.0 / 6f64.log2();
        close(r.ndcg(5), dcg / (1.0 + 1.0 / 3f64.log2() + 0.5));
        close(r.ndcg(2), (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2()));
        close(r.average_precision(5), (0.5 + 0.4) / 3.0);
        close(r.reciprocal_rank(100), 0.5);
        close(r.reciprocal_rank(1), 0.0);
        close(r.hit_rate(1), 0.0);
        close(r.hit_rate(2), 1.0);
        // binary grades make graded NDCG equal to binary NDCG
        close(r.ndcg_graded(5), r.ndcg(5).unwrap());
    }

    #[test]
    fn graded_ndcg_uses_grades_and_the_ideal_order() {
        // ranked [1, 2]; targets 1 (grade 1) and 2 (grade 5): DCG = 1 + 5/log2 3; IDCG = 5 + 1/log2 3
        let r = Relevance::new(&[1, 2], &[1, 2], Some(&[1.0, 5.0]));
        let l3 = 3f64.log2();
        close(r.ndcg_graded(2), (1.0 + 5.0 / l3) / (5.0 + 1.0 / l3));
        close(r.ndcg(2), 1.0);
    }

    #[test]
    fn no_targets_means_undefined() {
        let r = Relevance::new(&[1, 2], &[], None);
        assert!(r.recall(2).is_none() && r.ndcg(2).is_none() && r.reciprocal_rank(2).is_none());
    }

    #[test]
    fn liang_recall_reaches_one_when_targets_exceed_k() {
        let r = Relevance::new(&[1, 2], &[1, 2, 3, 4], None);
        close(r.recall_liang(2), 1.0);
        close(r.recall(2), 0.5);
        close(r.ndcg(2), 1.0);
        close(r.average_precision(2), 1.0);
    }
}
