//! Compaction that leaves no trace of deleted data. redb frees the pages of deleted rows but never
//! overwrites them, and its own `Database::compact` only moves live pages toward the start of the
//! file and truncates the end, so an erased user's bytes can survive in free pages in the middle.
//! Here the live rows are copied into a fresh file (the backup's copy, [`super::backup`]), which
//! then replaces the old one by rename; the old file's inode, free pages and all, is released when
//! the old database closes.
//!
//! It runs while serving: it holds the store's handle slot for writing, so operations wait for it
//! (for the length of one copy of the live data) and none runs against the old file after the swap.

use std::path::Path;

use super::backup::copy_store;
use std::sync::atomic::Ordering;

use super::{check, EmbeddedStore, Slot};
use crate::{CompactReport, StoreError};

impl EmbeddedStore {
    pub(super) fn compact_in_place(&self) -> Result<CompactReport, StoreError> {
        let io = |path: &Path, e: std::io::Error| StoreError::Open {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let mut slot = self.slot_mut();
        // Only a writable file is compacted: while the disk refuses writes there is no room for
        // a second copy anyway.
        let Slot::Writable(db) = &*slot else {
            drop(slot);
            return Err(self.refusal());
        };
        let bytes_before = file_len(&self.path).map_err(|e| io(&self.path, e))?;
        let partial = self.path.with_extension("redb.compact");
        let copied = copy_store(db, &partial)?;
        // Check that the copy opens before it takes the store's name: if not, the old file stays.
        if let Err(e) = check::open_database(&partial, self.cache_bytes) {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
        if let Err(e) = std::fs::rename(&partial, &self.path) {
            let _ = std::fs::remove_file(&partial);
            return Err(io(&self.path, e));
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        // The rename is done; the fresh file is the store from here whatever the sync says. The
        // old handle goes first (its file, free pages and all, is released when it closes).
        let synced = std::fs::File::open(dir).and_then(|d| d.sync_all());
        *slot = Slot::Closed("compacting".into());
        *slot = match check::open_database_with(&self.path, &self.opener, self.cache_bytes) {
            Ok(fresh) => Slot::Writable(fresh),
            Err(e) => Slot::Closed(e.to_string()),
        };
        self.generation.fetch_add(1, Ordering::SeqCst);
        drop(slot);
        synced.map_err(|e| io(dir, e))?;
        Ok(CompactReport {
            bytes_before,
            bytes_after: file_len(&self.path).map_err(|e| io(&self.path, e))?,
            items: copied.items,
            users: copied.users,
            events: copied.events,
        })
    }
}

fn file_len(path: &Path) -> std::io::Result<u64> {
    Ok(std::fs::metadata(path)?.len())
}
