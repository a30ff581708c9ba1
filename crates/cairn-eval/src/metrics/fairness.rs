//! Fairness metrics over item groups (any item property: genre, brand, provider): miscalibration
//! (Steck 2018) and the share of list exposure each group receives.
//!
//! An item may belong to several groups; as in Steck 2018, its weight is split evenly over them
//! (p(g|i) = 1/|groups of i|), so an item counts once in every distribution. Items without a group
//! count in no distribution.

use cairn_core::IdMap;
use serde::{Deserialize, Serialize};

/// The smoothing weight α of Steck 2018: q̃ = (1 − α)·q + α·p, so that a group the history has
/// and the list lacks costs log(1/α) rather than infinity.
pub const CALIBRATION_ALPHA: f64 = 0.01;

/// Which groups each item belongs to, in dense item indices.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemGroups {
    /// Group names; a group's index is its position.
    pub names: Vec<String>,
    /// `groups[start[i]..start[i + 1]]` are item i's groups.
    start: Vec<u32>,
    groups: Vec<u32>,
}

impl ItemGroups {
    /// From (item, group name) pairs over `n_items` items; pairs of items outside the range and
    /// repeated pairs are ignored. Groups are numbered in order of first appearance.
    pub fn from_pairs<'a>(
        n_items: usize,
        pairs: impl IntoIterator<Item = (u32, &'a str)>,
    ) -> ItemGroups {
        let mut names = IdMap::new();
        let mut per_item: Vec<Vec<u32>> = vec![Vec::new(); n_items];
        for (item, name) in pairs {
            let g = names.intern(name);
            if let Some(list) = per_item.get_mut(item as usize) {
                if !list.contains(&g) {
                    list.push(g);
                }
            }
        }
        let mut start = Vec::with_capacity(n_items + 1);
        let mut groups = Vec::new();
        start.push(0);
        for list in per_item {
            groups.extend(list);
            start.push(groups.len() as u32);
        }
        ItemGroups {
            names: (0..names.len() as u32)
                .map(|g| names.id(g).to_string())
                .collect(),
            start,
            groups,
        }
    }

    pub fn n_groups(&self) -> usize {
        self.names.len()
    }

    pub fn n_items(&self) -> usize {
        self.start.len().saturating_sub(1)
    }

    /// The item's groups; empty for an item without any (or out of range).
    pub fn of(&self, item: u32) -> &[u32] {
        let i = item as usize;
        if i + 1 >= self.start.len() {
            return &[];
        }
        &self.groups[self.start[i] as usize..self.start[i + 1] as usize]
    }

    /// The group distribution of weighted items, Σ_i w_i p(g|i) / Σ_i w_i over the items that
    /// have a group; `None` when none has.
    pub fn distribution(&self, items: impl IntoIterator<Item = (u32, f64)>) -> Option<Vec<f64>> {
        let mut dist = vec![0f64; self.n_groups()];
        let mut total = 0.0;
        for (item, weight) in items {
            let groups = self.of(item);
            if groups.is_empty() || weight <= 0.0 {
                continue;
            }
            let share = weight / groups.len() as f64;
            for &g in groups {
                dist[g as usize] += share;
            }
            total += weight;
        }
        (total > 0.0).then(|| {
            dist.iter_mut().for_each(|d| *d /= total);
            dist
        })
    }
}

/// KL(p ‖ q̃) with q̃ = (1 − α)·q + α·p, in nats; groups where p is 0 add nothing.
pub fn calibration_kl(p: &[f64], q: &[f64], alpha: f64) -> f64 {
    p.iter()
        .zip(q)
        .filter(|(&pg, _)| pg > 0.0)
        .map(|(&pg, &qg)| pg * (pg / ((1.0 - alpha) * qg + alpha * pg)).ln())
        .sum()
}

/// Miscalibration of one list (Steck 2018): KL divergence between the group mix of the user's
/// history (every history item weighs 1) and that of the list, the list's mix smoothed with
/// [`CALIBRATION_ALPHA`]. `None` when no history item has a group, or the list is empty. A list
/// with no grouped item scores log(1/α).
pub fn miscalibration(history: &[u32], list: &[u32], groups: &ItemGroups) -> Option<f64> {
    if list.is_empty() {
        return None;
    }
    let p = groups.distribution(history.iter().map(|&i| (i, 1.0)))?;
    let q = groups
        .distribution(list.iter().map(|&i| (i, 1.0)))
        .unwrap_or_else(|| vec![0.0; p.len()]);
    Some(calibration_kl(&p, &q, CALIBRATION_ALPHA))
}

/// How the top-k slots of every list are shared among the groups, against the groups' shares of
/// the catalog and of the training interactions. Every vector is indexed like `groups` and sums
/// to 1 (or is all zeros when nothing had a group).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupExposure {
    pub k: usize,
    pub groups: Vec<String>,
    /// Share of the top-k slots (each slot weighs 1).
    pub exposure: Vec<f64>,
    /// Share of position-discounted exposure: the slot at rank r (from 1) weighs 1 / log2(r + 1),
    /// the discount of NDCG.
    pub discounted_exposure: Vec<f64>,
    /// Share of the catalog's items.
    pub catalog_share: Vec<f64>,
    /// Share of the training interactions (item popularity).
    pub interaction_share: Vec<f64>,
}

