//! Content-based recommender: a user's profile is the weighted sum of the feature rows of the items
//! in their history; an item's score is its cosine-like dot product with that profile. Scoring goes
//! through an inverted index (feature → items), so its cost is the total length of the postings of
//! the profile's features, not items × features.

use cairn_core::CsrMatrix;
use cairn_models::{top_k, Recommender, SimilarItems};
use serde::{Deserialize, Serialize};

use crate::error::ContentError;

/// Measured on the validation stages of the peers' cold-items splits (docs/bench/content.md): 0.3
/// helps ML-1M (genres, director, actors) and ml-latest-small with tags, and costs a little on
/// genres alone.
pub const DEFAULT_SATURATION: f32 = 0.3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentModel {
    /// Items × features, rows L2-normalised (or empty).
    item_features: CsrMatrix,
    /// Features × items: the postings.
    inverted: CsrMatrix,
    /// BM25-like saturation of the profile, `p / (p + k)`: a feature shared by the whole history
    /// (a broad genre) stops growing, so that rarer shared features (a director) still count.
    /// 0 disables it.
    #[serde(default)]
    saturation: f32,
}

impl ContentModel {
    /// `item_features` rows must be L2-normalised (as [`crate::FeatureSpace`] makes them) for scores
    /// to be cosines; any non-negative weights work for ranking.
    pub fn new(item_features: CsrMatrix) -> Result<Self, ContentError> {
        if item_features.indptr.len() != item_features.n_rows + 1 {
            return Err(ContentError::ShapeMismatch {
                what: "item feature indptr",
                expected: item_features.n_rows + 1,
                got: item_features.indptr.len(),
            });
        }
        let inverted = item_features.transpose();
        Ok(ContentModel {
            item_features,
            inverted,
            saturation: DEFAULT_SATURATION,
        })
    }

    /// Sets the profile saturation constant (see the field); a non-positive or non-finite value
    /// disables it.
    pub fn with_saturation(mut self, k: f32) -> Self {
        self.saturation = if k.is_finite() && k > 0.0 { k } else { 0.0 };
        self
    }

    pub fn item_features(&self) -> &CsrMatrix {
        &self.item_features
    }

    /// The user profile: Σ strength × item row, as a sorted sparse vector. Items outside the model are
    /// ignored.
    pub fn profile(&self, history: &[(u32, f32)]) -> Vec<(u32, f32)> {
        self.profile_with(history, &[])
    }

    /// The profile of `history` plus `extra`: feature entries (column, weight) of items outside
    /// the model, e.g. items added to the catalog after training, transformed with
    /// [`crate::FeatureSpace::transform_item`] and multiplied by their strength.
    pub fn profile_with(&self, history: &[(u32, f32)], extra: &[(u32, f32)]) -> Vec<(u32, f32)> {
        let mut entries: Vec<(u32, f32)> = extra
            .iter()
            .copied()
            .filter(|&(c, _)| (c as usize) < self.item_features.n_cols)
            .collect();
        for &(item, strength) in history {
            if (item as usize) < self.item_features.n_rows {
                let (cols, vals) = self.item_features.row(item as usize);
                entries.extend(cols.iter().zip(vals).map(|(&c, &v)| (c, v * strength)));
            }
        }
        let mut profile = merge_sorted(entries);
        if self.saturation > 0.0 {
            let k = self.saturation;
            for (_, p) in profile.iter_mut() {
                if *p > 0.0 {
                    *p /= *p + k;
                }
            }
        }
        profile
    }

    /// Adds `profile · item_row` to every item's score through the postings.
    pub fn score_profile(&self, profile: &[(u32, f32)], scores: &mut [f32]) {
        for &(f, w) in profile {
            if (f as usize) >= self.inverted.n_rows {
                continue;
            }
            let (items, vals) = self.inverted.row(f as usize);
            for (&i, &v) in items.iter().zip(vals) {
                scores[i as usize] += w * v;
            }
        }
    }

    /// Scores for a profile given directly as a feature row (e.g. a new item's features, or a
    /// user's property row mapped into item-feature space).
    pub fn score_features(&self, row: &[(u32, f32)], scores: &mut [f32]) {
        scores.iter_mut().for_each(|s| *s = 0.0);
        self.score_profile(row, scores);
    }

    /// The features that contributed most to `item`'s score for this history, largest first:
    /// (feature column, contribution). The engine turns columns into names with
    /// [`crate::FeatureSpace::feature`].
    pub fn explain(&self, history: &[(u32, f32)], item: u32, n: usize) -> Vec<(u32, f32)> {
        self.explain_profile(&self.profile(history), item, n)
    }

    /// The features that contributed most to `item`'s score under `profile` (a sorted sparse
    /// vector: a [`ContentModel::profile_with`], or an item's own feature row for similar items),
    /// largest first: (feature column, contribution).
    pub fn explain_profile(&self, profile: &[(u32, f32)], item: u32, n: usize) -> Vec<(u32, f32)> {
        if item as usize >= self.item_features.n_rows {
            return Vec::new();
        }
        let (cols, vals) = self.item_features.row(item as usize);
        let mut parts: Vec<(u32, f32)> = cols
            .iter()
            .zip(vals)
            .filter_map(|(&c, &v)| {
                let w = profile
                    .binary_search_by_key(&c, |p| p.0)
                    .ok()
                    .map(|k| profile[k].1)?;
                (w * v > 0.0).then_some((c, w * v))
            })
            .collect();
        parts.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        parts.truncate(n);
        parts
    }
}

