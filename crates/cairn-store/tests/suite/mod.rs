//! The store test suite: what every backend of the `Store` trait must do, written once against
//! `&dyn Store`. `store_suite!(fresh)` turns every test here into a `#[test]` that gets a new,
//! empty store from `fresh(test_name)`; `fresh` returns `None` when its backend is not reachable
//! (it prints why), and the test then passes without running. The embedded backend runs it in
//! `tests/store_suite.rs`; the PostgreSQL backend includes this file from its own crate
//! (`crates/cairn-store-postgres/tests/store_suite.rs`), so both run the same assertions.
#![allow(dead_code)]

use std::collections::BTreeMap;

use cairn_core::{Event, Item, PropertyValue, StoredEvent, Timestamp, User};
use cairn_store::{
    copy_store, AuditRecord, DeletedUser, ExpiredEvents, KeyRecord, Store, ERASED_MARKER,
};

/// A store for one test, with whatever keeps it alive (a temporary folder, a schema to drop).
pub struct Fresh {
    pub store: Box<dyn Store>,
    pub guard: Box<dyn std::any::Any>,
}

/// Every test of the suite, as `#[test]` functions over the store that `$fresh(name)` makes.
/// Tests that need two stores (a copy between them) get both from `$fresh`.
#[allow(unused_macros)]
macro_rules! store_suite {
    ($fresh:path) => {
        store_suite!(@one $fresh;
            items_round_trip_paginate_and_order_as_bytes,
            users_round_trip_and_paginate,
            events_are_idempotent_by_event_id,
            every_field_of_an_event_survives,
            user_history_is_recent_last_and_deletion_erases_it,
            user_items_cover_the_whole_history_and_erasure_clears_them,
            erasure_replaces_the_id_in_the_audit_log_and_keeps_the_entries,
            user_events_page_back_from_the_newest_each_once,
            keys_and_audit_round_trip,
            key_records_keep_their_optional_fields,
            old_events_go_with_their_ids_and_the_pairs_they_alone_supported,
            scans_page_through_more_rows_than_one_fetch_in_order,
            a_scan_stops_when_the_visitor_says_so,
            stats_keep_the_last_position_after_deletions,
            concurrent_batches_get_distinct_contiguous_positions,
            imports_keep_positions_and_refuse_going_back,
        );
        store_suite!(@two $fresh; copy_moves_everything_with_positions_and_ids);
    };
    (@one $fresh:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if let Some(fresh) = $fresh(stringify!($name)) {
                    suite::$name(&*fresh.store);
                }
            }
        )*
    };
    (@two $fresh:path; $name:ident) => {
        #[test]
        fn $name() {
            let a = $fresh(concat!(stringify!($name), "_from"));
            let b = $fresh(concat!(stringify!($name), "_to"));
            if let (Some(a), Some(b)) = (a, b) {
                suite::$name(&*a.store, &*b.store);
            }
        }
    };
}

fn ids<T>(rows: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    rows.iter().map(|r| id(r).to_string()).collect()
}

fn audit(action: &str, target: Option<&str>) -> AuditRecord {
    AuditRecord {
        seq: 0,
        at: 1,
        key_id: "key_a".into(),
        key_name: "ops".into(),
        action: action.into(),
        target: target.map(str::to_string),
        status: 200,
    }
}

fn with_id(mut e: Event, id: &str) -> Event {
    e.event_id = Some(id.into());
    e
}

fn all_events(s: &dyn Store) -> Vec<StoredEvent> {
    let mut out = Vec::new();
    s.scan_events(0, &mut |e| {
        out.push(e);
        true
    })
    .unwrap();
    out
}

