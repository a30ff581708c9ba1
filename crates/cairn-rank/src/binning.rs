//! Quantile binning of raw feature values into at most 255 `u8` bins per feature.
//!
//! Bin 0 of every feature holds missing values (NaN). Bins `1..` hold present values in increasing
//! order: with cut points `c_0 < c_1 < …`, a value `x` lands in bin `1 + #{c_i < x}`, so "bin ≤ b"
//! is exactly "x ≤ c_{b-1}" and a split found on bins can be stored as a raw `f32` threshold.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Rows used to find quantiles; enough for 254 cut points, cheap to sort.
const QUANTILE_SAMPLE_ROWS: usize = 200_000;

pub(crate) struct FeatureBins {
    /// Cut points between consecutive present-value bins.
    pub cuts: Vec<f32>,
}

impl FeatureBins {
    /// Bins including the missing-value bin 0.
    pub fn n_bins(&self) -> usize {
        self.cuts.len() + 2
    }

    #[inline]
    pub fn bin(&self, value: f32) -> u8 {
        if value.is_nan() {
            0
        } else {
            (1 + self.cuts.partition_point(|&c| c < value)) as u8
        }
    }

    /// Raw threshold equivalent to "bin ≤ `bin`" for a present-value bin that has a cut above it.
    pub fn threshold(&self, bin: usize) -> f32 {
        self.cuts[bin - 1]
    }
}

/// A point `m` with `low ≤ m < high`, as close to the middle as f32 allows, so that unseen values
/// between two training values go to the nearer side.
fn cut_between(low: f32, high: f32) -> f32 {
    let mid = (low as f64 + (high as f64 - low as f64) * 0.5) as f32;
    if mid >= low && mid < high {
        mid
    } else {
        low
    }
}

/// Cut points for one feature from its present (non-NaN) sampled values, sorted ascending.
fn cuts_from_sorted(values: &[f32], max_present_bins: usize) -> Vec<f32> {
    let mut distinct: Vec<(f32, usize)> = Vec::new();
    for &v in values {
        match distinct.last_mut() {
            Some((last, count)) if *last == v => *count += 1,
            _ => distinct.push((v, 1)),
        }
    }
    if distinct.len() <= max_present_bins {
        return distinct
            .windows(2)
            .map(|w| cut_between(w[0].0, w[1].0))
            .collect();
    }
    // Greedy equal-frequency: close a bin once it holds its share of what is left, so a heavy value
    // gets a bin of its own and the remaining bins spread over the rest.
    let mut cuts = Vec::with_capacity(max_present_bins - 1);
    let mut remaining = values.len();
    let mut in_bin = 0usize;
    for i in 0..distinct.len() - 1 {
        let bins_left = max_present_bins - cuts.len();
        if bins_left <= 1 {
            break;
        }
        in_bin += distinct[i].1;
        let target = remaining as f64 / bins_left as f64;
        let next = distinct[i + 1].1 as f64;
        // Close here if full, or if adding the next value would overshoot more than stopping short.
        if in_bin as f64 >= target || (in_bin as f64 + next - target) > (target - in_bin as f64) {
            cuts.push(cut_between(distinct[i].0, distinct[i + 1].0));
            remaining -= in_bin;
            in_bin = 0;
        }
    }
    cuts
}

/// Rows chosen for quantile estimation: all of them when few, else a seeded sample.
fn sample_rows(n_rows: usize, seed: u64) -> Vec<usize> {
    if n_rows <= QUANTILE_SAMPLE_ROWS {
        return (0..n_rows).collect();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_b105);
    let mut rows = rand::seq::index::sample(&mut rng, n_rows, QUANTILE_SAMPLE_ROWS).into_vec();
    rows.sort_unstable();
    rows
}

