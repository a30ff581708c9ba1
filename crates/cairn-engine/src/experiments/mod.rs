//! Online experiments over the serving path: definitions, who is in which variant, the lists
//! served to them, and the attribution of impressions, clicks and conversions to those lists. The
//! statistics are `cairn-experiment`'s; this module holds the state and its files.
//!
//! Files, all in `data_dir/experiments/` (one data directory: experiments are not in the `Store`
//! yet, so replicas over separate data directories do not share them):
//! * `defs/<id>.json`: one experiment's definition and state, rewritten atomically (temp file,
//!   fsync, rename, fsync of the folder) on every change;
//! * `history.jsonl`: every creation, stop and ship, appended and fsynced;
//! * `defaults.json`: placements whose configuration a shipped variant replaced;
//! * `attribution.jsonl`: every acknowledged impression and attributed event, appended and
//!   fsynced before the request is answered, replayed at start to rebuild the counts.
//!
//! Assignment is `cairn-experiment`'s salted hash of the (stored) user id, so it is the same after a
//! restart and on every replica with the same definitions. A variant's model version is loaded
//! once per running experiment (one copy per distinct version) and freed when it stops.

mod api;
mod counts;
mod defs;
mod files;
mod serving;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use cairn_experiment::{Assigner, ExperimentSpec, NamespaceSlot, Team, NAMESPACE_BUCKETS};
use cairn_pipeline::ModelSet;
use serde::{Deserialize, Serialize};

use crate::config::ExperimentsConfig;
use crate::registry::Registry;
use crate::EngineError;

pub use counts::{ExperimentResults, ImpressionsOutcome, PositionCounts, VariantResult};
pub use defs::{
    Experiment, ExperimentKind, ExperimentStatus, HistoryRecord, NewExperiment, Shipped, VariantDef,
};
pub(crate) use serving::Route;

use counts::Counts;

/// Which experiment and variant served a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExperimentTag {
    pub experiment: String,
    /// The variant's name; `interleaved` for an interleaving experiment's lists.
    pub variant: String,
}

/// The name an interleaving experiment's lists carry as their variant.
pub const INTERLEAVED: &str = "interleaved";

/// A served list as attribution needs it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServedList {
    pub user: String,
    pub placement: String,
    /// (experiment id, variant index); the index is 0 for interleaving.
    pub experiment: Option<(String, usize)>,
    /// The first page, in order, each with the team that picked it in an interleaved list.
    pub items: Vec<(String, Option<Team>)>,
}

/// Lists served recently, by recommendation id, the oldest forgotten first.
#[derive(Default)]
struct RecentLists {
    lists: HashMap<String, Arc<ServedList>>,
    order: std::collections::VecDeque<String>,
}

impl RecentLists {
    fn insert(&mut self, id: String, list: ServedList, cap: usize) {
        if self.lists.insert(id.clone(), Arc::new(list)).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > cap {
            if let Some(old) = self.order.pop_front() {
                self.lists.remove(&old);
            }
        }
    }
}

struct Defs {
    /// In creation order.
    experiments: Vec<Experiment>,
    /// Model sets of running experiments' variants, by version.
    models: HashMap<String, Arc<ModelSet>>,
    /// Running experiments that cannot serve (a variant's model did not load), and why.
    broken: BTreeMap<String, String>,
    /// Placement → the placement whose configuration a shipped variant made its default.
    defaults: BTreeMap<String, String>,
}

pub(crate) struct Experiments {
    dir: PathBuf,
    config: ExperimentsConfig,
    defs: RwLock<Defs>,
    lists: Mutex<RecentLists>,
    counts: Mutex<Counts>,
}

impl Experiments {
    /// Reads the definitions and replays the attribution log of `dir` (none yet is fine), loading
    /// the model versions running experiments need.
    pub(crate) fn open(
        dir: PathBuf,
        config: ExperimentsConfig,
        registry: &Registry,
    ) -> Result<Experiments, EngineError> {
        let mut experiments = files::read_defs(&dir)?;
        experiments.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        let defaults = files::read_defaults(&dir)?;
        let mut counts = Counts::default();
        files::replay(&dir, &mut |record| counts.apply(&record))?;
        let mut defs = Defs {
            experiments,
            models: HashMap::new(),
            broken: BTreeMap::new(),
            defaults,
        };
        let running: Vec<Experiment> = defs
            .experiments
            .iter()
            .filter(|e| e.status == ExperimentStatus::Running)
            .cloned()
            .collect();
        for e in running {
            if let Err(err) = load_models(&mut defs.models, registry, &e) {
                tracing::warn!(
                    experiment = %e.id,
                    "a variant's model cannot be loaded ({err}); the experiment does not serve \
                     until it is stopped and created again"
                );
                defs.broken.insert(e.id.clone(), err.to_string());
            }
        }
        Ok(Experiments {
            dir,
            config,
            defs: RwLock::new(defs),
            lists: Mutex::new(RecentLists::default()),
            counts: Mutex::new(counts),
        })
    }

