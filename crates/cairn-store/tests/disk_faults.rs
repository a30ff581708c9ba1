//! A disk that refuses writes (full, or failing), through a store file whose writes go through a
//! `FaultInjector`: writes fail with a typed error and store nothing, reads go on, and once the
//! disk takes writes again every acknowledged write is there and new ones are taken.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use cairn_core::{Event, Item, Timestamp};
use cairn_store::{EmbeddedStore, Fault, FaultInjector, IoKind, Store};

/// Events with ids `b<batch>-<i>`, for users u0..u9 and items i0..i19.
fn batch(n: usize, size: usize) -> Vec<Event> {
    (0..size)
        .map(|i| {
            let mut e = Event::new(format!("u{}", i % 10), format!("i{}", (i + n) % 20), "view")
                .at(1_000 + i as i64);
            e.event_id = Some(format!("b{n}-{i}"));
            e
        })
        .collect()
}

fn stored_ids(store: &dyn Store) -> Vec<String> {
    let mut ids = Vec::new();
    store
        .scan_events(0, &mut |e| {
            ids.push(e.event_id.unwrap_or_default());
            true
        })
        .unwrap();
    ids
}

fn acknowledged(batches: &[usize], size: usize) -> Vec<String> {
    batches
        .iter()
        .flat_map(|&n| (0..size).map(move |i| format!("b{n}-{i}")))
        .collect()
}

#[test]
fn a_full_disk_refuses_writes_keeps_reads_and_takes_writes_again_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let store = EmbeddedStore::open_with_faults(dir.path(), &faults).unwrap();
    store
        .put_items(
            &(0..20)
                .map(|i| Item::new(format!("i{i}")))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    for n in 0..5 {
        store.append_events(&batch(n, 50), Timestamp(1)).unwrap();
    }
    assert!(store.write_failure().is_none());

    faults.fail(Fault::NoSpace);
    // A batch big enough to need new pages, so its commit must write.
    let refused = store
        .append_events(&batch(5, 500), Timestamp(1))
        .unwrap_err();
    assert_eq!(refused.io_kind(), Some(IoKind::NoSpace), "{refused}");
    assert!(refused.to_string().contains("full"), "{refused}");
    let failure = store.write_failure().expect("writes are refused");
    assert_eq!(failure.kind, IoKind::NoSpace);
    assert!(faults.refused() > 0);

    // Reads go on, and see exactly the acknowledged writes.
    assert_eq!(store.stats().unwrap().events, 250);
    assert_eq!(stored_ids(&store), acknowledged(&[0, 1, 2, 3, 4], 50));
    assert_eq!(store.user_events("u3", 5).unwrap().len(), 5);
    assert_eq!(store.list_items(None, 100).unwrap().len(), 20);
    assert!(store.get_item("i7").unwrap().is_some());
    assert!(!store.user_items("u1").unwrap().is_empty());

    // Every kind of write is refused with the same error, without touching the disk.
    let touched = faults.refused();
    for err in [
        store.put_items(&[Item::new("new")]).unwrap_err(),
        store.delete_item("i1").unwrap_err(),
        store.delete_user("u1").unwrap_err(),
        store.append_events(&batch(6, 1), Timestamp(1)).unwrap_err(),
    ] {
        assert_eq!(err.io_kind(), Some(IoKind::NoSpace), "{err}");
    }
    assert_eq!(faults.refused(), touched);
    assert!(store.get_item("i1").unwrap().is_some());

    // Trying again while the disk is still full changes nothing.
    assert_eq!(store.retry_writes().map(|f| f.kind), Some(IoKind::NoSpace));
    assert_eq!(store.stats().unwrap().events, 250);

    faults.heal();
    assert!(
        store.retry_writes().is_none(),
        "the disk takes writes again"
    );
    let again = store.append_events(&batch(5, 500), Timestamp(1)).unwrap();
    assert_eq!(
        (again.stored.len(), again.duplicates),
        (500, 0),
        "nothing of the refused batch was stored"
    );
    store.append_events(&batch(7, 50), Timestamp(1)).unwrap();
    let want = acknowledged(&[0, 1, 2, 3, 4], 50)
        .into_iter()
        .chain(acknowledged(&[5], 500))
        .chain(acknowledged(&[7], 50))
        .collect::<Vec<_>>();
    assert_eq!(stored_ids(&store), want);
    assert_eq!(store.stats().unwrap().last_seq, 800);

    // And it is on disk: a plain open after a stop sees the same log.
    drop(store);
    let reopened = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(stored_ids(&reopened), want);
    assert_eq!(reopened.stats().unwrap().last_seq, 800);
}

