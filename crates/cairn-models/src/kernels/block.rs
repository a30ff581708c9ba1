//! Kernels for a block of gathered factor rows (row-major `n × k`), the inner loop of conjugate
//! gradient in implicit ALS: gather the rows, `y += Σ_t (b_t + s_t · (a_t · x)) a_t` over them, and
//! `y = A x` for the symmetric Gram matrix.
//!
//! The portable kernels in the parent module leave vectorisation to the compiler, which turned the
//! four-row dot products into 128-bit shuffles and gathers. These are written with AVX-512 or AVX2
//! intrinsics for `k` a multiple of the vector width, with the row held in whole registers and one
//! combined horizontal sum per four rows. Other `k`, and other CPUs, use the portable kernels.
//! Every path sums in a fixed order, so results are deterministic on a given machine.

use rayon::prelude::*;

use cairn_simd::SimdLevel;

use super::{dot_then_axpy, prefetch_row, symv, MulAdd};
use crate::dispatch_simd;

/// How many rows ahead the gather asks for: far enough to cover a last-level-cache miss while the
/// rows in between are used.
const GATHER_AHEAD: usize = 12;

/// Runs `$body` with the const `$v` set to `$n` (1..=`$max`, `$max` being 8 or 16), so that a
/// kernel is compiled for each number of vector registers per row.
macro_rules! with_width {
    ($n:expr, 8, |$v:ident| $body:expr) => {
        match $n {
            1 => {
                const $v: usize = 1;
                $body
            }
            2 => {
                const $v: usize = 2;
                $body
            }
            3 => {
                const $v: usize = 3;
                $body
            }
            4 => {
                const $v: usize = 4;
                $body
            }
            5 => {
                const $v: usize = 5;
                $body
            }
            6 => {
                const $v: usize = 6;
                $body
            }
            7 => {
                const $v: usize = 7;
                $body
            }
            _ => {
                const $v: usize = 8;
                $body
            }
        }
    };
    ($n:expr, 16, |$v:ident| $body:expr) => {
        match $n {
            1..=8 => with_width!($n, 8, |$v| $body),
            9 => {
                const $v: usize = 9;
                $body
            }
            10 => {
                const $v: usize = 10;
                $body
            }
            11 => {
                const $v: usize = 11;
                $body
            }
            12 => {
                const $v: usize = 12;
                $body
            }
            13 => {
                const $v: usize = 13;
                $body
            }
            14 => {
                const $v: usize = 14;
                $body
            }
            15 => {
                const $v: usize = 15;
                $body
            }
            _ => {
                const $v: usize = 16;
                $body
            }
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// AVX-512 with `k / 16` registers per row.
    Avx512,
    /// AVX2, FMA and F16C with `k / 8` registers per row.
    Avx2,
    Portable,
}

/// Above this many bytes an f32 block is kept as f16 instead (see
/// [`BlockOps::compact_block_pays`]).
const COMPACT_BLOCK_BYTES: usize = 1 << 20;

/// A row's gathered block as f16 bits (the values of the f16 copy of the fixed side, times
/// `unscale`), with the four-row f32 scratch the passes convert into.
#[derive(Debug, Default)]
pub struct CompactBlock {
    bits: Vec<u16>,
    ring: Vec<f32>,
    unscale: f32,
}

impl CompactBlock {
    fn prepare(&mut self, rows: usize, k: usize, unscale: f32) {
        if self.bits.len() < rows * k {
            self.bits.resize(rows * k, 0);
        }
        if self.ring.len() < 4 * k {
            self.ring.resize(4 * k, 0.0);
        }
        self.unscale = unscale;
    }
}

/// The block kernels for one factor count, with the instruction set chosen once.
#[derive(Debug, Clone, Copy)]
pub struct BlockOps {
    k: usize,
    path: Path,
}

/// The fixed side of a half-step, as gathered by [`BlockOps::gather_pass`]: the f32 rows
/// themselves, or a compact f16 copy that halves the bytes each scattered row costs.
pub enum FixedRows<'a> {
    F32(&'a [f32]),
    F16 {
        /// f16 bits of `row · scale`; row `i` starts at `offset + i·k`, 64-byte aligned.
        bits: Vec<u16>,
        offset: usize,
        rows: usize,
        /// A power of two that puts the largest magnitude in [2¹⁴, 2¹⁵), so that f16 keeps its
        /// 11 significant bits for all but negligible values; undone when gathering.
        scale: f32,
    },
}

impl FixedRows<'_> {
    fn rows(&self, k: usize) -> usize {
        match self {
            FixedRows::F32(m) => m.len().checked_div(k).unwrap_or(0),
            FixedRows::F16 { rows, .. } => *rows,
        }
    }
}

impl BlockOps {
    pub fn new(k: usize) -> Self {
        Self::with_level(k, cairn_simd::level())
    }

    /// The kernels for `k` factors as if the CPU supported at most `level` (for tests that compare
    /// the paths).
    pub fn with_level(k: usize, level: SimdLevel) -> Self {
        #[cfg(target_arch = "x86_64")]
        let f16c = std::arch::is_x86_feature_detected!("f16c");
        #[cfg(not(target_arch = "x86_64"))]
        let f16c = false;
        let path = match level {
            SimdLevel::Avx512 if k.is_multiple_of(16) && (1..=8).contains(&(k / 16)) => {
                Path::Avx512
            }
            SimdLevel::Avx512 | SimdLevel::Avx2Fma
                if f16c && k.is_multiple_of(8) && (1..=16).contains(&(k / 8)) =>
            {
                Path::Avx2
            }
            _ => Path::Portable,
        };
        BlockOps { k, path }
    }

    pub fn k(&self) -> usize {
        self.k
    }

    /// The fixed side for [`BlockOps::gather_pass`]: an f16 copy when `compact` is asked for, this
    /// CPU converts in hardware and every value is finite; the f32 rows otherwise.
    pub fn fixed_rows<'a>(&self, matrix: &'a [f32], compact: bool) -> FixedRows<'a> {
        let k = self.k;
        if !compact || self.path == Path::Portable || k == 0 {
            return FixedRows::F32(matrix);
        }
        let max = matrix.par_iter().map(|v| v.abs()).reduce(|| 0.0, f32::max);
        if !max.is_finite() {
            return FixedRows::F32(matrix);
        }
        let scale = if max > 0.0 {
            2f32.powi(14 - max.log2().floor() as i32)
        } else {
            1.0
        };
        if !scale.is_finite() || scale == 0.0 {
            return FixedRows::F32(matrix);
        }
        let rows = matrix.len() / k;
        let mut bits = vec![0u16; rows * k + 32];
        // Start at a 64-byte boundary so that a row of k·2 bytes spans the fewest cache lines.
        let offset = bits.as_ptr().align_offset(64).min(31);
        let path = self.path;
        bits[offset..offset + rows * k]
            .par_chunks_mut(k * 256)
            .zip(matrix.par_chunks(k * 256))
            .for_each(|(out, rows_in)| {
                for (o, r) in out.chunks_exact_mut(k).zip(rows_in.chunks_exact(k)) {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the path was chosen for this CPU, `k` is a multiple of the
                    // vector width and `o` holds `k` values.
                    unsafe {
                        match path {
                            Path::Avx512 => x86::to_f16_512(r, scale, o),
                            _ => x86::to_f16_256(r, scale, o),
                        }
                    }
                    #[cfg(not(target_arch = "x86_64"))]
                    let _ = (r, o, path);
                }
            });
        FixedRows::F16 {
            bits,
            offset,
            rows,
            scale,
        }
    }

    /// Replaces `out` with rows `idx` of the row-major `matrix`, in order. Panics if an index is out
    /// of range.
    pub fn gather(&self, matrix: &[f32], idx: &[u32], out: &mut Vec<f32>) {
        let k = self.k;
        out.clear();
        out.reserve(idx.len() * k);
        for (t, &i) in idx.iter().enumerate() {
            if let Some(&ahead) = idx.get(t + GATHER_AHEAD) {
                prefetch_row(matrix, ahead as usize, k);
            }
            out.extend_from_slice(&matrix[i as usize * k..(i as usize + 1) * k]);
        }
    }

    /// `y += Σ_t (base_t + slope_t · (a_t · x)) a_t` over the rows of the row-major block `a`
    /// (`slope.len()` rows; `base` is zero when absent). Panics on mismatched lengths.
    pub fn weighted_pass(
        &self,
        a: &[f32],
        x: &[f32],
        y: &mut [f32],
        base: Option<&[f32]>,
        slope: &[f32],
    ) {
        let k = self.k;
        let n = slope.len();
        assert!(x.len() == k && y.len() == k && a.len() >= n * k);
        assert!(base.is_none_or(|b| b.len() >= n));
        #[cfg(target_arch = "x86_64")]
        {
            use x86::CONTIGUOUS as C;
            let (src, out) = (a.as_ptr() as *const u8, std::ptr::null_mut());
            match self.path {
                // SAFETY: the CPU has the instruction set (checked when choosing the path), and
                // the lengths were checked above.
                Path::Avx512 => unsafe {
                    return with_width!(k / 16, 8, |V| x86::pass512::<V, C, false>(
                        src,
                        &[],
                        1.0,
                        out,
                        std::ptr::null_mut(),
                        x,
                        y,
                        base,
                        slope
                    ));
                },
                // SAFETY: as above.
                Path::Avx2 => unsafe {
                    return with_width!(k / 8, 16, |V| x86::pass256::<V, C>(
                        src,
                        &[],
                        1.0,
                        out,
                        x,
                        y,
                        base,
                        slope
                    ));
                },
                Path::Portable => {}
            }
        }
        dispatch_simd!(M => dot_then_axpy::<M>(&a[..n * k], x, y, |t, d| {
            let b = base.map_or(0.0, |b| b[t]);
            M::mul_add(slope[t], d, b)
        }));
    }

    /// [`BlockOps::gather`] of rows `idx` of `fixed` into `block` (as f32) fused with
    /// [`BlockOps::weighted_pass`] over them: each scattered row is read once and used while it is
    /// in L1. `block` keeps its allocation (it only grows); its first `idx.len()·k` values are the
    /// gathered rows afterwards. Panics on mismatched lengths or an out-of-range index.
    #[allow(clippy::too_many_arguments)]
    pub fn gather_pass(
        &self,
        fixed: &FixedRows,
        idx: &[u32],
        block: &mut Vec<f32>,
        x: &[f32],
        y: &mut [f32],
        base: Option<&[f32]>,
        slope: &[f32],
    ) {
        let k = self.k;
        let n = idx.len();
        assert!(slope.len() == n && x.len() == k && y.len() == k);
        assert!(base.is_none_or(|b| b.len() >= n));
        let rows = fixed.rows(k);
        assert!(
            idx.iter().all(|&i| (i as usize) < rows),
            "row index out of range"
        );
        if block.len() < n * k {
            block.resize(n * k, 0.0);
        }
        #[cfg(target_arch = "x86_64")]
        {
            use x86::{GATHER_F16 as H, GATHER_F32 as F};
            let out = block.as_mut_ptr();
            // SAFETY (all arms): the CPU has the path's instruction set (checked when choosing
            // it), lengths and indices were checked above, an f16 copy only exists on a
            // non-portable path with its rows in place, and `block` holds at least n·k values.
            match (self.path, fixed) {
                // SAFETY: as above.
                (Path::Avx512, FixedRows::F32(m)) => unsafe {
                    let src = m.as_ptr() as *const u8;
                    return with_width!(k / 16, 8, |V| x86::pass512::<V, F, false>(
                        src,
                        idx,
                        1.0,
                        out,
                        std::ptr::null_mut(),
                        x,
                        y,
                        base,
                        slope
                    ));
                },
                (
                    Path::Avx512,
                    FixedRows::F16 {
                        bits,
                        offset,
                        scale,
                        ..
                    },
                ) => {
                    // SAFETY: as above.
                    unsafe {
                        let src = bits[*offset..].as_ptr() as *const u8;
                        return with_width!(k / 16, 8, |V| x86::pass512::<V, H, false>(
                            src,
                            idx,
                            1.0 / scale,
                            out,
                            std::ptr::null_mut(),
                            x,
                            y,
                            base,
                            slope
                        ));
                    }
                }
                // SAFETY: as above.
                (Path::Avx2, FixedRows::F32(m)) => unsafe {
                    let src = m.as_ptr() as *const u8;
                    return with_width!(k / 8, 16, |V| x86::pass256::<V, F>(
                        src, idx, 1.0, out, x, y, base, slope
                    ));
                },
                (
                    Path::Avx2,
                    FixedRows::F16 {
                        bits,
                        offset,
                        scale,
                        ..
                    },
                ) => {
                    // SAFETY: as above.
                    unsafe {
                        let src = bits[*offset..].as_ptr() as *const u8;
                        return with_width!(k / 8, 16, |V| x86::pass256::<V, H>(
                            src,
                            idx,
                            1.0 / scale,
                            out,
                            x,
                            y,
                            base,
                            slope
                        ));
                    }
                }
                _ => {}
            }
        }
        let FixedRows::F32(matrix) = fixed else {
            unreachable!("an f16 copy is only made on a vector path")
        };
        let mut gathered = std::mem::take(block);
        self.gather(matrix, idx, &mut gathered);
        self.weighted_pass(&gathered, x, y, base, slope);
        *block = gathered;
    }

    /// Whether a row of `rows` gathered rows of `fixed` is better kept as a [`CompactBlock`]:
    /// when its f32 block would not fit in half of a 2 MiB L2, so that every CG step streams it
    /// from L3 or memory, and halving its bytes outweighs converting it back each step.
    pub fn compact_block_pays(&self, rows: usize, fixed: &FixedRows) -> bool {
        self.path == Path::Avx512
            && matches!(fixed, FixedRows::F16 { .. })
            && rows * self.k * 4 > COMPACT_BLOCK_BYTES
    }

    /// [`BlockOps::gather_pass`] that keeps the gathered rows as f16 bits in `block` (the bits of
    /// the f16 copy, so nothing is rounded again). Returns false, doing nothing, unless
    /// [`BlockOps::compact_block_pays`] holds for some row count (AVX-512 and an f16 `fixed`).
    /// Panics on mismatched lengths or an out-of-range index.
    #[allow(clippy::too_many_arguments)]
    pub fn gather_pass_compact(
        &self,
        fixed: &FixedRows,
        idx: &[u32],
        block: &mut CompactBlock,
        x: &[f32],
        y: &mut [f32],
        base: Option<&[f32]>,
        slope: &[f32],
    ) -> bool {
        let k = self.k;
        let n = idx.len();
        assert!(slope.len() == n && x.len() == k && y.len() == k);
        assert!(base.is_none_or(|b| b.len() >= n));
        let FixedRows::F16 {
            bits,
            offset,
            rows,
            scale,
        } = fixed
        else {
            return false;
        };
        if self.path != Path::Avx512 {
            return false;
        }
        assert!(
            idx.iter().all(|&i| (i as usize) < *rows),
            "row index out of range"
        );
        block.prepare(n, k, 1.0 / scale);
        #[cfg(target_arch = "x86_64")]
        {
            use x86::GATHER_F16 as H;
            let src = bits[*offset..].as_ptr() as *const u8;
            let (ring, copy) = (block.ring.as_mut_ptr(), block.bits.as_mut_ptr());
            // SAFETY: the path is AVX-512 (checked when choosing it), lengths and indices were
            // checked above, and `prepare` sized the ring to 4·k and the bits to n·k.
            unsafe {
                with_width!(k / 16, 8, |V| x86::pass512::<V, H, true>(
                    src,
                    idx,
                    block.unscale,
                    ring,
                    copy,
                    x,
                    y,
                    base,
                    slope
                ));
            }
            true
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (bits, offset, x, y, base, slope);
            false
        }
    }

    /// [`BlockOps::weighted_pass`] over the rows of a compact block (the first `slope.len()`).
    /// Panics on mismatched lengths or a block that [`BlockOps::gather_pass_compact`] did not
    /// fill with at least that many rows.
    pub fn weighted_pass_compact(
        &self,
        block: &mut CompactBlock,
        x: &[f32],
        y: &mut [f32],
        base: Option<&[f32]>,
        slope: &[f32],
    ) {
        let k = self.k;
        let n = slope.len();
        assert!(x.len() == k && y.len() == k && block.bits.len() >= n * k);
        assert!(block.ring.len() >= 4 * k && self.path == Path::Avx512);
        assert!(base.is_none_or(|b| b.len() >= n));
        #[cfg(target_arch = "x86_64")]
        {
            use x86::CONTIGUOUS_F16 as H;
            let src = block.bits.as_ptr() as *const u8;
            let ring = block.ring.as_mut_ptr();
            // SAFETY: AVX-512 was checked above (and when choosing the path), as were the
            // lengths.
            unsafe {
                with_width!(k / 16, 8, |V| x86::pass512::<V, H, true>(
                    src,
                    &[],
                    block.unscale,
                    ring,
                    std::ptr::null_mut(),
                    x,
                    y,
                    base,
                    slope
                ));
            }
        }
    }

    /// `y = A x` for a symmetric row-major `k × k` matrix. Panics on mismatched lengths.
    pub fn symv(&self, a: &[f32], x: &[f32], y: &mut [f32]) {
        let k = self.k;
        assert!(a.len() == k * k && x.len() == k && y.len() == k);
        #[cfg(target_arch = "x86_64")]
        if self.path == Path::Avx512 {
            // SAFETY: the CPU has the instruction set, and the lengths were checked above.
            unsafe {
                return with_width!(k / 16, 8, |V| x86::symv512::<V>(a, x, y));
            }
        }
        dispatch_simd!(M => symv::<M>(a, x, y));
    }
}

