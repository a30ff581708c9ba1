//! The lists that are not personal: items similar to an item, and the popular and trending
//! lists. Each is a precomputed order filled through the catalog's checks (see [`super::fill`]).

use std::collections::HashSet;

use cairn_core::{now_unix, Item};
use cairn_models::SimilarItems;

use super::explain::{popular_reason, shared_features};
use super::fill::{fill_from_order, scored};
use super::request::{Recommendation, RecommendationSource, Recommendations};
use super::rules::{category_warning, check_category};
use super::score;
use crate::catalog::Catalog;
use crate::{Engine, EngineError};
use cairn_pipeline::ModelSet;

/// Which items a list may contain.
struct Filter<'a> {
    catalog: &'a Catalog,
    now: i64,
    category: Option<&'a str>,
    exclude: HashSet<&'a str>,
}

impl<'a> Filter<'a> {
    /// The item, when a list may contain it.
    fn item(&self, id: &str) -> Option<&'a Item> {
        if self.exclude.contains(id) {
            return None;
        }
        let item = self.catalog.get(id)?;
        may_list(item, self.now, self.category).then_some(item.as_ref())
    }

    fn allows(&self, id: &str) -> bool {
        self.item(id).is_some()
    }
}

/// Whether a list may show `item` now: available, and in `category` when one is asked for.
pub(super) fn may_list(item: &Item, now: i64, category: Option<&str>) -> bool {
    item.is_recommendable(now) && category.is_none_or(|c| item.in_category(c))
}

/// Appends to `out`, up to `k`, the table items closest to `item` by content (categories, tags,
/// properties, text), each with the features they share most as its reason. The item's features
/// are computed from its catalog fields now, so an item created after training has them too.
fn content_neighbours(
    m: &ModelSet,
    item: &Item,
    k: usize,
    filter: &Filter<'_>,
    out: &mut Vec<Recommendation>,
) {
    let Some(c) = &m.content else { return };
    let row = c.space.transform_item(item);
    if row.is_empty() {
        return;
    }
    let near = c
        .model
        .similar_to_row(&row, k + 50, m.table.ids.get(&item.id));
    for (j, score) in near {
        if out.len() >= k {
            break;
        }
        if !filter.allows(m.table.ids.id(j)) {
            continue;
        }
        let reason = match shared_features(c, &row, j) {
            Some(phrase) => format!("shares {phrase} with \"{}\"", item.label()),
            None => format!("similar to \"{}\"", item.label()),
        };
        fill_from_order(
            out,
            k,
            &m.table.ids,
            [(j, score)],
            |_| true,
            RecommendationSource::Content,
            &reason,
        );
    }
}

impl Engine {
    /// Items most similar to `item_id`: its collaborative neighbours, then items that share its
    /// content, topped up with popular items of its categories.
    pub fn similar_items(
        &self,
        item_id: &str,
        k: usize,
        category: Option<&str>,
    ) -> Result<Recommendations, EngineError> {
        self.check_k(k)?;
        let models = self.models();
        let catalog = self.catalog();
        check_category(&catalog, category)?;
        let item: Item =
            catalog
                .get(item_id)
                .map(|i| (**i).clone())
                .ok_or_else(|| EngineError::NotFound {
                    kind: "item",
                    id: item_id.to_string(),
                })?;
        let filter = Filter {
            catalog: &catalog,
            now: now_unix(),
            category,
            exclude: HashSet::from([item_id]),
        };
        let mut out = Vec::with_capacity(k);
        if let Some(m) = models.as_deref() {
            if let Some(i) = m.items.get(item_id) {
                let wanted = k + 50;
                // Only a positive similarity is evidence (the test is the one it always was,
                // so a NaN is not dropped).
                #[allow(clippy::neg_cmp_op_on_partial_ord)]
                let similar = m
                    .knn
                    .similar(i, wanted)
                    .into_iter()
                    .filter(|&(_, s)| !(s <= 0.0));
                fill_from_order(
                    &mut out,
                    k,
                    &m.items,
                    similar,
                    |j| filter.allows(m.items.id(j)),
                    RecommendationSource::ItemKnn,
                    &format!("often chosen together with \"{}\"", item.label()),
                );
            }
            // The neighbours' similarities relative to the best of them.
            score::relative_to_best(&mut out);
            // What the neighbours could not fill (all of it for an item nobody has chosen yet,
            // or one created after training), items that share its content: relative to the
            // best content match, below the last neighbour (content similarities and kNN
            // similarities are different measures, so neither may outrank the other's order).
            if out.len() < k {
                let mut content = Vec::new();
                content_neighbours(m, &item, k, &filter, &mut content);
                content.retain(|r| out.iter().all(|o| o.item_id != r.item_id));
                content.truncate(k - out.len());
                score::relative_to_best(&mut content);
                let floor = score::below(&out);
                for r in &mut content {
                    r.score *= floor;
                }
                out.extend(content);
            }
            // The popular top-up below the last of them.
            let floor = score::below(&out);
            let popularity = &m.popularity.scores;
            let best = m
                .popular_order
                .first()
                .map_or(0.0, |&j| popularity[j as usize]);
            // Top up with what is popular in the item's own categories.
            let shares_category = |id: &str| {
                item.categories.is_empty()
                    || catalog.get(id).is_some_and(|other| {
                        other.categories.iter().any(|c| item.categories.contains(c))
                    })
            };
            let label = item.categories.first().cloned();
            fill_from_order(
                &mut out,
                k,
                &m.items,
                scored(&m.popular_order, popularity)
                    .map(|(j, p)| (j, floor * score::share(p, best))),
                |j| {
                    let id = m.items.id(j);
                    filter.allows(id) && shares_category(id)
                },
                RecommendationSource::Popular,
                &popular_reason("popular", label.as_deref()),
            );
        }
        let warnings = category_warning(&catalog, filter.now, category, !out.is_empty());
        Ok(self.respond(models.as_deref(), out, warnings.into_iter().collect()))
    }

