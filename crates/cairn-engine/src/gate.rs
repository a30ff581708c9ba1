//! The frozen held-out slice and the promotion gate.
//!
//! **The slice.** A user is held out when the SHA-256 of `models.holdout_salt`, a zero byte and the
//! user id, read as a number in [0, 1), is below `models.holdout_share`; such a user's newest
//! `models.holdout_events` events in log order (when they have more events than that) are kept out
//! of the served model's training and are the targets of the offline metrics. The rule names no
//! time and no version, so every version is measured on the same users, and because the targets
//! are always the newest events in the log, no version ever trained on the targets it is measured
//! on: a held-out event is either newer than an older version's data, or was held out of it too.
//! The price: those events are missing from the served model's fit (a `holdout_share` of users
//! lose their newest `holdout_events` events, reported in each version's metadata); serving still
//! reads them from the store, so those users' lists still follow their newest actions.
//!
//! **The gate.** The new version's lists for the held-out users and a sample of other users (in
//! hash order, so the same users every time) are ranked by the pipeline the way serving ranks them
//! (the default placement, the user's history before the cut, seen items excluded) and checked:
//! finite scores (in the lists and in the model's own score tables), non-empty lists, catalog
//! coverage, NDCG@k on the held-out targets against the champion's on the same users (paired, with
//! its interval, through `cairn_eval`), and the 99th percentile of one list's scoring time.

use std::collections::HashSet;
use std::time::Instant;

use cairn_core::IdMap;
use cairn_eval::metrics::{catalog_coverage, Relevance};
use cairn_eval::stats::{paired_comparison, quantile_sorted, summarize, CiConfig};
use cairn_pipeline::{Context, HistoryConfig, HistoryEvent, ModelSet, PlacementConfig, Snapshot};
use sha2::{Digest, Sha256};

use crate::config::{GateConfig, ModelsConfig, NdcgRule};
use crate::registry::{GateCheck, GateReport, HoldoutInfo, OfflineMetrics};

/// One user's history (item id, strength, time), oldest first, and held-out targets (none for
/// the sampled users who are not held out).
#[derive(Debug, Clone)]
pub(crate) struct EvalUser {
    pub history: Vec<(String, f32, i64)>,
    pub targets: Vec<String>,
}

/// The held-out users (in hash order) and the other sampled users.
#[derive(Debug, Clone, Default)]
pub(crate) struct Holdout {
    pub held: Vec<EvalUser>,
    pub sample: Vec<EvalUser>,
    pub info: Option<HoldoutInfo>,
}

/// A user id's place in [0, 1) under the salt.
pub(crate) fn user_hash(salt: &str, user: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0]);
    h.update(user.as_bytes());
    let digest = h.finalize();
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (n >> 11) as f64 / (1u64 << 53) as f64
}

/// Splits the snapshot into the events the served model trains on and the held-out slice, and
/// picks the gate's user sample.
pub(crate) fn split(snapshot: &Snapshot, config: &ModelsConfig) -> (Snapshot, Holdout) {
    let n_users = snapshot.users.len();
    let mut by_user: Vec<Vec<usize>> = vec![Vec::new(); n_users];
    for (n, e) in snapshot.events.iter().enumerate() {
        by_user[e.0 as usize].push(n);
    }
    let hashes: Vec<f64> = (0..n_users as u32)
        .map(|u| user_hash(&config.holdout_salt, snapshot.users.id(u)))
        .collect();
    let mut held_out = vec![false; snapshot.events.len()];
    let mut held_users: Vec<u32> = Vec::new();
    for (u, events) in by_user.iter().enumerate() {
        if hashes[u] < config.holdout_share && events.len() > config.holdout_events {
            held_users.push(u as u32);
            for &n in &events[events.len() - config.holdout_events..] {
                held_out[n] = true;
            }
        }
    }
    let mut train = Snapshot::builder();
    for (n, &(u, i, s, t)) in snapshot.events.iter().enumerate() {
        if !held_out[n] {
            train.push(snapshot.users.id(u), snapshot.items.id(i), s, t);
        }
    }
    let mut train = train.finish(snapshot.last_seq);
    train.reference_time = train.reference_time.min(snapshot.reference_time);

    let user_of = |u: u32, with_targets: bool| {
        let mut history = Vec::new();
        let mut targets = Vec::new();
        for &n in &by_user[u as usize] {
            let (_, i, s, t) = snapshot.events[n];
            let item = snapshot.items.id(i).to_string();
            if held_out[n] {
                if with_targets && s > 0.0 {
                    targets.push(item);
                }
            } else {
                history.push((item, s, t));
            }
        }
        EvalUser { history, targets }
    };
    held_users.sort_by(|&a, &b| hashes[a as usize].total_cmp(&hashes[b as usize]));
    let held_events = held_out.iter().filter(|&&h| h).count();
    let held: Vec<EvalUser> = held_users
        .iter()
        .map(|&u| user_of(u, true))
        .filter(|e| !e.targets.is_empty())
        .take(config.holdout_max_users)
        .collect();
    // The sample: the held-out users first, then others by hash, all with some history.
    let mut others: Vec<u32> = (0..n_users as u32)
        .filter(|&u| hashes[u as usize] >= config.holdout_share)
        .collect();
    others.sort_by(|&a, &b| hashes[a as usize].total_cmp(&hashes[b as usize]));
    let sample: Vec<EvalUser> = held_users
        .iter()
        .chain(&others)
        .map(|&u| user_of(u, false))
        .filter(|e| !e.history.is_empty())
        .take(config.gate.sample_users)
        .collect();
    let info = HoldoutInfo {
        salt: config.holdout_salt.clone(),
        share: config.holdout_share,
        events_per_user: config.holdout_events,
        users: held_users.len(),
        events: held_events,
        evaluated_users: held.len(),
    };
    (
        train,
        Holdout {
            held,
            sample,
            info: Some(info),
        },
    )
}

