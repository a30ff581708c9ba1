//! Attribute-to-factor mapping (Gantner et al. 2010): after training, a ridge regression from the
//! warm items' feature rows to their full learned embeddings (identity part included). Applied to a
//! cold item's features, it predicts the embedding the item would have had with interactions, which
//! carries more collaborative signal than the item's raw feature sum.
//!
//! Solved by conjugate gradients on the normal equations `(XᵀX + λI) W = XᵀY`, all output columns
//! at once; X is sparse, so an iteration costs two passes over its non-zeros.

use cairn_core::CsrMatrix;
use rayon::prelude::*;

/// `W` (`x.n_cols × k`, row-major) minimising `‖X W − Y‖² + λ‖W‖²`; `y` is `x.n_rows × k`.
pub fn ridge(x: &CsrMatrix, y: &[f32], k: usize, lambda: f32, iterations: usize) -> Vec<f32> {
    let n_features = x.n_cols;
    let xt = x.transpose();
    let mut b = vec![0f32; n_features * k];
    mul_t(&xt, y, k, &mut b);
    let mut w = vec![0f32; n_features * k];
    let mut r = b;
    let mut p = r.clone();
    let mut rs = column_dots(&r, &r, k);
    let mut xp = vec![0f32; x.n_rows * k];
    let mut ap = vec![0f32; n_features * k];
    for _ in 0..iterations {
        mul(x, &p, k, &mut xp);
        mul_t(&xt, &xp, k, &mut ap);
        for (a, q) in ap.iter_mut().zip(&p) {
            *a += lambda * q;
        }
        let pap = column_dots(&p, &ap, k);
        let alpha: Vec<f32> = rs
            .iter()
            .zip(&pap)
            .map(|(r, q)| if *q > 0.0 { r / q } else { 0.0 })
            .collect();
        for (row_w, (row_r, (row_p, row_ap))) in w
            .chunks_mut(k)
            .zip(r.chunks_mut(k).zip(p.chunks(k).zip(ap.chunks(k))))
        {
            for c in 0..k {
                row_w[c] += alpha[c] * row_p[c];
                row_r[c] -= alpha[c] * row_ap[c];
            }
        }
        let rs_new = column_dots(&r, &r, k);
        let beta: Vec<f32> = rs_new
            .iter()
            .zip(&rs)
            .map(|(n, o)| if *o > 0.0 { n / o } else { 0.0 })
            .collect();
        for (row_p, row_r) in p.chunks_mut(k).zip(r.chunks(k)) {
            for c in 0..k {
                row_p[c] = row_r[c] + beta[c] * row_p[c];
            }
        }
        rs = rs_new;
        if rs.iter().all(|v| *v < 1e-12) {
            break;
        }
    }
    w
}

/// out (m.n_rows × k) = M v, v is m.n_cols × k.
fn mul(m: &CsrMatrix, v: &[f32], k: usize, out: &mut [f32]) {
    out.par_chunks_mut(k).enumerate().for_each(|(r, o)| {
        o.iter_mut().for_each(|x| *x = 0.0);
        let (cols, vals) = m.row(r);
        for (&c, &a) in cols.iter().zip(vals) {
            let src = &v[c as usize * k..(c as usize + 1) * k];
            for (o, s) in o.iter_mut().zip(src) {
                *o += a * s;
            }
        }
    });
}

/// out = Mᵀ v given `mt` = Mᵀ in CSR.
fn mul_t(mt: &CsrMatrix, v: &[f32], k: usize, out: &mut [f32]) {
    mul(mt, v, k, out);
}

fn column_dots(a: &[f32], b: &[f32], k: usize) -> Vec<f32> {
    let mut out = vec![0f32; k];
    for (ra, rb) in a.chunks(k).zip(b.chunks(k)) {
        for c in 0..k {
            out[c] += ra[c] * rb[c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_small_ridge_problem() {
        // X = [[1, 0], [0, 2], [1, 1]], y = X [1, -1] exactly; with tiny λ the solution is [1, -1].
        let x = CsrMatrix::from_triplets(
            3,
            2,
            vec![(0, 0, 1.0), (1, 1, 2.0), (2, 0, 1.0), (2, 1, 1.0)],
        );
        let y = [1.0, -2.0, 0.0];
        let w = ridge(&x, &y, 1, 1e-6, 20);
        assert!(
            (w[0] - 1.0).abs() < 1e-3 && (w[1] + 1.0).abs() < 1e-3,
            "{w:?}"
        );
    }
}
