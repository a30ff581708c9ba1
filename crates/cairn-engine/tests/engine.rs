//! The engine over a real embedded store in a temporary directory.

use cairn_core::{Event, Item};
use cairn_engine::{Config, Engine, EngineError, RecommendRequest};

fn engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    (dir, Engine::open(config).unwrap())
}

/// Two tastes: users u0..u19 view jazz items j0..j9, users u20..u39 view rock items r0..r9.
fn seed(engine: &Engine) {
    let mut items = Vec::new();
    for (prefix, cat) in [("j", "jazz"), ("r", "rock")] {
        for i in 0..10 {
            let mut item = Item::new(format!("{prefix}{i}"));
            item.categories = vec![cat.into()];
            item.title = Some(format!("{cat} record {i}"));
            items.push(item);
        }
    }
    engine.put_items(items).unwrap();
    let mut events = Vec::new();
    for u in 0..40 {
        let prefix = if u < 20 { "j" } else { "r" };
        for i in 0..10 {
            if (u + i) % 3 != 0 {
                events.push(
                    Event::new(format!("u{u}"), format!("{prefix}{i}"), "view")
                        .at(1_700_000_000 + u * 100 + i),
                );
            }
        }
    }
    engine.add_events(events).unwrap();
}

fn request(user: &str, k: usize) -> RecommendRequest {
    RecommendRequest {
        user_id: user.into(),
        k,
        exclude_seen: true,
        category: None,
    }
}

#[test]
fn a_new_user_is_personalised_from_their_first_events() {
    let (_d, e) = engine();
    seed(&e);
    e.train().unwrap();
    // Never seen by the model: cold user gets popular items.
    let cold = e.recommend(&request("newcomer", 5)).unwrap();
    assert_eq!(cold.items.len(), 5);
    assert!(cold.items.iter().all(|r| r.source == "popularity"));
    // One event on a rock item, no retraining: rock items come first, with a reason naming it.
    e.add_events(vec![Event::new("newcomer", "r1", "purchase")])
        .unwrap();
    let warm = e.recommend(&request("newcomer", 5)).unwrap();
    assert!(
        warm.items.iter().all(|r| r.item_id != "r1"),
        "seen item excluded"
    );
    assert_eq!(warm.items[0].source, "item-knn");
    assert!(
        warm.items
            .iter()
            .take(5)
            .all(|r| r.item_id.starts_with('r')),
        "{:?}",
        warm.items
    );
    assert!(
        warm.items[0].reason.contains("rock record 1"),
        "{}",
        warm.items[0].reason
    );
    assert_ne!(cold.recommendation_id, warm.recommendation_id);
}

#[test]
fn hidden_unavailable_and_filtered_items_never_appear() {
    let (_d, e) = engine();
    seed(&e);
    e.train().unwrap();
    let mut hidden = e.get_item("j1").unwrap();
    hidden.hidden = true;
    let mut future = e.get_item("j2").unwrap();
    future.available_from = Some(cairn_core::Timestamp(cairn_core::now_unix() + 86_400));
    e.put_items(vec![hidden, future]).unwrap();
    e.delete_item("j3").unwrap();
    let lists = [
        e.recommend(&request("u0", 20)).unwrap(),
        e.recommend(&request("stranger", 20)).unwrap(),
        e.popular(20, None).unwrap(),
        e.trending(20, None).unwrap(),
        e.similar_items("j0", 20, None).unwrap(),
    ];
    for list in &lists {
        for r in &list.items {
            assert!(
                !["j1", "j2", "j3"].contains(&r.item_id.as_str()),
                "{}",
                r.item_id
            );
        }
    }
    let rock = e
        .recommend(&RecommendRequest {
            category: Some("rock".into()),
            ..request("u0", 20)
        })
        .unwrap();
    assert!(!rock.items.is_empty());
    assert!(rock.items.iter().all(|r| r.item_id.starts_with('r')));
}

