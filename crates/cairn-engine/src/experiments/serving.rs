//! What serving and ingestion ask of the experiments: the route of a request, the lists served,
//! impressions, and the attribution of events.

use std::collections::HashMap;
use std::sync::Arc;

use cairn_core::Event;
use cairn_experiment::Team;
use cairn_pipeline::ModelSet;

use super::counts::{LogRecord, Outcome, Shown};
use super::defs::{ExperimentKind, ExperimentStatus};
use super::{files, ExperimentTag, Experiments, ImpressionsOutcome, ServedList, INTERLEAVED};
use crate::EngineError;

/// One pipeline run of a request: a variant's model set (`None`: the champion) and placement
/// (`None`: the request's).
#[derive(Clone, Default)]
pub(crate) struct Lane {
    pub placement: Option<String>,
    pub models: Option<Arc<ModelSet>>,
}

/// How a request is served: one lane, or two interleaved.
#[derive(Clone, Default)]
pub(crate) struct Route {
    pub tag: Option<ExperimentTag>,
    /// Variant index (0 for interleaving).
    pub variant: usize,
    pub lanes: Vec<Lane>,
}

/// A list as impressions need it: user, placement, (experiment, variant), item → team.
type ListView = (
    String,
    String,
    Option<(String, usize)>,
    HashMap<String, Option<Team>>,
);

impl Experiments {
    /// The route of `user`'s request for `placement`: the first running experiment of the
    /// placement that assigns the user decides; else a shipped default placement, if any.
    pub(crate) fn route(&self, user: &str, placement: &str) -> Route {
        let defs = self.defs();
        let lane = |v: &super::VariantDef| Lane {
            placement: v.placement.clone(),
            models: v
                .model_version
                .as_ref()
                .and_then(|m| defs.models.get(m).cloned()),
        };
        for e in defs.experiments.iter().filter(|e| {
            e.status == ExperimentStatus::Running
                && e.placement == placement
                && !defs.broken.contains_key(&e.id)
        }) {
            let Some(v) = e.spec().variant_for(user) else {
                continue;
            };
            return match e.kind {
                ExperimentKind::Ab => Route {
                    tag: Some(ExperimentTag {
                        experiment: e.id.clone(),
                        variant: e.variants[v].name.clone(),
                    }),
                    variant: v,
                    lanes: vec![lane(&e.variants[v])],
                },
                ExperimentKind::Interleaving => Route {
                    tag: Some(ExperimentTag {
                        experiment: e.id.clone(),
                        variant: INTERLEAVED.into(),
                    }),
                    variant: 0,
                    lanes: vec![lane(&e.variants[0]), lane(&e.variants[1])],
                },
            };
        }
        Route {
            tag: None,
            variant: 0,
            lanes: vec![Lane {
                placement: defs.defaults.get(placement).cloned(),
                models: None,
            }],
        }
    }

    /// Keeps a served list (its first page) so that its impressions can be posted.
    pub(crate) fn remember(&self, rid: &str, list: ServedList) {
        self.lists.lock().unwrap_or_else(|p| p.into_inner()).insert(
            rid.to_string(),
            list,
            self.config.recent_lists,
        );
    }

    fn recent(&self, rid: &str) -> Option<Arc<ServedList>> {
        self.lists
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .lists
            .get(rid)
            .cloned()
    }

