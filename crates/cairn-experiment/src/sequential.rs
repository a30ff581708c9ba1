//! Always-valid inference for a difference of means: the normal-mixture confidence sequence.
//!
//! For a sum S of n independent centred terms with per-term variance σ², mixing the exponential
//! martingale exp(λS − λ²nσ²/2) over λ ~ N(0, ρ²/σ²) gives the martingale
//! Λₙ = (nρ² + 1)^{−1/2} · exp(z² · nρ² / (2(nρ² + 1))), with z the usual z statistic. By Ville's
//! inequality P(∃n: Λₙ ≥ 1/α) ≤ α, so the interval
//!
//! ```text
//! estimate ± se · sqrt( 2(nρ² + 1)/(nρ²) · ln( sqrt(nρ² + 1) / α ) )
//! ```
//!
//! covers the true difference at every n at once with probability ≥ 1 − α, and p = min(1, 1/Λₙ) is
//! an always-valid p-value: an experiment may be looked at every day and stopped at the first look
//! where p < α without inflating the false-positive rate. This is Robbins' normal mixture as written
//! by Howard, Ramdas, McAuliffe and Sekhon ("Time-uniform, nonparametric, nonasymptotic confidence
//! sequences", 2021, eq. 14) and, with the variance estimated, the asymptotic confidence sequence of
//! Waudby-Smith et al. (arXiv 2103.06476) that GrowthBook uses; Johari et al.'s mSPRT is the same
//! statistic. The mixing scale is tuned so the interval is tightest near `planned_n`, the total
//! number of units at which a decision is expected: ρ² = (−2 ln α + ln(1 − 2 ln α)) / planned_n.

use serde::{Deserialize, Serialize};

/// The always-valid test's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SequentialConfig {
    /// Error rate over the whole (unbounded) sequence of looks.
    pub alpha: f64,
    /// Total units (both arms) at which the interval should be tightest; a guess within a factor of
    /// a few of the real sample costs little width.
    pub planned_n: f64,
}

impl SequentialConfig {
    /// ρ², the mixing precision tuned to `planned_n`.
    pub fn rho_squared(&self) -> f64 {
        let l = -2.0 * self.alpha.ln();
        (l + (l + 1.0).ln()) / self.planned_n.max(1.0)
    }

    /// Half-width of the always-valid interval of an estimate with standard error `se` computed
    /// from `n` units in total. Infinite when `n` or `se` is not positive and finite.
    pub fn half_width(&self, se: f64, n: f64) -> f64 {
        if n.is_nan() || n <= 0.0 || !se.is_finite() || se < 0.0 {
            return f64::INFINITY;
        }
        let a = n * self.rho_squared();
        se * (2.0 * (a + 1.0) / a * ((a + 1.0).sqrt() / self.alpha).ln()).sqrt()
    }

    /// The always-valid p-value min(1, 1/Λₙ) of a z statistic from `n` units.
    pub fn p_value(&self, z: f64, n: f64) -> f64 {
        if n.is_nan() || n <= 0.0 || z.is_nan() {
            return 1.0;
        }
        let a = n * self.rho_squared();
        let log_inv_lambda = 0.5 * (a + 1.0).ln() - z * z * a / (2.0 * (a + 1.0));
        log_inv_lambda.exp().min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{normal_quantile, two_sided_p};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr_free::standard_normal;

    /// A Box–Muller standard normal from a seeded generator (no extra dependency).
    mod rand_distr_free {
        use rand::Rng;
        pub fn standard_normal(rng: &mut impl Rng) -> f64 {
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random::<f64>();
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        }
    }

    #[test]
    fn p_value_and_interval_agree() {
        let cfg = SequentialConfig {
            alpha: 0.05,
            planned_n: 10_000.0,
        };
        for n in [100.0, 1_000.0, 10_000.0, 1e6] {
            let se = 0.3;
            let hw = cfg.half_width(se, n);
            // At the boundary the p-value is alpha; just inside, above; just outside, below.
            let z = hw / se;
            assert!((cfg.p_value(z, n) - 0.05).abs() < 1e-12, "n {n}");
            assert!(cfg.p_value(z * 0.99, n) > 0.05);
            assert!(cfg.p_value(z * 1.01, n) < 0.05);
        }
    }

    #[test]
    fn always_valid_interval_is_wider_than_the_fixed_one_everywhere() {
        let cfg = SequentialConfig {
            alpha: 0.05,
            planned_n: 5_000.0,
        };
        let z_fixed = normal_quantile(0.975);
        for k in 0..60 {
            let n = 10f64.powf(k as f64 / 10.0);
            let ratio = cfg.half_width(1.0, n) / z_fixed;
            assert!(ratio > 1.0, "n {n}: ratio {ratio}");
            // The p-value is never below the fixed-horizon one.
            assert!(cfg.p_value(2.5, n) >= two_sided_p(2.5));
        }
        // Near the planned sample the price is moderate (about 1.5× for α = 0.05).
        let r = cfg.half_width(1.0, 5_000.0) / z_fixed;
        assert!(r < 1.7, "{r}");
    }

    #[test]
    fn degenerate_inputs() {
        let cfg = SequentialConfig {
            alpha: 0.05,
            planned_n: 100.0,
        };
        assert_eq!(cfg.half_width(1.0, 0.0), f64::INFINITY);
        assert_eq!(cfg.half_width(f64::NAN, 10.0), f64::INFINITY);
        assert_eq!(cfg.p_value(f64::NAN, 10.0), 1.0);
        assert_eq!(cfg.p_value(0.0, 10.0), 1.0);
    }

    #[test]
    fn continuous_monitoring_keeps_the_error_rate() {
        // 400 null sequences of 2,000 N(0,1) differences, looked at every 20 units (100 looks):
        // the always-valid test rejects at most alpha of them; the fixed-horizon test looked at
        // as often rejects far more. Seeded, so the counts are fixed.
        let cfg = SequentialConfig {
            alpha: 0.05,
            planned_n: 1_000.0,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(2026);
        let (mut sequential, mut naive) = (0, 0);
        let runs = 400;
        for _ in 0..runs {
            let (mut sum, mut sum_sq) = (0.0, 0.0);
            let (mut hit_seq, mut hit_naive) = (false, false);
            for i in 1..=2_000 {
                let x = standard_normal(&mut rng);
                sum += x;
                sum_sq += x * x;
                if i % 20 == 0 {
                    let n = i as f64;
                    let mean = sum / n;
                    let var = (sum_sq - n * mean * mean) / (n - 1.0);
                    let z = mean / (var / n).sqrt();
                    hit_seq |= cfg.p_value(z, n) < 0.05;
                    hit_naive |= two_sided_p(z) < 0.05;
                }
            }
            sequential += hit_seq as u32;
            naive += hit_naive as u32;
        }
        assert!(
            sequential as f64 / runs as f64 <= 0.05,
            "{sequential}/{runs}"
        );
        assert!(naive as f64 / runs as f64 > 0.2, "{naive}/{runs}");
    }
}
