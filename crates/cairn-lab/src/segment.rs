//! Popularity within user segments: what users who share a property (gender, age band, occupation…)
//! interacted with. For a user known only by properties this is a strong baseline, and one the
//! factor models find hard to beat: it combines the segments naive-Bayes style,
//! `score_i = log p(i) + Σ_g [log p(i | g) − log p(i)]`, where `p(i | g)` is the share of the
//! segment's users who have item i, shrunk towards `p(i)` by `smoothing` pseudo-users so that small
//! segments do not overrule the global popularity.

use cairn_content::ContentError;
use cairn_core::CsrMatrix;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentPopularity {
    n_items: usize,
    /// log p(i) over all training users.
    global: Vec<f32>,
    /// User features × items, row-major: log p(i | g) − log p(i).
    lift: Vec<f32>,
}

impl SegmentPopularity {
    /// `interactions`: users × items; `user_features`: users × user features (rows aligned with
    /// `interactions`; a positive value means the user is in that segment). `smoothing` is the number
    /// of pseudo-users with the global distribution added to every segment.
    pub fn fit(
        interactions: &CsrMatrix,
        user_features: &CsrMatrix,
        smoothing: f32,
    ) -> Result<Self, ContentError> {
        if user_features.n_rows != interactions.n_rows {
            return Err(ContentError::ShapeMismatch {
                what: "user features against interactions",
                expected: interactions.n_rows,
                got: user_features.n_rows,
            });
        }
        if !(smoothing > 0.0 && smoothing.is_finite()) {
            return Err(ContentError::InvalidConfig(
                "segment smoothing must be positive".into(),
            ));
        }
        let (n_users, n_items, n_segments) = (
            interactions.n_rows,
            interactions.n_cols,
            user_features.n_cols,
        );
        let mut item_users = vec![0f64; n_items];
        let mut segment_items = vec![0f64; n_segments * n_items];
        let mut segment_users = vec![0f64; n_segments];
        for u in 0..n_users {
            let (items, _) = interactions.row(u);
            let (segments, values) = user_features.row(u);
            let segments: Vec<usize> = segments
                .iter()
                .zip(values)
                .filter(|(_, v)| **v > 0.0)
                .map(|(&g, _)| g as usize)
                .collect();
            for &i in items {
                item_users[i as usize] += 1.0;
            }
            for &g in &segments {
                segment_users[g] += 1.0;
                let row = &mut segment_items[g * n_items..(g + 1) * n_items];
                for &i in items {
                    row[i as usize] += 1.0;
                }
            }
        }
        // Every item gets half a pseudo-user so that unseen items have a finite, lowest score.
        let users = n_users as f64 + 1.0;
        let p: Vec<f64> = item_users.iter().map(|&c| (c + 0.5) / users).collect();
        let m = f64::from(smoothing);
        let lift = segment_items
            .chunks(n_items.max(1))
            .zip(&segment_users)
            .flat_map(|(row, &n_g)| {
                row.iter()
                    .zip(&p)
                    .map(move |(&c, &p_i)| (((c + m * p_i) / (n_g + m)) / p_i).ln() as f32)
            })
            .collect();
        Ok(SegmentPopularity {
            n_items,
            global: p.iter().map(|&x| x.ln() as f32).collect(),
            lift,
        })
    }

    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Scores every item for a user with these property features (columns of the user feature
    /// space the model was fitted with; unknown columns are ignored). No properties: global
    /// popularity order.
    pub fn score(&self, user_features: &[(u32, f32)], scores: &mut [f32]) {
        let n = self.n_items.min(scores.len());
        scores[..n].copy_from_slice(&self.global[..n]);
        let n_segments = self.lift.len().checked_div(self.n_items).unwrap_or(0);
        for &(g, v) in user_features {
            let g = g as usize;
            if v > 0.0 && g < n_segments {
                let row = &self.lift[g * self.n_items..g * self.n_items + n];
                scores[..n].iter_mut().zip(row).for_each(|(s, l)| *s += l);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn csr(n_rows: usize, n_cols: usize, rows: &[&[u32]]) -> CsrMatrix {
        let triplets = rows
            .iter()
            .enumerate()
            .flat_map(|(u, r)| r.iter().map(move |&i| (u as u32, i, 1.0)))
            .collect();
        CsrMatrix::from_triplets(n_rows, n_cols, triplets)
    }

    #[test]
    fn a_segment_prefers_what_its_users_chose() {
        // Users 0-2 are segment 0 and like item 0; users 3-6 are segment 1 and like item 1, which is
        // therefore more popular overall.
        let interactions = csr(7, 3, &[&[0], &[0], &[0, 2], &[1], &[1], &[1], &[1, 2]]);
        let features = csr(7, 2, &[&[0], &[0], &[0], &[1], &[1], &[1], &[1]]);
        let model = SegmentPopularity::fit(&interactions, &features, 1.0).unwrap();
        let mut s = vec![0f32; 3];
        model.score(&[], &mut s);
        assert!(s[1] > s[0], "global order: {s:?}");
        model.score(&[(0, 1.0)], &mut s);
        assert!(s[0] > s[1], "segment 0: {s:?}");
        model.score(&[(1, 0.5)], &mut s);
        assert!(s[1] > s[0], "segment 1: {s:?}");
        // Columns the model never saw are ignored.
        model.score(&[(7, 1.0)], &mut s);
        assert!(s[1] > s[0]);
    }

    #[test]
    fn bad_input_is_an_error() {
        let interactions = csr(2, 2, &[&[0], &[1]]);
        let features = csr(3, 1, &[&[0], &[0], &[0]]);
        assert!(SegmentPopularity::fit(&interactions, &features, 1.0).is_err());
        let features = csr(2, 1, &[&[0], &[0]]);
        assert!(SegmentPopularity::fit(&interactions, &features, 0.0).is_err());
    }

    proptest! {
        #[test]
        fn scores_are_finite_and_more_smoothing_moves_towards_global(
            rows in proptest::collection::vec(proptest::collection::vec(0u32..6, 0..4), 1..12),
            segment in 0u32..3,
        ) {
            let n = rows.len();
            let refs: Vec<&[u32]> = rows.iter().map(|r| r.as_slice()).collect();
            let interactions = csr(n, 6, &refs);
            let segs: Vec<Vec<u32>> = (0..n).map(|u| vec![(u % 3) as u32]).collect();
            let seg_refs: Vec<&[u32]> = segs.iter().map(|r| r.as_slice()).collect();
            let features = csr(n, 3, &seg_refs);
            let mut global = vec![0f32; 6];
            let mut weak = vec![0f32; 6];
            let mut strong = vec![0f32; 6];
            let loose = SegmentPopularity::fit(&interactions, &features, 0.5).unwrap();
            let tight = SegmentPopularity::fit(&interactions, &features, 1e4).unwrap();
            loose.score(&[], &mut global);
            loose.score(&[(segment, 1.0)], &mut weak);
            tight.score(&[(segment, 1.0)], &mut strong);
            prop_assert!(weak.iter().chain(&strong).all(|s| s.is_finite()));
            let gap = |a: &[f32]| a.iter().zip(&global).map(|(x, y)| (x - y).abs()).sum::<f32>();
            prop_assert!(gap(&strong) <= gap(&weak) + 1e-4);
        }
    }
}