    /// Records which items of list `rid` were shown at which 1-based positions, durably.
    pub(crate) fn impressions(
        &self,
        rid: &str,
        user: Option<&str>,
        shown: &[(String, u32)],
        now: i64,
    ) -> Result<ImpressionsOutcome, EngineError> {
        cairn_core::validate::check_id("recommendation_id", rid)?;
        if shown.is_empty() {
            return Err(EngineError::invalid(
                "items",
                "name at least one shown item with its position",
            ));
        }
        let mut counts = self.counts();
        // The list as served, or (after a restart) as its earlier impressions recorded it.
        let (list_user, placement, experiment, items): ListView = match self.recent(rid) {
            Some(l) => (
                l.user.clone(),
                l.placement.clone(),
                l.experiment.clone(),
                l.items.iter().cloned().collect(),
            ),
            None => match counts.lists.get(rid) {
                Some(l) => (
                    l.user.clone(),
                    l.placement.clone(),
                    l.experiment.clone(),
                    l.items.iter().map(|(i, (_, t))| (i.clone(), *t)).collect(),
                ),
                None => {
                    return Err(EngineError::NotFound {
                        kind: "recommendation",
                        id: rid.to_string(),
                    })
                }
            },
        };
        if let Some(u) = user {
            if u != list_user {
                return Err(EngineError::invalid(
                    "user_id",
                    format!("recommendation `{rid}` was served to another user"),
                ));
            }
        }
        let mut new = Vec::new();
        let mut duplicates = 0;
        for (i, (item, position)) in shown.iter().enumerate() {
            if *position == 0 {
                return Err(EngineError::invalid(
                    format!("items[{i}].position"),
                    "positions are 1-based: the first item of a list is at position 1",
                ));
            }
            let Some(team) = items.get(item) else {
                return Err(EngineError::invalid(
                    format!("items[{i}].item_id"),
                    format!("item `{item}` is not in the first page of recommendation `{rid}`"),
                ));
            };
            if counts.is_impressed(rid, item) || new.iter().any(|s: &Shown| &s.item == item) {
                duplicates += 1;
                continue;
            }
            new.push(Shown {
                item: item.clone(),
                position: *position,
                team: *team,
            });
        }
        let recorded = new.len();
        if recorded > 0 {
            let record = LogRecord::Impression {
                rid: rid.to_string(),
                user: list_user,
                placement,
                variant: experiment.as_ref().map_or(0, |e| e.1),
                experiment: experiment.map(|e| e.0),
                at: now,
                items: new,
            };
            files::append_log(&self.dir, std::slice::from_ref(&record))?;
            counts.apply(&record);
        }
        Ok(ImpressionsOutcome {
            recorded,
            duplicates,
        })
    }

    /// Attributes stored events (user ids as stored) to the lists they follow from: by their
    /// `recommendation_id`, else by the latest impression of their item to their user within the
    /// attribution window. Only click and conversion types count; each event once.
    pub(crate) fn attribute(&self, events: &[Event], now: i64) -> Result<(), EngineError> {
        let outcome_of = |t: &str| {
            if self.config.click_types.iter().any(|c| c == t) {
                Some(Outcome::Click)
            } else if self.config.conversion_types.iter().any(|c| c == t) {
                Some(Outcome::Conversion)
            } else {
                None
            }
        };
        if !events.iter().any(|e| outcome_of(&e.event_type).is_some()) {
            return Ok(());
        }
        let mut counts = self.counts();
        let mut records = Vec::new();
        for e in events {
            let Some(outcome) = outcome_of(&e.event_type) else {
                continue;
            };
            let key = e.event_id.clone().unwrap_or_else(|| e.content_id());
            if counts.is_attributed(&key)
                || records
                    .iter()
                    .any(|r| matches!(r, LogRecord::Event { key: k, .. } if *k == key))
            {
                continue;
            }
            let at = e.timestamp.map_or(now, |t| t.0);
            let rid = match &e.recommendation_id {
                Some(r) => Some(r.clone()),
                None if self.config.attribution_window_secs > 0 => counts
                    .last_shown
                    .get(&(e.user_id.clone(), e.item_id.clone()))
                    .filter(|(shown_at, _)| {
                        *shown_at <= at
                            && at - *shown_at <= self.config.attribution_window_secs as i64
                    })
                    .map(|(_, r)| r.clone()),
                None => None,
            };
            let Some(rid) = rid else { continue };
            let found = match self.recent(&rid) {
                Some(l) => l.items.iter().position(|(i, _)| *i == e.item_id).map(|p| {
                    let shown = counts
                        .lists
                        .get(&rid)
                        .and_then(|il| il.items.get(&e.item_id))
                        .map(|(pos, _)| *pos);
                    (
                        l.user.clone(),
                        l.placement.clone(),
                        l.experiment.clone(),
                        shown.unwrap_or(p as u32 + 1),
                        l.items[p].1,
                    )
                }),
                None => counts.lists.get(&rid).and_then(|l| {
                    l.items.get(&e.item_id).map(|(pos, team)| {
                        (
                            l.user.clone(),
                            l.placement.clone(),
                            l.experiment.clone(),
                            *pos,
                            *team,
                        )
                    })
                }),
            };
            let Some((user, placement, experiment, shown_position, team)) = found else {
                continue;
            };
            if user != e.user_id {
                continue;
            }
            records.push(LogRecord::Event {
                key,
                rid,
                user,
                item: e.item_id.clone(),
                placement,
                variant: experiment.as_ref().map_or(0, |x| x.1),
                experiment: experiment.map(|x| x.0),
                outcome,
                position: e.position.unwrap_or(shown_position),
                team,
                at,
            });
        }
        files::append_log(&self.dir, &records)?;
        for r in &records {
            counts.apply(r);
        }
        Ok(())
    }
}
