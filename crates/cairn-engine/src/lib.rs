//! The engine: the one place where storage, models and configuration meet. It offers the operations
//! the HTTP server and the CLI expose (catalog writes, events, recommendations, training) and knows
//! nothing of HTTP itself.
//!
//! Serving reads the user's recent history from the store on every request, so an acknowledged event
//! changes the next recommendation at once; the trained models are swapped atomically by training.

pub mod access;
pub mod backup;
mod catalog;
pub mod config;
pub mod drift;
mod error;
pub mod experiments;
mod gate;
#[cfg(test)]
mod gate_tests;
pub mod memory;
pub mod privacy;
mod recommend;
pub mod registry;
pub mod rejects;
pub mod shadow;
#[cfg(test)]
mod shadow_tests;
mod store_scan;
mod training;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwapOption;
use cairn_core::{Event, Item, StoredEvent, Timestamp, User, Validate, ValidationError};
use cairn_store::{DeletedUser, EmbeddedStore, Store, StoreStats};

use crate::access::KeyRing;
use crate::registry::{Alias, HistoryEntry, Registry, VersionMeta, VersionStatus, VersionView};

pub use access::{ApiKey, CreatedKey, RateLimit, Scope};

pub use cairn_models::Progress;
pub use cairn_pipeline::fit::TRAINING_STAGE;
pub use cairn_pipeline::ModelSet;
pub use cairn_store::{
    AuditRecord, CompactReport, Fault, FaultInjector, IoKind, StoreError, WriteFailure,
    ERASED_MARKER,
};
pub use catalog::{Catalog, KnownNames};
pub use config::StreamConfig;
pub use config::{is_postgres_url, Config, ConfigError, GateConfig, ModelsConfig, ServerConfig};
pub use config::{GuardrailConfig, NdcgRule, ShadowConfig};
pub use error::{EngineError, NameKind};
pub use experiments::{
    Experiment, ExperimentKind, ExperimentResults, ExperimentStatus, ExperimentTag,
    ImpressionsOutcome, NewExperiment, VariantDef,
};
pub use recommend::{
    CursorCacheStats, RecommendRequest, Recommendation, RecommendationSource, Recommendations,
    Warning, WarningCode,
};
pub use training::TrainingStatus;

/// Outcome of posting a batch of events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventsOutcome {
    pub stored: usize,
    pub duplicates: usize,
}

/// A page of a cursor-paginated listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A factor model trained outside Cairn, for [`Engine::import_model`].
pub struct ImportedModel<'a> {
    /// Builds the model over the training data's users and items (the indices of
    /// `snapshot.users` and `snapshot.items`; the gate's held-out events are already left out), or
    /// says what is wrong (an unknown id, a count that does not match).
    #[allow(clippy::type_complexity)]
    pub build:
        &'a (dyn Fn(&cairn_pipeline::Snapshot) -> Result<cairn_models::FittedModel, String> + Sync),
    /// Where it came from, recorded as `model.imported` in the version's metadata.
    pub source: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct TrainReport {
    pub version: String,
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    pub events_read: usize,
    pub seconds: f64,
    pub path: PathBuf,
    /// Whether the promotion gate passed the version; a refused one never serves.
    pub status: VersionStatus,
    /// The failed checks of a refused version.
    pub refused: Vec<String>,
    /// Whether the version serves now (it passed and `models.auto_promote` made it the champion).
    pub serving: bool,
}

/// Summary of the model being served.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub version: String,
    pub trained_at: i64,
    pub last_seq: u64,
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    /// The pipeline's learned ranker, when one was trained.
    pub ranker: Option<RankerInfo>,
}

/// How the learned ranker did on held-out users at training time.
#[derive(Debug, Clone, PartialEq)]
pub struct RankerInfo {
    pub train_users: usize,
    pub valid_users: usize,
    /// NDCG@10 of the validation lists ordered by the ranker (optimistic where the log was cut
    /// several times: see [`cairn_pipeline::model_set::TrainedRanker`])...
    pub valid_ndcg: f64,
    /// ...and by reciprocal-rank fusion of the retrievers.
    pub fusion_ndcg: f64,
}

pub struct Engine {
    config: Config,
    store: Arc<dyn Store>,
    catalog: RwLock<Catalog>,
    models: ArcSwapOption<ModelSet>,
    training: AtomicBool,
    /// How far the running training is; `None` when none runs.
    training_status: std::sync::Mutex<Option<training::Tracker>>,
    /// Trainings abandoned for running past `train.max_secs`, since this engine opened.
    trainings_abandoned: AtomicU64,
    /// Computed lists kept for their later pages.
    lists: std::sync::Mutex<recommend::ListCache>,
    /// API keys by digest (see [`access`]).
    keys: RwLock<KeyRing>,
    /// Erasures (and expiries) since this engine opened: each removed data that the served model
    /// and the store file's free pages may still hold.
    removals: AtomicU64,
    /// The value of `removals` when the served model's training read the log.
    removals_trained: AtomicU64,
    /// The value of `removals` at the last compaction of the store file.
    removals_compacted: AtomicU64,
    /// Events deleted by retention since this engine opened.
    events_expired: AtomicU64,
    /// Maps raw user ids to pseudonyms when `privacy.pseudonymize_user_ids` is on.
    pseudonymizer: Option<privacy::Pseudonymizer>,
    /// Versions, aliases and their history in `data_dir/models` (see [`registry`]).
    registry: Registry,
    /// Log position of the newest training's data, served or not (so that a refused version is
    /// not retrained on the same events).
    trained_seq: AtomicU64,
    /// Length and modification time of the alias history when last looked at.
    watched: Mutex<Option<(u64, SystemTime)>>,
    /// Whether this process held the trainer lease when last asked ([`Engine::take_trainer_lease`]).
    trainer: AtomicBool,
    /// Online experiments and their attribution (see [`experiments`]).
    experiments: experiments::Experiments,
    /// Shadow tests and guardrails (see [`shadow`]).
    monitor: shadow::Monitor,
    /// Drift windows against the champion's training data (see [`drift`]).
    drift: drift::DriftMonitor,
    /// Rejected input of `cairn import` and the bulk routes, in `data_dir` (see [`rejects`]).
    rejects: rejects::RejectLog,
    /// The one non-serving version the dashboard's preview keeps loaded
    /// ([`Engine::recommend_with_version`]).
    preview_model: Mutex<Option<Arc<ModelSet>>>,
    /// Serialises event batches while `quota.max_events` is set (count, then write).
    quota_lock: Mutex<()>,
}