pub fn items_round_trip_paginate_and_order_as_bytes(s: &dyn Store) {
    let mut a = Item::new("a");
    a.categories = vec!["jazz".into()];
    a.properties
        .insert("note".into(), PropertyValue::String("x\u{0}y".into()));
    // The last row of an id in a batch wins.
    let mut c_old = Item::new("c");
    c_old.categories = vec!["old".into()];
    s.put_items(&[c_old, a.clone(), Item::new("b"), Item::new("c")])
        .unwrap();
    assert_eq!(s.get_item("a").unwrap(), Some(a));
    assert_eq!(s.get_item("c").unwrap(), Some(Item::new("c")));
    let page1 = s.list_items(None, 2).unwrap();
    assert_eq!(ids(&page1, |i| &i.id), ["a", "b"]);
    let page2 = s.list_items(Some("b"), 2).unwrap();
    assert_eq!(ids(&page2, |i| &i.id), ["c"]);
    assert!(s.delete_item("a").unwrap());
    assert!(!s.delete_item("a").unwrap());
    assert_eq!(s.get_item("a").unwrap(), None);
    // Ids order as bytes on every backend (upper case before lower, then non-ASCII).
    s.put_items(&[Item::new("é"), Item::new("Z"), Item::new("aa")])
        .unwrap();
    let all = s.list_items(None, usize::MAX).unwrap();
    assert_eq!(ids(&all, |i| &i.id), ["Z", "aa", "b", "c", "é"]);
    let mut scanned = Vec::new();
    s.scan_items(&mut |i| scanned.push(i.id)).unwrap();
    assert_eq!(scanned, ["Z", "aa", "b", "c", "é"]);
}

pub fn users_round_trip_and_paginate(s: &dyn Store) {
    let mut u = User::new("u1");
    u.properties
        .insert("age".into(), PropertyValue::Number(31.0));
    s.put_users(&[u.clone(), User::new("u2"), User::new("u3")])
        .unwrap();
    assert_eq!(s.get_user("u1").unwrap(), Some(u));
    assert_eq!(s.get_user("nobody").unwrap(), None);
    assert_eq!(
        ids(&s.list_users(None, 2).unwrap(), |u| &u.id),
        ["u1", "u2"]
    );
    assert_eq!(
        ids(&s.list_users(Some("u2"), 5).unwrap(), |u| &u.id),
        ["u3"]
    );
    assert_eq!(s.stats().unwrap().users, 3);
}

pub fn events_are_idempotent_by_event_id(s: &dyn Store) {
    let e = with_id(Event::new("u", "a", "view").at(100), "e1");
    let out = s
        .append_events(&[e.clone(), e.clone()], Timestamp(5))
        .unwrap();
    assert_eq!(out.stored, [1]);
    assert_eq!(out.duplicates, 1);
    let out = s
        .append_events(
            &[e, with_id(Event::new("u", "b", "view"), "e2")],
            Timestamp(5),
        )
        .unwrap();
    assert_eq!((out.stored.as_slice(), out.duplicates), (&[2u64][..], 1));
    assert_eq!(s.stats().unwrap().events, 2);
    // Events without an id are never duplicates.
    let plain = Event::new("u", "a", "view").at(100);
    let out = s
        .append_events(&[plain.clone(), plain], Timestamp(5))
        .unwrap();
    assert_eq!(out.stored, [3, 4]);
    assert!(s
        .append_events(&[], Timestamp(5))
        .unwrap()
        .stored
        .is_empty());
}

pub fn every_field_of_an_event_survives(s: &dyn Store) {
    let mut e = with_id(Event::new("u", "a", "rating").at(-5), "id-1");
    e.value = Some(4.5);
    e.recommendation_id = Some("rec-9".into());
    e.context = BTreeMap::from([
        ("page".into(), PropertyValue::String("home".into())),
        ("pos".into(), PropertyValue::Number(3.0)),
    ]);
    s.append_events(&[e.clone(), Event::new("v", "b", "view")], Timestamp(77))
        .unwrap();
    let stored = all_events(s);
    assert_eq!(
        stored[0],
        StoredEvent {
            seq: 1,
            event_id: Some("id-1".into()),
            user_id: "u".into(),
            item_id: "a".into(),
            event_type: "rating".into(),
            value: Some(4.5),
            timestamp: Timestamp(-5),
            recommendation_id: Some("rec-9".into()),
            context: e.context.clone(),
        }
    );
    assert_eq!(stored[1].timestamp, Timestamp(77), "no timestamp: now");
    assert!(stored[1].context.is_empty() && stored[1].event_id.is_none());
    assert_eq!(s.user_events("u", 5).unwrap(), stored[..1]);
}

