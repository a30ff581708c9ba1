//! Serving: recommendations for a user, similar items, popular and trending lists. Every list is
//! filtered against the live catalog (hidden, unavailable and deleted items never appear), carries a
//! recommendation id, and gives each item a score and a reason.
//!
//! This module runs a personal list from end to end; its parts are the request and response
//! types ([`request`]), the request's rules and pins ([`rules`]), the pipeline's inputs
//! ([`context`]), the reasons ([`explain`]), the fill from a ranked order ([`fill`]), the
//! non-personal lists ([`lists`]), the cursor pages ([`pages`]) and what a score means
//! ([`score`]).

mod context;
mod explain;
mod fill;
#[cfg(test)]
mod fixture;
mod lists;
mod pages;
mod request;
mod rules;
mod score;
mod version;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cairn_core::{now_unix, StoredEvent, User};
use cairn_experiment::Team;
use cairn_expr::UserContext;
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::experiments::Route;
use crate::{Engine, EngineError};
use cairn_pipeline::ModelSet;
use cairn_pipeline::{Context, PlacementConfig};
use context::ItemRules;
use explain::{popular_reason, Explainer};
use fill::fill_from_order;
pub use pages::CursorCacheStats;
pub(crate) use pages::ListCache;
pub use request::{
    RecommendRequest, Recommendation, RecommendationSource, Recommendations, Warning, WarningCode,
};
use rules::{apply_pins, category_warning, check_category, context_warnings, RequestRules};

/// How [`Engine::personal_list`] chooses the model set and placement.
pub(crate) enum Routing<'a> {
    /// Through the user's experiment, if any (the serving path); interleaving is seeded by this
    /// recommendation id.
    Experiments(&'a str),
    /// The model set and placement as asked (shadow tests).
    AsAsked,
}

/// A personal list before paging, with what served it.
pub(crate) struct PersonalList {
    pub items: Vec<Recommendation>,
    pub warnings: Vec<Warning>,
    /// The model set whose version the list reports; `None` before the first training.
    pub models: Option<Arc<ModelSet>>,
    /// Interleaved lists: the team of each item.
    pub teams: HashMap<String, Team>,
    pub route: Route,
    pub placement: String,
}

impl Engine {
    /// Personalised recommendations: the placement's pipeline over the user's recent events (and
    /// the request's context items), then request rules, pins and paging. `req.user_id` is the
    /// stored id ([`Engine::recommend`] maps a raw one first).
    pub(crate) fn recommend_stored(
        &self,
        req: &RecommendRequest,
    ) -> Result<Recommendations, EngineError> {
        let result = self.serve_list(req);
        // Shadow tests and the guardrails see every outcome (see `crate::shadow`).
        self.observe_recommendation(req, &result);
        result
    }

    fn serve_list(&self, req: &RecommendRequest) -> Result<Recommendations, EngineError> {
        self.check_k(req.k)?;
        cairn_core::validate::check_id("user_id", &req.user_id)?;
        if let Some(cursor) = &req.cursor {
            return self.next_page(&req.user_id, cursor, req.k);
        }
        let champion = self.models();
        let recommendation_id = Uuid::new_v4().to_string();
        let personal = self.personal_list(
            req,
            champion.as_ref(),
            Routing::Experiments(&recommendation_id),
        )?;
        let mut list = self.first_page(
            &req.user_id,
            recommendation_id,
            personal.models.as_deref(),
            personal.items,
            req.k,
        );
        list.warnings = personal.warnings;
        if personal.models.is_some() {
            self.remember_list(
                &list.recommendation_id,
                &req.user_id,
                &personal.placement,
                &personal.route,
                &list.items,
                &personal.teams,
            );
            list.experiment = personal.route.tag;
        }
        Ok(list)
    }

