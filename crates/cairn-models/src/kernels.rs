//! Small dense f32 kernels for the factor models: dot products, axpy, Gram matrices and a Cholesky
//! solve, written so that the compiler vectorises them (several independent accumulators, fixed-width
//! chunks).
//!
//! Hot loops are compiled twice: once for the baseline target and once with AVX2+FMA, chosen at run
//! time ([`cairn_simd::level`], the one place that decides, which `CAIRN_SIMD` can force). The kernels are generic over [`MulAdd`] so that the AVX2 copy uses fused
//! multiply-adds while the baseline copy uses a plain multiply and add (a `mul_add` without hardware
//! FMA is a slow library call). Results are deterministic on a given machine; the two copies may
//! differ in the last bits.

pub mod block;

pub use block::{BlockOps, CompactBlock, FixedRows};

/// How `a * b + c` is computed inside a kernel.
pub trait MulAdd: Copy + Send + Sync + 'static {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// Separate multiply and add: the portable path.
#[derive(Clone, Copy)]
pub struct Plain;

/// Fused multiply-add: only used inside functions compiled with the `fma` target feature.
#[derive(Clone, Copy)]
pub struct Fused;

impl MulAdd for Plain {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// Runs `$body` (an expression using the type alias `$m: MulAdd`) compiled for the best available
/// instruction set. The body is inlined into a `#[target_feature]` function, so every
/// `#[inline(always)]` kernel it calls is vectorised with AVX2 and FMA.
#[macro_export]
#[doc(hidden)]
macro_rules! dispatch_simd {
    ($m:ident => $body:expr) => {{
        #[cfg(target_arch = "x86_64")]
        {
            let level = $crate::cairn_simd::level();
            if level == $crate::cairn_simd::SimdLevel::Avx512 {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                unsafe fn widest<F: FnOnce() -> R, R>(f: F) -> R {
                    f()
                }
                #[allow(unused_unsafe)]
                // SAFETY: the CPU supports AVX-512F/VL, AVX2 and FMA (checked by cairn_simd::level).
                unsafe {
                    type $m = $crate::kernels::Fused;
                    widest(|| $body)
                }
            } else if level == $crate::cairn_simd::SimdLevel::Avx2Fma {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn fast<F: FnOnce() -> R, R>(f: F) -> R {
                    f()
                }
                #[allow(unused_unsafe)]
                // SAFETY: the CPU supports AVX2 and FMA (checked by cairn_simd::level).
                unsafe {
                    type $m = $crate::kernels::Fused;
                    fast(|| $body)
                }
            } else {
                type $m = $crate::kernels::Plain;
                $body
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            type $m = $crate::kernels::Plain;
            $body
        }
    }};
}

const LANES: usize = 32;

/// Asks the CPU to start loading row `row` of a row-major `k`-column matrix into L1. Factor rows are
/// gathered in an order the hardware prefetcher cannot guess; fetching a few rows ahead hides most of
/// the memory latency. Out-of-range rows are ignored.
#[inline(always)]
pub fn prefetch_row(matrix: &[f32], row: usize, k: usize) {
    let start = row * k;
    if let Some(row) = matrix.get(start..start + k) {
        cairn_simd::prefetch(row);
    }
}

pub use cairn_simd::prefetch_at;

/// How many rows ahead [`prefetch_row`] is called in gather loops.
pub const PREFETCH_AHEAD: usize = 4;

/// `x · y`. Sixteen independent accumulators let the compiler use two vector registers and hide
/// the latency of the adds.
#[inline(always)]
pub fn dot<M: MulAdd>(x: &[f32], y: &[f32]) -> f32 {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let mut acc = [0f32; LANES];
    let mut xc = x.chunks_exact(LANES);
    let mut yc = y.chunks_exact(LANES);
    for (a, b) in (&mut xc).zip(&mut yc) {
        for l in 0..LANES {
            acc[l] = M::mul_add(a[l], b[l], acc[l]);
        }
    }
    let mut tail = 0f32;
    for (a, b) in xc.remainder().iter().zip(yc.remainder()) {
        tail = M::mul_add(*a, *b, tail);
    }
    let mut s = tail;
    for a in acc {
        s += a;
    }
    s
}

/// `y += a * x`.
#[inline(always)]
pub fn axpy<M: MulAdd>(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi = M::mul_add(a, *xi, *yi);
    }
}

/// The dot products of rows `t..t + 4` of a row-major `k`-column matrix with `x`.
#[inline(always)]
fn dots4<M: MulAdd>(a: &[f32], t: usize, x: &[f32]) -> [f32; 4] {
    const W: usize = 16;
    let k = x.len();
    let body = k - k % W;
    let r0 = &a[t * k..(t + 1) * k];
    let r1 = &a[(t + 1) * k..(t + 2) * k];
    let r2 = &a[(t + 2) * k..(t + 3) * k];
    let r3 = &a[(t + 3) * k..(t + 4) * k];
    let (mut a0, mut a1, mut a2, mut a3) = ([0f32; W], [0f32; W], [0f32; W], [0f32; W]);
    let mut c = 0;
    while c < body {
        let xv: &[f32; W] = x[c..c + W].try_into().expect("chunk of W");
        let v0: &[f32; W] = r0[c..c + W].try_into().expect("chunk of W");
        let v1: &[f32; W] = r1[c..c + W].try_into().expect("chunk of W");
        let v2: &[f32; W] = r2[c..c + W].try_into().expect("chunk of W");
        let v3: &[f32; W] = r3[c..c + W].try_into().expect("chunk of W");
        for l in 0..W {
            a0[l] = M::mul_add(v0[l], xv[l], a0[l]);
        }
        for l in 0..W {
            a1[l] = M::mul_add(v1[l], xv[l], a1[l]);
        }
        for l in 0..W {
            a2[l] = M::mul_add(v2[l], xv[l], a2[l]);
        }
        for l in 0..W {
            a3[l] = M::mul_add(v3[l], xv[l], a3[l]);
        }
        c += W;
    }
    let acc = [a0, a1, a2, a3];
    let rows = [r0, r1, r2, r3];
    let mut out = [0f32; 4];
    for q in 0..4 {
        let mut s: f32 = acc[q].iter().sum();
        for cc in body..k {
            s = M::mul_add(rows[q][cc], x[cc], s);
        }
        out[q] = s;
    }
    out
}

/// `y += Σ_q c_q a_{t+q}` over rows `t..t + 4` of a row-major `k`-column matrix (`k = y.len()`).
#[inline(always)]
fn axpy4<M: MulAdd>(a: &[f32], t: usize, c: [f32; 4], y: &mut [f32]) {
    let k = y.len();
    let r0 = &a[t * k..(t + 1) * k];
    let r1 = &a[(t + 1) * k..(t + 2) * k];
    let r2 = &a[(t + 2) * k..(t + 3) * k];
    let r3 = &a[(t + 3) * k..(t + 4) * k];
    for j in 0..k {
        let s = M::mul_add(c[0], r0[j], y[j]);
        let s = M::mul_add(c[1], r1[j], s);
        let s = M::mul_add(c[2], r2[j], s);
        y[j] = M::mul_add(c[3], r3[j], s);
    }
}

/// `out[t] = a_t · x` for the rows of a row-major `out.len() × k` matrix (`k = x.len()`). Four rows
/// at a time share each load of `x` and give four independent accumulator chains.
#[inline(always)]
pub fn gemv<M: MulAdd>(a: &[f32], x: &[f32], out: &mut [f32]) {
    let k = x.len();
    let rows = out.len();
    let mut t = 0;
    while t + 4 <= rows {
        out[t..t + 4].copy_from_slice(&dots4::<M>(a, t, x));
        t += 4;
    }
    while t < rows {
        out[t] = dot::<M>(&a[t * k..(t + 1) * k], x);
        t += 1;
    }
}

/// `y += Σ_t f(t, a_t · x) a_t`: the dot product and the update of each row in one pass, four rows
/// at a time, so that each row is read from memory once (while still in L1) instead of twice.
/// `x` and `y` are different vectors.
#[inline(always)]
pub fn dot_then_axpy<M: MulAdd>(
    a: &[f32],
    x: &[f32],
    y: &mut [f32],
    mut coef: impl FnMut(usize, f32) -> f32,
) {
    let k = x.len();
    let rows = a.len().checked_div(k).unwrap_or(0);
    let mut t = 0;
    while t + 4 <= rows {
        let d = dots4::<M>(a, t, x);
        let c = [
            coef(t, d[0]),
            coef(t + 1, d[1]),
            coef(t + 2, d[2]),
            coef(t + 3, d[3]),
        ];
        axpy4::<M>(a, t, c, y);
        t += 4;
    }
    while t < rows {
        let row = &a[t * k..(t + 1) * k];
        let c = coef(t, dot::<M>(row, x));
        axpy::<M>(c, row, y);
        t += 1;
    }
}

/// `y += Σ_t c_t a_t` over the rows of a row-major `c.len() × k` matrix (`k = y.len()`), four rows
/// per pass over `y`.
#[inline(always)]
pub fn gemv_t<M: MulAdd>(a: &[f32], c: &[f32], y: &mut [f32]) {
    let k = y.len();
    let rows = c.len();
    let mut t = 0;
    while t + 4 <= rows {
        axpy4::<M>(a, t, [c[t], c[t + 1], c[t + 2], c[t + 3]], y);
        t += 4;
    }
    while t < rows {
        axpy::<M>(c[t], &a[t * k..(t + 1) * k], y);
        t += 1;
    }
}

/// `y = A x` for a symmetric row-major `k × k` matrix `A`, computed as `Σ_j x_j A[j, :]` (A = Aᵀ):
/// streaming axpys need no horizontal reductions, unlike one dot product per row.
#[inline(always)]
pub fn symv<M: MulAdd>(a: &[f32], x: &[f32], y: &mut [f32]) {
    y.fill(0.0);
    gemv_t::<M>(a, x, y);
}

/// `YᵀY` of a row-major `n × k` factor matrix, accumulated in f64 over fixed blocks of rows so that
/// the result is the same whatever the number of threads.
pub fn gram(factors: &[f32], k: usize) -> Vec<f32> {
    use rayon::prelude::*;
    if k == 0 {
        return Vec::new();
    }
    const BLOCK_ROWS: usize = 4096;
    let partials: Vec<Vec<f64>> = factors
        .par_chunks(BLOCK_ROWS * k)
        .map(|block| {
            let rows = block.len() / k;
            let m = faer::MatRef::from_row_major_slice(block, rows, k);
            let g: faer::Mat<f32> = m.transpose() * m;
            let mut out = vec![0f64; k * k];
            for r in 0..k {
                for c in 0..k {
                    out[r * k + c] = g[(r, c)] as f64;
                }
            }
            out
        })
        .collect();
    let mut total = vec![0f64; k * k];
    for p in partials {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    total.into_iter().map(|v| v as f32).collect()
}

/// Solves `A x = b` in place for a symmetric positive definite row-major `k × k` matrix, factoring
/// `A` in place (its lower triangle becomes the Cholesky factor) in f64 for robustness. Returns
/// false, leaving `b` untouched, when `A` is not positive definite.
pub fn cholesky_solve(a: &mut [f64], b: &mut [f64], k: usize) -> bool {
    for j in 0..k {
        let mut d = a[j * k + j];
        for p in 0..j {
            d -= a[j * k + p] * a[j * k + p];
        }
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * k + j] = d;
        for i in j + 1..k {
            let mut s = a[i * k + j];
            for p in 0..j {
                s -= a[i * k + p] * a[j * k + p];
            }
            a[i * k + j] = s / d;
        }
    }
    for i in 0..k {
        let mut s = b[i];
        for p in 0..i {
            s -= a[i * k + p] * b[p];
        }
        b[i] = s / a[i * k + i];
    }
    for i in (0..k).rev() {
        let mut s = b[i];
        for p in i + 1..k {
            s -= a[p * k + i] * b[p];
        }
        b[i] = s / a[i * k + i];
    }
    true
}

/// Cosine similarity of row `item` of a row-major `n × k` matrix with every row, `-inf` for `item`
/// itself and for zero rows.
pub fn cosine_to_all(factors: &[f32], k: usize, item: usize) -> Vec<f32> {
    let n = factors.len() / k.max(1);
    if item >= n || k == 0 {
        return Vec::new();
    }
    let q = &factors[item * k..(item + 1) * k];
    let qn = dot::<Plain>(q, q).sqrt();
    (0..n)
        .map(|j| {
            let y = &factors[j * k..(j + 1) * k];
            let yn = dot::<Plain>(y, y).sqrt();
            if j == item || qn == 0.0 || yn == 0.0 {
                f32::NEG_INFINITY
            } else {
                dot::<Plain>(q, y) / (qn * yn)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn solves_a_hand_computed_system() {
        // [[4, 2], [2, 3]] x = [2, 1]  =>  x = [0.5, 0]
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![2.0, 1.0];
        assert!(cholesky_solve(&mut a, &mut b, 2));
        assert!((b[0] - 0.5).abs() < 1e-12 && b[1].abs() < 1e-12, "{b:?}");
        let mut not_pd = vec![1.0, 2.0, 2.0, 1.0];
        assert!(!cholesky_solve(&mut not_pd, &mut [1.0, 1.0], 2));
    }

    #[test]
    fn symv_matches_the_definition() {
        let a = [2.0, 1.0, 0.5, 1.0, 3.0, -1.0, 0.5, -1.0, 4.0];
        let x = [1.0, -2.0, 0.5];
        let mut y = [9.0; 3];
        crate::dispatch_simd!(M => symv::<M>(&a, &x, &mut y));
        assert_eq!(y, [0.25, -5.5, 4.5]);
    }

    #[test]
    fn gram_matches_the_definition() {
        let y: Vec<f32> = (0..5 * 3).map(|v| (v as f32 * 0.37).sin()).collect();
        let g = gram(&y, 3);
        for r in 0..3 {
            for c in 0..3 {
                let want: f32 = (0..5).map(|i| y[i * 3 + r] * y[i * 3 + c]).sum();
                assert!((g[r * 3 + c] - want).abs() < 1e-5);
            }
        }
    }

    proptest! {
        #[test]
        fn dot_and_axpy_agree_with_naive_loops(
            x in prop::collection::vec(-1.0f32..1.0, 0..70),
            a in -2.0f32..2.0,
        ) {
            let y: Vec<f32> = x.iter().map(|v| v * 0.5 - 0.1).collect();
            let naive: f32 = x.iter().zip(&y).map(|(p, q)| p * q).sum();
            let fast = crate::dispatch_simd!(M => dot::<M>(&x, &y));
            prop_assert!((naive - fast).abs() < 1e-4);
            let mut z = y.clone();
            crate::dispatch_simd!(M => axpy::<M>(a, &x, &mut z));
            for i in 0..x.len() {
                prop_assert!((z[i] - (y[i] + a * x[i])).abs() < 1e-5);
            }
        }

        #[test]
        fn gemv_kernels_agree_with_naive_loops(
            rows in 0usize..11,
            k in 1usize..21,
            seed in 0u32..1000,
        ) {
            let a: Vec<f32> = (0..rows * k).map(|v| ((v as u32 * 7 + seed) % 13) as f32 * 0.1 - 0.6).collect();
            let x: Vec<f32> = (0..k).map(|v| ((v as u32 * 3 + seed) % 5) as f32 * 0.2 - 0.4).collect();
            let c: Vec<f32> = (0..rows).map(|v| v as f32 * 0.3 - 1.0).collect();
            let mut out = vec![0f32; rows];
            crate::dispatch_simd!(M => gemv::<M>(&a, &x, &mut out));
            let mut y = vec![0.5f32; k];
            crate::dispatch_simd!(M => gemv_t::<M>(&a, &c, &mut y));
            for t in 0..rows {
                let want: f32 = (0..k).map(|j| a[t * k + j] * x[j]).sum();
                prop_assert!((out[t] - want).abs() < 1e-4);
            }
            for j in 0..k {
                let want: f32 = 0.5 + (0..rows).map(|t| c[t] * a[t * k + j]).sum::<f32>();
                prop_assert!((y[j] - want).abs() < 1e-4);
            }
            // Fused: coefficient = 2·dot − t, accumulated into z.
            let mut z = vec![0.25f32; k];
            crate::dispatch_simd!(M => dot_then_axpy::<M>(&a[..rows * k], &x, &mut z, |t, d| 2.0 * d - t as f32));
            for j in 0..k {
                let want: f32 = 0.25 + (0..rows).map(|t| (2.0 * out[t] - t as f32) * a[t * k + j]).sum::<f32>();
                prop_assert!((z[j] - want).abs() < 1e-3);
            }
        }
    }
}
