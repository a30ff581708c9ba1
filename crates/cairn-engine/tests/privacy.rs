//! Privacy through the engine over a real store: erasure everywhere, no byte of an erased id left
//! after compaction and retraining, retention, pseudonymised ids. docs/reliability/privacy.md
//! names these tests.

use std::path::Path;

use cairn_core::{Event, Item, User};
use cairn_engine::{AuditRecord, Config, Engine, EngineError, RecommendRequest, ERASED_MARKER};

/// A user id that occurs nowhere else in a store file by chance.
const GONE: &str = "erase-me-4d1bc9e07a";
const DAY: i64 = 86_400;

fn config(dir: &Path) -> Config {
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    // Long lists and a small first page, so that a list keeps pages for a cursor.
    config.serve.list_window = 30;
    // Lists in relevance order only (exploration draws by user id).
    let home = config.serve.placements.get_mut("home").unwrap();
    home.exploration = 0.0;
    home.max_per_category = 0;
    config
}

/// How often `needle` occurs in `haystack`.
fn occurrences(haystack: &[u8], needle: &str) -> usize {
    let needle = needle.as_bytes();
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// Occurrences of `needle` in every file under `dir`, by file.
fn occurrences_in_dir(dir: &Path, needle: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let n = occurrences(&std::fs::read(&path).unwrap(), needle);
                found.push((path.display().to_string(), n));
            }
        }
    }
    found
}

/// 40 items, 30 users with events, and `user` with 60 events (each with an event id) and a row.
fn seed(engine: &Engine, user: &str, now: i64) {
    let items = (0..40).map(|i| Item::new(format!("i{i}"))).collect();
    engine.put_items(items).unwrap();
    let mut events = Vec::new();
    for u in 0..30 {
        for i in 0..8 {
            events.push(
                Event::new(format!("u{u}"), format!("i{}", (u * 3 + i) % 40), "view")
                    .at(now - DAY + u * 60 + i),
            );
        }
    }
    for i in 0..60 {
        let mut e = Event::new(user, format!("i{}", i % 12), "view").at(now - DAY + i);
        e.event_id = Some(event_id(i));
        events.push(e);
    }
    engine.add_events(events).unwrap();
    engine.put_users(vec![User::new(user)]).unwrap();
}

/// The client's idempotency key of the seeded user's `i`th event.
fn event_id(i: i64) -> String {
    format!("evt-{i}")
}

fn request(user: &str, k: usize) -> RecommendRequest {
    RecommendRequest {
        user_id: user.into(),
        k,
        exclude_seen: true,
        ..RecommendRequest::default()
    }
}

fn audit(engine: &Engine, action: String, target: &str) {
    engine
        .record_audit(AuditRecord {
            seq: 0,
            at: 1,
            key_id: "anonymous".into(),
            key_name: "ops".into(),
            action,
            target: Some(target.into()),
            status: 200,
        })
        .unwrap();
}

