//! Backups, restores and exports of a data directory. A backup folder is itself a data
//! directory (the store file, the served model and the experiments folder), so a restore is a
//! checked copy and a backup can be served as it is (`cairn serve --data-dir BACKUP`).

use std::io::Write;
use std::path::{Path, PathBuf};

use cairn_store::{BackupReport, EmbeddedStore};
use serde::Serialize;

use crate::{Engine, EngineError};

/// What a backup wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    pub path: PathBuf,
    pub items: u64,
    pub users: u64,
    pub events: u64,
    /// Every event up to this log position is in the backup, none after.
    pub last_seq: u64,
    /// The model the server was serving, saved beside the store; `None` before the first training.
    pub model_version: Option<String>,
    /// Files copied from `data_dir/experiments` (definitions, their history, shipped defaults and
    /// the attribution log); 0 when no experiment was ever defined.
    pub experiment_files: u64,
}

/// Everything stored about one user: the user row and every event, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct UserExport {
    pub user_id: String,
    /// The user row, when there is one (events may name users that have none).
    pub user: Option<cairn_core::User>,
    pub events: Vec<cairn_core::StoredEvent>,
}

/// One record of an export (see [`Engine::export_each`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Exported {
    Item(cairn_core::Item),
    User(cairn_core::User),
    Event(cairn_core::Event),
}

/// What [`export`](Engine::export) writes: one JSON object per line, as `cairn import` reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    Items,
    Users,
    Events,
}

impl Engine {
    /// A consistent copy of the store, and the model being served, in the empty folder `dest`,
    /// while requests and writes go on.
    pub fn backup(&self, dest: &Path) -> Result<Backup, EngineError> {
        if dest.exists()
            && std::fs::read_dir(dest)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            return Err(EngineError::Unprocessable(format!(
                "{} is not an empty folder; back up into a new one",
                dest.display()
            )));
        }
        let BackupReport {
            items,
            users,
            events,
            last_seq,
        } = self.store.backup(dest)?;
        let model_version = match self.models() {
            Some(m) => {
                m.save(&dest.join("models"))?;
                Some(m.version.clone())
            }
            None => None,
        };
        let experiments = self.config.data_dir.join(EXPERIMENTS_DIR);
        let experiment_files = copy_tree(&experiments, &dest.join(EXPERIMENTS_DIR))?;
        Ok(Backup {
            path: dest.to_path_buf(),
            items,
            users,
            events,
            last_seq,
            model_version,
            experiment_files,
        })
    }

    /// Everything stored about `user_id` (the right of access); a user never seen exports empty.
    pub fn export_user(&self, user_id: &str) -> Result<UserExport, EngineError> {
        cairn_core::validate::check_id("user_id", user_id)?;
        let key = self.user_key(user_id);
        let mut user = self.store.get_user(&key)?;
        if let Some(user) = &mut user {
            user.id = user_id.to_string();
        }
        let events = self.store.user_events(&key, usize::MAX)?;
        Ok(UserExport {
            user_id: user_id.to_string(),
            user,
            events: self.unkey_events(user_id, events),
        })
    }

    /// Writes every item, user or event as JSON lines; returns how many.
    pub fn export(&self, kind: ExportKind, out: &mut dyn Write) -> Result<u64, EngineError> {
        let mut failed: Option<std::io::Error> = None;
        let n = self.export_each(kind, &mut |record| {
            let value = match record {
                Exported::Item(item) => json(&item),
                Exported::User(user) => json(&user),
                Exported::Event(event) => json(&event),
            };
            let written = serde_json::to_writer(&mut *out, &value)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"));
            match written {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        })?;
        match failed {
            Some(e) => Err(EngineError::Unprocessable(format!(
                "writing the export: {e}"
            ))),
            None => Ok(n),
        }
    }

    /// Hands every item (in id order), user (in id order) or event (in log order, as `cairn import`
    /// reads it back) to `visit`, until it returns `false`; returns how many it accepted.
    pub fn export_each(
        &self,
        kind: ExportKind,
        visit: &mut dyn FnMut(Exported) -> bool,
    ) -> Result<u64, EngineError> {
        let mut n = 0u64;
        let mut going = true;
        let mut give = |record: Exported| {
            if going {
                going = visit(record);
                n += u64::from(going);
            }
            going
        };
        match kind {
            ExportKind::Items => self.store.scan_items(&mut |item| {
                give(Exported::Item(item));
            })?,
            ExportKind::Users => {
                let mut after: Option<String> = None;
                loop {
                    let page = self.store.list_users(after.as_deref(), 1000)?;
                    let Some(last) = page.last() else { break };
                    after = Some(last.id.clone());
                    if !page.into_iter().all(|u| give(Exported::User(u))) {
                        break;
                    }
                }
            }
            ExportKind::Events => self
                .store
                .scan_events(0, &mut |e| give(Exported::Event(e.into_event())))?,
        }
        Ok(n)
    }

    /// The log as [`train`](Engine::train) reads it: every event of a known type in log order, as
    /// (user, item, signed strength, unix seconds) over interned ids. It is the whole log: the
    /// registry's held-out slice (`models.holdout_*`) is only split off inside a training.
    pub fn training_snapshot(&self) -> Result<cairn_pipeline::Snapshot, EngineError> {
        let (snapshot, _summary) = crate::store_scan::read_snapshot_with_summary(
            self.store.as_ref(),
            &self.config.event_types,
        )?;
        Ok(snapshot)
    }

    /// [`Engine::training_snapshot`] less the promotion gate's held-out slice (`models.holdout_*`):
    /// the events a training started now fits on. A model trained elsewhere on these (`cairn export
    /// interactions --without-holdout`, then `cairn import factors`) is judged by the gate on
    /// events it has not seen, as a model `cairn train` fits is.
    pub fn training_snapshot_without_holdout(
        &self,
    ) -> Result<cairn_pipeline::Snapshot, EngineError> {
        let full = self.training_snapshot()?;
        Ok(crate::gate::split(&full, &self.config.models).0)
    }
}

