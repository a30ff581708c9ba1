//! How far one distribution over a fixed set of bins is from another: the population stability
//! index (PSI) and the Jensen–Shannon divergence (JS), both in nats. These are effect sizes (how much
//! the mix moved), not tests: with enough events any shift is "significant", so a drift alarm reads
//! a threshold on the size instead of a p-value.
//!
//! Counts are turned into probabilities with additive (Laplace) smoothing, [`smoothed`]: every bin
//! gets `alpha` pseudo-events, so a bin that is empty on one side has a small, finite probability
//! instead of zero and PSI (which divides by each side) stays finite. JS needs no smoothing (its
//! mixture is positive wherever either side is) but is usually computed on the same smoothed
//! probabilities so that both figures describe the same pair.
//!
//! Reading the figures (for `B` bins and `n` events in the window against a much larger
//! reference): sampling noise alone gives PSI ≈ (B − 1)/n and JS ≈ (B − 1)/(8n); the usual rule for
//! PSI is < 0.1 stable, 0.1–0.25 moderate, > 0.25 a major shift. For a small shift JS ≈ PSI/8.

/// Probabilities from counts with `alpha` pseudo-counts per bin: `(c_i + α) / (Σc + α·B)`.
/// Empty when `counts` is; all zeros when there are no counts and `alpha` is 0.
pub fn smoothed(counts: &[f64], alpha: f64) -> Vec<f64> {
    let total: f64 = counts.iter().sum::<f64>() + alpha * counts.len() as f64;
    if total <= 0.0 {
        return vec![0.0; counts.len()];
    }
    counts.iter().map(|c| (c + alpha) / total).collect()
}

/// Population stability index `Σ (p_i − q_i) ln(p_i / q_i)`: the symmetrised Kullback–Leibler
/// divergence (J-divergence). `None` when the lengths differ or a bin is not positive on both sides
/// (smooth the counts first, [`smoothed`]). 0 for identical distributions, unbounded above.
pub fn psi(p: &[f64], q: &[f64]) -> Option<f64> {
    if p.len() != q.len() || p.is_empty() {
        return None;
    }
    let mut sum = 0.0;
    for (&a, &b) in p.iter().zip(q) {
        if !(a > 0.0 && b > 0.0) {
            return None;
        }
        sum += (a - b) * (a / b).ln();
    }
    Some(sum.max(0.0))
}

/// Kullback–Leibler divergence `Σ p_i ln(p_i / q_i)`, with 0·ln 0 = 0; infinite where `p` has mass
/// and `q` has none.
fn kl(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .map(|(&a, &b)| {
            if a <= 0.0 {
                0.0
            } else if b <= 0.0 {
                f64::INFINITY
            } else {
                a * (a / b).ln()
            }
        })
        .sum()
}

/// Jensen–Shannon divergence `½ KL(p‖m) + ½ KL(q‖m)` with `m = (p + q)/2`, in nats: symmetric,
/// 0 for identical distributions, at most ln 2 (disjoint supports). Zero bins need no smoothing.
/// `None` when the lengths differ or either side has no mass. Each side is normalised to sum to 1.
pub fn js_divergence(p: &[f64], q: &[f64]) -> Option<f64> {
    if p.len() != q.len() || p.is_empty() {
        return None;
    }
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    if !(sp > 0.0 && sq > 0.0) || p.iter().chain(q).any(|v| *v < 0.0 || !v.is_finite()) {
        return None;
    }
    let p: Vec<f64> = p.iter().map(|v| v / sp).collect();
    let q: Vec<f64> = q.iter().map(|v| v / sq).collect();
    let m: Vec<f64> = p.iter().zip(&q).map(|(a, b)| (a + b) / 2.0).collect();
    let js = 0.5 * kl(&p, &m) + 0.5 * kl(&q, &m);
    Some(js.clamp(0.0, std::f64::consts::LN_2))
}

