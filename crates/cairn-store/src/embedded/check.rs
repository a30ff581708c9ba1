//! Opening the redb file without trusting it, and reading all of it back to say what is damaged.
//!
//! redb checks page checksums as it reads, but some damage (a file shorter than its header says)
//! trips an assertion inside redb instead of returning an error. A store file is user data, so
//! both ways end here as [`StoreError::Damaged`], with what to do next.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use redb::{Builder, Database, DatabaseError, ReadableTable, ReadableTableMetadata};

use super::backends::{Boxed, Opener, ReadOnlyView};

use super::{
    EmbeddedStore, AUDIT, EVENTS, EVENT_IDS, ITEMS, KEYS, LAST_SEQ, META, USERS, USER_EVENTS,
    USER_ITEMS,
};
use crate::record::EventRecord;
use crate::StoreError;

/// What [`EmbeddedStore::check`] read back, table by table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreCheck {
    /// (table, rows read, rows that did not decode).
    pub tables: Vec<(&'static str, u64, u64)>,
    /// redb's own verdict on its page checksums and allocator state.
    pub integrity_ok: bool,
    /// The first problems found, each saying where.
    pub problems: Vec<String>,
}

impl StoreCheck {
    pub fn is_healthy(&self) -> bool {
        self.integrity_ok && self.problems.is_empty()
    }
}

/// How many problems a check lists before it only counts them.
const LISTED: usize = 20;

/// Opens (creating if needed) the redb file at `path` with a page cache of at most `cache_bytes`;
/// damage is an error, never a panic.
pub(super) fn open_database(path: &Path, cache_bytes: usize) -> Result<Database, StoreError> {
    open_database_with(path, &super::backends::file_opener(path), cache_bytes)
}

/// Opens the redb database at `path` over the backend `open` makes, with a page cache of at most
/// `cache_bytes`; damage is an error, never a panic.
pub(super) fn open_database_with(
    path: &Path,
    open: &Opener,
    cache_bytes: usize,
) -> Result<Database, StoreError> {
    open_over(path, || {
        Builder::new()
            .set_cache_size(cache_bytes)
            .create_with_backend(Boxed(open()?))
    })
}

/// A read-only view of the database at `path` (see [`ReadOnlyView`]): the file is never written.
pub(super) fn open_read_only(
    path: &Path,
    open: &Opener,
    cache_bytes: usize,
) -> Result<Database, StoreError> {
    open_over(path, || {
        let view = ReadOnlyView::new(open()?)
            .map_err(|e| DatabaseError::Storage(redb::StorageError::Io(e)))?;
        Builder::new()
            .set_cache_size(cache_bytes)
            .create_with_backend(view)
    })
}

fn open_over(
    path: &Path,
    open: impl FnOnce() -> Result<Database, DatabaseError>,
) -> Result<Database, StoreError> {
    let dir = path.parent().unwrap_or(path).to_path_buf();
    match quietly(open) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(DatabaseError::DatabaseAlreadyOpen)) => Err(StoreError::InUse(dir)),
        Ok(Err(DatabaseError::Storage(redb::StorageError::Corrupted(m)))) => {
            Err(StoreError::Damaged {
                path: path.to_path_buf(),
                message: m,
            })
        }
        Ok(Err(DatabaseError::Storage(e @ redb::StorageError::Io(_)))) => {
            Err(StoreError::from_storage(e))
        }
        Ok(Err(other)) => Err(StoreError::Open {
            path: path.to_path_buf(),
            message: other.to_string(),
        }),
        Err(panic) => Err(StoreError::Damaged {
            path: path.to_path_buf(),
            message: panic_message(&panic),
        }),
    }
}

/// Runs `f`, catching a panic without the panic hook's report on stderr: the caller turns it into
/// an error that says what to do, which is all a user should see. The hook is process-wide, so
/// swapping it is serialized.
fn quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    static HOOK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = HOOK.lock().unwrap_or_else(|e| e.into_inner());
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the storage engine failed while reading it".into())
}

