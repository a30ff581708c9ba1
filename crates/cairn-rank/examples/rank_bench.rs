//! Fit and prediction speed on pipeline-shaped synthetic data.
//!
//! cargo run --release -p cairn-rank --example rank_bench -- [groups] [rows_per_group] [trees] [dump_dir]
//!
//! Defaults: 5000 groups × 300 candidates × 24 features (1.5M rows), 200 trees, plus 500 held-out
//! groups for NDCG@10. With `dump_dir`, the train and test sets are also written as raw little-endian
//! f32 files (`{train,test}_{x,y}.f32`, `{train,test}_groups.u32`) so that another library can be
//! timed on the same rows.

use std::io::Write;
use std::time::Instant;

use cairn_rank::{mean_ndcg, Ranker, RankerConfig, RankingData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const N_FEATURES: usize = 24;

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`, 100 ticks/s), so
/// that numbers stay meaningful when the shared machine is busy and wall time stretches.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let after_name = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            let ticks: f64 =
                fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(f64::NAN)
}

/// Standard normal by Box–Muller; enough for synthetic data.
fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let u: f32 = rng.random_range(f32::EPSILON..1.0);
    let v: f32 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

/// One request: retriever scores and ranks, popularity, age, user activity, similarity, event
/// counts and noise; relevance depends on several of them non-linearly.
fn synthetic(groups: usize, rows: usize, seed: u64) -> RankingData {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut data = RankingData::new(N_FEATURES);
    let mut features = vec![0f32; rows * N_FEATURES];
    let mut labels = vec![0f32; rows];
    for _ in 0..groups {
        let activity = (normal(&mut rng) * 1.0 + 3.0).exp();
        let taste = normal(&mut rng);
        let mut utilities = Vec::with_capacity(rows);
        for r in 0..rows {
            let f = &mut features[r * N_FEATURES..(r + 1) * N_FEATURES];
            let latent = normal(&mut rng);
            let popularity = (normal(&mut rng) * 1.5 + 4.0).exp();
            let age_days = rng.random_range(0.0f32..1000.0);
            let similarity = (0.6 * latent + 0.4 * normal(&mut rng)).tanh();
            f[0] = latent + 0.7 * normal(&mut rng); // retriever A score
            f[1] = 0.5 * latent + normal(&mut rng); // retriever B score
            f[2] = popularity.ln() + 0.3 * normal(&mut rng); // popularity retriever score
            f[3] = similarity;
            f[4] = popularity;
            f[5] = age_days;
            f[6] = activity;
            f[7] = taste;
            f[8] = if rng.random::<f32>() < 0.2 {
                f32::NAN // item without content features
            } else {
                similarity + 0.2 * normal(&mut rng)
            };
            for (i, slot) in f[9..14].iter_mut().enumerate() {
                // Counts of event types between the user and the item's neighbours.
                let rate = (0.5 * latent + 0.3 * i as f32 * taste).exp();
                *slot = (rate * rng.random::<f32>() * 3.0).floor();
            }
            for slot in &mut f[14..N_FEATURES] {
                *slot = normal(&mut rng);
            }
            let fresh = (-age_days / 200.0).exp();
            let utility = 1.2 * latent
                + 0.8 * taste * (popularity.ln() - 4.0) / 1.5
                + 1.0 * fresh * f32::from(activity > 20.0)
                + 0.5 * normal(&mut rng);
            utilities.push(utility);
        }
        // Retriever ranks within the request.
        for score_feature in [0usize, 1] {
            let mut order: Vec<usize> = (0..rows).collect();
            order.sort_by(|&a, &b| {
                features[b * N_FEATURES + score_feature]
                    .total_cmp(&features[a * N_FEATURES + score_feature])
            });
            for (rank, &row) in order.iter().enumerate() {
                features[row * N_FEATURES + 22 + score_feature] = rank as f32;
            }
        }
        // The user interacts with about 3% of candidates, the most useful ones more likely.
        let mut sorted = utilities.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let cut = sorted[(rows / 30).max(1) - 1];
        for (label, &u) in labels.iter_mut().zip(&utilities) {
            *label = if u >= cut {
                if rng.random::<f32>() < 0.3 {
                    2.0
                } else {
                    1.0
                }
            } else {
                f32::from(rng.random::<f32>() < 0.005)
            };
        }
        data.push_group(&features, &labels)
            .expect("consistent lengths");
    }
    data
}

fn dump(dir: &str, name: &str, data: &RankingData) -> std::io::Result<()> {
    let write = |file: &str, bytes: Vec<u8>| -> std::io::Result<()> {
        std::fs::File::create(format!("{dir}/{name}_{file}"))?.write_all(&bytes)
    };
    write(
        "x.f32",
        data.features.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )?;
    write(
        "y.f32",
        data.labels.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )?;
    write(
        "groups.u32",
        data.group_sizes
            .iter()
            .flat_map(|&v| (v as u32).to_le_bytes())
            .collect(),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (groups, rows, trees) = (arg(0, 5000), arg(1, 300), arg(2, 200));

    let started = Instant::now();
    let train = synthetic(groups, rows, 1);
    let test = synthetic(500, rows, 2);
    println!(
        "data: {} train rows ({groups} groups × {rows}), {} test rows, {N_FEATURES} features, made in {:.1} s",
        train.n_rows(),
        test.n_rows(),
        started.elapsed().as_secs_f64()
    );
    if let Some(dir) = args.get(3) {
        std::fs::create_dir_all(dir)?;
        dump(dir, "train", &train)?;
        dump(dir, "test", &test)?;
        println!("wrote {dir}/{{train,test}}_{{x,y}}.f32 and _groups.u32");
    }

    let config = RankerConfig {
        trees,
        ..RankerConfig::default()
    };
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let ranker = Ranker::fit(&train, None, &config)?;
    let fit_s = started.elapsed().as_secs_f64();
    let fit_cpu = cpu_seconds() - cpu;
    println!(
        "fit: {fit_s:.2} s wall, {fit_cpu:.2} s CPU for {} trees ({} threads), config {config:?}",
        ranker.n_trees(),
        rayon::current_num_threads()
    );

    let mut scores = vec![0f32; test.n_rows()];
    let batch = 1000;
    let repeats = 5;
    let (started, cpu) = (Instant::now(), cpu_seconds());
    for _ in 0..repeats {
        for (rows, out) in test
            .features
            .chunks(batch * N_FEATURES)
            .zip(scores.chunks_mut(batch))
        {
            ranker.predict_many(rows, out);
        }
    }
    let predicted = (repeats * test.n_rows()) as f64;
    let ns_per_row = started.elapsed().as_nanos() as f64 / predicted;
    let cpu_ns = (cpu_seconds() - cpu) * 1e9 / predicted;
    println!("predict_many: {ns_per_row:.0} ns/row wall, {cpu_ns:.0} ns/row CPU (batches of {batch}, one thread)");

    let (started, cpu) = (Instant::now(), cpu_seconds());
    let mut checksum = 0f64;
    for row in test.features.chunks(N_FEATURES) {
        checksum += ranker.predict(row) as f64;
    }
    let single_ns = started.elapsed().as_nanos() as f64 / test.n_rows() as f64;
    let cpu_ns = (cpu_seconds() - cpu) * 1e9 / test.n_rows() as f64;
    println!(
        "predict: {single_ns:.0} ns/row wall, {cpu_ns:.0} ns/row CPU (checksum {checksum:.3})"
    );

    let learned = mean_ndcg(&test, &scores, 10);
    let best_single = (0..N_FEATURES)
        .flat_map(|f| [1.0f32, -1.0].map(move |s| (f, s)))
        .map(|(f, sign)| {
            let s: Vec<f32> = test
                .features
                .chunks(N_FEATURES)
                .map(|r| {
                    if r[f].is_nan() {
                        f32::NEG_INFINITY
                    } else {
                        sign * r[f]
                    }
                })
                .collect();
            (mean_ndcg(&test, &s, 10), f, sign)
        })
        .fold((0.0, 0, 1.0), |a, b| if b.0 > a.0 { b } else { a });
    println!(
        "test NDCG@10: ranker {learned:.4}; best single feature {:.4} (feature {}, sign {})",
        best_single.0, best_single.1, best_single.2
    );
    let importance = ranker.feature_importance();
    let total: f32 = importance.iter().sum();
    let mut top: Vec<(usize, f32)> = importance.into_iter().enumerate().collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    let top: Vec<String> = top[..5]
        .iter()
        .map(|(f, g)| format!("f{f} {:.0}%", 100.0 * g / total.max(f32::MIN_POSITIVE)))
        .collect();
    println!("gain share: {}", top.join(", "));
    Ok(())
}
