//! A damaged store file is refused with an error that says what to do, never a panic, and
//! `EmbeddedStore::check` reads back everything it can and says where the damage is.

use cairn_core::{Event, Item, Timestamp};
use cairn_store::{EmbeddedStore, Store, StoreError};

fn filled(dir: &std::path::Path) -> std::path::PathBuf {
    let store = EmbeddedStore::open(dir).unwrap();
    let items: Vec<Item> = (0..200).map(|i| Item::new(format!("item-{i}"))).collect();
    store.put_items(&items).unwrap();
    for batch in 0..20 {
        let events: Vec<Event> = (0..200)
            .map(|i| {
                Event::new(
                    format!("u{i}"),
                    format!("item-{}", (i + batch) % 200),
                    "view",
                )
            })
            .collect();
        store
            .append_events(&events, Timestamp(1_700_000_000))
            .unwrap();
    }
    store.path().to_path_buf()
}

/// Flips 20 bytes spread over the file's second half, where the rows are.
fn flip_20_bytes(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let n = bytes.len();
    for k in 0..20 {
        bytes[n / 2 + k * (n / 2 - 1) / 20] ^= 0x5a;
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_healthy_store_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path());
    let report = EmbeddedStore::check(dir.path()).unwrap();
    assert!(report.is_healthy(), "{report:?}");
    let events = report.tables.iter().find(|t| t.0 == "events").unwrap();
    assert_eq!((events.1, events.2), (4000, 0));
    let items = report.tables.iter().find(|t| t.0 == "items").unwrap();
    assert_eq!(items.1, 200);
}

#[test]
fn a_truncated_store_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path());
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 4096).unwrap();
    drop(f);
    for result in [
        EmbeddedStore::open(dir.path()).map(|_| ()),
        EmbeddedStore::check(dir.path()).map(|_| ()),
    ] {
        match result {
            Err(e @ StoreError::Damaged { .. }) => {
                assert!(e.to_string().contains("cairn check"), "{e}")
            }
            other => panic!("expected a damaged-store error, got {other:?}"),
        }
    }
}

#[test]
fn flipped_bytes_are_found_by_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path());
    flip_20_bytes(&path);
    match EmbeddedStore::check(dir.path()) {
        Ok(report) => assert!(!report.is_healthy(), "{report:?}"),
        Err(e) => assert!(matches!(e, StoreError::Damaged { .. }), "{e:?}"),
    }
    // Opening either works (redb recovers from its other commit slot, as here) or says the file
    // is damaged.
    match EmbeddedStore::open(dir.path()) {
        Ok(store) => assert_eq!(store.stats().unwrap().events, 4000),
        Err(e) => assert!(matches!(e, StoreError::Damaged { .. }), "{e:?}"),
    }
}

#[test]
fn repair_copies_what_reads_into_a_new_file_and_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path());
    flip_20_bytes(&path);

    let repair = EmbeddedStore::repair(dir.path(), 1_700_000_000).unwrap();
    assert!(repair.damaged_copy.exists());
    // This damage hits redb's bookkeeping, not the rows: everything is copied.
    assert_eq!((repair.items, repair.events, repair.lost), (200, 4000, 0));
    let report = EmbeddedStore::check(dir.path()).unwrap();
    assert!(report.is_healthy(), "{report:?}");
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!(stats.items, repair.items);
    assert_eq!(stats.events, repair.events);
    // Every event the repair kept is in its user's history, and new events follow the old log.
    let history = store.user_events("u7", 1000).unwrap();
    assert!(!history.is_empty());
    // The seen items were rebuilt from the log when the new file opened.
    assert_eq!(store.user_items("u7").unwrap().len(), 20);
    let next = store
        .append_events(
            &[Event::new("u7", "item-1", "view")],
            Timestamp(1_700_000_100),
        )
        .unwrap();
    assert!(next.stored[0] > 4000, "{next:?}");
}
