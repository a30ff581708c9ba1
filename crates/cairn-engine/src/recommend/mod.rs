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
pub use request::{RecommendRequest, Recommendation, RecommendationSource, Recommendations};
use rules::{apply_pins, RequestRules};

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
                &seen_before,
                user.as_ref(),
                now,
            ),
            None => Vec::new(),
        };
        apply_pins(&catalog, now, &req.pins, &mut items);
        Ok(self.first_page(recommendation_id, models.as_deref(), items, req.k))
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
        let activity = context::activity(table, &events, user);

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
        let explainer = Explainer::new(m, catalog, &ctx, history, req.category.as_deref());
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
