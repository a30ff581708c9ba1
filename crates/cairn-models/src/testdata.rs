//! Seeded synthetic data and a held-out evaluation for the models' tests: users belong to planted
//! taste clusters, so a model that learns co-occurrence beats popularity by a wide margin.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use cairn_core::CsrMatrix;

use crate::{top_k, Popularity, Recommender};

/// A held-out user: fold-in history and target items.
pub type HeldOutUser = (Vec<(u32, f32)>, Vec<u32>);

/// Training matrix plus held-out users: (fold-in history, target items).
pub struct Planted {
    pub train: CsrMatrix,
    pub held_out: Vec<HeldOutUser>,
}

/// `clusters` groups of `items_per_cluster` items; each user draws most items from their own cluster
/// (skewed towards the cluster's head) and some from the global head.
pub fn planted(
    seed: u64,
    n_train: usize,
    n_held: usize,
    clusters: usize,
    items_per_cluster: usize,
) -> Planted {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n_items = clusters * items_per_cluster;
    let draw_user = |rng: &mut ChaCha8Rng| -> Vec<u32> {
        let c = rng.random_range(0..clusters);
        let len = rng.random_range(8..25);
        let mut items = Vec::with_capacity(len);
        while items.len() < len {
            let item = if rng.random::<f32>() < 0.75 {
                // Squaring a uniform skews towards the cluster's first items.
                let r: f32 = rng.random();
                (c * items_per_cluster) as u32 + ((r * r) * items_per_cluster as f32) as u32
            } else {
                let r: f32 = rng.random();
                ((r * r * r) * n_items as f32) as u32
            };
            if !items.contains(&item) {
                items.push(item);
            }
        }
        items
    };
    let mut triplets = Vec::new();
    for u in 0..n_train {
        for i in draw_user(&mut rng) {
            triplets.push((u as u32, i, 1.0));
        }
    }
    let held_out = (0..n_held)
        .map(|_| {
            let items = draw_user(&mut rng);
            let cut = items.len() * 4 / 5;
            let history = items[..cut].iter().map(|&i| (i, 1.0)).collect();
            (history, items[cut..].to_vec())
        })
        .collect();
    Planted {
        train: CsrMatrix::from_triplets(n_train, n_items, triplets),
        held_out,
    }
}

/// Mean of hits@k / min(k, |targets|) over held-out users, seen items excluded.
pub fn recall_at(model: &dyn Recommender, held_out: &[HeldOutUser], k: usize) -> f64 {
    let mut scores = vec![0f32; model.n_items()];
    let mut total = 0.0;
    for (history, targets) in held_out {
        model.score(history, &mut scores);
        let best = top_k(&scores, k, |i| history.iter().any(|&(h, _)| h == i));
        let hits = best.iter().filter(|(i, _)| targets.contains(i)).count();
        total += hits as f64 / k.min(targets.len()) as f64;
    }
    total / held_out.len() as f64
}

/// Recall@k of popularity on the same data: the baseline every model must clearly beat.
pub fn popularity_recall(data: &Planted, k: usize) -> f64 {
    recall_at(&Popularity::from_matrix(&data.train), &data.held_out, k)
}

/// Top-k item lists for each held-out user.
pub fn top_lists(model: &dyn Recommender, held_out: &[HeldOutUser], k: usize) -> Vec<Vec<u32>> {
    let mut scores = vec![0f32; model.n_items()];
    held_out
        .iter()
        .map(|(history, _)| {
            model.score(history, &mut scores);
            top_k(&scores, k, |i| history.iter().any(|&(h, _)| h == i))
                .into_iter()
                .map(|(i, _)| i)
                .collect()
        })
        .collect()
}

/// A training user's row as a history.
pub fn history_of(m: &CsrMatrix, user: usize) -> Vec<(u32, f32)> {
    let (items, values) = m.row(user);
    items.iter().copied().zip(values.iter().copied()).collect()
}

/// Fraction of shared items between two top lists of the same length.
pub fn overlap(a: &[u32], b: &[u32]) -> f64 {
    let shared = a.iter().filter(|i| b.contains(i)).count();
    shared as f64 / a.len().max(1) as f64
}
