//! The engine's experiment operations, as the HTTP API and the CLI call them.

use std::collections::HashMap;
use std::sync::Arc;

use cairn_experiment::{team_draft, Team};
use cairn_pipeline::{ModelSet, PlacementConfig};

use super::{
    Experiment, ExperimentResults, HistoryRecord, ImpressionsOutcome, NewExperiment, Route,
    ServedList, Shipped,
};
use crate::recommend::Recommendation;
use crate::registry::Alias;
use crate::{Engine, EngineError};

/// What a request's lanes served.
pub(crate) struct Served {
    pub items: Vec<Recommendation>,
    /// The model set whose version the list reports (and its pages are kept under).
    pub models: Arc<ModelSet>,
    /// Interleaved lists: the team of each item.
    pub teams: HashMap<String, Team>,
}

impl Engine {
    pub fn create_experiment(
        &self,
        new: NewExperiment,
        who: &str,
    ) -> Result<Experiment, EngineError> {
        let placements: Vec<&str> = self
            .config
            .serve
            .placements
            .keys()
            .map(String::as_str)
            .collect();
        self.experiments.create(
            new,
            &placements,
            &self.config.serve.default_placement,
            &self.registry,
            who,
            cairn_core::now_unix(),
        )
    }

    /// Every experiment, in creation order.
    pub fn experiments(&self) -> Vec<Experiment> {
        self.experiments.list()
    }

    pub fn experiment(&self, id: &str) -> Result<Experiment, EngineError> {
        self.experiments.get(id)
    }

    /// Why a running experiment does not serve (a variant's model did not load at start), if so.
    pub fn experiment_problem(&self, id: &str) -> Option<String> {
        self.experiments.problem(id)
    }

    /// Creations, stops and ships, oldest first.
    pub fn experiment_history(&self) -> Result<Vec<HistoryRecord>, EngineError> {
        self.experiments.history()
    }

    /// The experiment's counts and analysis now. CUPED's pre-period activity is the number of the
    /// user's events (of their newest `serve.history_limit`) before the experiment started.
    pub fn experiment_results(&self, id: &str) -> Result<ExperimentResults, EngineError> {
        let e = self.experiments.get(id)?;
        let limit = self.config.serve.history_limit;
        // Read from the store before the counts are locked, so impressions are not held up.
        let users = self.experiments.counts().users_of(id);
        let mut pre: HashMap<String, f64> = HashMap::with_capacity(users.len());
        for user in users {
            let before = self
                .store
                .user_events(&user, limit)?
                .iter()
                .filter(|ev| ev.timestamp.0 < e.created_at)
                .count();
            pre.insert(user, before as f64);
        }
        let mut pre_period = |user: &str| pre.get(user).copied().unwrap_or(0.0);
        Ok(self.experiments.counts().results(&e, &mut pre_period))
    }

    pub fn stop_experiment(
        &self,
        id: &str,
        who: &str,
        reason: &str,
    ) -> Result<Experiment, EngineError> {
        self.experiments
            .stop(id, who, reason, cairn_core::now_unix())
    }

    /// Ships `variant`: promotes its model version to champion through the registry (recorded in
    /// the alias history) and makes its placement's configuration serve the experiment's
    /// placement; the experiment stops serving, and the ship is recorded in its history.
    pub fn ship_experiment(
        &self,
        id: &str,
        variant: &str,
        who: &str,
        reason: &str,
    ) -> Result<Experiment, EngineError> {
        let (e, v) = self.experiments.shippable(id, variant)?;
        let reason = if reason.is_empty() {
            format!("shipped variant {} of experiment {}", v.name, e.id)
        } else {
            reason.to_string()
        };
        let mut promoted = None;
        if let Some(version) = &v.model_version {
            let champion = self.models().map(|m| m.version.clone());
            if champion.as_deref() != Some(version) {
                self.promote_model(version, Alias::Champion, who, &reason)?;
            }
            promoted = Some(version.clone());
        }
        let shipped = Shipped {
            variant: v.name.clone(),
            at: cairn_core::now_unix(),
            by: who.to_string(),
            reason,
            promoted_model: promoted,
            default_placement: v.placement.clone(),
        };
        self.experiments
            .record_ship(id, shipped, cairn_core::now_unix())
    }

