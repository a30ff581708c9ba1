//! Serving: recommendations for a user, similar items, popular and trending lists. Every list is
//! filtered against the live catalog (hidden, unavailable and deleted items never appear), carries a
//! recommendation id, and gives each item a score and a reason.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use cairn_core::{now_unix, Item, StoredEvent, User};
use cairn_expr::UserContext;
use cairn_models::{Recommender, SimilarItems};
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::model_set::ModelSet;
use crate::pipeline::{self, Activity, Context, HistoryEvent, PlacementConfig, Seeds, Source};
use crate::rules::{apply_pins, seed_of, stated_categories, RequestRules};
use crate::{Engine, EngineError};

#[derive(Debug, Clone, Default)]
pub struct RecommendRequest {
    pub user_id: String,
    pub k: usize,
    /// Leave out items the user already interacted with.
    pub exclude_seen: bool,
    /// Only items in this category.
    pub category: Option<String>,
    /// Pipeline configuration to use; `serve.default_placement` when absent.
    pub placement: Option<String>,
    /// Items on the page (the item being viewed, the cart's contents) that personalise placements
    /// whose seeds include the context.
    pub context_items: Vec<String>,
    /// A filter expression every returned item satisfies (see docs/FILTERS.md).
    pub filter: Option<String>,
    /// (expression, factor): items matching the expression get their relevance multiplied.
    pub boosts: Vec<(String, f32)>,
    /// (item id, 1-based position): items shown at fixed positions of the first page.
    pub pins: Vec<(String, usize)>,
    /// A `next_cursor` of an earlier response: the next page of that list.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    pub item_id: String,
    pub score: f32,
    /// Which stage put the item here: a retriever (`embedding`, `item-knn`, `content`,
    /// `category-popular`, `trending`, `new-items`, `popular`), `exploration` or `pinned`.
    pub source: &'static str,
    /// A short human-readable explanation.
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Recommendations {
    /// Unique per list (shared by its pages); clients send it back with events for attribution.
    pub recommendation_id: String,
    pub model_version: Option<String>,
    pub items: Vec<Recommendation>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

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
fn may_list(item: &Item, now: i64, category: Option<&str>) -> bool {
    item.is_recommendable(now) && category.is_none_or(|c| item.in_category(c))
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

/// A computed list kept for its later pages.
pub(crate) struct CachedList {
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
}

fn cursor_expired() -> EngineError {
    EngineError::CursorExpired(
        "this list is no longer kept (too old, or the model was retrained); request the first page again"
            .into(),
    )
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
            next_cursor: None,
        }
    }

    /// Personalised recommendations: the placement's pipeline over the user's recent events (and
    /// the request's context items), then request rules, pins and paging.
    pub fn recommend(&self, req: &RecommendRequest) -> Result<Recommendations, EngineError> {
        self.check_k(req.k)?;
        cairn_core::validate::check_id("user_id", &req.user_id)?;
        if let Some(cursor) = &req.cursor {
            return self.next_page(cursor, req.k);
        }
        let placement_name = req
            .placement
            .as_deref()
            .unwrap_or(&self.config.serve.default_placement);
        let placement = self
            .config
            .serve
            .placements
            .get(placement_name)
            .ok_or_else(|| {
                let known: Vec<&str> = self
                    .config
                    .serve
                    .placements
                    .keys()
                    .map(String::as_str)
                    .collect();
                EngineError::invalid(
                    "placement",
                    format!(
                        "unknown placement `{placement_name}`; configured: {}",
                        known.join(", ")
                    ),
                )
            })?;
        let rules = RequestRules::parse(req)?;
        for (i, id) in req.context_items.iter().enumerate() {
            cairn_core::validate::check_id(&format!("context[{i}]"), id)?;
        }
        let history = self
            .store
            .user_events(&req.user_id, self.config.serve.history_limit)?;
        let user = self.store.get_user(&req.user_id)?;
        let models = self.models();
        let catalog = self.catalog();
        let now = now_unix();
        let recommendation_id = Uuid::new_v4().to_string();
        let mut items = match models.as_deref() {
            Some(m) => self.run_pipeline(
                m,
                &catalog,
                req,
                placement,
                &rules,
                &history,
                user.as_ref(),
                now,
            ),
            None => Vec::new(),
        };
        apply_pins(&catalog, now, &req.pins, &mut items);
        let window = items.len();
        let rest = items.split_off(req.k.min(window));
        let next_cursor = match (models.as_deref(), rest.is_empty()) {
            (Some(m), false) => {
                self.lists().insert(
                    recommendation_id.clone(),
                    CachedList {
                        model_version: m.version.clone(),
                        first_page: req.k.min(window),
                        items: rest,
                    },
                    self.config.serve.cursor_cache,
                );
                Some(format!("{recommendation_id}.{}", req.k))
            }
            _ => None,
        };
        Ok(Recommendations {
            recommendation_id,
            model_version: models.as_deref().map(|m| m.version.clone()),
            items,
            next_cursor,
        })
    }

    fn next_page(&self, cursor: &str, k: usize) -> Result<Recommendations, EngineError> {
        let bad = || {
            EngineError::invalid(
                "cursor",
                "not a cursor this server issued; pass next_cursor from a response unchanged",
            )
        };
        let (id, offset) = cursor.rsplit_once('.').ok_or_else(bad)?;
        let offset: usize = offset.parse().map_err(|_| bad())?;
        Uuid::parse_str(id).map_err(|_| bad())?;
        let list = self.lists().get(id).ok_or_else(cursor_expired)?;
        let models = self.models();
        if models.as_deref().map(|m| m.version.as_str()) != Some(list.model_version.as_str()) {
            return Err(cursor_expired());
        }
        // Offsets count from the start of the whole list; the cache holds what followed page one.
        let first_page = list.first_page;
        let start = offset.checked_sub(first_page).ok_or_else(bad)?;
        let end = (start + k).min(list.items.len());
        let items = list.items[start.min(end)..end].to_vec();
        let next_cursor = (end < list.items.len()).then(|| format!("{id}.{}", first_page + end));
        Ok(Recommendations {
            recommendation_id: id.to_string(),
            model_version: Some(list.model_version.clone()),
            items,
            next_cursor,
        })
    }

    fn lists(&self) -> std::sync::MutexGuard<'_, ListCache> {
        self.lists.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[allow(clippy::too_many_arguments)]
    fn run_pipeline(
        &self,
        m: &ModelSet,
        catalog: &Catalog,
        req: &RecommendRequest,
        placement: &PlacementConfig,
        rules: &RequestRules,
        history: &[StoredEvent],
        user: Option<&User>,
        now: i64,
    ) -> Vec<Recommendation> {
        let serve = &self.config.serve;
        let table = &m.table;
        let strength = |e: &StoredEvent| self.config.event_types.strength(&e.event_type, e.value);
        // Each history item's table index, looked up by id once.
        let history_items: Vec<Option<u32>> =
            history.iter().map(|e| table.ids.get(&e.item_id)).collect();
        let mut events: Vec<HistoryEvent> = Vec::new();
        if placement.seeds != Seeds::Context {
            events.extend(
                history
                    .iter()
                    .zip(&history_items)
                    .map(|(e, &item)| HistoryEvent {
                        item,
                        strength: strength(e),
                        timestamp: e.timestamp.0,
                    }),
            );
        }
        if placement.seeds != Seeds::User {
            // Context items count as the newest, strongest signals.
            let newest = events
                .iter()
                .map(|e| e.timestamp)
                .max()
                .unwrap_or(now)
                .max(now);
            events.extend(req.context_items.iter().map(|id| HistoryEvent {
                item: table.ids.get(id),
                strength: 8.0,
                timestamp: newest,
            }));
        }
        let seeds = pipeline::seeds(&events, serve.recent_items, serve.recency_half_life_days);
        let stated = stated_categories(table, user);
        let pairs: Vec<(Option<u32>, f32)> = events.iter().map(|e| (e.item, e.strength)).collect();
        let activity = Activity::from_events(table, &pairs, &stated);

        let seen_ids: HashSet<&str> = history.iter().map(|e| e.item_id.as_str()).collect();
        // Only expressions that name `user.categories` need the categories of the whole history.
        let seen_categories: HashSet<&str> = if rules.uses_user_categories() {
            history
                .iter()
                .filter_map(|e| catalog.get(&e.item_id))
                .flat_map(|i| i.categories.iter().map(String::as_str))
                .collect()
        } else {
            HashSet::new()
        };
        let no_properties = Default::default();
        let user_ctx = UserContext {
            properties: user.map_or(&no_properties, |u| &u.properties),
            seen_items: &seen_ids,
            categories: &seen_categories,
        };
        // Items that may not appear, as sorted table indices (ids outside the table cannot be
        // proposed anyway): pins, context items, and the seen items when asked.
        let mut exclude: Vec<u32> = req
            .pins
            .iter()
            .map(|(id, _)| id)
            .chain(&req.context_items)
            .filter_map(|id| table.ids.get(id))
            .collect();
        if req.exclude_seen {
            exclude.extend(history_items.iter().flatten());
        }
        exclude.sort_unstable();
        exclude.dedup();
        let items = catalog.for_table(m);
        let category = req.category.as_deref();
        // Without a category or filter expression the item itself need not be read.
        let reads_item = category.is_some() || rules.filter.is_some();
        let allow = |i: u32| {
            exclude.binary_search(&i).is_err()
                && if reads_item {
                    items.get(i).is_some_and(|item| {
                        may_list(item, now, category)
                            && rules
                                .filter
                                .as_ref()
                                .is_none_or(|f| f.matches(item, &user_ctx))
                    })
                } else {
                    items.recommendable(i, now)
                }
        };
        let boost = |i: u32| match rules.boosts.is_empty() {
            true => 1.0,
            false => rules.boost(items.get(i).map(|a| a.as_ref()), &user_ctx),
        };
        let ctx = Context {
            seeds,
            activity,
            allow: &allow,
            boost: &boost,
            window: serve.list_window.max(req.k),
            seed: seed_of(
                &req.user_id,
                &m.version,
                history.len(),
                history.last().map_or(0, |e| e.timestamp.0),
            ),
        };
        let ranked = pipeline::run(m, &ctx, placement);
        let explainer = Explainer {
            m,
            catalog,
            ctx: &ctx,
            history,
            category: req.category.as_deref(),
            cf_seeds: ctx
                .seeds
                .iter()
                .copied()
                .filter(|&(i, _)| (i as usize) < table.n_cf)
                .collect(),
        };
        let mut out: Vec<Recommendation> = ranked.iter().map(|r| explainer.explain(r)).collect();
        if out.len() < ctx.window {
            // The candidate pool ran dry (a narrow filter): scan the whole table, most popular first.
            let have: HashSet<u32> = ranked.iter().map(|r| r.item).collect();
            let rest = m
                .popular_order
                .iter()
                .copied()
                .chain(table.newest.iter().copied())
                .chain(0..table.len() as u32)
                .filter(|i| !have.contains(i) && allow(*i));
            let mut added: HashSet<u32> = HashSet::new();
            for i in rest {
                if out.len() == ctx.window {
                    break;
                }
                if added.insert(i) {
                    out.push(Recommendation {
                        item_id: table.ids.id(i).to_string(),
                        score: 0.0,
                        source: Source::Popular.name(),
                        reason: popular_reason("popular", req.category.as_deref()),
                    });
                }
            }
        }
        out
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

/// What the reasons of one list are written from.
struct Explainer<'a> {
    m: &'a ModelSet,
    catalog: &'a Catalog,
    ctx: &'a Context<'a>,
    history: &'a [StoredEvent],
    category: Option<&'a str>,
    /// The seeds the collaborative models know, for "because you …" reasons.
    cf_seeds: Vec<(u32, f32)>,
}

impl Explainer<'_> {
    /// The reason for one item, from the source that placed it.
    fn explain(&self, r: &pipeline::Ranked) -> Recommendation {
        let (m, catalog, ctx, history, category) =
            (self.m, self.catalog, self.ctx, self.history, self.category);
        let table = &m.table;
        let id = table.ids.id(r.item);
        let category_name = |c: u32| table.categories.id(c).to_string();
        let primary = table.primary_category(r.item).map(category_name);
        let reason = match r.source {
            Source::Embedding | Source::ItemKnn => {
                let because = ((r.item as usize) < table.n_cf)
                    .then(|| m.knn.strongest_reason(&self.cf_seeds, r.item))
                    .flatten();
                match because {
                    Some(h) => {
                        let h_id = table.ids.id(h);
                        let label = catalog.get(h_id).map_or(h_id, |it| it.label());
                        let v = history
                            .iter()
                            .rev()
                            .find(|e| e.item_id == h_id)
                            .map_or("chose", |e| verb(&e.event_type));
                        format!("because you {v} \"{label}\"")
                    }
                    None => "matches your recent items".to_string(),
                }
            }
            Source::Content => {
                let interest = m
                    .content
                    .as_ref()
                    .and_then(|c| {
                        let (column, _) = *c.model.explain(&ctx.seeds, r.item, 1).first()?;
                        c.space.feature(column)
                    })
                    .map(|f| {
                        f.name
                            .split_once(':')
                            .map_or(f.name.as_str(), |(_, v)| v)
                            .to_string()
                    });
                let new = table.first_seen[r.item as usize] == i64::MIN;
                match (interest, new) {
                    (Some(w), true) => format!("new, and it matches your interest in {w}"),
                    (Some(w), false) => format!("matches your interest in {w}"),
                    (None, true) => "new, and it matches your recent items".to_string(),
                    (None, false) => "matches your recent items".to_string(),
                }
            }
            Source::CategoryPopular => {
                let weight = |c: &u32| {
                    ctx.activity
                        .category_affinity
                        .get(c)
                        .copied()
                        .unwrap_or(0.0)
                };
                let best = table
                    .categories_of(r.item)
                    .iter()
                    .copied()
                    .max_by(|a, b| weight(a).total_cmp(&weight(b)))
                    .map(category_name);
                popular_reason("popular", best.as_deref())
            }
            Source::Trending => popular_reason("trending", category.or(primary.as_deref())),
            Source::NewItems => popular_reason("new", primary.as_deref()),
            Source::Popular => popular_reason("popular", category),
        };
        Recommendation {
            item_id: id.to_string(),
            score: r.score,
            source: if r.explored {
                "exploration"
            } else {
                r.source.name()
            },
            reason,
        }
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
