//! The model registry: every training's version with its metadata, the `champion` (the version that
//! serves) and `challenger` aliases, and the append-only history that alone moves them.
//!
//! All of it lives beside the model files in `data_dir/models`, as plain files that any process can
//! read without opening the store (so `cairn models` works while `cairn serve` runs):
//!
//! - `model-<version>.cairn`: the model set (see `cairn_pipeline::artifact`), never rewritten;
//! - `model-<version>.json`: the version's metadata ([`VersionMeta`]), written once, after the gate
//!   ran, and kept when the model file is pruned (so the listing keeps every version's record);
//! - `history.jsonl`: one [`HistoryEntry`] per line, appended and fsynced; the aliases are what
//!   replaying it gives ([`AliasState`]). A last line cut short by a crash is ignored;
//! - `registry.lock`: an advisory lock held while an entry is appended, so two processes never
//!   decide from the same state at once.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::EngineError;

const HISTORY: &str = "history.jsonl";
const LOCK: &str = "registry.lock";

/// The code that trained a version: the crate version, and `git describe` of the source tree when
/// the build could run git.
pub fn code_version() -> String {
    match option_env!("CAIRN_GIT_DESCRIBE") {
        Some(d) if !d.is_empty() => format!("{} ({d})", env!("CARGO_PKG_VERSION")),
        _ => env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// The data a version was trained on, as the event log was when the training read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSnapshot {
    /// Log position of the last event read.
    pub last_seq: u64,
    /// Events read from the log (all types).
    pub log_events: u64,
    /// Of those, the events of a type with a strength (what the models learn from).
    pub events: u64,
    pub users: u64,
    pub items: u64,
    /// Events read, per event type.
    pub event_types: BTreeMap<String, u64>,
    /// SHA-256 over every event read (sequence number, user, item, type, value, time).
    pub digest: String,
}

/// A number that JSON writes as `null` when it is not finite (an undefined mean of no users)
/// and reads back as NaN.
mod nullable {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// A mean over users with its bootstrap interval (`cairn_eval::stats::Summary`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanInterval {
    #[serde(with = "nullable")]
    pub mean: f64,
    pub n: usize,
    #[serde(with = "nullable")]
    pub std_err: f64,
    #[serde(with = "nullable")]
    pub ci_low: f64,
    #[serde(with = "nullable")]
    pub ci_high: f64,
}

impl From<cairn_eval::stats::Summary> for MeanInterval {
    fn from(s: cairn_eval::stats::Summary) -> Self {
        MeanInterval {
            mean: s.mean,
            n: s.n,
            std_err: s.std_err,
            ci_low: s.ci_low,
            ci_high: s.ci_high,
        }
    }
}

/// One version against another on the same users (`cairn_eval::stats::PairedComparison`):
/// differences are new − champion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedDifference {
    pub n: usize,
    #[serde(with = "nullable")]
    pub mean_diff: f64,
    #[serde(with = "nullable")]
    pub std_err: f64,
    /// Paired t statistic and its two-sided p-value.
    #[serde(with = "nullable")]
    pub t: f64,
    #[serde(with = "nullable")]
    pub p_value: f64,
    /// 95% bootstrap interval of the mean difference.
    #[serde(with = "nullable")]
    pub ci_low: f64,
    #[serde(with = "nullable")]
    pub ci_high: f64,
}

impl From<cairn_eval::stats::PairedComparison> for PairedDifference {
    fn from(c: cairn_eval::stats::PairedComparison) -> Self {
        PairedDifference {
            n: c.n,
            mean_diff: c.mean_diff,
            std_err: c.std_err,
            t: c.t,
            p_value: c.p_value,
            ci_low: c.ci_low,
            ci_high: c.ci_high,
        }
    }
}

/// The frozen held-out slice as this version saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutInfo {
    pub salt: String,
    pub share: f64,
    pub events_per_user: usize,
    /// Held-out users, and their events kept out of training.
    pub users: usize,
    pub events: usize,
    /// Held-out users evaluated (at most `models.holdout_max_users`, with a target left).
    pub evaluated_users: usize,
}

