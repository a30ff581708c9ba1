//! Distance kernels. The graph walk is compiled once per (distance, instruction set) pair and the
//! copy for this CPU is chosen at run time ([`dispatch!`], by [`cairn_simd::level`], which
//! `CAIRN_SIMD` can force), so the hot loops inline AVX-512 or
//! AVX2+FMA code on machines that have it and stay portable elsewhere.

use std::marker::PhantomData;

/// Dot product and squared Euclidean distance for one instruction set.
///
/// # Safety
/// Implementations may only be called on a CPU with the instruction set they are named after.
pub(crate) trait Simd: Copy + Send + Sync + 'static {
    /// # Safety
    /// The CPU supports this instruction set; `a` and `b` have the same length.
    unsafe fn dot(a: &[f32], b: &[f32]) -> f32;
    /// # Safety
    /// As for [`Simd::dot`].
    unsafe fn l2_sq(a: &[f32], b: &[f32]) -> f32;
}

#[derive(Clone, Copy)]
pub(crate) struct Portable;

impl Simd for Portable {
    #[inline(always)]
    unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        dot_portable(a, b)
    }
    #[inline(always)]
    unsafe fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
        l2_sq_portable(a, b)
    }
}

/// Eight independent accumulators so the compiler can vectorise and hide add latency.
#[inline(always)]
pub(crate) fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    const W: usize = 8;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; W];
    let (ac, bc) = (a.chunks_exact(W), b.chunks_exact(W));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for l in 0..W {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s: f32 = ar.iter().zip(br).map(|(x, y)| x * y).sum();
    for v in acc {
        s += v;
    }
    s
}

#[inline(always)]
pub(crate) fn l2_sq_portable(a: &[f32], b: &[f32]) -> f32 {
    const W: usize = 8;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; W];
    let (ac, bc) = (a.chunks_exact(W), b.chunks_exact(W));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for l in 0..W {
            let d = x[l] - y[l];
            acc[l] += d * d;
        }
    }
    let mut s: f32 = ar.iter().zip(br).map(|(x, y)| (x - y) * (x - y)).sum();
    for v in acc {
        s += v;
    }
    s
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx2Fma, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Simd;
    use std::arch::x86_64::*;

    #[derive(Clone, Copy)]
    pub(crate) struct Avx2Fma;

    #[derive(Clone, Copy)]
    pub(crate) struct Avx512;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum256(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps::<1>(v);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        while i + 16 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            acc1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
                acc1,
            );
            i += 16;
        }
        if i + 8 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            i += 8;
        }
        let mut s = hsum256(_mm256_add_ps(acc0, acc1));
        while i < n {
            s += *pa.add(i) * *pb.add(i);
            i += 1;
        }
        s
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn l2_sq_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        while i + 16 <= n {
            let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
            let d1 = _mm256_sub_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
            );
            acc0 = _mm256_fmadd_ps(d0, d0, acc0);
            acc1 = _mm256_fmadd_ps(d1, d1, acc1);
            i += 16;
        }
        if i + 8 <= n {
            let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
            acc0 = _mm256_fmadd_ps(d0, d0, acc0);
            i += 8;
        }
        let mut s = hsum256(_mm256_add_ps(acc0, acc1));
        while i < n {
            let d = *pa.add(i) - *pb.add(i);
            s += d * d;
            i += 1;
        }
        s
    }

    /// Mask of the first `r` (< 16) lanes.
    #[inline(always)]
    fn tail_mask(r: usize) -> __mmask16 {
        ((1u32 << r) - 1) as __mmask16
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        while i + 32 <= n {
            acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), acc0);
            acc1 = _mm512_fmadd_ps(
                _mm512_loadu_ps(pa.add(i + 16)),
                _mm512_loadu_ps(pb.add(i + 16)),
                acc1,
            );
            i += 32;
        }
        if i + 16 <= n {
            acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), acc0);
            i += 16;
        }
        if i < n {
            let m = tail_mask(n - i);
            acc1 = _mm512_fmadd_ps(
                _mm512_maskz_loadu_ps(m, pa.add(i)),
                _mm512_maskz_loadu_ps(m, pb.add(i)),
                acc1,
            );
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn l2_sq_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        while i + 32 <= n {
            let d0 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
            let d1 = _mm512_sub_ps(
                _mm512_loadu_ps(pa.add(i + 16)),
                _mm512_loadu_ps(pb.add(i + 16)),
            );
            acc0 = _mm512_fmadd_ps(d0, d0, acc0);
            acc1 = _mm512_fmadd_ps(d1, d1, acc1);
            i += 32;
        }
        if i + 16 <= n {
            let d0 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
            acc0 = _mm512_fmadd_ps(d0, d0, acc0);
            i += 16;
        }
        if i < n {
            let m = tail_mask(n - i);
            let d = _mm512_sub_ps(
                _mm512_maskz_loadu_ps(m, pa.add(i)),
                _mm512_maskz_loadu_ps(m, pb.add(i)),
            );
            acc1 = _mm512_fmadd_ps(d, d, acc1);
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }

    impl Simd for Avx2Fma {
        #[inline(always)]
        unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
            dot_avx2(a, b)
        }
        #[inline(always)]
        unsafe fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
            l2_sq_avx2(a, b)
        }
    }

    impl Simd for Avx512 {
        #[inline(always)]
        unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
            dot_avx512(a, b)
        }
        #[inline(always)]
        unsafe fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
            l2_sq_avx512(a, b)
        }
    }
}

/// A distance where lower is nearer, computed with one instruction set.
pub(crate) trait Distance: Copy + Send + Sync + 'static {
    fn dist(a: &[f32], b: &[f32]) -> f32;
}