/// Largest page a listing returns.
pub const MAX_PAGE: usize = 1000;

impl Engine {
    /// Opens the store (the embedded one in `config.data_dir`, or the PostgreSQL database of
    /// `store.url`, migrated to this version's schema) and the latest saved model, if any.
    pub fn open(config: Config) -> Result<Engine, EngineError> {
        config
            .validate()
            .map_err(|e| EngineError::Unprocessable(e.to_string()))?;
        let store: Arc<dyn Store> = match &config.store.url {
            Some(url) => Arc::new(cairn_store_postgres::PostgresStore::connect_in_schema(
                url,
                config.store.schema.as_deref(),
            )?),
            None => Arc::new(EmbeddedStore::open_with_cache(
                &config.data_dir,
                config.store.cache_bytes,
            )?),
        };
        Self::with_store(config, store)
    }

    /// Opens the engine of every app `config` declares (`[apps.NAME]`, see [`Config::app`]), each
    /// over its own store and models folder, in name order.
    pub fn open_apps(config: &Config) -> Result<Vec<(String, Engine)>, EngineError> {
        config
            .app_names()
            .into_iter()
            .map(|name| {
                let app = config
                    .app(&name)
                    .map_err(|e| EngineError::Unprocessable(e.to_string()))?;
                Ok((name, Engine::open(app)?))
            })
            .collect()
    }

    /// [`Engine::open`], with every write to the store file going through `faults`, which can make
    /// them fail as a full or broken disk would ([`FaultInjector::fail`]). For tests and fault
    /// drills of the whole server; never needed in production.
    pub fn open_with_faults(config: Config, faults: &FaultInjector) -> Result<Engine, EngineError> {
        config
            .validate()
            .map_err(|e| EngineError::Unprocessable(e.to_string()))?;
        let store = EmbeddedStore::open_with_faults(&config.data_dir, faults)?;
        Self::with_store(config, Arc::new(store))
    }