fn normalized(mut v: Vec<f64>) -> Vec<f64> {
    let total: f64 = v.iter().sum();
    if total > 0.0 {
        v.iter_mut().for_each(|x| *x /= total);
    }
    v
}

/// Exposure per group of the top-k of `lists`; `catalog` are the rankable items and
/// `item_popularity` their training interactions.
pub fn group_exposure<'a>(
    lists: impl IntoIterator<Item = &'a [u32]>,
    k: usize,
    groups: &ItemGroups,
    catalog: &[u32],
    item_popularity: &[u32],
) -> GroupExposure {
    let n = groups.n_groups();
    let mut plain = vec![0f64; n];
    let mut discounted = vec![0f64; n];
    let add = |dist: &mut [f64], item: u32, w: f64| {
        let gs = groups.of(item);
        for &g in gs {
            dist[g as usize] += w / gs.len() as f64;
        }
    };
    for list in lists {
        for (rank, &item) in list.iter().take(k).enumerate() {
            add(&mut plain, item, 1.0);
            add(&mut discounted, item, 1.0 / ((rank + 2) as f64).log2());
        }
    }
    let mut catalog_share = vec![0f64; n];
    let mut interaction_share = vec![0f64; n];
    for &item in catalog {
        add(&mut catalog_share, item, 1.0);
        let pop = item_popularity.get(item as usize).copied().unwrap_or(0);
        add(&mut interaction_share, item, f64::from(pop));
    }
    GroupExposure {
        k,
        groups: groups.names.clone(),
        exposure: normalized(plain),
        discounted_exposure: normalized(discounted),
        catalog_share: normalized(catalog_share),
        interaction_share: normalized(interaction_share),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Items 0..4: 0 = {a}, 1 = {b}, 2 = {a, b}, 3 = none.
    fn groups() -> ItemGroups {
        ItemGroups::from_pairs(4, [(0, "a"), (1, "b"), (2, "a"), (2, "b"), (2, "a")])
    }

    #[test]
    fn an_item_weighs_once_split_over_its_groups() {
        let g = groups();
        assert_eq!(g.names, vec!["a", "b"]);
        assert_eq!(g.of(2), &[0, 1]);
        assert!(g.of(3).is_empty());
        assert!(g.of(99).is_empty());
        // {0, 2}: a = 1 + 0.5, b = 0.5, over 2 items
        assert_eq!(
            g.distribution([(0, 1.0), (2, 1.0), (3, 1.0)]),
            Some(vec![0.75, 0.25])
        );
        assert_eq!(g.distribution([(3, 1.0)]), None);
    }

    #[test]
    fn miscalibration_by_hand() {
        let g = groups();
        // p = [0.75, 0.25]; list [1] -> q = [0, 1]
        // q̃ = [0.01·0.75, 0.99 + 0.01·0.25]
        let p0: f64 = 0.75;
        let p1: f64 = 0.25;
        let expected = p0 * (p0 / (0.01 * p0)).ln() + p1 * (p1 / (0.99 + 0.01 * p1)).ln();
        let got = miscalibration(&[0, 2], &[1], &g).unwrap();
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
        // A list with the history's mix is perfectly calibrated.
        assert!(miscalibration(&[0, 2], &[2, 0], &g).unwrap().abs() < 1e-12);
        // A list without any grouped item costs log(1/α).
        let none = miscalibration(&[0], &[3], &g).unwrap();
        assert!((none - 100f64.ln()).abs() < 1e-12);
        assert_eq!(miscalibration(&[3], &[0], &g), None);
        assert_eq!(miscalibration(&[0], &[], &g), None);
    }

    #[test]
    fn exposure_shares_by_hand() {
        let g = groups();
        let lists: [&[u32]; 2] = [&[0, 1], &[2, 3]];
        let e = group_exposure(lists, 2, &g, &[0, 1, 2, 3], &[4, 2, 2, 9]);
        // slots: 0 -> a, 1 -> b, 2 -> a/2 + b/2, 3 -> none: a 1.5, b 1.5
        assert_eq!(e.exposure, vec![0.5, 0.5]);
        // discounted: rank 1 weighs 1, rank 2 weighs 1/log2(3)
        let w2 = 1.0 / 3f64.log2();
        let da = 1.0 + 0.5; // item 0 at rank 1, item 2 at rank 1
        let db = w2 + 0.5; // item 1 at rank 2, item 2 at rank 1
        assert!((e.discounted_exposure[0] - da / (da + db)).abs() < 1e-12);
        // catalog: a = 1 + 0.5, b = 1 + 0.5; interactions: a = 4 + 1, b = 2 + 1
        assert_eq!(e.catalog_share, vec![0.5, 0.5]);
        assert_eq!(e.interaction_share, vec![5.0 / 8.0, 3.0 / 8.0]);
    }

    proptest! {
        #[test]
        fn miscalibration_is_non_negative_and_bounded(
            history in proptest::collection::vec(0u32..4, 1..8),
            list in proptest::collection::vec(0u32..4, 1..8),
        ) {
            let g = groups();
            if let Some(kl) = miscalibration(&history, &list, &g) {
                prop_assert!(kl >= -1e-12);
                prop_assert!(kl <= (1.0 / CALIBRATION_ALPHA).ln() + 1e-9);
            }
        }
    }
}