#[cfg(target_arch = "x86_64")]
// The loop index picks a register of the row and its offset in memory together.
#[allow(clippy::needless_range_loop)]
mod x86 {
    use std::arch::x86_64::*;

    /// Where the rows of a pass come from (`SRC` of the pass functions).
    pub(super) const CONTIGUOUS: u8 = 0;
    pub(super) const GATHER_F32: u8 = 1;
    pub(super) const GATHER_F16: u8 = 2;
    /// Row `t` of a contiguous block of f16 values (a compact block).
    pub(super) const CONTIGUOUS_F16: u8 = 3;

    #[inline(always)]
    const fn gathers(src: u8) -> bool {
        src == GATHER_F32 || src == GATHER_F16
    }

    #[inline(always)]
    const fn is_f16(src: u8) -> bool {
        src == GATHER_F16 || src == CONTIGUOUS_F16
    }

    /// The four sums of the lanes of `a`, `b`, `c` and `d`, as one vector.
    #[inline(always)]
    unsafe fn hsum4_256(a: __m256, b: __m256, c: __m256, d: __m256) -> __m128 {
        // hadd(a, b) = a01 a23 b01 b23 | a45 a67 b45 b67, so two levels leave
        // a0..3 b0..3 c0..3 d0..3 | a4..7 b4..7 c4..7 d4..7.
        let ab = _mm256_hadd_ps(a, b);
        let cd = _mm256_hadd_ps(c, d);
        let abcd = _mm256_hadd_ps(ab, cd);
        _mm_add_ps(
            _mm256_castps256_ps128(abcd),
            _mm256_extractf128_ps::<1>(abcd),
        )
    }

