//! Cursor pages of a personal list. The whole list is computed once, on the first request; its
//! first page is returned and the rest kept, by recommendation id, so that later pages are cut
//! from the same list (never repeating an item) rather than recomputed from a history that moved
//! on. A cursor is `<recommendation id>.<offset into the whole list>`; it serves only the user
//! whose list it is, and only offsets inside that list.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use uuid::Uuid;

use super::request::{Recommendation, Recommendations};
use crate::memory::heap_bytes;
use crate::{Engine, EngineError};
use cairn_pipeline::ModelSet;

/// A computed list kept for its later pages.
pub(crate) struct CachedList {
    /// Whose list it is: a cursor passed with another user's id is refused, so that a leaked or
    /// guessed cursor does not page through someone else's recommendations.
    user_id: String,
    model_version: String,
    /// Size of the first page; the cache holds the items after it.
    first_page: usize,
    items: Vec<Recommendation>,
}

impl CachedList {
    /// The bytes this list holds in memory under the key `id`: the `Arc`'s allocation, each
    /// string's and the item vector's allocations, each item's id and reason, and the key (held
    /// twice: in the map and in the eviction order) with the map's slot.
    fn bytes(&self, id: &str) -> usize {
        let arc = heap_bytes(2 * size_of::<usize>() + size_of::<CachedList>());
        let strings =
            heap_bytes(self.user_id.capacity()) + heap_bytes(self.model_version.capacity());
        let items = heap_bytes(self.items.capacity() * size_of::<Recommendation>())
            + self
                .items
                .iter()
                .map(|r| heap_bytes(r.item_id.capacity()) + heap_bytes(r.reason.capacity()))
                .sum::<usize>();
        // The map's slot (key, value and a control byte, at hashbrown's load of 7/8) and the
        // order's slot, each with a copy of the key.
        let slot =
            (size_of::<String>() + size_of::<Arc<CachedList>>() + 1) * 8 / 7 + size_of::<String>();
        arc + strings + items + slot + 2 * heap_bytes(id.len())
    }
}

/// Lists by recommendation id, oldest evicted first, bounded both in lists and in bytes.
#[derive(Default)]
pub(crate) struct ListCache {
    lists: HashMap<String, (Arc<CachedList>, usize)>,
    order: VecDeque<String>,
    /// The sum of the kept lists' [`CachedList::bytes`].
    bytes: usize,
}

/// How full the cursor cache is, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CursorCacheStats {
    /// Lists kept for their later pages.
    pub lists: usize,
    /// Their estimated size in memory (see `serve.cursor_cache_bytes`).
    pub bytes: usize,
}

impl ListCache {
    /// Keeps `list` under `id`, first dropping the oldest lists until at most `max_lists - 1`
    /// lists remain and the new one fits in `max_bytes` beside them. A list larger than
    /// `max_bytes` on its own is not kept (its cursor then expires at once).
    fn insert(&mut self, id: String, list: CachedList, max_lists: usize, max_bytes: usize) {
        let size = list.bytes(&id);
        if size > max_bytes || max_lists == 0 {
            return;
        }
        if let Some((_, old)) = self.lists.remove(&id) {
            self.bytes -= old;
            self.order.retain(|o| *o != id);
        }
        while self.order.len() >= max_lists || self.bytes + size > max_bytes {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some((_, b)) = self.lists.remove(&old) {
                self.bytes -= b;
            }
        }
        self.order.push_back(id.clone());
        self.lists.insert(id, (Arc::new(list), size));
        self.bytes += size;
    }

    fn get(&self, id: &str) -> Option<Arc<CachedList>> {
        self.lists.get(id).map(|(list, _)| list.clone())
    }

    /// Drops every list that another model made: their cursors have expired anyway.
    pub(crate) fn keep_only_version(&mut self, version: &str) {
        let lists = &mut self.lists;
        let bytes = &mut self.bytes;
        self.order.retain(|id| {
            let stale = lists
                .get(id)
                .is_some_and(|(l, _)| l.model_version != version);
            if stale {
                if let Some((_, b)) = lists.remove(id) {
                    *bytes -= b;
                }
            }
            !stale
        });
        self.lists.shrink_to(self.order.len());
        self.order.shrink_to(self.order.len());
    }

    pub(crate) fn stats(&self) -> CursorCacheStats {
        CursorCacheStats {
            lists: self.lists.len(),
            bytes: self.bytes,
        }
    }

    /// Drops every list of `user_id` (erasure); returns how many.
    pub(crate) fn remove_user(&mut self, user_id: &str) -> usize {
        let before = self.lists.len();
        let bytes = &mut self.bytes;
        self.lists.retain(|_, (list, b)| {
            let keep = list.user_id != user_id;
            if !keep {
                *bytes -= *b;
            }
            keep
        });
        let lists = &self.lists;
        self.order.retain(|id| lists.contains_key(id));
        before - self.lists.len()
    }
}

