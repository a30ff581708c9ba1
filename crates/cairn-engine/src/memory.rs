//! Estimating what in-memory structures cost, for the bounds that keep a long-running server's
//! memory flat (`serve.cursor_cache_bytes`, the rate limiter's buckets) and the gauges that show
//! them (docs/reliability/memory.md).

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// What one heap allocation of `requested` bytes costs with glibc's malloc: 8 bytes of header,
/// rounded up to 16, at least 32. An estimate (another allocator rounds differently), but one that
/// counts every allocation rather than only the bytes asked for.
pub fn heap_bytes(requested: usize) -> usize {
    if requested == 0 {
        0
    } else {
        (requested + 8).next_multiple_of(16).max(32)
    }
}

/// The resident set size of this process in bytes (`VmRSS` in `/proc/self/status`); `None` where
/// that cannot be read (not Linux).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

/// `VmRSS` of a `/proc/PID/status` text, in bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// A global allocator that counts the bytes live on the heap (handed out and not yet freed) and
/// passes every call to the allocator it wraps.
///
/// The resident set size cannot tell a leak from an allocator that keeps freed pages for later:
/// both grow the RSS. The live count can: a leak grows it, retention does not. Its price is one
/// relaxed atomic add per allocation and per free, on one shared counter.
pub struct CountingAllocator<A> {
    inner: A,
}

static LIVE_HEAP_BYTES: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

impl<A> CountingAllocator<A> {
    pub const fn new(inner: A) -> Self {
        CountingAllocator { inner }
    }
}

// SAFETY: every call is passed to `inner` unchanged; the counter only observes sizes.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAllocator<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.inner.alloc(layout);
        if !p.is_null() {
            counted(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = self.inner.alloc_zeroed(layout);
        if !p.is_null() {
            counted(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.inner.dealloc(ptr, layout);
        counted(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = self.inner.realloc(ptr, layout, new_size);
        if !p.is_null() {
            counted(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[inline]
fn counted(delta: isize) {
    if delta >= 0 {
        LIVE_HEAP_BYTES.fetch_add(delta as usize, Ordering::Relaxed);
    } else {
        LIVE_HEAP_BYTES.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
    }
    if !COUNTING.load(Ordering::Relaxed) {
        COUNTING.store(true, Ordering::Relaxed);
    }
}

/// The bytes live on the heap, when the process's global allocator is a [`CountingAllocator`]
/// (the `cairn` binary's is); `None` otherwise. Sizes as requested, without the allocator's
/// rounding and headers.
pub fn live_heap_bytes() -> Option<u64> {
    COUNTING
        .load(Ordering::Relaxed)
        .then(|| LIVE_HEAP_BYTES.load(Ordering::Relaxed) as u64)
}

static RELEASE_HOOK: OnceLock<fn()> = OnceLock::new();

/// Sets what [`release_free_memory`] calls besides glibc's `malloc_trim`: the binary that chooses
/// the global allocator knows how to make it give back its free pages (mimalloc's `mi_collect`);
/// this crate does not. The first call wins.
pub fn set_release_hook(hook: fn()) {
    let _ = RELEASE_HOOK.set(hook);
}

/// Hands the allocator's free memory back to the operating system.
///
/// glibc's malloc gives each thread that allocates its own arena and keeps what is freed there
/// for later use; a training allocates on several threads, so after it the process holds tens of
/// MB that nothing uses (counted with `malloc_stats` during a soak: 137 MB held by the arenas,
/// 41 MB of it in use). `malloc_trim` returns their free pages. Then it calls the hook of
/// [`set_release_hook`], if one is set (the `cairn` binary's: mimalloc's `mi_collect(true)`), on
/// this thread and on every thread of rayon's global pool.
///
/// Why on the pool's threads too: mimalloc keeps a heap per thread, and a page freed by another
/// thread waits in its owner's list until the owner next allocates or collects. A training's
/// arrays are allocated by the pool's workers, which then sit idle until the next training, so
/// `mi_collect` on the thread that finished the training alone left those pages in the process
/// (soak run 7: the live heap back at 115 MiB, the RSS 147–163 MiB). A broadcast costs one wake-up
/// per worker after each training.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim takes no pointer and has no precondition; glibc locks each arena
        // while it trims it, so it is safe to call while other threads allocate.
        unsafe {
            malloc_trim(0);
        }
    }
    if let Some(&hook) = RELEASE_HOOK.get() {
        hook();
        // Queued, not awaited: a worker still busy (a training abandoned past its deadline runs
        // on) collects when it is free, and the caller does not wait for it.
        rayon::spawn_broadcast(move |_| hook());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_cost_a_header_and_round_up() {
        assert_eq!(heap_bytes(0), 0);
        assert_eq!(heap_bytes(1), 32);
        assert_eq!(heap_bytes(24), 32);
        assert_eq!(heap_bytes(25), 48);
        assert_eq!(heap_bytes(1000), 1008);
    }

    #[test]
    fn the_counting_allocator_counts_what_is_live() {
        let counting = CountingAllocator::new(std::alloc::System);
        let before = LIVE_HEAP_BYTES.load(Ordering::Relaxed);
        let layout = Layout::from_size_align(1000, 8).unwrap();
        // SAFETY: the layout is non-zero in size; each pointer is freed once with its layout.
        unsafe {
            let a = counting.alloc(layout);
            let b = counting.alloc_zeroed(layout);
            assert_eq!(LIVE_HEAP_BYTES.load(Ordering::Relaxed), before + 2000);
            let a = counting.realloc(a, layout, 3000);
            assert_eq!(LIVE_HEAP_BYTES.load(Ordering::Relaxed), before + 4000);
            counting.dealloc(a, Layout::from_size_align(3000, 8).unwrap());
            counting.dealloc(b, layout);
        }
        assert_eq!(LIVE_HEAP_BYTES.load(Ordering::Relaxed), before);
        assert_eq!(live_heap_bytes(), Some(before as u64));
    }

    #[test]
    fn releasing_free_memory_keeps_live_memory() {
        let live: Vec<Vec<u8>> = (0..1000).map(|i| vec![(i % 251) as u8; 1000]).collect();
        let freed: Vec<Vec<u8>> = (0..1000).map(|_| vec![1u8; 1000]).collect();
        drop(freed);
        release_free_memory();
        assert!(live
            .iter()
            .enumerate()
            .all(|(i, v)| v.len() == 1000 && v.iter().all(|&b| b == (i % 251) as u8)));
    }

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tcairn\nVmPeak:\t  999 kB\nVmRSS:\t   21504 kB\nThreads:\t9\n";
        assert_eq!(parse_vm_rss(status), Some(21504 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        if cfg!(target_os = "linux") {
            assert!(resident_bytes().unwrap() > 0);
        }
    }
}
