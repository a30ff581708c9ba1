//! Filling a list from a ranked order: the one loop behind every list that is not the
//! pipeline's own (popular and trending lists, similar items and their top-up, and the fill of a
//! personal list whose candidates ran dry), so that each applies its allow check, skips what is
//! already listed and stops at `k` the same way.

use std::collections::HashSet;

use cairn_core::IdMap;

use super::request::{Recommendation, RecommendationSource};

/// Appends to `list`, until it holds `k` items, the items of `order` (index into `ids`, score;
/// best first) that are not on the list yet and that `allow` lets through, each with `source`
/// and `reason`.
pub(super) fn fill_from_order(
    list: &mut Vec<Recommendation>,
    k: usize,
    ids: &IdMap,
    order: impl IntoIterator<Item = (u32, f32)>,
    allow: impl Fn(u32) -> bool,
    source: RecommendationSource,
    reason: &str,
) {
    if list.len() >= k {
        return;
    }
    let mut listed: HashSet<u32> = list.iter().filter_map(|r| ids.get(&r.item_id)).collect();
    for (i, score) in order {
        if list.len() >= k {
            break;
        }
        if listed.contains(&i) || !allow(i) {
            continue;
        }
        listed.insert(i);
        list.push(Recommendation {
            item_id: ids.id(i).to_string(),
            score,
            source,
            reason: reason.to_string(),
        });
    }
}

/// A precomputed ranking (item indices, best first) with each item's score, as an order to fill
/// from.
pub(super) fn scored<'a>(
    order: &'a [u32],
    scores: &'a [f32],
) -> impl Iterator<Item = (u32, f32)> + 'a {
    order.iter().map(|&j| (j, scores[j as usize]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> IdMap {
        let mut ids = IdMap::new();
        for id in ["a", "b", "c", "d", "e"] {
            ids.intern(id);
        }
        ids
    }

    fn listed(list: &[Recommendation]) -> Vec<(&str, f32)> {
        list.iter().map(|r| (r.item_id.as_str(), r.score)).collect()
    }

    #[test]
    fn fills_in_order_through_the_allow_check_up_to_k() {
        let ids = ids();
        let mut list = Vec::new();
        let order = [(0, 0.9), (1, 0.8), (2, 0.7), (3, 0.6), (4, 0.5)];
        fill_from_order(
            &mut list,
            3,
            &ids,
            order,
            |i| i != 1,
            RecommendationSource::Trending,
            "trending in jazz",
        );
        assert_eq!(listed(&list), [("a", 0.9), ("c", 0.7), ("d", 0.6)]);
        assert!(list
            .iter()
            .all(|r| r.source == RecommendationSource::Trending && r.reason == "trending in jazz"));
    }

    #[test]
    fn an_item_already_listed_or_repeated_in_the_order_appears_once() {
        let ids = ids();
        let mut list = Vec::new();
        fill_from_order(
            &mut list,
            1,
            &ids,
            [(2, 1.0)],
            |_| true,
            RecommendationSource::ItemKnn,
            "often chosen together",
        );
        // The fallback's order repeats items (popular, then newest, then every item).
        let order = [(2, 0.0), (0, 0.0), (2, 0.0), (0, 0.0), (4, 0.0)];
        fill_from_order(
            &mut list,
            10,
            &ids,
            order,
            |_| true,
            RecommendationSource::Popular,
            "popular",
        );
        assert_eq!(listed(&list), [("c", 1.0), ("a", 0.0), ("e", 0.0)]);
        assert_eq!(list[0].source, RecommendationSource::ItemKnn);
        assert_eq!(list[1].source, RecommendationSource::Popular);
    }

    #[test]
    fn a_full_list_is_left_alone() {
        let ids = ids();
        let mut list = Vec::new();
        fill_from_order(
            &mut list,
            2,
            &ids,
            [(0, 1.0), (1, 1.0)],
            |_| true,
            RecommendationSource::Popular,
            "popular",
        );
        let before = list.clone();
        fill_from_order(
            &mut list,
            2,
            &ids,
            [(3, 1.0)],
            |_| panic!("a full list checks nothing"),
            RecommendationSource::Popular,
            "popular",
        );
        assert_eq!(list, before);
    }

    #[test]
    fn a_ranking_is_scored_by_its_items_scores() {
        let scores = [0.1, 0.2, 0.3];
        assert_eq!(
            scored(&[2, 0], &scores).collect::<Vec<_>>(),
            [(2, 0.3), (0, 0.1)]
        );
    }
}
