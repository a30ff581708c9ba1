//! What the machine was doing: load average and a process's CPU time, from /proc (Linux only; other
//! systems get NaN, which serde_json writes as null).

/// The 1-minute load average.
pub fn loadavg_1m() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// User + system CPU seconds used so far by process `pid` (all its threads).
pub fn cpu_seconds(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_cpu_seconds(&s))
        .unwrap_or(f64::NAN)
}

/// Linux reports times in USER_HZ ticks, fixed at 100 per second in the kernel's user ABI.
const TICKS_PER_SECOND: f64 = 100.0;

fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    // The command name (field 2) is in parentheses and may hold spaces; fields after it are plain.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 11 and 12 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime_after_a_name_with_spaces() {
        let line =
            "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1 2 3";
        assert_eq!(parse_cpu_seconds(line), Some(3.0));
        assert_eq!(parse_cpu_seconds("garbage"), None);
    }

    #[test]
    fn own_process_has_readable_cpu_time_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(cpu_seconds(std::process::id()) >= 0.0);
            assert!(loadavg_1m() >= 0.0);
        }
    }
}