#[test]
fn erasure_removes_the_user_from_store_caches_audit_and_the_next_model() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).unwrap();
    let now = cairn_core::now_unix();
    seed(&engine, GONE, now);
    engine.train().unwrap();
    audit(&engine, format!("GET /v1/users/{GONE}/events"), GONE);
    audit(&engine, "GET /v1/users/u1".into(), "u1");

    let first = engine.recommend(&request(GONE, 5)).unwrap();
    let cursor = first.next_cursor.clone().expect("a list with later pages");
    assert!(engine
        .recommend(&RecommendRequest {
            cursor: Some(cursor.clone()),
            ..request(GONE, 5)
        })
        .is_ok());

    let erased = engine.delete_user(GONE).unwrap();
    assert!(erased.user_existed);
    assert_eq!(erased.events_removed, 60);
    assert_eq!(erased.audit_scrubbed, 1);

    // The store: row, events, seen pairs, idempotency records.
    assert!(matches!(
        engine.get_user(GONE),
        Err(EngineError::NotFound { .. })
    ));
    assert!(engine.user_events(GONE, 100).unwrap().is_empty());
    assert!(engine.store().user_items(GONE).unwrap().is_empty());
    let mut again = Event::new(GONE, "i0", "view").at(now - 10);
    again.event_id = Some(event_id(0));
    let stored = engine.add_events(vec![again]).unwrap();
    assert_eq!(
        (stored.stored, stored.duplicates),
        (1, 0),
        "the event id was forgotten"
    );
    engine.delete_user(GONE).unwrap();

    // The cursor's kept pages are gone at once.
    let page = engine.recommend(&RecommendRequest {
        cursor: Some(cursor),
        ..request(GONE, 5)
    });
    assert!(
        matches!(page, Err(EngineError::CursorExpired(_))),
        "{page:?}"
    );
    // Served from nothing of theirs: the list is the one of a user never seen.
    let fresh = engine.recommend(&request(GONE, 5)).unwrap();
    let stranger = engine.recommend(&request("never-seen", 5)).unwrap();
    let ids = |r: &cairn_engine::Recommendations| -> Vec<String> {
        r.items.iter().map(|i| i.item_id.clone()).collect()
    };
    assert_eq!(ids(&fresh), ids(&stranger));

    // The audit log keeps the entries, without the id.
    let log = engine.audit(None, 10).unwrap().items;
    assert_eq!(log.len(), 2);
    assert_eq!(
        log[1].action,
        format!("GET /v1/users/{ERASED_MARKER}/events")
    );
    assert_eq!(log[1].target.as_deref(), Some(ERASED_MARKER));
    assert_eq!(log[0].target.as_deref(), Some("u1"));

    // The erasure makes a training due although no event arrived; it leaves the user out.
    assert!(engine.has_new_events().unwrap());
    let users_before = engine.model_info().unwrap().users;
    engine.train().unwrap();
    assert_eq!(engine.model_info().unwrap().users, users_before - 1);
    assert!(!engine.has_new_events().unwrap());
}

#[test]
fn after_erasure_compaction_and_retraining_no_file_holds_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).unwrap();
    seed(&engine, GONE, cairn_core::now_unix());
    let trained = engine.train().unwrap();
    // A model file never holds a user id: users are rows by position, scored from their history.
    assert_eq!(occurrences(&std::fs::read(&trained.path).unwrap(), GONE), 0);
    audit(&engine, format!("DELETE /v1/users/{GONE}"), GONE);
    let store_file = dir.path().join("cairn.redb");

    engine.delete_user(GONE).unwrap();
    let lingering = occurrences(&std::fs::read(&store_file).unwrap(), GONE);
    assert!(
        lingering > 0,
        "the erased rows' bytes stay in free pages until compaction"
    );
    assert!(engine.compaction_due());
    let report = engine.compact().unwrap();
    assert!(!engine.compaction_due());
    assert_eq!(report.events, 240, "everyone else's events are kept");
    engine.train().unwrap();
    let found = occurrences_in_dir(dir.path(), GONE);
    assert!(found.iter().any(|(path, _)| path.ends_with("cairn.redb")));
    assert!(found.iter().any(|(path, _)| path.ends_with(".cairn")));
    assert!(found.iter().all(|(_, n)| *n == 0), "{found:?}");
    eprintln!("erased id: {lingering} occurrences in the store file before compaction, 0 after");

    // The compacted store goes on serving and writing, and reopens.
    assert!(!engine
        .recommend(&request("u1", 5))
        .unwrap()
        .items
        .is_empty());
    engine
        .add_events(vec![Event::new("u1", "i39", "view")])
        .unwrap();
    let events = engine.stats().unwrap().events;
    drop(engine);
    let engine = Engine::open(config(dir.path())).unwrap();
    assert_eq!(engine.stats().unwrap().events, events);
}