/// Puts the backup in `backup` into `data_dir` (the server stopped): the backup is checked first
/// (every store row reads, its model loads); a store already in `data_dir` is refused unless
/// `replace`, and then kept beside as `cairn.redb.before-restore-<now>`.
pub fn restore(
    backup: &Path,
    data_dir: &Path,
    replace: bool,
    now: i64,
) -> Result<PathBuf, EngineError> {
    let check = EmbeddedStore::check(backup)?;
    if !check.is_healthy() {
        return Err(EngineError::Unprocessable(format!(
            "the backup in {} is damaged: {}",
            backup.display(),
            check.problems.join("; ")
        )));
    }
    let models = backup.join("models");
    if models.exists() {
        cairn_pipeline::ModelSet::load_latest(&models)?;
    }
    let io = |path: &Path, e: std::io::Error| {
        EngineError::Unprocessable(format!("{}: {e}", path.display()))
    };
    std::fs::create_dir_all(data_dir).map_err(|e| io(data_dir, e))?;
    let target = data_dir.join("cairn.redb");
    if target.exists() {
        if !replace {
            return Err(EngineError::Unprocessable(format!(
                "{} already holds a store; pass --replace to keep it aside and restore over it",
                data_dir.display()
            )));
        }
        let aside = data_dir.join(format!("cairn.redb.before-restore-{now}"));
        std::fs::rename(&target, &aside).map_err(|e| io(&target, e))?;
    }
    let partial = data_dir.join("cairn.redb.restoring");
    std::fs::copy(backup.join("cairn.redb"), &partial).map_err(|e| io(&partial, e))?;
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(&partial, e))?;
    std::fs::rename(&partial, &target).map_err(|e| io(&target, e))?;
    if let Ok(Some(model)) = cairn_pipeline::ModelSet::load_latest(&models) {
        model.save(&data_dir.join("models"))?;
    }
    let experiments = data_dir.join(EXPERIMENTS_DIR);
    if backup.join(EXPERIMENTS_DIR).is_dir() {
        if experiments.exists() {
            let aside = data_dir.join(format!("{EXPERIMENTS_DIR}.before-restore-{now}"));
            std::fs::rename(&experiments, &aside).map_err(|e| io(&experiments, e))?;
        }
        copy_tree(&backup.join(EXPERIMENTS_DIR), &experiments)?;
    }
    Ok(target)
}

/// The experiments module's folder in a data directory (see [`crate::experiments`]).
const EXPERIMENTS_DIR: &str = "experiments";

/// Copies the files under `from` into `to` (created), fsynced; returns how many; a missing `from`
/// copies nothing. The experiments folder holds files replaced atomically (definitions) and
/// append-only logs, so a copy taken while requests go on holds whole definitions and a prefix of
/// each log, whose last line may be cut: readers skip a cut last line, as after a crash.
fn copy_tree(from: &Path, to: &Path) -> Result<u64, EngineError> {
    let io = |path: &Path, e: std::io::Error| {
        EngineError::Unprocessable(format!("copying {}: {e}", path.display()))
    };
    let entries = match std::fs::read_dir(from) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(from, e)),
    };
    std::fs::create_dir_all(to).map_err(|e| io(to, e))?;
    let mut copied = 0;
    for entry in entries {
        let entry = entry.map_err(|e| io(from, e))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(|e| io(&source, e))?;
        if kind.is_dir() {
            copied += copy_tree(&source, &target)?;
        } else if kind.is_file() && source.extension().is_none_or(|e| e != "tmp") {
            std::fs::copy(&source, &target).map_err(|e| io(&source, e))?;
            std::fs::File::open(&target)
                .and_then(|f| f.sync_all())
                .map_err(|e| io(&target, e))?;
            copied += 1;
        }
    }
    std::fs::File::open(to)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(to, e))?;
    Ok(copied)
}

fn json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("stored values serialize")
}
