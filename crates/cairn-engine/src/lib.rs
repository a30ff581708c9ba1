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
mod error;
pub mod memory;
mod recommend;
mod store_scan;
mod training;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use arc_swap::ArcSwapOption;
use cairn_core::{Event, Item, StoredEvent, Timestamp, User, Validate, ValidationError};
use cairn_store::{DeletedUser, EmbeddedStore, Store, StoreStats};

use crate::access::KeyRing;

pub use access::{ApiKey, CreatedKey, Scope};

pub use cairn_models::Progress;
pub use cairn_pipeline::fit::TRAINING_STAGE;
pub use cairn_pipeline::ModelSet;
pub use cairn_store::AuditRecord;
pub use catalog::{Catalog, KnownNames};
pub use config::{Config, ConfigError};
pub use error::{EngineError, NameKind};
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

#[derive(Debug, Clone)]
pub struct TrainReport {
    pub version: String,
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    pub events_read: usize,
    pub seconds: f64,
    pub path: PathBuf,
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
    /// Computed lists kept for their later pages.
    lists: std::sync::Mutex<recommend::ListCache>,
    /// API keys by digest (see [`access`]).
    keys: RwLock<KeyRing>,
}

/// Largest page a listing returns.
pub const MAX_PAGE: usize = 1000;

impl Engine {
    /// Opens the embedded store in `config.data_dir` and the latest saved model, if any.
    pub fn open(config: Config) -> Result<Engine, EngineError> {
        config
            .validate()
            .map_err(|e| EngineError::Unprocessable(e.to_string()))?;
        let store = EmbeddedStore::open_with_cache(&config.data_dir, config.store.cache_bytes)?;
        Self::with_store(config, Arc::new(store))
    }

    /// An engine over any store backend.
    pub fn with_store(config: Config, store: Arc<dyn Store>) -> Result<Engine, EngineError> {
        let mut catalog = Catalog::default();
        store.scan_items(&mut |item| catalog.upsert(item))?;
        let models = match ModelSet::load_served(&config.data_dir.join("models")) {
            Ok(Some((m, skipped))) => {
                if let Some(e) = skipped {
                    tracing::warn!(
                        "the newest saved model cannot be served ({e}); serving the previous kept \
                         model {} until the next training",
                        m.version
                    );
                }
                Some(m)
            }
            Ok(None) => None,
            Err(e) => {
                let e = EngineError::from(e);
                tracing::warn!("no saved model can be served: {e}");
                None
            }
        };
        let keys = KeyRing::load(store.as_ref())?;
        let models = models.map(Arc::new);
        if let Some(m) = &models {
            catalog.bind(m.clone());
        }
        Ok(Engine {
            config,
            store,
            catalog: RwLock::new(catalog),
            models: ArcSwapOption::new(models),
            training: AtomicBool::new(false),
            training_status: Default::default(),
            lists: Default::default(),
            keys: RwLock::new(keys),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
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
        self.store.put_items(&items)?;
        for item in items {
            catalog.upsert(item);
        }
        Ok(())
    }

    pub fn get_item(&self, id: &str) -> Result<Item, EngineError> {
        self.catalog()
            .get(id)
            .map(|i| (**i).clone())
            .ok_or_else(|| not_found("item", id))
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
        Ok(self.store.put_users(&users)?)
    }

    pub fn get_user(&self, id: &str) -> Result<User, EngineError> {
        self.store
            .get_user(id)?
            .ok_or_else(|| not_found("user", id))
    }

    /// Erases the user: the user row and all their events. Not found only when neither existed.
    pub fn delete_user(&self, id: &str) -> Result<DeletedUser, EngineError> {
        let deleted = self.store.delete_user(id)?;
        if !deleted.user_existed && deleted.events_removed == 0 {
            return Err(not_found("user", id));
        }
        Ok(deleted)
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
        for (i, event) in events.iter().enumerate() {
            self.validate_event(event)
                .map_err(|e| e.within(&format!("events[{i}]")))?;
        }
        let outcome = self.store.append_events(&events, Timestamp::now())?;
        Ok(EventsOutcome {
            stored: outcome.stored.len(),
            duplicates: outcome.duplicates,
        })
    }

    /// The user's most recent events, oldest first.
    pub fn user_events(
        &self,
        user_id: &str,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, EngineError> {
        let limit = check_limit(limit)?;
        Ok(self.store.user_events(user_id, limit)?)
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
        let events = self.store.user_events_before(user_id, before, limit)?;
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

    /// [`Engine::train`], telling `progress` how far it got: a `reading events` stage, then the
    /// pipeline's stages (see [`cairn_pipeline::fit::TRAINING_STAGE`]). Meanwhile
    /// [`Engine::training_status`] says the same to anyone who asks.
    pub fn train_with_progress(
        &self,
        progress: &dyn cairn_models::Progress,
    ) -> Result<TrainReport, EngineError> {
        if self.training.swap(true, Ordering::AcqRel) {
            return Err(EngineError::TrainingBusy);
        }
        *self.training_status_slot() = Some(training::Tracker::new(cairn_core::now_unix()));
        let recorder = training::Recorder {
            slot: &self.training_status,
            observer: progress,
        };
        let result = self.train_inner(&recorder);
        *self.training_status_slot() = None;
        self.training.store(false, Ordering::Release);
        // The snapshot, the interaction matrices and the previous model set are freed by now;
        // without this the allocator keeps their pages (docs/reliability/memory.md).
        memory::release_free_memory();
        result
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
        progress: &dyn cairn_models::Progress,
    ) -> Result<TrainReport, EngineError> {
        let started = Instant::now();
        progress.update(training::READING_EVENTS, 0, 1);
        let mut snapshot =
            store_scan::read_snapshot(self.store.as_ref(), &self.config.event_types)?;
        progress.update(training::READING_EVENTS, 1, 1);
        let now = cairn_core::now_unix();
        snapshot.cap_reference_time(now);
        let catalog: Vec<Item> = self.catalog().iter().map(|i| (**i).clone()).collect();
        let models = self
            .config
            .fit_model_set_with_progress(&snapshot, &catalog, now, progress)?;
        let dir = self.config.data_dir.join("models");
        let path = models.save(&dir)?;
        ModelSet::prune(&dir, self.config.train.keep_models, &path);
        let report = TrainReport {
            version: models.version.clone(),
            users: models.n_users,
            items: models.items.len(),
            interactions: models.n_interactions,
            events_read: snapshot.events.len(),
            seconds: started.elapsed().as_secs_f64(),
            path,
        };
        let models = Arc::new(models);
        // Bound and swapped under one catalog lock, so no request sees the new set unbound.
        let mut catalog = self.catalog_mut();
        catalog.bind(models.clone());
        let version = models.version.clone();
        self.models.store(Some(models));
        drop(catalog);
        // The kept lists of the previous model can no longer be paged: free them now rather than
        // when newer lists push them out.
        self.lists().keep_only_version(&version);
        tracing::info!(
            version = %report.version,
            users = report.users,
            items = report.items,
            interactions = report.interactions,
            seconds = report.seconds,
            "trained"
        );
        Ok(report)
    }

    /// Whether there are events newer than the served model (or no model but some events).
    pub fn has_new_events(&self) -> Result<bool, EngineError> {
        let last_seq = self.stats()?.last_seq;
        Ok(match self.models.load().as_ref() {
            Some(m) => last_seq > m.last_seq,
            None => last_seq > 0,
        })
    }
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
        self.keys_mut()
            .create(self.store.as_ref(), name, scope, cairn_core::now_unix())
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
        self.keys().authenticate(token, cairn_core::now_unix())
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
