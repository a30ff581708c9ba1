//! Drift and health monitoring: per window of served traffic, how far the events and the served
//! lists are from the data the champion was trained on.
//!
//! - **The reference** ([`DriftReference`]) is built while a training reads the event log and saved
//!   beside the version as `models/drift-<version>.json`, so it survives restarts and is loaded again
//!   whenever that version becomes the champion: the event count, the event-type mix, the
//!   `drift.top_items` most frequent items with their counts (and one count for all others), and
//!   two Bloom filters (1% false positives) of the users and items the training read.
//! - **A window** counts, from the ingest path ([`DriftMonitor::record_events`]) and the
//!   recommendation path ([`DriftMonitor::record_list`]): events and their types; events per
//!   reference bin (top items + `other`); events on new items and from new users (not in the
//!   filters; a filter's false positive counts a new one as known, so those shares are
//!   underestimated by at most about 1%); lists served, items served, items from the popularity
//!   source; each served item's exposure; a histogram of the served scores.
//! - **Bounded state**: a window holds `top_items + 1` popularity bins, one counter per event type
//!   (the configured types), 100 score bins, and at most `drift.max_tracked_items` exposure
//!   counters (beyond them, exposures go to one overflow count and coverage becomes a lower
//!   bound); at most `drift.history_windows` closed windows are kept, each as a small report.
//! - **When a window closes** (the first record or read after its end), its report is computed:
//!   PSI and JS of its popularity bins against the reference's, PSI of the event-type mix, the new
//!   item and new user shares, coverage (distinct items served / catalog), the Gini of exposure over
//!   the catalog (`cairn_eval::metrics::gini`, items never served count as 0), the fallback share,
//!   score quantiles; then the thresholds of `[drift]` that the figures pass.
//!
//! The math (smoothing, PSI, JS) lives in `cairn_eval::divergence`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cairn_core::Event;
use cairn_eval::divergence::compare_counts;
use serde::{Deserialize, Serialize};

use crate::config::DriftConfig;
use crate::recommend::{Recommendation, RecommendationSource};

/// Bins of the score histogram over [0, 1] (served scores are relative to the list's best).
const SCORE_BINS: usize = 100;
/// False-positive rate of the reference's user and item filters.
const FILTER_FPR: f64 = 0.01;

/// The 64-bit key of an id in the reference's filters: FNV-1a, stable across builds and
/// platforms (the filters are saved to disk).
pub fn id_key(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A Bloom filter of id keys ([`id_key`]): `contains` is never false for a key that was added and
/// true for another one with probability about the rate it was sized for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bloom {
    bits: u64,
    hashes: u32,
    /// The bit array, as 16 hex digits per 64-bit word.
    #[serde(with = "hex_words")]
    words: Vec<u64>,
}

impl Bloom {
    /// A filter holding `keys`, sized for a false-positive rate of `fpr`.
    pub fn from_keys(keys: &HashSet<u64>, fpr: f64) -> Bloom {
        let n = keys.len().max(1) as f64;
        let ln2 = std::f64::consts::LN_2;
        let bits = ((-n * fpr.ln() / (ln2 * ln2)).ceil() as u64).max(64);
        let hashes = ((bits as f64 / n * ln2).round() as u32).clamp(1, 16);
        let mut bloom = Bloom {
            bits,
            hashes,
            words: vec![0; bits.div_ceil(64) as usize],
        };
        for &k in keys {
            for bit in probes(k, bits, hashes) {
                bloom.words[(bit / 64) as usize] |= 1 << (bit % 64);
            }
        }
        bloom
    }

    pub fn contains(&self, key: u64) -> bool {
        self.bits > 0
            && probes(key, self.bits, self.hashes).all(|bit| {
                self.words
                    .get((bit / 64) as usize)
                    .is_some_and(|w| (w & (1 << (bit % 64))) != 0)
            })
    }
}

/// The `hashes` bits of `key` in a filter of `bits` bits (double hashing).
fn probes(key: u64, bits: u64, hashes: u32) -> impl Iterator<Item = u64> {
    let h1 = mix64(key);
    let h2 = mix64(key ^ 0x5851_f42d_4c95_7f2d) | 1;
    (0..u64::from(hashes)).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % bits)
}

