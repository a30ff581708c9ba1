//! Configuration: one TOML file whose every key has a default, overridable by environment variables
//! `CAIRN_<KEY>` for top-level keys and `CAIRN_<SECTION>__<KEY>` for nested ones
//! (e.g. `CAIRN_SERVER__PORT=9000`, `CAIRN_TRAIN__INTERVAL_SECS=600`).

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use cairn_core::EventTypes;
use cairn_core::Item;
use cairn_pipeline::{
    default_placements, HistoryConfig, ModelSet, PlacementConfig, Snapshot, TrainConfig,
};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::EngineError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the embedded store and trained models live.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub train: TrainConfig,
    pub serve: ServeConfig,
    pub ingest: IngestConfig,
    /// Event types by name; entries in the file are added to the defaults or override them.
    pub event_types: EventTypes,
    /// Access control: exposure without keys, per-key rate limits, CORS.
    pub auth: AuthConfig,
    /// Personal data: retention of events, pseudonymised user ids.
    pub privacy: PrivacyConfig,
    /// The model registry: the frozen held-out slice, the promotion gate, aliases.
    pub models: ModelsConfig,
    /// The store: the embedded one's memory, or the PostgreSQL database to use instead.
    pub store: StoreConfig,
    /// Drift and health monitoring of the served traffic against the champion's training data.
    pub drift: DriftConfig,
    /// Shadow tests: a challenger scores a sample of live requests off the request path.
    pub shadow: ShadowConfig,
    /// Online experiments: attribution of clicks and conversions to served lists.
    pub experiments: ExperimentsConfig,
    /// Streaming ingestion: events read from a Redis stream by `cairn serve` (off by default).
    pub stream: StreamConfig,
    /// Caps on what the store may hold (0 = none): refused with 403 `quota_exceeded` above them.
    /// Set per app in its `[apps.NAME.quota]` table (docs/OPERATIONS.md, "Several apps").
    pub quota: QuotaConfig,
    /// Apps (tenants) served beside the default one, at `/v1/apps/{name}/…`, each with its own
    /// store, models, keys and experiments. Each `[apps.NAME]` table declares one app and holds
    /// that app's settings over this file's (any section but `data_dir`, `server`, `apps`,
    /// `store.url`, `store.schema` and `models.dir`, which the deployment decides); an empty table
    /// declares an app with the deployment's settings. See [`Config::app`].
    pub apps: BTreeMap<String, serde_json::Value>,
}

/// The `[stream]` section: a consumer that reads events from a Redis stream (a consumer group,
/// at-least-once, stored through the same path as `POST /v1/events`); see docs/POSTGRES.md,
/// "Streaming ingestion". Off while `redis_url` is unset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// The Redis server to read from (`redis://[:password@]host:6379[/db]`). Unset (the default):
    /// no consumer runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// The stream's key. Bad messages go to `<key>:dead` with the reason.
    pub key: String,
    /// The consumer group (created at the stream's start, `0`, when missing: entries already in the
    /// stream are read too).
    pub group: String,
    /// This consumer's name in the group; unset: the machine's host name. It must stay the same
    /// across restarts (so the entries it read but did not acknowledge are read again at start) and
    /// differ between replicas sharing the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    /// Entries read (and stored in one write) at a time, 1 to 10000.
    pub batch: usize,
    /// How long one read waits for new entries, in milliseconds (1 to 60000).
    pub block_ms: u64,
    /// Entries another consumer of the group read but has not acknowledged for this long (it died)
    /// are claimed and stored by this one, in milliseconds; 0: never claim.
    pub claim_idle_ms: u64,
    /// After Redis refused or dropped the connection, or the store refused a write, the wait before
    /// the next try doubles from 100 ms up to this, in milliseconds.
    pub max_backoff_ms: u64,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            redis_url: None,
            key: "cairn:events".into(),
            group: "cairn".into(),
            consumer: None,
            batch: 100,
            block_ms: 1000,
            claim_idle_ms: 60_000,
            max_backoff_ms: 10_000,
        }
    }
}

impl StreamConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: &str| Err(ConfigError(m.into()));
        if let Some(url) = &self.redis_url {
            if !url.starts_with("redis://") {
                return err("stream.redis_url must be a Redis URL starting with redis://");
            }
        }
        if self.key.is_empty() || self.key.len() > 200 {
            return err("stream.key must be 1 to 200 bytes");
        }
        if self.group.is_empty() {
            return err("stream.group must not be empty");
        }
        if matches!(&self.consumer, Some(c) if c.is_empty()) {
            return err("stream.consumer must not be empty (leave it unset for the host name)");
        }
        if self.batch == 0 || self.batch > 10_000 {
            return err("stream.batch must be between 1 and 10000");
        }
        if self.block_ms == 0 || self.block_ms > 60_000 {
            return err("stream.block_ms must be between 1 and 60000");
        }
        if self.max_backoff_ms < 100 {
            return err("stream.max_backoff_ms must be at least 100");
        }
        Ok(())
    }
}

/// The `[quota]` section: caps on one app's store, checked before a write (0 = no cap).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    /// Most items the catalog may hold; a write that would add more is refused whole.
    pub max_items: u64,
    /// Most events the log may hold; a batch that could take the log past it is refused whole
    /// (counted before duplicates are dropped, so a batch of resent events near the cap is refused
    /// too). Costs a count of the log per batch while set (cheap in the embedded store, a
    /// `count(*)` over PostgreSQL).
    pub max_events: u64,
}

/// The `[experiments]` section (see docs/OPERATIONS.md, "Experiments").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExperimentsConfig {
    /// An event without a `recommendation_id` counts for the list whose impression showed its item
    /// to its user at most this many seconds before it; 0 attributes by `recommendation_id` only.
    pub attribution_window_secs: u64,
    /// Event types that count as clicks of a shown item.
    pub click_types: Vec<String>,
    /// Event types that count as conversions of a shown item.
    pub conversion_types: Vec<String>,
    /// Served lists kept in memory so that their impressions can be posted (the oldest is
    /// forgotten first; its impressions are then refused as unknown). Each costs about 40 bytes
    /// per item of its first page.
    pub recent_lists: usize,
}

