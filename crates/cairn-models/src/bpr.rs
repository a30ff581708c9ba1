//! Bayesian personalized ranking (Rendle et al. 2009) with sampled negatives, trained by SGD.
//!
//! Parallel and deterministic at once: users and items are split into `shards` blocks (by index
//! modulo `shards`), and each epoch runs `shards` sub-epochs. In sub-epoch s, shard a trains on the
//! pairs of user block a and item block (a + s) mod shards, with negatives drawn from that item block
//! too. The shards of one sub-epoch touch disjoint user and item rows, so they run in parallel without
//! locks or races, and each has its own seeded generator: the result does not depend on the number of
//! threads. Over an epoch every pair is visited in expectation once, as in `implicit`'s BPR.
//!
//! Scores are `u · v_i + b_i`. Fold-in of a new user runs a few SGD epochs on the user vector alone,
//! the item factors fixed, with a generator seeded from the model's seed (same history, same result).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use cairn_core::CsrMatrix;

use crate::kernels::{cosine_to_all, dot, prefetch_at, MulAdd};
use crate::progress::{Progress, Silent};
use crate::{dispatch_simd, top_k, Recommender, SimilarItems};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BprConfig {
    pub factors: usize,
    /// Epochs; each samples as many triples as there are positive pairs.
    pub iterations: usize,
    pub learning_rate: f32,
    pub regularization: f32,
    pub seed: u64,
    /// Blocks per side; fixed so that results do not depend on the thread count.
    pub shards: usize,
    /// Resample a negative the user has seen (up to a few tries).
    pub verify_negatives: bool,
    /// SGD epochs over the history when folding in a user.
    pub fold_in_epochs: usize,
}