fn cursor_expired() -> EngineError {
    EngineError::CursorExpired(
        "this list is no longer kept (too old, or the model was retrained); request the first page again"
            .into(),
    )
}

fn bad_cursor() -> EngineError {
    EngineError::invalid(
        "cursor",
        "not a cursor this server issued; pass next_cursor from a response unchanged",
    )
}

/// The recommendation id and offset a cursor names.
fn parse_cursor(cursor: &str) -> Result<(&str, usize), EngineError> {
    let (id, offset) = cursor.rsplit_once('.').ok_or_else(bad_cursor)?;
    let offset: usize = offset.parse().map_err(|_| bad_cursor())?;
    Uuid::parse_str(id).map_err(|_| bad_cursor())?;
    Ok((id, offset))
}

impl CachedList {
    /// The `k` items from `offset` of the whole list `id`.
    fn page(&self, id: &str, offset: usize, k: usize) -> Result<Recommendations, EngineError> {
        // Offsets count from the start of the whole list; the cache holds what followed page one.
        let first_page = self.first_page;
        let start = offset.checked_sub(first_page).ok_or_else(bad_cursor)?;
        // A cursor this server issued never points past its list (a huge offset must not wrap).
        if start > self.items.len() {
            return Err(bad_cursor());
        }
        let end = start.saturating_add(k).min(self.items.len());
        let items = self.items[start..end].to_vec();
        let next_cursor = (end < self.items.len()).then(|| format!("{id}.{}", first_page + end));
        Ok(Recommendations {
            recommendation_id: id.to_string(),
            model_version: Some(self.model_version.clone()),
            items,
            next_cursor,
            warnings: Vec::new(),
            experiment: None,
        })
    }
}

impl Engine {
    /// The first page of a freshly computed list, keeping the rest for later pages (only lists
    /// of a model can be kept: a retraining is what expires them).
    pub(super) fn first_page(
        &self,
        user_id: &str,
        recommendation_id: String,
        models: Option<&ModelSet>,
        mut items: Vec<Recommendation>,
        k: usize,
    ) -> Recommendations {
        let window = items.len();
        let rest = items.split_off(k.min(window));
        let next_cursor = match (models, rest.is_empty()) {
            (Some(m), false) => {
                self.lists().insert(
                    recommendation_id.clone(),
                    CachedList {
                        user_id: user_id.to_string(),
                        model_version: m.version.clone(),
                        first_page: k.min(window),
                        items: rest,
                    },
                    self.config.serve.cursor_cache,
                    self.config.serve.cursor_cache_bytes,
                );
                Some(format!("{recommendation_id}.{k}"))
            }
            _ => None,
        };
        Recommendations {
            recommendation_id,
            model_version: models.map(|m| m.version.clone()),
            items,
            next_cursor,
            warnings: Vec::new(),
            experiment: None,
        }
    }

    pub(super) fn next_page(
        &self,
        user_id: &str,
        cursor: &str,
        k: usize,
    ) -> Result<Recommendations, EngineError> {
        let (id, offset) = parse_cursor(cursor)?;
        let list = self.lists().get(id).ok_or_else(cursor_expired)?;
        if list.user_id != user_id {
            return Err(EngineError::invalid(
                "cursor",
                "this cursor belongs to another user's list; pass the next_cursor of this user's own response",
            ));
        }
        let models = self.models();
        if models.as_deref().map(|m| m.version.as_str()) != Some(list.model_version.as_str())
            && !self.experiment_holds(&list.model_version)
        {
            return Err(cursor_expired());
        }
        list.page(id, offset, k)
    }

    /// Forgets the kept pages of `user_id`'s lists: their cursors expire at once.
    pub(crate) fn forget_lists_of(&self, user_id: &str) -> usize {
        self.lists().remove_user(user_id)
    }

    /// How many lists the cursor cache keeps, and their estimated bytes.
    pub fn cursor_cache_stats(&self) -> CursorCacheStats {
        self.lists().stats()
    }

    pub(crate) fn lists(&self) -> std::sync::MutexGuard<'_, ListCache> {
        self.lists.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::recommend::fixture;
    use crate::recommend::request::RecommendationSource;

    const ID: &str = "6f1c0a52-3b0e-4f57-9d7e-2f8a5c3b1d40";

    fn rec(id: &str) -> Recommendation {
        Recommendation {
            item_id: id.into(),
            score: 0.0,
            source: RecommendationSource::Popular,
            reason: "popular".into(),
        }
    }

    fn list(ids: &[&str]) -> Vec<Recommendation> {
        ids.iter().map(|id| rec(id)).collect()
    }