    #[inline(always)]
    unsafe fn halves(v: __m512) -> __m256 {
        let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
        _mm256_add_ps(_mm512_castps512_ps256(v), hi)
    }

    /// The coefficients `base + slope · d` of four rows starting at `t`.
    #[inline(always)]
    unsafe fn coefficients(d: __m128, base: Option<&[f32]>, slope: &[f32], t: usize) -> [f32; 4] {
        let s = _mm_loadu_ps(slope.as_ptr().add(t));
        let c = match base {
            Some(b) => _mm_fmadd_ps(s, d, _mm_loadu_ps(b.as_ptr().add(t))),
            None => _mm_mul_ps(s, d),
        };
        let mut out = [0f32; 4];
        _mm_storeu_ps(out.as_mut_ptr(), c);
        out
    }

    /// Row `t` of the pass's source: row `t` of a contiguous block, or row `idx[t]` of the fixed
    /// matrix, as a byte pointer (f32 or f16 elements).
    #[inline(always)]
    unsafe fn row_of<const SRC: u8>(src: *const u8, idx: &[u32], t: usize, k: usize) -> *const u8 {
        let row = if gathers(SRC) {
            *idx.get_unchecked(t) as usize
        } else {
            t
        };
        let width = if is_f16(SRC) { 2 } else { 4 };
        src.add(row * k * width)
    }