/// How serving would list items for one history: item ids and scores, best first, and the time
/// it took.
fn rank(
    models: &ModelSet,
    user: &EvalUser,
    placement: &PlacementConfig,
    history: &HistoryConfig,
    window: usize,
) -> Ranked {
    let started = Instant::now();
    let cut = user.history.len().saturating_sub(history.history_limit);
    let events: Vec<HistoryEvent> = user.history[cut..]
        .iter()
        .map(|(item, strength, timestamp)| HistoryEvent {
            item: models.table.ids.get(item),
            strength: *strength,
            timestamp: *timestamp,
        })
        .collect();
    let seen: HashSet<u32> = user
        .history
        .iter()
        .filter_map(|(item, _, _)| models.table.ids.get(item))
        .collect();
    let allow = move |i: u32| !seen.contains(&i);
    let ctx = Context::for_history(&models.table, &events, history, &allow, window);
    let ranked = cairn_pipeline::run(models, &ctx, placement);
    let ids = ranked
        .iter()
        .map(|r| models.table.ids.id(r.item).to_string())
        .collect();
    let scores = ranked.iter().map(|r| r.score).collect();
    Ranked {
        ids,
        scores,
        ms: started.elapsed().as_secs_f64() * 1000.0,
    }
}

/// One list as [`rank`] made it.
struct Ranked {
    ids: Vec<String>,
    scores: Vec<f32>,
    /// Scoring time in milliseconds.
    ms: f64,
}

/// The non-finite numbers among the model's own score tables: popularity, trending, the factor
/// model's item vectors.
fn non_finite_in_model(models: &ModelSet) -> usize {
    let bad = |v: &[f32]| v.iter().filter(|x| !x.is_finite()).count();
    let mut n = bad(&models.popularity.scores) + bad(&models.trending.scores);
    if let Some((vectors, _)) = models
        .main
        .as_ref()
        .and_then(cairn_pipeline::retrieve::item_vectors)
    {
        n += bad(vectors);
    }
    n
}

/// One version measured on the slice: per held-out user NDCG@k (in `holdout.held`'s order) and
/// the metrics.
pub(crate) struct Measured {
    pub ndcg: Vec<f64>,
    pub metrics: OfflineMetrics,
}