pub fn user_history_is_recent_last_and_deletion_erases_it(s: &dyn Store) {
    let events: Vec<Event> = (0..5)
        .map(|i| {
            with_id(
                Event::new("u", format!("i{i}"), "view").at(100 + i),
                &format!("u-{i}"),
            )
        })
        .chain([Event::new("v", "x", "click")])
        .collect();
    s.append_events(&events, Timestamp(7)).unwrap();
    let h = s.user_events("u", 3).unwrap();
    assert_eq!(ids(&h, |e| &e.item_id), ["i2", "i3", "i4"]);
    assert_eq!(s.user_events("v", 10).unwrap()[0].timestamp, Timestamp(7));
    s.put_users(&[User::new("u")]).unwrap();
    let d = s.delete_user("u").unwrap();
    assert_eq!(
        d,
        DeletedUser {
            user_existed: true,
            events_removed: 5,
            audit_scrubbed: 0,
        }
    );
    assert_eq!(s.get_user("u").unwrap(), None);
    assert!(s.user_events("u", 10).unwrap().is_empty());
    assert_eq!(ids(&all_events(s), |e| &e.user_id), ["v"]);
    // The erased events' ids went with them: sent again, they are stored anew.
    let again = s.append_events(&events[..1], Timestamp(8)).unwrap();
    assert_eq!((again.stored.len(), again.duplicates), (1, 0));
    let d = s.delete_user("nobody").unwrap();
    assert_eq!(d, DeletedUser::default());
}

pub fn user_items_cover_the_whole_history_and_erasure_clears_them(s: &dyn Store) {
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
    assert_eq!(s.user_items("uu").unwrap(), ["y"]);
    assert!(s.user_items("nobody").unwrap().is_empty());
    s.delete_user("u").unwrap();
    assert!(s.user_items("u").unwrap().is_empty());
    assert_eq!(s.user_items("v").unwrap(), ["x"]);
    assert_eq!(s.user_items("uu").unwrap(), ["y"]);
}

pub fn erasure_replaces_the_id_in_the_audit_log_and_keeps_the_entries(s: &dyn Store) {
    s.append_audit(&audit("GET /v1/users/al%20ice/events", Some("al ice")))
        .unwrap();
    s.append_audit(&audit("GET /v1/users/bob", Some("bob")))
        .unwrap();
    // An item that happens to share the id is not the user.
    s.append_audit(&audit("DELETE /v1/items/al ice", Some("al ice")))
        .unwrap();
    s.append_audit(&audit("DELETE /v1/users/al ice", Some("al ice")))
        .unwrap();
    s.append_events(&[Event::new("al ice", "a", "view")], Timestamp(1))
        .unwrap();
    let d = s.delete_user("al ice").unwrap();
    assert_eq!(d.audit_scrubbed, 2);
    let log = s.list_audit(None, 10).unwrap();
    assert_eq!(log.len(), 4, "entries are kept");
    assert_eq!(log[3].action, "GET /v1/users/[erased]/events");
    assert_eq!(log[3].target.as_deref(), Some(ERASED_MARKER));
    assert_eq!(log[2].action, "GET /v1/users/bob");
    assert_eq!(log[1].target.as_deref(), Some("al ice"));
    assert_eq!(log[0].action, "DELETE /v1/users/[erased]");
    assert_eq!(log.iter().map(|r| r.seq).collect::<Vec<_>>(), [4, 3, 2, 1]);
}

