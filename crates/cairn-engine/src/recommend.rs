//! Serving: recommendations for a user, similar items, popular and trending lists. Every list is
//! filtered against the live catalog (hidden, unavailable and deleted items never appear), carries a
//! recommendation id, and gives each item a score and a reason.

use std::collections::{HashMap, HashSet};

use cairn_core::{now_unix, IdMap, Item, StoredEvent};
use cairn_models::{top_k, Recommender, SimilarItems};
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::model_set::ModelSet;
use crate::{Engine, EngineError};

#[derive(Debug, Clone)]
pub struct RecommendRequest {
    pub user_id: String,
    pub k: usize,
    /// Leave out items the user already interacted with.
    pub exclude_seen: bool,
    /// Only items in this category.
    pub category: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    pub item_id: String,
    pub score: f32,
    /// Which model put the item here: `item-knn`, `popularity`, `trending`.
    pub source: &'static str,
    /// A short human-readable explanation.
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Recommendations {
    /// Unique per response; clients send it back with events for attribution.
    pub recommendation_id: String,
    pub model_version: Option<String>,
    pub items: Vec<Recommendation>,
}

/// Which items a list may contain.
struct Filter<'a> {
    catalog: &'a Catalog,
    now: i64,
    category: Option<&'a str>,
    exclude: HashSet<&'a str>,
}

impl Filter<'_> {
    fn allows(&self, id: &str) -> bool {
        if self.exclude.contains(id) {
            return false;
        }
        match self.catalog.get(id) {
            Some(item) => {
                item.is_recommendable(self.now) && self.category.is_none_or(|c| item.in_category(c))
            }
            None => false,
        }
    }
}

fn verb(event_type: &str) -> &'static str {
    match event_type {
        "view" => "viewed",
        "click" => "clicked",
        "like" => "liked",
        "add-to-cart" => "added to your cart",
        "purchase" => "bought",
        "rating" => "rated",
        _ => "interacted with",
    }
}

fn popular_reason(kind: &str, category: Option<&str>) -> String {
    match category {
        Some(c) => format!("{kind} in {c}"),
        None => kind.to_string(),
    }
}

impl Engine {
    fn check_k(&self, k: usize) -> Result<(), EngineError> {
        let max = self.config.serve.max_k;
        if k == 0 || k > max {
            return Err(EngineError::invalid(
                "k",
                format!("{k} is out of range; use 1 to {max}"),
            ));
        }
        Ok(())
    }

    fn respond(&self, models: Option<&ModelSet>, items: Vec<Recommendation>) -> Recommendations {
        Recommendations {
            recommendation_id: Uuid::new_v4().to_string(),
            model_version: models.map(|m| m.version.clone()),
            items,
        }
    }

    /// Personalised recommendations from the user's recent events; users without history (or whose
    /// items the model does not know) get popular items.
    pub fn recommend(&self, req: &RecommendRequest) -> Result<Recommendations, EngineError> {
        self.check_k(req.k)?;
        cairn_core::validate::check_id("user_id", &req.user_id)?;
        let history = self
            .store
            .user_events(&req.user_id, self.config.serve.history_limit)?;
        let models = self.models();
        let catalog = self.catalog();
        let mut filter = Filter {
            catalog: &catalog,
            now: now_unix(),
            category: req.category.as_deref(),
            exclude: HashSet::new(),
        };
        if req.exclude_seen {
            filter.exclude = history.iter().map(|e| e.item_id.as_str()).collect();
        }
        let mut out = Vec::with_capacity(req.k);
        if let Some(m) = models.as_deref() {
            let new_items = self.new_item_matches(m, &history, &mut filter, req.k);
            self.personalised(m, &history, &mut filter, req.k - new_items.len(), &mut out);
            out.extend(new_items);
            fill_from_order(
                m,
                &m.popular_order,
                &m.popularity.scores,
                "popularity",
                &mut filter,
                req.k,
                &mut out,
                |c| popular_reason("popular", c),
            );
        }
        Ok(self.respond(models.as_deref(), out))
    }