mod hex_words {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(words: &[u64], s: S) -> Result<S::Ok, S::Error> {
        let mut text = String::with_capacity(words.len() * 16);
        for w in words {
            text.push_str(&format!("{w:016x}"));
        }
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        let text = String::deserialize(d)?;
        if !text.len().is_multiple_of(16) || !text.is_ascii() {
            return Err(serde::de::Error::custom(
                "a filter's words are 16 hex digits each",
            ));
        }
        (0..text.len() / 16)
            .map(|i| {
                u64::from_str_radix(&text[i * 16..(i + 1) * 16], 16)
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

/// One of the reference's most frequent items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemCount {
    pub item: String,
    pub events: u64,
}

/// What a version's training data looked like, for drift: saved beside the version as
/// `models/drift-<version>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReference {
    pub version: String,
    /// Events read by the training (all types).
    pub events: u64,
    /// Of those, per event type.
    pub event_types: BTreeMap<String, u64>,
    /// The most frequent items, most frequent first (ties by id), one popularity bin each...
    pub top_items: Vec<ItemCount>,
    /// ...and the events on every other item, the `other` bin.
    pub other_events: u64,
    /// Distinct users and items read.
    pub users: u64,
    pub items: u64,
    pub user_filter: Bloom,
    pub item_filter: Bloom,
}

impl DriftReference {
    /// Where a version's reference lives in the models folder.
    pub fn path(models_dir: &Path, version: &str) -> PathBuf {
        models_dir.join(format!("drift-{version}.json"))
    }

    /// Writes it beside its version (temp file, fsync, rename).
    pub fn save(&self, models_dir: &Path) -> std::io::Result<()> {
        let path = Self::path(models_dir, &self.version);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        fs::create_dir_all(models_dir)?;
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    }

    /// The reference saved with `version`; `None` when there is none (a version trained before
    /// drift monitoring) or it cannot be read (logged).
    pub fn load(models_dir: &Path, version: &str) -> Option<DriftReference> {
        let path = Self::path(models_dir, version);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the drift reference");
                return None;
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable drift reference");
                None
            }
        }
    }

    /// The popularity bins' counts: one per top item, then `other`.
    fn bin_counts(&self) -> Vec<f64> {
        self.top_items
            .iter()
            .map(|c| c.events as f64)
            .chain(std::iter::once(self.other_events as f64))
            .collect()
    }
}

/// Collects a [`DriftReference`] while a training scans the log.
#[derive(Debug, Default)]
pub struct ReferenceBuilder {
    events: u64,
    event_types: BTreeMap<String, u64>,
    item_counts: HashMap<String, u64>,
    users: HashSet<u64>,
}

impl ReferenceBuilder {
    pub fn add(&mut self, user_id: &str, item_id: &str, event_type: &str) {
        self.events += 1;
        if let Some(n) = self.event_types.get_mut(event_type) {
            *n += 1;
        } else {
            self.event_types.insert(event_type.to_string(), 1);
        }
        if let Some(n) = self.item_counts.get_mut(item_id) {
            *n += 1;
        } else {
            self.item_counts.insert(item_id.to_string(), 1);
        }
        self.users.insert(id_key(user_id));
    }

    /// The reference of `version`, with its `top_items` most frequent items as bins.
    pub fn finish(self, version: &str, top_items: usize) -> DriftReference {
        let item_keys: HashSet<u64> = self.item_counts.keys().map(|i| id_key(i)).collect();
        let mut counts: Vec<(String, u64)> = self.item_counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let items = counts.len() as u64;
        let top: Vec<ItemCount> = counts
            .iter()
            .take(top_items)
            .map(|(item, events)| ItemCount {
                item: item.clone(),
                events: *events,
            })
            .collect();
        let in_top: u64 = top.iter().map(|c| c.events).sum();
        DriftReference {
            version: version.to_string(),
            events: self.events,
            event_types: self.event_types,
            top_items: top,
            other_events: self.events - in_top,
            users: self.users.len() as u64,
            items,
            user_filter: Bloom::from_keys(&self.users, FILTER_FPR),
            item_filter: Bloom::from_keys(&item_keys, FILTER_FPR),
        }
    }
}

/// A reference with its bins looked up by item id.
#[derive(Debug)]
struct Indexed {
    reference: DriftReference,
    bins: HashMap<String, usize>,
}

impl Indexed {
    fn new(reference: DriftReference) -> Indexed {
        let bins = reference
            .top_items
            .iter()
            .enumerate()
            .map(|(i, c)| (c.item.clone(), i))
            .collect();
        Indexed { reference, bins }
    }

    fn other_bin(&self) -> usize {
        self.reference.top_items.len()
    }
}

/// Three quantiles of the served scores, from a 100-bin histogram (each to within 0.01).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreQuantiles {
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
}

