//! The engine over a real embedded store in a temporary directory.

use cairn_core::{Event, Item};
use cairn_engine::{Config, Engine, EngineError, RecommendRequest, RecommendationSource};

/// The default configuration without the home placement's exploration and per-category limit,
/// so that lists are the relevance order (those rules have tests of their own).
fn plain(mut config: Config) -> Config {
    let home = config.serve.placements.get_mut("home").unwrap();
    home.exploration = 0.0;
    home.max_per_category = 0;
    config
}

fn engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let config = plain(Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    });
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
        ..RecommendRequest::default()
    }
}

/// Sources that use what the user did (as opposed to popularity, trending, new items).
fn is_personal(source: RecommendationSource) -> bool {
    ["embedding", "item-knn", "content", "category-popular"].contains(&source.name())
}

#[test]
fn a_new_user_is_personalised_from_their_first_events() {
    let (_d, e) = engine();
    seed(&e);
    e.train().unwrap();
    // Never seen by the model: cold user gets popular items.
    let cold = e.recommend(&request("newcomer", 5)).unwrap();
    assert_eq!(cold.items.len(), 5);
    assert!(
        cold.items.iter().all(|r| !is_personal(r.source)),
        "{:?}",
        cold.items
    );
    // One event on a rock item, no retraining: rock items come first, with a reason naming it.
    e.add_events(vec![Event::new("newcomer", "r1", "purchase")])
        .unwrap();
    let warm = e.recommend(&request("newcomer", 5)).unwrap();
    assert!(
        warm.items.iter().all(|r| r.item_id != "r1"),
        "seen item excluded"
    );
    assert!(is_personal(warm.items[0].source), "{:?}", warm.items);
    assert!(
        warm.items
            .iter()
            .take(5)
            .all(|r| r.item_id.starts_with('r')),
        "{:?}",
        warm.items
    );
    assert!(
        warm.items
            .iter()
            .any(|r| r.reason == "because you bought \"rock record 1\""),
        "{:?}",
        warm.items
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
    // Shown again once visible, available or re-created, without retraining.
    let mut j1 = e.get_item("j1").unwrap();
    j1.hidden = false;
    let mut j2 = e.get_item("j2").unwrap();
    j2.available_from = Some(cairn_core::Timestamp(cairn_core::now_unix() - 60));
    j2.available_until = Some(cairn_core::Timestamp(cairn_core::now_unix() + 86_400));
    e.put_items(vec![j1, j2, Item::new("j3")]).unwrap();
    let back = e.recommend(&request("stranger", 20)).unwrap();
    for id in ["j1", "j2", "j3"] {
        assert!(back.items.iter().any(|r| r.item_id == id), "{id}");
    }
    let mut gone = e.get_item("j2").unwrap();
    gone.available_until = Some(cairn_core::Timestamp(cairn_core::now_unix() - 1));
    e.put_items(vec![gone]).unwrap();
    let expired = e.recommend(&request("stranger", 20)).unwrap();
    assert!(expired.items.iter().all(|r| r.item_id != "j2"));
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
    assert!(after.items.iter().all(|r| !is_personal(r.source)));
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
    let e = Engine::open(plain(Config::load(Some(&path)).unwrap())).unwrap();
    seed(&e);
    e.train().unwrap();
    e.add_events(vec![Event::new("newcomer", "j4", "purchase")])
        .unwrap();
    let recs = e.recommend(&request("newcomer", 5)).unwrap();
    assert_eq!(recs.items[0].source, "embedding");
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
    assert_eq!(
        offered.reason,
        "not yet discovered, and it matches your interest in the category jazz"
    );
    // The collaborative part is still there, and the rock fan is not offered a jazz item.
    assert!(jazz_fan.items.iter().any(|r| is_personal(r.source)));
    // u30 has four rock items left to see: all four come before any jazz item.
    let rock_fan = e.recommend(&request("u30", 4)).unwrap();
    assert!(
        rock_fan.items.iter().all(|r| r.item_id != "jazz-new"),
        "{:?}",
        rock_fan.items
    );
}

#[test]
fn an_item_created_after_training_is_matched_by_its_content_at_once() {
    let (_d, e) = engine();
    seed(&e);
    e.train().unwrap();
    // Created after training, with no events: the models have never seen it.
    let mut late = Item::new("jazz-late");
    late.categories = vec!["jazz".into()];
    late.title = Some("late night jazz session".into());
    e.put_items(vec![late]).unwrap();

    let similar = e.similar_items("jazz-late", 5, None).unwrap();
    assert_eq!(similar.items.len(), 5, "{:?}", similar.items);
    for r in &similar.items {
        assert!(r.item_id.starts_with('j'), "{:?}", similar.items);
        assert_eq!(r.source, "content");
        assert!(r.score > 0.0, "{r:?}");
        assert_eq!(
            r.reason,
            "shares the category jazz and the word \"jazz\" with \"late night jazz session\""
        );
    }

    // On its page, a visitor with no history is shown jazz items, matched by its content.
    let page = RecommendRequest {
        placement: Some("item-page".into()),
        context_items: vec!["jazz-late".into()],
        ..request("visitor", 3)
    };
    let recs = e.recommend(&page).unwrap();
    assert_eq!(recs.items.len(), 3);
    assert!(
        recs.items.iter().all(|r| r.item_id.starts_with('j')),
        "{:?}",
        recs.items
    );
    assert!(
        recs.items.iter().any(|r| r.source == "content"),
        "{:?}",
        recs.items
    );
    // A user whose only event is about it is personalised the same way.
    e.add_events(vec![Event::new("fan", "jazz-late", "purchase")])
        .unwrap();
    let recs = e.recommend(&request("fan", 3)).unwrap();
    assert!(
        recs.items.iter().all(|r| r.item_id.starts_with('j')),
        "{:?}",
        recs.items
    );
}

/// Gives every seeded item a `price` equal to its number (j3 costs 3).
fn add_prices(e: &Engine) {
    let mut items = Vec::new();
    for prefix in ["j", "r"] {
        for i in 0..10 {
            let mut item = e.get_item(&format!("{prefix}{i}")).unwrap();
            item.properties
                .insert("price".into(), cairn_core::PropertyValue::Number(i as f64));
            items.push(item);
        }
    }
    e.put_items(items).unwrap();
}

fn price(e: &Engine, id: &str) -> f64 {
    e.get_item(id).unwrap().properties["price"]
        .as_f64()
        .unwrap()
}

#[test]
fn a_filter_expression_holds_on_every_path_including_fallbacks() {
    let (_d, e) = engine();
    seed(&e);
    add_prices(&e);
    e.train().unwrap();
    for (user, placement, context) in [
        ("u0", "home", vec![]),
        ("u30", "home", vec![]),
        ("stranger", "home", vec![]),
        ("u0", "item-page", vec!["j1".to_string()]),
        ("stranger", "cart", vec!["r2".to_string()]),
    ] {
        let recs = e
            .recommend(&RecommendRequest {
                filter: Some("price < 5 and not (id == \"r4\")".into()),
                placement: Some(placement.into()),
                context_items: context.clone(),
                ..request(user, 20)
            })
            .unwrap();
        let seen: Vec<String> = e
            .user_events(user, 1000)
            .unwrap()
            .into_iter()
            .map(|ev| ev.item_id)
            .collect();
        // Every item that passes the filter and is unseen is returned (the fallback scans the
        // whole catalog once the retrievers run dry), and nothing else.
        let expected = (0..5)
            .flat_map(|i| [format!("j{i}"), format!("r{i}")])
            .filter(|id| id != "r4" && !seen.contains(id) && !context.contains(id))
            .count();
        assert_eq!(
            recs.items.len(),
            expected,
            "{user} {placement}: {:?}",
            recs.items
        );
        for r in &recs.items {
            assert!(price(&e, &r.item_id) < 5.0 && r.item_id != "r4", "{:?}", r);
        }
    }
}

#[test]
fn items_seen_before_the_history_limit_are_never_recommended() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = plain(Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    });
    config.serve.history_limit = 5;
    config.serve.recent_items = 5;
    let e = Engine::open(config).unwrap();
    seed(&e);
    // A heavy user: every jazz item, then 20 more events on the last two, so the newest five
    // events name only j8 and j9.
    let mut events: Vec<Event> = (0..10)
        .map(|i| Event::new("heavy", format!("j{i}"), "view").at(1_700_100_000 + i))
        .collect();
    events.extend(
        (0..20)
            .map(|i| Event::new("heavy", format!("j{}", 8 + i % 2), "view").at(1_700_200_000 + i)),
    );
    e.add_events(events).unwrap();
    e.train().unwrap();
    for placement in ["home", "item-page", "cart"] {
        let recs = e
            .recommend(&RecommendRequest {
                placement: Some(placement.into()),
                ..request("heavy", 20)
            })
            .unwrap();
        assert_eq!(recs.items.len(), 10, "{placement}: {:?}", recs.items);
        for r in &recs.items {
            assert!(r.item_id.starts_with('r'), "{placement}: seen {r:?}");
        }
    }
    // The `seen` field of a filter covers the whole history too.
    let recs = e
        .recommend(&RecommendRequest {
            filter: Some("seen".into()),
            exclude_seen: false,
            ..request("heavy", 20)
        })
        .unwrap();
    let mut ids: Vec<&str> = recs.items.iter().map(|r| r.item_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..10).map(|i| format!("j{i}")).collect::<Vec<_>>());
    // Once erased, nothing of the user is seen any more.
    e.delete_user("heavy").unwrap();
    let after = e.recommend(&request("heavy", 20)).unwrap();
    assert_eq!(after.items.len(), 20, "{:?}", after.items);
}