pub fn user_events_page_back_from_the_newest_each_once(s: &dyn Store) {
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

fn key(id: &str) -> KeyRecord {
    KeyRecord {
        id: id.into(),
        name: "backend".into(),
        scope: "ingest".into(),
        digest: "ab".repeat(32),
        created_at: 10,
        last_used_at: None,
        rate_limit_per_sec: Some(2.5),
        rate_limit_burst: Some(5),
    }
}

pub fn keys_and_audit_round_trip(s: &dyn Store) {
    s.put_key(&key("key_b")).unwrap();
    s.put_key(&key("key_a")).unwrap();
    let mut changed = key("key_b");
    changed.last_used_at = Some(99);
    s.put_key(&changed).unwrap();
    assert_eq!(s.list_keys().unwrap(), vec![key("key_a"), changed]);
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
    let newest = s.list_audit(None, 2).unwrap();
    assert_eq!(newest.iter().map(|r| r.seq).collect::<Vec<_>>(), [5, 4]);
    let older = s.list_audit(Some(4), 10).unwrap();
    assert_eq!(older.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 2, 1]);
    assert_eq!(older[0].target.as_deref(), Some("i2"));
    assert_eq!((older[0].at, older[0].status), (2, 204));
    assert!(s.delete_key("key_b").unwrap());
    assert!(!s.delete_key("key_b").unwrap());
    assert_eq!(s.list_keys().unwrap(), vec![key("key_a")]);
}

pub fn key_records_keep_their_optional_fields(s: &dyn Store) {
    let mut bare = key("key_c");
    bare.rate_limit_per_sec = None;
    bare.rate_limit_burst = None;
    s.put_key(&bare).unwrap();
    assert_eq!(s.list_keys().unwrap(), vec![bare]);
}

pub fn old_events_go_with_their_ids_and_the_pairs_they_alone_supported(s: &dyn Store) {
    let event = |user: &str, item: &str, ts: i64, id: &str| {
        with_id(Event::new(user, item, "view").at(ts), id)
    };
    s.append_events(
        &[
            event("u", "a", 100, "e1"),
            event("u", "b", 100, "e2"),
            event("u", "b", 900, "e3"),
            event("v", "a", 50, "e4"),
            event("w", "c", 1000, "e5"),
        ],
        Timestamp(1),
    )
    .unwrap();
    let out = s.expire_events(Timestamp(500), 100).unwrap();
    assert_eq!(
        out,
        ExpiredEvents {
            events: 3,
            pairs: 2
        }
    );
    assert_eq!(s.stats().unwrap().events, 2);
    assert_eq!(s.user_items("u").unwrap(), ["b"], "b still has an event");
    assert!(s.user_items("v").unwrap().is_empty());
    assert_eq!(s.user_items("w").unwrap(), ["c"]);
    assert_eq!(s.user_events("u", 10).unwrap().len(), 1);
    // The expired event ids are forgotten; the kept one is still a duplicate.
    let again = s
        .append_events(
            &[event("w", "c", 1000, "e5"), event("u", "a", 100, "e1")],
            Timestamp(2),
        )
        .unwrap();
    assert_eq!((again.stored.len(), again.duplicates), (1, 1));
    s.expire_events(Timestamp(500), 100).unwrap();
    assert_eq!(
        s.expire_events(Timestamp(500), 100).unwrap(),
        ExpiredEvents::default()
    );
    // A limit bounds one pass; the next pass takes the rest.
    s.append_events(
        &[event("x", "a", 1, "f1"), event("x", "b", 2, "f2")],
        Timestamp(3),
    )
    .unwrap();
    assert_eq!(s.expire_events(Timestamp(500), 1).unwrap().events, 1);
    assert_eq!(s.expire_events(Timestamp(500), 1).unwrap().events, 1);
    assert!(s.user_items("x").unwrap().is_empty());
}

