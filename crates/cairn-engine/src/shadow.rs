//! Shadow tests and live guardrails: what the engine learns from live traffic about a version
//! other than the one that answered.
//!
//! **Shadow tests** (`[shadow]`). After a first-page recommendation list is computed, a hash-sampled
//! share of users' requests are offered to a bounded queue ([`std::sync::mpsc::sync_channel`],
//! `try_send`: when it is full the shadow work is dropped and counted, the response never waits). A
//! worker thread, not the request's, takes each request, lets the challenger (the `challenger` alias
//! or a configured version) compute its list for the same user, placement, `k`, context and
//! filters, and compares the two first pages: overlap@k, rank-biased overlap and Kendall's τ on the
//! shared items (`cairn_eval::metrics::agreement`), the challenger's latency and errors. The items
//! the challenger would have added (in its list, not in the served one) and removed (the reverse)
//! wait, per user, for `shadow.window_secs`: events of the user on them count as engagement the
//! challenger would have won or lost. That state is bounded by `shadow.max_pending_users`.
//!
//! **Guardrails** (`[models.guardrails]`). After a promotion, the new champion's live error rate
//! (server errors of recommendation requests) and empty-list rate (first pages without filter or
//! category that came back empty) are counted for `window_secs`; once `min_requests` were served,
//! a rate above its threshold rolls the champion back through the registry, recorded with
//! `who = guardrail` and the rates as the reason.
//!
//! Both run on one monitor thread ([`Engine::start_monitor`]), which the server starts; without it
//! the queue fills and drops (counted), and [`Engine::run_shadow_queue`] drains it on the caller's
//! thread (tests).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use cairn_core::Event;
use cairn_eval::metrics::{kendall_tau_shared, overlap_at_k, rbo_ext};
use cairn_pipeline::ModelSet;

use crate::config::{GuardrailConfig, ShadowConfig};
use crate::recommend::Routing;
use crate::registry::Action;
use crate::{Engine, EngineError, RecommendRequest, Recommendations};

/// Upper bounds of the shadow latency histogram, in seconds.
pub const LATENCY_BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Challenger versions whose figures are kept at most (the oldest are forgotten).
const MAX_VERSIONS: usize = 8;

/// How long a resolved challenger is used before the alias is read again.
const RESOLVE_EVERY: Duration = Duration::from_secs(1);

