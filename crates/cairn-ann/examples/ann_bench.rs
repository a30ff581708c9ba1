//! Benchmark on vectors exported by scripts/ann-compare.sh (the generator of the peer harness's
//! `speed_peers.py ann`): build time with 1 and 2 threads, then an ef sweep with recall@k against
//! the exported exact ground truth and single-thread QPS. One JSON line per measurement.
//!
//!     cargo run --release -p cairn-ann --example ann_bench -- DATA_DIR [--efs 10,16,..]
//!         [--build-threads 1,2] [--m 16] [--ef-construction 200] [--metric ip|cos|l2]
//!         [--mips direct|l2-reduction]
//!
//! `--mips l2-reduction` measures the alternative to searching inner product directly: every item
//! gets an extra coordinate sqrt(max‖x‖² − ‖x‖²), the query a 0, and an L2 index is searched
//! (Bachrach et al. 2014); recall is still against the exact inner-product top-k.
//!
//! DATA_DIR holds base.f32 (n × dim), query.f32 (q × dim), gt.u32 (q × k, exact top-k ids) as
//! raw little-endian arrays and meta.json with n, dim, queries, k.

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use cairn_ann::{HnswConfig, HnswIndex, Metric};
use serde_json::json;

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn read_u32(path: &Path) -> Vec<u32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Appends sqrt(max‖x‖² − ‖x‖²) to every row, so that L2 order equals inner-product order.
fn augment_items(base: &[f32], dim: usize) -> Vec<f32> {
    let norms: Vec<f32> = base
        .chunks_exact(dim)
        .map(|r| r.iter().map(|x| x * x).sum())
        .collect();
    let max = norms.iter().copied().fold(0f32, f32::max);
    base.chunks_exact(dim)
        .zip(&norms)
        .flat_map(|(r, n)| r.iter().copied().chain([(max - n).max(0.0).sqrt()]))
        .collect()
}

fn augment_queries(queries: &[f32], dim: usize) -> Vec<f32> {
    queries
        .chunks_exact(dim)
        .flat_map(|r| r.iter().copied().chain([0.0]))
        .collect()
}

/// The 1-minute load average (Linux), recorded with every line because the machine is shared.
fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut dir = None;
    let mut efs = "10,16,24,32,40,48,56,64,80,96,128".to_string();
    let mut build_threads = "1,2".to_string();
    let mut m = 16;
    let mut ef_construction = 200;
    let mut metric = "ip".to_string();
    let mut mips = "direct".to_string();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--efs" => efs = val(),
            "--build-threads" => build_threads = val(),
            "--m" => m = val().parse().expect("--m"),
            "--ef-construction" => ef_construction = val().parse().expect("--ef-construction"),
            "--metric" => metric = val(),
            "--mips" => mips = val(),
            _ if !a.starts_with('-') => dir = Some(a),
            _ => panic!("unknown option {a}"),
        }
    }
    let dir = dir.expect("usage: ann_bench DATA_DIR [options]");
    let dir = Path::new(&dir);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).expect("meta.json"))
            .expect("meta.json");
    let (dim, k) = (
        meta["dim"].as_u64().expect("dim") as usize,
        meta["k"].as_u64().expect("k") as usize,
    );
    let mut base = read_f32(&dir.join("base.f32"));
    let mut queries = read_f32(&dir.join("query.f32"));
    let gt = read_u32(&dir.join("gt.u32"));
    let (n, nq) = (base.len() / dim, queries.len() / dim);
    assert_eq!(gt.len(), nq * k, "gt.u32 must hold queries × k ids");
    let metric = match metric.as_str() {
        "ip" => Metric::InnerProduct,
        "cos" => Metric::Cosine,
        "l2" => Metric::L2,
        other => panic!("unknown metric {other}"),
    };
    let (metric, dim) = match mips.as_str() {
        "direct" => (metric, dim),
        "l2-reduction" => {
            assert_eq!(
                metric,
                Metric::InnerProduct,
                "--mips l2-reduction needs --metric ip"
            );
            (base, queries) = (augment_items(&base, dim), augment_queries(&queries, dim));
            (Metric::L2, dim + 1)
        }
        other => panic!("unknown --mips {other}"),
    };
    let config = HnswConfig {
        m,
        ef_construction,
        metric,
        ..HnswConfig::default()
    };
    let common = json!({"lib": "cairn", "n": n, "dim": dim, "queries": nq, "k": k, "metric": metric,
        "M": m, "ef_construction": ef_construction, "mips": mips, "simd": cairn_simd::level().name()});

    let mut searched: Option<HnswIndex> = None;
    for t in build_threads
        .split(',')
        .map(|t| t.trim().parse::<usize>().expect("--build-threads"))
    {
        let start = Instant::now();
        let index = HnswIndex::build_with_threads(&base, dim, &config, t).expect("build");
        let build_s = start.elapsed().as_secs_f64();
        let mut line = common.clone();
        line["build_threads"] = json!(t);
        line["loadavg_1m_end"] = json!(loadavg());
        line["build_s"] = json!((build_s * 100.0).round() / 100.0);
        println!("{line}");
        // The sweep uses the first build (1 thread by default, as the peers' build is).
        if searched.is_none() {
            searched = Some(index);
        }
    }
    let index = searched.expect("at least one build");

    let truth: Vec<HashSet<u32>> = gt
        .chunks_exact(k)
        .map(|row| row.iter().copied().collect())
        .collect();
    let mut curve = Vec::new();
    let mut at_target = serde_json::Value::Null;
    for ef in efs
        .split(',')
        .map(|e| e.trim().parse::<usize>().expect("--efs"))
    {
        let start = Instant::now();
        let results: Vec<Vec<(u32, f32)>> = queries
            .chunks_exact(dim)
            .map(|q| index.search(q, k, ef))
            .collect();
        let secs = start.elapsed().as_secs_f64();
        let hits: usize = results
            .iter()
            .zip(&truth)
            .map(|(r, t)| r.iter().filter(|(id, _)| t.contains(id)).count())
            .sum();
        let recall = hits as f64 / (nq * k) as f64;
        let point = json!({"ef": ef, "recall": (recall * 1e4).round() / 1e4, "qps": (nq as f64 / secs * 10.0).round() / 10.0});
        eprintln!(
            "# cairn ef {ef}: recall {recall:.4} qps {:.0}",
            nq as f64 / secs
        );
        if recall >= 0.95 && at_target.is_null() {
            at_target = point.clone();
        }
        curve.push(point);
    }
    let mut line = common;
    line["threads"] = json!(1);
    line["loadavg_1m_end"] = json!(loadavg());
    line["target_recall"] = json!(0.95);
    line["at_target"] = at_target;
    line["curve"] = json!(curve);
    println!("{line}");
}
