//! The embedded backend: one redb file in the data directory. redb commits are copy-on-write with an
//! fsync before `commit` returns, which gives both atomic batches and durability across `kill -9`.
//!
//! A failed write (a full disk, an I/O error) leaves redb's handle refusing everything, reads too,
//! until the file is opened again. So the store reopens it at once, read-only: reads go on over a
//! view that never writes the file (see [`backends`]), writes are refused with
//! [`StoreError::Io`] (its [`IoKind`] says whether the disk is full), and [`Store::retry_writes`]
//! (the server's probe calls it every few seconds; a write does too, at most every
//! [`RETRY_EVERY`]) reopens the file for writing once a small test write works. A failed commit
//! never reaches redb's header, so the file holds the last acknowledged commit, whole.

use std::collections::HashSet;
use std::io::Write as _;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use cairn_core::{Event, Item, StoredEvent, Timestamp, User};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle};

mod backends;
mod backup;
mod check;
mod compact;
mod import;
mod retention;

pub use backends::{Fault, FaultInjector};
pub use check::{Repair, StoreCheck};

use crate::record::{decode_json, encode_json, EventRecord};
use crate::{
    AppendOutcome, AuditRecord, BackupReport, CompactReport, DeletedUser, ExpiredEvents, IoKind,
    KeyRecord, Store, StoreError, StoreStats, WriteFailure,
};

const ITEMS: TableDefinition<&str, &[u8]> = TableDefinition::new("items");
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// The event log, by sequence number.
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Index of the log by user, for histories and erasure.
const USER_EVENTS: TableDefinition<(&str, u64), ()> = TableDefinition::new("user_events");
/// Client event ids already stored, for idempotent posting.
const EVENT_IDS: TableDefinition<&str, u64> = TableDefinition::new("event_ids");
/// Every `(user, item)` pair with at least one event: the user's seen items over the whole
/// history, read in one range scan however long the history is.
const USER_ITEMS: TableDefinition<(&str, &str), ()> = TableDefinition::new("user_items");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// API keys by id (JSON [`KeyRecord`]: the token's digest, never the token).
const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
/// The audit log of administrative actions, by position (JSON [`AuditRecord`]).
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
const LAST_SEQ: &str = "last_seq";
/// The log position up to which `user_items` holds every pair. A store written by a version
/// without the table (or written to by one after) is caught up from the log when opened.
const USER_ITEMS_SEQ: &str = "user_items_seq";
/// When the last test write of [`EmbeddedStore::retry_writes`] worked (Unix seconds).
const WRITE_PROBE: &str = "write_probe";

/// How often a refused write tries the disk again by itself (besides the server's probe).
pub const RETRY_EVERY: Duration = Duration::from_secs(5);
/// The free space a retry asks of the data directory's disk (a file this large is written,
/// synced and removed) before it reopens the store for writing: a full disk often still takes a
/// small commit into pages the store file already holds, and writes would flap.
const HEADROOM: usize = 1 << 20;

/// The redb handle the store works on now.
enum Slot {
    /// The file, opened for reading and writing.
    Writable(Database),
    /// A read-only view of the file while the disk refuses writes.
    ReadOnly(Database),
    /// Neither opens (the reason is in [`Health`]); every open is tried again on the next use.
    Closed(String),
}

#[derive(Default)]
struct Health {
    /// Set while writes are refused.
    failure: Option<WriteFailure>,
    /// When writes were last tried again.
    last_retry: Option<Instant>,
}