    /// An engine over any store backend.
    pub fn with_store(config: Config, store: Arc<dyn Store>) -> Result<Engine, EngineError> {
        let mut catalog = Catalog::default();
        store.scan_items(&mut |item| catalog.upsert(item))?;
        // Replicas share models through a folder (`models.dir`), not through the store: the
        // registry's files are already written whole (temp + fsync + rename; history lines appended
        // under a file lock), so a folder every replica mounts needs no new code path. The price:
        // that folder must be one POSIX filesystem with atomic rename and `flock` for all replicas.
        let registry = Registry::new(config.models_dir());
        let models = load_champion(&registry);
        let trained_seq = registry.newest_trained_seq();
        let keys = KeyRing::load(store.as_ref())?;
        let pseudonymizer = privacy::Pseudonymizer::from_config(&config.privacy)?;
        let experiments = experiments::Experiments::open(
            config.data_dir.join("experiments"),
            config.experiments.clone(),
            &registry,
        )?;
        let models = models.map(Arc::new);
        if let Some(m) = &models {
            catalog.bind(m.clone());
        }
        let reference = models
            .as_ref()
            .and_then(|m| drift::DriftReference::load(registry.dir(), &m.version));
        let drift = drift::DriftMonitor::new(config.drift.clone(), reference, drift::now_ms());
        Ok(Engine {
            store,
            catalog: RwLock::new(catalog),
            models: ArcSwapOption::new(models),
            training: AtomicBool::new(false),
            training_status: Default::default(),
            trainings_abandoned: AtomicU64::new(0),
            lists: Default::default(),
            keys: RwLock::new(keys),
            removals: AtomicU64::new(0),
            removals_trained: AtomicU64::new(0),
            removals_compacted: AtomicU64::new(0),
            events_expired: AtomicU64::new(0),
            pseudonymizer,
            registry,
            trained_seq: AtomicU64::new(trained_seq),
            watched: Mutex::new(None),
            trainer: AtomicBool::new(false),
            experiments,
            monitor: shadow::Monitor::new(&config.shadow, &config.models.guardrails),
            rejects: rejects::RejectLog::new(&config.data_dir),
            preview_model: Mutex::new(None),
            config,
            drift,
            quota_lock: Mutex::new(()),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The log of rejected input rows and batches (see [`rejects`]).
    pub fn rejects(&self) -> &rejects::RejectLog {
        &self.rejects
    }

    /// Records rejected rows or batches; a failure to write is logged, never the caller's error
    /// (the rejection itself was already answered).
    pub fn record_rejections(&self, entries: &[rejects::Rejection]) {
        if let Err(e) = self.rejects.append(entries) {
            tracing::warn!("cannot record {} rejected input(s): {e}", entries.len());
        }
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Why the store refuses writes now (a full or failing disk), or `None` when it takes them.
    /// Reads are served meanwhile.
    pub fn store_write_failure(&self) -> Option<WriteFailure> {
        self.store.write_failure()
    }

    /// While the store refuses writes, tries a small write now and takes writes again if it
    /// works; returns [`Engine::store_write_failure`] afterwards. Touches the disk: run it off
    /// the async workers.
    pub fn retry_store_writes(&self) -> Option<WriteFailure> {
        self.store.retry_writes()
    }

    fn catalog(&self) -> std::sync::RwLockReadGuard<'_, Catalog> {
        self.catalog.read().unwrap_or_else(|p| p.into_inner())
    }

    fn catalog_mut(&self) -> std::sync::RwLockWriteGuard<'_, Catalog> {
        self.catalog.write().unwrap_or_else(|p| p.into_inner())
    }

    // ----- catalog -----

    /// Validates every item, then stores all of them in one atomic write.
    pub fn put_items(&self, items: Vec<Item>) -> Result<(), EngineError> {
        for (i, item) in items.iter().enumerate() {
            item.validate()
                .map_err(|e| e.within(&format!("items[{i}]")))?;
        }
        // Hold the catalog lock across the write so readers never see the cache behind the store.
        let mut catalog = self.catalog_mut();
        let max_items = self.config.quota.max_items;
        if max_items > 0 {
            let new: std::collections::HashSet<&str> = items
                .iter()
                .map(|i| i.id.as_str())
                .filter(|id| !catalog.contains(id))
                .collect();
            let after = catalog.len() as u64 + new.len() as u64;
            if after > max_items {
                return Err(EngineError::QuotaExceeded(format!(
                    "this write would take the catalog to {after} items, over its quota of \
                     {max_items} (quota.max_items); nothing was stored. Delete items or raise the \
                     quota"
                )));
            }
        }
        self.store.put_items(&items)?;
        for item in items {
            catalog.upsert(item);
        }
        Ok(())
    }

    pub fn get_item(&self, id: &str) -> Result<Item, EngineError> {
        self.find_item_in_store(id)?;
        self.catalog()
            .get(id)
            .map(|i| (**i).clone())
            .ok_or_else(|| not_found("item", id))
    }

    /// Adds `id` to the in-memory catalog from the store when the catalog lacks it: over a store
    /// that replicas share, another replica may have created it since this one read the catalog.
    /// (Changes and deletions made through another replica reach this one when it restarts.)
    fn find_item_in_store(&self, id: &str) -> Result<(), EngineError> {
        if self.catalog().contains(id) {
            return Ok(());
        }
        let mut catalog = self.catalog_mut();
        if !catalog.contains(id) {
            if let Some(item) = self.store.get_item(id)? {
                catalog.upsert(item);
            }
        }
        Ok(())
    }

    pub fn delete_item(&self, id: &str) -> Result<(), EngineError> {
        let mut catalog = self.catalog_mut();
        if !self.store.delete_item(id)? {
            return Err(not_found("item", id));
        }
        catalog.remove(id);
        Ok(())
    }

    pub fn list_items(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Item>, EngineError> {
        let limit = check_limit(limit)?;
        let items = self.store.list_items(cursor, limit)?;
        Ok(page(items, limit, |i| i.id.clone()))
    }

    pub fn item_count(&self) -> usize {
        self.catalog().len()
    }

    pub fn put_users(&self, users: Vec<User>) -> Result<(), EngineError> {
        for (i, user) in users.iter().enumerate() {
            user.validate()
                .map_err(|e| e.within(&format!("users[{i}]")))?;
        }
        Ok(self.store.put_users(&self.key_users(users))?)
    }

    pub fn get_user(&self, id: &str) -> Result<User, EngineError> {
        let mut user = self
            .store
            .get_user(&self.user_key(id))?
            .ok_or_else(|| not_found("user", id))?;
        user.id = id.to_string();
        Ok(user)
    }

    /// Erases the user everywhere this engine keeps them: in the store the user row, their events
    /// with their idempotency records, their `user_items` pairs and their id in the audit log
    /// (see [`Store::delete_user`]); in memory the kept pages of their lists. The served model
    /// holds no user id (a user is scored from their own history, which is gone), and the next
    /// training, which an erasure makes due, leaves their rows out of the model. The bytes leave
    /// the store file at the next [`Engine::compact`]. Not found only when nothing existed.
    pub fn delete_user(&self, id: &str) -> Result<DeletedUser, EngineError> {
        let key = self.user_key(id);
        let deleted = self.store.delete_user(&key)?;
        self.forget_lists_of(&key);
        if !deleted.user_existed && deleted.events_removed == 0 {
            // Nothing stored; any audit entries naming the id were scrubbed all the same.
            return Err(not_found("user", id));
        }
        self.removals.fetch_add(1, Ordering::AcqRel);
        Ok(deleted)
    }

    /// Whether data was erased or expired since the last compaction of the store file (its bytes
    /// may still sit in the file's free pages).
    pub fn compaction_due(&self) -> bool {
        self.removals.load(Ordering::Acquire) > self.removals_compacted.load(Ordering::Acquire)
    }

    pub fn list_users(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<User>, EngineError> {
        let limit = check_limit(limit)?;
        let users = self.store.list_users(cursor, limit)?;
        Ok(page(users, limit, |u| u.id.clone()))
    }

    // ----- events -----

    /// Checks one event against the domain rules and this engine's event types and catalog.
    pub fn validate_event(&self, event: &Event) -> Result<(), ValidationError> {
        event.validate()?;
        self.config
            .event_types
            .check(&event.event_type, event.value)?;
        if let Some(t) = event.timestamp {
            let skew = self.config.ingest.max_future_secs;
            let latest = cairn_core::now_unix().saturating_add_unsigned(skew);
            if t.0 > latest {
                return Err(ValidationError::new(
                    "timestamp",
                    format!(
                        "{} is ahead of this server's clock by more than {skew} s \
                         (ingest.max_future_secs); send the time the event happened, or leave \
                         the timestamp out to use the server's",
                        t.to_rfc3339()
                    ),
                ));
            }
        }
        if !self.catalog().contains(&event.item_id) {
            return Err(ValidationError::new(
                "item_id",
                format!(
                    "item `{}` does not exist; create it before posting events about it",
                    event.item_id
                ),
            ));
        }
        Ok(())
    }

    /// Validates every event, then appends all of them in one atomic, durable write.
    pub fn add_events(&self, events: Vec<Event>) -> Result<EventsOutcome, EngineError> {
        for event in &events {
            self.find_item_in_store(&event.item_id)?;
        }
        for (i, event) in events.iter().enumerate() {
            self.validate_event(event)
                .map_err(|e| e.within(&format!("events[{i}]")))?;
        }
        let mut events = events;
        if self.pseudonymizer.is_some() {
            for event in &mut events {
                event.user_id = self.user_key(&event.user_id).into_owned();
            }
        }
        // Held while the log is counted and written, so two batches cannot both pass the cap.
        let _quota = (self.config.quota.max_events > 0)
            .then(|| self.check_event_quota(events.len()))
            .transpose()?;
        let outcome = self.store.append_events(&events, Timestamp::now())?;
        // Clicks and conversions count for the experiment lists they follow from.
        self.attribute_events(&events)?;
        self.observe_events(&events);
        self.record_drift_events(&events, outcome.stored.len());
        Ok(EventsOutcome {
            stored: outcome.stored.len(),
            duplicates: outcome.duplicates,
        })
    }

    /// Refuses a batch of `batch` events that could take the log past `quota.max_events`; else
    /// returns the guard that keeps other batches out until this one is written.
    fn check_event_quota(
        &self,
        batch: usize,
    ) -> Result<std::sync::MutexGuard<'_, ()>, EngineError> {
        let guard = self.quota_lock.lock().unwrap_or_else(|p| p.into_inner());
        let max = self.config.quota.max_events;
        let stored = self.store.stats()?.events;
        if stored + batch as u64 > max {
            return Err(EngineError::QuotaExceeded(format!(
                "the event log holds {stored} events and this batch has {batch}: over its quota \
                 of {max} (quota.max_events); nothing was stored. Delete old events (retention, \
                 erasure) or raise the quota"
            )));
        }
        Ok(guard)
    }

    /// The user's most recent events, oldest first.
    pub fn user_events(
        &self,
        user_id: &str,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, EngineError> {
        let limit = check_limit(limit)?;
        let events = self.store.user_events(&self.user_key(user_id), limit)?;
        Ok(self.unkey_events(user_id, events))
    }

    /// A page of the user's whole history, newest first: `cursor` is the `next_cursor` of the
    /// previous page (the log position of its last event), absent for the newest events.
    pub fn user_events_page(
        &self,
        user_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<StoredEvent>, EngineError> {
        let limit = check_limit(limit)?;
        let before = match cursor {
            None => None,
            Some(c) => Some(c.parse::<u64>().ok().filter(|&seq| seq > 0).ok_or_else(|| {
                EngineError::invalid(
                    "cursor",
                    format!(
                        "`{c}` is not an events cursor; pass next_cursor from the previous page unchanged"
                    ),
                )
            })?),
        };
        let events = self
            .store
            .user_events_before(&self.user_key(user_id), before, limit)?;
        let events = self.unkey_events(user_id, events);
        Ok(page(events, limit, |e| e.seq.to_string()))
    }

    pub fn stats(&self) -> Result<StoreStats, EngineError> {
        Ok(self.store.stats()?)
    }

    // ----- models -----

    pub fn model_info(&self) -> Option<ModelInfo> {
        self.models.load_full().map(|m| ModelInfo {
            version: m.version.clone(),
            trained_at: m.trained_at,
            last_seq: m.last_seq,
            users: m.n_users,
            items: m.items.len(),
            interactions: m.n_interactions,
            ranker: m.ranker.as_ref().map(|r| RankerInfo {
                train_users: r.train_groups,
                valid_users: r.valid_groups,
                valid_ndcg: r.valid_ndcg,
                fusion_ndcg: r.fusion_ndcg,
            }),
        })
    }

    pub(crate) fn models(&self) -> Option<Arc<ModelSet>> {
        self.models.load_full()
    }

    /// Reads all events, fits the models, saves them, and swaps them in for serving. Requests keep
    /// being served by the previous models until the swap. Only one training runs at a time.
    pub fn train(&self) -> Result<TrainReport, EngineError> {
        self.train_with_progress(&cairn_models::Silent)
    }

    /// [`Engine::train`], recording `who` started it (`cli`, `scheduler`, an API key) in the
    /// version's metadata and in the alias history when it is promoted.
    pub fn train_by(
        &self,
        who: &str,
        progress: &dyn cairn_models::Progress,
    ) -> Result<TrainReport, EngineError> {
        self.train_guarded(who, progress, &|_| {}, None)
    }

    /// A training whose served factor model was trained outside Cairn (`cairn import factors`):
    /// everything else is fitted as [`Engine::train`] fits it, the version is written to the
    /// registry with `model.source` in its metadata, and it goes through the same promotion gate.
    pub fn import_model(
        &self,
        who: &str,
        progress: &dyn cairn_models::Progress,
        model: &ImportedModel<'_>,
    ) -> Result<TrainReport, EngineError> {
        self.train_guarded(who, progress, &|_| {}, Some(model))
    }

    /// A training whose fitted model set `tamper` changes before the gate sees it: how tests build
    /// the broken models the gate must refuse (NaN scores, an empty model, random lists).
    #[doc(hidden)]
    pub fn train_tampered(
        &self,
        who: &str,
        tamper: &(dyn Fn(&mut ModelSet) + Sync),
    ) -> Result<TrainReport, EngineError> {
        self.train_guarded(who, &cairn_models::Silent, tamper, None)
    }

    /// [`Engine::train`], telling `progress` how far it got: a `reading events` stage, then the
    /// pipeline's stages (see [`cairn_pipeline::fit::TRAINING_STAGE`]). Meanwhile
    /// [`Engine::training_status`] says the same to anyone who asks.
    pub fn train_with_progress(
        &self,
        progress: &dyn cairn_models::Progress,
    ) -> Result<TrainReport, EngineError> {
        self.train_guarded("engine", progress, &|_| {}, None)
    }

    fn train_guarded(
        &self,
        who: &str,
        progress: &dyn cairn_models::Progress,
        tamper: &(dyn Fn(&mut ModelSet) + Sync),
        imported: Option<&ImportedModel<'_>>,
    ) -> Result<TrainReport, EngineError> {
        // Over a shared store, only the replica holding the trainer lease trains (docs/POSTGRES.md).
        if !self.take_trainer_lease()? {
            return Err(EngineError::TrainerElsewhere);
        }
        if self.training.swap(true, Ordering::AcqRel) {
            return Err(EngineError::TrainingBusy);
        }
        *self.training_status_slot() = Some(training::Tracker::new(cairn_core::now_unix()));
        let limit_secs = self.config.train.max_secs;
        let recorder = training::Recorder {
            slot: &self.training_status,
            observer: progress,
            deadline: (limit_secs > 0)
                .then(|| Instant::now() + std::time::Duration::from_secs(limit_secs)),
        };
        // A thread of its own that ends with the training: faer's matrix products keep a packing
        // buffer of twice the L3 cache (64 MiB on a 32 MiB L3) in each thread that calls them, for
        // the thread's life. On tokio's blocking threads every training left one on whichever
        // thread ran it (soak run 9: the live heap +64 MiB every training or two, 115 to 700 MiB).
        // A thread per training costs tens of microseconds; if none can be started, it runs here.
        let run = || {
            training::abandon_past_deadline(limit_secs, || {
                self.train_inner(&recorder, who, tamper, imported)
            })
        };
        let result = std::thread::scope(|scope| {
            let job = &run;
            match std::thread::Builder::new()
                .name("cairn-train".into())
                .spawn_scoped(scope, job)
            {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start a training thread; training here");
                    run()
                }
            }
        });
        if let Err(e @ EngineError::TrainingTimedOut { .. }) = &result {
            self.trainings_abandoned.fetch_add(1, Ordering::Relaxed);
            tracing::error!("{e}");
        }
        *self.training_status_slot() = None;
        self.training.store(false, Ordering::Release);
        // The snapshot, the interaction matrices and the previous model set are freed by now;
        // without this the allocator keeps their pages (docs/reliability/memory.md).
        memory::release_free_memory();
        result
    }

    /// Trainings abandoned for running past `train.max_secs` since this engine opened.
    pub fn trainings_abandoned(&self) -> u64 {
        self.trainings_abandoned.load(Ordering::Relaxed)
    }

    /// How far the running training is, or `None` when no training runs.
    pub fn training_status(&self) -> Option<TrainingStatus> {
        self.training_status_slot().as_ref().map(|t| t.status())
    }

    fn training_status_slot(&self) -> std::sync::MutexGuard<'_, Option<training::Tracker>> {
        self.training_status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn train_inner(
        &self,
        progress: &training::Recorder<'_>,
        who: &str,
        tamper: &(dyn Fn(&mut ModelSet) + Sync),
        imported: Option<&ImportedModel<'_>>,
    ) -> Result<TrainReport, EngineError> {
        let started = Instant::now();
        // The gate compares with the champion: the one the shared history names now, should
        // another replica have promoted one since this one last looked.
        if let Err(e) = self.sync_champion() {
            tracing::warn!(error = %e, "cannot serve the champion the model history names");
        }
        // Read before the log: an erasure while this training reads leaves it due again.
        let removals = self.removals.load(Ordering::Acquire);
        progress.update(training::READING_EVENTS, 0, 1);
        let mut reference = drift::ReferenceBuilder::default();
        let (mut full, data) = store_scan::read_snapshot_with_reference(
            self.store.as_ref(),
            &self.config.event_types,
            Some(&mut reference),
        )?;
        progress.update(training::READING_EVENTS, 1, 1);
        let now = cairn_core::now_unix();
        full.cap_reference_time(now);
        let models_config = &self.config.models;
        let (mut snapshot, holdout) = gate::split(&full, models_config);
        drop(full);
        snapshot.cap_reference_time(now);
        let catalog: Vec<Item> = self.catalog().iter().map(|i| (**i).clone()).collect();
        let fit_started = Instant::now();
        let mut models = match imported {
            None => self
                .config
                .fit_model_set_with_progress(&snapshot, &catalog, now, progress)?,
            Some(imported) => {
                let main = (imported.build)(&snapshot).map_err(EngineError::Unprocessable)?;
                ModelSet::fit_with_main(
                    &snapshot,
                    &catalog,
                    &self.config.train,
                    &self.config.serve.history(),
                    self.config.default_placement()?,
                    now,
                    progress,
                    main,
                )?
            }
        };
        let fit_seconds = fit_started.elapsed().as_secs_f64();
        // The last stage may have run long: past the limit, nothing is saved.
        progress.check_deadline();
        // Versions are never reused: a second training in the same second on the same log gets
        // a suffix.
        let base = models.version.clone();
        let mut n = 2;
        while self.registry.exists(&models.version) {
            models.version = format!("{base}-{n}");
            n += 1;
        }
        tamper(&mut models);
        let path = models.save_file(self.registry.dir())?;
        let models = Arc::new(models);
        let artifact_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);

        // The gate: the new version and the champion on the same slice.
        let placement = self.config.default_placement()?;
        let history = self.config.serve.history();
        let measure = |m: &ModelSet| {
            gate::measure(
                m,
                &holdout,
                &models_config.gate,
                placement,
                &history,
                catalog.len(),
            )
        };
        let measured = measure(models.as_ref());
        // The served model is the champion.
        let champion = self.models();
        let champion_measured = champion
            .as_ref()
            .map(|c| (c.version.clone(), measure(c.as_ref())));
        let report = gate::decide(
            &measured,
            champion_measured.as_ref().map(|(v, m)| (v.as_str(), m)),
            &models_config.gate,
        );
        let status = if report.passed {
            VersionStatus::Passed
        } else {
            VersionStatus::Refused
        };
        let refused = report.reasons();
        let meta = VersionMeta {
            version: models.version.clone(),
            status,
            created_at: now,
            file: format!("model-{}.cairn", models.version),
            artifact_bytes,
            code_version: registry::code_version(),
            fit_seconds,
            trained_by: who.to_string(),
            data: Some(data),
            holdout: holdout.info.clone(),
            model: serde_json::json!({
                "train": self.config.train,
                "default_placement": self.config.serve.default_placement,
                "ranker": models.ranker.as_ref().map(|r| serde_json::json!({
                    "train_users": r.train_groups,
                    "valid_users": r.valid_groups,
                    "valid_ndcg": r.valid_ndcg,
                    "fusion_ndcg": r.fusion_ndcg,
                })),
                // The ranker's guard: its NDCG@10 and the best retriever's on the newest slice of
                // the training log, the paired difference, and the retriever serving instead.
                "guard": models.guard,
                "imported": imported.map(|i| &i.source),
            }),
            metrics: Some(measured.metrics),
            gate: Some(report),
        };
        self.registry.write_meta(&meta)?;
        let reference = reference.finish(&models.version, self.config.drift.top_items);
        if let Err(e) = reference.save(self.registry.dir()) {
            tracing::warn!(version = %models.version, error = %e, "cannot save the drift reference");
        }
        self.trained_seq.store(snapshot.last_seq, Ordering::Release);
        let mut serving = false;
        if status == VersionStatus::Passed {
            let alias = if models_config.auto_promote {
                Alias::Champion
            } else {
                Alias::Challenger
            };
            self.registry.promote(
                &models.version,
                alias,
                &format!("training ({who})"),
                "passed the promotion gate after training",
            )?;
            if alias == Alias::Champion {
                ModelSet::point_latest(&path)?;
                self.serve_models(Arc::clone(&models));
                self.watch_promotion(&models.version);
                serving = true;
            }
        } else {
            tracing::warn!(
                version = %models.version,
                reasons = %refused.join("; "),
                "the promotion gate refused the new version; it will not serve"
            );
        }
        if let Ok(state) = self.registry.state() {
            self.registry
                .prune(self.config.train.keep_models, &state.protected());
        }
        let report = TrainReport {
            version: models.version.clone(),
            users: models.n_users,
            items: models.items.len(),
            interactions: models.n_interactions,
            events_read: snapshot.events.len(),
            seconds: started.elapsed().as_secs_f64(),
            path,
            status,
            refused,
            serving,
        };
        self.removals_trained.fetch_max(removals, Ordering::AcqRel);
        tracing::info!(
            version = %report.version,
            users = report.users,
            items = report.items,
            interactions = report.interactions,
            seconds = report.seconds,
            status = ?report.status,
            serving = report.serving,
            "trained"
        );
        Ok(report)
    }

    /// Swaps `models` in for serving, bound to the catalog under one lock so no request sees the
    /// new set unbound.
    fn serve_models(&self, models: Arc<ModelSet>) {
        let mut catalog = self.catalog_mut();
        catalog.bind(models.clone());
        let version = models.version.clone();
        self.models.store(Some(models));
        let items = catalog.len();
        drop(catalog);
        let reference = drift::DriftReference::load(self.registry.dir(), &version);
        self.drift.set_reference(reference, drift::now_ms(), items);
        // The kept lists of the previous model can no longer be paged: free them now rather than
        // when newer lists push them out.
        self.lists().keep_only_version(&version);
    }

    /// Takes, or keeps, the trainer lease of the store ([`Store::trainer_lease`]): always granted
    /// on the embedded store; over PostgreSQL, held by one replica at a time. Every training asks
    /// first; `cairn serve` also asks at every tick of its champion watcher, so that a replica
    /// takes the lease over soon after its holder died.
    pub fn take_trainer_lease(&self) -> Result<bool, EngineError> {
        let held = match self.store.trainer_lease() {
            Ok(held) => held,
            Err(e) => {
                self.trainer.store(false, Ordering::Release);
                return Err(e.into());
            }
        };
        let before = self.trainer.swap(held, Ordering::AcqRel);
        if held && !before {
            // Another replica may have trained since this one opened: what it trained on (its
            // versions' metadata, in the shared models folder) is not due again.
            self.trained_seq
                .fetch_max(self.registry.newest_trained_seq(), Ordering::AcqRel);
            if self.config.store.url.is_some() {
                tracing::info!("this replica holds the trainer lease: it runs the trainings");
            }
        } else if !held && before {
            tracing::warn!("this replica lost the trainer lease: another one trains now");
        }
        Ok(held)
    }

    /// Whether this process held the trainer lease when last asked.
    pub fn holds_trainer_lease(&self) -> bool {
        self.trainer.load(Ordering::Acquire)
    }

    /// Whether there are events newer than the served model (or no model but some events), or
    /// data the served model learnt from was erased or expired since its training.
    pub fn has_new_events(&self) -> Result<bool, EngineError> {
        let last_seq = self.stats()?.last_seq;
        let trained = self.trained_seq.load(Ordering::Acquire);
        Ok(match self.models.load().as_ref() {
            Some(m) => {
                last_seq > m.last_seq.max(trained)
                    || self.removals.load(Ordering::Acquire)
                        > self.removals_trained.load(Ordering::Acquire)
            }
            None => last_seq > trained,
        })
    }
}

/// The model registry (see [`registry`]): versions, the `champion` and `challenger` aliases, and
/// their history.
impl Engine {
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every recorded version with its aliases, oldest first.
    pub fn model_versions(&self) -> Result<Vec<VersionView>, EngineError> {
        self.registry.list()
    }

    pub fn model_version(&self, version: &str) -> Result<VersionView, EngineError> {
        self.registry.show(version)
    }

    /// The alias history, oldest first.
    pub fn model_history(&self) -> Result<Vec<HistoryEntry>, EngineError> {
        self.registry.history()
    }

    /// Moves `alias` to `version` (recorded with `who` and `reason`); a new champion serves from
    /// the moment this returns.
    pub fn promote_model(
        &self,
        version: &str,
        alias: Alias,
        who: &str,
        reason: &str,
    ) -> Result<HistoryEntry, EngineError> {
        let meta = self.registry.check_servable(version)?;
        let loaded = match alias {
            Alias::Champion => Some(self.load_version(&meta)?),
            Alias::Challenger => None,
        };
        let entry = self.registry.promote(version, alias, who, reason)?;
        if let Some(models) = loaded {
            self.swap_champion(models)?;
            self.watch_promotion(version);
        }
        Ok(entry)
    }

    /// Moves the champion back to the one before it; it serves from the moment this returns.
    pub fn rollback_model(&self, who: &str, reason: &str) -> Result<HistoryEntry, EngineError> {
        self.rollback_model_from(None, who, reason)
    }

    /// [`Engine::rollback_model`], only while `from` (when given) is still the champion.
    pub(crate) fn rollback_model_from(
        &self,
        from: Option<&str>,
        who: &str,
        reason: &str,
    ) -> Result<HistoryEntry, EngineError> {
        let entry = self.registry.rollback_from(from, who, reason)?;
        let meta = self.registry.check_servable(&entry.version)?;
        self.swap_champion(self.load_version(&meta)?)?;
        Ok(entry)
    }

    /// Serves the champion the alias history names, when another process (`cairn models promote`)
    /// moved it; a no-op while the history file is unchanged. Returns the version swapped in.
    pub fn sync_champion(&self) -> Result<Option<String>, EngineError> {
        let path = self.registry.history_path();
        let stamp = std::fs::metadata(&path)
            .ok()
            .and_then(|m| Some((m.len(), m.modified().ok()?)));
        {
            let mut watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
            if stamp.is_none() || *watched == stamp {
                return Ok(None);
            }
            *watched = stamp;
        }
        let state = self.registry.state()?;
        let Some(champion) = state.champion() else {
            return Ok(None);
        };
        if self.models().is_some_and(|m| m.version == champion) {
            return Ok(None);
        }
        let meta = self.registry.check_servable(champion)?;
        self.swap_champion(self.load_version(&meta)?)?;
        if shadow::promoted_last(&self.registry.history()?, champion) {
            self.watch_promotion(champion);
        }
        tracing::info!(
            version = champion,
            "the champion changed in the alias history; serving it"
        );
        Ok(Some(champion.to_string()))
    }

    fn load_version(&self, meta: &VersionMeta) -> Result<Arc<ModelSet>, EngineError> {
        Ok(Arc::new(ModelSet::load(
            &self.registry.dir().join(&meta.file),
        )?))
    }

    fn swap_champion(&self, models: Arc<ModelSet>) -> Result<(), EngineError> {
        let path = self.registry.model_path(&models.version);
        self.serve_models(models);
        ModelSet::point_latest(&path)?;
        Ok(())
    }
}

/// The model to serve at start: the champion the alias history names (or, if its file cannot be
/// read, the newest earlier champion that can). In a models folder from before the registry (no
/// recorded version), the model `LATEST` points at, adopted as the first champion.
fn load_champion(registry: &Registry) -> Option<ModelSet> {
    let state = match registry.state() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("the model alias history cannot be read ({e}); serving no model");
            return None;
        }
    };
    for version in state.champions.iter().rev() {
        match ModelSet::load(&registry.model_path(version)) {
            Ok(m) => {
                if Some(version.as_str()) != state.champion() {
                    tracing::warn!(
                        "the champion cannot be loaded; serving the earlier champion {version} \
                         until an operator promotes a version"
                    );
                }
                return Some(m);
            }
            Err(e) => tracing::warn!("champion {version} cannot be loaded: {e}"),
        }
    }
    if !state.champions.is_empty() || !registry.metas().unwrap_or_default().is_empty() {
        return None;
    }
    let m = match ModelSet::load_served(registry.dir()) {
        Ok(Some((m, skipped))) => {
            if let Some(e) = skipped {
                tracing::warn!(
                    "the newest saved model cannot be served ({e}); serving the previous kept \
                     model {} until the next training",
                    m.version
                );
            }
            m
        }
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!("no saved model can be served: {}", EngineError::from(e));
            return None;
        }
    };
    let file = format!("model-{}.cairn", m.version);
    let meta = VersionMeta {
        version: m.version.clone(),
        status: VersionStatus::Adopted,
        created_at: m.trained_at,
        artifact_bytes: std::fs::metadata(registry.dir().join(&file)).map_or(0, |f| f.len()),
        file,
        code_version: "unknown (trained before the registry)".into(),
        fit_seconds: 0.0,
        trained_by: "unknown".into(),
        data: None,
        holdout: None,
        model: serde_json::Value::Null,
        metrics: None,
        gate: None,
    };
    let adopted = registry.write_meta(&meta).and_then(|()| {
        registry.promote(
            &m.version,
            Alias::Champion,
            "system",
            "adopted: the model served before the registry existed",
        )
    });
    if let Err(e) = adopted {
        tracing::warn!(
            "cannot record the served model {} in the registry: {e}",
            m.version
        );
    }
    Some(m)
}

