//! Seconds per iteration on synthetic data, with the peers' settings for implicit (binary matrix,
//! reg 0.01 for ALS, whose solver is Cairn's default unless `--solver` names one; lr 0.01,
//! reg 0.01 for BPR).

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Result};
use cairn_models::{AlsConfig, AlsSolver, ImplicitAls};

pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// CPU seconds (user + system, all threads) this process has used: a fairer measure than wall time
/// when other people's jobs share the cores. `/proc` counts in USER_HZ, which is 100 on Linux.
pub fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let rest = s
                .get(s.rfind(')')? + 2..)?
                .split_whitespace()
                .collect::<Vec<_>>();
            let utime: f64 = rest.get(11)?.parse().ok()?;
            let stime: f64 = rest.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

pub fn run(
    model: &str,
    dir: &Path,
    factors: &str,
    iterations: usize,
    threads: usize,
    solver: AlsSolver,
) -> Result<()> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()?;
    let t0 = Instant::now();
    let m = crate::data::read_synth(dir)?;
    eprintln!(
        "# loaded {}x{} nnz {} in {:.1}s",
        m.n_rows,
        m.n_cols,
        m.nnz(),
        t0.elapsed().as_secs_f64()
    );
    for f in factors.split(',') {
        let f: usize = f.trim().parse()?;
        let load_start = loadavg();
        let stamps = Mutex::new(Vec::new());
        let started = Instant::now();
        let cpu_start = cpu_seconds();
        let report = |stage: &str, done: usize, _total: usize| {
            let t = started.elapsed().as_secs_f64();
            let cpu = cpu_seconds() - cpu_start;
            eprintln!("#   {stage} f{f} iter {done}: {t:.2}s (cpu {cpu:.2}s)");
            if let Ok(mut s) = stamps.lock() {
                s.push((t, cpu));
            }
        };
        match model {
            "als" => {
                let config = AlsConfig {
                    factors: f,
                    iterations,
                    regularization: 0.01,
                    alpha: 1.0,
                    solver,
                    ..AlsConfig::default()
                };
                let fitted = ImplicitAls::fit_with_progress(&m, config, &report);
                std::hint::black_box(&fitted);
            }
            "bpr" => {
                let config = cairn_models::BprConfig {
                    factors: f,
                    iterations,
                    learning_rate: 0.01,
                    regularization: 0.01,
                    ..cairn_models::BprConfig::default()
                };
                let fitted = cairn_models::Bpr::fit_with_progress(&m, config, &report);
                std::hint::black_box(&fitted);
            }
            other => bail!("unknown speed model {other}"),
        }
        let fit_s = started.elapsed().as_secs_f64();
        let stamps = stamps.into_inner().unwrap_or_default();
        let deltas = |pick: fn(&(f64, f64)) -> f64| -> Vec<f64> {
            stamps
                .iter()
                .scan(0.0, |prev, s| {
                    let d = pick(s) - *prev;
                    *prev = pick(s);
                    Some(d)
                })
                .collect()
        };
        let mut per_iter = deltas(|s| s.0);
        let cpu_per_iter = deltas(|s| s.1);
        let mean = per_iter.iter().sum::<f64>() / per_iter.len().max(1) as f64;
        let iter_s: Vec<f64> = per_iter
            .iter()
            .map(|v| (v * 1000.0).round() / 1000.0)
            .collect();
        let cpu_iter_s: Vec<f64> = cpu_per_iter
            .iter()
            .map(|v| (v * 100.0).round() / 100.0)
            .collect();
        let median_cpu = median(cpu_per_iter);
        let median = median(std::mem::take(&mut per_iter));
        let line = serde_json::json!({
            "bench": model, "engine": "cairn", "factors": f, "iterations": iterations,
            "threads": threads, "solver": solver, "users": m.n_rows, "items": m.n_cols, "nnz": m.nnz(),
            "fit_s": fit_s, "iter_s": iter_s, "iter_s_mean": mean, "iter_s_median": median,
            "cpu_iter_s": cpu_iter_s, "cpu_iter_s_median": median_cpu,
            "simd": cairn_models::cairn_simd::level().name(),
            "loadavg_1m_start": load_start, "loadavg_1m_end": loadavg(),
        });
        println!("{line}");
    }
    Ok(())
}