    /// Asks for row `idx[t]` of the fixed matrix when gathering and `t` is in range.
    #[inline(always)]
    unsafe fn prefetch_ahead<const SRC: u8>(src: *const u8, idx: &[u32], t: usize, k: usize) {
        if gathers(SRC) && t < idx.len() {
            let row = row_of::<SRC>(src, idx, t, k) as *const i8;
            let bytes = k * if SRC == GATHER_F16 { 2 } else { 4 };
            let mut off = 0;
            while off < bytes {
                _mm_prefetch::<_MM_HINT_T0>(row.add(off));
                off += 64;
            }
        }
    }

    /// Sixteen values of a row from `SRC`, multiplied by `unscale` when stored as f16; the f16
    /// bits are also copied to `copy` (at the same offset in the row) when it is not null.
    #[inline(always)]
    unsafe fn load16<const SRC: u8>(
        row: *const u8,
        v: usize,
        unscale: __m512,
        copy: *mut u16,
    ) -> __m512 {
        if is_f16(SRC) {
            let h = _mm256_loadu_si256((row as *const u16).add(16 * v) as *const __m256i);
            if !copy.is_null() {
                _mm256_storeu_si256(copy.add(16 * v) as *mut __m256i, h);
            }
            _mm512_mul_ps(_mm512_cvtph_ps(h), unscale)
        } else {
            _mm512_loadu_ps((row as *const f32).add(16 * v))
        }
    }