impl Default for ExperimentsConfig {
    fn default() -> Self {
        ExperimentsConfig {
            attribution_window_secs: 24 * 3600,
            click_types: vec!["click".into()],
            conversion_types: vec!["purchase".into()],
            recent_lists: 100_000,
        }
    }
}

impl ExperimentsConfig {
    pub fn validate(&self, event_types: &EventTypes) -> Result<(), ConfigError> {
        if self.recent_lists == 0 {
            return Err(ConfigError(
                "experiments.recent_lists must be at least 1".into(),
            ));
        }
        for (key, list) in [
            ("click_types", &self.click_types),
            ("conversion_types", &self.conversion_types),
        ] {
            for t in list {
                if event_types.get(t).is_none() {
                    return Err(ConfigError(format!(
                        "experiments.{key}: `{t}` is not a configured event type"
                    )));
                }
            }
        }
        if let Some(t) = self
            .click_types
            .iter()
            .find(|t| self.conversion_types.contains(t))
        {
            return Err(ConfigError(format!(
                "experiments: `{t}` is both a click and a conversion type; name it in one list"
            )));
        }
        Ok(())
    }
}

/// The `[store]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Bytes of store pages kept in memory at most (nine tenths for reads, one tenth for writes).
    /// Pages not kept are read from the file again, usually from the operating system's cache.
    pub cache_bytes: usize,
    /// A PostgreSQL connection URL (`postgres://user:password@host:5432/db`): the catalog, event
    /// log, API keys and audit log live in that database instead of the embedded store in
    /// `data_dir` (models stay in `data_dir`). Unset (the default): the embedded store.
    /// See docs/POSTGRES.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The PostgreSQL schema the store works in (created when missing); unset: the server's
    /// default (`public`). An app's store is the schema `{store.schema}_{app}` (`app_{app}` when
    /// this is unset). Letters, digits, `_` and `-`, at most 63 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            cache_bytes: cairn_store::DEFAULT_CACHE_BYTES,
            url: None,
            schema: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Requests taking longer are answered 503.
    pub request_timeout_ms: u64,
    /// After SIGTERM or Ctrl-C, how long requests in flight may take to finish before the server
    /// stops anyway; a running training is abandoned (its model file is written atomically, so
    /// nothing half-written is left).
    pub shutdown_grace_secs: u64,
    /// Threads that compute recommendations, similar items and lists, first come first served; 0
    /// means one per core.
    pub scoring_threads: usize,
    /// While the disk refuses the store's writes (full, failing), how often a small test write
    /// is tried, in seconds; when one works, writes are taken again and `/readyz` says ready.
    pub storage_retry_secs: u64,
    /// A connection that has not sent a whole request header this long after it opened (or after
    /// its first byte, for a later request on a kept-alive connection) is closed; 0 = no limit.
    pub header_timeout_ms: u64,
    /// A kept-alive connection with no request for this long is closed; 0 = no limit.
    pub idle_timeout_secs: u64,
    /// A request body not complete this long after its header arrived is answered 408
    /// `body_timeout`; 0 = no limit.
    pub body_timeout_ms: u64,
    /// Open connections at most; while that many are open, further ones wait in the listen
    /// backlog until one closes. 0 = no limit.
    pub max_connections: usize,
    /// PEM certificate chain: with `tls_key`, the server speaks HTTPS only, and reloads both
    /// files when either changes.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert` (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
}

/// What writes may carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// How far ahead of this server's clock an event's timestamp may be, in seconds (clients'
    /// clocks drift). Anything later is refused: one event stamped years ahead would otherwise
    /// stay in the log as the newest.
    pub max_future_secs: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_future_secs: 300,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Most recent events read per user at request time, for the seeds, activity and reasons.
    /// Seen-item exclusion covers the whole history whatever this is.
    pub history_limit: usize,
    /// Of those, how many of the most recent items drive the personalised scores.
    pub recent_items: usize,
    /// Half-life of an event's influence on the scores, in days (recent interests count more).
    pub recency_half_life_days: f64,
    /// Largest `k` a client may ask for.
    pub max_k: usize,
    pub default_k: usize,
    /// Items computed per list; pages (`cursor`) are served from this list, so they never repeat
    /// an item.
    pub list_window: usize,
    /// Lists kept for paging at most; the oldest are dropped first (their cursors then expire).
    pub cursor_cache: usize,
    /// Bytes the lists kept for paging may take at most (an estimate that counts each list's
    /// item ids, reasons and allocations, about 150 bytes an item); the oldest are dropped first.
    pub cursor_cache_bytes: usize,
    /// Placement used when a request names none.
    pub default_placement: String,
    /// Pipeline configurations by placement name (`home`, `item-page`, `cart` by default).
    pub placements: BTreeMap<String, PlacementConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("cairn-data"),
            server: ServerConfig::default(),
            train: TrainConfig::default(),
            serve: ServeConfig::default(),
            ingest: IngestConfig::default(),
            event_types: EventTypes::default(),
            auth: AuthConfig::default(),
            privacy: PrivacyConfig::default(),
            models: ModelsConfig::default(),
            store: StoreConfig::default(),
            experiments: ExperimentsConfig::default(),
            shadow: ShadowConfig::default(),
            drift: DriftConfig::default(),
            stream: StreamConfig::default(),
            quota: QuotaConfig::default(),
            apps: BTreeMap::new(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 8080,
            max_body_bytes: 16 * 1024 * 1024,
            request_timeout_ms: 30_000,
            shutdown_grace_secs: 5,
            scoring_threads: 0,
            storage_retry_secs: 5,
            header_timeout_ms: 10_000,
            idle_timeout_secs: 60,
            body_timeout_ms: 30_000,
            max_connections: 1024,
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            history_limit: 1000,
            recent_items: 50,
            recency_half_life_days: 30.0,
            max_k: 1000,
            default_k: 10,
            list_window: 50,
            cursor_cache: 10_000,
            cursor_cache_bytes: 32 * 1024 * 1024,
            default_placement: "home".into(),
            placements: default_placements(),
        }
    }
}

