//! A backup taken from a serving engine restores into a data directory that serves the same data
//! and model; a restore never silently replaces a store.

use cairn_core::{Event, Item, User};
use cairn_engine::backup::{restore, ExportKind};
use cairn_engine::{Config, Engine};

fn config(dir: &std::path::Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    }
}

#[test]
fn backup_then_restore_gives_the_same_data_and_model() {
    let live = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(live.path())).unwrap();
    engine
        .put_items((0..8).map(|i| Item::new(format!("i{i}"))).collect())
        .unwrap();
    engine.put_users(vec![User::new("u1")]).unwrap();
    let events = (0..40)
        .map(|k| {
            Event::new(format!("u{}", k % 6), format!("i{}", k % 8), "view").at(1_700_000_000 + k)
        })
        .collect();
    engine.add_events(events).unwrap();
    let trained = engine.train().unwrap();

    let backups = tempfile::tempdir().unwrap();
    let dest = backups.path().join("b1");
    let backup = engine.backup(&dest).unwrap();
    assert_eq!((backup.items, backup.users, backup.events), (8, 1, 40));
    assert_eq!(
        backup.model_version.as_deref(),
        Some(trained.version.as_str())
    );
    // Writes after the backup are not in it.
    engine
        .add_events(vec![Event::new("u9", "i1", "view").at(1_700_001_000)])
        .unwrap();
    // Not into a folder that holds something.
    assert!(engine.backup(&dest).is_err());

    let mut before = Vec::new();
    engine.export(ExportKind::Items, &mut before).unwrap();
    drop(engine);

    let fresh = tempfile::tempdir().unwrap();
    restore(&dest, fresh.path(), false, 1).unwrap();
    let restored = Engine::open(config(fresh.path())).unwrap();
    let stats = restored.stats().unwrap();
    assert_eq!((stats.items, stats.users, stats.events), (8, 1, 40));
    assert_eq!(restored.model_info().unwrap().version, trained.version);
    let mut after = Vec::new();
    restored.export(ExportKind::Items, &mut after).unwrap();
    assert_eq!(before, after);
    let mut lines = Vec::new();
    assert_eq!(restored.export(ExportKind::Events, &mut lines).unwrap(), 40);
    drop(restored);

    // Restoring over a store needs --replace, and keeps the old file aside.
    assert!(restore(&dest, live.path(), false, 2).is_err());
    restore(&dest, live.path(), true, 2).unwrap();
    assert!(live.path().join("cairn.redb.before-restore-2").exists());
    assert_eq!(
        Engine::open(config(live.path()))
            .unwrap()
            .stats()
            .unwrap()
            .events,
        40
    );
}