pub struct EmbeddedStore {
    /// Readers and writers hold the read lock for one operation; reopening takes the write lock,
    /// so the old handle (and its lock on the file) is gone before the new one opens.
    slot: RwLock<Slot>,
    /// Bumped at every reopen, so that many operations failing at once reopen once.
    generation: AtomicU64,
    health: Mutex<Health>,
    path: PathBuf,
    opener: backends::Opener,
    /// The bound of redb's page cache (`store.cache_bytes`), kept for every reopen.
    cache_bytes: usize,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The default bound of the store's page cache, in bytes (redb's own default is 1 GiB, which a
/// server reaches as its log grows: training reads the whole log every time).
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `data_dir`, with a page cache of
    /// [`DEFAULT_CACHE_BYTES`].
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(data_dir, DEFAULT_CACHE_BYTES)
    }

    /// Opens (creating if needed) the store in `data_dir`, its page cache (pages read and written,
    /// kept in memory) bounded by `cache_bytes`: nine tenths for reads, one tenth for writes.
    pub fn open_with_cache(data_dir: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        let path = data_dir.join("cairn.redb");
        Self::open_with(data_dir, backends::file_opener(&path), cache_bytes)
    }

    /// [`EmbeddedStore::open`], with every write to the store file going through `faults`, which
    /// can make them fail as a full or broken disk would. For tests and fault drills: the store
    /// behaves as over a real disk that fails.
    pub fn open_with_faults(data_dir: &Path, faults: &FaultInjector) -> Result<Self, StoreError> {
        let path = data_dir.join("cairn.redb");
        Self::open_with(
            data_dir,
            backends::faulty_opener(&path, faults),
            DEFAULT_CACHE_BYTES,
        )
    }

    fn open_with(
        data_dir: &Path,
        opener: backends::Opener,
        cache_bytes: usize,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Open {
            path: data_dir.to_path_buf(),
            message: e.to_string(),
        })?;
        let path = data_dir.join("cairn.redb");
        let store = EmbeddedStore {
            slot: RwLock::new(Slot::Closed("not opened yet".into())),
            generation: AtomicU64::new(0),
            health: Mutex::default(),
            path,
            opener,
            cache_bytes,
        };
        let opened = check::open_database_with(&store.path, &store.opener, store.cache_bytes)
            .and_then(|db| Self::prepare(&db).map(|()| db));
        match opened {
            Ok(db) => *store.slot_mut() = Slot::Writable(db),
            // A disk that refuses writes at start: serve what is stored, read-only.
            Err(e) if e.io_kind().is_some() => {
                store.record_failure(&e);
                match check::open_read_only(&store.path, &store.opener, store.cache_bytes) {
                    Ok(db) => *store.slot_mut() = Slot::ReadOnly(db),
                    Err(_) => {
                        return Err(StoreError::Open {
                            path: store.path.clone(),
                            message: e.to_string(),
                        })
                    }
                }
            }
            Err(e) => return Err(e),
        }
        Ok(store)
    }

    /// Creates the tables and catches up `user_items`, in one write.
    fn prepare(db: &Database) -> Result<(), StoreError> {
        let txn = db.begin_write()?;
        {
            txn.open_table(ITEMS)?;
            txn.open_table(USERS)?;
            txn.open_table(EVENTS)?;
            txn.open_table(USER_EVENTS)?;
            txn.open_table(EVENT_IDS)?;
            let mut meta = txn.open_table(META)?;
            let mut user_items = txn.open_table(USER_ITEMS)?;
            let last_seq = meta.get(LAST_SEQ)?.map_or(0, |v| v.value());
            let covered = meta.get(USER_ITEMS_SEQ)?.map_or(0, |v| v.value());
            if covered < last_seq {
                // One pass over the events not yet covered, in the same transaction that records
                // the new position, so an interrupted catch-up is redone on the next open.
                let events = txn.open_table(EVENTS)?;
                for entry in events.range((Bound::Excluded(covered), Bound::Unbounded))? {
                    let (seq, bytes) = entry?;
                    let record = EventRecord::decode(bytes.value())
                        .map_err(|e| StoreError::Corrupt(format!("event {}: {e}", seq.value())))?;
                    user_items.insert((record.user.as_str(), record.item.as_str()), ())?;
                }
                meta.insert(USER_ITEMS_SEQ, last_seq)?;
            }
        }
        Self::create_access_tables(&txn)?;
        txn.commit()?;
        Ok(())
    }

    fn slot(&self) -> std::sync::RwLockReadGuard<'_, Slot> {
        self.slot.read().unwrap_or_else(|p| p.into_inner())
    }

    fn slot_mut(&self) -> std::sync::RwLockWriteGuard<'_, Slot> {
        self.slot.write().unwrap_or_else(|p| p.into_inner())
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes that writes fail, keeping the time of the first failure.
    fn record_failure(&self, e: &StoreError) {
        // Any error that keeps the file from opening for writing counts, so retries go on.
        let (kind, message) = match e {
            StoreError::Io { kind, message } => (kind, message.clone()),
            other => (&IoKind::Failed, other.to_string()),
        };
        let mut health = self.health();
        // "An earlier write failed" says less than the failure it follows.
        if health.failure.is_some() && message.starts_with("an earlier write") {
            return;
        }
        if health.failure.is_none() {
            // The failure itself was the last try.
            health.last_retry = Some(Instant::now());
        }
        let since = health.failure.as_ref().map_or_else(now_unix, |f| f.since);
        health.failure = Some(WriteFailure {
            kind: *kind,
            message,
            since,
        });
    }

    /// The error for a store whose file does not open at all.
    fn closed_error(why: &str) -> StoreError {
        StoreError::Io {
            kind: IoKind::Failed,
            message: format!("the store file cannot be opened: {why}"),
        }
    }

    /// Runs a read; after an I/O error the file is reopened and the read runs once more.
    fn read<T>(&self, op: impl Fn(&Database) -> Result<T, StoreError>) -> Result<T, StoreError> {
        match self.read_once(&op) {
            Err(e) if e.io_kind().is_some() => self.read_once(&op),
            other => other,
        }
    }

    /// Runs a read once (a scan whose visitor must not see a row twice).
    fn read_once<T>(
        &self,
        op: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let (result, generation) = {
            let slot = self.slot();
            let generation = self.generation.load(Ordering::SeqCst);
            let result = match &*slot {
                Slot::Writable(db) | Slot::ReadOnly(db) => op(db),
                Slot::Closed(why) => Err(Self::closed_error(why)),
            };
            (result, generation)
        };
        if let Err(e) = &result {
            if e.io_kind().is_some() {
                self.reopen(generation, None);
            }
        }
        result
    }

    /// Runs a write on the writable file; while the disk refuses writes, refuses it at once with
    /// the failure (trying the disk again first when the last try is [`RETRY_EVERY`] old).
    fn write<T>(
        &self,
        op: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let due = {
            let health = self.health();
            health.failure.is_some()
                && health
                    .last_retry
                    .is_none_or(|at| at.elapsed() >= RETRY_EVERY)
        };
        if due {
            self.try_writable();
        }
        let (result, generation) = {
            let slot = self.slot();
            let generation = self.generation.load(Ordering::SeqCst);
            let result = match &*slot {
                Slot::Writable(db) => op(db),
                Slot::ReadOnly(_) | Slot::Closed(_) => Err(self.refusal()),
            };
            (result, generation)
        };
        match result {
            Err(e) if e.io_kind().is_some() => {
                self.reopen(generation, Some(&e));
                Err(self.refusal())
            }
            other => other,
        }
    }

    /// The error a write gets while writes are refused.
    fn refusal(&self) -> StoreError {
        match &self.health().failure {
            Some(f) => f.error(),
            None => StoreError::Io {
                kind: IoKind::Failed,
                message: "the store file is being reopened after a failure".into(),
            },
        }
    }

    /// Replaces the handle that saw an I/O error (unless someone did since `generation`): the
    /// file again when only a read failed, a read-only view when a write did (`failed_write`) or
    /// the file no longer opens for writing.
    fn reopen(&self, generation: u64, failed_write: Option<&StoreError>) {
        if let Some(e) = failed_write {
            self.record_failure(e);
        }
        let mut slot = self.slot_mut();
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        // Drop the old handle first: redb refuses a file this process already holds open.
        *slot = Slot::Closed("reopening".into());
        let failing = self.health().failure.is_some();
        let mut opened = if failing {
            Err(StoreError::Io {
                kind: IoKind::Failed,
                message: "writes are failing".into(),
            })
        } else {
            check::open_database_with(&self.path, &self.opener, self.cache_bytes)
                .map(Slot::Writable)
        };
        if let Err(e) = &opened {
            if !failing {
                self.record_failure(e);
            }
            opened = check::open_read_only(&self.path, &self.opener, self.cache_bytes)
                .map(Slot::ReadOnly);
        }
        *slot = opened.unwrap_or_else(|e| Slot::Closed(e.to_string()));
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Writes and removes a [`HEADROOM`]-byte file beside the store file, synced.
    fn check_headroom(&self) -> Result<(), StoreError> {
        let probe = self.path.with_file_name(".cairn-space-probe");
        let written = std::fs::File::create(&probe).and_then(|mut f| {
            f.write_all(&vec![0u8; HEADROOM])?;
            f.sync_all()
        });
        let _ = std::fs::remove_file(&probe);
        written.map_err(|e| StoreError::from_io(&e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// See [`Store::retry_writes`].
    fn try_writable(&self) -> Option<WriteFailure> {
        {
            let mut health = self.health();
            health.failure.as_ref()?;
            health.last_retry = Some(Instant::now());
        }
        let attempt = self.check_headroom().and_then(|()| {
            let mut slot = self.slot_mut();
            *slot = Slot::Closed("reopening".into());
            let opened = check::open_database_with(&self.path, &self.opener, self.cache_bytes)
                .and_then(|db| {
                    let txn = db.begin_write()?;
                    txn.open_table(META)?
                        .insert(WRITE_PROBE, now_unix().max(0) as u64)?;
                    txn.commit()?;
                    Ok(db)
                });
            let result = match opened {
                Ok(db) => {
                    *slot = Slot::Writable(db);
                    Ok(())
                }
                Err(e) => {
                    *slot = check::open_read_only(&self.path, &self.opener, self.cache_bytes)
                        .map_or_else(|e| Slot::Closed(e.to_string()), Slot::ReadOnly);
                    Err(e)
                }
            };
            self.generation.fetch_add(1, Ordering::SeqCst);
            result
        });
        match attempt {
            Ok(()) => {
                self.health().failure = None;
                None
            }
            Err(e) => {
                self.record_failure(&e);
                self.health().failure.clone()
            }
        }
    }

    fn create_access_tables(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
        txn.open_table(KEYS)?;
        txn.open_table(AUDIT)?;
        Ok(())
    }

    fn put_rows<T: serde::Serialize>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        rows: &[T],
        id: impl Fn(&T) -> &str,
    ) -> Result<(), StoreError> {
        self.write(|db| {
            let txn = db.begin_write()?;
            {
                let mut t = txn.open_table(table)?;
                for row in rows {
                    t.insert(id(row), encode_json(row).as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        })
    }

    fn get_row<T: serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        self.read(|db| {
            let txn = db.begin_read()?;
            let t = txn.open_table(table)?;
            match t.get(id)? {
                Some(bytes) => Ok(Some(decode_json(table.name(), bytes.value())?)),
                None => Ok(None),
            }
        })
    }

    fn list_rows<T: serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        self.read(|db| {
            let txn = db.begin_read()?;
            let t = txn.open_table(table)?;
            let start = match after {
                Some(a) => Bound::Excluded(a),
                None => Bound::Unbounded,
            };
            let mut out = Vec::new();
            for entry in t.range::<&str>((start, Bound::Unbounded))?.take(limit) {
                let (_, bytes) = entry?;
                out.push(decode_json(table.name(), bytes.value())?);
            }
            Ok(out)
        })
    }
}

impl Store for EmbeddedStore {
    fn write_failure(&self) -> Option<WriteFailure> {
        self.health().failure.clone()
    }

    fn retry_writes(&self) -> Option<WriteFailure> {
        self.try_writable()
    }

    fn put_items(&self, items: &[Item]) -> Result<(), StoreError> {
        self.put_rows(ITEMS, items, |i| &i.id)
    }

    fn get_item(&self, id: &str) -> Result<Option<Item>, StoreError> {
        self.get_row(ITEMS, id)
    }

    fn delete_item(&self, id: &str) -> Result<bool, StoreError> {
        self.write(|db| {
            let txn = db.begin_write()?;
            let existed = txn.open_table(ITEMS)?.remove(id)?.is_some();
            txn.commit()?;
            Ok(existed)
        })
    }

    fn list_items(&self, after: Option<&str>, limit: usize) -> Result<Vec<Item>, StoreError> {
        self.list_rows(ITEMS, after, limit)
    }

    fn scan_items(&self, visit: &mut dyn FnMut(Item)) -> Result<(), StoreError> {
        self.read_once(|db| {
            let txn = db.begin_read()?;
            let t = txn.open_table(ITEMS)?;
            for entry in t.iter()? {
                let (_, bytes) = entry?;
                visit(decode_json("items", bytes.value())?);
            }
            Ok(())
        })
    }

    fn put_users(&self, users: &[User]) -> Result<(), StoreError> {
        self.put_rows(USERS, users, |u| &u.id)
    }

    fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.get_row(USERS, id)
    }

    fn delete_user(&self, id: &str) -> Result<DeletedUser, StoreError> {
        self.write(|db| {
            let txn = db.begin_write()?;
            let mut removed = 0;
            let user_existed;
            let audit_scrubbed;
            {
                user_existed = txn.open_table(USERS)?.remove(id)?.is_some();
                let mut index = txn.open_table(USER_EVENTS)?;
                let mut events = txn.open_table(EVENTS)?;
                let mut event_ids = txn.open_table(EVENT_IDS)?;
                let mut user_items = txn.open_table(USER_ITEMS)?;
                let seqs: Vec<u64> = index
                    .range((id, 0u64)..=(id, u64::MAX))?
                    .map(|entry| entry.map(|(k, _)| k.value().1))
                    .collect::<Result<_, _>>()?;
                for seq in seqs {
                    if let Some(bytes) = events.remove(seq)? {
                        let record = EventRecord::decode(bytes.value())?;
                        if let Some(eid) = &record.event_id {
                            event_ids.remove(eid.as_str())?;
                        }
                    }
                    index.remove((id, seq))?;
                    removed += 1;
                }
                let items: Vec<String> = user_item_range(&user_items, id)?;
                for item in &items {
                    user_items.remove((id, item.as_str()))?;
                }
                audit_scrubbed = scrub_audit(&mut txn.open_table(AUDIT)?, id)?;
            }
            txn.commit()?;
            Ok(DeletedUser {
                user_existed,
                events_removed: removed,
                audit_scrubbed,
            })
        })
    }

    fn list_users(&self, after: Option<&str>, limit: usize) -> Result<Vec<User>, StoreError> {
        self.list_rows(USERS, after, limit)
    }

    fn append_events(&self, batch: &[Event], now: Timestamp) -> Result<AppendOutcome, StoreError> {
        let mut outcome = AppendOutcome::default();
        if batch.is_empty() {
            return Ok(outcome);
        }
        self.write(|db| {
            let txn = db.begin_write()?;
            {
                let mut meta = txn.open_table(META)?;
                let mut events = txn.open_table(EVENTS)?;
                let mut index = txn.open_table(USER_EVENTS)?;
                let mut event_ids = txn.open_table(EVENT_IDS)?;
                let mut user_items = txn.open_table(USER_ITEMS)?;
                let mut seq = meta.get(LAST_SEQ)?.map(|v| v.value()).unwrap_or(0);
                let mut in_batch: HashSet<&str> = HashSet::new();
                for event in batch {
                    if let Some(eid) = event.event_id.as_deref() {
                        if !in_batch.insert(eid) || event_ids.get(eid)?.is_some() {
                            outcome.duplicates += 1;
                            continue;
                        }
                    }
                    seq += 1;
                    let record = EventRecord::from_event(event, now);
                    events.insert(seq, record.encode().as_slice())?;
                    index.insert((event.user_id.as_str(), seq), ())?;
                    user_items.insert((event.user_id.as_str(), event.item_id.as_str()), ())?;
                    if let Some(eid) = event.event_id.as_deref() {
                        event_ids.insert(eid, seq)?;
                    }
                    outcome.stored.push(seq);
                }
                meta.insert(LAST_SEQ, seq)?;
                meta.insert(USER_ITEMS_SEQ, seq)?;
            }
            txn.commit()?;
            Ok(outcome)
        })
    }

    fn user_events(&self, user_id: &str, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = self.user_events_before(user_id, None, limit)?;
        out.reverse();
        Ok(out)
    }

    fn user_events_before(
        &self,
        user_id: &str,
        before_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(|db| {
            let txn = db.begin_read()?;
            let index = txn.open_table(USER_EVENTS)?;
            let events = txn.open_table(EVENTS)?;
            let mut out = Vec::new();
            let end = match before_seq {
                Some(0) => return Ok(out),
                Some(seq) => seq - 1,
                None => u64::MAX,
            };
            for entry in index
                .range((user_id, 0u64)..=(user_id, end))?
                .rev()
                .take(limit)
            {
                let (key, _) = entry?;
                let seq = key.value().1;
                let bytes = events.get(seq)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("index names missing event {seq}"))
                })?;
                out.push(EventRecord::decode(bytes.value())?.into_stored(seq)?);
            }
            Ok(out)
        })
    }

    fn user_items(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        self.read(|db| {
            let txn = db.begin_read()?;
            user_item_range(&txn.open_table(USER_ITEMS)?, user_id)
        })
    }

    fn scan_events(
        &self,
        after_seq: u64,
        visit: &mut dyn FnMut(StoredEvent) -> bool,
    ) -> Result<(), StoreError> {
        self.read_once(|db| {
            let txn = db.begin_read()?;
            let events = txn.open_table(EVENTS)?;
            for entry in events.range((Bound::Excluded(after_seq), Bound::Unbounded))? {
                let (seq, bytes) = entry?;
                let seq = seq.value();
                if !visit(EventRecord::decode(bytes.value())?.into_stored(seq)?) {
                    break;
                }
            }
            Ok(())
        })
    }

    fn backup(&self, dest_dir: &Path) -> Result<BackupReport, StoreError> {
        self.backup_into(dest_dir)
    }

    fn compact(&self) -> Result<CompactReport, StoreError> {
        self.compact_in_place()
    }

    fn expire_events(&self, cutoff: Timestamp, limit: usize) -> Result<ExpiredEvents, StoreError> {
        self.expire_before(cutoff, limit)
    }

    fn import_events(&self, events: &[StoredEvent], last_seq: u64) -> Result<(), StoreError> {
        self.import_log(events, last_seq)
    }

    fn import_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        self.import_audit_records(records)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        self.read(|db| {
            let txn = db.begin_read()?;
            Ok(StoreStats {
                items: txn.open_table(ITEMS)?.len()?,
                users: txn.open_table(USERS)?.len()?,
                events: txn.open_table(EVENTS)?.len()?,
                last_seq: txn
                    .open_table(META)?
                    .get(LAST_SEQ)?
                    .map(|v| v.value())
                    .unwrap_or(0),
            })
        })
    }

    // ----- access: API keys and the audit log -----

    fn put_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        self.put_rows(KEYS, std::slice::from_ref(key), |k| &k.id)
    }

    fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.list_rows(KEYS, None, usize::MAX)
    }

    fn delete_key(&self, id: &str) -> Result<bool, StoreError> {
        self.write(|db| {
            let txn = db.begin_write()?;
            let existed = txn.open_table(KEYS)?.remove(id)?.is_some();
            txn.commit()?;
            Ok(existed)
        })
    }

    fn append_audit(&self, record: &AuditRecord) -> Result<u64, StoreError> {
        self.write(|db| {
            let txn = db.begin_write()?;
            let seq;
            {
                let mut audit = txn.open_table(AUDIT)?;
                seq = audit.last()?.map(|(k, _)| k.value()).unwrap_or(0) + 1;
                let stored = AuditRecord {
                    seq,
                    ..record.clone()
                };
                audit.insert(seq, encode_json(&stored).as_slice())?;
            }
            txn.commit()?;
            Ok(seq)
        })
    }

    fn list_audit(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.read(|db| {
            let txn = db.begin_read()?;
            let audit = txn.open_table(AUDIT)?;
            let end = match before {
                Some(b) => Bound::Excluded(b),
                None => Bound::Unbounded,
            };
            let mut out = Vec::new();
            for entry in audit.range((Bound::Unbounded, end))?.rev().take(limit) {
                let (_, bytes) = entry?;
                out.push(decode_json("audit", bytes.value())?);
            }
            Ok(out)
        })
    }
}

