//! Score blending: a weighted sum of several models' scores, each standardised per user (zero mean,
//! unit variance over the items), so that models on different scales (a cosine, a factor model)
//! can be mixed with weights that mean the same thing for every user.
//!
//! Weights can be learned on validation users ([`Blend::learn`]): coordinate ascent over a grid of
//! weights per part, maximising the blended ranking's NDCG@k (history excluded, optionally ranking
//! only a candidate set, as the cold-items protocol does).

use std::sync::Arc;

use cairn_models::blend::search_weights;
pub use cairn_models::blend::{standardise, ValidationUser};
use cairn_models::Recommender;
use rayon::prelude::*;

/// How [`Blend::learn`] searches.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnOptions {
    /// Weights tried for each part.
    pub grid: Vec<f32>,
    /// Passes of coordinate ascent over the parts.
    pub rounds: usize,
    /// The NDCG cut-off that is maximised.
    pub k: usize,
    /// When set, the only items ranked (e.g. the cold items); otherwise every item.
    pub candidates: Option<Vec<u32>>,
}

impl Default for LearnOptions {
    fn default() -> Self {
        LearnOptions {
            grid: vec![0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0],
            rounds: 2,
            k: 100,
            candidates: None,
        }
    }
}

pub struct Blend {
    parts: Vec<(Arc<dyn Recommender>, f32)>,
    n_items: usize,
}

impl Blend {
    /// `parts`: (model, weight). Models must rank the same items; the blend covers the smallest
    /// `n_items` among them.
    pub fn new(parts: Vec<(Arc<dyn Recommender>, f32)>) -> Self {
        let n_items = parts.iter().map(|p| p.0.n_items()).min().unwrap_or(0);
        Blend { parts, n_items }
    }

    /// The parts' weights, in the order given.
    pub fn weights(&self) -> Vec<f32> {
        self.parts.iter().map(|p| p.1).collect()
    }

    /// Learns the weights of `models` on validation users. The first model starts at weight 1 and
    /// the others at 0, so the result is never worse on validation than the first model alone; then
    /// each weight in turn is set to the best grid value with the others fixed, `rounds` times. Ties
    /// keep the earlier setting, so the search is deterministic.
    pub fn learn(
        models: Vec<Arc<dyn Recommender>>,
        validation: &[ValidationUser],
        options: &LearnOptions,
    ) -> Blend {
        let n_items = models.iter().map(|m| m.n_items()).min().unwrap_or(0);
        let candidates: Vec<u32> = match &options.candidates {
            Some(c) => c
                .iter()
                .copied()
                .filter(|&i| (i as usize) < n_items)
                .collect(),
            None => (0..n_items as u32).collect(),
        };
        // Per user and model: standardised scores (over all items, as `score` does) of the
        // candidates, computed once.
        let cached: Vec<Vec<Vec<f32>>> = validation
            .par_iter()
            .map(|(history, _)| {
                models
                    .iter()
                    .map(|m| {
                        let mut full = vec![0f32; m.n_items()];
                        m.score(history, &mut full);
                        full.truncate(n_items);
                        standardise(&mut full);
                        candidates.iter().map(|&i| full[i as usize]).collect()
                    })
                    .collect()
            })
            .collect();
        let weights = search_weights(
            &cached,
            validation,
            &candidates,
            &options.grid,
            options.rounds,
            options.k,
        );
        Blend::new(models.into_iter().zip(weights).collect())
    }
}

