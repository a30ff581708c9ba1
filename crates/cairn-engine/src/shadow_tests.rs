//! Shadow tests and guardrails on real trainings (the gate tests' world: 240 users in 4 taste
//! groups): the challenger scores off the request path, its lists are compared with the served
//! ones, the queue drops when full, engagement is credited, and a breach rolls the champion back.

use crate::gate_tests::{empty, engine_with};
use crate::registry::{Action, Alias};
use crate::shadow::sampled;
use crate::{Config, Engine, RecommendRequest};
use cairn_core::Event;

fn request(user: &str) -> RecommendRequest {
    RecommendRequest {
        user_id: user.into(),
        k: 10,
        exclude_seen: true,
        ..RecommendRequest::default()
    }
}

fn shadowed(dir: &std::path::Path, configure: impl FnOnce(&mut Config)) -> Engine {
    engine_with(dir, |c| {
        c.shadow.enabled = true;
        c.shadow.sample_share = 1.0;
        configure(c);
    })
}

#[test]
fn sampling_is_by_user_and_keeps_about_its_share() {
    let users: Vec<String> = (0..20_000).map(|u| format!("user-{u}")).collect();
    let share = |s: f64| users.iter().filter(|u| sampled("salt", u, s)).count();
    assert_eq!(share(0.0), 0);
    assert_eq!(share(1.0), users.len());
    let n = share(0.25) as f64 / users.len() as f64;
    assert!((0.235..0.265).contains(&n), "{n}");
    // The same user is always in or out; another salt samples other users.
    assert_eq!(sampled("salt", "u1", 0.5), sampled("salt", "u1", 0.5));
    let differ = users
        .iter()
        .filter(|u| sampled("salt", u, 0.5) != sampled("other", u, 0.5))
        .count();
    assert!(differ > 5000, "{differ}");
}

#[test]
fn the_champion_as_its_own_challenger_agrees_fully() {
    let dir = tempfile::tempdir().unwrap();
    let engine = shadowed(dir.path(), |_| {});
    let v = engine.train().unwrap().version;
    engine
        .promote_model(&v, Alias::Challenger, "test", "shadow itself")
        .unwrap();
    for u in 0..40 {
        engine.recommend(&request(&format!("u{u}"))).unwrap();
    }
    // Pages after the first are not shadowed.
    let first = engine.recommend(&request("u1")).unwrap();
    let cursor = first.next_cursor.expect("a second page");
    engine
        .recommend(&RecommendRequest {
            cursor: Some(cursor),
            ..request("u1")
        })
        .unwrap();
    assert_eq!(engine.run_shadow_queue(), 41);
    let report = engine.shadow_report();
    assert_eq!((report.sampled, report.dropped, report.queued), (41, 0, 0));
    assert_eq!(report.challenger.as_deref(), Some(v.as_str()));
    let c = &report.versions[0];
    assert_eq!(
        (c.version.as_str(), c.scored, c.errors),
        (v.as_str(), 41, 0)
    );
    for (what, m) in [("overlap", c.overlap), ("rbo", c.rbo), ("tau", c.tau)] {
        assert_eq!(m.n, 41, "{what}");
        assert!((m.mean - 1.0).abs() < 1e-9, "{what}: {m:?}");
    }
    assert_eq!((c.added_items, c.removed_items), (0, 0));
    assert_eq!(c.latency.n, 41);
    assert_eq!(c.latency_buckets.iter().sum::<u64>(), 41);
    assert_eq!(report.pending_users, 0);
}

#[test]
fn another_challenger_is_compared_and_engagement_with_its_items_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    // An older version is the challenger of one trained on more events (whatever their NDCG).
    let engine = shadowed(dir.path(), |c| c.models.gate.ndcg_tolerance = 1.0);
    let old = engine.train().unwrap().version;
    let events: Vec<Event> = (0..240)
        .map(|u| Event::new(format!("u{u}"), format!("i{}", (u * 7) % 60), "purchase"))
        .collect();
    engine.add_events(events).unwrap();
    let new = engine.train().unwrap().version;
    assert_ne!(old, new);
    engine
        .promote_model(&old, Alias::Challenger, "test", "compare")
        .unwrap();
    let mut served = std::collections::HashMap::new();
    for u in 0..60 {
        let user = format!("u{u}");
        let list = engine.recommend(&request(&user)).unwrap();
        served.insert(
            user,
            list.items
                .iter()
                .map(|r| r.item_id.clone())
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(engine.run_shadow_queue(), 60);
    let report = engine.shadow_report();
    let c = report
        .versions
        .iter()
        .find(|c| c.version == old)
        .expect("the challenger's figures");
    assert_eq!((c.scored, c.errors), (60, 0));
    for m in [c.overlap, c.rbo] {
        assert!((0.0..=1.0).contains(&m.mean), "{m:?}");
        assert!(m.ci_low <= m.mean && m.mean <= m.ci_high, "{m:?}");
    }
    assert!((-1.0..=1.0).contains(&c.tau.mean), "{:?}", c.tau);
    // Both lists have 10 items: every item added pushed one out.
    assert_eq!(c.added_items, c.removed_items);
    assert!(c.added_items > 0, "the two versions list the same items");

    // A user engages with one item the challenger would have added and one it would have
    // removed; another event on neither counts for nothing, and a repeat counts once.
    let (user, all_added, all_removed) = {
        let state = engine.monitor.state.lock().unwrap();
        let (user, p) = state
            .pending
            .iter()
            .find(|(_, p)| !p.added.is_empty() && !p.removed.is_empty())
            .expect("a user whose list the challenger changes");
        (user.clone(), p.added.clone(), p.removed.clone())
    };
    let (added, removed) = (all_added[0].clone(), all_removed[0].clone());
    assert!(!served[&user].contains(&added) && served[&user].contains(&removed));
    let unrelated = (0..60)
        .map(|i| format!("i{i}"))
        .find(|i| !all_added.contains(i) && !all_removed.contains(i))
        .unwrap();
    let event = |item: &str, id: &str| {
        let mut e = Event::new(user.clone(), item.to_string(), "view");
        e.event_id = Some(id.into());
        e
    };
    engine
        .add_events(vec![
            event(&added, "e1"),
            event(&removed, "e2"),
            event(&unrelated, "e3"),
        ])
        .unwrap();
    engine.add_events(vec![event(&added, "e4")]).unwrap();
    let c = engine
        .shadow_report()
        .versions
        .into_iter()
        .find(|c| c.version == old)
        .unwrap();
    assert_eq!((c.added_engaged, c.removed_engaged), (1, 1));
}

#[test]
fn a_full_queue_drops_the_shadow_work_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = shadowed(dir.path(), |c| c.shadow.queue_capacity = 3);
    let v = engine.train().unwrap().version;
    engine
        .promote_model(&v, Alias::Challenger, "test", "shadow")
        .unwrap();
    // No monitor thread: nothing takes from the queue until the test drains it.
    for u in 0..10 {
        let list = engine.recommend(&request(&format!("u{u}"))).unwrap();
        assert_eq!(list.items.len(), 10);
    }
    let report = engine.shadow_report();
    assert_eq!((report.sampled, report.dropped, report.queued), (10, 7, 3));
    assert_eq!(engine.run_shadow_queue(), 3);
    assert_eq!(engine.shadow_report().versions[0].scored, 3);
}

