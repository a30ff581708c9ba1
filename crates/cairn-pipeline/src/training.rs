//! Training the learned ranker on a time split of the event log: the newest events (each user's,
//! the whole log's, or both) are held out, the retrievers are fitted on the rest, the pipeline
//! generates candidates for those users, and the ranker learns which candidates they went on to
//! choose. It therefore learns to
//! predict what happens next, with features computed by the same code that serves.

use std::collections::{HashMap, HashSet};

use cairn_rank::{mean_ndcg, Ranker, RankerConfig, RankingData};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::features;
use crate::fusion::{fusion_head, fusion_score};
use crate::model_set::{ModelSet, TrainedRanker};
use crate::placement::PlacementConfig;
use crate::request::{Context, HistoryConfig, HistoryEvent};
use crate::retrieve::{self, Candidate};
use crate::snapshot::Snapshot;
use crate::PipelineError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RankerTrainConfig {
    pub enabled: bool,
    /// The newest share of events that the ranker learns to predict from the rest (of each user's
    /// events, of the whole log, or both; see `label_split`).
    pub label_fraction: f64,
    /// Which events are the labels.
    pub label_split: LabelSplit,
    /// Users' candidate lists the ranker learns from, over all cuts (a fifth of the users
    /// validate). A log with fewer active users is cut at several points of each user's history.
    pub max_users: usize,
    /// Most cuts of a small log; each one refits the retrievers on its own past.
    pub max_cuts: usize,
    /// Logs smaller than this train no ranker (candidates are then fused by rank).
    pub min_events: usize,
    /// Training users with at least one chosen candidate needed to keep a ranker.
    pub min_groups: usize,
    pub trees: usize,
    pub learning_rate: f32,
    pub max_leaves: usize,
    pub min_data_in_leaf: usize,
    /// Rounds without improvement on the validation users before training stops; 0 = never.
    pub early_stopping_rounds: usize,
    pub seed: u64,
    /// Check the ranker before it serves: the same training is repeated on the log without its
    /// newest `label_fraction` of events (one time cut, as the next period looks), and the ranker
    /// serves only if, on those events, its NDCG@10 beats the best single retriever's by more than
    /// one standard error of the paired difference; otherwise that retriever orders the served
    /// lists (`cairn_pipeline::guard`). Costs a second ranker training. Off by default: measured on
    /// the four temporal splits (docs/bench/pipeline-guard.md) it gave up the ranker's gain on the
    /// per-user cuts and still served below item-kNN on both global cuts.
    pub guard: bool,
}

impl Default for RankerTrainConfig {
    fn default() -> Self {
        RankerTrainConfig {
            enabled: true,
            label_fraction: 0.2,
            label_split: LabelSplit::UserTails,
            max_users: 4000,
            max_cuts: 8,
            min_events: 5000,
            min_groups: 50,
            trees: 200,
            learning_rate: 0.05,
            max_leaves: 15,
            min_data_in_leaf: 100,
            early_stopping_rounds: 0,
            seed: 42,
            guard: false,
        }
    }
}

/// How the ranker's training log is cut into what it sees and what it learns to predict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelSplit {
    /// Each user's own newest events: every active user contributes.
    UserTails,
    /// The newest events of the whole log, as the period after a training would be: trends and
    /// popularity are those of that moment, but only users active at the end contribute.
    Time,
    /// Examples from both cuts, each with retrievers fitted on its own past.
    Both,
}

/// A held-out event the ranker learns to predict: (user id, item id, strength).
pub(crate) type LabelEvent = (String, String, f32);

/// Users' candidate lists with features and labels from one time split.
pub struct RankingExamples {
    pub data: RankingData,
    /// Fusion scores of the same rows, to compare the ranker against.
    pub fusion: Vec<f32>,
}

impl RankingExamples {
    fn new() -> Self {
        RankingExamples {
            data: RankingData::new(features::N_FEATURES),
            fusion: Vec::new(),
        }
    }

    /// Adds the groups of `other` after this one's.
    fn append(&mut self, other: RankingExamples) {
        let d = &mut self.data;
        d.features.extend_from_slice(&other.data.features);
        d.labels.extend_from_slice(&other.data.labels);
        d.group_sizes.extend_from_slice(&other.data.group_sizes);
        self.fusion.extend_from_slice(&other.fusion);
    }
}

