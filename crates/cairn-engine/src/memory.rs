//! Estimating what in-memory structures cost, for the bounds that keep a long-running server's
//! memory flat (`serve.cursor_cache_bytes`, the rate limiter's buckets) and the gauges that show
//! them (docs/reliability/memory.md).

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

/// Hands the allocator's free memory back to the operating system.
///
/// glibc's malloc gives each thread that allocates its own arena and keeps what is freed there
/// for later use; a training allocates on several threads, so after it the process holds tens of
/// MB that nothing uses (counted with `malloc_stats` during a soak: 137 MB held by the arenas,
/// 41 MB of it in use). `malloc_trim` returns their free pages. Elsewhere this does nothing.
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
