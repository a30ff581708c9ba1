//! Sample sizes for a two-arm comparison (normal approximation).

use crate::stats::normal_quantile;

/// Users per arm needed to detect a difference `delta` of means with per-user standard deviations
/// `sd_control` and `sd_treatment`, at two-sided level `alpha` and the given power:
/// n = (z₁₋α/₂ + z_power)² · (σ²_c + σ²_t) / δ². Infinite for a zero difference.
pub fn users_per_arm(
    sd_control: f64,
    sd_treatment: f64,
    delta: f64,
    alpha: f64,
    power: f64,
) -> f64 {
    if delta == 0.0 {
        return f64::INFINITY;
    }
    let z = normal_quantile(1.0 - alpha / 2.0) + normal_quantile(power);
    (z * z * (sd_control * sd_control + sd_treatment * sd_treatment) / (delta * delta)).ceil()
}

/// Users in total for a one-sample test of a mean `delta` ≠ 0 (a paired design such as
/// interleaving, where each user carries their own comparison) with per-user standard deviation
/// `sd`: n = (z₁₋α/₂ + z_power)² · σ² / δ².
pub fn users_one_sample(sd: f64, delta: f64, alpha: f64, power: f64) -> f64 {
    if delta == 0.0 {
        return f64::INFINITY;
    }
    let z = normal_quantile(1.0 - alpha / 2.0) + normal_quantile(power);
    (z * z * sd * sd / (delta * delta)).ceil()
}

/// Users in total for a two-sided sign test (as in interleaving: each user prefers one side or
/// ties) when a user with a preference prefers the treatment with probability `q` and a share
/// `ties` of users prefers neither side:
/// n = ((z₁₋α/₂·½ + z_power·√(q(1−q))) / (q − ½))² / (1 − ties). Infinite for q = ½ or ties ≥ 1.
pub fn users_sign_test(q: f64, ties: f64, alpha: f64, power: f64) -> f64 {
    if q == 0.5 || ties >= 1.0 {
        return f64::INFINITY;
    }
    let za = normal_quantile(1.0 - alpha / 2.0);
    let zb = normal_quantile(power);
    let decided = ((za * 0.5 + zb * (q * (1.0 - q)).sqrt()) / (q - 0.5)).powi(2);
    (decided / (1.0 - ties)).ceil()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_sample_sizes() {
        // σ = 1, δ = 0.1, α = 0.05, 80% power: (1.959964 + 0.841621)² · 2 / 0.01 = 1569.8 → 1570.
        assert_eq!(users_per_arm(1.0, 1.0, 0.1, 0.05, 0.8), 1570.0);
        // Half the effect needs four times the users (up to rounding).
        assert_eq!(users_per_arm(1.0, 1.0, 0.05, 0.05, 0.8), 6280.0);
        // One sample: (1.959964 + 0.841621)² / 0.01 = 784.9 → 785.
        assert_eq!(users_one_sample(1.0, 0.1, 0.05, 0.8), 785.0);
        assert_eq!(users_per_arm(1.0, 1.0, 0.0, 0.05, 0.8), f64::INFINITY);
        // Sign test, q = 0.6: ((1.959964·½ + 0.841621·√0.24) / 0.1)² = 193.85 → 194; with half
        // the users tied, 387.69 → 388.
        assert_eq!(users_sign_test(0.6, 0.0, 0.05, 0.8), 194.0);
        assert_eq!(users_sign_test(0.6, 0.5, 0.05, 0.8), 388.0);
        assert_eq!(users_sign_test(0.4, 0.0, 0.05, 0.8), 194.0);
        assert_eq!(users_sign_test(0.5, 0.0, 0.05, 0.8), f64::INFINITY);
    }
}
