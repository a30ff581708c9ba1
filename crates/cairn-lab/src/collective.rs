//! Collective EASE (Jeunen, Van Balen and Goethals 2020, "Closed-form models for collaborative
//! filtering with side-information"): EASE's closed form over the interaction matrix augmented with
//! side information, so that one item-item weight matrix learns from interactions and features
//! together.
//!
//! - Every item feature becomes a pseudo-user whose "history" is the items carrying it (weighted
//!   `item_feature_weight`): items that share features are tied in the Gram matrix, so an item with
//!   no interactions still gets weights from the items whose features it shares.
//! - Every user property becomes a pseudo-item that the users holding it have "seen" (weighted
//!   `user_feature_weight`): its row of weights is what that property alone recommends, which
//!   serves a user known only by properties and adds to the history of a user with events.
//!
//! A warm item's column is the EASE solution with the feature rows as extra, lightly weighted
//! evidence, so warm items keep EASE's quality. Scores are `Σ_h B[h] + Σ_g y_g B[g]` over the
//! history items h (binarized, like EASE) and the user's property features g.

use cairn_content::ContentError;
use cairn_core::CsrMatrix;
use cairn_models::{weights_from_gram_matrix, Precision, Recommender};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CollectiveConfig {
    /// λ on the Gram matrix's diagonal, as in EASE.
    pub lambda: f32,
    /// Weight of each item feature's pseudo-user row (its square enters the Gram matrix).
    pub item_feature_weight: f32,
    /// Weight of each user property's pseudo-item column.
    pub user_feature_weight: f32,
    /// λ of the features-only solve that gives the columns of items without interactions (on the
    /// item-feature Gram matrix `F Fᵀ`, whose diagonal is 1 for L2-normalised rows). 0 leaves those
    /// columns to the joint solve, where every user counts as not having chosen them. Item features
    /// off (`item_feature_weight` 0) switch this off too.
    pub cold_lambda: f32,
    /// The fit refuses to start when its peak memory would exceed this.
    pub max_bytes: u64,
    pub precision: Precision,
}

impl Default for CollectiveConfig {
    fn default() -> Self {
        CollectiveConfig {
            lambda: 500.0,
            item_feature_weight: 1.0,
            user_feature_weight: 1.0,
            cold_lambda: 1.0,
            max_bytes: 8 << 30,
            precision: Precision::Auto,
        }
    }
}