    /// The most popular items (time-decayed), optionally in one category.
    pub fn popular(
        &self,
        k: usize,
        category: Option<&str>,
    ) -> Result<Recommendations, EngineError> {
        self.ranked_list(k, category, false)
    }

    /// Items whose activity is surging in the recent window, optionally in one category.
    pub fn trending(
        &self,
        k: usize,
        category: Option<&str>,
    ) -> Result<Recommendations, EngineError> {
        self.ranked_list(k, category, true)
    }

    fn ranked_list(
        &self,
        k: usize,
        category: Option<&str>,
        trending: bool,
    ) -> Result<Recommendations, EngineError> {
        self.check_k(k)?;
        let models = self.models();
        let catalog = self.catalog();
        check_category(&catalog, category)?;
        let filter = Filter {
            catalog: &catalog,
            now: now_unix(),
            category,
            exclude: HashSet::new(),
        };
        let mut out = Vec::with_capacity(k);
        if let Some(m) = models.as_deref() {
            let (order, scores, source, kind) = if trending {
                (
                    &m.trending_order,
                    &m.trending.scores,
                    RecommendationSource::Trending,
                    "trending",
                )
            } else {
                (
                    &m.popular_order,
                    &m.popularity.scores,
                    RecommendationSource::Popular,
                    "popular",
                )
            };
            fill_from_order(
                &mut out,
                k,
                &m.items,
                scored(order, scores),
                |j| filter.allows(m.items.id(j)),
                source,
                &popular_reason(kind, filter.category),
            );
            score::relative_to_best(&mut out);
        }
        let warnings = category_warning(&catalog, filter.now, category, !out.is_empty());
        Ok(self.respond(models.as_deref(), out, warnings.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::recommend::fixture;

    fn ids(r: &Recommendations) -> Vec<&str> {
        r.items.iter().map(|r| r.item_id.as_str()).collect()
    }

    #[test]
    fn the_popular_list_is_the_popularity_order_through_the_catalog() {
        let dir = tempfile::tempdir().unwrap();
        let models = Arc::new(fixture::models());
        let engine = fixture::engine(dir.path(), models.clone());
        let m = &models;
        let popular = engine.popular(20, None).unwrap();
        // Every item with interactions but the hidden one, most popular first.
        let want: Vec<&str> = m
            .popular_order
            .iter()
            .map(|&j| m.items.id(j))
            .filter(|&id| id != "h0")
            .collect();
        assert_eq!(ids(&popular), want);
        assert_eq!(want.len(), 9);
        // Scores are the popularity relative to the list's most popular item.
        let raw = |id: &str| m.popularity.scores[m.items.get(id).unwrap() as usize];
        let best = raw(&popular.items[0].item_id);
        for r in &popular.items {
            assert_eq!(r.source, RecommendationSource::Popular);
            assert_eq!(r.reason, "popular");
            assert_eq!(r.score, raw(&r.item_id) / best);
        }
        assert_eq!(popular.items[0].score, 1.0);
        assert!(score::follows_definition(
            popular.items.iter().map(|r| r.score)
        ));
        assert_eq!(popular.model_version, Some(m.version.clone()));

        let rock = engine.popular(3, Some("rock")).unwrap();
        assert_eq!(rock.items.len(), 3);
        assert!(rock
            .items
            .iter()
            .all(|r| r.item_id.starts_with('r') && r.reason == "popular in rock"));

        assert!(score::follows_definition(
            rock.items.iter().map(|r| r.score)
        ));
        assert_eq!(rock.items[0].score, 1.0);

        let trending = engine.trending(20, Some("jazz")).unwrap();
        assert!(trending
            .items
            .iter()
            .all(|r| r.source == RecommendationSource::Trending && r.reason == "trending in jazz"));
        assert!(score::follows_definition(
            trending.items.iter().map(|r| r.score)
        ));
    }

    #[test]
    fn similar_items_are_neighbours_topped_up_with_popular_items_of_the_category() {
        let dir = tempfile::tempdir().unwrap();
        let models = Arc::new(fixture::models());
        let engine = fixture::engine(dir.path(), models);
        let similar = engine.similar_items("j0", 6, None).unwrap();
        let got = ids(&similar);
        // The jazz items seen with j0, then the other jazz items by content: j4 (the category
        // and the word "jazz" in its title) before n0 (the category alone, no title). Nothing
        // else is jazz, so the popular top-up finds nothing to add.
        assert_eq!(got.len(), 5);
        assert_eq!(got[3..], ["j4", "n0"]);
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, ["j1", "j2", "j3", "j4", "n0"]);
        let knn = similar
            .items
            .iter()
            .take_while(|r| r.source == RecommendationSource::ItemKnn)
            .count();
        assert_eq!(knn, 3, "{similar:?}");
        for r in &similar.items[..knn] {
            assert_eq!(r.reason, "often chosen together with \"jazz record 0\"");
        }
        for r in &similar.items[knn..] {
            assert_eq!(r.source, RecommendationSource::Content);
            assert!(r.score > 0.0, "{r:?}");
        }
        let reasons: Vec<&str> = similar.items[knn..]
            .iter()
            .map(|r| r.reason.as_str())
            .collect();
        assert_eq!(
            reasons,
            [
                "shares the category jazz and the word \"jazz\" with \"jazz record 0\"",
                "shares the category jazz with \"jazz record 0\""
            ]
        );
        // One scale for neighbours and content matches: relative to the best neighbour, never
        // rising down the list.
        let scores: Vec<f32> = similar.items.iter().map(|r| r.score).collect();
        assert_eq!(scores[0], 1.0);
        assert!(
            score::follows_definition(scores.iter().copied()),
            "{scores:?}"
        );
        assert!(
            scores[knn] > 0.0 && scores[knn] <= scores[knn - 1],
            "{scores:?}"
        );
        assert!(matches!(
            engine.similar_items("nothing", 5, None),
            Err(EngineError::NotFound { .. })
        ));
    }

    #[test]
    fn an_item_created_after_training_gets_similar_items_from_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let models = Arc::new(fixture::models());
        let engine = fixture::engine(dir.path(), models);
        let mut late = Item::new("late");
        late.categories = vec!["rock".into()];
        late.title = Some("rock anthology".into());
        engine.put_items(vec![late]).unwrap();
        let similar = engine.similar_items("late", 3, None).unwrap();
        // Rock items (h0 is hidden), each for what it shares, scored by its cosine.
        assert_eq!(similar.items.len(), 3, "{similar:?}");
        for r in &similar.items {
            assert!(r.item_id.starts_with('r'), "{r:?}");
            assert_eq!(r.source, RecommendationSource::Content);
            assert!(r.score > 0.0 && r.score <= 1.0 + 1e-6, "{r:?}");
            assert_eq!(
                r.reason,
                "shares the category rock and the word \"rock\" with \"rock anthology\""
            );
        }
        // An item with no content the model knows has no content neighbours, only popular items.
        let mut bare = Item::new("bare");
        bare.categories = vec!["polka".into()];
        engine.put_items(vec![bare]).unwrap();
        let similar = engine.similar_items("bare", 3, None).unwrap();
        assert!(similar.items.is_empty(), "{similar:?}");
    }
}
