//! Rating-prediction errors over test pairs (not per user).

/// sqrt(mean((prediction − truth)²)); `None` for no pairs.
pub fn rmse(pairs: &[(f64, f64)]) -> Option<f64> {
    (!pairs.is_empty()).then(|| {
        (pairs.iter().map(|(p, t)| (p - t) * (p - t)).sum::<f64>() / pairs.len() as f64).sqrt()
    })
}

/// mean(|prediction − truth|); `None` for no pairs.
pub fn mae(pairs: &[(f64, f64)]) -> Option<f64> {
    (!pairs.is_empty())
        .then(|| pairs.iter().map(|(p, t)| (p - t).abs()).sum::<f64>() / pairs.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_values() {
        let pairs = [(3.0, 2.0), (4.0, 4.0), (5.0, 3.0)];
        assert!((rmse(&pairs).unwrap() - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(mae(&pairs), Some(1.0));
        assert_eq!(rmse(&[]), None);
    }
}
