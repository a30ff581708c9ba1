//! LambdaRank gradients for NDCG@k (Burges, "From RankNet to LambdaRank to LambdaMART", 2010).
//!
//! For each pair (i, j) of one group with `label_i > label_j`, where at least one of the two sits in
//! the current top k, with `ρ = 1 / (1 + exp(σ (s_i − s_j)))` and `Δ = |ΔNDCG@k|` of swapping them:
//! `λ = σ ρ Δ` pushes i up and j down, and `σ² ρ (1 − ρ) Δ` is added to both hessians. σ = 1.
//! As in LightGBM, a group's lambdas are rescaled by `log2(1 + Σλ) / Σλ` so that groups with many
//! pairs do not dominate. Groups whose labels are all equal (including all zero) contribute nothing.

use rayon::prelude::*;

use crate::metrics::{discount, gain, ideal_dcg, ranking_order};

const SIGMA: f64 = 1.0;

/// Gradient (of the loss, so negative means "raise this score") and hessian of one row.
#[derive(Clone, Copy, Default, Debug, PartialEq)]
pub(crate) struct GradHess {
    pub grad: f32,
    pub hess: f32,
}

#[derive(Default)]
struct Scratch {
    order: Vec<u32>,
    labels: Vec<f32>,
    scores: Vec<f64>,
    gains: Vec<f64>,
    discounts: Vec<f64>,
    grad: Vec<f64>,
    hess: Vec<f64>,
}

/// `1 / ideal DCG@k` of a group, or 0 when the group cannot contribute (all labels equal).
fn inverse_ideal_dcg(labels: &[f32], k: usize, scratch: &mut Vec<f32>) -> f64 {
    if labels.iter().all(|&l| l == labels[0]) {
        return 0.0;
    }
    let ideal = ideal_dcg(labels, k, scratch);
    if ideal > 0.0 {
        1.0 / ideal
    } else {
        0.0
    }
}

fn group_lambdas(
    scores: &[f32],
    labels: &[f32],
    k: usize,
    inverse_ideal: f64,
    out: &mut [GradHess],
    s: &mut Scratch,
) {
    out.fill(GradHess::default());
    let n = labels.len();
    if inverse_ideal == 0.0 {
        return;
    }
    ranking_order(scores, labels, &mut s.order);
    // Work in rank order: the pair loop then reads contiguous arrays instead of chasing indices.
    s.labels.clear();
    s.labels.extend(s.order.iter().map(|&i| labels[i as usize]));
    s.scores.clear();
    s.scores
        .extend(s.order.iter().map(|&i| scores[i as usize] as f64));
    s.gains.clear();
    s.gains.extend(s.labels.iter().map(|&l| gain(l)));
    s.grad.clear();
    s.grad.resize(n, 0.0);
    s.hess.clear();
    s.hess.resize(n, 0.0);
    let top = k.min(n);
    s.discounts.clear();
    s.discounts.extend((0..top).map(discount));
    let mut lambda_sum = 0.0;
    for a in 0..top {
        let (label_a, gain_a, disc_a, score_a) =
            (s.labels[a], s.gains[a], s.discounts[a], s.scores[a]);
        for b in a + 1..n {
            let label_b = s.labels[b];
            if label_a == label_b {
                continue;
            }
            let (high, low) = if label_a > label_b { (a, b) } else { (b, a) };
            let disc_b = if b < top { s.discounts[b] } else { 0.0 };
            let delta = (gain_a - s.gains[b]).abs() * (disc_a - disc_b) * inverse_ideal;
            let margin = if high == a {
                score_a - s.scores[b]
            } else {
                s.scores[b] - score_a
            };
            let rho = 1.0 / (1.0 + (SIGMA * margin).exp());
            let lambda = SIGMA * rho * delta;
            let hessian = SIGMA * SIGMA * rho * (1.0 - rho) * delta;
            s.grad[high] -= lambda;
            s.grad[low] += lambda;
            s.hess[high] += hessian;
            s.hess[low] += hessian;
            lambda_sum += 2.0 * lambda;
        }
    }
    let norm = if lambda_sum > 0.0 {
        (1.0 + lambda_sum).log2() / lambda_sum
    } else {
        1.0
    };
    for ((&row, g), h) in s.order.iter().zip(&s.grad).zip(&s.hess) {
        out[row as usize] = GradHess {
            grad: (g * norm) as f32,
            hess: (h * norm) as f32,
        };
    }
}