pub fn scans_page_through_more_rows_than_one_fetch_in_order(s: &dyn Store) {
    // More rows than one fetch of a streaming backend (2,000 for PostgreSQL).
    let items: Vec<Item> = (0..4_500).map(|i| Item::new(format!("it{i:05}"))).collect();
    s.put_items(&items).unwrap();
    let events: Vec<Event> = (0..4_500)
        .map(|i| Event::new(format!("u{}", i % 7), format!("it{i:05}"), "view").at(i))
        .collect();
    for chunk in events.chunks(1_000) {
        s.append_events(chunk, Timestamp(1)).unwrap();
    }
    let mut n = 0;
    s.scan_items(&mut |item| {
        assert_eq!(item.id, format!("it{n:05}"));
        n += 1;
    })
    .unwrap();
    assert_eq!(n, 4_500);
    let mut seqs = Vec::new();
    s.scan_events(1_000, &mut |e| {
        assert_eq!(e.item_id, format!("it{:05}", e.seq - 1));
        seqs.push(e.seq);
        true
    })
    .unwrap();
    assert_eq!(seqs, (1_001..=4_500).collect::<Vec<u64>>());
}

pub fn a_scan_stops_when_the_visitor_says_so(s: &dyn Store) {
    let events: Vec<Event> = (0..10)
        .map(|i| Event::new("u", format!("i{i}"), "view"))
        .collect();
    s.append_events(&events, Timestamp(1)).unwrap();
    let mut seen = Vec::new();
    s.scan_events(2, &mut |e| {
        seen.push(e.seq);
        seen.len() < 3
    })
    .unwrap();
    assert_eq!(seen, [3, 4, 5]);
}

pub fn stats_keep_the_last_position_after_deletions(s: &dyn Store) {
    s.put_items(&[Item::new("a"), Item::new("b")]).unwrap();
    s.put_users(&[User::new("u")]).unwrap();
    let events: Vec<Event> = (0..4).map(|i| Event::new("u", "a", "view").at(i)).collect();
    s.append_events(&events, Timestamp(1)).unwrap();
    s.append_events(&[Event::new("v", "b", "view").at(9)], Timestamp(1))
        .unwrap();
    s.delete_user("v").unwrap();
    let stats = s.stats().unwrap();
    assert_eq!(
        (stats.items, stats.users, stats.events, stats.last_seq),
        (2, 1, 4, 5)
    );
    // Positions are never reused.
    let out = s
        .append_events(&[Event::new("w", "a", "view")], Timestamp(1))
        .unwrap();
    assert_eq!(out.stored, [6]);
}

pub fn concurrent_batches_get_distinct_contiguous_positions(s: &dyn Store) {
    std::thread::scope(|scope| {
        for t in 0..4 {
            scope.spawn(move || {
                for b in 0..10 {
                    let batch: Vec<Event> = (0..5)
                        .map(|i| {
                            with_id(
                                Event::new(format!("t{t}"), format!("i{i}"), "view"),
                                &format!("{t}-{b}-{i}"),
                            )
                        })
                        .collect();
                    // Each batch is sent twice: the second is all duplicates.
                    assert_eq!(
                        s.append_events(&batch, Timestamp(1)).unwrap().stored.len(),
                        5
                    );
                    assert_eq!(s.append_events(&batch, Timestamp(1)).unwrap().duplicates, 5);
                }
            });
        }
    });
    let seqs: Vec<u64> = all_events(s).iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
    assert_eq!(s.stats().unwrap().last_seq, 200);
}