    fn ids(r: &Recommendations) -> Vec<&str> {
        r.items.iter().map(|r| r.item_id.as_str()).collect()
    }

    #[test]
    fn a_cursor_is_a_list_id_and_an_offset() {
        assert_eq!(parse_cursor(&format!("{ID}.5")).unwrap(), (ID, 5));
        for bad in [
            String::new(),
            "5".into(),
            ID.into(),
            format!("{ID}.x"),
            format!("{ID}.-1"),
            "not-a-list.5".into(),
        ] {
            assert!(
                matches!(parse_cursor(&bad), Err(EngineError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    fn cached(version: &str, items: &[&str]) -> CachedList {
        CachedList {
            user_id: "u".into(),
            model_version: version.into(),
            first_page: 1,
            items: list(items),
        }
    }

    #[test]
    fn the_cache_evicts_the_oldest_list_first() {
        let mut cache = ListCache::default();
        for id in ["a", "b", "c"] {
            cache.insert(id.into(), cached("v", &[id]), 2, usize::MAX);
        }
        assert!(cache.get("a").is_none());
        assert_eq!(cache.get("b").unwrap().items, list(&["b"]));
        assert_eq!(cache.get("c").unwrap().items, list(&["c"]));
        assert_eq!(cache.stats().lists, 2);
    }

    #[test]
    fn the_byte_bound_evicts_oldest_first_and_is_never_exceeded() {
        let one = cached("v", &["item-1"]).bytes("id-00");
        // Room for three one-item lists, not four.
        let bound = 3 * one + one / 2;
        let mut cache = ListCache::default();
        for id in ["id-00", "id-01", "id-02", "id-03"] {
            cache.insert(id.into(), cached("v", &["item-1"]), usize::MAX, bound);
        }
        assert!(cache.get("id-00").is_none());
        for id in ["id-01", "id-02", "id-03"] {
            assert!(cache.get(id).is_some(), "{id}");
        }
        assert_eq!(
            cache.stats(),
            CursorCacheStats {
                lists: 3,
                bytes: 3 * one
            }
        );
        // A list the size of two evicts the two oldest, not the newest.
        let two = cached("v", &["item-1", "item-2", "item-3", "item-4"]);
        let two_bytes = two.bytes("id-04");
        assert!(two_bytes > one && two_bytes <= bound - one);
        cache.insert("id-04".into(), two, usize::MAX, bound);
        assert!(cache.get("id-03").is_some() && cache.get("id-04").is_some());
        assert!(cache.get("id-01").is_none() && cache.get("id-02").is_none());
        assert!(cache.stats().bytes <= bound);
        // A list larger than the whole bound is not kept, and evicts nothing.
        let many: Vec<String> = (0..200).map(|i| format!("item-{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        cache.insert("id-05".into(), cached("v", &many), usize::MAX, bound);
        assert!(cache.get("id-05").is_none());
        assert!(cache.get("id-04").is_some());
    }

    #[test]
    fn many_inserts_never_exceed_the_bytes_and_the_count_adds_up() {
        let bound = 64 * 1024;
        let mut cache = ListCache::default();
        let mut peak = 0;
        for i in 0..5_000usize {
            let n = 1 + i % 40;
            let ids: Vec<String> = (0..n)
                .map(|j| format!("item-{}", (i * 7 + j) % 997))
                .collect();
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            cache.insert(format!("{ID}-{i}"), cached("v", &ids), 10_000, bound);
            let stats = cache.stats();
            assert!(stats.bytes <= bound, "{stats:?} after {i}");
            peak = peak.max(stats.bytes);
            assert_eq!(stats.lists, cache.order.len());
        }
        // The bytes counted are the sum of the kept lists' sizes, not a drifting tally.
        let sum: usize = cache
            .order
            .iter()
            .map(|id| cache.lists[id].0.bytes(id))
            .sum();
        assert_eq!(sum, cache.stats().bytes);
        // And the bound is used, not left mostly empty.
        assert!(peak > bound * 9 / 10, "{peak}");
    }

    #[test]
    fn the_size_counts_ids_reasons_and_the_item_vector() {
        let small = cached("v", &["a"]);
        let mut long = cached("v", &["a"]);
        long.items[0].reason = "x".repeat(1000);
        // The reason's allocation grew from 7 bytes to 1000, and the size by as much.
        assert_eq!(
            long.bytes("k") - small.bytes("k"),
            heap_bytes(1000) - heap_bytes("popular".len())
        );
        // Each item costs at least its struct and two allocations.
        let ten = cached("v", &["a"; 10]);
        let per_item = (ten.bytes("k") - small.bytes("k")) / 9;
        assert!(
            per_item >= size_of::<Recommendation>() + 2 * 32,
            "{per_item}"
        );
    }

    #[test]
    fn a_new_model_drops_the_lists_of_the_old_one() {
        let mut cache = ListCache::default();
        cache.insert("a".into(), cached("old", &["x"]), 10, usize::MAX);
        cache.insert("b".into(), cached("new", &["y"]), 10, usize::MAX);
        cache.insert("c".into(), cached("old", &["z"]), 10, usize::MAX);
        let b = cache.get("b").unwrap().bytes("b");
        cache.keep_only_version("new");
        assert!(cache.get("a").is_none() && cache.get("c").is_none());
        assert!(cache.get("b").is_some());
        assert_eq!(cache.stats(), CursorCacheStats { lists: 1, bytes: b });
    }

    #[test]
    fn a_page_is_cut_at_its_offset_in_the_whole_list() {
        // The whole list was a..g; a and b were the first page.
        let cached = CachedList {
            user_id: "u".into(),
            model_version: "v".into(),
            first_page: 2,
            items: list(&["c", "d", "e", "f", "g"]),
        };
        let page = cached.page(ID, 2, 2).unwrap();
        assert_eq!(ids(&page), ["c", "d"]);
        assert_eq!(page.next_cursor, Some(format!("{ID}.4")));
        assert_eq!(page.recommendation_id, ID);
        assert_eq!(page.model_version.as_deref(), Some("v"));
        let page = cached.page(ID, 4, 2).unwrap();
        assert_eq!(ids(&page), ["e", "f"]);
        assert_eq!(page.next_cursor, Some(format!("{ID}.6")));
        let last = cached.page(ID, 6, 2).unwrap();
        assert_eq!(ids(&last), ["g"]);
        assert_eq!(last.next_cursor, None);
        let end = cached.page(ID, 7, 2).unwrap();
        assert!(end.items.is_empty() && end.next_cursor.is_none());
        // Past the list, up to the largest offset: refused, never wrapped.
        for offset in [8, usize::MAX - 1, usize::MAX] {
            assert!(
                matches!(cached.page(ID, offset, 2), Err(EngineError::Invalid(_))),
                "{offset}"
            );
        }
        // An offset inside the first page is no cursor this server issued.
        assert!(matches!(
            cached.page(ID, 1, 2),
            Err(EngineError::Invalid(_))
        ));
    }

    #[test]
    fn the_first_page_keeps_the_rest_for_later_pages_of_the_same_model() {
        let dir = tempfile::tempdir().unwrap();
        let models = Arc::new(fixture::models());
        let engine = fixture::engine(dir.path(), models.clone());
        let whole = list(&["a", "b", "c", "d", "e"]);

        let first = engine.first_page("u", ID.into(), Some(&models), whole.clone(), 2);
        assert_eq!(ids(&first), ["a", "b"]);
        assert_eq!(first.recommendation_id, ID);
        assert_eq!(first.model_version, Some(models.version.clone()));
        let cursor = first.next_cursor.unwrap();
        assert_eq!(cursor, format!("{ID}.2"));
        // Another user's id with this cursor: refused.
        assert!(matches!(
            engine.next_page("mallory", &cursor, 2),
            Err(EngineError::Invalid(_))
        ));
        let second = engine.next_page("u", &cursor, 2).unwrap();
        assert_eq!(ids(&second), ["c", "d"]);
        let third = engine
            .next_page("u", &second.next_cursor.unwrap(), 2)
            .unwrap();
        assert_eq!(ids(&third), ["e"]);
        assert_eq!(third.next_cursor, None);

        // A list that fits its first page, or that no model made, is not kept.
        let short = engine.first_page("u", ID.into(), Some(&models), list(&["a"]), 2);
        assert_eq!(short.next_cursor, None);
        let unkept = "0e1c0a52-3b0e-4f57-9d7e-2f8a5c3b1d40";
        let without_model = engine.first_page("u", unkept.into(), None, whole, 2);
        assert_eq!(ids(&without_model), ["a", "b"]);
        assert_eq!(without_model.next_cursor, None);
        assert!(matches!(
            engine.next_page("u", &format!("{unkept}.2"), 2),
            Err(EngineError::CursorExpired(_))
        ));
    }

    #[test]
    fn a_retraining_expires_the_kept_lists() {
        let dir = tempfile::tempdir().unwrap();
        let models = Arc::new(fixture::models());
        let engine = fixture::engine(dir.path(), models.clone());
        let first = engine.first_page("u", ID.into(), Some(&models), list(&["a", "b", "c"]), 2);
        let mut retrained = fixture::models();
        retrained.version = "retrained".into();
        engine.models.store(Some(Arc::new(retrained)));
        assert!(matches!(
            engine.next_page("u", &first.next_cursor.unwrap(), 2),
            Err(EngineError::CursorExpired(_))
        ));
    }
}