/// The `[auth]` section. API keys themselves live in the store (`cairn keys`), not here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Serve a non-loopback address although no API key exists, i.e. open to anyone who can reach
    /// it. Off by default: without keys the server refuses to start on such an address.
    pub insecure: bool,
    /// Requests per second each key may make on average (a token bucket); 0 = no limit.
    pub rate_limit_per_sec: f64,
    /// Requests a key may make at once above that rate (the bucket's size).
    pub rate_limit_burst: u32,
    /// Origins allowed to call the API from a browser (CORS), e.g. `["https://shop.example"]`, or
    /// `["*"]` for any; empty = CORS off (browsers refuse cross-origin calls).
    pub cors_origins: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            insecure: false,
            rate_limit_per_sec: 0.0,
            rate_limit_burst: 100,
            cors_origins: Vec::new(),
        }
    }
}

impl AuthConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.rate_limit_per_sec.is_finite() && self.rate_limit_per_sec >= 0.0) {
            return Err(ConfigError(
                "auth.rate_limit_per_sec must be a number >= 0 (0 = no limit)".into(),
            ));
        }
        if self.rate_limit_per_sec > 0.0 && self.rate_limit_burst == 0 {
            return Err(ConfigError(
                "auth.rate_limit_burst must be at least 1 when auth.rate_limit_per_sec is set"
                    .into(),
            ));
        }
        for origin in &self.cors_origins {
            let ok = origin == "*"
                || ((origin.starts_with("http://") || origin.starts_with("https://"))
                    && !origin.ends_with('/'));
            if !ok {
                return Err(ConfigError(format!(
                    "auth.cors_origins: `{origin}` is not an origin; write scheme and host without a path, e.g. \"https://shop.example\", or \"*\""
                )));
            }
        }
        Ok(())
    }
}

/// The `[privacy]` section: how long events are kept, and whether user ids are stored at all.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Events older than this many days are deleted (checked every
    /// `privacy.retention_check_secs` while serving); 0 keeps them forever.
    pub retention_days: u32,
    /// How often the server deletes expired events, in seconds.
    pub retention_check_secs: u64,
    /// Replace every user id by a keyed HMAC-SHA256 pseudonym (`ps_` and 32 hex digits) where it
    /// enters: HTTP routes and `cairn import`. The store then never holds a raw id; the same raw
    /// id always maps to the same pseudonym, so recommendations keep working. Needs a key.
    pub pseudonymize_user_ids: bool,
    /// A file whose contents (trailing newline trimmed, at least 16 bytes) are the HMAC key.
    pub hmac_key_file: Option<PathBuf>,
    /// The HMAC key itself, for `CAIRN_PRIVACY__HMAC_KEY`; `hmac_key_file` is preferred. Never
    /// written out.
    #[serde(skip_serializing)]
    pub hmac_key: Option<String>,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            retention_days: 0,
            retention_check_secs: 3600,
            pseudonymize_user_ids: false,
            hmac_key_file: None,
            hmac_key: None,
        }
    }
}

/// The `[models]` section: how every trained version is measured and when it may serve (see
/// docs/OPERATIONS.md). The held-out slice is frozen by its rule: the same `holdout_salt`,
/// `holdout_share` and `holdout_events` choose the same users and the same kind of events for every
/// version, so versions are compared on equal terms; change them and older figures no longer compare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    /// Salt of the hash of a user id that decides whether the user is held out.
    pub holdout_salt: String,
    /// Share of users held out, 0 to 0.5 (0 disables the held-out slice and the NDCG check).
    pub holdout_share: f64,
    /// Each held-out user's newest events (in log order) that are kept out of training and are
    /// the targets of the offline metrics.
    pub holdout_events: usize,
    /// At most this many held-out users are evaluated (the first ones by their hash).
    pub holdout_max_users: usize,
    /// After a version passes the gate, make it the champion (it serves) at once; `false` makes it
    /// the challenger and leaves the promotion to `cairn models promote` or the API.
    pub auto_promote: bool,
    /// How often `cairn serve` looks at the alias history for a change made by another process
    /// (`cairn models promote|rollback` on the same data directory), in milliseconds; 0 = never.
    /// Replicas over one PostgreSQL store follow a champion promoted elsewhere within this interval.
    pub watch_interval_ms: u64,
    /// The folder of model versions and their registry (aliases, history); absent means
    /// `data_dir/models`. Several `cairn serve` over one PostgreSQL store (replicas) name the same
    /// folder here, so that each serves the champion the one trainer promotes (docs/POSTGRES.md).
    pub dir: Option<PathBuf>,
    /// The promotion gate.
    pub gate: GateConfig,
    /// Live guardrails after a promotion, with automatic rollback.
    pub guardrails: GuardrailConfig,
}

/// The `[models.gate]` section: the checks a new version must pass before it serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateConfig {
    /// List length of the offline metrics (NDCG@k, coverage@k).
    pub k: usize,
    /// The new version's held-out NDCG@k may be below the champion's by at most this much
    /// (absolute, mean of the paired per-user differences).
    pub ndcg_tolerance: f64,
    /// Fewer held-out users than this (with a target) are too few to compare two versions on:
    /// the NDCG check then passes and says so.
    pub min_holdout_users: usize,
    /// Users (held-out users first, then others) whose lists are checked for finite scores and
    /// content and timed for the latency check.
    pub sample_users: usize,
    /// Share of the sampled users whose list must hold at least one item.
    pub min_nonempty_share: f64,
    /// Share of the catalog that the sampled users' top-k lists together must reach.
    pub coverage_floor: f64,
    /// Budget of the 99th percentile of one list's scoring time over the sample, in milliseconds.
    pub p99_budget_ms: f64,
    /// Which figure of the paired NDCG difference must not be below `-ndcg_tolerance`: `mean`
    /// (the mean difference), `lower_bound` (its 95% interval's lower bound: the version must be
    /// shown no worse; strict, refuses most versions on a small held-out slice) or `upper_bound`
    /// (the interval's upper bound: refused only when shown worse; lenient). See docs/OPERATIONS.md.
    pub ndcg_rule: NdcgRule,
}

/// The figure of the paired NDCG difference the gate compares with `-ndcg_tolerance`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NdcgRule {
    #[default]
    Mean,
    LowerBound,
    UpperBound,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            holdout_salt: "cairn-holdout-1".into(),
            holdout_share: 0.05,
            holdout_events: 2,
            holdout_max_users: 2000,
            auto_promote: true,
            watch_interval_ms: 1000,
            dir: None,
            gate: GateConfig::default(),
            guardrails: GuardrailConfig::default(),
        }
    }
}

