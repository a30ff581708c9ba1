use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::binning::{fit_bins, BinnedMatrix};
use crate::config::RankerConfig;
use crate::data::RankingData;
use crate::error::RankError;
use crate::forest::Forest;
use crate::grow::{TreeLearner, TreeParams};
use crate::lambda::{GradHess, LambdaObjective};
use crate::lockstep::LockstepCache;
use crate::metrics::mean_ndcg;

/// A fitted LambdaMART ensemble. Scores are comparable within one model only: rank by them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ranker {
    n_features: usize,
    forest: Forest,
    config: RankerConfig,
    /// Validation NDCG@`ndcg_at` after each round, when `fit` had validation data.
    valid_ndcg: Vec<f64>,
    /// The forest laid out for scoring blocks of rows; derived from `forest`, so never saved.
    #[serde(skip)]
    lockstep: LockstepCache,
}

impl Ranker {
    /// Fits on `train`; with `valid`, tracks NDCG@`config.ndcg_at` on it each round and, when
    /// `early_stopping_rounds` is set, stops after that many rounds without improvement and keeps
    /// the best round's trees. NaN features are missing values: they get a bin of their own and
    /// each split learns which side they go to.
    pub fn fit(
        train: &RankingData,
        valid: Option<&RankingData>,
        config: &RankerConfig,
    ) -> Result<Ranker, RankError> {
        config.validate()?;
        train.validate("training data")?;
        if let Some(v) = valid {
            v.validate("validation data")?;
            if v.n_features != train.n_features {
                return Err(RankError::FeatureCountMismatch {
                    expected: train.n_features,
                    actual: v.n_features,
                });
            }
        }
        let n_features = train.n_features;
        let bins = fit_bins(&train.features, n_features, config.max_bins, config.seed);
        let matrix = BinnedMatrix::build(&train.features, n_features, &bins);
        let offsets = train.group_offsets();
        let params = TreeParams {
            max_leaves: config.max_leaves,
            min_data_in_leaf: config.min_data_in_leaf,
            min_sum_hessian: config.min_sum_hessian as f64,
            l2: config.l2 as f64,
            learning_rate: config.learning_rate as f64,
        };
        let features_per_tree = ((config.feature_fraction as f64 * n_features as f64).ceil()
            as usize)
            .clamp(1, n_features);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut learner = TreeLearner::new(&matrix, &bins);
        let objective = LambdaObjective::new(&train.labels, &offsets, config.ndcg_at);
        let mut scores = vec![0f32; train.n_rows()];
        let mut grads = vec![GradHess::default(); train.n_rows()];
        let mut valid_scores = valid.map(|v| vec![0f32; v.n_rows()]);
        let mut ranker = Ranker {
            n_features,
            forest: Forest::default(),
            config: config.clone(),
            valid_ndcg: Vec::new(),
            lockstep: LockstepCache::default(),
        };
        let mut best: Option<(usize, f64)> = None;

        for _ in 0..config.trees {
            objective.compute(&scores, &mut grads);
            let features: Vec<usize> = if features_per_tree == n_features {
                (0..n_features).collect()
            } else {
                let mut chosen = sample(&mut rng, n_features, features_per_tree).into_vec();
                chosen.sort_unstable();
                chosen
            };
            let grown = learner.grow(&grads, &features, &params);
            if grown.tree.nodes.is_empty() {
                if features_per_tree == n_features {
                    break; // Nothing changes, so every later round would find no split either.
                }
                continue;
            }
            for (&(start, end), &value) in grown.leaf_ranges.iter().zip(&grown.tree.leaf_values) {
                for &row in &learner.rows[start..end] {
                    scores[row as usize] += value;
                }
            }
            ranker.forest.push(grown.tree);
            let (Some(valid), Some(valid_scores)) = (valid, valid_scores.as_mut()) else {
                continue;
            };
            let tree = ranker.forest.n_trees() - 1;
            let forest = &ranker.forest;
            valid_scores
                .par_iter_mut()
                .zip(valid.features.par_chunks(n_features))
                .with_min_len(1024)
                .for_each(|(score, row)| *score += forest.predict_tree(tree, row));
            let ndcg = mean_ndcg(valid, valid_scores, config.ndcg_at);
            ranker.valid_ndcg.push(ndcg);
            let rounds = ranker.forest.n_trees();
            if best.is_none_or(|(_, b)| ndcg > b) {
                best = Some((rounds, ndcg));
            }
            if let (Some(patience), Some((best_rounds, _))) = (config.early_stopping_rounds, best) {
                if rounds - best_rounds >= patience {
                    break;
                }
            }
        }
        if let (Some(_), Some((best_rounds, _))) = (config.early_stopping_rounds, best) {
            ranker.forest.truncate(best_rounds);
        }
        Ok(ranker)
    }

    /// Score of one row of `n_features` values. NaN, and features past the end of a short row,
    /// are missing values.
    pub fn predict(&self, row: &[f32]) -> f32 {
        self.forest.predict(row)
    }

    /// Scores consecutive rows of `rows` (row-major) into `out`, on the calling thread. An `out`
    /// slot with no complete row behind it gets NaN, which ranks last in [`crate::ndcg_at`].
    /// Equal, bit for bit, to [`Ranker::predict`] on each row, and faster: blocks of rows walk
    /// each tree in lockstep without branches (the layout is built on the first call).
    pub fn predict_many(&self, rows: &[f32], out: &mut [f32]) {
        let width = self.n_features.max(1);
        let complete = (rows.len() / width).min(out.len());
        let (scored, rest) = out.split_at_mut(complete);
        self.lockstep
            .get_or_build(&self.forest, width)
            .predict_rows(&rows[..complete * width], scored);
        rest.fill(f32::NAN);
    }

    /// Total split gain (loss reduction) per feature over the kept trees.
    pub fn feature_importance(&self) -> Vec<f32> {
        self.forest.feature_importance(self.n_features)
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Trees kept (after early stopping cut the rounds past the best one).
    pub fn n_trees(&self) -> usize {
        self.forest.n_trees()
    }

    pub fn config(&self) -> &RankerConfig {
        &self.config
    }

    /// Validation NDCG@`ndcg_at` after each round that added a tree; empty without validation
    /// data. Includes the rounds early stopping later cut off.
    pub fn valid_ndcg_history(&self) -> &[f64] {
        &self.valid_ndcg
    }

    /// Checks a deserialized model before use: every tree reference is in range and no node reads
    /// a feature beyond `n_features`, so prediction cannot panic or loop.
    pub fn check(&self) -> Result<(), RankError> {
        let features_ok = self
            .forest
            .max_feature()
            .is_none_or(|f| f < self.n_features);
        if self.forest.is_well_formed() && features_ok {
            Ok(())
        } else {
            Err(RankError::CorruptModel)
        }
    }
}
