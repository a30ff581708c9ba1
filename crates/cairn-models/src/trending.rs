//! Trending: items whose recent activity is well above what their longer history predicts.
//!
//! For each item, `recent` is the strength in the last `window` seconds and `expected` is the strength
//! over the preceding `baseline` seconds scaled to the window's length. The score is a Poisson-style
//! z-score `(recent - expected) / sqrt(expected + prior)`, which favours real surges over noise on items
//! with tiny counts.

use serde::{Deserialize, Serialize};

use crate::{Recommender, TimedInteraction};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trending {
    pub scores: Vec<f32>,
}

impl Trending {
    pub fn fit(
        n_items: usize,
        events: &[TimedInteraction],
        now: i64,
        window_secs: i64,
        baseline_secs: i64,
    ) -> Self {
        let window_secs = window_secs.max(1);
        let baseline_secs = baseline_secs.max(1);
        let mut recent = vec![0f64; n_items];
        let mut before = vec![0f64; n_items];
        for &(item, strength, ts) in events {
            if strength <= 0.0 {
                continue;
            }
            let age = now - ts;
            if (0..window_secs).contains(&age) {
                recent[item as usize] += strength as f64;
            } else if (window_secs..window_secs + baseline_secs).contains(&age) {
                before[item as usize] += strength as f64;
            }
        }
        let scale = window_secs as f64 / baseline_secs as f64;
        const PRIOR: f64 = 1.0;
        let scores = recent
            .iter()
            .zip(&before)
            .map(|(&r, &b)| {
                if r <= 0.0 {
                    return 0.0;
                }
                let expected = b * scale;
                ((r - expected) / (expected + PRIOR).sqrt()) as f32
            })
            .collect();
        Trending { scores }
    }
}

impl Recommender for Trending {
    fn name(&self) -> &'static str {
        "trending"
    }

    fn n_items(&self) -> usize {
        self.scores.len()
    }

    fn score(&self, _history: &[(u32, f32)], scores: &mut [f32]) {
        scores.copy_from_slice(&self.scores);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_surge_beats_steady_popularity() {
        let day = 86_400;
        let now = 30 * day;
        let mut events = Vec::new();
        // item 0: steady 10 a day for a month; item 1: quiet, then 10 today.
        for d in 0..30 {
            for _ in 0..10 {
                events.push((0, 1.0, d * day + 5));
            }
        }
        for _ in 0..10 {
            events.push((1, 1.0, now - 100));
        }
        let t = Trending::fit(2, &events, now, day, 14 * day);
        assert!(t.scores[1] > t.scores[0], "{:?}", t.scores);
        assert!(t.scores[1] > 0.0);
    }
}