impl std::fmt::Debug for PrivacyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivacyConfig")
            .field("retention_days", &self.retention_days)
            .field("retention_check_secs", &self.retention_check_secs)
            .field("pseudonymize_user_ids", &self.pseudonymize_user_ids)
            .field("hmac_key_file", &self.hmac_key_file)
            .field("hmac_key", &self.hmac_key.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

impl PrivacyConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.retention_days > 0 && self.retention_check_secs == 0 {
            return Err(ConfigError(
                "privacy.retention_check_secs must be at least 1 when privacy.retention_days is set"
                    .into(),
            ));
        }
        if self.pseudonymize_user_ids && self.hmac_key_file.is_none() && self.hmac_key.is_none() {
            return Err(ConfigError(
                "privacy.pseudonymize_user_ids is on but no key is configured: set \
                 privacy.hmac_key_file to a file holding a secret of at least 16 bytes (or \
                 CAIRN_PRIVACY__HMAC_KEY); without it the ids cannot be pseudonymised"
                    .into(),
            ));
        }
        Ok(())
    }
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            k: 10,
            ndcg_tolerance: 0.01,
            min_holdout_users: 30,
            sample_users: 200,
            min_nonempty_share: 0.95,
            coverage_floor: 0.001,
            p99_budget_ms: 250.0,
            ndcg_rule: NdcgRule::Mean,
        }
    }
}

impl ModelsConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: &str| Err(ConfigError(m.into()));
        if self.dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            return err("models.dir must name a folder (leave it out for data_dir/models)");
        }
        if !(0.0..=0.5).contains(&self.holdout_share) {
            return err("models.holdout_share must be between 0 and 0.5");
        }
        if self.holdout_events == 0 {
            return err("models.holdout_events must be at least 1");
        }
        let g = &self.gate;
        if g.k == 0 || g.sample_users == 0 {
            return err("models.gate.k and models.gate.sample_users must be at least 1");
        }
        if !(g.ndcg_tolerance.is_finite() && g.ndcg_tolerance >= 0.0) {
            return err("models.gate.ndcg_tolerance must be a number >= 0");
        }
        for (name, v) in [
            ("min_nonempty_share", g.min_nonempty_share),
            ("coverage_floor", g.coverage_floor),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(ConfigError(format!(
                    "models.gate.{name} must be between 0 and 1"
                )));
            }
        }
        if !(g.p99_budget_ms.is_finite() && g.p99_budget_ms > 0.0) {
            return err("models.gate.p99_budget_ms must be a number > 0");
        }
        self.guardrails.validate()?;
        Ok(())
    }
}

/// The `[drift]` section: per window of served traffic, how far the events and the served lists are
/// from the champion's training data, and the thresholds that raise an alarm (see
/// docs/OPERATIONS.md, "Drift and health"). PSI and JS are effect sizes in nats, not p-values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftConfig {
    /// Measure at all; off, nothing is counted and `GET /v1/drift` lists no window.
    pub enabled: bool,
    /// Length of a window, in seconds (an hour or a day in production); windows are aligned to
    /// multiples of it since the Unix epoch.
    pub window_secs: u64,
    /// Complete windows kept (for `GET /v1/drift`); older ones are dropped.
    pub history_windows: usize,
    /// Bins of the item popularity distribution: the training data's `top_items` most frequent
    /// items, one bin each, plus one `other` bin. Fixed when a version is trained.
    pub top_items: usize,
    /// Pseudo-events added to every bin of both sides before PSI and JS (additive smoothing), so
    /// an empty bin gives a finite figure.
    pub smoothing: f64,
    /// Input figures (popularity, event mix, new items, new users) of a window with fewer events
    /// are reported but raise no alarm: PSI's noise alone is about `(bins − 1) / events`.
    pub min_window_events: u64,
    /// Served-list figures (fallback share) of a window with fewer lists raise no alarm.
    pub min_window_lists: u64,
    /// Alarm when the popularity PSI of a window is at least this (0.1–0.25 is usually read as a
    /// moderate shift, above 0.25 a major one).
    pub psi_alarm: f64,
    /// Alarm when the popularity Jensen–Shannon divergence (nats, at most ln 2) is at least this.
    pub js_alarm: f64,
    /// Alarm when the PSI of the event-type mix is at least this.
    pub event_mix_psi_alarm: f64,
    /// Alarm when at least this share of a window's events are on items the champion was not
    /// trained on.
    pub new_item_share_alarm: f64,
    /// Alarm when at least this share of a window's events come from users the champion was not
    /// trained on (1.0 or more: never).
    pub new_user_share_alarm: f64,
    /// Alarm when at least this share of the served items came from the popularity source (the
    /// fallback when a user's own candidates run dry); an output alarm, which never retrains.
    pub fallback_share_alarm: f64,
    /// Distinct items whose exposure a window counts one by one; exposure beyond it is counted
    /// in one overflow figure (and coverage is then a lower bound).
    pub max_tracked_items: usize,
    /// When a complete window raises an input alarm, start a training at once (if events arrived
    /// since the served model) instead of waiting for `train.interval_secs`.
    pub retrain_on_alarm: bool,
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            enabled: true,
            window_secs: 3600,
            history_windows: 48,
            top_items: 20,
            smoothing: 0.5,
            min_window_events: 200,
            min_window_lists: 50,
            psi_alarm: 0.2,
            js_alarm: 0.025,
            event_mix_psi_alarm: 0.2,
            new_item_share_alarm: 0.2,
            new_user_share_alarm: 1.0,
            fallback_share_alarm: 0.5,
            max_tracked_items: 10_000,
            retrain_on_alarm: false,
        }
    }
}