pub(crate) fn measure(
    models: &ModelSet,
    holdout: &Holdout,
    gate: &GateConfig,
    placement: &PlacementConfig,
    history: &HistoryConfig,
    catalog_size: usize,
) -> Measured {
    let k = gate.k;
    let mut ids = IdMap::new();
    let mut ndcg = Vec::with_capacity(holdout.held.len());
    for user in &holdout.held {
        let list = rank(models, user, placement, history, k).ids;
        let ranked: Vec<u32> = list.iter().map(|i| ids.intern(i)).collect();
        let mut targets: Vec<u32> = user.targets.iter().map(|i| ids.intern(i)).collect();
        targets.sort_unstable();
        targets.dedup();
        ndcg.push(
            Relevance::new(&ranked, &targets, None)
                .ndcg(k)
                .unwrap_or(f64::NAN),
        );
    }
    let mut non_finite = non_finite_in_model(models);
    let mut lists: Vec<Vec<u32>> = Vec::with_capacity(holdout.sample.len());
    let mut times = Vec::with_capacity(holdout.sample.len());
    let mut sample_ids = IdMap::new();
    let mut eligible = 0;
    let mut nonempty = 0;
    for user in &holdout.sample {
        let r = rank(models, user, placement, history, k);
        non_finite += r.scores.iter().filter(|s| !s.is_finite()).count();
        times.push(r.ms);
        // A user who has seen as many items as the catalog holds rightly gets an empty list.
        let seen: HashSet<&str> = user.history.iter().map(|(i, _, _)| i.as_str()).collect();
        if seen.len() < catalog_size {
            eligible += 1;
            nonempty += usize::from(!r.ids.is_empty());
        }
        lists.push(r.ids.iter().map(|i| sample_ids.intern(i)).collect());
    }
    times.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        if times.is_empty() {
            0.0
        } else {
            quantile_sorted(&times, q)
        }
    };
    let sampled = lists.len();
    let metrics = OfflineMetrics {
        k,
        ndcg: (!holdout.held.is_empty()).then(|| summarize(&ndcg, &CiConfig::default()).into()),
        coverage: catalog_coverage(lists.iter().map(Vec::as_slice), catalog_size, k),
        sampled_users: sampled,
        listable_users: eligible,
        nonempty_share: if eligible == 0 {
            1.0
        } else {
            nonempty as f64 / eligible as f64
        },
        non_finite,
        p50_ms: quantile(0.5),
        p99_ms: quantile(0.99),
    };
    Measured { ndcg, metrics }
}