/// The figures of one window and the thresholds they passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowReport {
    /// Unix seconds (fractional) of the window's start and end (the end is where it was cut when
    /// the champion changed within it).
    pub started_at: f64,
    pub ended_at: f64,
    /// False for the window still counting (its figures so far).
    pub complete: bool,
    /// The champion whose training data the window is compared with; `None` when none serves or
    /// it has no saved reference (then the input figures are `None`).
    pub reference_version: Option<String>,
    /// Events stored in the window (duplicates not counted), and per type.
    pub events: f64,
    pub event_types: BTreeMap<String, f64>,
    /// PSI of the event-type mix against the training data's.
    pub event_mix_psi: Option<f64>,
    /// Share of the window's events on items, and from users, that the training did not read.
    pub new_item_share: Option<f64>,
    pub new_user_share: Option<f64>,
    /// PSI and Jensen–Shannon divergence (nats) of the item popularity (the reference's top items
    /// and `other`) against the training data's, over `popularity_bins` bins.
    pub popularity_psi: Option<f64>,
    pub popularity_js: Option<f64>,
    pub popularity_bins: usize,
    /// Recommendation lists served (first pages), of them empty, and items on them.
    pub lists: u64,
    pub empty_lists: u64,
    pub items_served: u64,
    /// Distinct items served; `exposure_truncated` when more than `drift.max_tracked_items` were
    /// (the count and coverage are then lower bounds and the Gini leaves the others out).
    pub distinct_items_served: u64,
    pub exposure_truncated: bool,
    /// Distinct items served / items in the catalog.
    pub coverage: Option<f64>,
    /// Gini of the items' exposure over the catalog (0 = even; unserved items count as 0).
    pub exposure_gini: Option<f64>,
    /// Share of the served items that came from the popularity source.
    pub fallback_share: Option<f64>,
    pub score_quantiles: Option<ScoreQuantiles>,
    /// The thresholds this window passed: `popularity_psi`, `popularity_js`, `event_mix_psi`,
    /// `new_item_share`, `new_user_share` (input drift) and `fallback_share` (output health).
    pub alarms: Vec<String>,
    /// Whether an input threshold fired (what `drift.retrain_on_alarm` acts on).
    pub input_alarm: bool,
}

/// The thresholds the windows are judged by (from `[drift]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftThresholds {
    pub psi_alarm: f64,
    pub js_alarm: f64,
    pub event_mix_psi_alarm: f64,
    pub new_item_share_alarm: f64,
    pub new_user_share_alarm: f64,
    pub fallback_share_alarm: f64,
    pub min_window_events: u64,
    pub min_window_lists: u64,
}

/// What `GET /v1/drift` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftStatus {
    pub enabled: bool,
    pub window_secs: u64,
    /// The version the current window is compared with.
    pub reference_version: Option<String>,
    pub thresholds: DriftThresholds,
    /// Complete windows, oldest first (at most `drift.history_windows`).
    pub windows: Vec<WindowReport>,
    /// The window still counting.
    pub current: Option<WindowReport>,
    /// Complete windows that raised any alarm, and an input alarm, since the server started.
    pub windows_alarmed: u64,
    pub input_alarms: u64,
}

/// One window's counters.
#[derive(Debug)]
struct Window {
    start_ms: i64,
    end_ms: i64,
    reference: Option<Arc<Indexed>>,
    events: f64,
    event_types: BTreeMap<String, f64>,
    bins: Vec<f64>,
    new_items: f64,
    new_users: f64,
    lists: u64,
    empty_lists: u64,
    items_served: u64,
    fallback_items: u64,
    exposure: HashMap<String, u64>,
    exposure_overflow: u64,
    scores: Vec<u64>,
}

impl Window {
    fn new(start_ms: i64, end_ms: i64, reference: Option<Arc<Indexed>>) -> Window {
        let bins = reference.as_ref().map_or(0, |r| r.other_bin() + 1);
        Window {
            start_ms,
            end_ms,
            reference,
            events: 0.0,
            event_types: BTreeMap::new(),
            bins: vec![0.0; bins],
            new_items: 0.0,
            new_users: 0.0,
            lists: 0,
            empty_lists: 0,
            items_served: 0,
            fallback_items: 0,
            exposure: HashMap::new(),
            exposure_overflow: 0,
            scores: vec![0; SCORE_BINS],
        }
    }

    fn is_empty(&self) -> bool {
        self.events == 0.0 && self.lists == 0
    }

