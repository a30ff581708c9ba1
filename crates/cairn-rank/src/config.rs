use serde::{Deserialize, Serialize};

use crate::error::RankError;

/// Hyper-parameters of [`crate::Ranker::fit`]. Names follow LightGBM where they mean the same thing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RankerConfig {
    /// Boosting rounds (upper bound when early stopping is on).
    pub trees: usize,
    /// Shrinkage applied to every leaf value.
    pub learning_rate: f32,
    /// Leaves per tree; trees grow best-first until this many leaves or no split gains.
    pub max_leaves: usize,
    /// Fewest rows a leaf may hold.
    pub min_data_in_leaf: usize,
    /// Smallest sum of hessians a leaf may hold; keeps Newton steps finite.
    pub min_sum_hessian: f32,
    /// L2 penalty on leaf values (added to the hessian sum).
    pub l2: f32,
    /// Histogram bins per feature including the missing-value bin, 4..=255.
    pub max_bins: usize,
    /// Truncation of NDCG both in the LambdaRank objective and in early stopping.
    pub ndcg_at: usize,
    /// Fraction of features each tree may split on, drawn per tree from `seed`; (0, 1].
    pub feature_fraction: f32,
    /// Stop when validation NDCG@`ndcg_at` has not improved for this many rounds; the model keeps the
    /// best round's trees. Ignored when `fit` gets no validation data.
    pub early_stopping_rounds: Option<usize>,
    pub seed: u64,
}

impl Default for RankerConfig {
    fn default() -> Self {
        Self {
            trees: 200,
            learning_rate: 0.1,
            max_leaves: 31,
            min_data_in_leaf: 20,
            min_sum_hessian: 1e-3,
            l2: 0.0,
            max_bins: 255,
            ndcg_at: 10,
            feature_fraction: 1.0,
            early_stopping_rounds: None,
            seed: 42,
        }
    }
}

impl RankerConfig {
    pub fn validate(&self) -> Result<(), RankError> {
        let bad = |msg: String| Err(RankError::BadConfig(msg));
        if self.trees == 0 {
            return bad("trees must be at least 1".into());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!(
                "learning_rate must be > 0, got {}",
                self.learning_rate
            ));
        }
        if self.max_leaves < 2 {
            return bad(format!(
                "max_leaves must be at least 2, got {}",
                self.max_leaves
            ));
        }
        if self.min_data_in_leaf == 0 {
            return bad("min_data_in_leaf must be at least 1".into());
        }
        if !(self.min_sum_hessian.is_finite() && self.min_sum_hessian >= 0.0) {
            return bad(format!(
                "min_sum_hessian must be >= 0, got {}",
                self.min_sum_hessian
            ));
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return bad(format!("l2 must be >= 0, got {}", self.l2));
        }
        if self.min_sum_hessian == 0.0 && self.l2 == 0.0 {
            return bad(
                "min_sum_hessian and l2 cannot both be 0 (leaf values would divide by 0)".into(),
            );
        }
        if !(4..=255).contains(&self.max_bins) {
            return bad(format!(
                "max_bins must be in 4..=255, got {}",
                self.max_bins
            ));
        }
        if self.ndcg_at == 0 {
            return bad("ndcg_at must be at least 1".into());
        }
        if !(self.feature_fraction > 0.0 && self.feature_fraction <= 1.0) {
            return bad(format!(
                "feature_fraction must be in (0, 1], got {}",
                self.feature_fraction
            ));
        }
        if self.early_stopping_rounds == Some(0) {
            return bad("early_stopping_rounds must be at least 1 when set".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_serde_fills_missing_fields() {
        RankerConfig::default().validate().unwrap();
        let parsed: RankerConfig = serde_json::from_str(r#"{"trees": 50, "seed": 7}"#).unwrap();
        assert_eq!(parsed.trees, 50);
        assert_eq!(parsed.seed, 7);
        assert_eq!(parsed.max_leaves, RankerConfig::default().max_leaves);
        assert!(serde_json::from_str::<RankerConfig>(r#"{"tres": 50}"#).is_err());
    }

    #[test]
    fn each_bad_field_is_rejected() {
        let cases: Vec<fn(&mut RankerConfig)> = vec![
            |c| c.trees = 0,
            |c| c.learning_rate = 0.0,
            |c| c.learning_rate = f32::NAN,
            |c| c.max_leaves = 1,
            |c| c.min_data_in_leaf = 0,
            |c| c.min_sum_hessian = -1.0,
            |c| c.l2 = f32::INFINITY,
            |c| {
                c.l2 = 0.0;
                c.min_sum_hessian = 0.0
            },
            |c| c.max_bins = 3,
            |c| c.max_bins = 256,
            |c| c.ndcg_at = 0,
            |c| c.feature_fraction = 0.0,
            |c| c.feature_fraction = 1.5,
            |c| c.early_stopping_rounds = Some(0),
        ];
        for (i, mutate) in cases.into_iter().enumerate() {
            let mut config = RankerConfig::default();
            mutate(&mut config);
            assert!(
                matches!(config.validate(), Err(RankError::BadConfig(_))),
                "case {i} accepted: {config:?}"
            );
        }
    }
}