#[test]
fn without_a_challenger_nothing_is_scored_and_that_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let engine = shadowed(dir.path(), |c| c.shadow.sample_share = 0.5);
    engine.train().unwrap();
    for u in 0..100 {
        engine.recommend(&request(&format!("u{u}"))).unwrap();
    }
    let sampled_users = (0..100)
        .filter(|u| sampled("cairn-shadow-1", &format!("u{u}"), 0.5))
        .count() as u64;
    let report = engine.shadow_report();
    assert_eq!(report.sampled, sampled_users);
    assert_eq!(engine.run_shadow_queue() as u64, sampled_users);
    let report = engine.shadow_report();
    assert_eq!(report.no_challenger, sampled_users);
    assert!(report.versions.is_empty());
}

/// A configuration under which the gate lets an empty model through (no NDCG, list or coverage
/// check), so only the guardrail stands between it and the users.
fn permissive_gate(c: &mut Config) {
    c.models.gate.min_nonempty_share = 0.0;
    c.models.gate.coverage_floor = 0.0;
    c.models.gate.ndcg_tolerance = 1.0;
    c.models.guardrails.enabled = true;
    c.models.guardrails.min_requests = 20;
    c.models.guardrails.max_empty_rate = 0.5;
}

#[test]
fn a_champion_with_empty_lists_is_rolled_back_by_the_guardrail() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(dir.path(), permissive_gate);
    let good = engine.train().unwrap();
    assert!(good.serving);
    let bad = engine.train_tampered("test", &empty).unwrap();
    assert!(bad.serving, "{:?}", bad.refused);
    assert_eq!(engine.model_info().unwrap().version, bad.version);
    // Too few requests yet: no verdict.
    for u in 0..19 {
        assert!(engine
            .recommend(&request(&format!("u{u}")))
            .unwrap()
            .items
            .is_empty());
    }
    assert!(engine.check_guardrail().is_none());
    // Requests with a filter or category are not judged on emptiness; later pages not at all.
    let mut filtered = request("u1");
    filtered.filter = Some("not seen".into());
    for _ in 0..5 {
        engine.recommend(&filtered).unwrap();
    }
    let g = engine.shadow_report().guardrail;
    assert_eq!(
        (g.watching.as_deref(), g.requests, g.eligible, g.empty),
        (Some(bad.version.as_str()), 24, 19, 19)
    );
    engine.recommend(&request("u30")).unwrap();
    let entry = engine.check_guardrail().expect("a rollback");
    assert_eq!(entry.action, Action::Rollback);
    assert_eq!(entry.who, "guardrail");
    assert_eq!(entry.version, good.version);
    assert_eq!(entry.previous.as_deref(), Some(bad.version.as_str()));
    assert!(
        entry.reason.contains("empty-list rate 1.000"),
        "{}",
        entry.reason
    );
    assert_eq!(engine.model_info().unwrap().version, good.version);
    assert_eq!(engine.guardrail_rollbacks(), 1);
    let last = engine.model_history().unwrap().pop().unwrap();
    assert_eq!(last, entry);
    // The watch ended: the restored champion is not judged, and serves lists again.
    assert!(!engine.recommend(&request("u1")).unwrap().items.is_empty());
    assert!(engine.check_guardrail().is_none());
    assert_eq!(engine.shadow_report().guardrail.watching, None);
}

#[test]
fn a_healthy_champion_is_not_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(dir.path(), permissive_gate);
    engine.train().unwrap();
    let second = engine.train().unwrap();
    assert!(second.serving);
    for u in 0..60 {
        engine.recommend(&request(&format!("u{u}"))).unwrap();
    }
    assert!(engine.check_guardrail().is_none());
    let g = engine.shadow_report().guardrail;
    assert_eq!((g.requests, g.empty, g.rollbacks), (60, 0, 0));
    assert_eq!(engine.model_info().unwrap().version, second.version);
}