    fn report(
        &self,
        ended_ms: i64,
        complete: bool,
        catalog: usize,
        config: &DriftConfig,
    ) -> WindowReport {
        let share = |n: f64, of: f64| (of > 0.0).then(|| n / of);
        let reference = self.reference.as_deref().map(|r| &r.reference);
        let (popularity_psi, popularity_js) = match reference {
            Some(r) => compare_counts(&self.bins, &r.bin_counts(), config.smoothing)
                .map_or((None, None), |(p, j)| (Some(p), Some(j))),
            None => (None, None),
        };
        let event_mix_psi = reference.and_then(|r| {
            let names: Vec<&String> = r
                .event_types
                .keys()
                .chain(self.event_types.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let window: Vec<f64> = names
                .iter()
                .map(|n| self.event_types.get(*n).copied().unwrap_or(0.0))
                .collect();
            let trained: Vec<f64> = names
                .iter()
                .map(|n| r.event_types.get(*n).copied().unwrap_or(0) as f64)
                .collect();
            compare_counts(&window, &trained, config.smoothing).map(|(p, _)| p)
        });
        let (new_item_share, new_user_share) = match reference {
            Some(_) => (
                share(self.new_items, self.events),
                share(self.new_users, self.events),
            ),
            None => (None, None),
        };
        let distinct = self.exposure.len() as u64;
        let coverage = (catalog > 0 && self.lists > 0).then(|| distinct as f64 / catalog as f64);
        let exposure_gini = if self.items_served > 0 {
            let mut values: Vec<f64> = self.exposure.values().map(|&v| v as f64).collect();
            values.resize(catalog.max(values.len()), 0.0);
            cairn_eval::metrics::gini(&values)
        } else {
            None
        };
        let fallback_share = share(self.fallback_items as f64, self.items_served as f64);
        let score_quantiles = score_quantiles(&self.scores);
        let mut alarms = Vec::new();
        if reference.is_some() && self.events >= config.min_window_events as f64 {
            let checks = [
                ("popularity_psi", popularity_psi, config.psi_alarm),
                ("popularity_js", popularity_js, config.js_alarm),
                ("event_mix_psi", event_mix_psi, config.event_mix_psi_alarm),
                (
                    "new_item_share",
                    new_item_share,
                    config.new_item_share_alarm,
                ),
                (
                    "new_user_share",
                    new_user_share,
                    config.new_user_share_alarm,
                ),
            ];
            for (name, value, threshold) in checks {
                if value.is_some_and(|v| v >= threshold) {
                    alarms.push(name.to_string());
                }
            }
        }
        let input_alarm = !alarms.is_empty();
        if self.lists >= config.min_window_lists
            && fallback_share.is_some_and(|v| v >= config.fallback_share_alarm)
        {
            alarms.push("fallback_share".to_string());
        }
        WindowReport {
            started_at: self.start_ms as f64 / 1000.0,
            ended_at: ended_ms as f64 / 1000.0,
            complete,
            reference_version: reference.map(|r| r.version.clone()),
            events: self.events,
            event_types: self.event_types.clone(),
            event_mix_psi,
            new_item_share,
            new_user_share,
            popularity_psi,
            popularity_js,
            popularity_bins: self.bins.len(),
            lists: self.lists,
            empty_lists: self.empty_lists,
            items_served: self.items_served,
            distinct_items_served: distinct,
            exposure_truncated: self.exposure_overflow > 0,
            coverage,
            exposure_gini,
            fallback_share,
            score_quantiles,
            alarms,
            input_alarm,
        }
    }
}

/// p10, p50 and p90 of a histogram over [0, 1] (each bin's midpoint); `None` when it is empty.
fn score_quantiles(hist: &[u64]) -> Option<ScoreQuantiles> {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return None;
    }
    let at = |q: f64| {
        let rank = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in hist.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return (i as f64 + 0.5) / hist.len() as f64;
            }
        }
        1.0
    };
    Some(ScoreQuantiles {
        p10: at(0.1),
        p50: at(0.5),
        p90: at(0.9),
    })
}

#[derive(Debug)]
struct State {
    current: Window,
    history: VecDeque<WindowReport>,
    reference: Option<Arc<Indexed>>,
    windows_alarmed: u64,
    input_alarms: u64,
    retrain_due: bool,
}

/// The windows and the champion's reference; every method takes the time (Unix milliseconds)
/// and the catalog's size from its caller, so that it is pure bookkeeping (and testable).
#[derive(Debug)]
pub struct DriftMonitor {
    config: DriftConfig,
    state: Mutex<State>,
}

