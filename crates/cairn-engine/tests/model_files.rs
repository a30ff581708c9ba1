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