/// The gate's verdict on `new`, against the champion's measurement on the same slice if any.
pub(crate) fn decide(
    new: &Measured,
    champion: Option<(&str, &Measured)>,
    gate: &GateConfig,
) -> GateReport {
    let m = &new.metrics;
    let mut checks = vec![
        GateCheck {
            name: "finite_scores".into(),
            passed: m.non_finite == 0,
            detail: format!(
                "{} non-finite numbers in the model's score tables and the sample's lists",
                m.non_finite
            ),
        },
        GateCheck {
            name: "non_empty_lists".into(),
            passed: m.nonempty_share >= gate.min_nonempty_share,
            detail: format!(
                "{:.1}% of {} sampled users with an unseen item left got a non-empty list (floor \
                 {:.1}%)",
                m.nonempty_share * 100.0,
                m.listable_users,
                gate.min_nonempty_share * 100.0
            ),
        },
        GateCheck {
            name: "coverage".into(),
            // Users who have seen everything have no list to cover anything with.
            passed: m.listable_users == 0 || m.coverage >= gate.coverage_floor,
            detail: format!(
                "the sample's top-{} lists reach {:.2}% of the catalog (floor {:.2}%)",
                m.k,
                m.coverage * 100.0,
                gate.coverage_floor * 100.0
            ),
        },
    ];
    let mut paired = None;
    match champion {
        Some((version, _)) if new.ndcg.len() < gate.min_holdout_users => checks.push(GateCheck {
            name: "ndcg_vs_champion".into(),
            passed: true,
            detail: format!(
                "{} held-out users are too few to compare with champion {version} on (models.gate.\
                 min_holdout_users = {})",
                new.ndcg.len(),
                gate.min_holdout_users
            ),
        }),
        Some((version, champ)) => {
            let c = paired_comparison(&new.ndcg, &champ.ndcg, &CiConfig::default());
            let (figure, rule) = match gate.ndcg_rule {
                NdcgRule::Mean => (c.mean_diff, "mean"),
                NdcgRule::LowerBound => (c.ci_low, "interval's lower bound"),
                NdcgRule::UpperBound => (c.ci_high, "interval's upper bound"),
            };
            // A NaN bound (too few users for an interval) falls back to the mean.
            let figure = if figure.is_nan() { c.mean_diff } else { figure };
            let passed = c.n == 0 || figure >= -gate.ndcg_tolerance;
            checks.push(GateCheck {
                name: "ndcg_vs_champion".into(),
                passed,
                detail: format!(
                    "NDCG@{} minus champion {version}'s: {:+.4} (95% interval {:+.4} to {:+.4}, {} \
                     held-out users, paired); the {rule} must be at least -{}",
                    m.k, c.mean_diff, c.ci_low, c.ci_high, c.n, gate.ndcg_tolerance
                ),
            });
            paired = Some(c.into());
        }
        None => checks.push(GateCheck {
            name: "ndcg_vs_champion".into(),
            passed: true,
            detail: "no champion yet: the first version passes without a comparison".into(),
        }),
    }
    checks.push(GateCheck {
        name: "latency_p99".into(),
        passed: m.p99_ms <= gate.p99_budget_ms,
        detail: format!(
            "p99 of one list's scoring over {} users: {:.2} ms (budget {} ms)",
            m.sampled_users, m.p99_ms, gate.p99_budget_ms
        ),
    });
    GateReport {
        passed: checks.iter().all(|c| c.passed),
        checks,
        champion: champion.map(|(v, _)| v.to_string()),
        ndcg_vs_champion: paired,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        let mut b = Snapshot::builder();
        for u in 0..400 {
            for i in 0..5 {
                b.push(
                    &format!("u{u}"),
                    &format!("i{}", (u + i) % 30),
                    1.0,
                    1000 + i as i64,
                );
            }
        }
        b.finish(2000)
    }

    #[test]
    fn the_slice_is_the_same_users_newest_events_whatever_the_rest_of_the_log() {
        let config = ModelsConfig {
            holdout_share: 0.1,
            ..ModelsConfig::default()
        };
        let (train, h) = split(&snapshot(), &config);
        let info = h.info.clone().unwrap();
        assert!((20..=60).contains(&info.users), "{info:?}");
        assert_eq!(info.events, info.users * config.holdout_events);
        assert_eq!(train.events.len(), 400 * 5 - info.events);
        for user in &h.held {
            assert_eq!(user.history.len(), 3);
            assert_eq!(user.targets.len(), 2);
        }
        // Held-out users come first in the sample.
        assert_eq!(h.sample[0].history, h.held[0].history);
        assert_eq!(h.sample.len(), config.gate.sample_users);
        // The hash depends on the salt and the id only.
        assert_eq!(user_hash("s", "u1"), user_hash("s", "u1"));
        assert_ne!(user_hash("s", "u1"), user_hash("t", "u1"));
        let (_, again) = split(&snapshot(), &config);
        assert_eq!(again.held.len(), h.held.len());
        assert_eq!(again.held[0].targets, h.held[0].targets);
    }

    fn measured(ndcg: Vec<f64>) -> Measured {
        Measured {
            ndcg,
            metrics: OfflineMetrics {
                k: 10,
                ndcg: None,
                coverage: 0.5,
                sampled_users: 43,
                listable_users: 43,
                nonempty_share: 1.0,
                non_finite: 0,
                p50_ms: 1.0,
                p99_ms: 2.0,
            },
        }
    }

    /// A small slice like the soak run's (43 users, mean difference -0.02, an interval that
    /// reaches 0): each rule decides as documented.
    #[test]
    fn the_ndcg_rule_decides_on_the_mean_or_a_bound_of_its_interval() {
        let champion: Vec<f64> = (0..43).map(|u| 0.2 + (u % 5) as f64 * 0.05).collect();
        // 8 users lose 0.1075, the others nothing: mean -0.02.
        let new: Vec<f64> = champion
            .iter()
            .enumerate()
            .map(|(u, c)| if u % 5 == 1 && u < 40 { c - 0.1075 } else { *c })
            .collect();
        let (champ, new) = (measured(champion), measured(new));
        let verdict = |rule: NdcgRule| {
            let gate = GateConfig {
                ndcg_tolerance: 0.015,
                min_holdout_users: 30,
                ndcg_rule: rule,
                ..GateConfig::default()
            };
            let report = decide(&new, Some(("c", &champ)), &gate);
            let paired = report.ndcg_vs_champion.unwrap();
            assert!((paired.mean_diff + 0.02).abs() < 1e-9, "{paired:?}");
            assert!(
                paired.ci_low < -0.015 && paired.ci_high > -0.015,
                "{paired:?}"
            );
            let check = report
                .checks
                .iter()
                .find(|c| c.name == "ndcg_vs_champion")
                .unwrap()
                .clone();
            (check.passed, check.detail)
        };
        let (passed, detail) = verdict(NdcgRule::Mean);
        assert!(
            !passed && detail.contains("the mean must be at least -0.015"),
            "{detail}"
        );
        assert!(!verdict(NdcgRule::LowerBound).0);
        let (passed, detail) = verdict(NdcgRule::UpperBound);
        assert!(passed && detail.contains("upper bound"), "{detail}");
        // The same version on the same users: every rule passes.
        for rule in [NdcgRule::Mean, NdcgRule::LowerBound, NdcgRule::UpperBound] {
            let gate = GateConfig {
                ndcg_rule: rule,
                ..GateConfig::default()
            };
            assert!(
                decide(&champ, Some(("c", &champ)), &gate).passed,
                "{rule:?}"
            );
        }
    }
}
