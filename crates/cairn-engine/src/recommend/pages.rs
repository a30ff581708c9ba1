//! Cursor pages of a personal list. The whole list is computed once, on the first request; its
//! first page is returned and the rest kept, by recommendation id, so that later pages are cut
//! from the same list (never repeating an item) rather than recomputed from a history that moved
//! on. A cursor is `<recommendation id>.<offset into the whole list>`; it serves only the user
//! whose list it is, and only offsets inside that list.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use uuid::Uuid;

use super::request::{Recommendation, Recommendations};
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

/// Lists by recommendation id, oldest evicted first.
#[derive(Default)]
pub(crate) struct ListCache {
    lists: HashMap<String, Arc<CachedList>>,
    order: VecDeque<String>,
}

impl ListCache {
    fn insert(&mut self, id: String, list: CachedList, capacity: usize) {
        while self.order.len() >= capacity {
            if let Some(old) = self.order.pop_front() {
                self.lists.remove(&old);
            }
        }
        self.order.push_back(id.clone());
        self.lists.insert(id, Arc::new(list));
    }

    fn get(&self, id: &str) -> Option<Arc<CachedList>> {
        self.lists.get(id).cloned()
    }

    /// Drops every list of `user_id` (erasure); returns how many.
    pub(crate) fn remove_user(&mut self, user_id: &str) -> usize {
        let before = self.lists.len();
        self.lists.retain(|_, list| list.user_id != user_id);
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
        if models.as_deref().map(|m| m.version.as_str()) != Some(list.model_version.as_str()) {
            return Err(cursor_expired());
        }
        list.page(id, offset, k)
    }

    /// Forgets the kept pages of `user_id`'s lists: their cursors expire at once.
    pub(crate) fn forget_lists_of(&self, user_id: &str) -> usize {
        self.lists().remove_user(user_id)
    }

    fn lists(&self) -> std::sync::MutexGuard<'_, ListCache> {
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

    #[test]
    fn the_cache_evicts_the_oldest_list_first() {
        let mut cache = ListCache::default();
        for id in ["a", "b", "c"] {
            let list = CachedList {
                user_id: "u".into(),
                model_version: "v".into(),
                first_page: 1,
                items: list(&[id]),
            };
            cache.insert(id.into(), list, 2);
        }
        assert!(cache.get("a").is_none());
        assert_eq!(cache.get("b").unwrap().items, list(&["b"]));
        assert_eq!(cache.get("c").unwrap().items, list(&["c"]));
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
