//! The promotion gate on real trainings: broken models are refused and never serve, a better one
//! is promoted, rollbacks and restarts keep the champion.

use cairn_core::{Event, IdMap, Item};
use cairn_pipeline::{ModelSet, Snapshot, TrainConfig};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::registry::{Action, Alias, VersionStatus};
use crate::{Config, Engine};

const GROUPS: usize = 4;
const PER_GROUP: usize = 15;

/// 240 users in 4 taste groups of 15 items each; every user views 12 items of their group, in
/// time order, so the newest ones (the held-out targets) are predictable from the older ones.
fn engine(dir: &std::path::Path) -> Engine {
    engine_with(dir, |_| {})
}

/// [`engine`], with its configuration changed by `configure` first.
pub(crate) fn engine_with(dir: &std::path::Path, configure: impl FnOnce(&mut Config)) -> Engine {
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.models.holdout_share = 0.3;
    config.train.ranker.enabled = false;
    configure(&mut config);
    let engine = Engine::open(config).unwrap();
    if engine.stats().unwrap().events > 0 {
        return engine;
    }
    let items = (0..GROUPS * PER_GROUP)
        .map(|i| Item::new(format!("i{i}")))
        .collect();
    engine.put_items(items).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut events = Vec::new();
    for u in 0..240 {
        let g = u % GROUPS;
        let mut mine: Vec<usize> = (0..PER_GROUP).map(|i| g * PER_GROUP + i).collect();
        mine.shuffle(&mut rng);
        for (n, item) in mine.iter().take(12).enumerate() {
            let at = 1_700_000_000 + (u as i64) * 100 + n as i64 + rng.random_range(0..2);
            events.push(Event::new(format!("u{u}"), format!("i{item}"), "view").at(at));
        }
    }
    engine.add_events(events).unwrap();
    engine
}

/// Random lists: the collaborative items' ids are shuffled, so every learned signal points at
/// the wrong items.
fn scramble(m: &mut ModelSet) {
    let n = m.table.n_cf;
    let mut ids: Vec<String> = m.table.ids.ids().to_vec();
    ids[..n].shuffle(&mut rand::rngs::StdRng::seed_from_u64(5));
    m.table.ids = IdMap::from_ids(ids.clone());
    m.items = IdMap::from_ids(ids[..n].to_vec());
}

fn nan_scores(m: &mut ModelSet) {
    m.popularity.scores.iter_mut().for_each(|s| *s = f32::NAN);
}

/// A model fitted on nothing: no items, no lists.
pub(crate) fn empty(m: &mut ModelSet) {
    let config = TrainConfig {
        model: None,
        ..TrainConfig::default()
    };
    let version = m.version.clone();
    *m = ModelSet::fit_models(&Snapshot::builder().finish(0), &[], &config, 0).unwrap();
    m.version = version;
}

#[test]
fn nan_empty_and_random_models_are_refused_and_never_serve() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let good = engine.train_by("test", &cairn_models::Silent).unwrap();
    assert_eq!(good.status, VersionStatus::Passed, "{:?}", good.refused);
    assert!(good.serving);
    for (what, tamper, failed_check) in [
        (
            "NaN scores",
            nan_scores as fn(&mut ModelSet),
            "finite_scores",
        ),
        ("an empty model", empty, "non_empty_lists"),
        ("random lists", scramble, "ndcg_vs_champion"),
    ] {
        let report = engine.train_tampered("test", &tamper).unwrap();
        assert_eq!(report.status, VersionStatus::Refused, "{what}");
        assert!(!report.serving, "{what}");
        assert!(
            report.refused.iter().any(|r| r.starts_with(failed_check)),
            "{what}: {:?}",
            report.refused
        );
        assert_eq!(engine.model_info().unwrap().version, good.version, "{what}");
        let view = engine.model_version(&report.version).unwrap();
        assert!(!view.champion && !view.challenger, "{what}");
        let e = engine
            .promote_model(&report.version, Alias::Champion, "test", "try")
            .unwrap_err();
        assert_eq!(e.code(), "model_conflict", "{what}");
    }
    // The random model's NDCG is far below the champion's, with an interval that says so.
    let versions = engine.model_versions().unwrap();
    assert_eq!(versions.len(), 4);
    let random = versions.last().unwrap().meta.gate.clone().unwrap();
    let paired = random.ndcg_vs_champion.unwrap();
    assert!(paired.ci_high < 0.0, "{paired:?}");
    // Restarted, the champion is still the good one and the refused ones are still listed.
    drop(engine);
    let engine = self::engine(dir.path());
    assert_eq!(engine.model_info().unwrap().version, good.version);
    let refused = engine
        .model_versions()
        .unwrap()
        .iter()
        .filter(|v| v.meta.status == VersionStatus::Refused)
        .count();
    assert_eq!(refused, 3);
}

#[test]
fn a_better_model_is_promoted_and_a_rollback_brings_the_old_one_back() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    // The first version has no champion to beat: the random one passes the other checks.
    let weak = engine.train_tampered("test", &scramble).unwrap();
    assert!(weak.serving, "{:?}", weak.refused);
    let better = engine.train_by("test", &cairn_models::Silent).unwrap();
    assert!(better.serving, "{:?}", better.refused);
    assert_eq!(engine.model_info().unwrap().version, better.version);
    let meta = engine.model_version(&better.version).unwrap().meta;
    let paired = meta.gate.unwrap().ndcg_vs_champion.unwrap();
    assert!(paired.mean_diff > 0.0 && paired.ci_low > 0.0, "{paired:?}");
    let metrics = meta.metrics.unwrap();
    assert!(metrics.ndcg.unwrap().n > 20);
    let data = meta.data.unwrap();
    assert_eq!(data.events, 240 * 12);
    assert_eq!(data.event_types.get("view"), Some(&(240 * 12)));
    assert!(data.digest.starts_with("sha256:"));
    let holdout = meta.holdout.unwrap();
    assert_eq!(holdout.events, holdout.users * 2);
    assert!(meta.artifact_bytes > 0);
    assert!(meta.code_version.starts_with(env!("CARGO_PKG_VERSION")));

    let entry = engine
        .rollback_model("ops (key_1)", "conversion dropped")
        .unwrap();
    assert_eq!(entry.version, weak.version);
    assert_eq!(entry.previous.as_deref(), Some(better.version.as_str()));
    assert_eq!(engine.model_info().unwrap().version, weak.version);
    let history = engine.model_history().unwrap();
    let actions: Vec<Action> = history.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [Action::Promote, Action::Promote, Action::Rollback]
    );
    assert_eq!(history[2].who, "ops (key_1)");
    assert_eq!(history[0].who, "training (test)");

    // A restart serves the rolled-back-to champion; nothing trains in between.
    drop(engine);
    let engine = self::engine(dir.path());
    assert_eq!(engine.model_info().unwrap().version, weak.version);
    assert!(!engine.has_new_events().unwrap());
    // Another process (the CLI) promotes: the engine serves it once it looks.
    crate::registry::Registry::new(dir.path().join("models"))
        .promote(&better.version, Alias::Champion, "cli", "fixed")
        .unwrap();
    assert_eq!(
        engine.sync_champion().unwrap(),
        Some(better.version.clone())
    );
    assert_eq!(engine.model_info().unwrap().version, better.version);
    assert_eq!(engine.sync_champion().unwrap(), None);
}