impl DriftMonitor {
    pub fn new(config: DriftConfig, reference: Option<DriftReference>, now_ms: i64) -> Self {
        let reference = reference.map(|r| Arc::new(Indexed::new(r)));
        let (start, end) = window_bounds(now_ms, config.window_secs);
        DriftMonitor {
            state: Mutex::new(State {
                current: Window::new(start, end, reference.clone()),
                history: VecDeque::new(),
                reference,
                windows_alarmed: 0,
                input_alarms: 0,
                retrain_due: false,
            }),
            config,
        }
    }

    pub fn config(&self) -> &DriftConfig {
        &self.config
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Compares from now on with `reference` (a new champion's). The current window, counted
    /// against the previous reference, is closed here (when it counted anything) so that no
    /// window mixes two references.
    pub fn set_reference(&self, reference: Option<DriftReference>, now_ms: i64, catalog: usize) {
        if !self.config.enabled {
            return;
        }
        let mut state = self.state();
        self.roll(&mut state, now_ms, catalog);
        let same = match (&state.reference, &reference) {
            (Some(a), Some(b)) => a.reference.version == b.version,
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        state.reference = reference.map(|r| Arc::new(Indexed::new(r)));
        let end = state.current.end_ms;
        let fresh = Window::new(now_ms, end, state.reference.clone());
        let old = std::mem::replace(&mut state.current, fresh);
        if !old.is_empty() {
            self.close(&mut state, &old, now_ms, catalog);
        }
    }

    /// Counts a batch of stored events; `weight` is the share of the batch that was stored
    /// (acknowledged duplicates are not new events).
    pub fn record_events(&self, events: &[Event], weight: f64, now_ms: i64, catalog: usize) {
        if !self.config.enabled || events.is_empty() || weight <= 0.0 {
            return;
        }
        let mut state = self.state();
        self.roll(&mut state, now_ms, catalog);
        let w = &mut state.current;
        for e in events {
            w.events += weight;
            if let Some(n) = w.event_types.get_mut(&e.event_type) {
                *n += weight;
            } else {
                w.event_types.insert(e.event_type.clone(), weight);
            }
            if let Some(r) = w.reference.clone() {
                let bin = r.bins.get(&e.item_id).copied().unwrap_or(r.other_bin());
                w.bins[bin] += weight;
                if !r.reference.item_filter.contains(id_key(&e.item_id)) {
                    w.new_items += weight;
                }
                if !r.reference.user_filter.contains(id_key(&e.user_id)) {
                    w.new_users += weight;
                }
            }
        }
    }

    /// Counts one served list (its first page).
    pub fn record_list(&self, items: &[Recommendation], now_ms: i64, catalog: usize) {
        if !self.config.enabled {
            return;
        }
        let mut state = self.state();
        self.roll(&mut state, now_ms, catalog);
        let cap = self.config.max_tracked_items;
        let w = &mut state.current;
        w.lists += 1;
        if items.is_empty() {
            w.empty_lists += 1;
        }
        for item in items {
            w.items_served += 1;
            if item.source == RecommendationSource::Popular {
                w.fallback_items += 1;
            }
            if let Some(n) = w.exposure.get_mut(&item.item_id) {
                *n += 1;
            } else if w.exposure.len() < cap {
                w.exposure.insert(item.item_id.clone(), 1);
            } else {
                w.exposure_overflow += 1;
            }
            let score = f64::from(item.score);
            let bin = if score.is_finite() {
                ((score.clamp(0.0, 1.0) * SCORE_BINS as f64) as usize).min(SCORE_BINS - 1)
            } else {
                0
            };
            w.scores[bin] += 1;
        }
    }

    /// Closes the windows that ended by `now_ms`; true when one of them raised an input alarm.
    pub fn tick(&self, now_ms: i64, catalog: usize) -> bool {
        if !self.config.enabled {
            return false;
        }
        let mut state = self.state();
        let before = state.input_alarms;
        self.roll(&mut state, now_ms, catalog);
        state.input_alarms > before
    }

    /// Whether an input alarm asked for a training since the last call (only with
    /// `drift.retrain_on_alarm`); clears it.
    pub fn take_retrain_due(&self) -> bool {
        std::mem::take(&mut self.state().retrain_due)
    }

    /// The recent windows, after closing those that ended by `now_ms`.
    pub fn status(&self, now_ms: i64, catalog: usize) -> DriftStatus {
        let c = &self.config;
        let thresholds = DriftThresholds {
            psi_alarm: c.psi_alarm,
            js_alarm: c.js_alarm,
            event_mix_psi_alarm: c.event_mix_psi_alarm,
            new_item_share_alarm: c.new_item_share_alarm,
            new_user_share_alarm: c.new_user_share_alarm,
            fallback_share_alarm: c.fallback_share_alarm,
            min_window_events: c.min_window_events,
            min_window_lists: c.min_window_lists,
        };
        if !c.enabled {
            return DriftStatus {
                enabled: false,
                window_secs: c.window_secs,
                reference_version: None,
                thresholds,
                windows: Vec::new(),
                current: None,
                windows_alarmed: 0,
                input_alarms: 0,
            };
        }
        let mut state = self.state();
        self.roll(&mut state, now_ms, catalog);
        DriftStatus {
            enabled: true,
            window_secs: c.window_secs,
            reference_version: state
                .reference
                .as_ref()
                .map(|r| r.reference.version.clone()),
            thresholds,
            windows: state.history.iter().cloned().collect(),
            current: Some(state.current.report(now_ms, false, catalog, c)),
            windows_alarmed: state.windows_alarmed,
            input_alarms: state.input_alarms,
        }
    }

    /// The newest complete window, if any.
    pub fn last_complete(&self, now_ms: i64, catalog: usize) -> Option<WindowReport> {
        if !self.config.enabled {
            return None;
        }
        let mut state = self.state();
        self.roll(&mut state, now_ms, catalog);
        state.history.back().cloned()
    }

    /// Closes the current window if it ended, and records the empty windows after it (at most
    /// as many as are kept) up to the one `now_ms` falls in.
    fn roll(&self, state: &mut State, now_ms: i64, catalog: usize) {
        if now_ms < state.current.end_ms {
            return;
        }
        let (start, end) = window_bounds(now_ms, self.config.window_secs);
        let reference = state.reference.clone();
        let old = std::mem::replace(&mut state.current, Window::new(start, end, reference));
        let old_end = old.end_ms;
        self.close(state, &old, old_end, catalog);
        let step = self.config.window_secs as i64 * 1000;
        let skipped = ((start - old_end) / step).clamp(0, self.config.history_windows as i64);
        for i in 0..skipped {
            let s = start - (skipped - i) * step;
            let empty = Window::new(s, s + step, state.reference.clone());
            self.close(state, &empty, s + step, catalog);
        }
    }

    fn close(&self, state: &mut State, window: &Window, ended_ms: i64, catalog: usize) {
        let report = window.report(ended_ms, true, catalog, &self.config);
        if !report.alarms.is_empty() {
            state.windows_alarmed += 1;
            tracing::warn!(
                alarms = %report.alarms.join(","),
                events = report.events,
                popularity_psi = ?report.popularity_psi,
                popularity_js = ?report.popularity_js,
                "drift alarm"
            );
        }
        if report.input_alarm {
            state.input_alarms += 1;
            if self.config.retrain_on_alarm {
                state.retrain_due = true;
            }
        }
        state.history.push_back(report);
        while state.history.len() > self.config.history_windows {
            state.history.pop_front();
        }
    }
}

/// Drift monitoring of this engine's traffic (the hooks of the ingest and recommendation paths,
/// and what the server reads).
impl crate::Engine {
    /// Counts a batch of `events` of which `stored` were new (the rest acknowledged duplicates).
    pub(crate) fn record_drift_events(&self, events: &[Event], stored: usize) {
        if events.is_empty() || stored == 0 {
            return;
        }
        let weight = stored as f64 / events.len() as f64;
        self.drift
            .record_events(events, weight, now_ms(), self.item_count());
    }

    /// Counts a served list when it is a first page (later pages of a list are not new lists).
    pub(crate) fn record_drift_list(&self, cursor: Option<&str>, items: &[Recommendation]) {
        if cursor.is_none() {
            self.drift.record_list(items, now_ms(), self.item_count());
        }
    }

    /// The recent windows and the current one (`GET /v1/drift`).
    pub fn drift_status(&self) -> DriftStatus {
        self.drift.status(now_ms(), self.item_count())
    }

    /// The newest complete window (the gauges).
    pub fn drift_last_window(&self) -> Option<WindowReport> {
        self.drift.last_complete(now_ms(), self.item_count())
    }

    /// Closes the windows that ended; true when `drift.retrain_on_alarm` is on and a closed
    /// window raised an input alarm since the last call (a training is then due).
    pub fn drift_tick(&self) -> bool {
        self.drift.tick(now_ms(), self.item_count());
        self.drift.take_retrain_due()
    }
}

/// The window `now_ms` falls in: `[start, end)` in Unix milliseconds, aligned to multiples of
/// `window_secs` since the epoch.
fn window_bounds(now_ms: i64, window_secs: u64) -> (i64, i64) {
    let step = (window_secs.max(1) as i64).saturating_mul(1000);
    let start = now_ms.div_euclid(step) * step;
    (start, start + step)
}

/// The current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DriftConfig {
        DriftConfig {
            window_secs: 10,
            min_window_events: 50,
            min_window_lists: 5,
            top_items: 3,
            ..DriftConfig::default()
        }
    }

    /// Training data: items a..e with counts 40, 30, 20, 5, 5 from users u0..u9.
    fn reference(version: &str) -> DriftReference {
        let mut b = ReferenceBuilder::default();
        for (item, n) in [("a", 40), ("b", 30), ("c", 20), ("d", 5), ("e", 5)] {
            for i in 0..n {
                b.add(&format!("u{}", i % 10), item, "view");
            }
        }
        b.finish(version, 3)
    }

    fn events(spec: &[(&str, usize)], user: &str) -> Vec<Event> {
        spec.iter()
            .flat_map(|(item, n)| (0..*n).map(move |_| Event::new(user, *item, "view")))
            .collect()
    }

    #[test]
    fn the_reference_keeps_the_top_items_and_filters_every_id() {
        let r = reference("v1");
        let top: Vec<&str> = r.top_items.iter().map(|c| c.item.as_str()).collect();
        assert_eq!(top, ["a", "b", "c"]);
        assert_eq!(r.other_events, 10);
        assert_eq!((r.users, r.items, r.events), (10, 5, 100));
        for id in ["a", "b", "c", "d", "e"] {
            assert!(r.item_filter.contains(id_key(id)), "{id}");
        }
        for u in 0..10 {
            assert!(r.user_filter.contains(id_key(&format!("u{u}"))));
        }
        // Saved and read back whole.
        let dir = tempfile::tempdir().unwrap();
        r.save(dir.path()).unwrap();
        assert_eq!(DriftReference::load(dir.path(), "v1"), Some(r));
        assert_eq!(DriftReference::load(dir.path(), "v2"), None);
    }

    #[test]
    fn the_bloom_filter_keeps_its_false_positive_rate() {
        let keys: HashSet<u64> = (0..10_000).map(|i| id_key(&format!("in-{i}"))).collect();
        let bloom = Bloom::from_keys(&keys, 0.01);
        assert!(keys.iter().all(|k| bloom.contains(*k)));
        let false_positives = (0..10_000)
            .filter(|i| bloom.contains(id_key(&format!("out-{i}"))))
            .count();
        assert!(false_positives < 200, "{false_positives} of 10000");
    }

    #[test]
    fn a_window_like_the_training_data_raises_no_alarm_and_a_shifted_one_does() {
        let m = DriftMonitor::new(config(), Some(reference("v1")), 0);
        // Window [0, 10 s): the training mix, 4x.
        let same = events(
            &[("a", 160), ("b", 120), ("c", 80), ("d", 20), ("e", 20)],
            "u1",
        );
        m.record_events(&same, 1.0, 1_000, 5);
        // Window [10 s, 20 s): most events on d and a new item.
        m.record_events(&events(&[("d", 200), ("f", 100)], "new"), 1.0, 12_000, 6);
        assert!(!m.tick(15_000, 6), "the shifted window is not over yet");
        assert!(m.tick(20_000, 6));
        let status = m.status(20_500, 6);
        assert_eq!(status.windows.len(), 2);
        let (calm, shifted) = (&status.windows[0], &status.windows[1]);
        assert!(calm.alarms.is_empty(), "{calm:?}");
        assert!(calm.popularity_psi.unwrap() < 0.01);
        assert_eq!(calm.new_item_share, Some(0.0));
        assert_eq!(calm.new_user_share, Some(0.0));
        for alarm in ["popularity_psi", "popularity_js", "new_item_share"] {
            assert!(shifted.alarms.iter().any(|a| a == alarm), "{shifted:?}");
        }
        assert!((shifted.new_item_share.unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(shifted.new_user_share, Some(1.0));
        assert!(shifted.input_alarm);
        assert_eq!(status.input_alarms, 1);
        // No retraining asked for unless configured.
        assert!(!m.take_retrain_due());
    }

    #[test]
    fn too_few_events_raise_no_alarm_and_retraining_is_asked_once() {
        let m = DriftMonitor::new(
            DriftConfig {
                retrain_on_alarm: true,
                ..config()
            },
            Some(reference("v1")),
            0,
        );
        m.record_events(&events(&[("f", 49)], "new"), 1.0, 1_000, 6);
        assert!(!m.tick(10_000, 6), "49 events are below min_window_events");
        m.record_events(&events(&[("f", 50)], "new"), 1.0, 11_000, 6);
        assert!(m.tick(20_000, 6));
        assert!(m.take_retrain_due());
        assert!(!m.take_retrain_due(), "taken once");
    }

    fn served(ids: &[&str], source: RecommendationSource) -> Vec<Recommendation> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| Recommendation {
                item_id: id.to_string(),
                score: 1.0 - i as f32 * 0.25,
                source,
                reason: String::new(),
            })
            .collect()
    }

    #[test]
    fn served_lists_give_coverage_gini_fallback_and_score_quantiles() {
        let m = DriftMonitor::new(config(), Some(reference("v1")), 0);
        for _ in 0..5 {
            m.record_list(&served(&["a", "b"], RecommendationSource::ItemKnn), 100, 10);
        }
        for _ in 0..5 {
            m.record_list(&served(&["a", "c"], RecommendationSource::Popular), 100, 10);
        }
        m.record_list(&[], 100, 10);
        let w = m.last_complete(10_000, 10).unwrap();
        assert_eq!((w.lists, w.empty_lists, w.items_served), (11, 1, 20));
        assert_eq!(w.distinct_items_served, 3);
        assert_eq!(w.coverage, Some(0.3));
        assert_eq!(w.fallback_share, Some(0.5));
        assert!(w.alarms.contains(&"fallback_share".to_string()));
        assert!(!w.input_alarm, "an output alarm is not input drift");
        // Exposure 10, 5, 5 and seven zeros.
        let mut values = vec![10.0, 5.0, 5.0];
        values.resize(10, 0.0);
        assert_eq!(w.exposure_gini, cairn_eval::metrics::gini(&values));
        let q = w.score_quantiles.unwrap();
        assert_eq!((q.p10, q.p50, q.p90), (0.755, 0.755, 0.995));
    }

    #[test]
    fn exposure_counters_are_capped() {
        let m = DriftMonitor::new(
            DriftConfig {
                max_tracked_items: 2,
                ..config()
            },
            None,
            0,
        );
        m.record_list(
            &served(&["a", "b", "c", "d"], RecommendationSource::Embedding),
            1,
            100,
        );
        let w = m.last_complete(10_000, 100).unwrap();
        assert_eq!(w.distinct_items_served, 2);
        assert!(w.exposure_truncated);
        assert_eq!(w.reference_version, None);
        assert_eq!(w.popularity_psi, None);
    }

    #[test]
    fn a_new_reference_closes_the_window_and_idle_windows_are_recorded_empty() {
        let m = DriftMonitor::new(config(), Some(reference("v1")), 0);
        m.record_events(&events(&[("a", 10)], "u1"), 1.0, 1_000, 5);
        m.set_reference(Some(reference("v2")), 2_000, 5);
        m.record_events(&events(&[("a", 10)], "u1"), 1.0, 3_000, 5);
        // Two idle windows follow, then a read at 45 s.
        let status = m.status(45_000, 5);
        let versions: Vec<_> = status
            .windows
            .iter()
            .map(|w| (w.reference_version.clone().unwrap(), w.events, w.ended_at))
            .collect();
        assert_eq!(
            versions,
            [
                ("v1".to_string(), 10.0, 2.0),
                ("v2".to_string(), 10.0, 10.0),
                ("v2".to_string(), 0.0, 20.0),
                ("v2".to_string(), 0.0, 30.0),
                ("v2".to_string(), 0.0, 40.0),
            ]
        );
        assert_eq!(status.reference_version.as_deref(), Some("v2"));
        assert_eq!(status.current.unwrap().started_at, 40.0);
    }

    #[test]
    fn history_is_bounded() {
        let m = DriftMonitor::new(
            DriftConfig {
                history_windows: 3,
                ..config()
            },
            None,
            0,
        );
        for t in 0..10 {
            m.record_events(&events(&[("a", 1)], "u"), 1.0, t * 10_000 + 1, 1);
        }
        let status = m.status(100_000, 1);
        assert_eq!(status.windows.len(), 3);
        assert_eq!(status.windows[2].ended_at, 100.0);
    }
}