/// Events of each user, oldest first, as (item, strength, time) in the snapshot's indices.
pub(crate) fn per_user(events: &[(u32, u32, f32, i64)]) -> HashMap<u32, Vec<(u32, f32, i64)>> {
    let mut by_user: HashMap<u32, Vec<(u32, f32, i64)>> = HashMap::new();
    for &(u, i, s, t) in events {
        by_user.entry(u).or_default().push((i, s, t));
    }
    for list in by_user.values_mut() {
        list.sort_by_key(|e| e.2);
    }
    by_user
}

/// Builds examples, one set per group of users, for users of `future` (their held-out events)
/// against `models` fitted on `past`.
pub fn examples(
    models: &ModelSet,
    past: &Snapshot,
    future: &[LabelEvent],
    serve: &HistoryConfig,
    placement: &PlacementConfig,
    user_groups: &[&[String]],
) -> Vec<RankingExamples> {
    let past_by_user = per_user(&past.events);
    let mut wanted: HashMap<&str, HashSet<u32>> = HashMap::new();
    for (u, i, s) in future {
        if *s > 0.0 {
            if let Some(t) = models.table.ids.get(i) {
                wanted.entry(u.as_str()).or_default().insert(t);
            }
        }
    }
    let mut rows = Vec::new();
    let mut sets = Vec::with_capacity(user_groups.len());
    for users in user_groups {
        let mut out = RankingExamples::new();
        for user in users.iter() {
            let Some(targets) = wanted.get(user.as_str()) else {
                continue;
            };
            let history = past_history(models, past, &past_by_user, user, serve);
            let seen: HashSet<u32> = history.iter().filter_map(|e| e.item).collect();
            let allow = |i: u32| !seen.contains(&i);
            let ctx = Context::for_history(&models.table, &history, serve, &allow, 0);
            let r = retrieve::retrieve(models, &ctx, placement);
            // The ranker only ever sees the head of the fusion order, so it learns on that.
            let fusion: Vec<f32> = r.candidates.iter().map(fusion_score).collect();
            let order = fusion_head(&fusion, placement.ranker_candidates);
            let head: Vec<Candidate> = order.iter().map(|&c| r.candidates[c].clone()).collect();
            let labels: Vec<f32> = head
                .iter()
                .map(|c| targets.contains(&c.item) as u8 as f32)
                .collect();
            if !labels.iter().any(|&l| l > 0.0) {
                continue;
            }
            rows.clear();
            features::compute_with(models, &ctx.activity, &r, &head, &mut rows);
            // A group the ranker refuses (a non-finite feature) is left out with its fusion scores.
            if out.data.push_group(&rows, &labels).is_ok() {
                out.fusion.extend(order.iter().map(|&c| fusion[c]));
            }
        }
        sets.push(out);
    }
    sets
}

