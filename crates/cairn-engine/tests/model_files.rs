//! A damaged model file never serves: the engine falls back to the previous kept model at once.

use cairn_core::{Event, Item};
use cairn_engine::{Config, Engine};

#[test]
fn a_damaged_newest_model_gives_way_to_the_previous_one_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let (first, second) = {
        let engine = Engine::open(config.clone()).unwrap();
        let items = (0..5).map(|i| Item::new(format!("i{i}"))).collect();
        engine.put_items(items).unwrap();
        let events = |from: i64| -> Vec<Event> {
            (0..10)
                .map(|u| Event::new(format!("u{u}"), format!("i{}", u % 5), "view").at(from + u))
                .collect()
        };
        engine.add_events(events(1_700_000_000)).unwrap();
        let first = engine.train().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        engine.add_events(events(1_700_001_000)).unwrap();
        (first, engine.train().unwrap())
    };
    assert_ne!(first.version, second.version);

    let mut bytes = std::fs::read(&second.path).unwrap();
    bytes.extend_from_slice(b"appended garbage");
    std::fs::write(&second.path, bytes).unwrap();

    let engine = Engine::open(config).unwrap();
    let served = engine.model_info().expect("the previous model serves");
    assert_eq!(served.version, first.version);
    assert!(!engine.popular(3, None).unwrap().items.is_empty());
}

/// `models.dir`: versions and their registry live in the named folder, not in `data_dir/models`,
/// and two engines over other stores that name the same folder (replicas) serve the champion that
/// either promotes once they look at the history again.
#[test]
fn engines_sharing_models_dir_follow_one_champion() {
    let (one, two, shared) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let config = |dir: &tempfile::TempDir| {
        let mut c = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        c.models.dir = Some(shared.path().to_path_buf());
        c
    };
    let items = || -> Vec<Item> { (0..5).map(|i| Item::new(format!("i{i}"))).collect() };
    let events = |from: i64| -> Vec<Event> {
        (0..10)
            .map(|u| Event::new(format!("u{u}"), format!("i{}", u % 5), "view").at(from + u))
            .collect()
    };
    let first = Engine::open(config(&one)).unwrap();
    first.put_items(items()).unwrap();
    first.add_events(events(1_700_000_000)).unwrap();
    let v1 = first.train().unwrap();
    assert!(v1.path.starts_with(shared.path()), "{}", v1.path.display());
    assert!(!one.path().join("models").exists());

    let second = Engine::open(config(&two)).unwrap();
    assert_eq!(second.model_info().unwrap().version, v1.version);
    assert!(!second.holds_trainer_lease(), "not asked yet");
    assert!(
        second.take_trainer_lease().unwrap(),
        "the embedded store grants it"
    );
    assert!(second.holds_trainer_lease());

    std::thread::sleep(std::time::Duration::from_millis(20));
    first.add_events(events(1_700_001_000)).unwrap();
    let v2 = first.train().unwrap();
    assert_ne!(v1.version, v2.version);
    assert_eq!(second.sync_champion().unwrap(), Some(v2.version.clone()));
    assert_eq!(second.model_info().unwrap().version, v2.version);

    second
        .promote_model(
            &v1.version,
            cairn_engine::registry::Alias::Champion,
            "test",
            "back",
        )
        .unwrap();
    assert_eq!(first.sync_champion().unwrap(), Some(v1.version.clone()));
    assert_eq!(first.model_info().unwrap().version, v1.version);
    assert_eq!(first.sync_champion().unwrap(), None, "nothing new");
}