    /// Eight values of a row from `SRC`, multiplied by `unscale` when stored as f16.
    #[inline(always)]
    unsafe fn load8<const SRC: u8>(row: *const u8, v: usize, unscale: __m256) -> __m256 {
        if SRC == GATHER_F16 {
            let h = _mm_loadu_si128((row as *const u16).add(8 * v) as *const __m128i);
            _mm256_mul_ps(_mm256_cvtph_ps(h), unscale)
        } else {
            _mm256_loadu_ps((row as *const f32).add(8 * v))
        }
    }

    /// `y += Σ_t (base_t + slope_t · (a_t · x)) a_t` over `slope.len()` rows from `SRC`, with
    /// `k = 16·V`. Unless `SRC` is `CONTIGUOUS`, the rows (as f32) are also written to `out`:
    /// all of them in order, or with `RING` only the current four, to rows 0..4 of `out` (the
    /// f32 values the second half of each step reads from L1). With `copy16` not null, the f16
    /// bits of every row are copied there in order (a compact block of a gather).
    ///
    /// # Safety
    /// AVX-512F, AVX2 and FMA are available; `x` and `y` hold `k` values; `base`, when present,
    /// and (when gathering) `idx` at least `slope.len()`; `src` holds the rows read (`slope.len()`
    /// rows when contiguous, every `idx[t]` otherwise, with f16 elements for `GATHER_F16` and
    /// `CONTIGUOUS_F16`); `out`, unless `SRC` is `CONTIGUOUS`, is valid for `slope.len()·k`
    /// writes (`4·k` with `RING`); `copy16`, when not null, for `slope.len()·k` writes and only
    /// with `GATHER_F16`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn pass512<const V: usize, const SRC: u8, const RING: bool>(
        src: *const u8,
        idx: &[u32],
        unscale: f32,
        out: *mut f32,
        copy16: *mut u16,
        x: &[f32],
        y: &mut [f32],
        base: Option<&[f32]>,
        slope: &[f32],
    ) {
        let k = 16 * V;
        let n = slope.len();
        let unscale = _mm512_set1_ps(unscale);
        let mut xv = [_mm512_setzero_ps(); V];
        let mut acc = [_mm512_setzero_ps(); V];
        for v in 0..V {
            xv[v] = _mm512_loadu_ps(x.as_ptr().add(16 * v));
        }
        let mut t = 0;
        while t + 4 <= n {
            for q in 0..4 {
                prefetch_ahead::<SRC>(src, idx, t + q + super::GATHER_AHEAD, k);
            }
            let mut r = [
                row_of::<SRC>(src, idx, t, k),
                row_of::<SRC>(src, idx, t + 1, k),
                row_of::<SRC>(src, idx, t + 2, k),
                row_of::<SRC>(src, idx, t + 3, k),
            ];
            let mut d = [_mm512_setzero_ps(); 4];
            let copy = |q: usize| {
                if copy16.is_null() {
                    copy16
                } else {
                    copy16.add((t + q) * k)
                }
            };
            let dst = |q: usize| out.add(if RING { q * k } else { (t + q) * k });
            for v in 0..V {
                for q in 0..4 {
                    let row = load16::<SRC>(r[q], v, unscale, copy(q));
                    if SRC != CONTIGUOUS {
                        _mm512_storeu_ps(dst(q).add(16 * v), row);
                    }
                    d[q] = _mm512_fmadd_ps(row, xv[v], d[q]);
                }
            }
            if SRC != CONTIGUOUS {
                // The copies are in L1 and already f32; the scattered originals may be gone.
                for (q, rq) in r.iter_mut().enumerate() {
                    *rq = dst(q) as *const u8;
                }
            }
            let sums = hsum4_256(halves(d[0]), halves(d[1]), halves(d[2]), halves(d[3]));
            let c = coefficients(sums, base, slope, t);
            let cv = [
                _mm512_set1_ps(c[0]),
                _mm512_set1_ps(c[1]),
                _mm512_set1_ps(c[2]),
                _mm512_set1_ps(c[3]),
            ];
            for v in 0..V {
                for q in 0..4 {
                    let row = _mm512_loadu_ps((r[q] as *const f32).add(16 * v));
                    acc[v] = _mm512_fmadd_ps(cv[q], row, acc[v]);
                }
            }
            t += 4;
        }
        while t < n {
            let mut r = row_of::<SRC>(src, idx, t, k);
            let mut d = _mm512_setzero_ps();
            let copy = if copy16.is_null() {
                copy16
            } else {
                copy16.add(t * k)
            };
            let dst = out.add(if RING { 0 } else { t * k });
            for v in 0..V {
                let row = load16::<SRC>(r, v, unscale, copy);
                if SRC != CONTIGUOUS {
                    _mm512_storeu_ps(dst.add(16 * v), row);
                }
                d = _mm512_fmadd_ps(row, xv[v], d);
            }
            if SRC != CONTIGUOUS {
                r = dst as *const u8;
            }
            let dot = _mm512_reduce_add_ps(d);
            let c = base.map_or(0.0, |b| b[t]) + slope[t] * dot;
            let cv = _mm512_set1_ps(c);
            for v in 0..V {
                let row = _mm512_loadu_ps((r as *const f32).add(16 * v));
                acc[v] = _mm512_fmadd_ps(cv, row, acc[v]);
            }
            t += 1;
        }
        for v in 0..V {
            let yp = y.as_mut_ptr().add(16 * v);
            _mm512_storeu_ps(yp, _mm512_add_ps(_mm512_loadu_ps(yp), acc[v]));
        }
    }

    /// As `pass512` with AVX2 vectors, `k = 8·V`.
    ///
    /// # Safety
    /// AVX2, FMA and F16C are available; otherwise as for `pass512`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn pass256<const V: usize, const SRC: u8>(
        src: *const u8,
        idx: &[u32],
        unscale: f32,
        out: *mut f32,
        x: &[f32],
        y: &mut [f32],
        base: Option<&[f32]>,
        slope: &[f32],
    ) {
        let k = 8 * V;
        let n = slope.len();
        let unscale = _mm256_set1_ps(unscale);
        let mut xv = [_mm256_setzero_ps(); V];
        let mut acc = [_mm256_setzero_ps(); V];
        for v in 0..V {
            xv[v] = _mm256_loadu_ps(x.as_ptr().add(8 * v));
        }
        let mut t = 0;
        while t + 4 <= n {
            for q in 0..4 {
                prefetch_ahead::<SRC>(src, idx, t + q + super::GATHER_AHEAD, k);
            }
            let mut r = [
                row_of::<SRC>(src, idx, t, k),
                row_of::<SRC>(src, idx, t + 1, k),
                row_of::<SRC>(src, idx, t + 2, k),
                row_of::<SRC>(src, idx, t + 3, k),
            ];
            let mut d = [_mm256_setzero_ps(); 4];
            for v in 0..V {
                for q in 0..4 {
                    let row = load8::<SRC>(r[q], v, unscale);
                    if SRC != CONTIGUOUS {
                        _mm256_storeu_ps(out.add((t + q) * k + 8 * v), row);
                    }
                    d[q] = _mm256_fmadd_ps(row, xv[v], d[q]);
                }
            }
            if SRC != CONTIGUOUS {
                for (q, rq) in r.iter_mut().enumerate() {
                    *rq = out.add((t + q) * k) as *const u8;
                }
            }
            let sums = hsum4_256(d[0], d[1], d[2], d[3]);
            let c = coefficients(sums, base, slope, t);
            let cv = [
                _mm256_set1_ps(c[0]),
                _mm256_set1_ps(c[1]),
                _mm256_set1_ps(c[2]),
                _mm256_set1_ps(c[3]),
            ];
            for v in 0..V {
                for q in 0..4 {
                    let row = _mm256_loadu_ps((r[q] as *const f32).add(8 * v));
                    acc[v] = _mm256_fmadd_ps(cv[q], row, acc[v]);
                }
            }
            t += 4;
        }
        while t < n {
            let mut r = row_of::<SRC>(src, idx, t, k);
            let zero = _mm256_setzero_ps();
            let mut d = zero;
            for v in 0..V {
                let row = load8::<SRC>(r, v, unscale);
                if SRC != CONTIGUOUS {
                    _mm256_storeu_ps(out.add(t * k + 8 * v), row);
                }
                d = _mm256_fmadd_ps(row, xv[v], d);
            }
            if SRC != CONTIGUOUS {
                r = out.add(t * k) as *const u8;
            }
            let mut lanes = [0f32; 4];
            _mm_storeu_ps(lanes.as_mut_ptr(), hsum4_256(d, zero, zero, zero));
            let c = base.map_or(0.0, |b| b[t]) + slope[t] * lanes[0];
            let cv = _mm256_set1_ps(c);
            for v in 0..V {
                let row = _mm256_loadu_ps((r as *const f32).add(8 * v));
                acc[v] = _mm256_fmadd_ps(cv, row, acc[v]);
            }
            t += 1;
        }
        for v in 0..V {
            let yp = y.as_mut_ptr().add(8 * v);
            _mm256_storeu_ps(yp, _mm256_add_ps(_mm256_loadu_ps(yp), acc[v]));
        }
    }

    /// `y = A x` as `Σ_j x_j A[j, :]` with two interleaved accumulator sets (halves the chain of
    /// dependent adds); `k = 16·V`.
    ///
    /// # Safety
    /// AVX-512F, AVX2 and FMA are available; `a` holds `k·k` values, `x` and `y` `k`.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn symv512<const V: usize>(a: &[f32], x: &[f32], y: &mut [f32]) {
        let k = 16 * V;
        let ap = a.as_ptr();
        let mut even = [_mm512_setzero_ps(); V];
        let mut odd = [_mm512_setzero_ps(); V];
        let mut j = 0;
        while j + 2 <= k {
            let x0 = _mm512_set1_ps(x[j]);
            let x1 = _mm512_set1_ps(x[j + 1]);
            let r0 = ap.add(j * k);
            let r1 = ap.add((j + 1) * k);
            for v in 0..V {
                even[v] = _mm512_fmadd_ps(x0, _mm512_loadu_ps(r0.add(16 * v)), even[v]);
                odd[v] = _mm512_fmadd_ps(x1, _mm512_loadu_ps(r1.add(16 * v)), odd[v]);
            }
            j += 2;
        }
        for v in 0..V {
            _mm512_storeu_ps(y.as_mut_ptr().add(16 * v), _mm512_add_ps(even[v], odd[v]));
        }
    }

    /// Writes `row · scale` as f16 (round to nearest even); `row.len()` is a multiple of 16.
    ///
    /// # Safety
    /// AVX-512F and AVX2 are available; `out` holds `row.len()` values.
    #[target_feature(enable = "avx512f,avx2")]
    pub(super) unsafe fn to_f16_512(row: &[f32], scale: f32, out: &mut [u16]) {
        let s = _mm512_set1_ps(scale);
        for c in 0..row.len() / 16 {
            let v = _mm512_mul_ps(_mm512_loadu_ps(row.as_ptr().add(16 * c)), s);
            let h = _mm512_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
            _mm256_storeu_si256(out.as_mut_ptr().add(16 * c) as *mut __m256i, h);
        }
    }

    /// Writes `row · scale` as f16 (round to nearest even); `row.len()` is a multiple of 8.
    ///
    /// # Safety
    /// AVX2 and F16C are available; `out` holds `row.len()` values.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) unsafe fn to_f16_256(row: &[f32], scale: f32, out: &mut [u16]) {
        let s = _mm256_set1_ps(scale);
        for c in 0..row.len() / 8 {
            let v = _mm256_mul_ps(_mm256_loadu_ps(row.as_ptr().add(8 * c)), s);
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
            _mm_storeu_si128(out.as_mut_ptr().add(8 * c) as *mut __m128i, h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_pass(
        a: &[f32],
        k: usize,
        x: &[f32],
        y: &mut [f32],
        base: Option<&[f32]>,
        slope: &[f32],
    ) {
        for (t, &s) in slope.iter().enumerate() {
            let row = &a[t * k..(t + 1) * k];
            let d: f64 = row.iter().zip(x).map(|(p, q)| *p as f64 * *q as f64).sum();
            let c = base.map_or(0.0, |b| b[t] as f64) + s as f64 * d;
            for (yj, rj) in y.iter_mut().zip(row) {
                *yj = (*yj as f64 + c * *rj as f64) as f32;
            }
        }
    }

    /// Every level this CPU can execute, whatever `CAIRN_SIMD` forces: each path is compared with
    /// the portable one wherever it can run.
    fn levels() -> Vec<SimdLevel> {
        cairn_simd::supported()
    }

    #[test]
    fn gather_copies_the_rows_in_order() {
        let m: Vec<f32> = (0..6 * 16).map(|v| v as f32).collect();
        let mut out = vec![7.0; 3];
        BlockOps::new(16).gather(&m, &[4, 0, 4], &mut out);
        let want: Vec<f32> = [4usize, 0, 4]
            .iter()
            .flat_map(|&r| m[r * 16..(r + 1) * 16].to_vec())
            .collect();
        assert_eq!(out, want);
    }

    proptest! {
        /// The compact block holds the same values as the f32 block, and the passes sum in the
        /// same order, so the results are bit for bit the same.
        #[test]
        fn compact_block_passes_equal_the_f32_block_passes(
            rows in prop::sample::select(vec![0usize, 1, 3, 4, 5, 9, 33]),
            table in 1usize..60,
            k in prop::sample::select(vec![16usize, 48, 128]),
            seed in 0u64..1000,
            with_base in any::<bool>(),
        ) {
            use rand::{Rng, SeedableRng};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let fixed: Vec<f32> = (0..table * k).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
            let idx: Vec<u32> = (0..rows).map(|_| rng.random_range(0..table as u32)).collect();
            let x: Vec<f32> = (0..k).map(|_| rng.random::<f32>() - 0.5).collect();
            let p: Vec<f32> = (0..k).map(|_| rng.random::<f32>() - 0.5).collect();
            let base: Vec<f32> = (0..rows).map(|_| 1.0 + rng.random::<f32>()).collect();
            let slope: Vec<f32> = (0..rows).map(|_| -rng.random::<f32>()).collect();
            let base = with_base.then_some(&base[..]);
            let ops = BlockOps::new(k);
            let rows_in = ops.fixed_rows(&fixed, true);
            let mut compact = CompactBlock::default();
            let mut y_compact = vec![0.25f32; k];
            if !ops.gather_pass_compact(&rows_in, &idx, &mut compact, &x, &mut y_compact, base, &slope) {
                // No AVX-512 or no f16 copy on this CPU: there is no compact path to compare.
                return Ok(());
            }
            let mut block = Vec::new();
            let mut y_block = vec![0.25f32; k];
            ops.gather_pass(&rows_in, &idx, &mut block, &x, &mut y_block, base, &slope);
            prop_assert_eq!(&y_compact, &y_block);
            let mut step_compact = vec![-1.0f32; k];
            let mut step_block = vec![-1.0f32; k];
            ops.weighted_pass_compact(&mut compact, &p, &mut step_compact, None, &slope);
            ops.weighted_pass(&block, &p, &mut step_block, None, &slope);
            prop_assert_eq!(step_compact, step_block);
        }

        #[test]
        fn every_path_matches_the_definition(
            rows in prop::sample::select(vec![0usize, 1, 3, 4, 7, 10, 31, 32, 33, 37, 70]),
            k in prop::sample::select(vec![3usize, 8, 16, 24, 32, 64, 72, 128, 136]),
            seed in 0u32..1000,
            with_base in any::<bool>(),
        ) {
            let a: Vec<f32> = (0..rows * k)
                .map(|v| ((v as u32 * 7 + seed) % 13) as f32 * 0.1 - 0.6)
                .collect();
            let x: Vec<f32> = (0..k).map(|v| ((v as u32 * 3 + seed) % 5) as f32 * 0.2 - 0.4).collect();
            let base: Vec<f32> = (0..rows).map(|t| 1.0 + t as f32 * 0.25).collect();
            let slope: Vec<f32> = (0..rows).map(|t| 0.5 - t as f32 * 0.2).collect();
            let base = with_base.then_some(&base[..]);
            let mut want = vec![0.5f32; k];
            naive_pass(&a, k, &x, &mut want, base, &slope);
            let g: Vec<f32> = (0..k * k)
                .map(|v| {
                    let (r, c) = (v / k, v % k);
                    ((r.min(c) * 31 + r.max(c) * 17 + seed as usize) % 11) as f32 * 0.1 - 0.5
                })
                .collect();
            let sym_want: Vec<f32> = (0..k)
                .map(|r| (0..k).map(|c| g[r * k + c] * x[c]).sum())
                .collect();
            // The gathered rows: row t of `a` is row perm[t] of `fixed`.
            let perm: Vec<u32> = (0..rows as u32).map(|t| (rows as u32 - 1 - t + seed) % rows as u32).collect();
            let mut fixed = vec![0f32; rows * k];
            for (t, &p) in perm.iter().enumerate() {
                fixed[p as usize * k..(p as usize + 1) * k].copy_from_slice(&a[t * k..(t + 1) * k]);
            }
            let idx: Vec<u32> = (0..rows).map(|t| perm[t]).collect();
            let scale_of_y: f32 = want.iter().map(|v| v.abs()).fold(1.0, f32::max);
            for level in levels() {
                let ops = BlockOps::with_level(k, level);
                let mut y = vec![0.5f32; k];
                ops.weighted_pass(&a, &x, &mut y, base, &slope);
                for j in 0..k {
                    prop_assert!((y[j] - want[j]).abs() < 1e-3, "{level:?} k {k}: {} vs {}", y[j], want[j]);
                }
                for compact in [false, true] {
                    let rows_in = ops.fixed_rows(&fixed, compact);
                    let mut block = vec![3.0f32; 2];
                    let mut y = vec![0.5f32; k];
                    ops.gather_pass(&rows_in, &idx, &mut block, &x, &mut y, base, &slope);
                    // f16 keeps 11 significant bits: errors of a few 1e-4 of the largest term.
                    let tol = if compact { 4e-3 * scale_of_y } else { 1e-3 };
                    for j in 0..k {
                        prop_assert!((y[j] - want[j]).abs() < tol, "{level:?} compact {compact} k {k}: {} vs {}", y[j], want[j]);
                    }
                    let copy_tol = if compact { 1e-3 } else { 0.0 };
                    for (b, w) in block[..rows * k].iter().zip(&a) {
                        prop_assert!((b - w).abs() <= copy_tol, "{b} vs {w}");
                    }
                }
                let mut s = vec![9.0f32; k];
                ops.symv(&g, &x, &mut s);
                for j in 0..k {
                    prop_assert!((s[j] - sym_want[j]).abs() < 1e-3, "{level:?} k {k}");
                }
            }
        }
    }
}
