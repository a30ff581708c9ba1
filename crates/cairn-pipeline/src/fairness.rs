//! The re-ranking objectives that trade relevance for fairness, one knob each, per placement
//! ([`PlacementConfig::calibration_lambda`], [`PlacementConfig::popularity_lambda`]); `rerank`
//! adds them to each candidate's value when it fills a position.
//!
//! - **Calibration** (Steck 2018, "Calibrated recommendations"): the list's category mix q should
//!   match the user's history mix p. Filling the list greedily, position by position, each
//!   position goes to the candidate that maximises (1 − λ)·relevance − λ·KL(p ‖ q̃), q̃ the mix of
//!   the list with the candidate added, smoothed (1 − α)·q + α·p with α = 0.01. An item's weight is
//!   split evenly over its categories; items without a category leave q unchanged.
//! - **Popularity correction** (smooth xQuAD, Abdollahpouri et al. 2019): the short head (the
//!   most popular items that receive `short_head_share` of the interactions) and the long tail are
//!   two groups; a candidate of group g gains λ·P(g|u)·(1 − share of g in the list so far), P(g|u)
//!   the share of the user's positive history in g (the catalog-wide tail share for a user
//!   without history), and its relevance weighs 1 − λ.
//!
//! Both objectives compose with MMR: the value MMR gives (relevance alone when MMR is off) is
//! what they trade against. With both knobs at 0 nothing here runs, so the order is unchanged.

use crate::items::ItemTable;
use crate::placement::PlacementConfig;
use crate::request::Activity;

/// Steck's smoothing weight: a category of the history absent from the list costs log(1/α).
pub const ALPHA: f64 = 0.01;

/// The calibration state of one list being filled.
#[derive(Debug, Clone)]
pub struct Calibration {
    lambda: f64,
    /// The user's category mix: (category, p), p > 0, summing to 1.
    p: Vec<(u32, f64)>,
    /// Per category, Σ over the placed items of their share in it (1 / their category count).
    placed: Vec<f64>,
    /// Placed items that have a category.
    n: f64,
}

impl Calibration {
    /// `p` as (category, weight) pairs (weights need not sum to 1; non-positive ones are
    /// dropped); `n_categories` bounds the category indices. `None` when p is empty.
    pub fn new(lambda: f64, p: Vec<(u32, f64)>, n_categories: usize) -> Option<Calibration> {
        let p: Vec<(u32, f64)> = p.into_iter().filter(|&(_, w)| w > 0.0).collect();
        let total: f64 = p.iter().map(|&(_, w)| w).sum();
        if p.is_empty() || total <= 0.0 {
            return None;
        }
        let n_categories = p
            .iter()
            .map(|&(c, _)| c as usize + 1)
            .max()
            .unwrap_or(0)
            .max(n_categories);
        Some(Calibration {
            lambda,
            p: p.into_iter().map(|(c, w)| (c, w / total)).collect(),
            placed: vec![0.0; n_categories],
            n: 0.0,
        })
    }

    /// The user's category mix p(g|u) from weighted items: each item's weight split evenly over
    /// its categories.
    pub fn history_mix<'a>(
        items: impl IntoIterator<Item = (&'a [u32], f64)>,
        n_categories: usize,
    ) -> Vec<(u32, f64)> {
        let mut mix = vec![0f64; n_categories];
        for (cats, w) in items {
            if cats.is_empty() || w <= 0.0 {
                continue;
            }
            for &c in cats {
                if let Some(m) = mix.get_mut(c as usize) {
                    *m += w / cats.len() as f64;
                }
            }
        }
        mix.into_iter()
            .enumerate()
            .filter(|&(_, w)| w > 0.0)
            .map(|(c, w)| (c as u32, w))
            .collect()
    }

    /// KL(p ‖ q̃) of the list so far plus an item with categories `cats`.
    pub fn kl_with(&self, cats: &[u32]) -> f64 {
        let (extra, n) = if cats.is_empty() {
            (0.0, self.n)
        } else {
            (1.0 / cats.len() as f64, self.n + 1.0)
        };
        self.p
            .iter()
            .map(|&(c, pc)| {
                let mut mass = self.placed.get(c as usize).copied().unwrap_or(0.0);
                if cats.contains(&c) {
                    mass += extra;
                }
                let q = if n > 0.0 { mass / n } else { 0.0 };
                pc * (pc / ((1.0 - ALPHA) * q + ALPHA * pc)).ln()
            })
            .sum()
    }

    /// KL(p ‖ q̃) of the list so far.
    pub fn kl(&self) -> f64 {
        self.kl_with(&[])
    }