impl DriftConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: &str| Err(ConfigError(m.into()));
        if self.window_secs == 0 {
            return err("drift.window_secs must be at least 1");
        }
        if self.history_windows == 0 || self.history_windows > 10_000 {
            return err("drift.history_windows must be between 1 and 10000");
        }
        if self.top_items == 0 || self.top_items > 1000 {
            return err("drift.top_items must be between 1 and 1000");
        }
        if self.max_tracked_items == 0 {
            return err("drift.max_tracked_items must be at least 1");
        }
        if !(self.smoothing.is_finite() && self.smoothing > 0.0) {
            return err("drift.smoothing must be a number > 0 (pseudo-events per bin)");
        }
        for (name, v) in [
            ("psi_alarm", self.psi_alarm),
            ("js_alarm", self.js_alarm),
            ("event_mix_psi_alarm", self.event_mix_psi_alarm),
            ("new_item_share_alarm", self.new_item_share_alarm),
            ("new_user_share_alarm", self.new_user_share_alarm),
            ("fallback_share_alarm", self.fallback_share_alarm),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(ConfigError(format!("drift.{name} must be a number > 0")));
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// A configuration error as the user wrote the configuration: the key's path (`serve.nope`, not
/// figment's internal `default.serve.nope`), what is wrong, and the file or variable it came from.
fn describe(errors: figment::Error) -> ConfigError {
    let messages: Vec<String> = errors
        .into_iter()
        .map(|e| {
            let mut m = String::new();
            if !e.path.is_empty() {
                m.push_str(&format!("`{}`: ", e.path.join(".")));
            }
            m.push_str(&e.kind.to_string());
            if let Some(source) = e.metadata.as_ref().and_then(|md| md.source.as_ref()) {
                m.push_str(&format!(" (in {source})"));
            }
            m
        })
        .collect();
    ConfigError(messages.join("; "))
}

/// The keys of an app's table that the deployment decides, not the app.
const DEPLOYMENT_KEYS: [&str; 6] = [
    "data_dir",
    "server",
    "apps",
    "store.url",
    "store.schema",
    "models.dir",
];

/// Whether `name` can name an app: 1 to 32 lowercase ASCII letters, digits, `_` or `-`, starting
/// with a letter or digit (a safe folder name, URL path segment and PostgreSQL schema suffix).
pub fn is_app_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 32
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Config {
    /// The names of the configured apps (`[apps.NAME]`), in order.
    pub fn app_names(&self) -> Vec<String> {
        self.apps.keys().cloned().collect()
    }

    /// The configuration of app `name`: this deployment's, with the app's `[apps.NAME]` table
    /// merged over it, in a store and models folder of its own: `data_dir/apps/NAME` (its models
    /// in `data_dir/apps/NAME/models`, or `models.dir/apps/NAME`), or over PostgreSQL the schema
    /// `{store.schema}_NAME` (`app_NAME` when `store.schema` is unset). The app's own `apps` is
    /// empty. Fails when no such app is configured, its name is not a valid one
    /// ([`is_app_name`]), its table sets a deployment key or a setting its section refuses.
    pub fn app(&self, name: &str) -> Result<Config, ConfigError> {
        let overlay = self.apps.get(name).ok_or_else(|| {
            ConfigError(format!(
                "no app `{name}` is configured; declare it with an `[apps.{name}]` table"
            ))
        })?;
        if !is_app_name(name) {
            return Err(ConfigError(format!(
                "apps.{name}: an app's name is 1 to 32 lowercase letters, digits, `_` or `-`, \
                 starting with a letter or digit"
            )));
        }
        let serde_json::Value::Object(table) = overlay else {
            return Err(ConfigError(format!(
                "apps.{name} must be a table of settings (`[apps.{name}]`)"
            )));
        };
        for key in DEPLOYMENT_KEYS {
            let set = match key.split_once('.') {
                None => table.contains_key(key),
                Some((section, field)) => table
                    .get(section)
                    .and_then(|v| v.as_object())
                    .is_some_and(|t| t.contains_key(field)),
            };
            if set {
                return Err(ConfigError(format!(
                    "apps.{name}.{key}: the deployment decides `{key}` for every app; remove it \
                     from the app's table"
                )));
            }
        }
        let mut base = self.clone();
        base.apps.clear();
        // Merged key by key, a model the app names would inherit the deployment model's
        // parameters (see `Config::load`): the app's choice replaces it whole.
        if overlay.pointer("/train/model").is_some() {
            base.train.model = None;
        }
        let mut config: Config = Figment::from(Serialized::defaults(base))
            .merge(Serialized::defaults(overlay))
            .extract()
            .map_err(|e| ConfigError(format!("apps.{name}: {}", describe(e).0)))?;
        // Never serialized, so not carried by the merge: the deployment's, unless the app has one.
        if config.privacy.hmac_key.is_none() {
            config.privacy.hmac_key = self.privacy.hmac_key.clone();
        }
        config.data_dir = self.data_dir.join("apps").join(name);
        config.models.dir = self.models.dir.as_ref().map(|d| d.join("apps").join(name));
        config.store.url = self.store.url.clone();
        config.store.schema = self.store.url.as_ref().map(|_| match &self.store.schema {
            Some(schema) => format!("{schema}_{name}"),
            None => format!("app_{name}"),
        });
        config.server = self.server.clone();
        config.apps.clear();
        config
            .validate()
            .map_err(|e| ConfigError(format!("apps.{name}: {}", e.0)))?;
        Ok(config)
    }

    /// The folder of model versions and their registry: `models.dir`, else `data_dir/models`.
    pub fn models_dir(&self) -> PathBuf {
        self.models
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("models"))
    }

    /// Fits the model set this configuration serves: `train` for the models, the default
    /// placement for the ranker's candidates and `serve`'s history rules for its examples. The one
    /// definition that `cairn train`, the serve loop and `cairn eval --models pipeline` share, so
    /// what is evaluated is what is served.
    pub fn fit_model_set(
        &self,
        snapshot: &Snapshot,
        catalog: &[Item],
        trained_at: i64,
    ) -> Result<ModelSet, EngineError> {
        self.fit_model_set_with_progress(snapshot, catalog, trained_at, &cairn_models::Silent)
    }

    /// [`Config::fit_model_set`], telling `progress` how far it got (see
    /// [`cairn_pipeline::fit::TRAINING_STAGE`]).
    pub fn fit_model_set_with_progress(
        &self,
        snapshot: &Snapshot,
        catalog: &[Item],
        trained_at: i64,
        progress: &dyn cairn_models::Progress,
    ) -> Result<ModelSet, EngineError> {
        Ok(ModelSet::fit_with_progress(
            snapshot,
            catalog,
            &self.train,
            &self.serve.history(),
            self.default_placement()?,
            trained_at,
            progress,
        )?)
    }

    /// The placement that serves requests naming none, and that the ranker is trained for.
    pub fn default_placement(&self) -> Result<&PlacementConfig, EngineError> {
        let serve = &self.serve;
        serve
            .placements
            .get(&serve.default_placement)
            .ok_or_else(|| {
                EngineError::Artifact("serve.default_placement is not configured".into())
            })
    }

    /// Defaults, then the TOML file if given, then `CAIRN_*` environment variables.
    ///
    /// The default model is left out of the merged defaults and applied only when neither the file
    /// nor the environment names one: merged key by key, a configured model would inherit the
    /// default's parameters (another model's `factors`, or a second solver beside the one chosen).
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut defaults = Config::default();
        let default_model = defaults.train.model.take();
        let mut figment = Figment::from(Serialized::defaults(defaults));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(format!(
                    "file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        let figment = figment.merge(
            Env::prefixed("CAIRN_")
                .filter(|key| is_config_key(key.as_str()))
                .split("__"),
        );
        // The left-out default serializes as an empty value, which is not a choice of model.
        let names_a_model = matches!(
            figment.find_value("train.model"),
            Ok(v) if !matches!(v, figment::value::Value::Empty(..))
        );
        let mut config: Config = figment.extract().map_err(describe)?;
        if !names_a_model {
            config.train.model = default_model;
        }
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.event_types
            .validate()
            .map_err(|e| ConfigError(e.to_string()))?;
        self.experiments.validate(&self.event_types)?;
        let s = &self.serve;
        if s.max_k == 0 || s.default_k == 0 || s.default_k > s.max_k {
            return Err(ConfigError(
                "serve.default_k must be between 1 and serve.max_k".into(),
            ));
        }
        if s.recent_items == 0 || s.history_limit < s.recent_items {
            return Err(ConfigError(
                "serve.recent_items must be at least 1 and at most serve.history_limit".into(),
            ));
        }
        if self.store.cache_bytes < 1024 * 1024 {
            return Err(ConfigError(
                "store.cache_bytes must be at least 1048576 (1 MiB)".into(),
            ));
        }
        if let Some(url) = &self.store.url {
            if !is_postgres_url(url) {
                return Err(ConfigError(
                    "store.url must be a PostgreSQL URL starting with postgres:// or postgresql://"
                        .into(),
                ));
            }
        }
        if let Some(schema) = &self.store.schema {
            if schema.is_empty()
                || schema.len() > 63
                || !schema
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(ConfigError(format!(
                    "store.schema `{schema}`: use letters, digits, `_` and `-`, at most 63 bytes"
                )));
            }
        }
        for name in self.apps.keys() {
            self.app(name)?;
        }
        if s.list_window == 0 || s.cursor_cache == 0 || s.cursor_cache_bytes == 0 {
            return Err(ConfigError(
                "serve.list_window, serve.cursor_cache and serve.cursor_cache_bytes must be at least 1".into(),
            ));
        }
        if !s.placements.contains_key(&s.default_placement) {
            return Err(ConfigError(format!(
                "serve.default_placement `{}` is not among serve.placements",
                s.default_placement
            )));
        }
        for (name, p) in &s.placements {
            p.validate(name).map_err(ConfigError)?;
        }
        self.train.validate().map_err(ConfigError)?;
        if self.server.storage_retry_secs == 0 {
            return Err(ConfigError(
                "server.storage_retry_secs must be at least 1 (seconds between test writes while \
                 the disk refuses writes)"
                    .into(),
            ));
        }
        self.auth.validate()?;
        self.privacy.validate()?;
        self.models.validate()?;
        self.shadow.validate()?;
        self.server.validate()?;
        self.drift.validate()?;
        self.stream.validate()?;
        Ok(())
    }
}