#[test]
fn retention_deletes_old_events_and_keeps_seen_items_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.privacy.retention_days = 30;
    let engine = Engine::open(cfg).unwrap();
    let now = cairn_core::now_unix();
    engine
        .put_items((0..3).map(|i| Item::new(format!("i{i}"))).collect())
        .unwrap();
    // Old events are how an imported history arrives: the store takes any past timestamp.
    engine
        .add_events(vec![
            Event::new("old", "i0", "view").at(now - 45 * DAY),
            Event::new("mixed", "i0", "view").at(now - 40 * DAY),
            Event::new("mixed", "i1", "view").at(now - 40 * DAY),
            Event::new("mixed", "i1", "view").at(now - DAY),
            Event::new("recent", "i2", "view").at(now - 29 * DAY),
        ])
        .unwrap();
    engine.train().unwrap();
    assert!(!engine.has_new_events().unwrap());

    let expired = engine.expire_events(now).unwrap();
    assert_eq!((expired.events, expired.pairs), (3, 2));
    assert_eq!(expired.cutoff, now - 30 * DAY);
    assert_eq!(engine.events_expired(), 3);
    assert_eq!(engine.stats().unwrap().events, 2);
    let store = engine.store();
    assert!(store.user_items("old").unwrap().is_empty());
    assert_eq!(store.user_items("mixed").unwrap(), ["i1"]);
    assert_eq!(store.user_items("recent").unwrap(), ["i2"]);
    assert_eq!(engine.user_events("mixed", 10).unwrap().len(), 1);
    // The model learnt from them: a training is due, and a compaction.
    assert!(engine.has_new_events().unwrap());
    assert!(engine.compaction_due());
    // Nothing more to expire at the same clock; a later clock takes the next.
    assert_eq!(engine.expire_events(now).unwrap().events, 0);
    assert_eq!(engine.expire_events(now + 2 * DAY).unwrap().events, 1);
    assert_eq!(engine.events_expired(), 4);
}

#[test]
fn retention_off_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).unwrap();
    engine.put_items(vec![Item::new("a")]).unwrap();
    engine
        .add_events(vec![Event::new("u", "a", "view").at(1)])
        .unwrap();
    assert_eq!(
        engine.expire_events(cairn_core::now_unix()).unwrap().events,
        0
    );
    assert_eq!(engine.stats().unwrap().events, 1);
}

#[test]
fn pseudonymised_ids_never_reach_the_store_and_recommendations_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("hmac.key");
    std::fs::write(&key_file, "a secret of thirty-two bytes ok!\n").unwrap();
    let data = dir.path().join("data");
    let mut cfg = config(&data);
    cfg.privacy.pseudonymize_user_ids = true;
    cfg.privacy.hmac_key_file = Some(key_file);
    let raw = "alice.raw-id-93e1@example.com";
    {
        let engine = Engine::open(cfg.clone()).unwrap();
        seed(&engine, raw, cairn_core::now_unix());
        engine.train().unwrap();

        // The raw id works everywhere a client uses it.
        assert_eq!(engine.get_user(raw).unwrap().id, raw);
        let history = engine.user_events(raw, 100).unwrap();
        assert_eq!(history.len(), 60);
        assert!(history.iter().all(|e| e.user_id == raw));
        let list = engine.recommend(&request(raw, 10)).unwrap();
        assert_eq!(list.items.len(), 10);
        // Seen items are excluded: the history was found under the pseudonym.
        assert!(list.items.iter().all(|r| r
            .item_id
            .trim_start_matches('i')
            .parse::<usize>()
            .unwrap()
            >= 12));
        assert_eq!(engine.export_user(raw).unwrap().events.len(), 60);
        // The store holds the pseudonym, the same one every time.
        let key = engine.user_key(raw).into_owned();
        assert!(key.starts_with("ps_") && key != raw);
        assert_eq!(engine.user_key(raw), key);
        let listed: Vec<String> = engine
            .list_users(None, 10)
            .unwrap()
            .items
            .into_iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(listed, std::slice::from_ref(&key));
        assert_eq!(engine.store().user_items(&key).unwrap().len(), 12);
        assert!(engine.store().user_items(raw).unwrap().is_empty());
    }
    let found = occurrences_in_dir(&data, raw);
    assert!(found.iter().all(|(_, n)| *n == 0), "{found:?}");

    // Erasure by the raw id erases the pseudonym's data.
    let engine = Engine::open(cfg.clone()).unwrap();
    assert_eq!(engine.delete_user(raw).unwrap().events_removed, 60);
    assert!(engine.user_events(raw, 10).unwrap().is_empty());
    drop(engine);

    // Without its key, pseudonymisation refuses to start.
    cfg.privacy.hmac_key_file = None;
    assert!(Engine::open(cfg).is_err());
}
