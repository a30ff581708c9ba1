//! Storage for Cairn: the catalog (items, users) and the durable event log.
//!
//! Callers depend on the [`Store`] trait only. The embedded backend ([`EmbeddedStore`], on redb) is the
//! default; a PostgreSQL backend can implement the same trait without changing callers. Every write
//! method is atomic: a batch is applied whole or not at all, and once it returns `Ok` it is durable
//! (fsynced), so an acknowledged write survives `kill -9`. A write the disk refuses (full, failing)
//! returns [`StoreError::Io`] and stored nothing; reads go on, and writes are taken again once the
//! disk takes them ([`Store::write_failure`], [`Store::retry_writes`]).

mod access;
mod copy;
mod embedded;
mod error;
mod record;

use cairn_core::{Event, Item, StoredEvent, Timestamp, User};

pub use access::{AuditRecord, KeyRecord};
pub use copy::copy_store;
pub use embedded::scrub_record as scrub_audit_record;
pub use embedded::{
    EmbeddedStore, Fault, FaultInjector, Repair, StoreCheck, DEFAULT_CACHE_BYTES, ERASED_MARKER,
    RETRY_EVERY,
};
pub use error::{IoKind, StoreError, WriteFailure};

/// What happened to a batch of events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Log positions of the events stored by this call, in input order.
    pub stored: Vec<u64>,
    /// Events skipped because an event with the same `event_id` was stored before.
    pub duplicates: usize,
}

/// What deleting a user removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeletedUser {
    pub user_existed: bool,
    pub events_removed: usize,
    /// Audit entries whose id was replaced by [`ERASED_MARKER`].
    pub audit_scrubbed: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub items: u64,
    pub users: u64,
    pub events: u64,
    /// The highest event log position ever handed out (0 when none).
    pub last_seq: u64,
}

/// What a backup copied: one consistent moment of the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackupReport {
    pub items: u64,
    pub users: u64,
    pub events: u64,
    /// The log position the copy ends at: every event up to it is in the backup, none after.
    pub last_seq: u64,
}

/// What one retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiredEvents {
    pub events: u64,
    /// `(user, item)` pairs of `user_items` left without any event, deleted with them.
    pub pairs: u64,
}

/// What a compaction rewrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Size of the store file before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Live rows carried over.
    pub items: u64,
    pub users: u64,
    pub events: u64,
}