impl ServerConfig {
    /// TLS needs both files or neither, and both must be readable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (None, None) => Ok(()),
            (Some(_), None) | (None, Some(_)) => Err(ConfigError(
                "server.tls_cert and server.tls_key go together: set both (PEM files) or neither"
                    .into(),
            )),
            (Some(cert), Some(key)) => {
                for (name, path) in [("server.tls_cert", cert), ("server.tls_key", key)] {
                    if let Err(e) = std::fs::metadata(path) {
                        return Err(ConfigError(format!(
                            "{name}: cannot read {}: {e}",
                            path.display()
                        )));
                    }
                }
                Ok(())
            }
        }
    }
}

impl ServeConfig {
    /// How a user's history becomes the pipeline's inputs, for serving and ranker training alike.
    pub fn history(&self) -> HistoryConfig {
        HistoryConfig {
            history_limit: self.history_limit,
            recent_items: self.recent_items,
            recency_half_life_days: self.recency_half_life_days,
        }
    }
}

/// Whether a `CAIRN_*` variable (prefix stripped) names a configuration key. Other `CAIRN_*`
/// variables (`CAIRN_LOG`, `CAIRN_CONFIG`, test and CI settings) are not configuration.
/// Whether a `CAIRN_` variable (prefix removed) names a configuration key: a top-level key, or a
/// key inside a section. The sections are read off [`Config`] itself, so a new section (`ingest`,
/// `auth`) is settable from the environment without a list here to keep up to date.
fn is_config_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(Config::default()) else {
        return false;
    };
    fields.iter().any(|(name, value)| {
        if value.is_object() {
            key.starts_with(&format!("{name}__"))
        } else {
            key == *name
        }
    })
}

