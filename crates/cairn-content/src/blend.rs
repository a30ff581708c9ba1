//! Score blending: a weighted sum of several models' scores, each standardised per user (zero mean,
//! unit variance over the items), so that models on different scales (a cosine, a factor model)
//! can be mixed with weights that mean the same thing for every user.

use std::sync::Arc;

use cairn_models::Recommender;

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
}

/// In place: (x - mean) / std; a constant vector becomes zeros.
pub fn standardise(scores: &mut [f32]) {
    if scores.is_empty() {
        return;
    }
    let n = scores.len() as f64;
    let mean = scores.iter().map(|&s| f64::from(s)).sum::<f64>() / n;
    let var = scores
        .iter()
        .map(|&s| (f64::from(s) - mean).powi(2))
        .sum::<f64>()
        / n;
    let std = var.sqrt();
    for s in scores.iter_mut() {
        *s = if std > 0.0 {
            ((f64::from(*s) - mean) / std) as f32
        } else {
            0.0
        };
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
}