/// PSI and JS between two count vectors over the same bins, each smoothed with `alpha`
/// pseudo-counts per bin ([`smoothed`]). `None` when the lengths differ, there are no bins, or
/// either side has no events (a distribution of nothing is not compared).
pub fn compare_counts(actual: &[f64], expected: &[f64], alpha: f64) -> Option<(f64, f64)> {
    if actual.len() != expected.len() || actual.is_empty() {
        return None;
    }
    if actual.iter().sum::<f64>() <= 0.0 || expected.iter().sum::<f64>() <= 0.0 {
        return None;
    }
    let p = smoothed(actual, alpha);
    let q = smoothed(expected, alpha);
    Some((psi(&p, &q)?, js_divergence(&p, &q)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn identical_distributions_are_zero_apart() {
        let p = [0.5, 0.3, 0.2];
        assert_eq!(psi(&p, &p), Some(0.0));
        assert_eq!(js_divergence(&p, &p), Some(0.0));
        let (psi, js) = compare_counts(&[50.0, 30.0, 20.0], &[500.0, 300.0, 200.0], 0.0).unwrap();
        assert!(psi.abs() < 1e-12 && js.abs() < 1e-12, "{psi} {js}");
    }

    #[test]
    fn known_values() {
        // PSI of (0.6, 0.4) against (0.4, 0.6): 2 · 0.2 · ln 1.5.
        let v = psi(&[0.6, 0.4], &[0.4, 0.6]).unwrap();
        assert!((v - 0.4 * 1.5f64.ln()).abs() < 1e-12, "{v}");
        // Disjoint supports: JS is ln 2 exactly.
        let v = js_divergence(&[1.0, 0.0], &[0.0, 1.0]).unwrap();
        assert!((v - std::f64::consts::LN_2).abs() < 1e-12, "{v}");
    }

    #[test]
    fn smoothing_makes_empty_bins_finite() {
        assert_eq!(psi(&[1.0, 0.0], &[0.5, 0.5]), None);
        let p = smoothed(&[10.0, 0.0], 0.5);
        assert_eq!(p, vec![10.5 / 11.0, 0.5 / 11.0]);
        let (psi, js) = compare_counts(&[10.0, 0.0], &[5.0, 5.0], 0.5).unwrap();
        assert!(psi.is_finite() && psi > 0.0);
        assert!(js > 0.0 && js < std::f64::consts::LN_2);
    }

    #[test]
    fn nothing_to_compare_is_none() {
        assert_eq!(compare_counts(&[0.0, 0.0], &[1.0, 2.0], 0.5), None);
        assert_eq!(compare_counts(&[1.0], &[1.0, 2.0], 0.5), None);
        assert_eq!(compare_counts(&[], &[], 0.5), None);
        assert_eq!(js_divergence(&[0.0, 0.0], &[1.0, 0.0]), None);
    }

    fn counts() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(0u32..1000, 2..30)
            .prop_map(|v| v.into_iter().map(f64::from).collect())
    }

    proptest! {
        #[test]
        fn js_is_symmetric_and_bounded(a in counts(), b in counts()) {
            let n = a.len().min(b.len());
            let (a, b) = (&a[..n], &b[..n]);
            if let (Some(ab), Some(ba)) = (js_divergence(a, b), js_divergence(b, a)) {
                prop_assert!((ab - ba).abs() < 1e-12);
                prop_assert!((0.0..=std::f64::consts::LN_2).contains(&ab));
            }
        }

        #[test]
        fn psi_is_symmetric_non_negative_and_above_js(a in counts(), b in counts(), alpha in 0.01f64..2.0) {
            let n = a.len().min(b.len());
            let (a, b) = (&a[..n], &b[..n]);
            if let Some((psi_ab, js_ab)) = compare_counts(a, b, alpha) {
                let (psi_ba, _) = compare_counts(b, a, alpha).unwrap();
                prop_assert!(psi_ab >= 0.0 && psi_ab.is_finite());
                prop_assert!((psi_ab - psi_ba).abs() < 1e-9 * (1.0 + psi_ab));
                // JS ≤ J/4 (the mixture's KL is at most a quarter of the symmetrised KL).
                prop_assert!(js_ab <= psi_ab / 4.0 + 1e-12, "js {} psi {}", js_ab, psi_ab);
            }
        }

        #[test]
        fn scaling_the_counts_changes_nothing_without_smoothing(a in counts(), k in 1u32..50) {
            let scaled: Vec<f64> = a.iter().map(|v| v * f64::from(k)).collect();
            if let Some((psi, js)) = compare_counts(&a, &scaled, 0.0) {
                prop_assert!(psi.abs() < 1e-9 && js.abs() < 1e-12);
            }
        }

        #[test]
        fn smoothed_probabilities_sum_to_one(a in counts(), alpha in 0.0f64..2.0) {
            let p = smoothed(&a, alpha);
            let total: f64 = p.iter().sum();
            if a.iter().sum::<f64>() + alpha > 0.0 {
                prop_assert!((total - 1.0).abs() < 1e-9);
            }
        }
    }
}