#[test]
fn a_user_history_pages_back_to_the_first_event_each_once() {
    let (_d, e) = engine();
    seed(&e);
    let total = e.user_events("u1", 1000).unwrap().len();
    let mut cursor: Option<String> = None;
    let mut seqs = Vec::new();
    loop {
        let page = e.user_events_page("u1", cursor.as_deref(), 2).unwrap();
        assert!(page.items.len() <= 2);
        seqs.extend(page.items.iter().map(|ev| ev.seq));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seqs.len(), total);
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first, each once: {seqs:?}"
    );
    for bad in ["x", "-1", "0", "1.5"] {
        let err = e.user_events_page("u1", Some(bad), 2).unwrap_err();
        assert_eq!(err.code(), "invalid_argument", "{bad}");
        assert!(err.to_string().contains("cursor"), "{err}");
    }
    assert_eq!(
        e.user_events_page("u1", None, 0).unwrap_err().code(),
        "invalid_argument"
    );
}

#[test]
fn a_bad_filter_or_boost_is_a_clear_error() {
    let (_d, e) = engine();
    seed(&e);
    e.train().unwrap();
    let err = e
        .recommend(&RecommendRequest {
            filter: Some("price <".into()),
            ..request("u0", 5)
        })
        .unwrap_err();
    assert_eq!(err.code(), "invalid_expression");
    assert!(err.to_string().starts_with("filter: at 7"), "{err}");
    let err = e
        .recommend(&RecommendRequest {
            boosts: vec![("new_release".into(), -1.0)],
            ..request("u0", 5)
        })
        .unwrap_err();
    assert_eq!(err.code(), "invalid_expression");
    assert!(err.to_string().contains("boost[0]"), "{err}");
    let err = e
        .recommend(&RecommendRequest {
            placement: Some("checkout".into()),
            ..request("u0", 5)
        })
        .unwrap_err();
    assert!(err.to_string().contains("home"), "{err}");
}

