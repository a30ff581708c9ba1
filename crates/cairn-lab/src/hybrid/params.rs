//! Embedding tables trained by Adagrad, and the small dense kernels the trainer uses. Everything works
//! on preallocated slices: nothing here allocates.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// A row-major table of `rows × dim` weights with one Adagrad accumulator per weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub dim: usize,
    pub weights: Vec<f32>,
    /// Sum of squared gradients (starting at 1, as LightFM does); not needed after training.
    #[serde(skip)]
    accumulators: Vec<f32>,
}

impl Table {
    pub fn random(rows: usize, dim: usize, scale: f32, rng: &mut impl Rng) -> Self {
        let weights = (0..rows * dim)
            .map(|_| (rng.random::<f32>() - 0.5) * scale)
            .collect();
        Table {
            dim,
            weights,
            accumulators: vec![1.0; rows * dim],
        }
    }

    pub fn zeros(rows: usize, dim: usize) -> Self {
        Table {
            dim,
            weights: vec![0.0; rows * dim],
            accumulators: vec![1.0; rows * dim],
        }
    }

    pub fn rows(&self) -> usize {
        self.weights.len().checked_div(self.dim).unwrap_or(0)
    }

    pub fn row(&self, r: usize) -> &[f32] {
        &self.weights[r * self.dim..(r + 1) * self.dim]
    }

    /// Drops the optimizer state once training is over.
    pub fn finish(&mut self) {
        self.accumulators = Vec::new();
    }

    /// One Adagrad step on row `r` with gradient `scale × grad` plus L2 decay.
    #[inline]
    pub fn step(&mut self, r: usize, grad: &[f32], scale: f32, learning_rate: f32, l2: f32) {
        let range = r * self.dim..(r + 1) * self.dim;
        let w = &mut self.weights[range.clone()];
        let acc = &mut self.accumulators[range];
        for ((w, a), &g) in w.iter_mut().zip(acc.iter_mut()).zip(grad) {
            let g = scale * g + l2 * *w;
            *a += g * g;
            *w -= learning_rate * g / a.sqrt();
        }
    }

    /// `out = Σ value × row(col)` over a sparse row.
    #[inline]
    pub fn gather(&self, cols: &[u32], vals: &[f32], out: &mut [f32]) {
        out.iter_mut().for_each(|o| *o = 0.0);
        for (&c, &v) in cols.iter().zip(vals) {
            axpy(v, self.row(c as usize), out);
        }
    }
}

#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent partial sums let the compiler vectorise without reassociation flags.
    let mut acc = [0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for k in 0..8 {
            acc[k] += ca[k] * cb[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline]
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..19).map(|x| x as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|x| 1.0 - x as f32).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-3);
    }

    #[test]
    fn adagrad_step_moves_against_the_gradient() {
        let mut t = Table::zeros(2, 2);
        t.step(1, &[1.0, -1.0], 1.0, 0.1, 0.0);
        assert_eq!(t.row(0), &[0.0, 0.0]);
        let expected = 0.1 / 2f32.sqrt();
        assert!((t.row(1)[0] + expected).abs() < 1e-6);
        assert!((t.row(1)[1] - expected).abs() < 1e-6);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let r = Table::random(3, 4, 0.1, &mut rng);
        assert!(r.weights.iter().all(|w| w.abs() <= 0.05));
    }
}