    /// The whole ranked list (pins placed) that `models` gives for a first-page request, with the
    /// request's warnings; the serving path routes it through the user's experiment and pages it,
    /// shadow tests score a challenger with it as asked.
    pub(crate) fn personal_list(
        &self,
        req: &RecommendRequest,
        models: Option<&Arc<ModelSet>>,
        routing: Routing<'_>,
    ) -> Result<PersonalList, EngineError> {
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
        // Online experiments: the user's variant may serve another model set or placement.
        let (route, recommendation_id) = match routing {
            Routing::Experiments(id) => (self.experiment_route(&req.user_id, placement_name), id),
            Routing::AsAsked => (Route::default(), ""),
        };
        let rules = RequestRules::parse(req)?;
        for (i, id) in req.context_items.iter().enumerate() {
            cairn_core::validate::check_id(&format!("context[{i}]"), id)?;
        }
        let history_limit = self.config.serve.history_limit;
        let history = self.store.user_events(&req.user_id, history_limit)?;
        // A history shorter than the limit is the whole history; a full one may have older
        // events, whose items are seen too: the store keeps every item of a user for this.
        let seen_before = if history.len() >= history_limit {
            self.store.user_items(&req.user_id)?
        } else {
            Vec::new()
        };
        let user = self.store.get_user(&req.user_id)?;
        let catalog = self.catalog();
        check_category(&catalog, req.category.as_deref())?;
        rules.check_properties(catalog.properties())?;
        let mut warnings = context_warnings(&catalog, &req.context_items);
        let now = now_unix();
        let served = models.map(|champion| {
            let run = |m: &ModelSet, placement: &PlacementConfig| {
                self.run_pipeline(
                    m,
                    &catalog,
                    req,
                    placement,
                    &rules,
                    &history,
                    &seen_before,
                    user.as_ref(),
                    now,
                )
            };
            self.serve_route(&route, champion, placement, recommendation_id, &run)
        });
        let (mut items, models, teams) = match served {
            Some(s) => (s.items, Some(s.models), s.teams),
            None => (Vec::new(), None, Default::default()),
        };
        // Every item of the list is in the category, when one is asked for.
        warnings.extend(category_warning(
            &catalog,
            now,
            req.category.as_deref(),
            !items.is_empty(),
        ));
        warnings.extend(apply_pins(&catalog, now, &req.pins, &mut items));
        score::score_pins(&mut items);
        Ok(PersonalList {
            items,
            warnings,
            models,
            teams,
            route,
            placement: placement_name.to_string(),
        })
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
        seen_before: &[String],
        user: Option<&User>,
        now: i64,
    ) -> Vec<Recommendation> {
        let serve = &self.config.serve;
        let table = &m.table;
        let strength = |e: &StoredEvent| self.config.event_types.strength(&e.event_type, e.value);
        // Each history item's table index, looked up by id once.
        let history_items: Vec<Option<u32>> =
            history.iter().map(|e| table.ids.get(&e.item_id)).collect();
        let events = context::history_events(
            table,
            history,
            &history_items,
            &req.context_items,
            placement.seeds,
            strength,
            now,
        );
        let seeds =
            cairn_pipeline::seeds(&events, serve.recent_items, serve.recency_half_life_days);
        // Items created after training are not in the table: they still count, by their content
        // and categories.
        let ids = context::event_ids(history, &req.context_items, placement.seeds);
        let unseen = context::unseen(m, catalog, &events, &ids, &serve.history());
        let activity = context::activity(table, &events, unseen, user);

        // Seen: every item of the history read, and of the whole history when that was cut.
        let seen_ids: HashSet<&str> = history
            .iter()
            .map(|e| e.item_id.as_str())
            .chain(seen_before.iter().map(String::as_str))
            .collect();
        let seen_items: Vec<u32> = history_items
            .iter()
            .flatten()
            .copied()
            .chain(seen_before.iter().filter_map(|id| table.ids.get(id)))
            .collect();
        // Only expressions that name `user.categories` need the categories of the whole history.
        let seen_categories =
            context::seen_categories(catalog, history, rules.uses_user_categories());
        let no_properties = Default::default();
        let user_ctx = UserContext {
            properties: user.map_or(&no_properties, |u| &u.properties),
            seen_items: &seen_ids,
            categories: &seen_categories,
        };
        let item_rules = ItemRules::new(
            catalog.for_table(m),
            now,
            req.category.as_deref(),
            rules,
            &user_ctx,
            context::excluded(table, req, &seen_items),
        );
        let allow = |i: u32| item_rules.allows(i);
        let boost = |i: u32| item_rules.boost(i);
        let ctx = Context {
            seeds,
            activity,
            allow: &allow,
            boost: &boost,
            window: serve.list_window.max(req.k),
            seed: context::seed_of(
                &req.user_id,
                &m.version,
                history.len(),
                history.last().map_or(0, |e| e.timestamp.0),
            ),
        };
        let ranked = cairn_pipeline::run(m, &ctx, placement);
        let explainer = Explainer::new(
            m,
            catalog,
            &ctx,
            history,
            req.category.as_deref(),
            placement,
        );
        let mut out: Vec<Recommendation> = ranked.iter().map(|r| explainer.explain(r)).collect();
        score::relative_to_best(&mut out);
        if out.len() < ctx.window {
            // The candidate pool ran dry (a narrow filter): scan the whole table, most popular
            // first, each scored by its popularity below the last ranked item.
            let floor = score::below(&out);
            let popularity = &m.popularity.scores;
            let best = m
                .popular_order
                .first()
                .map_or(0.0, |&i| popularity[i as usize]);
            let rest = m
                .popular_order
                .iter()
                .copied()
                .chain(table.newest.iter().copied())
                .chain(0..table.len() as u32)
                .map(|i| {
                    let p = popularity.get(i as usize).copied().unwrap_or(0.0);
                    (i, floor * score::share(p, best))
                });
            fill_from_order(
                &mut out,
                ctx.window,
                &table.ids,
                rest,
                allow,
                RecommendationSource::Popular,
                &popular_reason("popular", req.category.as_deref()),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cairn_core::Event;

    use super::*;
    use crate::config::Config;
    use crate::recommend::fixture;
    use crate::recommend::score::follows_definition;

    /// Every page of the list `req` asks for, its items in list order.
    fn whole_list(engine: &Engine, req: &RecommendRequest) -> Vec<Recommendation> {
        let mut page = engine.recommend(req).unwrap();
        let mut all = page.items.clone();
        while let Some(cursor) = page.next_cursor.take() {
            page = engine
                .recommend(&RecommendRequest {
                    cursor: Some(cursor),
                    ..req.clone()
                })
                .unwrap();
            all.extend(page.items.iter().cloned());
        }
        all
    }

    fn request(user: &str, placement: &str) -> RecommendRequest {
        RecommendRequest {
            user_id: user.into(),
            k: 3,
            exclude_seen: true,
            placement: Some(placement.into()),
            ..RecommendRequest::default()
        }
    }

    /// A world where every position goes to exploration when it can and an untouched item has a
    /// reserved slot: the paths that place items out of score order.
    fn exploring_engine(dir: &std::path::Path) -> Engine {
        let mut config = Config::default();
        for placement in config.serve.placements.values_mut() {
            placement.exploration = 1.0;
            placement.new_item_slots = 1;
        }
        fixture::engine_with(dir, Arc::new(fixture::models()), config)
    }

    #[test]
    fn scores_never_rise_down_a_list_and_its_pages_on_every_path() {
        for exploring in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let engine = if exploring {
                exploring_engine(dir.path())
            } else {
                fixture::engine(dir.path(), Arc::new(fixture::models()))
            };
            engine
                .add_events(vec![
                    Event::new("fan", "j0", "view"),
                    Event::new("fan", "j1", "purchase"),
                ])
                .unwrap();
            for user in ["fan", "stranger"] {
                for placement in ["home", "item-page", "cart"] {
                    let mut req = request(user, placement);
                    req.context_items = vec!["r0".into()];
                    let plain = whole_list(&engine, &req);
                    // Pins at the top and in the middle of the first page.
                    req.pins = vec![("r3".into(), 1), ("j4".into(), 3)];
                    let pinned = whole_list(&engine, &req);
                    for list in [&plain, &pinned] {
                        let scores: Vec<f32> = list.iter().map(|r| r.score).collect();
                        let what = format!("{user} {placement} exploring={exploring}: {list:?}");
                        assert!(list.len() > 3, "{what}");
                        assert!(follows_definition(scores.iter().copied()), "{what}");
                        assert_eq!(scores[0], 1.0, "{what}");
                    }
                    if exploring && user == "fan" {
                        // The paths that place an item out of score order did run.
                        assert!(
                            plain
                                .iter()
                                .any(|r| r.source == RecommendationSource::Exploration),
                            "{plain:?}"
                        );
                    }
                    assert_eq!(pinned[0].source, RecommendationSource::Pinned);
                    assert_eq!(pinned[0].score, pinned[1].score, "{pinned:?}");
                    assert_eq!(pinned[2].source, RecommendationSource::Pinned);
                    assert_eq!(pinned[2].score, pinned[3].score, "{pinned:?}");
                }
            }
        }
    }

    #[test]
    fn a_fill_after_the_ranked_items_scores_by_popularity_below_them() {
        let dir = tempfile::tempdir().unwrap();
        let models = Arc::new(fixture::models());
        // A placement whose one retriever proposes only the context item's neighbours, so the
        // rest of the list comes from the fill.
        let mut config = Config::default();
        config.serve.placements.insert(
            "narrow".into(),
            PlacementConfig {
                retrievers: vec![cairn_pipeline::Quota {
                    source: cairn_pipeline::Source::ItemKnn,
                    quota: 2,
                }],
                seeds: cairn_pipeline::Seeds::Context,
                ..PlacementConfig::default()
            },
        );
        let engine = fixture::engine_with(dir.path(), models.clone(), config);
        let mut req = request("fan", "narrow");
        req.context_items = vec!["j1".into()];
        req.k = 20;
        let list = whole_list(&engine, &req);
        let scores: Vec<f32> = list.iter().map(|r| r.score).collect();
        assert!(follows_definition(scores.iter().copied()), "{list:?}");
        let filled = list
            .iter()
            .position(|r| r.source == RecommendationSource::Popular)
            .expect("a fill");
        assert!(filled > 0 && filled <= 2, "{list:?}");
        let popularity = |id: &str| {
            models
                .items
                .get(id)
                .map_or(0.0, |i| models.popularity.scores[i as usize])
        };
        // The fill is the popularity order scaled below the last ranked item: items somebody
        // interacted with have evidence; n0, which nobody touched, has none.
        let best = popularity(models.items.id(models.popular_order[0]));
        for r in &list[filled..] {
            let want = scores[filled - 1] * popularity(&r.item_id) / best;
            assert!((r.score - want).abs() < 1e-6, "{r:?} in {list:?}");
            assert_eq!(r.score > 0.0, r.item_id != "n0", "{r:?}");
        }
        assert!(list.iter().any(|r| r.item_id == "n0"), "{list:?}");
    }
}