#[test]
fn pages_never_repeat_an_item() {
    let (_d, e) = engine();
    seed(&e);
    e.train().unwrap();
    let mut first = e.recommend(&request("u0", 3)).unwrap();
    let mut all: Vec<String> = first.items.iter().map(|r| r.item_id.clone()).collect();
    let mut pages = 1;
    while let Some(cursor) = first.next_cursor.take() {
        let page = e
            .recommend(&RecommendRequest {
                cursor: Some(cursor),
                ..request("u0", 3)
            })
            .unwrap();
        assert!(page.items.len() <= 3);
        assert_eq!(page.recommendation_id, first.recommendation_id);
        all.extend(page.items.iter().map(|r| r.item_id.clone()));
        first.next_cursor = page.next_cursor;
        pages += 1;
    }
    let seen = e.user_events("u0", 1000).unwrap().len();
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), all.len(), "{all:?}");
    assert_eq!(all.len(), 20 - seen, "every unseen item, once");
    assert!(pages >= 4);
    // A cursor from nowhere is refused; one whose model was replaced has expired.
    let bad = e.recommend(&RecommendRequest {
        cursor: Some("nonsense".into()),
        ..request("u0", 3)
    });
    assert_eq!(bad.unwrap_err().code(), "invalid_argument");
    let kept = e.recommend(&request("u0", 3)).unwrap().next_cursor.unwrap();
    e.add_events(vec![Event::new("u0", "r1", "view")]).unwrap();
    e.train().unwrap();
    let expired = e.recommend(&RecommendRequest {
        cursor: Some(kept),
        ..request("u0", 3)
    });
    assert_eq!(expired.unwrap_err().code(), "cursor_expired");
}

#[test]
fn pins_boosts_and_the_category_limit_shape_the_list() {
    let (_d, e) = engine();
    seed(&e);
    e.train().unwrap();
    let recs = e
        .recommend(&RecommendRequest {
            pins: vec![("r5".into(), 2)],
            ..request("u0", 5)
        })
        .unwrap();
    assert_eq!(recs.items[1].item_id, "r5");
    assert_eq!(recs.items[1].source, "pinned");
    assert_eq!(recs.items.iter().filter(|r| r.item_id == "r5").count(), 1);
    // A strong boost on rock lifts rock items above the jazz fan's own taste.
    let boosted = e
        .recommend(&RecommendRequest {
            boosts: vec![("category == \"rock\"".into(), 100.0)],
            ..request("u0", 3)
        })
        .unwrap();
    assert!(
        boosted.items.iter().all(|r| r.item_id.starts_with('r')),
        "{:?}",
        boosted.items
    );

    let dir = tempfile::tempdir().unwrap();
    let mut config = plain(Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    });
    config
        .serve
        .placements
        .get_mut("home")
        .unwrap()
        .max_per_category = 2;
    let diverse = Engine::open(config).unwrap();
    seed(&diverse);
    diverse.train().unwrap();
    let recs = diverse.recommend(&request("u0", 4)).unwrap();
    let jazz = recs
        .items
        .iter()
        .filter(|r| r.item_id.starts_with('j'))
        .count();
    assert_eq!(jazz, 2, "{:?}", recs.items);
}

