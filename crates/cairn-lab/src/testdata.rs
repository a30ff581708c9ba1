//! Planted data for tests: items belong to topics (a category and topic words in the title); users
//! like one or two topics; some items are held out as cold (no training interactions) and form the
//! test targets of the users who like their topic.

use cairn_core::{CsrMatrix, Item};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub struct Planted {
    pub items: Vec<Item>,
    /// Users × items: training interactions (cold items have none).
    pub train: CsrMatrix,
    pub cold: Vec<u32>,
    /// Per user: cold items they interacted with (sorted).
    pub targets: Vec<Vec<u32>>,
    pub item_topic: Vec<usize>,
    pub user_topics: Vec<Vec<usize>>,
}

const WORDS: [[&str; 3]; 4] = [
    ["dragon", "sword", "quest"],
    ["galaxy", "robot", "laser"],
    ["murder", "detective", "clue"],
    ["kiss", "wedding", "heart"],
];

pub fn planted(n_users: usize, n_items: usize, seed: u64) -> Planted {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n_topics = WORDS.len();
    let mut items = Vec::with_capacity(n_items);
    let mut item_topic = Vec::with_capacity(n_items);
    for i in 0..n_items {
        let t = i % n_topics;
        let mut item = Item::new(format!("i{i}"));
        item.categories = vec![format!("topic{t}")];
        // A noisy tag shared across topics, and two topic words in the title.
        item.tags = vec![format!("noise{}", rng.random_range(0..5))];
        let w1 = WORDS[t][rng.random_range(0..3)];
        let w2 = WORDS[t][rng.random_range(0..3)];
        item.title = Some(format!("The {w1} and the {w2}"));
        items.push(item);
        item_topic.push(t);
    }
    let cold: Vec<u32> = (0..n_items as u32).filter(|i| i % 5 == 4).collect();
    let mut is_cold = vec![false; n_items];
    for &c in &cold {
        is_cold[c as usize] = true;
    }
    let mut triplets = Vec::new();
    let mut targets = vec![Vec::new(); n_users];
    let mut user_topics = Vec::with_capacity(n_users);
    for (u, user_targets) in targets.iter_mut().enumerate() {
        let first = rng.random_range(0..n_topics);
        let mut topics = vec![first];
        if rng.random_bool(0.3) {
            topics.push((first + 1 + rng.random_range(0..n_topics - 1)) % n_topics);
        }
        for i in 0..n_items {
            let p = if topics.contains(&item_topic[i]) {
                0.25
            } else {
                0.01
            };
            if rng.random_bool(p) {
                if is_cold[i] {
                    user_targets.push(i as u32);
                } else {
                    triplets.push((u as u32, i as u32, 1.0));
                }
            }
        }
        user_topics.push(topics);
    }
    Planted {
        items,
        train: CsrMatrix::from_triplets(n_users, n_items, triplets),
        cold,
        targets,
        item_topic,
        user_topics,
    }
}

/// Mean recall@k over users with targets, ranking only the cold items.
pub fn cold_recall(
    planted: &Planted,
    k: usize,
    mut score: impl FnMut(&[(u32, f32)], &mut [f32]),
) -> f64 {
    let n_items = planted.items.len();
    let mut is_cold = vec![false; n_items];
    for &c in &planted.cold {
        is_cold[c as usize] = true;
    }
    let mut scores = vec![0f32; n_items];
    let mut total = 0.0;
    let mut n = 0;
    for (u, targets) in planted.targets.iter().enumerate() {
        if targets.is_empty() {
            continue;
        }
        let (cols, vals) = planted.train.row(u);
        let history: Vec<(u32, f32)> = cols.iter().copied().zip(vals.iter().copied()).collect();
        score(&history, &mut scores);
        let top = cairn_models::top_k(&scores, k, |i| !is_cold[i as usize]);
        let hits = top.iter().filter(|(i, _)| targets.contains(i)).count();
        total += hits as f64 / targets.len() as f64;
        n += 1;
    }
    total / n.max(1) as f64
}
