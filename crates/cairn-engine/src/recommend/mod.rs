//! Serving: recommendations for a user, similar items, popular and trending lists. Every list is
//! filtered against the live catalog (hidden, unavailable and deleted items never appear), carries a
//! recommendation id, and gives each item a score and a reason.
//!
//! This module runs a personal list from end to end; its parts are the request and response
//! types ([`request`]), the request's rules and pins ([`rules`]), the pipeline's inputs
//! ([`context`]), the reasons ([`explain`]), the fill from a ranked order ([`fill`]), the
//! non-personal lists ([`lists`]) and the cursor pages ([`pages`]).

mod context;
mod explain;
mod fill;
#[cfg(test)]
mod fixture;
mod lists;
mod pages;
mod request;
mod rules;

use std::collections::HashSet;

use cairn_core::{now_unix, StoredEvent, User};
use cairn_expr::UserContext;
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::{Engine, EngineError};
use cairn_pipeline::ModelSet;
use cairn_pipeline::{Context, PlacementConfig};
use context::ItemRules;
use explain::{popular_reason, Explainer};
use fill::fill_from_order;
pub(crate) use pages::ListCache;
pub use request::{
    RecommendRequest, Recommendation, RecommendationSource, Recommendations, Warning, WarningCode,
};
use rules::{apply_pins, category_warning, check_category, context_warnings, RequestRules};

impl Engine {
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
        check_category(&catalog, req.category.as_deref())?;
        rules.check_properties(catalog.properties())?;
        let mut warnings = context_warnings(&catalog, &req.context_items);
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
        // Every item of the list is in the category, when one is asked for.
        warnings.extend(category_warning(
            &catalog,
            now,
            req.category.as_deref(),
            !items.is_empty(),
        ));
        warnings.extend(apply_pins(&catalog, now, &req.pins, &mut items));
        let mut list = self.first_page(recommendation_id, models.as_deref(), items, req.k);
        list.warnings = warnings;
        Ok(list)
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

        let seen_ids: HashSet<&str> = history.iter().map(|e| e.item_id.as_str()).collect();
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
            context::excluded(table, req, &history_items),
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
        if out.len() < ctx.window {
            // The candidate pool ran dry (a narrow filter): scan the whole table, most popular first.
            let rest = m
                .popular_order
                .iter()
                .copied()
                .chain(table.newest.iter().copied())
                .chain(0..table.len() as u32)
                .map(|i| (i, 0.0));
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