impl EmbeddedStore {
    /// Opens the store in `data_dir` on its own (no server may hold it), asks redb to verify its
    /// checksums, then reads every row of every table and decodes it. Errors only when the file
    /// cannot be opened at all; what it finds inside is in the report.
    pub fn check(data_dir: &Path) -> Result<StoreCheck, StoreError> {
        let path = data_dir.join("cairn.redb");
        if !path.exists() {
            return Err(StoreError::Open {
                path,
                message: "no store file here (is this the data directory?)".into(),
            });
        }
        let mut db = open_database(&path, super::DEFAULT_CACHE_BYTES)?;
        let mut report = StoreCheck::default();
        match quietly(|| db.check_integrity()) {
            Ok(Ok(ok)) => report.integrity_ok = ok,
            Ok(Err(e)) => report.problems.push(format!("integrity check: {e}")),
            Err(p) => report
                .problems
                .push(format!("integrity check: {}", panic_message(&p))),
        }
        let read = quietly(|| read_all(&db, &mut report));
        match read {
            Ok(Ok(())) => {}
            Ok(Err(e)) => report.problems.push(e.to_string()),
            Err(p) => report
                .problems
                .push(format!("reading the tables stopped: {}", panic_message(&p))),
        }
        Ok(report)
    }
}

fn read_all(db: &Database, report: &mut StoreCheck) -> Result<(), StoreError> {
    let txn = db.begin_read()?;
    let note = |problems: &mut Vec<String>, m: String| {
        if problems.len() < LISTED {
            problems.push(m);
        }
    };
    for (name, def) in [("items", ITEMS), ("users", USERS)] {
        let t = txn.open_table(def)?;
        let (mut rows, mut bad) = (0, 0);
        for entry in t.iter()? {
            rows += 1;
            match entry {
                Ok((key, bytes)) => {
                    if serde_json::from_slice::<serde_json::Value>(bytes.value()).is_err() {
                        bad += 1;
                        let m = format!("{}: row `{}` does not decode", name, key.value());
                        note(&mut report.problems, m);
                    }
                }
                Err(e) => {
                    bad += 1;
                    note(&mut report.problems, format!("{}: {e}", name));
                }
            }
        }
        report.tables.push((name, rows, bad));
    }
    let t = txn.open_table(EVENTS)?;
    let (mut rows, mut bad) = (0, 0);
    for entry in t.iter()? {
        rows += 1;
        let problem = match entry {
            Ok((seq, bytes)) => EventRecord::decode(bytes.value())
                .err()
                .map(|e| format!("events: event {}: {e}", seq.value())),
            Err(e) => Some(format!("events: {e}")),
        };
        if let Some(m) = problem {
            bad += 1;
            note(&mut report.problems, m);
        }
    }
    report.tables.push(("events", rows, bad));
    let counted = |report: &mut StoreCheck, name: &'static str, len: Result<u64, _>| match len {
        Ok(n) => report.tables.push((name, n, 0)),
        Err(e) => report.problems.push(format!("{name}: {e}")),
    };
    counted(report, "user_events", txn.open_table(USER_EVENTS)?.len());
    counted(report, "user_items", txn.open_table(USER_ITEMS)?.len());
    counted(report, "event_ids", txn.open_table(EVENT_IDS)?.len());
    counted(report, "meta", txn.open_table(META)?.len());
    counted(report, "keys", txn.open_table(KEYS)?.len());
    counted(report, "audit", txn.open_table(AUDIT)?.len());
    Ok(())
}

/// What [`EmbeddedStore::repair`] copied into the new file, and what it could not read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repair {
    pub items: u64,
    pub users: u64,
    pub events: u64,
    /// Rows that could not be read or decoded, and were left behind.
    pub lost: u64,
    /// Where the damaged file was kept.
    pub damaged_copy: std::path::PathBuf,
}