/// Whether `user` is in the sampled share: FNV-1a of the salt and the id, as a number in [0, 1).
pub fn sampled(salt: &str, user: &str, share: f64) -> bool {
    if share >= 1.0 {
        return true;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in salt.bytes().chain([0xff]).chain(user.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ((h >> 11) as f64 / (1u64 << 53) as f64) < share
}

/// A running mean and variance (Welford), for a mean with its normal 95% interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Moments {
    n: u64,
    mean: f64,
    m2: f64,
    sum: f64,
}

impl Moments {
    fn add(&mut self, x: f64) {
        self.n += 1;
        self.sum += x;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    fn summary(&self) -> MeanSummary {
        let n = self.n;
        if n == 0 {
            return MeanSummary {
                n,
                sum: 0.0,
                mean: f64::NAN,
                ci_low: f64::NAN,
                ci_high: f64::NAN,
            };
        }
        let half = if n > 1 {
            1.96 * (self.m2 / (n - 1) as f64 / n as f64).sqrt()
        } else {
            f64::NAN
        };
        MeanSummary {
            n,
            sum: self.sum,
            mean: self.mean,
            ci_low: self.mean - half,
            ci_high: self.mean + half,
        }
    }
}

/// A mean over comparisons, with its normal-approximation 95% interval (NaN where undefined).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanSummary {
    pub n: u64,
    pub sum: f64,
    pub mean: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// What the shadow tests measured of one challenger version.
#[derive(Debug, Clone, PartialEq)]
pub struct ChallengerReport {
    pub version: String,
    /// Requests the challenger scored and compared.
    pub scored: u64,
    /// Requests the challenger failed to score.
    pub errors: u64,
    /// overlap@k, rank-biased overlap and Kendall's τ (shared items) with the served first page.
    pub overlap: MeanSummary,
    pub rbo: MeanSummary,
    pub tau: MeanSummary,
    /// The challenger's time to compute a list, in seconds.
    pub latency: MeanSummary,
    /// Counts per [`LATENCY_BUCKETS`] bound (not cumulative), the last one for longer times.
    pub latency_buckets: Vec<u64>,
    /// Items the challenger would have added, and of those the ones the user then engaged with
    /// (an event within the window).
    pub added_items: u64,
    pub added_engaged: u64,
    /// Items the challenger would have removed from the served list, and of those the engaged ones.
    pub removed_items: u64,
    pub removed_engaged: u64,
}

/// Where the guardrail stands.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardrailReport {
    pub enabled: bool,
    /// The champion being watched since its promotion, if any, with its counts so far.
    pub watching: Option<String>,
    pub requests: u64,
    pub errors: u64,
    pub eligible: u64,
    pub empty: u64,
    /// Rollbacks the guardrail made since the engine opened, and the reason of the last one.
    pub rollbacks: u64,
    pub last_rollback: Option<String>,
}

/// The shadow tests' report (`GET /v1/shadow`).
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowReport {
    pub config: ShadowConfig,
    /// Sampled requests offered to the queue, those dropped because it was full, and those waiting.
    pub sampled: u64,
    pub dropped: u64,
    pub queued: u64,
    /// Requests taken from the queue while no challenger could be loaded (none set, refused, pruned).
    pub no_challenger: u64,
    /// The version the shadow resolved last.
    pub challenger: Option<String>,
    /// Users whose comparison waits for events, and comparisons not followed because that state
    /// was full.
    pub pending_users: usize,
    pub pending_dropped: u64,
    pub versions: Vec<ChallengerReport>,
    pub guardrail: GuardrailReport,
}

#[derive(Debug, Default)]
struct VersionStats {
    scored: u64,
    errors: u64,
    overlap: Moments,
    rbo: Moments,
    tau: Moments,
    latency: Moments,
    latency_buckets: [u64; LATENCY_BUCKETS.len() + 1],
    added_items: u64,
    added_engaged: u64,
    removed_items: u64,
    removed_engaged: u64,
    /// Order of first use, to forget the oldest.
    born: u64,
}

/// A user's comparison waiting for their events.
#[derive(Debug)]
pub(crate) struct Pending {
    version: String,
    until: i64,
    pub(crate) added: Vec<String>,
    pub(crate) removed: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct ShadowState {
    versions: BTreeMap<String, VersionStats>,
    pub(crate) pending: HashMap<String, Pending>,
    pending_dropped: u64,
    born: u64,
}

impl ShadowState {
    fn version(&mut self, v: &str) -> &mut VersionStats {
        if !self.versions.contains_key(v) {
            if self.versions.len() >= MAX_VERSIONS {
                let oldest = self
                    .versions
                    .iter()
                    .min_by_key(|(_, s)| s.born)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.versions.remove(&k);
                }
            }
            self.born += 1;
            let born = self.born;
            self.versions.insert(
                v.to_string(),
                VersionStats {
                    born,
                    ..VersionStats::default()
                },
            );
        }
        self.versions.get_mut(v).expect("inserted above")
    }

    /// Keeps `pending` for `user` (replacing an earlier one), within `max` users.
    fn follow(&mut self, user: &str, pending: Pending, max: usize, now: i64) {
        if !self.pending.contains_key(user) && self.pending.len() >= max {
            self.pending.retain(|_, p| p.until >= now);
            if self.pending.len() >= max {
                self.pending_dropped += 1;
                return;
            }
        }
        self.pending.insert(user.to_string(), pending);
    }
}

/// One sampled request, as the worker needs it.
struct Job {
    req: RecommendRequest,
    served: Vec<String>,
}

#[derive(Debug, Default)]
struct Watch {
    version: String,
    until: Option<Instant>,
    requests: u64,
    errors: u64,
    eligible: u64,
    empty: u64,
}

/// The shadow queue and figures, and the guardrail's watch; one per engine.
pub(crate) struct Monitor {
    shadow: ShadowConfig,
    guard: GuardrailConfig,
    tx: SyncSender<Job>,
    rx: Mutex<Option<Receiver<Job>>>,
    sampled: AtomicU64,
    dropped: AtomicU64,
    queued: AtomicU64,
    no_challenger: AtomicU64,
    pub(crate) state: Mutex<ShadowState>,
    /// The challenger last resolved, its model and when.
    resolved: Mutex<Option<(String, Arc<ModelSet>, Instant)>>,
    watch: Mutex<Option<Watch>>,
    rollbacks: AtomicU64,
    last_rollback: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Monitor {
    pub(crate) fn new(shadow: &ShadowConfig, guard: &GuardrailConfig) -> Monitor {
        let (tx, rx) = mpsc::sync_channel(shadow.queue_capacity.max(1));
        Monitor {
            shadow: shadow.clone(),
            guard: guard.clone(),
            tx,
            rx: Mutex::new(Some(rx)),
            sampled: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            no_challenger: AtomicU64::new(0),
            state: Mutex::default(),
            resolved: Mutex::new(None),
            watch: Mutex::new(None),
            rollbacks: AtomicU64::new(0),
            last_rollback: Mutex::new(None),
        }
    }

    /// The request path's part of a shadow test: sample, copy, try to enqueue. Never blocks.
    fn offer(&self, req: &RecommendRequest, list: &Recommendations) {
        if !self.shadow.enabled
            || req.cursor.is_some()
            || !sampled(&self.shadow.salt, &req.user_id, self.shadow.sample_share)
        {
            return;
        }
        self.sampled.fetch_add(1, Ordering::Relaxed);
        let job = Job {
            req: req.clone(),
            served: list.items.iter().map(|r| r.item_id.clone()).collect(),
        };
        // Counted before the send, so the worker's decrement never runs first.
        self.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.try_send(job).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The guardrail's count of one outcome served while `version` was the champion.
    fn count(&self, req: &RecommendRequest, result: &Result<Recommendations, EngineError>) {
        if !self.guard.enabled || req.cursor.is_some() {
            return;
        }
        let mut watch = lock(&self.watch);
        let Some(w) = watch.as_mut() else { return };
        match result {
            Ok(list) => {
                if list.model_version.as_deref() != Some(w.version.as_str()) {
                    return;
                }
                w.requests += 1;
                if req.filter.is_none() && req.category.is_none() {
                    w.eligible += 1;
                    if list.items.is_empty() {
                        w.empty += 1;
                    }
                }
            }
            // Only what the server is to blame for: storage and model errors.
            Err(EngineError::Store(_) | EngineError::Artifact(_)) => {
                w.requests += 1;
                w.errors += 1;
            }
            Err(_) => {}
        }
    }

    /// Starts watching `version`, just promoted (replacing any earlier watch).
    fn watch(&self, version: &str) {
        if !self.guard.enabled {
            return;
        }
        *lock(&self.watch) = Some(Watch {
            version: version.to_string(),
            until: Instant::now().checked_add(Duration::from_secs(self.guard.window_secs)),
            ..Watch::default()
        });
    }

    /// The breach of the watched champion, if any: its version and the reason in words. Ends
    /// the watch when its window passed or it breached.
    fn breach(&self) -> Option<(String, String)> {
        let mut watch = lock(&self.watch);
        let w = watch.as_ref()?;
        let g = &self.guard;
        if w.until.is_some_and(|u| Instant::now() > u) {
            *watch = None;
            return None;
        }
        if w.requests < g.min_requests {
            return None;
        }
        let error_rate = w.errors as f64 / w.requests as f64;
        let empty_rate = if w.eligible > 0 {
            w.empty as f64 / w.eligible as f64
        } else {
            0.0
        };
        let reason = if error_rate > g.max_error_rate {
            format!(
                "guardrail: error rate {error_rate:.3} ({} of {} requests) above \
                 models.guardrails.max_error_rate {}",
                w.errors, w.requests, g.max_error_rate
            )
        } else if empty_rate > g.max_empty_rate {
            format!(
                "guardrail: empty-list rate {empty_rate:.3} ({} of {} lists) above \
                 models.guardrails.max_empty_rate {}",
                w.empty, w.eligible, g.max_empty_rate
            )
        } else {
            return None;
        };
        let version = w.version.clone();
        *watch = None;
        Some((version, reason))
    }

    fn record(&self, version: &str, req: &RecommendRequest, served: &[String], outcome: Scored) {
        let now = cairn_core::now_unix();
        let mut state = lock(&self.state);
        let stats = state.version(version);
        let secs = outcome.latency.as_secs_f64();
        let Ok(list) = outcome.list else {
            stats.errors += 1;
            return;
        };
        stats.scored += 1;
        stats.latency.add(secs);
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        stats.latency_buckets[bucket] += 1;
        let k = req.k;
        let list = list.as_slice();
        if let Some(o) = overlap_at_k(served, list, k) {
            stats.overlap.add(o);
        }
        if let Some(r) = rbo_ext(served, list, self.shadow.rbo_p) {
            stats.rbo.add(r);
        }
        if let Some(t) = kendall_tau_shared(served, list) {
            stats.tau.add(t);
        }
        let in_served: HashSet<&String> = served.iter().collect();
        let in_list: HashSet<&String> = list.iter().collect();
        let added: Vec<String> = list
            .iter()
            .filter(|i| !in_served.contains(i))
            .cloned()
            .collect();
        let removed: Vec<String> = served
            .iter()
            .filter(|i| !in_list.contains(i))
            .cloned()
            .collect();
        stats.added_items += added.len() as u64;
        stats.removed_items += removed.len() as u64;
        if added.is_empty() && removed.is_empty() {
            return;
        }
        let pending = Pending {
            version: version.to_string(),
            until: now.saturating_add_unsigned(self.shadow.window_secs),
            added,
            removed,
        };
        state.follow(&req.user_id, pending, self.shadow.max_pending_users, now);
    }

    /// Credits the pending comparisons of the events' users (stored user ids).
    fn on_events(&self, events: &[Event]) {
        if !self.shadow.enabled {
            return;
        }
        let now = cairn_core::now_unix();
        let mut state = lock(&self.state);
        if state.pending.is_empty() {
            return;
        }
        for e in events {
            let Some(p) = state.pending.get_mut(&e.user_id) else {
                continue;
            };
            if p.until < now {
                state.pending.remove(&e.user_id);
                continue;
            }
            let (mut added, mut removed) = (false, false);
            if let Some(i) = p.added.iter().position(|x| *x == e.item_id) {
                p.added.swap_remove(i);
                added = true;
            } else if let Some(i) = p.removed.iter().position(|x| *x == e.item_id) {
                p.removed.swap_remove(i);
                removed = true;
            }
            if !(added || removed) {
                continue;
            }
            let version = p.version.clone();
            if p.added.is_empty() && p.removed.is_empty() {
                state.pending.remove(&e.user_id);
            }
            if let Some(stats) = state.versions.get_mut(&version) {
                stats.added_engaged += u64::from(added);
                stats.removed_engaged += u64::from(removed);
            }
        }
    }
}

/// A challenger's list for one request (its first page's ids) and the time it took.
struct Scored {
    list: Result<Vec<String>, EngineError>,
    latency: Duration,
}

impl Engine {
    /// The one call the serving path makes after a recommendation request: the shadow test's
    /// offer and the guardrail's count. Cheap and never blocking.
    pub(crate) fn observe_recommendation(
        &self,
        req: &RecommendRequest,
        result: &Result<Recommendations, EngineError>,
    ) {
        if let Ok(list) = result {
            self.monitor.offer(req, list);
        }
        self.monitor.count(req, result);
    }

    /// The events path's call: engagement with the items a challenger would have changed.
    pub(crate) fn observe_events(&self, events: &[Event]) {
        self.monitor.on_events(events);
    }

    /// The guardrail's call after a version became the champion.
    pub(crate) fn watch_promotion(&self, version: &str) {
        self.monitor.watch(version);
    }

    /// Starts the monitor thread (shadow worker and guardrail checks) when `[shadow]` or
    /// `[models.guardrails]` is enabled; a no-op otherwise, or when it already runs. The thread
    /// holds the engine weakly and ends when the engine is dropped.
    pub fn start_monitor(self: &Arc<Self>) {
        if !(self.config.shadow.enabled || self.config.models.guardrails.enabled) {
            return;
        }
        let Some(rx) = lock(&self.monitor.rx).take() else {
            return;
        };
        let engine: Weak<Engine> = Arc::downgrade(self);
        let tick = Duration::from_millis(self.config.models.guardrails.check_interval_ms);
        let spawned = std::thread::Builder::new()
            .name("cairn-shadow".into())
            .spawn(move || monitor_loop(&engine, &rx, tick));
        if let Err(e) = spawned {
            tracing::error!("cannot start the shadow and guardrail thread: {e}");
        }
    }

    /// Scores every request waiting in the shadow queue on this thread; returns how many. For
    /// tests, and for an engine whose monitor thread is not started.
    pub fn run_shadow_queue(&self) -> usize {
        let guard = lock(&self.monitor.rx);
        let Some(rx) = guard.as_ref() else {
            return 0;
        };
        let mut n = 0;
        while let Ok(job) = rx.try_recv() {
            self.shadow_score(job);
            n += 1;
        }
        n
    }

    /// Checks the guardrail now and rolls back on a breach; returns the rollback's history entry.
    pub fn check_guardrail(&self) -> Option<crate::registry::HistoryEntry> {
        let (version, reason) = self.monitor.breach()?;
        // Roll back only the version that breached, not one promoted since.
        if self.models().is_none_or(|m| m.version != version) {
            return None;
        }
        // Another replica watching the same promotion may have rolled it back already.
        match self.rollback_model_from(Some(version.as_str()), "guardrail", &reason) {
            Ok(entry) => {
                self.monitor.rollbacks.fetch_add(1, Ordering::Relaxed);
                *lock(&self.monitor.last_rollback) = Some(format!("{version}: {reason}"));
                tracing::warn!(version, to = %entry.version, "{reason}; rolled back");
                Some(entry)
            }
            Err(e) => {
                tracing::error!(version, "{reason}, but the rollback failed: {e}");
                *lock(&self.monitor.last_rollback) =
                    Some(format!("{version}: {reason}; the rollback failed: {e}"));
                None
            }
        }
    }

    /// Rollbacks the guardrail made since this engine opened.
    pub fn guardrail_rollbacks(&self) -> u64 {
        self.monitor.rollbacks.load(Ordering::Relaxed)
    }

    /// What the shadow tests measured so far, and the guardrail's state.
    pub fn shadow_report(&self) -> ShadowReport {
        let m = &self.monitor;
        let state = lock(&m.state);
        let versions = state
            .versions
            .iter()
            .map(|(v, s)| ChallengerReport {
                version: v.clone(),
                scored: s.scored,
                errors: s.errors,
                overlap: s.overlap.summary(),
                rbo: s.rbo.summary(),
                tau: s.tau.summary(),
                latency: s.latency.summary(),
                latency_buckets: s.latency_buckets.to_vec(),
                added_items: s.added_items,
                added_engaged: s.added_engaged,
                removed_items: s.removed_items,
                removed_engaged: s.removed_engaged,
            })
            .collect();
        let watch = lock(&m.watch);
        let w = watch.as_ref();
        ShadowReport {
            config: m.shadow.clone(),
            sampled: m.sampled.load(Ordering::Relaxed),
            dropped: m.dropped.load(Ordering::Relaxed),
            queued: m.queued.load(Ordering::Relaxed),
            no_challenger: m.no_challenger.load(Ordering::Relaxed),
            challenger: lock(&m.resolved).as_ref().map(|(v, _, _)| v.clone()),
            pending_users: state.pending.len(),
            pending_dropped: state.pending_dropped,
            versions,
            guardrail: GuardrailReport {
                enabled: m.guard.enabled,
                watching: w.map(|w| w.version.clone()),
                requests: w.map_or(0, |w| w.requests),
                errors: w.map_or(0, |w| w.errors),
                eligible: w.map_or(0, |w| w.eligible),
                empty: w.map_or(0, |w| w.empty),
                rollbacks: m.rollbacks.load(Ordering::Relaxed),
                last_rollback: lock(&m.last_rollback).clone(),
            },
        }
    }

    /// The challenger's model set: the alias's (or the configured version's), re-read at most once
    /// a second; `None` when there is none or it cannot serve.
    fn shadow_models(&self) -> Option<Arc<ModelSet>> {
        let mut resolved = lock(&self.monitor.resolved);
        if let Some((_, m, at)) = resolved.as_ref() {
            if at.elapsed() < RESOLVE_EVERY {
                return Some(Arc::clone(m));
            }
        }
        let name = &self.config.shadow.challenger;
        let version = if name == "challenger" {
            self.registry.state().ok()?.challenger?
        } else {
            name.clone()
        };
        if let Some((v, m, at)) = resolved.as_mut() {
            if *v == version {
                *at = Instant::now();
                return Some(Arc::clone(m));
            }
        }
        let models = match self.models().filter(|m| m.version == version) {
            Some(m) => m,
            None => {
                let loaded = self
                    .registry
                    .check_servable(&version)
                    .and_then(|meta| self.load_version(&meta));
                match loaded {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(version, "the shadow challenger cannot be loaded: {e}");
                        *resolved = None;
                        return None;
                    }
                }
            }
        };
        *resolved = Some((version, Arc::clone(&models), Instant::now()));
        Some(models)
    }

    fn shadow_score(&self, job: Job) {
        self.monitor.queued.fetch_sub(1, Ordering::Relaxed);
        let Some(models) = self.shadow_models() else {
            self.monitor.no_challenger.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let started = Instant::now();
        let list = self
            .personal_list(&job.req, Some(&models), Routing::AsAsked)
            .map(|personal| {
                personal
                    .items
                    .into_iter()
                    .take(job.req.k)
                    .map(|r| r.item_id)
                    .collect()
            });
        let outcome = Scored {
            list,
            latency: started.elapsed(),
        };
        self.monitor
            .record(&models.version, &job.req, &job.served, outcome);
    }
}

fn monitor_loop(engine: &Weak<Engine>, rx: &Receiver<Job>, tick: Duration) {
    let mut last_check = Instant::now();
    loop {
        let job = match rx.recv_timeout(tick) {
            Ok(job) => Some(job),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let Some(engine) = engine.upgrade() else {
            return;
        };
        if let Some(job) = job {
            engine.shadow_score(job);
        }
        if last_check.elapsed() >= tick {
            last_check = Instant::now();
            engine.check_guardrail();
        }
    }
}

/// Whether the alias history's last entry promoted `version` (a promotion made by another
/// process, which the guardrail then watches too).
pub(crate) fn promoted_last(history: &[crate::registry::HistoryEntry], version: &str) -> bool {
    history
        .last()
        .is_some_and(|e| e.action == Action::Promote && e.version == version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(until: i64) -> Pending {
        Pending {
            version: "v".into(),
            until,
            added: vec!["a".into()],
            removed: vec!["b".into()],
        }
    }

    #[test]
    fn pending_engagement_state_stays_within_its_bound() {
        let mut state = ShadowState::default();
        for u in 0..5 {
            state.follow(&format!("u{u}"), pending(1_000), 3, 500);
        }
        assert_eq!((state.pending.len(), state.pending_dropped), (3, 2));
        // A user already followed is replaced, not added.
        state.follow("u0", pending(1_000), 3, 500);
        assert_eq!((state.pending.len(), state.pending_dropped), (3, 2));
        // Once their window passed, the old ones make room.
        state.follow("late", pending(3_000), 3, 2_000);
        assert_eq!((state.pending.len(), state.pending_dropped), (1, 2));
    }

    #[test]
    fn moments_give_the_mean_and_a_normal_interval() {
        let mut m = Moments::default();
        assert!(m.summary().mean.is_nan());
        m.add(1.0);
        assert_eq!(m.summary().mean, 1.0);
        assert!(m.summary().ci_low.is_nan());
        for x in [2.0, 3.0, 4.0] {
            m.add(x);
        }
        let s = m.summary();
        assert_eq!((s.n, s.mean, s.sum), (4, 2.5, 10.0));
        // Sample variance 5/3; standard error sqrt(5/12).
        let half = 1.96 * (5.0f64 / 12.0).sqrt();
        assert!((s.ci_high - 2.5 - half).abs() < 1e-12);
        assert!((2.5 - s.ci_low - half).abs() < 1e-12);
    }

    #[test]
    fn versions_beyond_the_limit_forget_the_oldest() {
        let mut state = ShadowState::default();
        for v in 0..MAX_VERSIONS + 2 {
            state.version(&format!("v{v}")).scored += 1;
        }
        assert_eq!(state.versions.len(), MAX_VERSIONS);
        assert!(!state.versions.contains_key("v0") && !state.versions.contains_key("v1"));
        assert!(state
            .versions
            .contains_key(&format!("v{}", MAX_VERSIONS + 1)));
    }
}