    pub fn add(&mut self, cats: &[u32]) {
        if cats.is_empty() {
            return;
        }
        let share = 1.0 / cats.len() as f64;
        for &c in cats {
            if let Some(m) = self.placed.get_mut(c as usize) {
                *m += share;
            }
        }
        self.n += 1.0;
    }
}

/// The popularity-correction state of one list being filled.
#[derive(Debug, Clone)]
pub struct PopularityCorrection {
    lambda: f64,
    /// P(long tail | u).
    tail_share: f64,
    placed_tail: f64,
    placed: f64,
}

impl PopularityCorrection {
    pub fn new(lambda: f64, tail_share: f64) -> PopularityCorrection {
        PopularityCorrection {
            lambda,
            tail_share: tail_share.clamp(0.0, 1.0),
            placed_tail: 0.0,
            placed: 0.0,
        }
    }

    /// P(g|u)·(1 − share of g in the list so far), g the item's group.
    pub fn coverage(&self, tail: bool) -> f64 {
        let (target, in_group) = if tail {
            (self.tail_share, self.placed_tail)
        } else {
            (1.0 - self.tail_share, self.placed - self.placed_tail)
        };
        let share = if self.placed > 0.0 {
            in_group / self.placed
        } else {
            0.0
        };
        target * (1.0 - share)
    }

    pub fn add(&mut self, tail: bool) {
        self.placed += 1.0;
        if tail {
            self.placed_tail += 1.0;
        }
    }
}

/// Both objectives for one request; built only when a knob is above 0.
#[derive(Debug, Clone, Default)]
pub struct FairObjective {
    pub calibration: Option<Calibration>,
    pub popularity: Option<PopularityCorrection>,
    /// Items with at least this many training interactions are in the short head.
    pub head_threshold: u32,
}

impl FairObjective {
    /// The objective of `placement` for a user with `activity`; `None` when both knobs are 0 (or
    /// calibration is asked for a user without categorised history and popularity is off).
    pub fn new(
        table: &ItemTable,
        activity: &Activity,
        placement: &PlacementConfig,
    ) -> Option<FairObjective> {
        let mut objective = FairObjective {
            head_threshold: u32::MAX,
            ..FairObjective::default()
        };
        if placement.calibration_lambda > 0.0 {
            let n = table.categories.len();
            let mix = Calibration::history_mix(
                activity
                    .positives
                    .iter()
                    .map(|&(i, w)| (table.categories_of(i), f64::from(w))),
                n,
            );
            objective.calibration =
                Calibration::new(f64::from(placement.calibration_lambda), mix, n);
        }
        if placement.popularity_lambda > 0.0 {
            let threshold = table.short_head_threshold(placement.short_head_share);
            objective.head_threshold = threshold;
            let (mut tail, mut total) = (0f64, 0f64);
            for &(i, w) in &activity.positives {
                total += f64::from(w);
                if table.interactions[i as usize] < threshold {
                    tail += f64::from(w);
                }
            }
            let tail_share = if total > 0.0 {
                tail / total
            } else {
                1.0 - f64::from(placement.short_head_share)
            };
            objective.popularity = Some(PopularityCorrection::new(
                f64::from(placement.popularity_lambda),
                tail_share,
            ));
        }
        (objective.calibration.is_some() || objective.popularity.is_some()).then_some(objective)
    }

    /// Whether an item with this many interactions is in the long tail.
    pub fn is_tail(&self, interactions: u32) -> bool {
        interactions < self.head_threshold
    }

    /// A candidate's value: `base` (relevance, or MMR's value) traded against calibration, then
    /// against the popularity correction.
    pub fn value(&self, base: f32, cats: &[u32], tail: bool) -> f32 {
        let mut v = f64::from(base);
        if let Some(c) = &self.calibration {
            v = (1.0 - c.lambda) * v - c.lambda * c.kl_with(cats);
        }
        if let Some(p) = &self.popularity {
            v = (1.0 - p.lambda) * v + p.lambda * p.coverage(tail);
        }
        v as f32
    }

    /// Records a placed item.
    pub fn add(&mut self, cats: &[u32], tail: bool) {
        if let Some(c) = &mut self.calibration {
            c.add(cats);
        }
        if let Some(p) = &mut self.popularity {
            p.add(tail);
        }
    }
}