/// Offline metrics of one version on the held-out slice and the user sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfflineMetrics {
    pub k: usize,
    /// NDCG@k over the held-out users, with its bootstrap interval; `None` without held-out users.
    pub ndcg: Option<MeanInterval>,
    /// Share of the catalog that the sample's top-k lists reach together.
    #[serde(with = "nullable")]
    pub coverage: f64,
    /// Users whose lists were checked and timed.
    pub sampled_users: usize,
    /// Of those, the users who had not seen as many items as the catalog holds (the others'
    /// lists are rightly empty)...
    pub listable_users: usize,
    /// ...and the share of them with a non-empty list.
    pub nonempty_share: f64,
    /// Non-finite numbers found: in the lists' scores and in the model's own score tables.
    pub non_finite: usize,
    /// Scoring time of one list over the sample, in milliseconds.
    #[serde(with = "nullable")]
    pub p50_ms: f64,
    #[serde(with = "nullable")]
    pub p99_ms: f64,
}

/// One check of the promotion gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateCheck {
    /// `finite_scores`, `non_empty_lists`, `coverage`, `ndcg_vs_champion`, `latency_p99`.
    pub name: String,
    pub passed: bool,
    /// The measured figure against its threshold, in words.
    pub detail: String,
}

/// The promotion gate's verdict on a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateReport {
    pub passed: bool,
    pub checks: Vec<GateCheck>,
    /// The champion it was compared with, if there was one.
    pub champion: Option<String>,
    /// New minus champion NDCG@k, paired over the same held-out users.
    pub ndcg_vs_champion: Option<PairedDifference>,
}

impl GateReport {
    /// The details of the failed checks.
    pub fn reasons(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect()
    }
}

/// Whether a version may serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    /// It passed the promotion gate.
    Passed,
    /// The gate refused it: it never serves.
    Refused,
    /// A model file from before the registry, served as it was found (no gate ran).
    Adopted,
}

/// Everything recorded about one version, written once beside its model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionMeta {
    pub version: String,
    pub status: VersionStatus,
    /// Unix seconds when the training started.
    pub created_at: i64,
    /// The model file's name inside the models folder, and its size.
    pub file: String,
    pub artifact_bytes: u64,
    pub code_version: String,
    /// Seconds the models took to fit (reading the log and the gate not included).
    pub fit_seconds: f64,
    /// Who or what started the training (`cli`, `scheduler`, an API key).
    pub trained_by: String,
    pub data: Option<DataSnapshot>,
    pub holdout: Option<HoldoutInfo>,
    /// The `[train]` configuration it was fitted with, and the default placement it serves.
    pub model: serde_json::Value,
    pub metrics: Option<OfflineMetrics>,
    pub gate: Option<GateReport>,
}

/// What moved an alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `version` becomes the champion (the previous one stays below it for rollbacks).
    Promote,
    /// The champion goes back to the one before it (`version`); `previous` is the one rolled back.
    Rollback,
    /// `version` becomes the challenger.
    Challenger,
    /// `version` is kept by pruning whatever it is...
    Pin,
    /// ...or no longer.
    Unpin,
}

/// One line of the alias history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// 1, 2, ... in the order appended.
    pub seq: u64,
    /// Unix seconds.
    pub at: i64,
    /// `cli`, `training (scheduler)`, or the API key's `name (id)`.
    pub who: String,
    pub action: Action,
    pub version: String,
    /// The version the alias named before, if any.
    pub previous: Option<String>,
    pub reason: String,
}

/// The aliases, as replaying the history gives them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AliasState {
    /// The champions in the order they were promoted, rolled-back ones removed: the last serves,
    /// the one before it is where a rollback goes.
    pub champions: Vec<String>,
    pub challenger: Option<String>,
    pub pinned: Vec<String>,
}

impl AliasState {
    pub fn champion(&self) -> Option<&str> {
        self.champions.last().map(String::as_str)
    }

    /// Where a rollback would go.
    pub fn rollback_target(&self) -> Option<&str> {
        let n = self.champions.len();
        (n >= 2).then(|| self.champions[n - 2].as_str())
    }

    fn apply(&mut self, e: &HistoryEntry) {
        match e.action {
            Action::Promote => {
                self.champions.retain(|v| *v != e.version);
                self.champions.push(e.version.clone());
                if self.challenger.as_deref() == Some(&e.version) {
                    self.challenger = None;
                }
            }
            Action::Rollback => {
                self.champions.pop();
                if self.champion() != Some(&e.version) {
                    self.champions.retain(|v| *v != e.version);
                    self.champions.push(e.version.clone());
                }
            }
            Action::Challenger => self.challenger = Some(e.version.clone()),
            Action::Pin => {
                if !self.pinned.contains(&e.version) {
                    self.pinned.push(e.version.clone());
                }
            }
            Action::Unpin => self.pinned.retain(|v| *v != e.version),
        }
    }