/// Whether `s` is a PostgreSQL connection URL (`postgres://…` or `postgresql://…`).
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_models::ModelSpec;

    #[test]
    fn defaults_need_no_file_and_files_override_them() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.server.port, 8080);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.toml");
        std::fs::write(
            &path,
            "data_dir = \"/tmp/x\"\n[server]\nport = 9001\n[event_types.play]\nkind = \"implicit\"\nweight = 3.0\n",
        )
        .unwrap();
        let c = Config::load(Some(&path)).unwrap();
        assert_eq!(c.server.port, 9001);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert!(c.event_types.get("play").is_some());
    }

    #[test]
    fn a_configured_model_takes_nothing_from_the_default_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Config::load(Some(&path)).map(|c| c.train.model)
        };
        // The default ALS uses another solver: the file's must be the only one.
        let model = load("[train.model]\nmodel = \"als\"\n[train.model.solver.cg]\nsteps = 3\n");
        match model.unwrap() {
            Some(ModelSpec::Als(als)) => {
                assert_eq!(als.solver, cairn_models::AlsSolver::Cg { steps: 3 })
            }
            other => panic!("{other:?}"),
        }
        let model = load("[train.model]\nmodel = \"ease\"\nlambda = 100.0\n").unwrap();
        assert!(matches!(model, Some(ModelSpec::Ease(e)) if e.lambda == 100.0));
        // No model named: the default.
        let model = load("[server]\nport = 9001\n").unwrap();
        assert_eq!(model, Config::default().train.model);
    }

    #[test]
    fn only_configuration_variables_are_read() {
        assert!(is_config_key("DATA_DIR"));
        assert!(is_config_key("SERVER__PORT"));
        // Every section, the newer ones too.
        for key in [
            "TRAIN__INTERVAL_SECS",
            "SERVE__HISTORY_LIMIT",
            "INGEST__MAX_FUTURE_SECS",
            "AUTH__INSECURE",
            "DRIFT__WINDOW_SECS",
            "EVENT_TYPES__VIEW__WEIGHT",
        ] {
            assert!(is_config_key(key), "{key}");
        }
        assert!(!is_config_key("LOG"));
        assert!(!is_config_key("PEERS_PYTHON"));
        assert!(!is_config_key("SERVERX"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.toml");
        std::fs::write(&path, "[server]\nprot = 9001\n").unwrap();
        let message = Config::load(Some(&path)).unwrap_err().0;
        assert!(message.contains("`server.prot`"), "{message}");
        assert!(message.contains("cairn.toml"), "{message}");
        assert!(!message.contains("default."), "{message}");
        std::fs::write(&path, "[serve]\ndefault_k = 0\n").unwrap();
        assert!(Config::load(Some(&path)).is_err());
        assert!(Config::load(Some(&dir.path().join("missing.toml"))).is_err());
    }

    #[test]
    fn tls_needs_both_files_and_they_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let mut server = ServerConfig {
            tls_cert: Some(cert.clone()),
            ..ServerConfig::default()
        };
        let message = server.validate().unwrap_err().0;
        assert!(message.contains("go together"), "{message}");
        server.tls_key = Some(dir.path().join("key.pem"));
        let message = server.validate().unwrap_err().0;
        assert!(
            message.contains("server.tls_cert: cannot read"),
            "{message}"
        );
        std::fs::write(&cert, "x").unwrap();
        std::fs::write(dir.path().join("key.pem"), "x").unwrap();
        assert!(server.validate().is_ok());
        assert!(ServerConfig::default().validate().is_ok());
    }

    #[test]
    fn store_url_must_name_postgres() {
        let mut c = Config::default();
        assert_eq!(c.store.url, None, "the embedded store is the default");
        c.store.url = Some("postgres://cairn@db:5432/cairn".into());
        assert!(c.validate().is_ok());
        c.store.url = Some("mysql://db/cairn".into());
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("store.url"), "{err}");
    }

    #[test]
    fn the_stream_is_off_by_default_and_its_settings_are_checked() {
        let c = Config::default();
        assert_eq!(c.stream.redis_url, None, "no consumer unless configured");
        let check = |f: &dyn Fn(&mut StreamConfig)| {
            let mut c = Config::default();
            c.stream.redis_url = Some("redis://127.0.0.1:6379".into());
            f(&mut c.stream);
            c.validate().map_err(|e| e.to_string())
        };
        assert!(check(&|_| {}).is_ok());
        for (bad, key) in [
            (
                &(|s: &mut StreamConfig| s.redis_url = Some("http://x".into()))
                    as &dyn Fn(&mut StreamConfig),
                "stream.redis_url",
            ),
            (&|s: &mut StreamConfig| s.batch = 0, "stream.batch"),
            (&|s: &mut StreamConfig| s.block_ms = 0, "stream.block_ms"),
            (&|s: &mut StreamConfig| s.key = String::new(), "stream.key"),
            (
                &|s: &mut StreamConfig| s.consumer = Some(String::new()),
                "stream.consumer",
            ),
        ] {
            let err = check(bad).unwrap_err();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn an_apps_configuration_is_the_deployments_with_its_own_table_over_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.toml");
        std::fs::write(
            &path,
            "data_dir = \"/srv/cairn\"\n[serve]\ndefault_k = 7\n[train.model]\nmodel = \"als\"\n\
             [apps.shop-a]\n[apps.shop-b.quota]\nmax_events = 1000\n[apps.shop-b.serve]\nmax_k = 50\n\
             [apps.shop-b.train.model]\nmodel = \"ease\"\nlambda = 10.0\n",
        )
        .unwrap();
        let c = Config::load(Some(&path)).unwrap();
        assert_eq!(c.app_names(), ["shop-a", "shop-b"]);
        let a = c.app("shop-a").unwrap();
        assert_eq!(a.data_dir, PathBuf::from("/srv/cairn/apps/shop-a"));
        assert_eq!(
            a.models_dir(),
            PathBuf::from("/srv/cairn/apps/shop-a/models")
        );
        assert_eq!(a.serve.default_k, 7);
        assert_eq!(a.train.model, c.train.model);
        assert!(a.apps.is_empty());
        assert_eq!(a.store.schema, None, "the embedded store has no schema");
        let b = c.app("shop-b").unwrap();
        assert_eq!((b.quota.max_events, b.quota.max_items), (1000, 0));
        assert_eq!((b.serve.default_k, b.serve.max_k), (7, 50));
        assert!(matches!(b.train.model, Some(ModelSpec::Ease(e)) if e.lambda == 10.0));
        assert_eq!(
            c.quota,
            QuotaConfig::default(),
            "the default app has no quota"
        );
        assert!(c.app("shop-c").unwrap_err().0.contains("[apps.shop-c]"));
        // The HMAC key, which is never serialized, is the deployment's too.
        let mut private = c.clone();
        private.privacy.hmac_key = Some("k".repeat(32));
        assert_eq!(
            private.app("shop-a").unwrap().privacy.hmac_key,
            private.privacy.hmac_key
        );

        // Over PostgreSQL, a schema of its own.
        let mut pg = c.clone();
        pg.store.url = Some("postgres://db/cairn".into());
        assert_eq!(
            pg.app("shop-a").unwrap().store.schema.as_deref(),
            Some("app_shop-a")
        );
        pg.store.schema = Some("cairn".into());
        assert_eq!(
            pg.app("shop-a").unwrap().store.schema.as_deref(),
            Some("cairn_shop-a")
        );
        pg.store.schema = Some("bad;schema".into());
        assert!(pg.validate().unwrap_err().0.contains("store.schema"));
    }

    #[test]
    fn app_names_and_tables_are_checked() {
        for bad in ["", "Shop", "-a", "a/b", "..", "a b", &"x".repeat(33)] {
            let mut c = Config::default();
            c.apps.insert(bad.to_string(), serde_json::json!({}));
            assert!(c.validate().is_err(), "`{bad}` accepted");
        }
        for good in ["a", "shop-1", "9_x"] {
            assert!(is_app_name(good), "{good}");
        }
        let refused = |table: serde_json::Value| {
            let mut c = Config::default();
            c.apps.insert("a".into(), table);
            c.validate().unwrap_err().0
        };
        for (table, key) in [
            (serde_json::json!({"data_dir": "/x"}), "apps.a.data_dir"),
            (serde_json::json!({"server": {"port": 1}}), "apps.a.server"),
            (
                serde_json::json!({"store": {"url": "postgres://x/y"}}),
                "apps.a.store.url",
            ),
            (
                serde_json::json!({"models": {"dir": "/m"}}),
                "apps.a.models.dir",
            ),
            (serde_json::json!({"apps": {"b": {}}}), "apps.a.apps"),
        ] {
            let message = refused(table);
            assert!(message.contains(key), "{message}");
        }
        let message = refused(serde_json::json!({"serve": {"default_k": 0}}));
        assert!(message.starts_with("apps.a: "), "{message}");
        let message = refused(serde_json::json!({"quota": {"max_itemz": 3}}));
        assert!(message.contains("max_itemz"), "{message}");
        assert!(refused(serde_json::json!(3)).contains("must be a table"));
    }
}

