//! Time-decayed popularity: each interaction counts its strength, halved every `half_life` seconds
//! before the reference time. A long half-life gives plain all-time popularity.

use serde::{Deserialize, Serialize};

use crate::{Recommender, TimedInteraction};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Popularity {
    pub scores: Vec<f32>,
}

impl Popularity {
    /// `now` is the reference time, usually the newest event's; `half_life_secs <= 0` disables decay.
    pub fn fit(n_items: usize, events: &[TimedInteraction], now: i64, half_life_secs: f64) -> Self {
        let mut scores = vec![0f64; n_items];
        for &(item, strength, ts) in events {
            if strength <= 0.0 {
                continue;
            }
            let decay = if half_life_secs > 0.0 {
                let age = (now - ts).max(0) as f64;
                (-age / half_life_secs * std::f64::consts::LN_2).exp()
            } else {
                1.0
            };
            scores[item as usize] += strength as f64 * decay;
        }
        Popularity {
            scores: scores.into_iter().map(|s| s as f32).collect(),
        }
    }

    /// Plain counts of users per item, from the interaction matrix.
    pub fn from_matrix(m: &cairn_core::CsrMatrix) -> Self {
        let mut scores = vec![0f32; m.n_cols];
        for &c in &m.indices {
            scores[c as usize] += 1.0;
        }
        Popularity { scores }
    }
}

impl Recommender for Popularity {
    fn name(&self) -> &'static str {
        "popularity"
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
    fn recent_interactions_weigh_more() {
        let day = 86_400;
        let events = [(0, 1.0, 0), (0, 1.0, 0), (1, 1.0, 10 * day)];
        let p = Popularity::fit(2, &events, 10 * day, day as f64);
        assert!(p.scores[1] > p.scores[0]);
        let p = Popularity::fit(2, &events, 10 * day, 0.0);
        assert_eq!(p.scores, vec![2.0, 1.0]);
    }
}