impl Default for BprConfig {
    fn default() -> Self {
        BprConfig {
            factors: 64,
            iterations: 100,
            learning_rate: 0.01,
            regularization: 0.01,
            seed: 42,
            shards: 16,
            verify_negatives: true,
            fold_in_epochs: 40,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bpr {
    pub config: BprConfig,
    pub n_users: usize,
    pub n_items: usize,
    /// Row-major `n_users × factors`.
    pub user_factors: Vec<f32>,
    /// Row-major `n_items × factors`.
    pub item_factors: Vec<f32>,
    pub item_bias: Vec<f32>,
}

/// The positive pairs of one (user block, item block) cell.
struct Block {
    pairs: Vec<(u32, u32)>,
    /// `starts[u / shards]..starts[u / shards + 1]` is user u's run in `pairs`.
    starts: Vec<usize>,
}

/// Rows of a factor matrix written by several shards at once, each shard owning a disjoint set of
/// rows (see the module docs).
#[derive(Clone, Copy)]
struct SharedRows {
    ptr: *mut f32,
    len: usize,
    k: usize,
}

// SAFETY: shards only ever access disjoint rows concurrently (guaranteed by the block schedule).
unsafe impl Send for SharedRows {}
// SAFETY: as for Send.
unsafe impl Sync for SharedRows {}

impl SharedRows {
    fn new(data: &mut [f32], k: usize) -> Self {
        SharedRows {
            ptr: data.as_mut_ptr(),
            len: data.len(),
            k,
        }
    }

    /// Starts loading row `r` into cache; never dereferences.
    #[inline(always)]
    fn prefetch(&self, r: usize) {
        #[cfg(target_arch = "x86_64")]
        if (r + 1) * self.k <= self.len {
            let mut off = 0;
            while off < self.k {
                // SAFETY: the address is inside the buffer and a prefetch is only a hint.
                unsafe {
                    std::arch::x86_64::_mm_prefetch(
                        self.ptr.add(r * self.k + off) as *const i8,
                        std::arch::x86_64::_MM_HINT_T0,
                    );
                }
                off += 16;
            }
        }
    }

    /// # Safety
    /// No other live reference to row `r` may exist.
    #[allow(clippy::mut_from_ref)]
    #[inline(always)]
    unsafe fn row(&self, r: usize) -> &mut [f32] {
        assert!((r + 1) * self.k <= self.len);
        std::slice::from_raw_parts_mut(self.ptr.add(r * self.k), self.k)
    }
}

/// One SGD step on the triple (u, i, j). `i` and `j` are distinct rows.
#[inline(always)]
fn step<M: MulAdd>(
    u: &mut [f32],
    vi: &mut [f32],
    vj: &mut [f32],
    bias: (&mut f32, &mut f32),
    lr: f32,
    reg: f32,
) {
    let x = dot::<M>(u, vi) - dot::<M>(u, vj) + (*bias.0 - *bias.1);
    let z = 1.0 / (1.0 + x.exp());
    for ((uf, if_), jf) in u.iter_mut().zip(vi.iter_mut()).zip(vj.iter_mut()) {
        let (a, b, c) = (*uf, *if_, *jf);
        *uf = M::mul_add(lr, z * (b - c) - reg * a, a);
        *if_ = M::mul_add(lr, z * a - reg * b, b);
        *jf = M::mul_add(lr, -z * a - reg * c, c);
    }
    *bias.0 += lr * (z - reg * *bias.0);
    *bias.1 += lr * (-z - reg * *bias.1);
}

fn shard_seed(seed: u64, epoch: usize, sub: usize, shard: usize) -> u64 {
    // SplitMix-style mixing so that neighbouring (epoch, sub, shard) give unrelated streams.
    let mut z = seed
        ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (sub as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9)
        ^ (shard as u64).wrapping_mul(0x94D0_49BB_1331_11EB);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Bpr {
    pub fn fit(user_items: &CsrMatrix, config: BprConfig) -> Self {
        Self::fit_with_progress(user_items, config, &Silent)
    }

    pub fn fit_with_progress(
        user_items: &CsrMatrix,
        config: BprConfig,
        progress: &dyn Progress,
    ) -> Self {
        let k = config.factors.max(1);
        let s = config.shards.max(1);
        let (n_users, n_items) = (user_items.n_rows, user_items.n_cols);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut user_factors: Vec<f32> = (0..n_users * k)
            .map(|_| (rng.random::<f32>() - 0.5) / k as f32)
            .collect();
        let mut item_factors: Vec<f32> = (0..n_items * k)
            .map(|_| (rng.random::<f32>() - 0.5) / k as f32)
            .collect();
        let mut item_bias = vec![0f32; n_items];

        // blocks[a * s + b]: the (user, item) pairs of user block a and item block b, sorted by user
        // then item, and where each user's run starts. Checking a negative against the user's items
        // of the same block then reads a few neighbouring entries instead of binary-searching the
        // user's whole row in the big matrix (a chain of cache misses).
        let mut blocks: Vec<Block> = (0..s * s)
            .map(|ab| Block {
                pairs: Vec::new(),
                starts: vec![0; (n_users + s - 1 - ab / s) / s + 1],
            })
            .collect();
        for u in 0..n_users {
            for &i in user_items.row(u).0 {
                blocks[(u % s) * s + (i as usize % s)]
                    .pairs
                    .push((u as u32, i));
            }
        }
        for block in &mut blocks {
            let mut counts = std::mem::take(&mut block.starts);
            counts.fill(0);
            for &(u, _) in &block.pairs {
                counts[u as usize / s + 1] += 1;
            }
            for l in 1..counts.len() {
                counts[l] += counts[l - 1];
            }
            block.starts = counts;
        }
        let users = SharedRows::new(&mut user_factors, k);
        let items = SharedRows::new(&mut item_factors, k);
        let biases = SharedRows::new(&mut item_bias, 1);
        for epoch in 0..config.iterations {
            for sub in 0..s {
                (0..s).into_par_iter().for_each(|a| {
                    let b = (a + sub) % s;
                    let block = &blocks[a * s + b];
                    let pairs = &block.pairs;
                    let block_items = (n_items + s - 1 - b) / s;
                    if pairs.is_empty() || block_items < 2 {
                        return;
                    }
                    let mut rng = ChaCha8Rng::seed_from_u64(shard_seed(config.seed, epoch, sub, a));
                    dispatch_simd!(M => {
                        // A two-stage software pipeline: the pair two samples ahead is being
                        // fetched while the factor rows of the next sample are.
                        let draw_item = |rng: &mut ChaCha8Rng| (b + s * rng.random_range(0..block_items)) as u32;
                        let mut ahead = rng.random_range(0..pairs.len());
                        let mut next = pairs[rng.random_range(0..pairs.len())];
                        let mut next_j = draw_item(&mut rng);
                        for _ in 0..pairs.len() {
                            let (u, i) = next;
                            let mut j = next_j;
                            next = pairs[ahead];
                            next_j = draw_item(&mut rng);
                            users.prefetch(next.0 as usize);
                            items.prefetch(next.1 as usize);
                            items.prefetch(next_j as usize);
                            ahead = rng.random_range(0..pairs.len());
                            prefetch_at(pairs, ahead);
                            let lu = u as usize / s;
                            let run = &pairs[block.starts[lu]..block.starts[lu + 1]];
                            let has = |j: u32| run.binary_search_by_key(&j, |p| p.1).is_ok();
                            if config.verify_negatives {
                                for _ in 0..8 {
                                    if !has(j) {
                                        break;
                                    }
                                    j = draw_item(&mut rng);
                                }
                                if has(j) {
                                    continue;
                                }
                            }
                            if j == i {
                                continue;
                            }
                            // SAFETY: user u is in block a and items i, j in block b; in this
                            // sub-epoch no other shard touches block a's users or block b's items,
                            // and i != j.
                            unsafe {
                                step::<M>(
                                    users.row(u as usize),
                                    items.row(i as usize),
                                    items.row(j as usize),
                                    (&mut biases.row(i as usize)[0], &mut biases.row(j as usize)[0]),
                                    config.learning_rate,
                                    config.regularization,
                                );
                            }
                        }
                    });
                });
            }
            progress.update("bpr", epoch + 1, config.iterations);
        }
        Bpr {
            config: BprConfig {
                factors: k,
                shards: s,
                ..config
            },
            n_users,
            n_items,
            user_factors,
            item_factors,
            item_bias,
        }
    }

    pub fn factors(&self) -> usize {
        self.config.factors
    }

    /// A user vector for this history: SGD on the user alone, item factors fixed.
    pub fn fold_in(&self, history: &[(u32, f32)]) -> Vec<f32> {
        let k = self.factors();
        let mut u = vec![0f32; k];
        let mut seen: Vec<u32> = history
            .iter()
            .filter(|&&(i, w)| (i as usize) < self.n_items && w > 0.0)
            .map(|&(i, _)| i)
            .collect();
        seen.sort_unstable();
        seen.dedup();
        if seen.is_empty() || self.n_items < 2 {
            return u;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed ^ 0xF01D);
        let (lr, reg) = (self.config.learning_rate, self.config.regularization);
        dispatch_simd!(M => {
            for _ in 0..self.config.fold_in_epochs {
                for &i in &seen {
                    let mut j = rng.random_range(0..self.n_items) as u32;
                    for _ in 0..8 {
                        if seen.binary_search(&j).is_err() {
                            break;
                        }
                        j = rng.random_range(0..self.n_items) as u32;
                    }
                    if seen.binary_search(&j).is_ok() {
                        continue;
                    }
                    let vi = &self.item_factors[i as usize * k..(i as usize + 1) * k];
                    let vj = &self.item_factors[j as usize * k..(j as usize + 1) * k];
                    let x = dot::<M>(&u, vi) - dot::<M>(&u, vj)
                        + (self.item_bias[i as usize] - self.item_bias[j as usize]);
                    let z = 1.0 / (1.0 + x.exp());
                    for ((uf, a), b) in u.iter_mut().zip(vi).zip(vj) {
                        *uf = M::mul_add(lr, z * (a - b) - reg * *uf, *uf);
                    }
                }
            }
        });
        u
    }

    pub fn scores_for(&self, user_vector: &[f32], scores: &mut [f32]) {
        let k = self.factors();
        for ((s, y), b) in scores
            .iter_mut()
            .zip(self.item_factors.chunks_exact(k))
            .zip(&self.item_bias)
        {
            *s = dispatch_simd!(M => dot::<M>(y, user_vector)) + b;
        }
    }

    /// Scores for a training user from their trained factors.
    pub fn trained_scores(&self, user: usize, scores: &mut [f32]) {
        let k = self.factors();
        if user < self.n_users {
            self.scores_for(&self.user_factors[user * k..(user + 1) * k], scores);
        } else {
            scores.copy_from_slice(&self.item_bias);
        }
    }
}

impl Recommender for Bpr {
    fn name(&self) -> &'static str {
        "bpr"
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    fn score(&self, history: &[(u32, f32)], scores: &mut [f32]) {
        let u = self.fold_in(history);
        self.scores_for(&u, scores);
    }
}

impl SimilarItems for Bpr {
    fn similar(&self, item: u32, k: usize) -> Vec<(u32, f32)> {
        let scores = cosine_to_all(&self.item_factors, self.factors(), item as usize);
        top_k(&scores, k, |_| false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::*;

    fn small() -> BprConfig {
        BprConfig {
            factors: 16,
            iterations: 60,
            learning_rate: 0.05,
            regularization: 0.01,
            shards: 4,
            ..BprConfig::default()
        }
    }

    #[test]
    fn beats_popularity() {
        let data = planted(21, 600, 150, 6, 40);
        let pop = popularity_recall(&data, 10);
        let bpr = Bpr::fit(&data.train, small());
        let recall = recall_at(&bpr, &data.held_out, 10);
        assert!(
            recall > pop * 1.3 && recall > pop + 0.05,
            "{recall} vs pop {pop}"
        );
    }

    #[test]
    fn result_does_not_depend_on_the_thread_count() {
        let data = planted(22, 300, 20, 5, 30);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let a = one.install(|| Bpr::fit(&data.train, small()));
        let b = two.install(|| Bpr::fit(&data.train, small()));
        assert_eq!(a.item_factors, b.item_factors);
        assert_eq!(a.user_factors, b.user_factors);
    }

    #[test]
    fn round_trips_and_folds_in_close_to_training() {
        let data = planted(23, 400, 20, 5, 30);
        let bpr = Bpr::fit(&data.train, small());
        let back: Bpr = postcard::from_bytes(&postcard::to_allocvec(&bpr).unwrap()).unwrap();
        assert_eq!(
            top_lists(&bpr, &data.held_out, 10),
            top_lists(&back, &data.held_out, 10)
        );

        let mut trained = vec![0f32; bpr.n_items];
        let mut folded = vec![0f32; bpr.n_items];
        let mut total = 0.0;
        for u in 0..50 {
            let history = history_of(&data.train, u);
            bpr.trained_scores(u, &mut trained);
            bpr.score(&history, &mut folded);
            let seen = |i: u32| history.iter().any(|&(h, _)| h == i);
            let a: Vec<u32> = top_k(&trained, 10, seen).into_iter().map(|p| p.0).collect();
            let b: Vec<u32> = top_k(&folded, 10, seen).into_iter().map(|p| p.0).collect();
            total += overlap(&a, &b);
        }
        assert!(total / 50.0 > 0.6, "mean top-10 overlap {}", total / 50.0);
    }
}
