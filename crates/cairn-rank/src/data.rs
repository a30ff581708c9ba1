use crate::error::RankError;

/// Labels above this would make the `2^label - 1` gain of NDCG meaningless in f32/f64 arithmetic.
pub const MAX_LABEL: f32 = 31.0;

/// Rows grouped by request: each group is one user's candidate list.
///
/// `features` is row-major (`row * n_features + feature`). NaN means "missing"; infinite values are
/// rejected at fit time. Labels are relevance grades (0 = not relevant), finite and in `[0, 31]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RankingData {
    pub n_features: usize,
    pub features: Vec<f32>,
    pub labels: Vec<f32>,
    pub group_sizes: Vec<usize>,
}

impl RankingData {
    pub fn new(n_features: usize) -> Self {
        Self {
            n_features,
            ..Self::default()
        }
    }

    /// Appends one group; `rows` holds `labels.len()` rows of `n_features` values each.
    pub fn push_group(&mut self, rows: &[f32], labels: &[f32]) -> Result<(), RankError> {
        if self.n_features == 0 {
            return Err(RankError::NoFeatures);
        }
        if labels.is_empty() {
            return Err(RankError::EmptyGroup {
                group: self.group_sizes.len(),
            });
        }
        let expected = labels.len() * self.n_features;
        if rows.len() != expected {
            return Err(RankError::LengthMismatch {
                what: "push_group rows",
                expected,
                actual: rows.len(),
            });
        }
        self.features.extend_from_slice(rows);
        self.labels.extend_from_slice(labels);
        self.group_sizes.push(labels.len());
        Ok(())
    }

    pub fn n_rows(&self) -> usize {
        self.labels.len()
    }

    pub fn n_groups(&self) -> usize {
        self.group_sizes.len()
    }

    /// Start offset of every group, plus the total row count at the end.
    pub fn group_offsets(&self) -> Vec<usize> {
        let mut offsets = Vec::with_capacity(self.group_sizes.len() + 1);
        let mut at = 0;
        offsets.push(0);
        for &size in &self.group_sizes {
            at += size;
            offsets.push(at);
        }
        offsets
    }

    /// The checks `Ranker::fit` needs before it can index freely.
    pub fn validate(&self, what: &'static str) -> Result<(), RankError> {
        if self.n_features == 0 {
            return Err(RankError::NoFeatures);
        }
        if self.labels.is_empty() || self.group_sizes.is_empty() {
            return Err(RankError::EmptyData(what));
        }
        if let Some(group) = self.group_sizes.iter().position(|&s| s == 0) {
            return Err(RankError::EmptyGroup { group });
        }
        let grouped: usize = self.group_sizes.iter().sum();
        if grouped != self.labels.len() {
            return Err(RankError::LengthMismatch {
                what: "sum of group_sizes vs labels",
                expected: self.labels.len(),
                actual: grouped,
            });
        }
        let expected = self.labels.len() * self.n_features;
        if self.features.len() != expected {
            return Err(RankError::LengthMismatch {
                what: "features (rows × n_features)",
                expected,
                actual: self.features.len(),
            });
        }
        if let Some(row) = self
            .labels
            .iter()
            .position(|l| !(l.is_finite() && (0.0..=MAX_LABEL).contains(l)))
        {
            return Err(RankError::BadLabel {
                row,
                value: self.labels[row],
                max: MAX_LABEL,
            });
        }
        if let Some(at) = self.features.iter().position(|v| v.is_infinite()) {
            return Err(RankError::InfiniteFeature {
                row: at / self.n_features,
                feature: at % self.n_features,
                value: self.features[at],
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_group_builds_row_major_data() {
        let mut data = RankingData::new(2);
        data.push_group(&[1.0, 2.0, 3.0, 4.0], &[1.0, 0.0]).unwrap();
        data.push_group(&[5.0, 6.0], &[0.0]).unwrap();
        assert_eq!(data.n_rows(), 3);
        assert_eq!(data.group_sizes, vec![2, 1]);
        assert_eq!(data.group_offsets(), vec![0, 2, 3]);
        assert_eq!(data.features, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        data.validate("train").unwrap();
    }

    #[test]
    fn push_group_rejects_wrong_lengths_and_empty_groups() {
        let mut data = RankingData::new(2);
        assert!(matches!(
            data.push_group(&[1.0, 2.0, 3.0], &[1.0, 0.0]),
            Err(RankError::LengthMismatch { .. })
        ));
        assert!(matches!(
            data.push_group(&[], &[]),
            Err(RankError::EmptyGroup { group: 0 })
        ));
        assert!(matches!(
            RankingData::new(0).push_group(&[], &[1.0]),
            Err(RankError::NoFeatures)
        ));
        assert_eq!(data.n_rows(), 0);
    }

    #[test]
    fn validate_catches_inconsistent_public_fields() {
        let good = RankingData {
            n_features: 1,
            features: vec![0.5, f32::NAN],
            labels: vec![1.0, 0.0],
            group_sizes: vec![2],
        };
        good.validate("train").unwrap();

        let mut bad = good.clone();
        bad.group_sizes = vec![1];
        assert!(matches!(
            bad.validate("t"),
            Err(RankError::LengthMismatch { .. })
        ));

        let mut bad = good.clone();
        bad.features[1] = f32::INFINITY;
        assert!(matches!(
            bad.validate("t"),
            Err(RankError::InfiniteFeature {
                row: 1,
                feature: 0,
                ..
            })
        ));

        let mut bad = good.clone();
        bad.labels[0] = -1.0;
        assert!(matches!(
            bad.validate("t"),
            Err(RankError::BadLabel { row: 0, .. })
        ));

        let mut bad = good.clone();
        bad.labels[1] = f32::NAN;
        assert!(matches!(
            bad.validate("t"),
            Err(RankError::BadLabel { row: 1, .. })
        ));

        let mut bad = good.clone();
        bad.group_sizes = vec![2, 0];
        assert!(matches!(
            bad.validate("t"),
            Err(RankError::EmptyGroup { group: 1 })
        ));

        assert!(matches!(
            RankingData::new(3).validate("train"),
            Err(RankError::EmptyData("train"))
        ));
    }
}