/// Sorts (column, value) pairs and sums repeats.
pub(crate) fn merge_sorted(mut entries: Vec<(u32, f32)>) -> Vec<(u32, f32)> {
    entries.sort_unstable_by_key(|e| e.0);
    let mut out: Vec<(u32, f32)> = Vec::with_capacity(entries.len());
    for (c, v) in entries {
        match out.last_mut() {
            Some(last) if last.0 == c => last.1 += v,
            _ => out.push((c, v)),
        }
    }
    out
}

impl Recommender for ContentModel {
    fn name(&self) -> &'static str {
        "content"
    }

    fn n_items(&self) -> usize {
        self.item_features.n_rows
    }

    fn score(&self, history: &[(u32, f32)], scores: &mut [f32]) {
        scores.iter_mut().for_each(|s| *s = 0.0);
        let profile = self.profile(history);
        self.score_profile(&profile, scores);
    }
}

impl SimilarItems for ContentModel {
    /// Cosine neighbours by content (rows are unit length), the item itself excluded.
    fn similar(&self, item: u32, k: usize) -> Vec<(u32, f32)> {
        if item as usize >= self.item_features.n_rows {
            return Vec::new();
        }
        let (cols, vals) = self.item_features.row(item as usize);
        let row: Vec<(u32, f32)> = cols.iter().copied().zip(vals.iter().copied()).collect();
        self.similar_to_row(&row, k, Some(item))
    }
}

impl ContentModel {
    /// The `k` items closest by cosine to a feature row (an item the model has not seen,
    /// transformed by [`crate::FeatureSpace::transform_item`]), `exclude` left out; only items
    /// sharing a feature with it (a positive score) are returned.
    pub fn similar_to_row(
        &self,
        row: &[(u32, f32)],
        k: usize,
        exclude: Option<u32>,
    ) -> Vec<(u32, f32)> {
        let mut scores = vec![0f32; self.item_features.n_rows];
        self.score_profile(row, &mut scores);
        top_k(&scores, k, |i| {
            Some(i) == exclude || scores[i as usize] <= 0.0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::rows_to_csr;

    /// Items 0, 1 share feature 0; items 2, 3 share feature 1; item 4 has both.
    fn model() -> ContentModel {
        let s = std::f32::consts::FRAC_1_SQRT_2;
        let rows = vec![
            vec![(0, 1.0)],
            vec![(0, 1.0)],
            vec![(1, 1.0)],
            vec![(1, 1.0)],
            vec![(0, s), (1, s)],
        ];
        ContentModel::new(rows_to_csr(rows, 2))
            .unwrap()
            .with_saturation(0.0)
    }

    #[test]
    fn hand_computed_scores() {
        let m = model();
        let mut scores = vec![0f32; 5];
        m.score(&[(0, 2.0), (2, 1.0)], &mut scores);
        let s = std::f32::consts::FRAC_1_SQRT_2;
        let expected = [2.0, 2.0, 1.0, 1.0, 3.0 * s];
        for (a, b) in scores.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{scores:?}");
        }
    }

    #[test]
    fn history_features_rank_first() {
        let m = model();
        let mut scores = vec![0f32; 5];
        m.score(&[(0, 1.0)], &mut scores);
        let ranked = top_k(&scores, 5, |i| i == 0);
        assert_eq!(ranked[0].0, 1);
        assert_eq!(ranked[1].0, 4);
        assert_eq!(
            m.explain(&[(0, 1.0)], 4, 3),
            vec![(0, std::f32::consts::FRAC_1_SQRT_2)]
        );
    }

    #[test]
    fn saturation_caps_a_feature_the_whole_history_shares() {
        let m = model().with_saturation(1.0);
        // Profile of items 0 and 1: feature 0 has weight 2, saturated to 2 / 3.
        assert_eq!(m.profile(&[(0, 1.0), (1, 1.0)]), vec![(0, 2.0 / 3.0)]);
    }

    #[test]
    fn save_load_round_trip_scores_identically() {
        let m = model().with_saturation(0.3);
        let back: ContentModel = postcard::from_bytes(&postcard::to_allocvec(&m).unwrap()).unwrap();
        let (mut a, mut b) = (vec![0f32; 5], vec![0f32; 5]);
        m.score(&[(0, 1.0), (3, 2.0)], &mut a);
        back.score(&[(0, 1.0), (3, 2.0)], &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn an_unseen_item_s_row_adds_to_the_profile_and_finds_its_neighbours() {
        let m = model();
        // Item 0's history plus a row on feature 1: both features, as item 4's own row.
        let s = std::f32::consts::FRAC_1_SQRT_2;
        let profile = m.profile_with(&[(0, 1.0)], &[(1, 1.0), (9, 5.0)]);
        assert_eq!(
            profile,
            vec![(0, 1.0), (1, 1.0)],
            "unknown columns are ignored"
        );
        let parts = m.explain_profile(&profile, 4, 2);
        assert_eq!(parts, vec![(0, s), (1, s)]);
        // A row on feature 1 alone: items 2 and 3 fully, item 4 half-way, items 0 and 1 not.
        let near = m.similar_to_row(&[(1, 1.0)], 5, None);
        assert_eq!(near, vec![(2, 1.0), (3, 1.0), (4, s)]);
        assert_eq!(m.similar_to_row(&[(1, 1.0)], 5, Some(2))[0], (3, 1.0));
    }

    #[test]
    fn similar_items_by_cosine() {
        let m = model();
        let sim = m.similar(0, 3);
        assert_eq!(sim[0], (1, 1.0));
        assert_eq!(sim[1].0, 4);
        assert_eq!(sim.len(), 2, "items without shared features are left out");
    }
}
