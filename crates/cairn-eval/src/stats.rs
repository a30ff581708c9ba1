//! Uncertainty of a mean over users: standard error, a seeded percentile bootstrap, and the paired
//! comparison of two models on the same users (paired t-test and bootstrap of the differences).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Mean of a per-user metric with its uncertainty. Undefined values (NaN) are left out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub mean: f64,
    pub n: usize,
    /// Sample standard deviation / sqrt(n); 0 for n < 2.
    pub std_err: f64,
    /// Percentile bootstrap interval of the mean (`level`, seeded).
    pub ci_low: f64,
    pub ci_high: f64,
}

/// How the intervals are computed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CiConfig {
    pub resamples: usize,
    pub level: f64,
    pub seed: u64,
}

impl Default for CiConfig {
    fn default() -> Self {
        CiConfig {
            resamples: 1000,
            level: 0.95,
            seed: 42,
        }
    }
}

pub fn defined(values: &[f64]) -> Vec<f64> {
    values.iter().copied().filter(|v| !v.is_nan()).collect()
}

pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

pub fn std_err(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 2 {
        return 0.0;
    }
    let m = mean(values);
    let var = values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1) as f64;
    (var / n as f64).sqrt()
}

/// Summary of the defined values of a per-user column.
pub fn summarize(values: &[f64], ci: &CiConfig) -> Summary {
    let v = defined(values);
    let (ci_low, ci_high) = bootstrap_mean_ci(&v, ci);
    Summary {
        mean: mean(&v),
        n: v.len(),
        std_err: std_err(&v),
        ci_low,
        ci_high,
    }
}

/// Percentile bootstrap interval of the mean: resample the values with replacement `resamples` times.
pub fn bootstrap_mean_ci(values: &[f64], ci: &CiConfig) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    if values.len() == 1 || ci.resamples == 0 {
        return (values[0].min(mean(values)), values[0].max(mean(values)));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(ci.seed);
    let n = values.len();
    let mut means: Vec<f64> = (0..ci.resamples)
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(|a, b| a.total_cmp(b));
    let alpha = (1.0 - ci.level) / 2.0;
    (
        quantile_sorted(&means, alpha),
        quantile_sorted(&means, 1.0 - alpha),
    )
}

/// Linear-interpolated quantile of sorted values (numpy's default method).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Model A against model B on the users where both are defined: differences are A − B.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedComparison {
    pub n: usize,
    pub mean_diff: f64,
    pub std_err: f64,
    /// Paired t statistic and its two-sided p-value (Student t with n − 1 degrees of freedom).
    pub t: f64,
    pub p_value: f64,
    /// Bootstrap interval of the mean difference.
    pub ci_low: f64,
    pub ci_high: f64,
}

pub fn paired_comparison(a: &[f64], b: &[f64], ci: &CiConfig) -> PairedComparison {
    let diffs: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| !x.is_nan() && !y.is_nan())
        .map(|(x, y)| x - y)
        .collect();
    let n = diffs.len();
    let mean_diff = mean(&diffs);
    let se = std_err(&diffs);
    let (t, p_value) = if n < 2 {
        (f64::NAN, f64::NAN)
    } else if se == 0.0 {
        // Identical differences: no evidence of a difference when they are all zero, certainty otherwise.
        if mean_diff == 0.0 {
            (0.0, 1.0)
        } else {
            (f64::INFINITY.copysign(mean_diff), 0.0)
        }
    } else {
        let t = mean_diff / se;
        (t, student_t_two_sided_p(t, (n - 1) as f64))
    };
    let (ci_low, ci_high) = bootstrap_mean_ci(&diffs, ci);
    PairedComparison {
        n,
        mean_diff,
        std_err: se,
        t,
        p_value,
        ci_low,
        ci_high,
    }
}

/// Two-sided p-value of Student's t: I_{df/(df+t²)}(df/2, 1/2).
pub fn student_t_two_sided_p(t: f64, df: f64) -> f64 {
    if !t.is_finite() {
        return 0.0;
    }
    regularized_incomplete_beta(df / (df + t * t), df / 2.0, 0.5)
}

/// I_x(a, b) by the continued fraction of Numerical Recipes (modified Lentz), accurate to ~1e-12.
pub fn regularized_incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_continued_fraction(x, a, b) / a
    } else {
        1.0 - ln_front.exp() * beta_continued_fraction(1.0 - x, b, a) / b
    }
}

fn beta_continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx)
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = G[0];
    for (i, g) in G.iter().enumerate().skip(1) {
        sum += g / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn standard_error_by_hand() {
        // values 1, 2, 3, 4: sample var = 5/3, se = sqrt(5/3 / 4)
        let v = [1.0, 2.0, 3.0, 4.0];
        assert!((std_err(&v) - (5.0f64 / 12.0).sqrt()).abs() < 1e-12);
        let s = summarize(&[1.0, f64::NAN, 3.0], &CiConfig::default());
        assert_eq!((s.n, s.mean), (2, 2.0));
    }

    #[test]
    fn t_distribution_p_values_match_tables() {
        // scipy.stats.t.sf(2.0, 10) * 2 = 0.07338803477074261; t = 1 with 1 df: exactly 0.5
        assert!((student_t_two_sided_p(2.0, 10.0) - 0.073_388_034_770_742_61).abs() < 1e-9);
        assert!((student_t_two_sided_p(1.0, 1.0) - 0.5).abs() < 1e-12);
        // t.sf(2.5, 30) * 2 = 0.01811564906806669
        assert!((student_t_two_sided_p(2.5, 30.0) - 0.018_115_649_068_066_69).abs() < 1e-9);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn paired_comparison_by_hand() {
        // diffs 1, 2, 3: mean 2, se = 1/sqrt 3, t = 2 sqrt 3 with 2 df
        let c = paired_comparison(&[2.0, 4.0, 6.0], &[1.0, 2.0, 3.0], &CiConfig::default());
        assert_eq!(c.n, 3);
        assert!((c.mean_diff - 2.0).abs() < 1e-12);
        assert!((c.t - 2.0 * 3f64.sqrt()).abs() < 1e-12);
        // scipy.stats.ttest_rel([2,4,6],[1,2,3]).pvalue = 0.07417990022744862
        assert!((c.p_value - 0.074_179_900_227_448_62).abs() < 1e-9);
        assert!(c.ci_low >= 1.0 && c.ci_high <= 3.0 && c.ci_low <= c.ci_high);
        let same = paired_comparison(&[1.0, 2.0], &[1.0, 2.0], &CiConfig::default());
        assert_eq!((same.mean_diff, same.p_value), (0.0, 1.0));
    }

    proptest! {
        #[test]
        fn bootstrap_is_seeded_and_brackets_within_the_range(values in prop::collection::vec(0.0f64..1.0, 2..60), seed in 0u64..1000) {
            let ci = CiConfig { resamples: 200, level: 0.9, seed };
            let a = bootstrap_mean_ci(&values, &ci);
            prop_assert_eq!(a, bootstrap_mean_ci(&values, &ci));
            let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            prop_assert!(a.0 >= lo - 1e-12 && a.1 <= hi + 1e-12 && a.0 <= a.1);
        }
    }
}
