//! A backup is one consistent moment of the store, taken while writes go on, and opens as a store.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cairn_core::{Event, Item, Timestamp};
use cairn_store::{EmbeddedStore, Store};

#[test]
fn a_backup_taken_during_writes_is_a_consistent_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let items: Vec<Item> = (0..10).map(|i| Item::new(format!("i{i}"))).collect();
    store.put_items(&items).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut batches = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Batches of 5 with ids: a consistent copy never holds part of one.
                let events: Vec<Event> = (0..5)
                    .map(|k| {
                        let mut e = Event::new(format!("u{batches}"), format!("i{k}"), "view");
                        e.event_id = Some(format!("b{batches}-{k}"));
                        e
                    })
                    .collect();
                store
                    .append_events(&events, Timestamp(1_700_000_000))
                    .unwrap();
                batches += 1;
            }
            batches
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    let backups = tempfile::tempdir().unwrap();
    let report = store.backup(backups.path()).unwrap();
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();

    assert!(
        report.events > 0 && report.events.is_multiple_of(5),
        "{report:?}"
    );
    assert_eq!(report.last_seq, report.events);
    assert!(written * 5 >= report.events);
    let copy = EmbeddedStore::open(backups.path()).unwrap();
    let stats = copy.stats().unwrap();
    assert_eq!(
        (stats.items, stats.events, stats.last_seq),
        (10, report.events, report.last_seq)
    );
    // The indexes came along: histories and event-id idempotency work in the copy.
    assert_eq!(copy.user_events("u0", 100).unwrap().len(), 5);
    let mut again = Event::new("u0", "i0", "view");
    again.event_id = Some("b0-0".into());
    assert_eq!(
        copy.append_events(&[again], Timestamp(1))
            .unwrap()
            .duplicates,
        1
    );
    drop(copy);
    assert!(EmbeddedStore::check(backups.path()).unwrap().is_healthy());

    // A second backup into the same folder is refused rather than mixed in.
    assert!(store.backup(backups.path()).is_err());
}

#[test]
fn a_backup_keeps_the_seen_items_of_whole_histories() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let events: Vec<Event> = (0..30)
        .map(|k| Event::new("heavy", format!("i{k}"), "view"))
        .collect();
    store
        .append_events(&events, Timestamp(1_700_000_000))
        .unwrap();
    let backups = tempfile::tempdir().unwrap();
    store.backup(backups.path()).unwrap();
    drop(store);
    let copy = EmbeddedStore::open(backups.path()).unwrap();
    assert_eq!(copy.user_items("heavy").unwrap().len(), 30);
}