impl CollectiveConfig {
    pub fn validate(&self) -> Result<(), ContentError> {
        let bad = |m: &str| Err(ContentError::InvalidConfig(m.to_string()));
        if !(self.lambda > 0.0 && self.lambda.is_finite()) {
            return bad("lambda must be positive");
        }
        if !(self.item_feature_weight >= 0.0 && self.item_feature_weight.is_finite()) {
            return bad("item_feature_weight must be non-negative");
        }
        if !(self.user_feature_weight >= 0.0 && self.user_feature_weight.is_finite()) {
            return bad("user_feature_weight must be non-negative");
        }
        if !(self.cold_lambda >= 0.0 && self.cold_lambda.is_finite()) {
            return bad("cold_lambda must be non-negative");
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollectiveEase {
    pub config: CollectiveConfig,
    n_items: usize,
    n_user_features: usize,
    /// Row-major `(n_items + n_user_features) × n_items`: row h holds the weights that input h (an
    /// item of the history, then a user property) gives every item.
    weights: Vec<f32>,
}

impl CollectiveEase {
    /// Peak bytes of a fit with `n` inputs (items plus user properties).
    pub fn peak_bytes(n: usize) -> u64 {
        let n2 = (n as u64).saturating_mul(n as u64);
        // The f64 Gram matrix, the inverse's working copy, and the f32 weights.
        n2.saturating_mul(8 + 8 + 4)
    }

    /// Fits on `interactions` (users × items, any positive value counts once), `item_features`
    /// (items × features, e.g. [`cairn_content::FeatureSpace::item_matrix`]) and optionally `user_features`
    /// (users × properties, the same rows as `interactions`).
    pub fn fit(
        interactions: &CsrMatrix,
        item_features: &CsrMatrix,
        user_features: Option<&CsrMatrix>,
        config: CollectiveConfig,
    ) -> Result<Self, ContentError> {
        config.validate()?;
        let n_items = interactions.n_cols;
        if item_features.n_rows != n_items {
            return Err(ContentError::InvalidConfig(format!(
                "{} item feature rows for {n_items} items",
                item_features.n_rows
            )));
        }
        if let Some(uf) = user_features {
            if uf.n_rows != interactions.n_rows {
                return Err(ContentError::InvalidConfig(format!(
                    "{} user feature rows for {} users",
                    uf.n_rows, interactions.n_rows
                )));
            }
        }
        let n_user_features = user_features.map_or(0, |uf| uf.n_cols);
        let n = n_items + n_user_features;
        let needed = Self::peak_bytes(n);
        if needed > config.max_bytes {
            return Err(ContentError::InvalidConfig(format!(
                "collective EASE over {n} inputs needs about {needed} bytes, above the cap of {} \
                 (use the hybrid factorization for catalogs this large)",
                config.max_bytes
            )));
        }
        let rows = augmented_rows(interactions, item_features, user_features, &config);
        let mut gram = gram_of(&rows, n);
        (0..n).for_each(|i| gram[i * n + i] += config.lambda as f64);
        let full = weights_from_gram_matrix(gram, n, config.precision)
            .map_err(|e| ContentError::InvalidConfig(e.to_string()))?;
        // Only the item columns are recommendations; the property columns are dropped.
        let mut weights = vec![0f32; n * n_items];
        weights
            .par_chunks_mut(n_items.max(1))
            .zip(full.par_chunks(n.max(1)))
            .for_each(|(out, row)| out.copy_from_slice(&row[..n_items]));
        if config.cold_lambda > 0.0 && config.item_feature_weight > 0.0 {
            cold_columns(interactions, item_features, &config, n, &mut weights)?;
        }
        Ok(CollectiveEase {
            config,
            n_items,
            n_user_features,
            weights,
        })
    }

    pub fn n_user_features(&self) -> usize {
        self.n_user_features
    }

    fn input_row(&self, h: usize) -> &[f32] {
        &self.weights[h * self.n_items..(h + 1) * self.n_items]
    }

    /// Scores every item for a history and, optionally, the user's property row (columns of the
    /// user feature space the model was fitted with). Unknown items and columns are ignored.
    pub fn score_user(
        &self,
        history: &[(u32, f32)],
        user_features: Option<&[(u32, f32)]>,
        scores: &mut [f32],
    ) {
        scores.fill(0.0);
        let add = |scores: &mut [f32], row: &[f32], w: f32| {
            for (s, b) in scores.iter_mut().zip(row) {
                *s += w * b;
            }
        };
        for &(h, w) in history {
            if (h as usize) < self.n_items && w > 0.0 {
                add(scores, self.input_row(h as usize), 1.0);
            }
        }
        let gamma = self.config.user_feature_weight;
        for &(g, y) in user_features.unwrap_or(&[]) {
            if (g as usize) < self.n_user_features && y != 0.0 {
                add(scores, self.input_row(self.n_items + g as usize), gamma * y);
            }
        }
    }
}

impl Recommender for CollectiveEase {
    fn name(&self) -> &'static str {
        "collective-ease"
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    fn score(&self, history: &[(u32, f32)], scores: &mut [f32]) {
        self.score_user(history, None, scores);
    }
}

/// Rewrites the columns of the items nobody interacted with from a solve on the feature rows alone.
/// In the joint solve every training user is evidence *against* such an item (their row holds a 0
/// there), which pushes its column toward scoring low for exactly the users it suits; without the
/// user rows, its column says which items share its features, as EASE's would say which items
/// share its users.
fn cold_columns(
    interactions: &CsrMatrix,
    item_features: &CsrMatrix,
    config: &CollectiveConfig,
    n_inputs: usize,
    weights: &mut [f32],
) -> Result<(), ContentError> {
    let n_items = interactions.n_cols;
    let mut warm = vec![false; n_items];
    for (&i, &v) in interactions.indices.iter().zip(&interactions.values) {
        warm[i as usize] |= v > 0.0;
    }
    let cold: Vec<usize> = (0..n_items).filter(|&i| !warm[i]).collect();
    if cold.is_empty() {
        return Ok(());
    }
    let rows = feature_rows(item_features, 1.0);
    let mut gram = gram_of(&rows, n_items);
    (0..n_items).for_each(|i| gram[i * n_items + i] += config.cold_lambda as f64);
    let solved = weights_from_gram_matrix(gram, n_items, config.precision)
        .map_err(|e| ContentError::InvalidConfig(e.to_string()))?;
    // Properties carry no evidence about items without interactions: their weights stay 0.
    for &c in &cold {
        for h in 0..n_inputs {
            weights[h * n_items + c] = if h < n_items {
                solved[h * n_items + c]
            } else {
                0.0
            };
        }
    }
    Ok(())
}

/// The rows of the augmented matrix over `n_items + n_user_features` columns: each user's items
/// (value 1) and weighted properties, then one pseudo-user per item feature holding the items that
/// carry it.
fn augmented_rows(
    interactions: &CsrMatrix,
    item_features: &CsrMatrix,
    user_features: Option<&CsrMatrix>,
    config: &CollectiveConfig,
) -> Vec<Vec<(u32, f64)>> {
    let n_items = interactions.n_cols as u32;
    let gamma = config.user_feature_weight as f64;
    let mut rows: Vec<Vec<(u32, f64)>> = (0..interactions.n_rows)
        .map(|u| {
            let (items, values) = interactions.row(u);
            let mut row: Vec<(u32, f64)> = items
                .iter()
                .zip(values)
                .filter(|(_, v)| **v > 0.0)
                .map(|(&i, _)| (i, 1.0))
                .collect();
            if let (Some(uf), true) = (user_features, gamma > 0.0) {
                let (cols, vals) = uf.row(u);
                row.extend(
                    cols.iter()
                        .zip(vals)
                        .filter(|(_, v)| **v != 0.0)
                        .map(|(&g, &v)| (n_items + g, gamma * v as f64)),
                );
            }
            row
        })
        .collect();
    let beta = config.item_feature_weight as f64;
    if beta > 0.0 {
        rows.extend(feature_rows(item_features, beta));
    }
    rows
}

/// One pseudo-user per item feature: the items carrying it, with their values times `weight`.
fn feature_rows(item_features: &CsrMatrix, weight: f64) -> Vec<Vec<(u32, f64)>> {
    let by_feature = item_features.transpose();
    (0..by_feature.n_rows)
        .map(|f| {
            let (items, values) = by_feature.row(f);
            items
                .iter()
                .zip(values)
                .filter(|(_, v)| **v != 0.0)
                .map(|(&i, &v)| (i, weight * v as f64))
                .collect()
        })
        .collect()
}

/// `AᵀA` of the augmented rows, row-major `n × n` (symmetric).
fn gram_of(rows: &[Vec<(u32, f64)>], n: usize) -> Vec<f64> {
    // By column: the rows holding column i, each adding its values scaled by its entry at i.
    let mut holders: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
    for (r, row) in rows.iter().enumerate() {
        for &(i, v) in row {
            holders[i as usize].push((r as u32, v));
        }
    }
    let mut gram = vec![0f64; n * n];
    gram.par_chunks_mut(n.max(1))
        .zip(holders.par_iter())
        .for_each(|(out, holders)| {
            for &(r, a) in holders {
                for &(j, b) in &rows[r as usize] {
                    out[j as usize] += a * b;
                }
            }
        });
    gram
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{cold_recall, planted, Planted};
    use cairn_content::{ContentModel, FeatureConfig, FeatureSpace};
    use cairn_models::{Ease, EaseConfig};

    fn matrix(n_rows: usize, n_cols: usize, entries: &[(u32, u32)]) -> CsrMatrix {
        CsrMatrix::from_triplets(
            n_rows,
            n_cols,
            entries.iter().map(|&(r, c)| (r, c, 1.0)).collect(),
        )
    }

    fn features(world: &Planted) -> CsrMatrix {
        let space = FeatureSpace::fit_items(&world.items, &FeatureConfig::default()).unwrap();
        space.item_matrix(&world.items)
    }

    #[test]
    fn without_side_information_it_is_ease() {
        let world = planted(80, 40, 7);
        let config = CollectiveConfig {
            lambda: 20.0,
            item_feature_weight: 0.0,
            precision: Precision::F64,
            ..CollectiveConfig::default()
        };
        let model = CollectiveEase::fit(&world.train, &features(&world), None, config).unwrap();
        let ease = Ease::fit(
            &world.train,
            EaseConfig {
                lambda: 20.0,
                precision: Precision::F64,
                ..EaseConfig::default()
            },
        )
        .unwrap();
        let worst = model
            .weights
            .iter()
            .zip(&ease.weights)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-5, "{worst}");
    }

    #[test]
    fn an_item_nobody_touched_is_recommended_through_its_features() {
        // Items 0-2 carry feature 0 and items 3-5 feature 1; users of the first group saw 0 and 1,
        // users of the second 3 and 4. Items 2 and 5 have no interactions at all.
        let mut entries = Vec::new();
        for u in 0..20u32 {
            let base = if u < 10 { 0 } else { 3 };
            entries.push((u, base));
            entries.push((u, base + 1));
        }
        let interactions = matrix(20, 6, &entries);
        let features = matrix(6, 2, &[(0, 0), (1, 0), (2, 0), (3, 1), (4, 1), (5, 1)]);
        let model = CollectiveEase::fit(
            &interactions,
            &features,
            None,
            CollectiveConfig {
                lambda: 1.0,
                ..CollectiveConfig::default()
            },
        )
        .unwrap();
        let mut scores = vec![0f32; 6];
        model.score(&[(0, 1.0)], &mut scores);
        assert!(scores[2] > scores[5], "{scores:?}");
        model.score(&[(3, 1.0)], &mut scores);
        assert!(scores[5] > scores[2], "{scores:?}");
    }

    #[test]
    fn cold_items_rank_like_the_content_model_and_far_above_chance() {
        let world = planted(300, 100, 11);
        let features = features(&world);
        let model = CollectiveEase::fit(
            &world.train,
            &features,
            None,
            CollectiveConfig {
                lambda: 20.0,
                ..CollectiveConfig::default()
            },
        )
        .unwrap();
        let ours = cold_recall(&world, 5, |h, s| model.score(h, s));
        let content = ContentModel::new(features).unwrap();
        let baseline = cold_recall(&world, 5, |h, s| content.score(h, s));
        let chance = 5.0 / world.cold.len() as f64;
        assert!(ours > 2.0 * chance, "{ours} vs chance {chance}");
        assert!(ours > 0.9 * baseline, "{ours} vs content {baseline}");
        let back: CollectiveEase =
            postcard::from_bytes(&postcard::to_allocvec(&model).unwrap()).unwrap();
        assert_eq!(back.weights, model.weights);
    }

    #[test]
    fn a_user_known_only_by_properties_gets_their_segment_s_items() {
        // Users with property 0 saw items 0-1, users with property 1 saw items 2-3.
        let mut entries = Vec::new();
        let mut props = Vec::new();
        for u in 0..30u32 {
            let group = u % 2;
            entries.push((u, 2 * group));
            entries.push((u, 2 * group + 1));
            props.push((u, group));
        }
        let interactions = matrix(30, 4, &entries);
        let user_features = matrix(30, 2, &props);
        let no_item_features = matrix(4, 1, &[]);
        let model = CollectiveEase::fit(
            &interactions,
            &no_item_features,
            Some(&user_features),
            CollectiveConfig {
                lambda: 1.0,
                ..CollectiveConfig::default()
            },
        )
        .unwrap();
        let mut scores = vec![0f32; 4];
        model.score_user(&[], Some(&[(1, 1.0)]), &mut scores);
        assert!(
            scores[2].min(scores[3]) > scores[0].max(scores[1]),
            "{scores:?}"
        );
    }

    #[test]
    fn refuses_bad_configs_and_mismatched_inputs() {
        let interactions = matrix(2, 3, &[(0, 0), (1, 1)]);
        let features = matrix(3, 2, &[(0, 0)]);
        let fit = |c: CollectiveConfig| CollectiveEase::fit(&interactions, &features, None, c);
        assert!(fit(CollectiveConfig {
            lambda: 0.0,
            ..CollectiveConfig::default()
        })
        .is_err());
        assert!(fit(CollectiveConfig {
            item_feature_weight: f32::NAN,
            ..CollectiveConfig::default()
        })
        .is_err());
        assert!(fit(CollectiveConfig {
            cold_lambda: -1.0,
            ..CollectiveConfig::default()
        })
        .is_err());
        assert!(fit(CollectiveConfig {
            max_bytes: 10,
            ..CollectiveConfig::default()
        })
        .is_err());
        let wrong = matrix(2, 2, &[]);
        assert!(
            CollectiveEase::fit(&interactions, &wrong, None, CollectiveConfig::default()).is_err()
        );
        let users = matrix(5, 2, &[]);
        assert!(CollectiveEase::fit(
            &interactions,
            &features,
            Some(&users),
            CollectiveConfig::default()
        )
        .is_err());
    }
}