    /// The versions pruning must keep: the champion and the one a rollback goes to, the
    /// challenger and the pinned ones. (Older champions are kept only while they are among the
    /// newest `train.keep_models` files; a rollback skips those pruned.)
    pub fn protected(&self) -> Vec<String> {
        let n = self.champions.len();
        let mut out: Vec<String> = self.champions[n.saturating_sub(2)..].to_vec();
        out.extend(self.challenger.clone());
        out.extend(self.pinned.iter().cloned());
        out
    }
}

/// One version as listings show it: its metadata, its aliases, whether its file is still kept.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionView {
    pub meta: VersionMeta,
    pub champion: bool,
    pub challenger: bool,
    pub pinned: bool,
    /// The model file is still in the folder (not pruned).
    pub artifact_present: bool,
}

/// The registry of one models folder.
#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> EngineError {
    EngineError::Artifact(format!("{}: {e}", path.display()))
}

/// A refusal of an alias move: the version cannot take the alias (409 at the HTTP edge).
pub(crate) fn conflict(message: String) -> EngineError {
    EngineError::ModelConflict(message)
}

impl Registry {
    pub fn new(dir: impl Into<PathBuf>) -> Registry {
        Registry { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn model_path(&self, version: &str) -> PathBuf {
        self.dir.join(format!("model-{version}.cairn"))
    }

    fn meta_path(&self, version: &str) -> PathBuf {
        self.dir.join(format!("model-{version}.json"))
    }

    pub(crate) fn history_path(&self) -> PathBuf {
        self.dir.join(HISTORY)
    }

    /// Whether `version` names a version already recorded or saved (versions are never reused).
    pub fn exists(&self, version: &str) -> bool {
        self.meta_path(version).exists() || self.model_path(version).exists()
    }

    /// Writes a version's metadata (temp file, fsync, rename). Refuses to overwrite one.
    pub fn write_meta(&self, meta: &VersionMeta) -> Result<(), EngineError> {
        let path = self.meta_path(&meta.version);
        if path.exists() {
            return Err(io_err(&path, "a version's metadata is never rewritten"));
        }
        let text = serde_json::to_vec_pretty(meta).map_err(|e| io_err(&path, e))?;
        fs::create_dir_all(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        let tmp = path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| io_err(&path, e))
    }

    pub fn meta(&self, version: &str) -> Result<Option<VersionMeta>, EngineError> {
        let path = self.meta_path(version);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io_err(&path, format!("unreadable metadata: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    /// The newest log position any recorded version was trained on (0 when none): what is not due
    /// for training again, whichever replica trained it.
    pub fn newest_trained_seq(&self) -> u64 {
        self.metas()
            .unwrap_or_default()
            .iter()
            .filter_map(|m| m.data.as_ref().map(|d| d.last_seq))
            .max()
            .unwrap_or(0)
    }

    /// Every recorded version, oldest first (by creation time, then name).
    pub fn metas(&self) -> Result<Vec<VersionMeta>, EngineError> {
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Ok(out);
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(version) = name
                .strip_prefix("model-")
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            if let Some(meta) = self.meta(version)? {
                out.push(meta);
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.version).cmp(&(b.created_at, &b.version)));
        Ok(out)
    }

    /// The alias history, oldest first. A last line cut short (a crash while appending) is left out.
    pub fn history(&self) -> Result<Vec<HistoryEntry>, EngineError> {
        let path = self.history_path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&path, e)),
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut out = Vec::with_capacity(lines.len());
        for (n, line) in lines.iter().enumerate() {
            match serde_json::from_str::<HistoryEntry>(line) {
                Ok(e) => out.push(e),
                Err(_) if n + 1 == lines.len() && !text.ends_with('\n') => break,
                Err(e) => return Err(io_err(&path, format!("line {}: {e}", n + 1))),
            }
        }
        Ok(out)
    }

    pub fn state(&self) -> Result<AliasState, EngineError> {
        Ok(replay(&self.history()?))
    }

    /// Every version with its aliases, oldest first.
    pub fn list(&self) -> Result<Vec<VersionView>, EngineError> {
        let state = self.state()?;
        Ok(self
            .metas()?
            .into_iter()
            .map(|meta| self.view(meta, &state))
            .collect())
    }

    pub fn show(&self, version: &str) -> Result<VersionView, EngineError> {
        let state = self.state()?;
        let meta = self.meta(version)?.ok_or_else(|| EngineError::NotFound {
            kind: "model version",
            id: version.to_string(),
        })?;
        Ok(self.view(meta, &state))
    }

    fn view(&self, meta: VersionMeta, state: &AliasState) -> VersionView {
        let v = meta.version.as_str();
        VersionView {
            champion: state.champion() == Some(v),
            challenger: state.challenger.as_deref() == Some(v),
            pinned: state.pinned.iter().any(|p| p == v),
            artifact_present: self.dir.join(&meta.file).exists(),
            meta,
        }
    }

    /// Appends one entry under the registry lock, after `decide` checked it against the state as
    /// it is then; returns the entry written.
    pub fn append(
        &self,
        decide: impl FnOnce(&AliasState) -> Result<NewEntry, EngineError>,
    ) -> Result<HistoryEntry, EngineError> {
        fs::create_dir_all(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        let lock_path = self.dir.join(LOCK);
        let lock = File::create(&lock_path).map_err(|e| io_err(&lock_path, e))?;
        lock.lock().map_err(|e| io_err(&lock_path, e))?;
        let history = self.history()?;
        let state = replay(&history);
        let new = decide(&state)?;
        let entry = HistoryEntry {
            seq: history.last().map_or(1, |e| e.seq + 1),
            at: cairn_core::now_unix(),
            who: new.who,
            action: new.action,
            version: new.version,
            previous: new.previous,
            reason: new.reason,
        };
        let path = self.history_path();
        let mut line = serde_json::to_string(&entry).map_err(|e| io_err(&path, e))?;
        line.push('\n');
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
            // A crash while appending may have left a cut last line (which `history` ignores):
            // cut it off, so the file stays whole lines.
            let bytes = fs::read(&path)?;
            if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
                f.set_len(whole as u64)?;
            }
            f.write_all(line.as_bytes())?;
            f.sync_all()?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| io_err(&path, e))?;
        drop(lock);
        Ok(entry)
    }

    /// Checks that `version` may serve: recorded, not refused, its file kept.
    pub fn check_servable(&self, version: &str) -> Result<VersionMeta, EngineError> {
        let meta = self.meta(version)?.ok_or_else(|| EngineError::NotFound {
            kind: "model version",
            id: version.to_string(),
        })?;
        if meta.status == VersionStatus::Refused {
            let reasons = meta
                .gate
                .as_ref()
                .map(GateReport::reasons)
                .unwrap_or_default();
            return Err(conflict(format!(
                "version {version} was refused by the promotion gate and never serves ({})",
                reasons.join("; ")
            )));
        }
        if !self.dir.join(&meta.file).exists() {
            return Err(conflict(format!(
                "version {version}'s model file {} was pruned; only its record is kept",
                meta.file
            )));
        }
        Ok(meta)
    }

    /// Makes `version` the champion or the challenger.
    pub fn promote(
        &self,
        version: &str,
        alias: Alias,
        who: &str,
        reason: &str,
    ) -> Result<HistoryEntry, EngineError> {
        self.check_servable(version)?;
        self.append(|state| {
            let (action, previous) = match alias {
                Alias::Champion => (Action::Promote, state.champion().map(str::to_string)),
                Alias::Challenger => (Action::Challenger, state.challenger.clone()),
            };
            if previous.as_deref() == Some(version) {
                return Err(conflict(format!(
                    "version {version} is already the {alias}"
                )));
            }
            Ok(NewEntry {
                who: who.to_string(),
                action,
                version: version.to_string(),
                previous,
                reason: reason.to_string(),
            })
        })
    }

    /// Moves the champion back to the one before it.
    pub fn rollback(&self, who: &str, reason: &str) -> Result<HistoryEntry, EngineError> {
        self.rollback_from(None, who, reason)
    }

    /// [`Registry::rollback`], only while `from` (when given) is still the champion: replicas that
    /// watch the same promotion may each decide to roll it back, and only the first may.
    pub fn rollback_from(
        &self,
        from: Option<&str>,
        who: &str,
        reason: &str,
    ) -> Result<HistoryEntry, EngineError> {
        self.append(|state| {
            let current = state.champion().map(str::to_string);
            if let Some(from) = from.filter(|f| current.as_deref() != Some(*f)) {
                return Err(conflict(format!(
                    "version {from} is no longer the champion; nothing to roll back"
                )));
            }
            // The newest earlier champion whose file is still there.
            let mut earlier = state.champions.clone();
            earlier.pop();
            let target = earlier
                .into_iter()
                .rev()
                .find(|v| self.check_servable(v).is_ok())
                .ok_or_else(|| {
                    conflict(
                        "there is no earlier champion to roll back to (promote a version instead)"
                            .into(),
                    )
                })?;
            Ok(NewEntry {
                who: who.to_string(),
                action: Action::Rollback,
                version: target,
                previous: current,
                reason: reason.to_string(),
            })
        })
    }

    /// Pins or unpins a recorded version.
    pub fn pin(
        &self,
        version: &str,
        pinned: bool,
        who: &str,
        reason: &str,
    ) -> Result<HistoryEntry, EngineError> {
        if self.meta(version)?.is_none() {
            return Err(EngineError::NotFound {
                kind: "model version",
                id: version.to_string(),
            });
        }
        self.append(|_| {
            Ok(NewEntry {
                who: who.to_string(),
                action: if pinned { Action::Pin } else { Action::Unpin },
                version: version.to_string(),
                previous: None,
                reason: reason.to_string(),
            })
        })
    }

    /// Deletes all but the newest `keep` model files, never one of `protected` versions. The
    /// metadata stays.
    pub fn prune(&self, keep: usize, protected: &[String]) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let keep_paths: Vec<PathBuf> = protected.iter().map(|v| self.model_path(v)).collect();
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "cairn"))
            .filter(|p| !keep_paths.contains(p))
            .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
            .collect();
        files.sort();
        let excess = files.len().saturating_sub(keep);
        let mut removed = Vec::new();
        for (_, p) in files.into_iter().take(excess) {
            if fs::remove_file(&p).is_ok() {
                // The version's drift reference goes with its model file (it cannot serve now).
                if let Some(v) = p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix("model-")?.strip_suffix(".cairn"))
                {
                    let _ = fs::remove_file(crate::drift::DriftReference::path(&self.dir, v));
                }
                removed.push(p.display().to_string());
            }
        }
        removed
    }
}