    /// Records that items of list `recommendation_id` were shown (1-based positions). `user_id`,
    /// when given, must be the list's user.
    pub fn record_impressions(
        &self,
        recommendation_id: &str,
        user_id: Option<&str>,
        shown: &[(String, u32)],
    ) -> Result<ImpressionsOutcome, EngineError> {
        let key = user_id.map(|u| self.user_key(u).into_owned());
        self.experiments.impressions(
            recommendation_id,
            key.as_deref(),
            shown,
            cairn_core::now_unix(),
        )
    }

    /// The route of a personal list: which experiment and variant, if any.
    pub(crate) fn experiment_route(&self, user: &str, placement: &str) -> Route {
        self.experiments.route(user, placement)
    }

    /// Whether model version `version` serves in a running experiment (its lists' pages are kept).
    pub(crate) fn experiment_holds(&self, version: &str) -> bool {
        self.experiments.holds_version(version)
    }

    /// Runs the route's lanes through `run` (the pipeline with the request's rules): one lane is
    /// one run; two are interleaved by team draft, seeded by the recommendation id. The scores of
    /// an interleaved list are capped so that they never rise down the list.
    pub(crate) fn serve_route(
        &self,
        route: &Route,
        champion: &Arc<ModelSet>,
        placement: &PlacementConfig,
        recommendation_id: &str,
        run: &dyn Fn(&ModelSet, &PlacementConfig) -> Vec<Recommendation>,
    ) -> Served {
        let lane = |i: usize| {
            let l = route.lanes.get(i).cloned().unwrap_or_default();
            let models = l.models.unwrap_or_else(|| Arc::clone(champion));
            let p = l
                .placement
                .as_ref()
                .and_then(|name| self.config.serve.placements.get(name))
                .unwrap_or(placement);
            (models, p)
        };
        let (control_models, control_placement) = lane(0);
        let control = run(&control_models, control_placement);
        if route.lanes.len() < 2 {
            return Served {
                items: control,
                models: control_models,
                teams: HashMap::new(),
            };
        }
        let (treatment_models, treatment_placement) = lane(1);
        let treatment = run(&treatment_models, treatment_placement);
        let ids =
            |l: &[Recommendation]| -> Vec<String> { l.iter().map(|r| r.item_id.clone()).collect() };
        let len = control.len().max(treatment.len());
        let mixed = team_draft(&ids(&control), &ids(&treatment), len, recommendation_id);
        let mut by_id: HashMap<(Team, &str), &Recommendation> = HashMap::new();
        for r in &control {
            by_id.insert((Team::Control, r.item_id.as_str()), r);
        }
        for r in &treatment {
            by_id.insert((Team::Treatment, r.item_id.as_str()), r);
        }
        let mut items = Vec::with_capacity(mixed.items.len());
        let mut teams = HashMap::new();
        let mut cap = f32::INFINITY;
        for (id, team) in mixed.items.iter().zip(&mixed.teams) {
            if let Some(r) = by_id.get(&(*team, id.as_str())) {
                let mut r = (*r).clone();
                r.score = r.score.min(cap);
                cap = r.score;
                items.push(r);
                teams.insert(id.clone(), *team);
            }
        }
        Served {
            items,
            models: control_models,
            teams,
        }
    }

    /// Keeps the first page of a served personal list for its impressions.
    pub(crate) fn remember_list(
        &self,
        recommendation_id: &str,
        user: &str,
        placement: &str,
        route: &Route,
        first_page: &[Recommendation],
        teams: &HashMap<String, Team>,
    ) {
        self.experiments.remember(
            recommendation_id,
            ServedList {
                user: user.to_string(),
                placement: placement.to_string(),
                experiment: route
                    .tag
                    .as_ref()
                    .map(|t| (t.experiment.clone(), route.variant)),
                items: first_page
                    .iter()
                    .map(|r| (r.item_id.clone(), teams.get(&r.item_id).copied()))
                    .collect(),
            },
        );
    }

    /// Attributes stored events (ids as stored) to experiments; see `experiments::serving`.
    pub(crate) fn attribute_events(&self, events: &[cairn_core::Event]) -> Result<(), EngineError> {
        self.experiments.attribute(events, cairn_core::now_unix())
    }
}