/// The greedy fill on its own: positions `0..n` go one by one to the unplaced candidate of best
/// [`FairObjective::value`] (ties to the earlier candidate), `rel` the candidates' relevance in
/// any order, `cats` and `tail` their categories and group. With no objective, the candidates by
/// decreasing relevance. `rerank` runs the same values inside its own loop (with MMR, category
/// limits and exploration); this is the rule alone, for tests and benchmarks.
pub fn greedy(
    rel: &[f32],
    cats: &[&[u32]],
    tail: &[bool],
    mut objective: Option<FairObjective>,
    n: usize,
) -> Vec<usize> {
    let mut placed = vec![false; rel.len()];
    let mut out = Vec::with_capacity(n.min(rel.len()));
    while out.len() < n {
        let best = (0..rel.len())
            .filter(|&c| !placed[c])
            .map(|c| {
                let v = match &objective {
                    Some(o) => o.value(rel[c], cats[c], tail[c]),
                    None => rel[c],
                };
                (c, v)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        let Some((c, _)) = best else { break };
        placed[c] = true;
        if let Some(o) = &mut objective {
            o.add(cats[c], tail[c]);
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn calibration(lambda: f64, p: &[(u32, f64)]) -> FairObjective {
        FairObjective {
            calibration: Calibration::new(lambda, p.to_vec(), 4),
            popularity: None,
            head_threshold: u32::MAX,
        }
    }

    /// KL of a list's mix against p, as cairn-eval's miscalibration computes it.
    fn list_kl(p: &[(u32, f64)], list: &[usize], cats: &[&[u32]]) -> f64 {
        let mut c = Calibration::new(1.0, p.to_vec(), 4).unwrap();
        for &i in list {
            c.add(cats[i]);
        }
        c.kl()
    }

    #[test]
    fn kl_by_hand() {
        // p = [0.75, 0.25] over categories 0 and 1; the list holds one item of category 1.
        let mut c = Calibration::new(1.0, vec![(0, 3.0), (1, 1.0)], 2).unwrap();
        let empty = c.kl();
        assert!(
            (empty - 100f64.ln()).abs() < 1e-12,
            "nothing placed: log 1/α"
        );
        c.add(&[1]);
        let expected: f64 =
            0.75 * (0.75f64 / (0.01 * 0.75)).ln() + 0.25 * (0.25f64 / (0.99 + 0.0025)).ln();
        assert!((c.kl() - expected).abs() < 1e-12);
        // Adding an item of both categories: q = [0.5/2, 1.5/2]
        let q: [f64; 2] = [0.25, 0.75];
        let with = 0.75 * (0.75 / (0.99 * q[0] + 0.0075)).ln()
            + 0.25 * (0.25 / (0.99 * q[1] + 0.0025)).ln();
        assert!((c.kl_with(&[0, 1]) - with).abs() < 1e-12);
        assert!(Calibration::new(1.0, vec![(0, 0.0)], 1).is_none());
    }

    #[test]
    fn the_history_mix_splits_an_item_over_its_categories() {
        let a: &[u32] = &[0];
        let ab: &[u32] = &[0, 1];
        let none: &[u32] = &[];
        let mix = Calibration::history_mix([(a, 1.0), (ab, 1.0), (none, 5.0)], 3);
        assert_eq!(mix, vec![(0, 1.5), (1, 0.5)]);
    }

    #[test]
    fn calibration_brings_the_minority_category_into_the_top() {
        // A user who is 75% drama (0), 25% comedy (1); the most relevant items are all drama.
        let cats: [&[u32]; 6] = [&[0], &[0], &[0], &[0], &[1], &[1]];
        let rel = [1.0, 0.98, 0.96, 0.94, 0.9, 0.88];
        let tail = [false; 6];
        let p = [(0, 0.75), (1, 0.25)];
        let plain = greedy(&rel, &cats, &tail, None, 4);
        assert_eq!(plain, vec![0, 1, 2, 3]);
        let calibrated = greedy(&rel, &cats, &tail, Some(calibration(0.5, &p)), 4);
        assert_eq!(calibrated, vec![0, 4, 1, 2], "three drama, one comedy");
        assert!(list_kl(&p, &calibrated, &cats) < list_kl(&p, &plain, &cats));
        // On this case KL never rises above the relevance order's, whatever the knob.
        for step in 0..=10 {
            let lambda = f64::from(step) / 10.0;
            let list = greedy(&rel, &cats, &tail, Some(calibration(lambda, &p)), 4);
            assert!(
                list_kl(&p, &list, &cats) <= list_kl(&p, &plain, &cats) + 1e-12,
                "λ = {lambda}: {list:?}"
            );
        }
    }

    #[test]
    fn the_popularity_correction_gives_the_tail_its_share() {
        // Half the user's history is in the long tail; the head is more relevant.
        let rel = [1.0, 0.99, 0.98, 0.97, 0.9, 0.89];
        let tail = [false, false, false, false, true, true];
        let none: &[u32] = &[];
        let cats = [none; 6];
        let objective = |lambda| FairObjective {
            calibration: None,
            popularity: Some(PopularityCorrection::new(lambda, 0.5)),
            head_threshold: 10,
        };
        let plain = greedy(&rel, &cats, &tail, None, 4);
        assert_eq!(plain, vec![0, 1, 2, 3]);
        let corrected = greedy(&rel, &cats, &tail, Some(objective(0.5)), 4);
        let tails = corrected.iter().filter(|&&c| tail[c]).count();
        assert_eq!(tails, 2, "{corrected:?}");
        // A small knob leaves this head alone: the gap in relevance is larger than the gain.
        assert_eq!(greedy(&rel, &cats, &tail, Some(objective(0.05)), 4), plain);
        let o = objective(0.5);
        assert!(o.is_tail(9) && !o.is_tail(10));
    }

    /// Relevance, categories per item, long-tail flags, and the user's category mix.
    type Case = (Vec<f32>, Vec<Vec<u32>>, Vec<bool>, Vec<(u32, f64)>);

    fn case() -> impl Strategy<Value = Case> {
        (2usize..30).prop_flat_map(|n| {
            (
                proptest::collection::vec(0.05f32..1.0, n),
                proptest::collection::vec(proptest::collection::vec(0u32..4, 0..3), n),
                proptest::collection::vec(any::<bool>(), n),
                proptest::collection::vec((0u32..4, 0.1f64..1.0), 1..4),
            )
        })
    }

    fn dedup(cats: Vec<Vec<u32>>) -> Vec<Vec<u32>> {
        cats.into_iter()
            .map(|mut c| {
                c.sort_unstable();
                c.dedup();
                c
            })
            .collect()
    }

    proptest! {
        #[test]
        fn zero_knobs_keep_the_relevance_order(
            (rel, cats, tail, p) in case(),
            n in 1usize..30,
        ) {
            let cats = dedup(cats);
            let slices: Vec<&[u32]> = cats.iter().map(Vec::as_slice).collect();
            let plain = greedy(&rel, &slices, &tail, None, n);
            let zero = FairObjective {
                calibration: Calibration::new(0.0, p.clone(), 4),
                popularity: Some(PopularityCorrection::new(0.0, 0.3)),
                head_threshold: 10,
            };
            prop_assert_eq!(greedy(&rel, &slices, &tail, Some(zero), n), plain.clone());
            // ... and that order is by decreasing relevance.
            for w in plain.windows(2) {
                prop_assert!(rel[w[0]] >= rel[w[1]]);
            }
        }

        #[test]
        fn the_output_is_a_permutation_of_a_subset(
            (rel, cats, tail, p) in case(),
            n in 1usize..40,
            lc in 0.0f64..=1.0,
            lp in 0.0f64..=1.0,
            share in 0.0f64..=1.0,
        ) {
            let cats = dedup(cats);
            let slices: Vec<&[u32]> = cats.iter().map(Vec::as_slice).collect();
            let objective = FairObjective {
                calibration: Calibration::new(lc, p, 4),
                popularity: Some(PopularityCorrection::new(lp, share)),
                head_threshold: 10,
            };
            let out = greedy(&rel, &slices, &tail, Some(objective), n);
            prop_assert_eq!(out.len(), n.min(rel.len()));
            let mut sorted = out.clone();
            sorted.sort_unstable();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), out.len(), "no candidate twice");
            prop_assert!(out.iter().all(|&c| c < rel.len()));
        }

        #[test]
        fn full_calibration_fills_each_position_with_the_least_kl(
            (rel, cats, tail, p) in case(),
            n in 1usize..30,
        ) {
            // λ = 1: calibration decides alone, so each position goes to the remaining candidate
            // whose addition gives the smallest KL.
            let cats = dedup(cats);
            let slices: Vec<&[u32]> = cats.iter().map(Vec::as_slice).collect();
            let full = greedy(&rel, &slices, &tail, Some(calibration(1.0, &p)), n);
            for at in 0..full.len() {
                let prefix = &full[..at];
                let chosen = list_kl(&p, &full[..=at], &slices);
                let best = (0..rel.len())
                    .filter(|c| !prefix.contains(c))
                    .map(|c| {
                        let mut list = prefix.to_vec();
                        list.push(c);
                        list_kl(&p, &list, &slices)
                    })
                    .fold(f64::INFINITY, f64::min);
                prop_assert!((chosen - best).abs() < 1e-9, "position {at}: {chosen} vs {best}");
            }
        }
    }
}
