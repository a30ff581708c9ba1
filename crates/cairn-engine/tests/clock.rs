//! Time comes from this server's clock: an event stamped ahead of it is refused, and one that got
//! into the log anyway cannot make "now" run ahead for popular and trending.

use cairn_core::{now_unix, Event, Item};
use cairn_engine::{Config, Engine, EngineError};

fn engine(max_future_secs: u64) -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.ingest.max_future_secs = max_future_secs;
    let engine = Engine::open(config).unwrap();
    let items = (0..6).map(|i| Item::new(format!("i{i}"))).collect();
    engine.put_items(items).unwrap();
    (dir, engine)
}

#[test]
fn an_event_stamped_ahead_of_the_clock_is_refused_with_its_batch() {
    let (_dir, engine) = engine(300);
    let now = now_unix();
    let within_skew = Event::new("u", "i0", "view").at(now + 60);
    assert_eq!(engine.add_events(vec![within_skew]).unwrap().stored, 1);

    let batch = vec![
        Event::new("u", "i1", "view").at(now - 60),
        Event::new("u", "i2", "view").at(now + 86_400),
    ];
    match engine.add_events(batch) {
        Err(EngineError::Invalid(e)) => {
            assert_eq!(e.field, "events[1].timestamp");
            assert!(e.message.contains("ingest.max_future_secs"), "{e}");
        }
        other => panic!("expected a refused timestamp, got {other:?}"),
    }
    // All or nothing: the valid first event of the refused batch was not stored either.
    assert_eq!(engine.user_events("u", 100).unwrap().len(), 1);
}

#[test]
fn a_stored_future_event_does_not_take_over_popular_and_trending() {
    // A log written before timestamps were checked: ingestion let anything up to 2200 in.
    let (_dir, engine) = engine(u64::MAX / 2);
    let now = now_unix();
    let mut events = Vec::new();
    for u in 0..20 {
        // i0 is the favourite of the last hours; i1..i4 get a little.
        events.push(Event::new(format!("u{u}"), "i0", "view").at(now - 600 - u));
        events.push(Event::new(format!("u{u}"), format!("i{}", 1 + u % 4), "view").at(now - 7200));
    }
    events.push(Event::new("mallory", "i5", "view").at(7_258_000_000));
    engine.add_events(events).unwrap();
    engine.train().unwrap();

    let popular = engine.popular(3, None).unwrap();
    assert_eq!(popular.items[0].item_id, "i0", "{:?}", popular.items);
    let trending = engine.trending(3, None).unwrap();
    assert!(
        trending.items.iter().all(|r| r.item_id != "i5"),
        "{:?}",
        trending.items
    );
}
