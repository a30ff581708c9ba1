//! What a listed item's `score` means, one definition for every list (personal, similar, popular,
//! trending): a number in [0, 1] that never rises down the list, across all of its pages.
//!
//! - Items a ranking placed (the pipeline, the item-kNN neighbours, the popularity or trending
//!   order) get their raw score divided by the best raw score of the list ([`relative_to_best`]).
//!   Raw scores come on scales that differ by list and by model (the pipeline's boosted
//!   relevance, a kNN similarity that may be cosine or BM25-weighted, a decayed popularity count, a
//!   trending z-score), so only a per-list division maps every one into [0, 1] monotonically
//!   while keeping the ratios between the list's items; a fixed squash would crowd popularity
//!   counts at 1 and similarities near 0. A negative or NaN raw score is no evidence: 0.
//! - Where the list's order and its scores disagree (exploration, a reserved slot for an
//!   untouched item, a diversity pick, a category limit), the scores of the disagreeing run are
//!   replaced by their mean: the non-increasing sequence closest to the raw scores in the
//!   least-squares sense (isotonic regression, pool-adjacent-violators). Capping every item below
//!   a weak one, or lifting every item above a strong one, flattens far more of the list
//!   (measured on MovieLens: one reserved slot at position 3 capped 30 of 50 items to its score,
//!   and lifting gave 34 of 50 one score).
//! - A fill or top-up appended after a ranking (popular items when the candidates ran dry, the
//!   popular top-up of a similar-item list) scores `last × share` ([`below`] × [`share`]): the
//!   score of the list's last item scaled by the item's popularity relative to the most popular
//!   item. It sits below the ranked items and keeps its own order; only an item nobody
//!   interacted with scores 0.
//! - A pinned item takes the score of the slot it occupies ([`score_pins`]).

use super::request::{Recommendation, RecommendationSource};

/// Divides each score by the list's best, then replaces each run of scores that rises down the
/// list by its mean ([`pool_adjacent_violators`]) and rescales so that the first item has 1: the
/// list's scores are in [0, 1] and never rise. A list whose best score is not positive scores 0
/// throughout (no item has evidence).
pub(super) fn relative_to_best(list: &mut [Recommendation]) {
    let best = list
        .iter()
        .map(|r| r.score)
        .filter(|s| s.is_finite())
        .fold(0.0f32, f32::max);
    let mut scores: Vec<f32> = list
        .iter()
        .map(|r| {
            if best > 0.0 {
                share(r.score, best)
            } else {
                0.0
            }
        })
        .collect();
    pool_adjacent_violators(&mut scores);
    // A pooled head is below 1; the list's first item is its best by definition.
    let head = scores.first().copied().unwrap_or(0.0);
    for (r, s) in list.iter_mut().zip(scores) {
        r.score = if head > 0.0 { (s / head).min(1.0) } else { 0.0 };
    }
}

/// The non-increasing sequence closest to `values` in squared error: runs that rise are pooled
/// into their mean until no run rises. Means of values in [0, 1] stay in [0, 1].
fn pool_adjacent_violators(values: &mut [f32]) {
    // (sum, count) of each pooled run, in list order.
    let mut runs: Vec<(f64, usize)> = Vec::with_capacity(values.len());
    for &v in values.iter() {
        runs.push((f64::from(v), 1));
        while runs.len() >= 2 {
            let (s2, n2) = runs[runs.len() - 1];
            let (s1, n1) = runs[runs.len() - 2];
            if s1 / n1 as f64 >= s2 / n2 as f64 {
                break;
            }
            runs.pop();
            let last = runs.len() - 1;
            runs[last] = (s1 + s2, n1 + n2);
        }
    }
    let mut at = 0;
    for (sum, n) in runs {
        let mean = (sum / n as f64) as f32;
        values[at..at + n].fill(mean);
        at += n;
    }
}

/// `value` as a share of `best` in [0, 1]: 0 for a negative, NaN or non-positive best.
pub(super) fn share(value: f32, best: f32) -> f32 {
    if best > 0.0 && value > 0.0 {
        (value / best).min(1.0)
    } else {
        0.0
    }
}

/// The scale of items appended below `list`: the score of its last item, 1 for an empty list.
pub(super) fn below(list: &[Recommendation]) -> f32 {
    list.last().map_or(1.0, |r| r.score)
}

/// Gives each pinned item the score of the slot it took: that of the first unpinned item below
/// it (the item it pushed down), or at the end of the list that of the item above it, or 1 in a
/// list of pins alone. The unpinned items' scores must already be non-increasing.
pub(super) fn score_pins(list: &mut [Recommendation]) {
    let pinned = |r: &Recommendation| r.source == RecommendationSource::Pinned;
    let mut below_score = None;
    for i in (0..list.len()).rev() {
        if pinned(&list[i]) {
            list[i].score = match below_score {
                Some(s) => s,
                None => list[..i]
                    .iter()
                    .rev()
                    .find(|r| !pinned(r))
                    .map_or(1.0, |r| r.score),
            };
        } else {
            below_score = Some(list[i].score);
        }
    }
}