/// The LambdaRank objective over fixed groups and labels; the ideal DCGs are computed once.
pub(crate) struct LambdaObjective<'a> {
    labels: &'a [f32],
    group_offsets: &'a [usize],
    inverse_ideal: Vec<f64>,
    k: usize,
}

impl<'a> LambdaObjective<'a> {
    pub fn new(labels: &'a [f32], group_offsets: &'a [usize], k: usize) -> Self {
        let inverse_ideal = group_offsets
            .par_windows(2)
            .map_init(Vec::new, |scratch, w| {
                inverse_ideal_dcg(&labels[w[0]..w[1]], k, scratch)
            })
            .collect();
        Self {
            labels,
            group_offsets,
            inverse_ideal,
            k,
        }
    }

    /// Fills `out` (one entry per row) with gradients at `scores`, in parallel over groups.
    pub fn compute(&self, scores: &[f32], out: &mut [GradHess]) {
        let mut chunks = Vec::with_capacity(self.inverse_ideal.len());
        let mut rest = out;
        for (w, &inverse_ideal) in self.group_offsets.windows(2).zip(&self.inverse_ideal) {
            let (head, tail) = rest.split_at_mut(w[1] - w[0]);
            chunks.push((w[0], inverse_ideal, head));
            rest = tail;
        }
        chunks.into_par_iter().with_min_len(16).for_each_init(
            Scratch::default,
            |scratch, (start, inverse_ideal, chunk)| {
                let end = start + chunk.len();
                let (scores, labels) = (&scores[start..end], &self.labels[start..end]);
                group_lambdas(scores, labels, self.k, inverse_ideal, chunk, scratch);
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lambdas(scores: &[f32], labels: &[f32], k: usize) -> Vec<GradHess> {
        let mut out = vec![GradHess::default(); scores.len()];
        let offsets = [0, scores.len()];
        LambdaObjective::new(labels, &offsets, k).compute(scores, &mut out);
        out
    }

    #[test]
    fn relevant_rows_are_pushed_up_and_gradients_balance() {
        let g = lambdas(&[0.0, 0.0, 0.0, 0.0], &[0.0, 1.0, 0.0, 2.0], 10);
        assert!(g[1].grad < 0.0 && g[3].grad < 0.0);
        assert!(g[0].grad > 0.0 && g[2].grad > 0.0);
        assert!(g[3].grad < g[1].grad, "higher grade gets the stronger push");
        let total: f32 = g.iter().map(|x| x.grad).sum();
        assert!(total.abs() < 1e-5);
        assert!(g.iter().all(|x| x.hess > 0.0));
    }

    #[test]
    fn equal_labels_and_single_rows_contribute_nothing() {
        for (scores, labels) in [
            (vec![0.3, 0.1, 0.2], vec![1.0, 1.0, 1.0]),
            (vec![0.3, 0.1, 0.2], vec![0.0, 0.0, 0.0]),
            (vec![0.3], vec![1.0]),
        ] {
            assert!(lambdas(&scores, &labels, 10)
                .iter()
                .all(|x| *x == GradHess::default()));
        }
    }

    #[test]
    fn pairs_below_the_cutoff_are_ignored() {
        // Row 1 (label 1) sits below row 2 (label 0), but both are outside the top 1, so NDCG@1
        // gains nothing from swapping them: row 1 only feels row 0 above it and is pushed down.
        let g = lambdas(&[5.0, 1.0, 2.0], &[2.0, 1.0, 0.0], 1);
        assert!(g[1].grad > 0.0, "{g:?}");
        // With k = 3 the swap matters and row 1 is pushed up overall.
        let g = lambdas(&[5.0, 1.0, 2.0], &[2.0, 1.0, 0.0], 3);
        assert!(g[1].grad < 0.0, "{g:?}");
    }

    #[test]
    fn correct_order_with_wide_margin_has_small_gradients() {
        let wrong = lambdas(&[0.0, 5.0], &[1.0, 0.0], 10);
        let right = lambdas(&[5.0, 0.0], &[1.0, 0.0], 10);
        assert!(right[0].grad.abs() < 0.1 * wrong[0].grad.abs());
    }
}