    fn defs(&self) -> std::sync::RwLockReadGuard<'_, Defs> {
        self.defs.read().unwrap_or_else(|p| p.into_inner())
    }

    fn defs_mut(&self) -> std::sync::RwLockWriteGuard<'_, Defs> {
        self.defs.write().unwrap_or_else(|p| p.into_inner())
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every experiment, in creation order.
    pub(crate) fn list(&self) -> Vec<Experiment> {
        self.defs().experiments.clone()
    }

    pub(crate) fn get(&self, id: &str) -> Result<Experiment, EngineError> {
        self.defs()
            .experiments
            .iter()
            .find(|e| e.id == id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    /// Why a running experiment does not serve, if it does not.
    pub(crate) fn problem(&self, id: &str) -> Option<String> {
        self.defs().broken.get(id).cloned()
    }

    /// Whether a running experiment holds model version `version` (its lists can be paged).
    pub(crate) fn holds_version(&self, version: &str) -> bool {
        self.defs().models.contains_key(version)
    }

    /// Creates and starts an experiment (see [`NewExperiment`] for the checks).
    pub(crate) fn create(
        &self,
        new: NewExperiment,
        known_placements: &[&str],
        default_placement: &str,
        registry: &Registry,
        who: &str,
        now: i64,
    ) -> Result<Experiment, EngineError> {
        let mut defs = self.defs_mut();
        if defs.experiments.iter().any(|e| e.id == new.id) {
            return Err(EngineError::ExperimentConflict(format!(
                "experiment `{}` exists already; experiment ids are never reused",
                new.id
            )));
        }
        let mut e = new.into_experiment(known_placements, default_placement, who, now)?;
        for v in &e.variants {
            if let Some(version) = &v.model_version {
                registry.check_servable(version)?;
            }
        }
        let running: Vec<&Experiment> = defs
            .experiments
            .iter()
            .filter(|x| x.status == ExperimentStatus::Running)
            .collect();
        if let Some(other) = running
            .iter()
            .find(|x| x.placement == e.placement && x.slot.namespace != e.slot.namespace)
        {
            return Err(EngineError::ExperimentConflict(format!(
                "experiment `{}` already runs on placement `{}` outside namespace `{}`; two \
                 experiments of one placement must share a namespace (so that no user is in \
                 both), or stop it first",
                other.id, e.placement, e.slot.namespace
            )));
        }
        // The first free range of the namespace that is wide enough.
        let width = e.slot.end - e.slot.start;
        let mut taken: Vec<(u32, u32)> = running
            .iter()
            .filter(|x| x.slot.namespace == e.slot.namespace)
            .map(|x| (x.slot.start, x.slot.end))
            .collect();
        taken.sort();
        let mut start = 0;
        for (s, end) in taken {
            if s >= start + width {
                break;
            }
            start = start.max(end);
        }
        if start + width > NAMESPACE_BUCKETS {
            return Err(EngineError::ExperimentConflict(format!(
                "namespace `{}` has no free {:.2}% of users left for traffic {}; stop one of its \
                 experiments or ask for less traffic",
                e.slot.namespace,
                width as f64 / 100.0,
                e.traffic
            )));
        }
        e.slot = NamespaceSlot {
            namespace: e.slot.namespace.clone(),
            start,
            end: start + width,
        };
        let specs: Vec<ExperimentSpec> = running
            .iter()
            .map(|x| x.spec())
            .chain(std::iter::once(e.spec()))
            .collect();
        Assigner::new(specs).map_err(|err| EngineError::ExperimentConflict(err.to_string()))?;
        load_models(&mut defs.models, registry, &e)?;
        files::write_def(&self.dir, &e)?;
        files::append_history(
            &self.dir,
            &HistoryRecord {
                at: now,
                experiment: e.id.clone(),
                action: "created".into(),
                by: who.to_string(),
                detail: serde_json::to_value(&e).unwrap_or_default(),
            },
        )?;
        defs.experiments.push(e.clone());
        Ok(e)
    }

    /// Stops a running experiment: it serves no more lists; its counts stay readable.
    pub(crate) fn stop(
        &self,
        id: &str,
        who: &str,
        reason: &str,
        now: i64,
    ) -> Result<Experiment, EngineError> {
        self.finish(id, who, now, |e| {
            e.status = ExperimentStatus::Stopped;
            Ok(serde_json::json!({ "reason": reason }))
        })
    }

    /// Records a ship (the caller promoted the model and set the placement first).
    pub(crate) fn record_ship(
        &self,
        id: &str,
        shipped: Shipped,
        now: i64,
    ) -> Result<Experiment, EngineError> {
        let who = shipped.by.clone();
        let placement_default = shipped.default_placement.clone();
        let mut defaults_changed = None;
        let e = self.finish(id, &who, now, |e| {
            e.status = ExperimentStatus::Shipped;
            if let Some(p) = &placement_default {
                defaults_changed = Some((e.placement.clone(), p.clone()));
            }
            e.shipped = Some(shipped.clone());
            Ok(serde_json::to_value(&shipped).unwrap_or_default())
        })?;
        if let Some((placement, to)) = defaults_changed {
            let mut defs = self.defs_mut();
            let mut defaults = defs.defaults.clone();
            defaults.insert(placement, to);
            files::write_defaults(&self.dir, &defaults)?;
            defs.defaults = defaults;
        }
        Ok(e)
    }

    /// Checks that `id` can still be shipped and names variant `variant`; returns both.
    pub(crate) fn shippable(
        &self,
        id: &str,
        variant: &str,
    ) -> Result<(Experiment, VariantDef), EngineError> {
        let e = self.get(id)?;
        if e.status == ExperimentStatus::Shipped {
            return Err(EngineError::ExperimentConflict(format!(
                "experiment `{id}` was shipped already"
            )));
        }
        let v = e
            .variants
            .iter()
            .find(|v| v.name == variant)
            .cloned()
            .ok_or_else(|| {
                let names: Vec<&str> = e.variants.iter().map(|v| v.name.as_str()).collect();
                EngineError::invalid(
                    "variant",
                    format!(
                        "experiment `{id}` has no variant `{variant}`; its variants: {}",
                        names.join(", ")
                    ),
                )
            })?;
        Ok((e, v))
    }

    fn finish(
        &self,
        id: &str,
        who: &str,
        now: i64,
        change: impl FnOnce(&mut Experiment) -> Result<serde_json::Value, EngineError>,
    ) -> Result<Experiment, EngineError> {
        let mut defs = self.defs_mut();
        let pos = defs
            .experiments
            .iter()
            .position(|e| e.id == id)
            .ok_or_else(|| not_found(id))?;
        let mut e = defs.experiments[pos].clone();
        if e.status == ExperimentStatus::Shipped {
            return Err(EngineError::ExperimentConflict(format!(
                "experiment `{id}` was shipped already"
            )));
        }
        let was_running = e.status == ExperimentStatus::Running;
        let detail = change(&mut e)?;
        if e.status == ExperimentStatus::Stopped && !was_running {
            return Err(EngineError::ExperimentConflict(format!(
                "experiment `{id}` is stopped already"
            )));
        }
        if e.stopped_at.is_none() {
            e.stopped_at = Some(now);
        }
        files::write_def(&self.dir, &e)?;
        let action = match e.status {
            ExperimentStatus::Shipped => "shipped",
            _ => "stopped",
        };
        files::append_history(
            &self.dir,
            &HistoryRecord {
                at: now,
                experiment: id.to_string(),
                action: action.into(),
                by: who.to_string(),
                detail,
            },
        )?;
        defs.experiments[pos] = e.clone();
        defs.broken.remove(id);
        // Free the model sets no running experiment needs any more.
        let needed: Vec<String> = defs
            .experiments
            .iter()
            .filter(|x| x.status == ExperimentStatus::Running)
            .flat_map(|x| x.variants.iter().filter_map(|v| v.model_version.clone()))
            .collect();
        defs.models.retain(|version, _| needed.contains(version));
        Ok(e)
    }

    /// The history of creations, stops and ships, oldest first.
    pub(crate) fn history(&self) -> Result<Vec<HistoryRecord>, EngineError> {
        files::read_history(&self.dir)
    }
}

fn load_models(
    models: &mut HashMap<String, Arc<ModelSet>>,
    registry: &Registry,
    e: &Experiment,
) -> Result<(), EngineError> {
    for v in &e.variants {
        if let Some(version) = &v.model_version {
            if models.contains_key(version) {
                continue;
            }
            let meta = registry.check_servable(version)?;
            let set = ModelSet::load(&registry.dir().join(&meta.file))?;
            models.insert(version.clone(), Arc::new(set));
        }
    }
    Ok(())
}

fn not_found(id: &str) -> EngineError {
    EngineError::NotFound {
        kind: "experiment",
        id: id.to_string(),
    }
}