/// Quantile cut points for every feature of row-major `features`.
pub(crate) fn fit_bins(
    features: &[f32],
    n_features: usize,
    max_bins: usize,
    seed: u64,
) -> Vec<FeatureBins> {
    let n_rows = features.len() / n_features;
    let rows = sample_rows(n_rows, seed);
    (0..n_features)
        .into_par_iter()
        .map(|f| {
            let mut values: Vec<f32> = rows
                .iter()
                .map(|&r| features[r * n_features + f])
                .filter(|v| !v.is_nan())
                .collect();
            values.sort_unstable_by(f32::total_cmp);
            FeatureBins {
                cuts: cuts_from_sorted(&values, max_bins - 1),
            }
        })
        .collect()
}

/// Column-major binned matrix: `column(f)[row]` is the bin of feature `f` in `row`.
pub(crate) struct BinnedMatrix {
    pub n_rows: usize,
    data: Vec<u8>,
}

impl BinnedMatrix {
    pub fn build(features: &[f32], n_features: usize, bins: &[FeatureBins]) -> Self {
        let n_rows = features.len() / n_features;
        let mut data = vec![0u8; n_rows * n_features];
        data.par_chunks_mut(n_rows.max(1))
            .zip(bins.par_iter())
            .enumerate()
            .for_each(|(f, (column, feature_bins))| {
                for (row, slot) in column.iter_mut().enumerate() {
                    *slot = feature_bins.bin(features[row * n_features + f]);
                }
            });
        Self { n_rows, data }
    }

    #[inline]
    pub fn column(&self, feature: usize) -> &[u8] {
        &self.data[feature * self.n_rows..(feature + 1) * self.n_rows]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_distinct_values_get_one_bin_each_and_thresholds_agree_with_bins() {
        let features = [3.0, 1.0, 2.0, 1.0, f32::NAN, 3.0];
        let bins = fit_bins(&features, 1, 255, 0);
        let b = &bins[0];
        assert_eq!(b.cuts, vec![1.5, 2.5]);
        assert_eq!(b.n_bins(), 4);
        assert_eq!(b.bin(f32::NAN), 0);
        assert_eq!(b.bin(1.0), 1);
        assert_eq!(b.bin(2.0), 2);
        assert_eq!(b.bin(3.0), 3);
        assert_eq!(b.bin(-10.0), 1);
        assert_eq!(b.bin(10.0), 3);
        for split_bin in 1..b.n_bins() - 1 {
            for v in [-1.0, 1.0, 1.5, 1.7, 2.0, 2.5, 3.0, 4.0] {
                assert_eq!(b.bin(v) as usize <= split_bin, v <= b.threshold(split_bin));
            }
        }
    }

    #[test]
    fn many_values_respect_max_bins_and_balance_counts() {
        let features: Vec<f32> = (0..10_000).map(|i| (i as f32 * 0.37).sin()).collect();
        let bins = fit_bins(&features, 1, 16, 0);
        let b = &bins[0];
        assert!(b.n_bins() <= 16, "{}", b.n_bins());
        assert!(b.cuts.windows(2).all(|w| w[0] < w[1]));
        let mut counts = vec![0usize; b.n_bins()];
        for &v in &features {
            counts[b.bin(v) as usize] += 1;
        }
        let present = &counts[1..];
        let (min, max) = (present.iter().min().unwrap(), present.iter().max().unwrap());
        assert!(*max < 2 * *min + 50, "unbalanced bins {present:?}");
    }

    #[test]
    fn heavy_value_gets_its_own_bin() {
        let mut features = vec![0.0f32; 5_000];
        features.extend((0..5_000).map(|i| 1.0 + i as f32));
        let bins = fit_bins(&features, 1, 8, 0);
        let b = &bins[0];
        assert_eq!(b.bin(0.0), 1);
        assert!(b.bin(1.0) > 1);
    }

    #[test]
    fn constant_and_all_missing_features_have_no_cut() {
        let features = [1.0, f32::NAN, 1.0, f32::NAN, 1.0, f32::NAN];
        let bins = fit_bins(&features, 2, 255, 0);
        assert!(bins[0].cuts.is_empty());
        assert!(bins[1].cuts.is_empty());
        let m = BinnedMatrix::build(&features, 2, &bins);
        assert_eq!(m.column(0), &[1, 1, 1]);
        assert_eq!(m.column(1), &[0, 0, 0]);
    }
}
