//! The embedded backend: one redb file in the data directory. redb commits are copy-on-write with an
//! fsync before `commit` returns, which gives both atomic batches and durability across `kill -9`.

use std::collections::HashSet;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use cairn_core::{Event, Item, StoredEvent, Timestamp, User};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle};

mod backup;
mod check;

pub use check::{Repair, StoreCheck};

use crate::record::{decode_json, encode_json, EventRecord};
use crate::{
    AppendOutcome, AuditRecord, BackupReport, DeletedUser, KeyRecord, Store, StoreError, StoreStats,
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

pub struct EmbeddedStore {
    db: Database,
    path: PathBuf,
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
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Open {
            path: data_dir.to_path_buf(),
            message: e.to_string(),
        })?;
        let path = data_dir.join("cairn.redb");
        let db = check::open_database(&path, cache_bytes)?;
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
        Ok(EmbeddedStore { db, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
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
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(table)?;
            for row in rows {
                t.insert(id(row), encode_json(row).as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn get_row<T: serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(table)?;
        match t.get(id)? {
            Some(bytes) => Ok(Some(decode_json(table.name(), bytes.value())?)),
            None => Ok(None),
        }
    }

    fn list_rows<T: serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        let txn = self.db.begin_read()?;
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
    }
}

impl Store for EmbeddedStore {
    fn put_items(&self, items: &[Item]) -> Result<(), StoreError> {
        self.put_rows(ITEMS, items, |i| &i.id)
    }

    fn get_item(&self, id: &str) -> Result<Option<Item>, StoreError> {
        self.get_row(ITEMS, id)
    }

    fn delete_item(&self, id: &str) -> Result<bool, StoreError> {
        let txn = self.db.begin_write()?;
        let existed = txn.open_table(ITEMS)?.remove(id)?.is_some();
        txn.commit()?;
        Ok(existed)
    }

    fn list_items(&self, after: Option<&str>, limit: usize) -> Result<Vec<Item>, StoreError> {
        self.list_rows(ITEMS, after, limit)
    }

    fn scan_items(&self, visit: &mut dyn FnMut(Item)) -> Result<(), StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(ITEMS)?;
        for entry in t.iter()? {
            let (_, bytes) = entry?;
            visit(decode_json("items", bytes.value())?);
        }
        Ok(())
    }

    fn put_users(&self, users: &[User]) -> Result<(), StoreError> {
        self.put_rows(USERS, users, |u| &u.id)
    }

    fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.get_row(USERS, id)
    }

    fn delete_user(&self, id: &str) -> Result<DeletedUser, StoreError> {
        let txn = self.db.begin_write()?;
        let mut removed = 0;
        let user_existed;
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
        }
        txn.commit()?;
        Ok(DeletedUser {
            user_existed,
            events_removed: removed,
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
        let txn = self.db.begin_write()?;
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
        let txn = self.db.begin_read()?;
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
            let bytes = events
                .get(seq)?
                .ok_or_else(|| StoreError::Corrupt(format!("index names missing event {seq}")))?;
            out.push(EventRecord::decode(bytes.value())?.into_stored(seq)?);
        }
        Ok(out)
    }

    fn user_items(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let txn = self.db.begin_read()?;
        user_item_range(&txn.open_table(USER_ITEMS)?, user_id)
    }

    fn scan_events(
        &self,
        after_seq: u64,
        visit: &mut dyn FnMut(StoredEvent) -> bool,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_read()?;
        let events = txn.open_table(EVENTS)?;
        for entry in events.range((Bound::Excluded(after_seq), Bound::Unbounded))? {
            let (seq, bytes) = entry?;
            let seq = seq.value();
            if !visit(EventRecord::decode(bytes.value())?.into_stored(seq)?) {
                break;
            }
        }
        Ok(())
    }

    fn backup(&self, dest_dir: &Path) -> Result<BackupReport, StoreError> {
        self.backup_into(dest_dir)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        let txn = self.db.begin_read()?;
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
    }

    // ----- access: API keys and the audit log -----

    fn put_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        self.put_rows(KEYS, std::slice::from_ref(key), |k| &k.id)
    }

    fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.list_rows(KEYS, None, usize::MAX)
    }

    fn delete_key(&self, id: &str) -> Result<bool, StoreError> {
        let txn = self.db.begin_write()?;
        let existed = txn.open_table(KEYS)?.remove(id)?.is_some();
        txn.commit()?;
        Ok(existed)
    }

    fn append_audit(&self, record: &AuditRecord) -> Result<u64, StoreError> {
        let txn = self.db.begin_write()?;
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
    }

    fn list_audit(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let txn = self.db.begin_read()?;
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
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, EmbeddedStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path()).unwrap();
        (dir, s)
    }

    #[test]
    fn items_round_trip_and_paginate() {
        let (_d, s) = store();
        let mut a = Item::new("a");
        a.categories = vec!["jazz".into()];
        s.put_items(&[a.clone(), Item::new("b"), Item::new("c")])
            .unwrap();
        assert_eq!(s.get_item("a").unwrap(), Some(a));
        let page1 = s.list_items(None, 2).unwrap();
        assert_eq!(
            page1.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let page2 = s.list_items(Some("b"), 2).unwrap();
        assert_eq!(
            page2.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            ["c"]
        );
        assert!(s.delete_item("a").unwrap());
        assert!(!s.delete_item("a").unwrap());
        assert_eq!(s.get_item("a").unwrap(), None);
    }

    #[test]
    fn events_are_idempotent_by_event_id() {
        let (_d, s) = store();
        let mut e = Event::new("u", "a", "view").at(100);
        e.event_id = Some("e1".into());
        let out = s
            .append_events(&[e.clone(), e.clone()], Timestamp(5))
            .unwrap();
        assert_eq!(out.stored.len(), 1);
        assert_eq!(out.duplicates, 1);
        let out = s.append_events(&[e], Timestamp(5)).unwrap();
        assert_eq!(out.stored.len(), 0);
        assert_eq!(s.stats().unwrap().events, 1);
    }

    #[test]
    fn user_history_is_recent_last_and_deletion_erases_it() {
        let (_d, s) = store();
        let events: Vec<Event> = (0..5)
            .map(|i| Event::new("u", format!("i{i}"), "view").at(100 + i))
            .chain([Event::new("v", "x", "click")])
            .collect();
        s.append_events(&events, Timestamp(7)).unwrap();
        let h = s.user_events("u", 3).unwrap();
        assert_eq!(
            h.iter().map(|e| e.item_id.as_str()).collect::<Vec<_>>(),
            ["i2", "i3", "i4"]
        );
        assert_eq!(s.user_events("v", 10).unwrap()[0].timestamp, Timestamp(7));
        s.put_users(&[User::new("u")]).unwrap();
        let d = s.delete_user("u").unwrap();
        assert_eq!(
            d,
            DeletedUser {
                user_existed: true,
                events_removed: 5
            }
        );
        assert!(s.user_events("u", 10).unwrap().is_empty());
        let mut left = Vec::new();
        s.scan_events(0, &mut |e| {
            left.push(e.user_id);
            true
        })
        .unwrap();
        assert_eq!(left, ["v"]);
    }

    #[test]
    fn user_items_cover_the_whole_history_and_erasure_clears_them() {
        let (_d, s) = store();
        // More events than any history limit would read, with repeats.
        let events: Vec<Event> = (0..50)
            .map(|i| Event::new("u", format!("i{:02}", i % 20), "view").at(i))
            .chain([
                Event::new("v", "x", "click"),
                Event::new("uu", "y", "click"),
            ])
            .collect();
        s.append_events(&events, Timestamp(7)).unwrap();
        let want: Vec<String> = (0..20).map(|i| format!("i{i:02}")).collect();
        assert_eq!(s.user_items("u").unwrap(), want);
        // A user id that prefixes another's sees only its own pairs.
        assert_eq!(s.user_items("uu").unwrap(), ["y"]);
        assert!(s.user_items("nobody").unwrap().is_empty());
        s.delete_user("u").unwrap();
        assert!(s.user_items("u").unwrap().is_empty());
        assert_eq!(s.user_items("v").unwrap(), ["x"]);
        assert_eq!(s.user_items("uu").unwrap(), ["y"]);
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
            let txn = s.db.begin_write().unwrap();
            txn.delete_table(USER_ITEMS).unwrap();
            txn.open_table(META)
                .unwrap()
                .remove(USER_ITEMS_SEQ)
                .unwrap();
            txn.commit().unwrap();
        }
        let s = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(s.user_items("u").unwrap(), ["a", "b"]);
        assert_eq!(s.user_items("v").unwrap(), ["a"]);
        // An older version appended an event without the table: caught up on the next open.
        let txn = s.db.begin_write().unwrap();
        {
            let record = EventRecord::from_event(&Event::new("w", "d", "view"), Timestamp(1));
            txn.open_table(EVENTS)
                .unwrap()
                .insert(4, record.encode().as_slice())
                .unwrap();
            txn.open_table(META).unwrap().insert(LAST_SEQ, 4).unwrap();
        }
        txn.commit().unwrap();
        drop(s);
        let s = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(s.user_items("w").unwrap(), ["d"]);
        s.append_events(&[Event::new("v", "c", "view")], Timestamp(2))
            .unwrap();
        assert_eq!(s.user_items("v").unwrap(), ["a", "c"]);
        assert_eq!(s.stats().unwrap().last_seq, 5);
    }

    #[test]
    fn user_events_page_back_from_the_newest_each_once() {
        let (_d, s) = store();
        let events: Vec<Event> = (0..7)
            .map(|i| Event::new("u", format!("i{i}"), "view").at(i))
            .chain([Event::new("v", "x", "click")])
            .collect();
        s.append_events(&events, Timestamp(7)).unwrap();
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = s.user_events_before("u", before, 3).unwrap();
            seen.extend(page.iter().map(|e| e.item_id.clone()));
            match page.last() {
                Some(e) if page.len() == 3 => before = Some(e.seq),
                _ => break,
            }
        }
        assert_eq!(seen, ["i6", "i5", "i4", "i3", "i2", "i1", "i0"]);
        assert!(s.user_events_before("u", Some(0), 3).unwrap().is_empty());
        assert!(s.user_events_before("u", Some(1), 3).unwrap().is_empty());
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