impl EmbeddedStore {
    /// Copies every row that can still be read into a new store file, rebuilds the indexes from
    /// the events (the by-user index, the event ids), keeps the damaged file beside it as
    /// `cairn.redb.damaged-<unix seconds>`, and puts the new file in its place. The log positions
    /// are kept, so models and cursors that name them stay valid. A file redb cannot open at all
    /// (a truncated header) has nothing to copy: restore a backup.
    pub fn repair(data_dir: &Path, now: i64) -> Result<Repair, StoreError> {
        let path = data_dir.join("cairn.redb");
        let fresh_path = data_dir.join("cairn.redb.repairing");
        let _ = std::fs::remove_file(&fresh_path);
        let old = open_database(&path, super::DEFAULT_CACHE_BYTES)?;
        let mut report = Repair {
            damaged_copy: data_dir.join(format!("cairn.redb.damaged-{now}")),
            ..Repair::default()
        };
        {
            let fresh = open_database(&fresh_path, super::DEFAULT_CACHE_BYTES)?;
            let copied = quietly(|| copy_readable(&old, &fresh, &mut report));
            match copied {
                Ok(result) => result?,
                Err(p) => {
                    return Err(StoreError::Damaged {
                        path: path.clone(),
                        message: format!("copying stopped: {}", panic_message(&p)),
                    })
                }
            }
        }
        drop(old);
        let io = |e: std::io::Error| StoreError::Open {
            path: path.clone(),
            message: e.to_string(),
        };
        std::fs::rename(&path, &report.damaged_copy).map_err(io)?;
        std::fs::rename(&fresh_path, &path).map_err(io)?;
        std::fs::File::open(data_dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        // The new file opens like any store (tables created, nothing missing).
        EmbeddedStore::open(data_dir)?;
        Ok(report)
    }
}

/// Copies the catalog rows, keys, audit log and event log row by row, skipping what cannot be
/// read, and rebuilds the by-user index and the event ids, all in one transaction on `fresh`. The
/// seen-items table is left empty with no mark of completeness, so opening the new file rebuilds
/// it from the log.
fn copy_readable(old: &Database, fresh: &Database, report: &mut Repair) -> Result<(), StoreError> {
    let from = old.begin_read()?;
    let txn = fresh.begin_write()?;
    {
        for (def, count) in [(ITEMS, &mut report.items), (USERS, &mut report.users)] {
            let mut to = txn.open_table(def)?;
            let Ok(table) = from.open_table(def) else {
                report.lost += 1;
                continue;
            };
            for entry in table.iter()? {
                match entry {
                    Ok((key, bytes))
                        if serde_json::from_slice::<serde_json::Value>(bytes.value()).is_ok() =>
                    {
                        to.insert(key.value(), bytes.value())?;
                        *count += 1;
                    }
                    _ => report.lost += 1,
                }
            }
        }
        // Keys and the audit log, row by row as they read.
        if let Ok(table) = from.open_table(KEYS) {
            let mut to = txn.open_table(KEYS)?;
            for entry in table.iter()? {
                match entry {
                    Ok((k, v)) => {
                        to.insert(k.value(), v.value())?;
                    }
                    Err(_) => report.lost += 1,
                }
            }
        }
        if let Ok(table) = from.open_table(AUDIT) {
            let mut to = txn.open_table(AUDIT)?;
            for entry in table.iter()? {
                match entry {
                    Ok((k, v)) => {
                        to.insert(k.value(), v.value())?;
                    }
                    Err(_) => report.lost += 1,
                }
            }
        }
        let mut events = txn.open_table(EVENTS)?;
        let mut index = txn.open_table(USER_EVENTS)?;
        let mut ids = txn.open_table(EVENT_IDS)?;
        let mut last_seq = 0;
        if let Ok(table) = from.open_table(EVENTS) {
            for entry in table.iter()? {
                let Ok((seq, bytes)) = entry else {
                    report.lost += 1;
                    continue;
                };
                let seq = seq.value();
                let Ok(record) = EventRecord::decode(bytes.value()) else {
                    report.lost += 1;
                    continue;
                };
                events.insert(seq, bytes.value())?;
                index.insert((record.user.as_str(), seq), ())?;
                if let Some(id) = record.event_id.as_deref() {
                    ids.insert(id, seq)?;
                }
                last_seq = last_seq.max(seq);
                report.events += 1;
            }
        }
        // The old counter when it reads, so that no log position is handed out twice.
        let old_last = from
            .open_table(META)
            .ok()
            .and_then(|m| m.get(LAST_SEQ).ok().flatten().map(|v| v.value()));
        let mut meta = txn.open_table(META)?;
        meta.insert(LAST_SEQ, old_last.unwrap_or(0).max(last_seq))?;
    }
    txn.commit()?;
    Ok(())
}