/// Whether `scores` follow the definition: each in [0, 1], none above the one before it.
#[cfg(test)]
pub(super) fn follows_definition(scores: impl IntoIterator<Item = f32>) -> bool {
    let mut above = 1.0f32;
    scores.into_iter().all(|s| {
        let ok = (0.0..=above).contains(&s);
        above = s;
        ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(scores: &[f32], pinned: &[usize]) -> Vec<Recommendation> {
        scores
            .iter()
            .enumerate()
            .map(|(i, &score)| Recommendation {
                item_id: format!("i{i}"),
                score,
                source: if pinned.contains(&i) {
                    RecommendationSource::Pinned
                } else {
                    RecommendationSource::ItemKnn
                },
                reason: String::new(),
            })
            .collect()
    }

    fn scores(list: &[Recommendation]) -> Vec<f32> {
        list.iter().map(|r| r.score).collect()
    }

    #[test]
    fn a_ranking_is_divided_by_its_best_whatever_the_scale() {
        for (raw, want) in [
            (vec![520.0, 260.0, 52.0], vec![1.0, 0.5, 0.1]),
            (vec![0.2, 0.1, 0.05], vec![1.0, 0.5, 0.25]),
            // Boosts can lift a relevance above 1.
            (vec![1.5, 0.75], vec![1.0, 0.5]),
        ] {
            let mut l = list(&raw, &[]);
            relative_to_best(&mut l);
            assert_eq!(scores(&l), want);
        }
    }

    #[test]
    fn a_run_out_of_score_order_is_pooled_into_its_mean() {
        // Exploration put a weak item (0.1) second: it and the items it pushed down share
        // their mean (0.1, 0.8, 0.6 -> 0.5), and the rest of the list keeps its own scores.
        let mut l = list(&[1.0, 0.1, 0.8, 0.6, 0.4], &[]);
        relative_to_best(&mut l);
        assert_eq!(scores(&l), [1.0, 0.5, 0.5, 0.5, 0.4]);
        // A strong item placed low (a category limit pushed it down).
        let mut l = list(&[0.5, 1.0, 0.25], &[]);
        relative_to_best(&mut l);
        assert_eq!(scores(&l), [1.0, 1.0, 0.25 / 0.75]);
        assert!(follows_definition(scores(&l)));
        // An ordered list is left as it is.
        let mut l = list(&[1.0, 0.5, 0.5, 0.2], &[]);
        relative_to_best(&mut l);
        assert_eq!(scores(&l), [1.0, 0.5, 0.5, 0.2]);
    }

    proptest::proptest! {
        #[test]
        fn any_list_ends_in_0_1_never_rising_from_1(
            raw in proptest::collection::vec(0.0f32..10.0, 1..60)
        ) {
            let mut l = list(&raw, &[]);
            relative_to_best(&mut l);
            let got = scores(&l);
            proptest::prop_assert!(follows_definition(got.iter().copied()), "{got:?}");
            if raw.iter().any(|&v| v > 0.0) {
                proptest::prop_assert_eq!(got[0], 1.0);
            }
            // A list already in score order keeps its ratios.
            let mut sorted = raw.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            let mut l = list(&sorted, &[]);
            relative_to_best(&mut l);
            for (r, &v) in l.iter().zip(&sorted) {
                let want = share(v, sorted[0]);
                proptest::prop_assert!((r.score - want).abs() < 1e-6, "{} vs {want}", r.score);
            }
        }
    }

    #[test]
    fn negative_and_nan_scores_are_no_evidence() {
        let mut l = list(&[2.0, 1.0, f32::NAN, -3.0], &[]);
        relative_to_best(&mut l);
        assert_eq!(scores(&l), [1.0, 0.5, 0.0, 0.0]);
        let mut l = list(&[-1.0, -2.0], &[]);
        relative_to_best(&mut l);
        assert_eq!(scores(&l), [0.0, 0.0]);
        assert_eq!(share(3.0, 0.0), 0.0);
        assert_eq!(share(f32::NAN, 2.0), 0.0);
        assert_eq!(share(4.0, 2.0), 1.0);
    }

    #[test]
    fn a_top_up_sits_below_the_last_ranked_item_in_its_own_order() {
        let mut l = list(&[0.8, 0.4], &[]);
        relative_to_best(&mut l);
        let floor = below(&l);
        assert_eq!(floor, 0.5);
        let popularity = [520.0, 130.0, 0.0];
        let top_up: Vec<f32> = popularity
            .iter()
            .map(|&p| floor * share(p, 520.0))
            .collect();
        assert_eq!(top_up, [0.5, 0.125, 0.0]);
        assert!(follows_definition(scores(&l).into_iter().chain(top_up)));
        assert_eq!(below(&[]), 1.0);
    }

    #[test]
    fn a_pin_takes_the_score_of_the_slot_it_occupies() {
        // Pins at the top, in the middle (two in a row) and at the end.
        let mut l = list(&[0.0, 1.0, 0.0, 0.0, 0.5, 0.25, 0.0], &[0, 2, 3, 6]);
        score_pins(&mut l);
        assert_eq!(scores(&l), [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]);
        assert!(follows_definition(scores(&l)));
        let mut alone = list(&[0.0, 0.0], &[0, 1]);
        score_pins(&mut alone);
        assert_eq!(scores(&alone), [1.0, 1.0]);
    }

    #[test]
    fn the_definition_check_catches_a_rise_or_a_score_out_of_range() {
        assert!(follows_definition([1.0, 0.5, 0.5, 0.0]));
        assert!(!follows_definition([0.5, 0.6]));
        assert!(!follows_definition([1.2]));
        assert!(!follows_definition([0.5, -0.1]));
    }
}
