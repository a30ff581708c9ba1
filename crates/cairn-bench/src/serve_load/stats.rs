//! Latency summaries. Samples are kept whole (microseconds, 4 bytes each: a minute at 10k requests per
//! second is 2.4 MB) and sorted once, so percentiles are exact rather than bucketed.

use serde::Serialize;

/// The nearest-rank percentile of ascending `sorted` samples: the smallest sample with at least
/// `p` percent of the samples at or below it. `None` when there are no samples.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Requests completed inside the measurement window, failed ones included; the percentiles are
    /// over the successful ones.
    pub requests: u64,
    pub errors: u64,
    pub rps: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    /// Summarises successful requests' latencies in microseconds (any order) and a count of failed
    /// ones, measured over `seconds`.
    pub fn new(mut micros: Vec<u32>, errors: u64, seconds: f64) -> LatencySummary {
        micros.sort_unstable();
        let ms = |p: f64| percentile(&micros, p).map_or(f64::NAN, |us| f64::from(us) / 1000.0);
        let requests = micros.len() as u64 + errors;
        let mean_ms = if micros.is_empty() {
            f64::NAN
        } else {
            micros.iter().map(|&u| f64::from(u)).sum::<f64>() / micros.len() as f64 / 1000.0
        };
        LatencySummary {
            requests,
            errors,
            rps: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                f64::NAN
            },
            mean_ms,
            p50_ms: ms(50.0),
            p90_ms: ms(90.0),
            p99_ms: ms(99.0),
            max_ms: ms(100.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nearest_rank_on_a_small_sample() {
        let s = [15, 20, 35, 40, 50];
        assert_eq!(percentile(&s, 5.0), Some(15));
        assert_eq!(percentile(&s, 30.0), Some(20));
        assert_eq!(percentile(&s, 40.0), Some(20));
        assert_eq!(percentile(&s, 50.0), Some(35));
        assert_eq!(percentile(&s, 100.0), Some(50));
        assert_eq!(percentile(&s, 0.0), Some(15));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn p99_of_a_hundred_samples_is_the_99th() {
        let s: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&s, 99.0), Some(99));
        assert_eq!(percentile(&s, 90.0), Some(90));
        assert_eq!(percentile(&s, 50.0), Some(50));
    }

    #[test]
    fn summary_converts_to_milliseconds_and_counts_rate() {
        let s = LatencySummary::new(vec![3000, 1000, 2000, 4000], 1, 2.0);
        assert_eq!(s.requests, 5);
        assert_eq!(s.errors, 1);
        assert_eq!(s.rps, 2.5);
        assert_eq!(s.p50_ms, 2.0);
        assert_eq!(s.max_ms, 4.0);
        assert_eq!(s.mean_ms, 2.5);
        assert!(LatencySummary::new(Vec::new(), 0, 1.0).p99_ms.is_nan());
    }

    proptest! {
        /// The p-th percentile has at least p% of samples at or below it and fewer than p% below it.
        #[test]
        fn percentile_splits_the_sample(mut v in proptest::collection::vec(0u32..1000, 1..200), p in 0.0f64..=100.0) {
            v.sort_unstable();
            let x = percentile(&v, p).unwrap();
            let n = v.len() as f64;
            let at_or_below = v.iter().filter(|&&y| y <= x).count() as f64;
            let below = v.iter().filter(|&&y| y < x).count() as f64;
            prop_assert!(at_or_below >= (p / 100.0 * n).ceil().max(1.0) - 1e-9);
            prop_assert!(below < (p / 100.0 * n).max(1.0));
        }
    }
}