#[test]
fn a_bad_event_rejects_the_whole_batch() {
    let (_d, e) = engine();
    seed(&e);
    let before = e.stats().unwrap().events;
    let err = e
        .add_events(vec![
            Event::new("u1", "j1", "view"),
            Event::new("u1", "nope", "view"),
        ])
        .unwrap_err();
    match err {
        EngineError::Invalid(v) => assert_eq!(v.field, "events[1].item_id"),
        other => panic!("{other}"),
    }
    let err = e
        .add_events(vec![Event::new("u1", "j1", "rating")])
        .unwrap_err();
    assert_eq!(err.code(), "invalid_argument");
    assert_eq!(e.stats().unwrap().events, before);
}

#[test]
fn deleting_a_user_erases_their_history() {
    let (_d, e) = engine();
    seed(&e);
    e.train().unwrap();
    assert!(!e.user_events("u3", 100).unwrap().is_empty());
    let deleted = e.delete_user("u3").unwrap();
    assert!(deleted.events_removed > 0);
    assert!(e.user_events("u3", 100).unwrap().is_empty());
    let after = e.recommend(&request("u3", 5)).unwrap();
    assert!(after.items.iter().all(|r| r.source == "popularity"));
    assert!(matches!(
        e.delete_user("u3"),
        Err(EngineError::NotFound { .. })
    ));
}

#[test]
fn models_survive_a_restart_and_k_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let version = {
        let e = Engine::open(config.clone()).unwrap();
        seed(&e);
        e.train().unwrap().version
    };
    let e = Engine::open(config).unwrap();
    assert_eq!(e.model_info().unwrap().version, version);
    assert!(!e.has_new_events().unwrap());
    assert!(e.recommend(&request("u0", 0)).is_err());
    assert!(e.recommend(&request("u0", 100_000)).is_err());
    assert_eq!(e.popular(3, Some("jazz")).unwrap().items.len(), 3);
}

#[test]
fn pagination_visits_every_item_once() {
    let (_d, e) = engine();
    seed(&e);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = e.list_items(cursor.as_deref(), 7).unwrap();
        seen.extend(page.items.into_iter().map(|i| i.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen.len(), 20);
    assert_eq!(sorted.len(), 20);
}

#[test]
fn a_configured_factor_model_ranks_and_folds_in_new_users() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cairn.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\n[train.model]\nmodel = \"als\"\nfactors = 8\niterations = 10\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    let e = Engine::open(Config::load(Some(&path)).unwrap()).unwrap();
    seed(&e);
    e.train().unwrap();
    e.add_events(vec![Event::new("newcomer", "j4", "purchase")])
        .unwrap();
    let recs = e.recommend(&request("newcomer", 5)).unwrap();
    assert_eq!(recs.items[0].source, "als");
    assert!(
        recs.items.iter().all(|r| r.item_id.starts_with('j')),
        "{:?}",
        recs.items
    );
}

#[test]
fn a_new_item_is_offered_by_its_features_before_anyone_touches_it() {
    let (_d, e) = engine();
    seed(&e);
    let mut fresh = Item::new("jazz-new");
    fresh.categories = vec!["jazz".into()];
    fresh.title = Some("jazz record, new pressing".into());
    e.put_items(vec![fresh]).unwrap();
    e.train().unwrap();

    let jazz_fan = e.recommend(&request("u0", 5)).unwrap();
    let offered = jazz_fan.items.iter().find(|r| r.item_id == "jazz-new");
    let offered = offered.unwrap_or_else(|| panic!("{:?}", jazz_fan.items));
    assert_eq!(offered.source, "content");
    assert_eq!(offered.reason, "new, and it matches your interest in jazz");
    // The collaborative part is still there, and the rock fan is not offered a jazz item.
    assert!(jazz_fan.items.iter().any(|r| r.source == "item-knn"));
    let rock_fan = e.recommend(&request("u30", 5)).unwrap();
    assert!(
        rock_fan.items.iter().all(|r| r.item_id != "jazz-new"),
        "{:?}",
        rock_fan.items
    );
}