    fn personalised<'a>(
        &self,
        m: &'a ModelSet,
        history: &'a [StoredEvent],
        filter: &mut Filter<'a>,
        k: usize,
        out: &mut Vec<Recommendation>,
    ) {
        let weights = self.history_weights(&m.items, history);
        if weights.is_empty() {
            return;
        }
        let mut scores = vec![0f32; m.items.len()];
        // Item-kNN scores zero where it has no evidence, and those items are better served by the
        // popular fallback; a factor model's scores are meaningful at any sign.
        let (ranker, evidence_floor): (&dyn Recommender, f32) = match &m.main {
            Some(main) => (main, f32::NEG_INFINITY),
            None => (&m.knn, 0.0),
        };
        ranker.score(&weights, &mut scores);
        let best = top_k(&scores, k, |i| {
            scores[i as usize] <= evidence_floor || !filter.allows(m.items.id(i))
        });
        let last_type: HashMap<&str, &str> = history
            .iter()
            .map(|e| (e.item_id.as_str(), e.event_type.as_str()))
            .collect();
        for (i, score) in best {
            let id = m.items.id(i);
            let reason = match m.knn.strongest_reason(&weights, i) {
                Some(h) => {
                    let h_id = m.items.id(h);
                    let label = filter.catalog.get(h_id).map(|it| it.label().to_string());
                    let label = label.unwrap_or_else(|| h_id.to_string());
                    let v = last_type.get(h_id).map_or("interacted with", |t| verb(t));
                    format!("because you {v} \"{label}\"")
                }
                None => "matches your recent items".to_string(),
            };
            filter.exclude.insert(id);
            out.push(Recommendation {
                item_id: id.to_string(),
                score,
                source: ranker.name(),
                reason,
            });
        }
    }

    /// The user's recent items as (model item index, weight): event strengths summed per item, each
    /// event decayed by its age relative to the user's newest event.
    fn history_weights(&self, index: &IdMap, history: &[StoredEvent]) -> Vec<(u32, f32)> {
        let Some(newest) = history.last().map(|e| e.timestamp.0) else {
            return Vec::new();
        };
        let half_life = self.config.serve.recency_half_life_days * 86_400.0;
        let mut per_item: HashMap<u32, f32> = HashMap::new();
        let mut order: Vec<u32> = Vec::new();
        for e in history.iter().rev() {
            let Some(i) = index.get(&e.item_id) else {
                continue;
            };
            if !per_item.contains_key(&i) {
                if order.len() == self.config.serve.recent_items {
                    continue;
                }
                order.push(i);
            }
            let strength = self.config.event_types.strength(&e.event_type, e.value);
            let age = (newest - e.timestamp.0).max(0) as f64;
            let decay = if half_life > 0.0 {
                (-age / half_life * std::f64::consts::LN_2).exp()
            } else {
                1.0
            };
            *per_item.entry(i).or_insert(0.0) += strength * decay as f32;
        }
        order.reverse();
        order
            .into_iter()
            .filter_map(|i| {
                let w = per_item[&i];
                (w > 0.0).then_some((i, w))
            })
            .collect()
    }

    /// Up to `serve.new_item_slots` items nobody has interacted with yet (so no collaborative model
    /// can rank them), matched to the user's recent items by their features.
    fn new_item_matches<'a>(
        &self,
        m: &'a ModelSet,
        history: &[StoredEvent],
        filter: &mut Filter<'a>,
        k: usize,
    ) -> Vec<Recommendation> {
        let slots = self.config.serve.new_item_slots.min(k);
        let Some(content) = m.content.as_ref().filter(|_| slots > 0) else {
            return Vec::new();
        };
        let weights = self.history_weights(&content.items, history);
        if weights.is_empty() {
            return Vec::new();
        }
        let mut scores = vec![0f32; content.items.len()];
        content.model.score(&weights, &mut scores);
        let best = top_k(&scores, slots, |i| {
            let id = content.items.id(i);
            scores[i as usize] <= 0.0 || m.items.get(id).is_some() || !filter.allows(id)
        });
        best.into_iter()
            .map(|(i, score)| {
                let id = content.items.id(i);
                filter.exclude.insert(id);
                let interest = content
                    .model
                    .explain(&weights, i, 1)
                    .first()
                    .and_then(|&(column, _)| content.space.feature(column))
                    .map(|f| {
                        f.name
                            .split_once(':')
                            .map_or(f.name.as_str(), |(_, v)| v)
                            .to_string()
                    });
                Recommendation {
                    item_id: id.to_string(),
                    score,
                    source: "content",
                    reason: match interest {
                        Some(what) => format!("new, and it matches your interest in {what}"),
                        None => "new, and it matches your recent items".to_string(),
                    },
                }
            })
            .collect()
    }

    /// Items most similar to `item_id`, topped up with popular items of its categories.
    pub fn similar_items(
        &self,
        item_id: &str,
        k: usize,
        category: Option<&str>,
    ) -> Result<Recommendations, EngineError> {
        self.check_k(k)?;
        let models = self.models();
        let catalog = self.catalog();
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
                for (j, s) in m.knn.similar(i, wanted) {
                    if out.len() == k {
                        break;
                    }
                    let id = m.items.id(j);
                    if s <= 0.0 || !filter.allows(id) {
                        continue;
                    }
                    out.push(Recommendation {
                        item_id: id.to_string(),
                        score: s,
                        source: m.knn.name(),
                        reason: format!("often chosen together with \"{}\"", item.label()),
                    });
                }
            }
            // Top up with what is popular in the item's own categories.
            let shares_category = |id: &str| {
                item.categories.is_empty()
                    || catalog.get(id).is_some_and(|other| {
                        other.categories.iter().any(|c| item.categories.contains(c))
                    })
            };
            let label = item.categories.first().cloned();
            for &j in &m.popular_order {
                if out.len() == k {
                    break;
                }
                let id = m.items.id(j);
                if !filter.allows(id) || !shares_category(id) || out.iter().any(|r| r.item_id == id)
                {
                    continue;
                }
                out.push(Recommendation {
                    item_id: id.to_string(),
                    score: m.popularity.scores[j as usize],
                    source: "popularity",
                    reason: popular_reason("popular", label.as_deref()),
                });
            }
        }
        Ok(self.respond(models.as_deref(), out))
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
        let mut filter = Filter {
            catalog: &catalog,
            now: now_unix(),
            category,
            exclude: HashSet::new(),
        };
        let mut out = Vec::with_capacity(k);
        if let Some(m) = models.as_deref() {
            if trending {
                fill_from_order(
                    m,
                    &m.trending_order,
                    &m.trending.scores,
                    "trending",
                    &mut filter,
                    k,
                    &mut out,
                    |c| popular_reason("trending", c),
                );
            } else {
                fill_from_order(
                    m,
                    &m.popular_order,
                    &m.popularity.scores,
                    "popularity",
                    &mut filter,
                    k,
                    &mut out,
                    |c| popular_reason("popular", c),
                );
            }
        }
        Ok(self.respond(models.as_deref(), out))
    }
}

/// Appends items from a precomputed ranking until `out` holds `k`.
#[allow(clippy::too_many_arguments)]
fn fill_from_order<'a>(
    m: &'a ModelSet,
    order: &[u32],
    scores: &[f32],
    source: &'static str,
    filter: &mut Filter<'a>,
    k: usize,
    out: &mut Vec<Recommendation>,
    reason: impl Fn(Option<&str>) -> String,
) {
    for &j in order {
        if out.len() >= k {
            break;
        }
        let id = m.items.id(j);
        if !filter.allows(id) {
            continue;
        }
        filter.exclude.insert(id);
        out.push(Recommendation {
            item_id: id.to_string(),
            score: scores[j as usize],
            source,
            reason: reason(filter.category),
        });
    }
}
