//! The calibration and popularity re-rankers inside the served pipeline (`cairn_pipeline::run`)
//! on a small fitted model set: off by default, a permutation of a subset of the candidates, and
//! moving the list's category mix and popularity the way each knob says.

use std::collections::HashSet;

use cairn_core::Item;
use cairn_pipeline::fairness::Calibration;
use cairn_pipeline::retrieve::retrieve;
use cairn_pipeline::{
    run, Context, HistoryConfig, HistoryEvent, ModelSet, PlacementConfig, Snapshot, TrainConfig,
};

const GENRES: [&str; 3] = ["drama", "comedy", "horror"];

/// 120 users over 60 items; low item numbers are far more popular; item i's genre is i mod 3.
fn fitted() -> ModelSet {
    let mut b = Snapshot::builder();
    for u in 0..120u32 {
        for t in 0..15u32 {
            // A skewed draw: the range grows with the user, so the first items are everyone's.
            let item = (u * 7 + t * t * 3 + t) % (8 + u % 52);
            b.push(
                &format!("u{u}"),
                &format!("i{item}"),
                1.0,
                i64::from(u * 100 + t),
            );
        }
    }
    let catalog: Vec<Item> = (0..60)
        .map(|i| {
            let mut item = Item::new(format!("i{i}"));
            item.categories = vec![GENRES[i % 3].to_string()];
            item
        })
        .collect();
    let snapshot = b.finish(1800);
    let history = history_config();
    let placement = plain();
    ModelSet::fit(
        &snapshot,
        &catalog,
        &TrainConfig::default(),
        &history,
        &placement,
        1,
    )
    .unwrap()
}

fn history_config() -> HistoryConfig {
    HistoryConfig {
        history_limit: 100,
        recent_items: 20,
        recency_half_life_days: 30.0,
    }
}

/// No exploration and no reserved slots, so that only the knobs move the list.
fn plain() -> PlacementConfig {
    PlacementConfig {
        exploration: 0.0,
        new_item_slots: 0,
        ..PlacementConfig::default()
    }
}

/// A horror fan (8 of 10 history items) with 2 dramas, all among the popular items.
const HORROR_FAN: [u32; 10] = [2, 5, 8, 11, 14, 17, 20, 23, 0, 3];

/// Half of the history in the long tail (items 45 and up are rarely drawn), half in the head:
/// the popularity correction aims a list at the user's own long-tail share, so a user whose
/// history is all head (the horror fan) is not one it moves away from popular items.
const HALF_TAIL: [u32; 10] = [45, 47, 49, 51, 53, 1, 4, 7, 10, 13];

fn history(m: &ModelSet) -> Vec<HistoryEvent> {
    history_of(m, &HORROR_FAN)
}

fn history_of(m: &ModelSet, ids: &[u32]) -> Vec<HistoryEvent> {
    ids.iter()
        .enumerate()
        .map(|(t, i)| HistoryEvent {
            item: m.table.ids.get(&format!("i{i}")),
            strength: 1.0,
            timestamp: t as i64,
        })
        .collect()
}

fn list(m: &ModelSet, placement: &PlacementConfig) -> (Vec<u32>, Vec<u32>) {
    list_for(m, placement, &HORROR_FAN)
}

fn list_for(m: &ModelSet, placement: &PlacementConfig, ids: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let events = history_of(m, ids);
    let seen: HashSet<u32> = events.iter().filter_map(|e| e.item).collect();
    let allow = |i: u32| !seen.contains(&i);
    let ctx = Context::for_history(&m.table, &events, &history_config(), &allow, 10);
    let candidates = retrieve(m, &ctx, placement)
        .candidates
        .iter()
        .map(|c| c.item)
        .collect();
    let items = run(m, &ctx, placement).iter().map(|r| r.item).collect();
    (items, candidates)
}

fn kl(m: &ModelSet, items: &[u32]) -> f64 {
    let events = history(m);
    let n = m.table.categories.len();
    let mix = Calibration::history_mix(
        events
            .iter()
            .filter_map(|e| e.item)
            .map(|i| (m.table.categories_of(i), 1.0)),
        n,
    );
    let mut c = Calibration::new(1.0, mix, n).unwrap();
    for &i in items {
        c.add(m.table.categories_of(i));
    }
    c.kl()
}

fn mean_interactions(m: &ModelSet, items: &[u32]) -> f64 {
    items
        .iter()
        .map(|&i| f64::from(m.table.interactions[i as usize]))
        .sum::<f64>()
        / items.len() as f64
}

#[test]
fn knobs_at_zero_leave_the_list_unchanged() {
    let m = fitted();
    let (base, _) = list(&m, &plain());
    assert_eq!(base.len(), 10);
    let zero = PlacementConfig {
        calibration_lambda: 0.0,
        popularity_lambda: 0.0,
        short_head_share: 0.5,
        ..plain()
    };
    assert_eq!(list(&m, &zero).0, base);
}

#[test]
fn each_setting_lists_distinct_candidates() {
    let m = fitted();
    for (lc, lp) in [(0.3, 0.0), (1.0, 0.0), (0.0, 0.4), (0.0, 1.0), (0.5, 0.5)] {
        let placement = PlacementConfig {
            calibration_lambda: lc,
            popularity_lambda: lp,
            ..plain()
        };
        let (items, candidates) = list(&m, &placement);
        assert_eq!(items.len(), 10, "λ = ({lc}, {lp})");
        let distinct: HashSet<u32> = items.iter().copied().collect();
        assert_eq!(distinct.len(), items.len(), "λ = ({lc}, {lp})");
        assert!(items.iter().all(|i| candidates.contains(i)));
    }
}

#[test]
fn calibration_lowers_kl_and_the_popularity_knob_lowers_popularity() {
    let m = fitted();
    let (base, _) = list(&m, &plain());
    let calibrated = list(
        &m,
        &PlacementConfig {
            calibration_lambda: 0.9,
            ..plain()
        },
    )
    .0;
    assert!(
        kl(&m, &calibrated) < kl(&m, &base),
        "{} vs {}",
        kl(&m, &calibrated),
        kl(&m, &base)
    );
    let (base, _) = list_for(&m, &plain(), &HALF_TAIL);
    let corrected = list_for(
        &m,
        &PlacementConfig {
            popularity_lambda: 0.9,
            ..plain()
        },
        &HALF_TAIL,
    )
    .0;
    assert!(
        mean_interactions(&m, &corrected) < mean_interactions(&m, &base),
        "{} vs {}",
        mean_interactions(&m, &corrected),
        mean_interactions(&m, &base)
    );
}