/// API keys and the audit log (see [`access`]).
impl Engine {
    fn keys(&self) -> std::sync::RwLockReadGuard<'_, KeyRing> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    fn keys_mut(&self) -> std::sync::RwLockWriteGuard<'_, KeyRing> {
        self.keys.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether any API key exists (without one, the server runs open on loopback only).
    pub fn has_keys(&self) -> bool {
        !self.keys().is_empty()
    }

    /// Creates a key and stores its digest; the returned token is never available again.
    pub fn create_key(&self, name: &str, scope: Scope) -> Result<CreatedKey, EngineError> {
        self.create_key_limited(name, scope, None)
    }

    /// Creates a key with its own rate limit (`None`: the configured default applies to it).
    pub fn create_key_limited(
        &self,
        name: &str,
        scope: Scope,
        rate_limit: Option<access::RateLimit>,
    ) -> Result<CreatedKey, EngineError> {
        self.keys_mut().create(
            self.store.as_ref(),
            name,
            scope,
            rate_limit,
            cairn_core::now_unix(),
        )
    }

    /// Every key (never a token or digest), oldest first.
    pub fn list_keys(&self) -> Vec<ApiKey> {
        self.keys().list()
    }

    /// Deletes a key: requests with its token fail from now on.
    pub fn revoke_key(&self, id: &str) -> Result<ApiKey, EngineError> {
        self.keys_mut()
            .revoke(self.store.as_ref(), id)?
            .ok_or_else(|| not_found("key", id))
    }

    /// The key a bearer token belongs to, if any.
    pub fn authenticate(&self, token: &str) -> Option<ApiKey> {
        self.keys()
            .authenticate(token, cairn_core::now_unix(), false)
            .map(|(key, _)| key)
    }

    /// The key a bearer token belongs to, if any, and whether this use should be written to the
    /// store now with [`record_key_use`](Engine::record_key_use): true for the first use at least
    /// a minute after the last written one, so a key costs at most one store write a minute.
    pub fn authenticate_use(&self, token: &str) -> Option<(ApiKey, bool)> {
        self.keys()
            .authenticate(token, cairn_core::now_unix(), true)
    }

    /// Writes key `id`'s last use, `at` (unix seconds), to the store; nothing for a revoked key.
    pub fn record_key_use(&self, id: &str, at: i64) -> Result<(), EngineError> {
        Ok(self.keys().write_use(self.store.as_ref(), id, at)?)
    }

    /// Appends an administrative action to the audit log; returns its position.
    pub fn record_audit(&self, record: AuditRecord) -> Result<u64, EngineError> {
        Ok(self.store.append_audit(&record)?)
    }

    /// The audit log, newest first; `cursor` is the previous page's `next_cursor`.
    pub fn audit(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<AuditRecord>, EngineError> {
        let limit = check_limit(limit)?;
        let before = cursor
            .map(|c| {
                c.parse::<u64>().map_err(|_| {
                    EngineError::invalid(
                        "cursor",
                        format!(
                            "`{c}` is not a cursor of this list; pass a `next_cursor` it returned"
                        ),
                    )
                })
            })
            .transpose()?;
        let records = self.store.list_audit(before, limit)?;
        Ok(page(records, limit, |r| r.seq.to_string()))
    }
}

fn not_found(kind: &'static str, id: &str) -> EngineError {
    EngineError::NotFound {
        kind,
        id: id.to_string(),
    }
}

fn check_limit(limit: usize) -> Result<usize, EngineError> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(EngineError::invalid(
            "limit",
            format!("{limit} is out of range; use 1 to {MAX_PAGE}"),
        ));
    }
    Ok(limit)
}

fn page<T>(items: Vec<T>, limit: usize, key: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = (items.len() == limit)
        .then(|| items.last().map(&key))
        .flatten();
    Page { items, next_cursor }
}