/// The `[shadow]` section: shadow tests (docs/OPERATIONS.md, "Shadow tests"). A challenger scores a
/// hash-sampled share of live recommendation requests after their response is computed, on a
/// worker thread fed by a bounded queue (a full queue drops the shadow work, never delays the
/// response), and its list is compared with the served one (`GET /v1/shadow`, `cairn_shadow_*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShadowConfig {
    /// Whether shadow tests run.
    pub enabled: bool,
    /// The version that scores in the shadow: `challenger` (the alias, followed when it moves) or
    /// a version name.
    pub challenger: String,
    /// Share of users (by a salted hash of the user id, so a user is always in or always out)
    /// whose first-page requests are scored in the shadow, 0 to 1.
    pub sample_share: f64,
    /// Salt of the sampling hash.
    pub salt: String,
    /// Requests waiting for the shadow worker at most; more are dropped (and counted).
    pub queue_capacity: usize,
    /// How long after a shadow comparison a user's events count as engagement with the items the
    /// challenger would have added or removed, in seconds.
    pub window_secs: u64,
    /// Users whose shadow comparison waits for their events at most (the oldest expired ones are
    /// swept first; beyond that, new comparisons are not followed and are counted).
    pub max_pending_users: usize,
    /// Persistence of the rank-biased overlap, in (0, 1): the weight of rank d is p^(d-1).
    pub rbo_p: f64,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        ShadowConfig {
            enabled: false,
            challenger: "challenger".into(),
            sample_share: 0.1,
            salt: "cairn-shadow-1".into(),
            queue_capacity: 1024,
            window_secs: 1800,
            max_pending_users: 100_000,
            rbo_p: 0.9,
        }
    }
}

impl ShadowConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: &str| Err(ConfigError(m.into()));
        if !(0.0..=1.0).contains(&self.sample_share) {
            return err("shadow.sample_share must be between 0 and 1");
        }
        if self.queue_capacity == 0 || self.max_pending_users == 0 {
            return err("shadow.queue_capacity and shadow.max_pending_users must be at least 1");
        }
        if !(self.rbo_p > 0.0 && self.rbo_p < 1.0) {
            return err("shadow.rbo_p must be strictly between 0 and 1 (e.g. 0.9)");
        }
        if self.challenger.trim().is_empty() {
            return err("shadow.challenger must be `challenger` or a version name");
        }
        Ok(())
    }
}

/// The `[models.guardrails]` section: after a promotion, the new champion's live error rate and
/// empty-list rate are watched for `window_secs`; once `min_requests` were served, a rate above its
/// threshold rolls the champion back (recorded in the alias history by `guardrail`, with the
/// reason).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardrailConfig {
    /// Whether promotions are watched.
    pub enabled: bool,
    /// How long after a promotion the champion is watched, in seconds.
    pub window_secs: u64,
    /// Requests the new champion must have served before a rate is judged.
    pub min_requests: u64,
    /// Highest share of recommendation requests that may fail with a server error (storage,
    /// model), 0 to 1.
    pub max_error_rate: f64,
    /// Highest share of first-page recommendation requests without filter or category that may
    /// come back empty, 0 to 1.
    pub max_empty_rate: f64,
    /// How often the watcher looks at the rates, in milliseconds.
    pub check_interval_ms: u64,
}

impl Default for GuardrailConfig {
    fn default() -> Self {
        GuardrailConfig {
            enabled: false,
            window_secs: 600,
            min_requests: 50,
            max_error_rate: 0.05,
            max_empty_rate: 0.2,
            check_interval_ms: 250,
        }
    }
}

impl GuardrailConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, v) in [
            ("max_error_rate", self.max_error_rate),
            ("max_empty_rate", self.max_empty_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(ConfigError(format!(
                    "models.guardrails.{name} must be between 0 and 1"
                )));
            }
        }
        if self.min_requests == 0 || self.window_secs == 0 || self.check_interval_ms == 0 {
            return Err(ConfigError(
                "models.guardrails.min_requests, window_secs and check_interval_ms must be at least 1"
                    .into(),
            ));
        }
        Ok(())
    }
}