#[test]
fn exploration_shows_new_items_to_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = plain(Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    });
    config.serve.placements.get_mut("home").unwrap().exploration = 1.0;
    let e = Engine::open(config).unwrap();
    seed(&e);
    let mut fresh = Item::new("debut");
    fresh.categories = vec!["folk".into()];
    e.put_items(vec![fresh]).unwrap();
    e.train().unwrap();
    for user in ["u0", "u30", "stranger"] {
        let recs = e.recommend(&request(user, 3)).unwrap();
        assert_eq!(recs.items[0].item_id, "debut", "{:?}", recs.items);
        assert_eq!(recs.items[0].source, "exploration");
        // Only one item is new, so the rest of the list is ordinary.
        assert!(recs.items[1..].iter().all(|r| r.source != "exploration"));
    }
    // The same user and history draw the same list.
    let again = e.recommend(&request("u0", 3)).unwrap();
    let first = e.recommend(&request("u0", 3)).unwrap();
    assert_eq!(again.items, first.items);
}

#[test]
fn a_ranker_is_learned_when_the_log_is_large_enough() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = plain(Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    });
    config.train.ranker.min_events = 1000;
    config.train.ranker.min_groups = 20;
    let e = Engine::open(config).unwrap();
    // Four tastes over 200 items; each user moves through their taste's items over time, so the
    // next items are predictable from the recent ones.
    let mut items = Vec::new();
    for i in 0..200 {
        let mut item = Item::new(format!("i{i}"));
        item.categories = vec![format!("c{}", i % 4)];
        items.push(item);
    }
    e.put_items(items).unwrap();
    let mut events = Vec::new();
    for u in 0..300u64 {
        let taste = u % 4;
        for step in 0..12u64 {
            let item = (taste + 4 * ((u * 7 + step * 3) % 50)) as usize;
            events.push(
                Event::new(format!("u{u}"), format!("i{item}"), "view")
                    .at(1_700_000_000 + (step * 1000 + u) as i64),
            );
        }
    }
    e.add_events(events).unwrap();
    e.train().unwrap();
    let info = e
        .model_info()
        .unwrap()
        .ranker
        .expect("a ranker was trained");
    assert!(info.train_users >= 20 && info.valid_users > 0, "{info:?}");
    assert!(info.valid_ndcg > 0.0 && info.fusion_ndcg > 0.0, "{info:?}");
    let recs = e.recommend(&request("u1", 10)).unwrap();
    assert_eq!(recs.items.len(), 10);
    // Taste 1 is items i1, i5, i9, ...: the ranker keeps the user's category on top.
    assert!(
        recs.items[..5]
            .iter()
            .all(|r| r.item_id[1..].parse::<usize>().unwrap() % 4 == 1),
        "{:?}",
        recs.items
    );
}

/// Records the thread each of the training's own stages reported from.
struct Threads(std::sync::Mutex<Vec<(String, Option<String>)>>);

impl cairn_models::Progress for Threads {
    fn update(&self, stage: &str, _done: usize, _total: usize) {
        let name = std::thread::current().name().map(str::to_string);
        self.0.lock().unwrap().push((stage.to_string(), name));
    }
}

#[test]
fn a_training_runs_on_a_thread_of_its_own_that_ends_with_it() {
    // Why it matters: matrix products keep a per-thread packing buffer for the thread's life, so
    // a training on a long-lived caller thread would leave one behind on every such thread.
    let (_dir, e) = engine();
    seed(&e);
    let threads = Threads(std::sync::Mutex::new(Vec::new()));
    e.train_with_progress(&threads).unwrap();
    let seen = threads.0.into_inner().unwrap();
    let reading: Vec<_> = seen
        .iter()
        .filter(|(stage, _)| stage == "reading events")
        .collect();
    assert!(!reading.is_empty(), "{seen:?}");
    assert!(
        reading
            .iter()
            .all(|(_, name)| name.as_deref() == Some("cairn-train")),
        "{reading:?}"
    );
    // The caller's thread is not the training's, and the engine trains again afterwards.
    assert_ne!(std::thread::current().name(), Some("cairn-train"));
    e.train().unwrap();
}