/// What serving would see of `user`'s history in `past`: their newest `history_limit` events,
/// oldest first, on the item table of `models` (fitted on `past`).
pub(crate) fn past_history(
    models: &ModelSet,
    past: &Snapshot,
    past_by_user: &HashMap<u32, Vec<(u32, f32, i64)>>,
    user: &str,
    serve: &HistoryConfig,
) -> Vec<HistoryEvent> {
    past.users
        .get(user)
        .and_then(|u| past_by_user.get(&u))
        .map(|evs| {
            evs.iter()
                .rev()
                .take(serve.history_limit)
                .rev()
                .map(|&(i, s, t)| HistoryEvent {
                    item: models.table.ids.get(past.items.id(i)),
                    strength: s,
                    timestamp: t,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Users with fewer events than this are never cut: what is left of their history says too little.
const MIN_EVENTS_TO_CUT: usize = 5;

/// One way of cutting the log into a past the retrievers are fitted on and a future the ranker
/// learns to predict.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cut {
    /// Each user's newest share of events.
    UserTails(f64),
    /// The log's newest share of events.
    Newest(f64),
}

impl Cut {
    fn split(self, snapshot: &Snapshot) -> (Snapshot, Vec<LabelEvent>) {
        match self {
            Cut::UserTails(f) => snapshot.split_user_tails(f, MIN_EVENTS_TO_CUT),
            Cut::Newest(f) => snapshot.split_newest(f),
        }
    }
}

/// The cuts the ranker learns from. Users' own newest events let every active user contribute;
/// a cut at one time shows what the period after a training looks like (its trends, the users
/// active then) but leaves only the users active at the end. User tails are the default: on
/// per-user temporal tests they are clearly best, and on a next-period test no cut made the ranker
/// beat item-kNN (docs/bench/pipeline.md, "Which events the ranker learns from").
///
/// A log with fewer active users than `max_users` is cut at several points of each user's history
/// (up to `max_cuts`, spread evenly over twice `label_fraction`, so one cut is `label_fraction`
/// itself): the same users then give the ranker more lists to learn from, which is what a small
/// log lacks most (docs/bench/pipeline.md, "Several cuts of a small log").
fn label_cuts(snapshot: &Snapshot, cfg: &RankerTrainConfig) -> Vec<Cut> {
    let tails = || {
        let mut per_user = vec![0usize; snapshot.users.len()];
        for e in &snapshot.events {
            per_user[e.0 as usize] += 1;
        }
        let active = per_user.iter().filter(|&&n| n >= MIN_EVENTS_TO_CUT).count();
        let k = cfg
            .max_users
            .div_ceil(active.max(1))
            .clamp(1, cfg.max_cuts.max(1));
        let span = (2.0 * cfg.label_fraction).min(1.0);
        (1..=k)
            .map(|j| Cut::UserTails(span * j as f64 / (k + 1) as f64))
            .collect::<Vec<_>>()
    };
    match cfg.label_split {
        LabelSplit::UserTails => tails(),
        LabelSplit::Time => vec![Cut::Newest(cfg.label_fraction)],
        LabelSplit::Both => {
            let mut cuts = tails();
            cuts.push(Cut::Newest(cfg.label_fraction));
            cuts
        }
    }
}

/// How many cuts of the log [`fit_ranker`] refits the retrieval models on: 0 when it learns no
/// ranker (disabled, or too few events).
pub(crate) fn ranker_cut_count(snapshot: &Snapshot, cfg: &RankerTrainConfig) -> usize {
    if !cfg.enabled || snapshot.events.len() < cfg.min_events {
        return 0;
    }
    label_cuts(snapshot, cfg).len()
}

/// Fits the ranker to predict the newest `label_fraction` of events (each user's, the log's, or
/// both, by `label_split`) from everything before them, or returns `None` when the log is too
/// small to learn from. `refit` fits the retrieval models on a cut's past (the caller's
/// [`ModelSet::fit_models`] with its configuration), so this module needs neither.
pub fn fit_ranker(
    snapshot: &Snapshot,
    cfg: &RankerTrainConfig,
    serve: &HistoryConfig,
    placement: &PlacementConfig,
    refit: &dyn Fn(&Snapshot) -> Result<ModelSet, PipelineError>,
) -> Result<Option<TrainedRanker>, PipelineError> {
    if !cfg.enabled || snapshot.events.len() < cfg.min_events {
        return Ok(None);
    }
    let placement = PlacementConfig {
        exploration: 0.0,
        ..placement.clone()
    };
    let cuts = label_cuts(snapshot, cfg);
    let users_per_cut = cfg.max_users.div_ceil(cuts.len().max(1));
    let (mut fit, mut valid) = (RankingExamples::new(), RankingExamples::new());
    // One cut at a time, so that only one copy of the log's past is held.
    for (k, cut) in cuts.iter().enumerate() {
        let (past, future) = cut.split(snapshot);
        if past.events.is_empty() || future.is_empty() {
            continue;
        }
        let models = refit(&past)?;
        let mut users: Vec<String> = future
            .iter()
            .map(|(u, _, _)| u.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        users.sort_unstable();
        users.shuffle(&mut ChaCha8Rng::seed_from_u64(
            cfg.seed.wrapping_add(k as u64),
        ));
        users.truncate(users_per_cut);
        // A fifth of each cut's users validate, drawn anew per cut: every user's lists are learned
        // from in some cut, which a small log needs more than a validation score free of users
        // seen in another cut (that score is a little optimistic; offline evaluation is the test).
        let n_valid = users.len() / 5;
        let (valid_users, fit_users) = users.split_at(n_valid);
        let mut sets = examples(
            &models,
            &past,
            &future,
            serve,
            &placement,
            &[valid_users, fit_users],
        );
        fit.append(sets.pop().expect("two groups"));
        valid.append(sets.pop().expect("two groups"));
    }
    let groups = |e: &RankingExamples| e.data.group_sizes.len();
    if groups(&fit) < cfg.min_groups || groups(&valid) == 0 {
        return Ok(None);
    }
    // Small trees, slow learning and large leaves: the label is sparse (a few chosen items among
    // hundreds of candidates per user) and a log has a few thousand users at most.
    let config = RankerConfig {
        trees: cfg.trees,
        learning_rate: cfg.learning_rate,
        max_leaves: cfg.max_leaves,
        min_data_in_leaf: cfg.min_data_in_leaf,
        feature_fraction: 0.8,
        seed: cfg.seed,
        early_stopping_rounds: (cfg.early_stopping_rounds > 0).then_some(cfg.early_stopping_rounds),
        ..RankerConfig::default()
    };
    let ranker =
        Ranker::fit(&fit.data, Some(&valid.data), &config).map_err(PipelineError::Ranker)?;
    let mut scores = vec![0f32; valid.data.labels.len()];
    ranker.predict_many(&valid.data.features, &mut scores);
    Ok(Some(TrainedRanker {
        valid_ndcg: mean_ndcg(&valid.data, &scores, 10),
        fusion_ndcg: mean_ndcg(&valid.data, &valid.fusion, 10),
        ranker,
        feature_names: features::feature_names(),
        train_groups: groups(&fit),
        valid_groups: groups(&valid),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::IdMap;

    /// `users` users with `per_user` events each (times 0.., one item per event).
    fn log(users: usize, per_user: usize) -> Snapshot {
        let (mut user_ids, mut items) = (IdMap::new(), IdMap::new());
        let mut events = Vec::new();
        for u in 0..users {
            let uid = user_ids.intern(&format!("u{u}"));
            for t in 0..per_user {
                events.push((uid, items.intern(&format!("i{t}")), 1.0, t as i64));
            }
        }
        Snapshot {
            users: user_ids,
            items,
            events,
            last_seq: 0,
            reference_time: per_user as i64,
        }
    }

    fn config(max_users: usize, label_split: LabelSplit) -> RankerTrainConfig {
        RankerTrainConfig {
            max_users,
            max_cuts: 8,
            label_split,
            ..RankerTrainConfig::default()
        }
    }

    #[test]
    fn a_log_with_enough_users_is_cut_once_at_the_label_fraction() {
        let cuts = label_cuts(&log(100, 10), &config(100, LabelSplit::UserTails));
        assert_eq!(cuts, vec![Cut::UserTails(0.2)]);
    }

    #[test]
    fn a_small_log_is_cut_several_times_around_the_label_fraction() {
        // 100 active users, 400 lists wanted: four cuts, evenly spread over (0, 0.4).
        let cuts = label_cuts(&log(100, 10), &config(400, LabelSplit::UserTails));
        let fractions: Vec<f64> = cuts
            .iter()
            .map(|c| match c {
                Cut::UserTails(f) => *f,
                Cut::Newest(_) => panic!("no time cut asked for"),
            })
            .collect();
        assert_eq!(fractions.len(), 4);
        for (f, want) in fractions.iter().zip([0.08, 0.16, 0.24, 0.32]) {
            assert!((f - want).abs() < 1e-12, "{fractions:?}");
        }
        // Never more than max_cuts, and users too short to cut do not count as active.
        assert_eq!(
            label_cuts(&log(10, 10), &config(1_000, LabelSplit::UserTails)).len(),
            8
        );
        assert_eq!(
            label_cuts(&log(100, 4), &config(400, LabelSplit::UserTails)).len(),
            8
        );
    }

    #[test]
    fn the_time_split_is_one_cut_and_both_adds_it_to_the_tails() {
        let snapshot = log(100, 10);
        assert_eq!(
            label_cuts(&snapshot, &config(400, LabelSplit::Time)),
            vec![Cut::Newest(0.2)]
        );
        let both = label_cuts(&snapshot, &config(400, LabelSplit::Both));
        assert_eq!(both.len(), 5);
        assert_eq!(both.last(), Some(&Cut::Newest(0.2)));
    }
}
