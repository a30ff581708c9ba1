//! A small world for the serving tests: two tastes of items and a model set fitted on them in
//! memory (no store, no training run), so that each test builds what it needs in milliseconds.

use std::path::Path;
use std::sync::Arc;

use cairn_core::{Event, IdMap, Item, StoredEvent, Timestamp};

use crate::catalog::Catalog;
use crate::config::Config;
use crate::Engine;
use cairn_pipeline::snapshot::Snapshot;
use cairn_pipeline::ModelSet;
use cairn_pipeline::TrainConfig;

/// "Now" of every test: a day after the last event.
pub(super) const NOW: i64 = 1_700_000_000 + 86_400;

/// Jazz items j0..j4 and rock items r0..r3 (titled "jazz record 0"...); `n0`, a jazz item nobody
/// has touched; `h0`, a hidden rock item.
pub(super) fn items() -> Vec<Item> {
    let mut items = Vec::new();
    for (prefix, category) in [("j", "jazz"), ("r", "rock")] {
        let n = if category == "jazz" { 5 } else { 4 };
        for i in 0..n {
            let mut item = Item::new(format!("{prefix}{i}"));
            item.categories = vec![category.into()];
            item.title = Some(format!("{category} record {i}"));
            items.push(item);
        }
    }
    let mut new = Item::new("n0");
    new.categories = vec!["jazz".into()];
    items.push(new);
    let mut hidden = Item::new("h0");
    hidden.categories = vec!["rock".into()];
    hidden.hidden = true;
    items.push(hidden);
    items
}

/// Users u0..u5 view jazz items j0..j3, u6..u11 rock items (each one all but every third item),
/// and u0 and u6 also view the hidden item; u12 views only j4, which is popular but similar to
/// no other item.
pub(super) fn snapshot() -> Snapshot {
    let (mut users, mut items) = (IdMap::new(), IdMap::new());
    let mut events = Vec::new();
    let mut t = 1_700_000_000;
    for u in 0..12 {
        let user = users.intern(&format!("u{u}"));
        let prefix = if u < 6 { "j" } else { "r" };
        for i in 0..4 {
            if (u + i) % 3 != 0 {
                t += 60;
                events.push((user, items.intern(&format!("{prefix}{i}")), 1.0, t));
            }
        }
        if u % 6 == 0 {
            t += 60;
            events.push((user, items.intern("h0"), 1.0, t));
        }
    }
    let loner = users.intern("u12");
    events.push((loner, items.intern("j4"), 1.0, t + 60));
    Snapshot {
        users,
        items,
        events,
        last_seq: 0,
        reference_time: t + 60,
    }
}

/// The retrieval models of the world, as training would fit them (without the ranker).
pub(super) fn models() -> ModelSet {
    ModelSet::fit_models(&snapshot(), &items(), &TrainConfig::default(), NOW).unwrap()
}

/// The world's catalog, bound to `models` as serving binds it.
pub(super) fn catalog(models: &Arc<ModelSet>) -> Catalog {
    let mut catalog = Catalog::default();
    for item in items() {
        catalog.upsert(item);
    }
    catalog.bind(models.clone());
    catalog
}

/// An event of `user` on `item`, as the store returns it.
pub(super) fn stored(user: &str, item: &str, event_type: &str, at: i64) -> StoredEvent {
    StoredEvent::from_event(0, Event::new(user, item, event_type).at(at), Timestamp(0))
}

/// An engine over a store in `dir` holding the world's items, serving `models` as if it had
/// just trained them.
pub(super) fn engine(dir: &Path, models: Arc<ModelSet>) -> Engine {
    engine_with(dir, models, Config::default())
}

/// [`engine`] with `config` (its data directory replaced by `dir`).
pub(super) fn engine_with(dir: &Path, models: Arc<ModelSet>, config: Config) -> Engine {
    let engine = Engine::open(Config {
        data_dir: dir.to_path_buf(),
        ..config
    })
    .unwrap();
    engine.put_items(items()).unwrap();
    let mut catalog = engine.catalog_mut();
    catalog.bind(models.clone());
    engine.models.store(Some(models));
    drop(catalog);
    engine
}
