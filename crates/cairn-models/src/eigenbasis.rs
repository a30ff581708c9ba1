//! The eigenbasis of a factor matrix's Gram matrix, for implicit ALS with conjugate gradient.
//!
//! Every CG step of a row multiplies by `YᵀY + λI`; with `YᵀY = Q Λ Qᵀ` and both sides' factors
//! rotated by the orthogonal `Q` (`Y ← YQ`, `X ← XQ`), every score `x·y` is unchanged, CG's iterates
//! are the rotated iterates (CG only uses inner products, which `Q` preserves), and the product
//! becomes the diagonal `(Λ + λ) ∘ p`: k multiplications instead of a k² matrix–vector product
//! that streams the k × k matrix from L2 four times per row. The rotations themselves are two
//! matrix products per half-step, run as blocked GEMMs.

use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd::{self_adjoint_evd, self_adjoint_evd_scratch, ComputeEigenvectors};
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

/// Rows per GEMM when rotating: a fixed size, so the result does not depend on the thread count.
const ROTATE_ROWS: usize = 2048;

pub struct EigenBasis {
    k: usize,
    /// Row-major `k × k`; column j is the eigenvector of `eigenvalues[j]`.
    q: Vec<f32>,
    /// Λ, clamped at zero (a Gram matrix has no negative eigenvalue; rounding may make one).
    pub eigenvalues: Vec<f32>,
}

impl EigenBasis {
    /// The eigendecomposition of the symmetric row-major `k × k` matrix `gram`, computed in f64
    /// on one thread (deterministic); `None` when it has a non-finite value or does not converge.
    pub fn of_gram(gram: &[f32], k: usize) -> Option<Self> {
        if k == 0 || gram.len() != k * k || gram.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let a = Mat::<f64>::from_fn(k, k, |r, c| gram[r * k + c] as f64);
        let mut u = Mat::<f64>::zeros(k, k);
        let mut s = Diag::<f64>::zeros(k);
        let par = Par::Seq;
        let mut mem = MemBuffer::new(self_adjoint_evd_scratch::<f64>(
            k,
            ComputeEigenvectors::Yes,
            par,
            Default::default(),
        ));
        self_adjoint_evd(
            a.as_ref(),
            s.as_mut(),
            Some(u.as_mut()),
            par,
            MemStack::new(&mut mem),
            Default::default(),
        )
        .ok()?;
        let mut q = vec![0f32; k * k];
        for r in 0..k {
            for c in 0..k {
                q[r * k + c] = u[(r, c)] as f32;
            }
        }
        let eigenvalues: Vec<f32> = s
            .column_vector()
            .iter()
            .map(|&v| v.max(0.0) as f32)
            .collect();
        if q.iter().chain(&eigenvalues).any(|v| !v.is_finite()) {
            return None;
        }
        Some(EigenBasis { k, q, eigenvalues })
    }

    /// `rows ← rows · Q` for a row-major `n × k` matrix.
    pub fn rotate(&self, rows: &mut [f32]) {
        let k = self.k;
        let q = MatRef::from_row_major_slice(&self.q, k, k);
        rows.par_chunks_mut(ROTATE_ROWS * k).for_each_init(
            || vec![0f32; ROTATE_ROWS * k],
            |copy, block| {
                let n = block.len() / k;
                copy[..block.len()].copy_from_slice(block);
                let lhs = MatRef::from_row_major_slice(&copy[..block.len()], n, k);
                let dst = MatMut::from_row_major_slice_mut(block, n, k);
                faer::linalg::matmul::matmul(dst, Accum::Replace, lhs, q, 1.0f32, Par::Seq);
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::gram;
    use proptest::prelude::*;

    fn matrix(rows: usize, k: usize, seed: u32) -> Vec<f32> {
        (0..rows * k)
            .map(|v| {
                ((v as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 500.0 - 1.0
            })
            .collect()
    }

    proptest! {
        #[test]
        fn rotation_diagonalises_the_gram_and_keeps_inner_products(
            rows in 1usize..300,
            k in 1usize..40,
            seed in 0u32..1000,
        ) {
            let mut y = matrix(rows, k, seed);
            let mut x = matrix(7, k, seed ^ 0x5555);
            let scores = |x: &[f32], y: &[f32]| -> Vec<f32> {
                x.chunks(k)
                    .flat_map(|a| y.chunks(k).map(move |b| a.iter().zip(b).map(|(p, q)| p * q).sum::<f32>()))
                    .collect()
            };
            let before = scores(&x, &y);
            let g = gram(&y, k);
            let basis = EigenBasis::of_gram(&g, k).unwrap();
            basis.rotate(&mut y);
            basis.rotate(&mut x);
            let after = scores(&x, &y);
            let scale = g.iter().fold(1f32, |m, v| m.max(v.abs()));
            for (a, b) in before.iter().zip(&after) {
                prop_assert!((a - b).abs() < 1e-4 * (k as f32), "{a} vs {b}");
            }
            let g2 = gram(&y, k);
            for r in 0..k {
                for c in 0..k {
                    let want = if r == c { basis.eigenvalues[r] } else { 0.0 };
                    prop_assert!((g2[r * k + c] - want).abs() < 1e-4 * scale, "({r},{c}) {} vs {want}", g2[r * k + c]);
                }
            }
        }
    }

    #[test]
    fn non_finite_gram_has_no_basis() {
        assert!(EigenBasis::of_gram(&[1.0, f32::NAN, f32::NAN, 1.0], 2).is_none());
        assert!(EigenBasis::of_gram(&[], 0).is_none());
    }

    #[test]
    fn rotation_is_deterministic_across_thread_counts() {
        let y = matrix(5000, 24, 3);
        let basis = EigenBasis::of_gram(&gram(&y, 24), 24).unwrap();
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut m = y.clone();
            pool.install(|| basis.rotate(&mut m));
            m
        };
        assert_eq!(run(1), run(3));
    }
}
