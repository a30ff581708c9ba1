//! Which SIMD instruction set Cairn's hot kernels run, decided in one place.
//!
//! The kernels of `cairn-models` (ALS, BPR, rating models) and `cairn-ann` (HNSW distances) are each
//! compiled several times, once per [`SimdLevel`], and pick a copy at run time with [`level`]. Both
//! used to detect the CPU on their own, with different rules for AVX-512; this crate is now the only
//! place that decides, so a kernel cannot run AVX-512 in one crate and AVX2 in the other.
//!
//! # Forcing a level
//! `CAIRN_SIMD=portable|avx2|avx512|auto` chooses the level for the whole process (read once, at the
//! first call of [`level`]). It exists so that every compiled copy of every kernel runs in the test
//! suite on any machine that can execute it (`.ci/run` runs the tests once per [`supported`] level),
//! instead of only the widest one of the machine the kernel was written on; and so that a figure can
//! be measured at a chosen level. A level the CPU cannot execute is never used: asking for one prints
//! a warning and runs the widest supported level instead, because executing AVX-512 instructions on a
//! CPU without them is undefined behaviour, not a slower path.

use std::sync::OnceLock;

/// The name of the environment variable that forces a level.
pub const ENV_VAR: &str = "CAIRN_SIMD";

/// One compiled copy of the kernels, named by the instruction set it is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdLevel {
    /// Baseline x86-64 (SSE2) or any other architecture: plain multiply and add, auto-vectorised.
    Portable,
    /// AVX2 with fused multiply-add (Haswell, Zen and later).
    Avx2Fma,
    /// AVX-512 F and VL, together with AVX2 and FMA (Skylake-SP, Ice Lake, Zen 4 and later).
    Avx512,
}

impl SimdLevel {
    /// Every level, narrowest first.
    pub const ALL: [SimdLevel; 3] = [SimdLevel::Portable, SimdLevel::Avx2Fma, SimdLevel::Avx512];

    /// The name used by `CAIRN_SIMD` and in benchmark output.
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Portable => "portable",
            SimdLevel::Avx2Fma => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }

    /// The level `name` stands for (`portable`, `avx2`, `avx512`; case-insensitive).
    pub fn from_name(name: &str) -> Option<SimdLevel> {
        let name = name.trim().to_ascii_lowercase();
        SimdLevel::ALL.into_iter().find(|l| l.name() == name)
    }

    /// Whether this CPU can execute this level's instructions.
    pub fn is_supported(self) -> bool {
        match self {
            SimdLevel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx2Fma => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx512 => {
                SimdLevel::Avx2Fma.is_supported()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

impl std::fmt::Display for SimdLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Every level this CPU can execute, narrowest first (always starts with [`SimdLevel::Portable`]).
pub fn supported() -> Vec<SimdLevel> {
    SimdLevel::ALL
        .into_iter()
        .filter(|l| l.is_supported())
        .collect()
}

/// The widest level this CPU can execute.
pub fn detected() -> SimdLevel {
    *supported().last().unwrap_or(&SimdLevel::Portable)
}

/// The level the kernels run: [`detected`], unless `CAIRN_SIMD` forces another supported one.
/// Decided once per process, so every kernel of a run uses the same level.
pub fn level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let (level, warning) = choose(std::env::var(ENV_VAR).ok().as_deref());
        if let Some(warning) = warning {
            eprintln!("cairn: {warning}");
        }
        level
    })
}

/// The level for a `CAIRN_SIMD` value (`None`: unset), and a warning when the value cannot be
/// followed.
fn choose(forced: Option<&str>) -> (SimdLevel, Option<String>) {
    let best = detected();
    let Some(value) = forced.map(str::trim).filter(|v| !v.is_empty()) else {
        return (best, None);
    };
    if value.eq_ignore_ascii_case("auto") {
        return (best, None);
    }
    match SimdLevel::from_name(value) {
        Some(level) if level.is_supported() => (level, None),
        Some(level) => (
            best,
            Some(format!(
                "{ENV_VAR}={value}: this CPU cannot execute {level} instructions; using {best}"
            )),
        ),
        None => (
            best,
            Some(format!(
                "{ENV_VAR}={value} is not a level (portable, avx2, avx512, auto); using {best}"
            )),
        ),
    }
}

/// Asks the CPU to start loading `slice[index]` into L1 (ignored when out of range). Factor rows
/// and graph neighbours are read in an order the hardware prefetcher cannot guess.
#[inline(always)]
pub fn prefetch_at<T>(slice: &[T], index: usize) {
    #[cfg(target_arch = "x86_64")]
    if index < slice.len() {
        // SAFETY: a prefetch is only a hint and never faults; the address lies inside `slice`.
        unsafe {
            std::arch::x86_64::_mm_prefetch(
                slice.as_ptr().add(index) as *const i8,
                std::arch::x86_64::_MM_HINT_T0,
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slice, index);
}

/// Asks the CPU to start loading all of `data` into L1, one cache line (16 floats) at a time.
#[inline(always)]
pub fn prefetch(data: &[f32]) {
    let mut off = 0;
    while off < data.len() {
        prefetch_at(data, off);
        off += 16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for level in SimdLevel::ALL {
            assert_eq!(SimdLevel::from_name(level.name()), Some(level));
            assert_eq!(
                SimdLevel::from_name(&level.name().to_uppercase()),
                Some(level)
            );
        }
        assert_eq!(SimdLevel::from_name("sse9"), None);
    }

    #[test]
    fn portable_is_always_supported_and_levels_nest() {
        let levels = supported();
        assert_eq!(levels[0], SimdLevel::Portable);
        // A wider level is only supported when every narrower one is.
        for (i, level) in SimdLevel::ALL.into_iter().enumerate() {
            assert_eq!(level.is_supported(), i < levels.len(), "{level}");
        }
        assert_eq!(detected(), *levels.last().unwrap());
    }

    #[test]
    fn a_forced_level_is_followed_only_when_the_cpu_has_it() {
        let best = detected();
        assert_eq!(choose(None), (best, None));
        assert_eq!(choose(Some("")), (best, None));
        assert_eq!(choose(Some("auto")), (best, None));
        assert_eq!(choose(Some("portable")), (SimdLevel::Portable, None));
        for level in SimdLevel::ALL {
            let (chosen, warning) = choose(Some(level.name()));
            if level.is_supported() {
                assert_eq!((chosen, warning), (level, None));
            } else {
                assert_eq!(chosen, best);
                assert!(warning.unwrap().contains("cannot execute"));
            }
        }
        let (chosen, warning) = choose(Some("fastest"));
        assert_eq!(chosen, best);
        assert!(warning.unwrap().contains("not a level"));
    }

    #[test]
    fn the_process_level_is_supported() {
        assert!(level().is_supported());
        assert!(level() <= detected());
    }
}
