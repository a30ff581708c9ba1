//! Backups: every table copied from one read transaction, so the copy is one consistent moment of
//! the store however many writes land meanwhile (redb's readers see a fixed snapshot and never
//! block writers). The copy is itself a store file: a backup folder is a data directory.

use std::path::Path;

use redb::{
    Database, Key, ReadTransaction, ReadableTable, TableDefinition, Value, WriteTransaction,
};

use super::{
    EmbeddedStore, AUDIT, EVENTS, EVENT_IDS, ITEMS, KEYS, LAST_SEQ, META, USERS, USER_EVENTS,
    USER_ITEMS,
};
use crate::{BackupReport, StoreError};

impl EmbeddedStore {
    pub(super) fn backup_into(&self, dest_dir: &Path) -> Result<BackupReport, StoreError> {
        let io = |path: &Path, e: std::io::Error| StoreError::Open {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(dest_dir).map_err(|e| io(dest_dir, e))?;
        let target = dest_dir.join("cairn.redb");
        if target.exists() {
            return Err(StoreError::Open {
                path: target,
                message: "a store file is already there; back up into an empty folder".into(),
            });
        }
        let partial = dest_dir.join("cairn.redb.partial");
        let _ = std::fs::remove_file(&partial);
        let report = self.read_once(|db| copy_store(db, &partial))?;
        std::fs::rename(&partial, &target).map_err(|e| io(&target, e))?;
        std::fs::File::open(dest_dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(dest_dir, e))?;
        Ok(report)
    }
}

/// Writes every table of `db`, read in one transaction, into a new store file at `partial`
/// (replaced if there), committed and closed. The copy holds only live rows: nothing erased from
/// `db` (whose bytes may linger in its free pages) is in it. Backups and compaction both use it.
pub(super) fn copy_store(db: &Database, partial: &Path) -> Result<BackupReport, StoreError> {
    let _ = std::fs::remove_file(partial);
    let from = db.begin_read()?;
    let mut report = BackupReport::default();
    {
        let out = Database::create(partial).map_err(|e| StoreError::Open {
            path: partial.to_path_buf(),
            message: e.to_string(),
        })?;
        let to = out.begin_write()?;
        report.items = copy(&from, &to, ITEMS)?;
        report.users = copy(&from, &to, USERS)?;
        report.events = copy(&from, &to, EVENTS)?;
        copy(&from, &to, USER_EVENTS)?;
        // With `meta`'s mark of how far it is complete, or the copy would think it caught up.
        copy(&from, &to, USER_ITEMS)?;
        copy(&from, &to, EVENT_IDS)?;
        copy(&from, &to, META)?;
        copy(&from, &to, KEYS)?;
        copy(&from, &to, AUDIT)?;
        to.commit()?;
    }
    report.last_seq = from
        .open_table(META)?
        .get(LAST_SEQ)?
        .map(|v| v.value())
        .unwrap_or(0);
    Ok(report)
}

/// Copies one table whole; returns its row count.
fn copy<K: Key + 'static, V: Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<u64, StoreError> {
    let source = from.open_table(def)?;
    let mut target = to.open_table(def)?;
    let mut rows = 0;
    for entry in source.iter()? {
        let (k, v) = entry?;
        target.insert(k.value(), v.value())?;
        rows += 1;
    }
    Ok(rows)
}