/// What an erased user's id is replaced with in the audit log: the entry stays (who did what,
/// when), the id goes.
pub const ERASED_MARKER: &str = "[erased]";

/// Replaces `user` in the audit entries of the user routes (`METHOD /v1/users/<user>...`, the
/// path segment and the target) with [`ERASED_MARKER`]; returns how many entries changed.
fn scrub_audit(audit: &mut redb::Table<u64, &[u8]>, user: &str) -> Result<usize, StoreError> {
    let mut changed = Vec::new();
    for entry in audit.iter()? {
        let (seq, bytes) = entry?;
        let mut record: AuditRecord = decode_json("audit", bytes.value())?;
        if scrub_record(&mut record, user) {
            changed.push((seq.value(), record));
        }
    }
    for (seq, record) in &changed {
        audit.insert(*seq, encode_json(record).as_slice())?;
    }
    Ok(changed.len())
}

/// Replaces `user` in one audit record of the user routes (the path segment after
/// `/v1/users/`, raw or percent-encoded, and the target) with [`ERASED_MARKER`]; returns whether
/// the record named `user`. Every backend erases the audit log this way.
pub fn scrub_record(record: &mut AuditRecord, user: &str) -> bool {
    let encoded = percent_encode_segment(user);
    let Some((method, path)) = record.action.split_once(' ') else {
        return false;
    };
    let mut segments: Vec<&str> = path.split('/').collect();
    // "", "v1", "users", "<id>", ...
    let names_user = segments.len() > 3
        && segments[1] == "v1"
        && segments[2] == "users"
        && (segments[3] == user || segments[3] == encoded);
    if !names_user {
        return false;
    }
    segments[3] = ERASED_MARKER;
    record.action = format!("{method} {}", segments.join("/"));
    if record
        .target
        .as_deref()
        .is_some_and(|t| t == user || t == encoded)
    {
        record.target = Some(ERASED_MARKER.to_string());
    }
    true
}