#[test]
fn an_io_error_is_told_apart_and_a_failed_batch_is_stored_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let store = EmbeddedStore::open_with_faults(dir.path(), &faults).unwrap();
    store.append_events(&batch(0, 100), Timestamp(1)).unwrap();
    faults.fail(Fault::Io);
    let err = store
        .append_events(&batch(1, 2_000), Timestamp(1))
        .unwrap_err();
    assert_eq!(err.io_kind(), Some(IoKind::Failed), "{err}");
    assert_eq!(store.write_failure().map(|f| f.kind), Some(IoKind::Failed));
    assert_eq!(stored_ids(&store), acknowledged(&[0], 100));
    faults.heal();
    assert!(store.retry_writes().is_none());
    let out = store.append_events(&batch(1, 2_000), Timestamp(1)).unwrap();
    assert_eq!((out.stored.len(), out.duplicates), (2_000, 0));
    assert_eq!(store.stats().unwrap().events, 2_100);
}

#[test]
fn a_disk_that_refuses_writes_at_start_still_serves_what_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.append_events(&batch(0, 30), Timestamp(1)).unwrap();
    }
    let faults = FaultInjector::new();
    faults.fail(Fault::NoSpace);
    let store = EmbeddedStore::open_with_faults(dir.path(), &faults).unwrap();
    assert_eq!(store.write_failure().map(|f| f.kind), Some(IoKind::NoSpace));
    assert_eq!(stored_ids(&store), acknowledged(&[0], 30));
    let err = store.put_items(&[Item::new("x")]).unwrap_err();
    assert_eq!(err.io_kind(), Some(IoKind::NoSpace));
    faults.heal();
    assert!(store.retry_writes().is_none());
    store.put_items(&[Item::new("x")]).unwrap();
    assert!(store.get_item("x").unwrap().is_some());
}

#[test]
fn readers_never_see_an_error_while_writes_fail_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let store = Arc::new(EmbeddedStore::open_with_faults(dir.path(), &faults).unwrap());
    store.append_events(&batch(0, 200), Timestamp(1)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let (store, stop, reads) = (store.clone(), stop.clone(), reads.clone());
            std::thread::spawn(move || {
                let mut errors = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let user = format!("u{r}");
                    match (store.stats(), store.user_events(&user, 10)) {
                        (Ok(s), Ok(h)) => {
                            assert!(s.events >= 200);
                            assert_eq!(h.len(), 10);
                        }
                        (a, b) => errors.push(format!("{:?} {:?}", a.err(), b.err())),
                    }
                    reads.fetch_add(1, Ordering::SeqCst);
                }
                errors
            })
        })
        .collect();
    let mut acknowledged_batches = vec![0];
    for round in 1..=6 {
        faults.fail(if round % 2 == 0 {
            Fault::Io
        } else {
            Fault::NoSpace
        });
        assert!(store
            .append_events(&batch(100 + round, 300), Timestamp(1))
            .is_err());
        faults.heal();
        assert!(store.retry_writes().is_none());
        store
            .append_events(&batch(round, 50), Timestamp(1))
            .unwrap();
        acknowledged_batches.push(round);
    }
    stop.store(true, Ordering::SeqCst);
    for reader in readers {
        let errors = reader.join().unwrap();
        assert!(errors.is_empty(), "reads failed: {errors:?}");
    }
    assert!(reads.load(Ordering::SeqCst) > 0);
    let mut want = acknowledged(&[0], 200);
    want.extend(acknowledged(&acknowledged_batches[1..], 50));
    assert_eq!(stored_ids(store.as_ref()), want);
}