/// `-(a · b)`: inner product and (on normalised vectors) cosine.
#[derive(Clone, Copy)]
pub(crate) struct NegDot<S>(PhantomData<S>);

/// `‖a − b‖²`.
#[derive(Clone, Copy)]
pub(crate) struct L2Sq<S>(PhantomData<S>);

impl<S: Simd> Distance for NegDot<S> {
    #[inline(always)]
    fn dist(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: `dispatch!` only instantiates `S` after checking that the CPU supports it.
        -unsafe { S::dot(a, b) }
    }
}

impl<S: Simd> Distance for L2Sq<S> {
    #[inline(always)]
    fn dist(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as above.
        unsafe { S::l2_sq(a, b) }
    }
}

/// Which distance family a metric searches with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Space {
    Dot,
    L2,
}

/// Runs `$body` with the type alias `$d: Distance` bound to the kernel for `$space` and this CPU,
/// inside a function compiled for that instruction set. Everything `$body` calls on the hot path is
/// `#[inline(always)]` so it is compiled with the same features.
macro_rules! dispatch {
    ($space:expr, $d:ident => $body:expr) => {{
        #[allow(unused_imports)]
        use $crate::kernels::{Distance as _, L2Sq, NegDot, Space};
        let space: Space = $space;
        #[cfg(target_arch = "x86_64")]
        {
            use $crate::kernels::{Avx2Fma, Avx512};
            use cairn_simd::SimdLevel;
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn run_avx512<F: FnOnce() -> R, R>(f: F) -> R {
                f()
            }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn run_avx2<F: FnOnce() -> R, R>(f: F) -> R {
                f()
            }
            match (space, cairn_simd::level()) {
                // SAFETY (all unsafe arms): cairn_simd::level() confirmed the CPU has these features.
                (Space::Dot, SimdLevel::Avx512) => {
                    type $d = NegDot<Avx512>;
                    // SAFETY: as above.
                    unsafe { run_avx512(|| $body) }
                }
                (Space::L2, SimdLevel::Avx512) => {
                    type $d = L2Sq<Avx512>;
                    // SAFETY: as above.
                    unsafe { run_avx512(|| $body) }
                }
                (Space::Dot, SimdLevel::Avx2Fma) => {
                    type $d = NegDot<Avx2Fma>;
                    // SAFETY: as above.
                    unsafe { run_avx2(|| $body) }
                }
                (Space::L2, SimdLevel::Avx2Fma) => {
                    type $d = L2Sq<Avx2Fma>;
                    // SAFETY: as above.
                    unsafe { run_avx2(|| $body) }
                }
                (Space::Dot, SimdLevel::Portable) => {
                    type $d = NegDot<$crate::kernels::Portable>;
                    $body
                }
                (Space::L2, SimdLevel::Portable) => {
                    type $d = L2Sq<$crate::kernels::Portable>;
                    $body
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            match space {
                Space::Dot => {
                    type $d = NegDot<$crate::kernels::Portable>;
                    $body
                }
                Space::L2 => {
                    type $d = L2Sq<$crate::kernels::Portable>;
                    $body
                }
            }
        }
    }};
}
pub(crate) use dispatch;

pub(crate) use cairn_simd::{prefetch, prefetch_at};

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, salt: f32) -> Vec<f32> {
        (0..n)
            .map(|i| (i as f32 * 0.37 + salt).sin() * 3.0)
            .collect()
    }

    #[test]
    fn every_kernel_agrees_with_the_portable_one() {
        for n in [1, 7, 8, 15, 16, 17, 31, 32, 33, 64, 65, 100] {
            let (a, b) = (data(n, 0.1), data(n, 2.3));
            let dot = dot_portable(&a, &b);
            let l2 = l2_sq_portable(&a, &b);
            let exact_dot: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!(
                (dot as f64 - exact_dot).abs() < 1e-3 * (1.0 + exact_dot.abs()),
                "n={n}"
            );
            let via_dispatch = |space| dispatch!(space, D => D::dist(&a, &b));
            assert!(
                (via_dispatch(Space::Dot) + dot).abs() < 1e-3 * (1.0 + dot.abs()),
                "n={n}"
            );
            assert!(
                (via_dispatch(Space::L2) - l2).abs() < 1e-3 * (1.0 + l2),
                "n={n}"
            );
        }
    }

    /// The dispatch test above only reaches the widest instruction set of this CPU; check every
    /// compiled one directly where the CPU has it.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn each_instruction_set_matches_the_portable_kernels() {
        use cairn_simd::SimdLevel;
        // Every level this CPU can execute, whatever `CAIRN_SIMD` forces.
        let has = |level: SimdLevel| level.is_supported();
        for n in [1, 5, 8, 9, 16, 17, 24, 31, 32, 33, 47, 64, 65, 129] {
            let (a, b) = (data(n, 0.4), data(n, 1.9));
            let (dot, l2) = (dot_portable(&a, &b), l2_sq_portable(&a, &b));
            let close = |x: f32, y: f32| (x - y).abs() <= 1e-4 * (1.0 + y.abs());
            if has(SimdLevel::Avx2Fma) {
                // SAFETY: the CPU has AVX2 and FMA.
                let (d, l) = unsafe { (Avx2Fma::dot(&a, &b), Avx2Fma::l2_sq(&a, &b)) };
                assert!(
                    close(d, dot) && close(l, l2),
                    "avx2 n={n}: {d} {dot} {l} {l2}"
                );
            }
            if has(SimdLevel::Avx512) {
                // SAFETY: the CPU has AVX-512F.
                let (d, l) = unsafe { (Avx512::dot(&a, &b), Avx512::l2_sq(&a, &b)) };
                assert!(
                    close(d, dot) && close(l, l2),
                    "avx512 n={n}: {d} {dot} {l} {l2}"
                );
            }
        }
    }
}