pub trait Store: Send + Sync + 'static {
    /// Inserts or replaces items, all or none.
    fn put_items(&self, items: &[Item]) -> Result<(), StoreError>;
    fn get_item(&self, id: &str) -> Result<Option<Item>, StoreError>;
    /// Returns whether the item existed. Its events stay in the log as history.
    fn delete_item(&self, id: &str) -> Result<bool, StoreError>;
    /// Items in id order, strictly after `after`.
    fn list_items(&self, after: Option<&str>, limit: usize) -> Result<Vec<Item>, StoreError>;
    /// Every item, in id order.
    fn scan_items(&self, visit: &mut dyn FnMut(Item)) -> Result<(), StoreError>;

    fn put_users(&self, users: &[User]) -> Result<(), StoreError>;
    fn get_user(&self, id: &str) -> Result<Option<User>, StoreError>;
    /// Erases the user: the user row, every event of that user with its idempotency record, the
    /// user's `user_items` pairs, and the id in the audit log (replaced by [`ERASED_MARKER`]).
    fn delete_user(&self, id: &str) -> Result<DeletedUser, StoreError>;
    fn list_users(&self, after: Option<&str>, limit: usize) -> Result<Vec<User>, StoreError>;

    /// Appends events, all or none. Events without a timestamp get `now`. An event whose `event_id`
    /// was stored before (or earlier in the same batch) is skipped and counted as a duplicate.
    fn append_events(&self, events: &[Event], now: Timestamp) -> Result<AppendOutcome, StoreError>;
    /// The user's most recent `limit` events, oldest first.
    fn user_events(&self, user_id: &str, limit: usize) -> Result<Vec<StoredEvent>, StoreError>;
    /// Up to `limit` of the user's events, newest first, starting below log position
    /// `before_seq` (from the newest when `None`): the pages of a whole history.
    fn user_events_before(
        &self,
        user_id: &str,
        before_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// Every item the user has at least one event about, over the whole history, in id order
    /// (each once). Kept with the log in the same write, so it is as current and durable.
    fn user_items(&self, user_id: &str) -> Result<Vec<String>, StoreError>;
    /// Deletes up to `limit` events stamped before `cutoff` (retention), with their idempotency
    /// records and the `user_items` pairs no remaining event supports, in one write.
    fn expire_events(&self, cutoff: Timestamp, limit: usize) -> Result<ExpiredEvents, StoreError>;
    /// Visits events with `seq > after_seq` in log order until `visit` returns false.
    fn scan_events(
        &self,
        after_seq: u64,
        visit: &mut dyn FnMut(StoredEvent) -> bool,
    ) -> Result<(), StoreError>;

    fn stats(&self) -> Result<StoreStats, StoreError>;

    /// Writes a consistent copy of everything stored into the empty folder `dest_dir`, as a store
    /// this backend opens there, while reads and writes go on.
    fn backup(&self, dest_dir: &std::path::Path) -> Result<BackupReport, StoreError>;

    /// Rewrites the store so that nothing deleted (erased users, expired events) survives in its
    /// storage, not even in freed space, while reads and writes wait. Returns what it kept.
    fn compact(&self) -> Result<CompactReport, StoreError>;

    /// Adds events with the log positions and ids another store gave them (`cairn migrate`, a
    /// copy across backends), all or none: each `seq` must be above the log's end and above the
    /// one before it in `events`, and an event id must not be stored yet. The log's end is then
    /// raised to `last_seq` when that is higher, so positions handed out later never reuse one
    /// the source handed out.
    fn import_events(&self, events: &[StoredEvent], last_seq: u64) -> Result<(), StoreError>;

    /// Adds audit records with their positions (each above every stored one), all or none.
    fn import_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError>;

    // ----- access: API keys and the audit log -----

    /// Inserts or replaces a key (by id).
    fn put_key(&self, key: &KeyRecord) -> Result<(), StoreError>;
    /// Every key, in id order.
    fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError>;
    /// Removes a key; returns whether it existed.
    fn delete_key(&self, id: &str) -> Result<bool, StoreError>;
    /// Appends an audit record (its `seq` is assigned here) and returns its position.
    fn append_audit(&self, record: &AuditRecord) -> Result<u64, StoreError>;
    /// Audit records with `seq < before` (all when `None`), newest first, at most `limit`.
    fn list_audit(&self, before: Option<u64>, limit: usize)
        -> Result<Vec<AuditRecord>, StoreError>;

    // ----- disk failures -----

    /// Why writes are refused now (the disk is full or failing), or `None` when they are taken.
    /// Reads go on meanwhile.
    fn write_failure(&self) -> Option<WriteFailure> {
        None
    }

    /// When writes are refused, tries the disk again now (a small test write) and takes writes
    /// again if it works; returns [`Store::write_failure`] afterwards.
    fn retry_writes(&self) -> Option<WriteFailure> {
        self.write_failure()
    }

    /// Takes, or keeps, the trainer lease: whether this process may train now. Over a store that
    /// several processes share (replicas over one database), at most one holds it at a time, until
    /// it ends or loses its connection; the others get `false` until then. This default grants it
    /// always: a store only one process can open (the embedded one) has no one to share it with.
    fn trainer_lease(&self) -> Result<bool, StoreError> {
        Ok(true)
    }
}

/// Refuses an imported position that is not above the previous one (see [`Store::import_events`]).
pub fn check_import_order(seq: u64, end: u64) -> Result<(), StoreError> {
    if seq <= end {
        return Err(StoreError::Backend(format!(
            "imported position {seq} is not above the log's end {end}: import into an empty store"
        )));
    }
    Ok(())
}