impl Recommender for Blend {
    fn name(&self) -> &'static str {
        "blend"
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    fn score(&self, history: &[(u32, f32)], scores: &mut [f32]) {
        let n = self.n_items.min(scores.len());
        scores.iter_mut().for_each(|s| *s = 0.0);
        let mut part = vec![0f32; n];
        for (model, weight) in &self.parts {
            let mut full = vec![0f32; model.n_items()];
            model.score(history, &mut full);
            part.copy_from_slice(&full[..n]);
            standardise(&mut part);
            for (s, p) in scores.iter_mut().zip(&part) {
                *s += weight * p;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_models::top_k;

    struct Fixed(Vec<f32>);

    impl Recommender for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }
        fn n_items(&self) -> usize {
            self.0.len()
        }
        fn score(&self, _: &[(u32, f32)], scores: &mut [f32]) {
            scores.copy_from_slice(&self.0);
        }
    }

    #[test]
    fn standardised_parts_are_weighted() {
        let a: Arc<dyn Recommender> = Arc::new(Fixed(vec![0.0, 1.0, 2.0]));
        let b: Arc<dyn Recommender> = Arc::new(Fixed(vec![200.0, 100.0, 0.0]));
        let blend = Blend::new(vec![(a.clone(), 1.0), (b.clone(), 1.0)]);
        let mut s = vec![0f32; 3];
        blend.score(&[], &mut s);
        // Opposite orders with equal weights cancel, whatever the scales.
        assert!(s.iter().all(|x| x.abs() < 1e-5), "{s:?}");
        let blend = Blend::new(vec![(a, 2.0), (b, 1.0)]);
        blend.score(&[], &mut s);
        assert!(s[2] > s[1] && s[1] > s[0]);
    }

    fn two_models() -> (Arc<dyn Recommender>, Arc<dyn Recommender>) {
        // The first model prefers the low items, the second the high ones.
        let low = Fixed((0..10).map(|i| 10.0 - i as f32).collect());
        let high = Fixed((0..10).map(|i| i as f32).collect());
        (Arc::new(low), Arc::new(high))
    }

    #[test]
    fn learning_moves_weight_to_the_model_that_finds_the_targets() {
        let (low, high) = two_models();
        let validation: Vec<ValidationUser> = vec![(vec![], vec![9, 8]), (vec![(9, 1.0)], vec![8])];
        let options = LearnOptions {
            k: 2,
            ..LearnOptions::default()
        };
        let blend = Blend::learn(vec![low, high], &validation, &options);
        let w = blend.weights();
        assert!(w[1] > w[0], "{w:?}");
        let mut s = vec![0f32; 10];
        blend.score(&[], &mut s);
        let best = top_k(&s, 2, |_| false);
        assert_eq!(best.iter().map(|b| b.0).collect::<Vec<_>>(), vec![9, 8]);
    }

    #[test]
    fn learning_keeps_the_first_model_when_it_is_already_best() {
        let (low, high) = two_models();
        let validation: Vec<ValidationUser> = vec![(vec![], vec![0]), (vec![], vec![1])];
        let blend = Blend::learn(vec![low, high], &validation, &LearnOptions::default());
        assert_eq!(blend.weights()[0], 1.0);
        assert!(blend.weights()[1] < 1.0, "{:?}", blend.weights());
    }

    #[test]
    fn learning_ranks_only_the_candidates() {
        // Among candidates {2, 3} a model preferring low items ranks the target 2 first, although the
        // high-preferring first model wins over all items. (Squares keep the two from cancelling.)
        let high: Arc<dyn Recommender> = Arc::new(Fixed((0..10).map(|i| i as f32).collect()));
        let low: Arc<dyn Recommender> = Arc::new(Fixed(
            (0..10).map(|i| ((10 - i) * (10 - i)) as f32).collect(),
        ));
        let validation: Vec<ValidationUser> = vec![(vec![], vec![2])];
        let options = LearnOptions {
            k: 1,
            candidates: Some(vec![2, 3]),
            ..LearnOptions::default()
        };
        let blend = Blend::learn(vec![high, low], &validation, &options);
        assert!(blend.weights()[1] > 0.0, "{:?}", blend.weights());
        let mut s = vec![0f32; 10];
        blend.score(&[], &mut s);
        assert!(s[2] > s[3], "{s:?}");
    }
}
