//! Scoring speed of one request's candidates: `predict` row by row against `predict_many`, on a
//! ranker of the serving pipeline's shape (37 features, 200 trees of 31 leaves, 150 rows).
//!
//! `cargo run --release -p cairn-rank --example predict_speed`

use std::time::Instant;

use cairn_rank::{Ranker, RankerConfig, RankingData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const FEATURES: usize = 37;
const ROWS: usize = 150;
const CALLS: usize = 2000;

fn main() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut data = RankingData::new(FEATURES);
    for _ in 0..400 {
        let rows: Vec<f32> = (0..100 * FEATURES).map(|_| rng.random::<f32>()).collect();
        let labels: Vec<f32> = rows
            .chunks(FEATURES)
            .map(|r| f32::from(r[0] + r[1] * r[2] + 0.3 * r[5] > 1.0 && rng.random::<f32>() < 0.7))
            .collect();
        data.push_group(&rows, &labels).expect("well-formed group");
    }
    let ranker = Ranker::fit(&data, None, &RankerConfig::default()).expect("valid data");
    let rows: Vec<f32> = (0..ROWS * FEATURES).map(|_| rng.random::<f32>()).collect();
    let mut by_row = vec![0f32; ROWS];
    let mut batched = vec![0f32; ROWS];
    for round in 0..3 {
        let started = Instant::now();
        for _ in 0..CALLS {
            for (slot, row) in by_row.iter_mut().zip(rows.chunks_exact(FEATURES)) {
                *slot = ranker.predict(row);
            }
            std::hint::black_box(&by_row);
        }
        let one = started.elapsed().as_secs_f64() / CALLS as f64 * 1e6;
        let started = Instant::now();
        for _ in 0..CALLS {
            ranker.predict_many(&rows, &mut batched);
            std::hint::black_box(&batched);
        }
        let many = started.elapsed().as_secs_f64() / CALLS as f64 * 1e6;
        assert_eq!(by_row, batched, "the two paths must agree");
        println!(
            "round {round}: {} trees x {ROWS} rows: predict per row {one:.0} us, predict_many {many:.0} us ({:.2}x)",
            ranker.n_trees(),
            one / many
        );
    }
}