pub fn imports_keep_positions_and_refuse_going_back(s: &dyn Store) {
    let stored = |seq: u64, id: Option<&str>| StoredEvent {
        seq,
        event_id: id.map(str::to_string),
        user_id: "u".into(),
        item_id: format!("i{seq}"),
        event_type: "view".into(),
        value: None,
        timestamp: Timestamp(seq as i64),
        recommendation_id: None,
        context: BTreeMap::new(),
    };
    s.import_events(&[stored(3, Some("a")), stored(7, None)], 10)
        .unwrap();
    assert_eq!(s.stats().unwrap().last_seq, 10);
    assert_eq!(
        all_events(s).iter().map(|e| e.seq).collect::<Vec<_>>(),
        [3, 7]
    );
    assert_eq!(s.user_items("u").unwrap(), ["i3", "i7"]);
    // At or below the end, out of order, or a stored id: refused whole.
    assert!(s
        .import_events(&[stored(12, None), stored(9, None)], 0)
        .is_err());
    assert!(s
        .import_events(&[stored(12, None), stored(13, Some("a"))], 0)
        .is_err());
    assert_eq!(s.stats().unwrap().events, 2);
    let dup = with_id(Event::new("u", "x", "view"), "a");
    assert_eq!(s.append_events(&[dup], Timestamp(1)).unwrap().duplicates, 1);
    assert_eq!(
        s.append_events(&[Event::new("u", "x", "view")], Timestamp(1))
            .unwrap()
            .stored,
        [11]
    );
    let mut record = audit("GET /v1/users/u", Some("u"));
    record.seq = 40;
    s.import_audit(std::slice::from_ref(&record)).unwrap();
    assert!(s.import_audit(std::slice::from_ref(&record)).is_err());
    assert_eq!(s.list_audit(None, 5).unwrap(), vec![record.clone()]);
    assert_eq!(s.append_audit(&record).unwrap(), 41);
}

/// `copy_store` moves a deployment: the copy answers every read as the source does.
pub fn copy_moves_everything_with_positions_and_ids(from: &dyn Store, to: &dyn Store) {
    let mut item = Item::new("a");
    item.categories = vec!["jazz".into()];
    from.put_items(&[item, Item::new("b")]).unwrap();
    from.put_users(&[User::new("u"), User::new("gone")])
        .unwrap();
    from.put_key(&key("key_a")).unwrap();
    for i in 0..3 {
        from.append_audit(&audit(&format!("GET /v1/users/u{i}"), None))
            .unwrap();
    }
    let events: Vec<Event> = (0..30)
        .map(|i| {
            let user = if i % 3 == 0 { "gone" } else { "u" };
            let mut e = with_id(
                Event::new(user, if i % 2 == 0 { "a" } else { "b" }, "view").at(i),
                &format!("e{i}"),
            );
            e.value = (i % 5 == 0).then_some(i as f64);
            e
        })
        .collect();
    from.append_events(&events, Timestamp(1)).unwrap();
    // Holes in the log and an end above the last event: both carried over.
    from.delete_user("gone").unwrap();
    from.append_events(&[Event::new("gone", "a", "view").at(99)], Timestamp(1))
        .unwrap();
    from.delete_user("gone").unwrap();
    let report = copy_store(from, to).unwrap();
    assert_eq!(
        (report.items, report.users, report.events, report.last_seq),
        (2, 1, 20, 31)
    );
    assert_eq!(to.stats().unwrap(), from.stats().unwrap());
    assert_eq!(all_events(to), all_events(from));
    assert_eq!(
        to.list_items(None, 10).unwrap(),
        from.list_items(None, 10).unwrap()
    );
    assert_eq!(
        to.list_users(None, 10).unwrap(),
        from.list_users(None, 10).unwrap()
    );
    assert_eq!(to.list_keys().unwrap(), from.list_keys().unwrap());
    assert_eq!(
        to.list_audit(None, 10).unwrap(),
        from.list_audit(None, 10).unwrap()
    );
    assert_eq!(to.user_items("u").unwrap(), ["a", "b"]);
    // Ids are still idempotent, and new positions continue after the source's end.
    let again = to.append_events(&events[1..2], Timestamp(1)).unwrap();
    assert_eq!(again.duplicates, 1);
    let new = to
        .append_events(&[Event::new("u", "a", "view")], Timestamp(1))
        .unwrap();
    assert_eq!(new.stored, [32]);
    assert_eq!(to.append_audit(&audit("GET /", None)).unwrap(), 4);
    // A store that holds something is not a target.
    assert!(copy_store(from, to).is_err());
}