/// How an id appears as one URL path segment (every byte outside the unreserved set escaped).
fn percent_encode_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The items of `user`'s pairs in `user_items`, in id order.
fn user_item_range(
    table: &impl ReadableTable<(&'static str, &'static str), ()>,
    user: &str,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    // Keys order by user, then item: the user's pairs are the run that starts at (user, "").
    for entry in table.range::<(&str, &str)>((user, "")..)? {
        let (key, _) = entry?;
        let (u, item) = key.value();
        if u != user {
            break;
        }
        out.push(item.to_string());
    }
    Ok(out)
}

/// The tests of what only the embedded store does (its file, reopening, old formats); what every
/// backend does is the store suite, `tests/suite`, run on this backend by `tests/store_suite.rs`.
#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, EmbeddedStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path()).unwrap();
        (dir, s)
    }

    /// How often `needle` occurs in `haystack`.
    pub(crate) fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
        haystack
            .windows(needle.len())
            .filter(|w| *w == needle)
            .count()
    }

    #[test]
    fn compaction_leaves_no_byte_of_an_erased_user_and_keeps_everything_else() {
        let (d, s) = store();
        let gone = "erased-user-7f3a9c";
        let mut user = User::new(gone);
        user.properties.insert(
            "note".into(),
            cairn_core::PropertyValue::String(gone.into()),
        );
        s.put_users(&[user, User::new("kept")]).unwrap();
        let events: Vec<Event> = (0..200)
            .map(|i| {
                let mut e = Event::new(gone, format!("i{}", i % 30), "view").at(i);
                e.event_id = Some(format!("{gone}-{i}"));
                e
            })
            .chain((0..50).map(|i| Event::new("kept", format!("i{i}"), "view").at(i)))
            .collect();
        for chunk in events.chunks(25) {
            s.append_events(chunk, Timestamp(7)).unwrap();
        }
        s.append_audit(&AuditRecord {
            seq: 0,
            at: 1,
            key_id: "anonymous".into(),
            key_name: "ops".into(),
            action: format!("GET /v1/users/{gone}"),
            target: Some(gone.into()),
            status: 200,
        })
        .unwrap();
        let file = d.path().join("cairn.redb");
        s.delete_user(gone).unwrap();
        let before = occurrences(&std::fs::read(&file).unwrap(), gone.as_bytes());
        assert!(
            before > 0,
            "erased bytes linger in free pages until compaction"
        );
        let report = s.compact().unwrap();
        assert_eq!(
            occurrences(&std::fs::read(&file).unwrap(), gone.as_bytes()),
            0
        );
        assert_eq!((report.users, report.events), (1, 50));
        // The compacted store serves and takes writes, and they last.
        assert_eq!(s.user_items("kept").unwrap().len(), 50);
        s.append_events(&[Event::new("new", "a", "view")], Timestamp(8))
            .unwrap();
        drop(s);
        let s = EmbeddedStore::open(d.path()).unwrap();
        assert_eq!(s.stats().unwrap().events, 51);
        assert_eq!(s.stats().unwrap().last_seq, 251);
        assert_eq!(
            s.list_audit(None, 5).unwrap()[0].target.as_deref(),
            Some(ERASED_MARKER)
        );
        assert!(!d.path().join("cairn.redb.compact").exists());
    }

    #[test]
    fn a_store_behind_on_the_seen_table_is_caught_up_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = EmbeddedStore::open(dir.path()).unwrap();
            let events = [
                Event::new("u", "a", "view"),
                Event::new("u", "b", "view"),
                Event::new("v", "a", "view"),
            ];
            s.append_events(&events, Timestamp(1)).unwrap();
            // What a store written before the table existed looks like.
            s.write(|db| {
                let txn = db.begin_write()?;
                txn.delete_table(USER_ITEMS)?;
                txn.open_table(META)?.remove(USER_ITEMS_SEQ)?;
                txn.commit()?;
                Ok(())
            })
            .unwrap();
        }
        let s = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(s.user_items("u").unwrap(), ["a", "b"]);
        assert_eq!(s.user_items("v").unwrap(), ["a"]);
        // An older version appended an event without the table: caught up on the next open.
        s.write(|db| {
            let txn = db.begin_write()?;
            {
                let record = EventRecord::from_event(&Event::new("w", "d", "view"), Timestamp(1));
                txn.open_table(EVENTS)?
                    .insert(4, record.encode().as_slice())?;
                txn.open_table(META)?.insert(LAST_SEQ, 4)?;
            }
            txn.commit()?;
            Ok(())
        })
        .unwrap();
        drop(s);
        let s = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(s.user_items("w").unwrap(), ["d"]);
        s.append_events(&[Event::new("v", "c", "view")], Timestamp(2))
            .unwrap();
        assert_eq!(s.user_items("v").unwrap(), ["a", "c"]);
        assert_eq!(s.stats().unwrap().last_seq, 5);
    }

    #[test]
    fn a_second_open_of_the_same_directory_is_refused() {
        let (d, _s) = store();
        assert!(matches!(
            EmbeddedStore::open(d.path()),
            Err(StoreError::InUse(_))
        ));
    }

    #[test]
    fn keys_and_audit_round_trip_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyRecord {
            id: "key_b".into(),
            name: "backend".into(),
            scope: "ingest".into(),
            digest: "ab".repeat(32),
            created_at: 10,
            last_used_at: None,
            rate_limit_per_sec: Some(2.5),
            rate_limit_burst: Some(5),
        };
        {
            let s = EmbeddedStore::open(dir.path()).unwrap();
            s.put_key(&key).unwrap();
            for i in 0..5 {
                let record = AuditRecord {
                    seq: 0,
                    at: i,
                    key_id: "key_b".into(),
                    key_name: "backend".into(),
                    action: format!("DELETE /v1/items/i{i}"),
                    target: Some(format!("i{i}")),
                    status: 204,
                };
                assert_eq!(s.append_audit(&record).unwrap(), i as u64 + 1);
            }
        }
        let s = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(s.list_keys().unwrap(), vec![key]);
        let newest = s.list_audit(None, 2).unwrap();
        assert_eq!(newest.iter().map(|r| r.seq).collect::<Vec<_>>(), [5, 4]);
        let older = s.list_audit(Some(4), 10).unwrap();
        assert_eq!(older.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 2, 1]);
        assert_eq!(older[0].target.as_deref(), Some("i2"));
        assert!(s.delete_key("key_b").unwrap());
        assert!(!s.delete_key("key_b").unwrap());
        assert!(s.list_keys().unwrap().is_empty());
    }

    #[test]
    fn key_records_written_before_rate_limits_and_last_use_still_load() {
        let (_d, s) = store();
        // A record exactly as the first release wrote it: no last use, no rate limit.
        let old =
            br#"{"id":"key_old","name":"backend","scope":"read","digest":"cd","created_at":7}"#;
        s.write(|db| {
            let txn = db.begin_write()?;
            txn.open_table(KEYS)?.insert("key_old", old.as_slice())?;
            txn.commit()?;
            Ok(())
        })
        .unwrap();
        let keys = s.list_keys().unwrap();
        assert_eq!(keys.len(), 1);
        let k = &keys[0];
        assert_eq!((k.id.as_str(), k.created_at), ("key_old", 7));
        assert_eq!(
            (k.last_used_at, k.rate_limit_per_sec, k.rate_limit_burst),
            (None, None, None)
        );
        // Written back, a record without a limit keeps the old shape.
        s.put_key(k).unwrap();
        assert_eq!(s.list_keys().unwrap(), keys);
    }

    #[test]
    fn data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = EmbeddedStore::open(dir.path()).unwrap();
            s.append_events(&[Event::new("u", "a", "view")], Timestamp(1))
                .unwrap();
        }
        let s = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(s.stats().unwrap().events, 1);
        assert_eq!(s.stats().unwrap().last_seq, 1);
    }
}