/// An entry [`Registry::append`] is asked to write.
pub struct NewEntry {
    pub who: String,
    pub action: Action,
    pub version: String,
    pub previous: Option<String>,
    pub reason: String,
}

/// An alias a promotion moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alias {
    Champion,
    Challenger,
}

impl std::fmt::Display for Alias {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Alias::Champion => "champion",
            Alias::Challenger => "challenger",
        })
    }
}

fn replay(history: &[HistoryEntry]) -> AliasState {
    let mut state = AliasState::default();
    for e in history {
        state.apply(e);
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(version: &str, status: VersionStatus) -> VersionMeta {
        VersionMeta {
            version: version.into(),
            status,
            created_at: 0,
            file: format!("model-{version}.cairn"),
            artifact_bytes: 0,
            code_version: code_version(),
            fit_seconds: 0.0,
            trained_by: "test".into(),
            data: None,
            holdout: None,
            model: serde_json::Value::Null,
            metrics: None,
            gate: None,
        }
    }

    fn registry_with(versions: &[(&str, VersionStatus)]) -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::new(dir.path());
        for (v, s) in versions {
            r.write_meta(&meta(v, *s)).unwrap();
            fs::write(r.model_path(v), b"model").unwrap();
        }
        (dir, r)
    }

    #[test]
    fn promotions_and_rollbacks_replay_into_the_aliases() {
        use VersionStatus::Passed;
        let (_d, r) = registry_with(&[("a", Passed), ("b", Passed), ("c", Passed)]);
        assert!(r.rollback("cli", "nothing yet").is_err());
        r.promote("a", Alias::Champion, "cli", "first").unwrap();
        r.promote("b", Alias::Champion, "cli", "second").unwrap();
        r.promote("c", Alias::Challenger, "cli", "try").unwrap();
        let s = r.state().unwrap();
        assert_eq!(s.champion(), Some("b"));
        assert_eq!(s.challenger.as_deref(), Some("c"));
        let e = r.rollback("ops (k1)", "b is worse").unwrap();
        assert_eq!(
            (e.version.as_str(), e.previous.as_deref()),
            ("a", Some("b"))
        );
        assert_eq!(r.state().unwrap().champion(), Some("a"));
        // A second rollback has nowhere to go: rolled-back versions are not rollback targets.
        assert!(r.rollback("cli", "again").is_err());
        assert!(r.promote("a", Alias::Champion, "cli", "again").is_err());
        let h = r.history().unwrap();
        assert_eq!(
            h.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        assert_eq!(h[3].who, "ops (k1)");
        // Metadata is written once.
        assert!(r.write_meta(&meta("a", Passed)).is_err());
    }

    #[test]
    fn a_rollback_from_a_version_is_refused_once_it_is_no_longer_the_champion() {
        use VersionStatus::Passed;
        let (_d, r) = registry_with(&[("a", Passed), ("b", Passed), ("c", Passed)]);
        for v in ["a", "b", "c"] {
            r.promote(v, Alias::Champion, "cli", "next").unwrap();
        }
        // Two replicas watched `c` and both saw it breach: the first rolls it back...
        let e = r.rollback_from(Some("c"), "guardrail", "breach").unwrap();
        assert_eq!(
            (e.version.as_str(), e.previous.as_deref()),
            ("b", Some("c"))
        );
        // ...and the second's rollback of `c` does not roll `b` back too.
        let err = r
            .rollback_from(Some("c"), "guardrail", "breach")
            .unwrap_err();
        assert!(err.to_string().contains("no longer the champion"), "{err}");
        assert_eq!(r.state().unwrap().champion(), Some("b"));
        assert_eq!(r.history().unwrap().len(), 4);
    }

    #[test]
    fn undefined_figures_are_written_as_null_and_read_back() {
        let (_d, r) = registry_with(&[]);
        let mut m = meta("x", VersionStatus::Passed);
        m.metrics = Some(OfflineMetrics {
            k: 10,
            ndcg: Some(MeanInterval {
                mean: f64::NAN,
                n: 0,
                std_err: 0.0,
                ci_low: f64::NAN,
                ci_high: f64::NAN,
            }),
            coverage: 0.5,
            sampled_users: 1,
            listable_users: 1,
            nonempty_share: 1.0,
            non_finite: 0,
            p50_ms: 1.0,
            p99_ms: 2.0,
        });
        r.write_meta(&m).unwrap();
        let back = r.meta("x").unwrap().unwrap();
        let ndcg = back.metrics.unwrap().ndcg.unwrap();
        assert!(ndcg.mean.is_nan() && ndcg.ci_high.is_nan());
        assert_eq!(ndcg.n, 0);
    }

    #[test]
    fn a_refused_or_pruned_version_cannot_be_promoted() {
        let (_d, r) = registry_with(&[
            ("bad", VersionStatus::Refused),
            ("gone", VersionStatus::Passed),
        ]);
        let e = r.promote("bad", Alias::Champion, "cli", "try").unwrap_err();
        assert_eq!(e.code(), "model_conflict");
        fs::remove_file(r.model_path("gone")).unwrap();
        assert!(r.promote("gone", Alias::Champion, "cli", "try").is_err());
        assert!(r.promote("nope", Alias::Champion, "cli", "try").is_err());
        assert!(r.history().unwrap().is_empty());
        // The record of a pruned version stays listed.
        let list = r.list().unwrap();
        assert_eq!(list.len(), 2);
        assert!(
            !list
                .iter()
                .find(|v| v.meta.version == "gone")
                .unwrap()
                .artifact_present
        );
    }

    #[test]
    fn a_cut_last_line_is_ignored_and_the_next_entry_starts_a_new_line() {
        let (_d, r) = registry_with(&[("a", VersionStatus::Passed), ("b", VersionStatus::Passed)]);
        r.promote("a", Alias::Champion, "cli", "first").unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(r.history_path())
            .unwrap();
        f.write_all(br#"{"seq":2,"at":1,"who":"cl"#).unwrap();
        assert_eq!(r.history().unwrap().len(), 1);
        r.promote("b", Alias::Champion, "cli", "second").unwrap();
        let h = r.history().unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(r.state().unwrap().champion(), Some("b"));
    }

    #[test]
    fn pruning_keeps_the_newest_and_every_protected_version() {
        use VersionStatus::Passed;
        let names = ["v1", "v2", "v3", "v4", "v5"];
        let (_d, r) = registry_with(&names.map(|n| (n, Passed)));
        for (n, v) in names.iter().enumerate() {
            let t =
                std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000 + n as u64);
            File::options()
                .write(true)
                .open(r.model_path(v))
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        r.promote("v1", Alias::Champion, "cli", "old champion")
            .unwrap();
        r.pin("v2", true, "cli", "keep").unwrap();
        let state = r.state().unwrap();
        r.prune(1, &state.protected());
        let kept: Vec<&str> = names
            .into_iter()
            .filter(|v| r.model_path(v).exists())
            .collect();
        assert_eq!(kept, vec!["v1", "v2", "v5"]);
        assert_eq!(r.metas().unwrap().len(), 5);
    }
}
