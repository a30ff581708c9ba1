//! Attribution counts: what the log says, summed per experiment, variant, user and position, and
//! the results computed from them with `cairn-experiment`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use cairn_experiment::{
    analyze, AnalysisConfig, Credit, PreferenceSummary, Report, Team, UserOutcome,
};
use serde::{Deserialize, Serialize};

use super::defs::{Experiment, ExperimentKind};

/// Whether an attributed event is a click or a conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    Click,
    Conversion,
}

/// One shown item of an impression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Shown {
    pub item: String,
    /// 1-based.
    pub position: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<Team>,
}

/// One line of the attribution log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum LogRecord {
    /// Items of a list acknowledged as shown (each (list, item) counts once).
    Impression {
        rid: String,
        user: String,
        placement: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        experiment: Option<String>,
        #[serde(default)]
        variant: usize,
        at: i64,
        items: Vec<Shown>,
    },
    /// A click or conversion attributed to a list (each event counts once).
    Event {
        key: String,
        rid: String,
        user: String,
        item: String,
        placement: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        experiment: Option<String>,
        #[serde(default)]
        variant: usize,
        outcome: Outcome,
        position: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        team: Option<Team>,
        at: i64,
    },
}

/// A list whose impressions were acknowledged: enough to attribute later events to it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ImpressedList {
    pub user: String,
    pub placement: String,
    pub experiment: Option<(String, usize)>,
    /// Item → (position, team).
    pub items: HashMap<String, (u32, Option<Team>)>,
}

#[derive(Debug, Clone, Copy, Default)]
struct UserCounts {
    variant: usize,
    impressions: u64,
    clicks: u64,
    conversions: u64,
    credit: Credit,
}

/// Counts at one 1-based position of a variant's (or, interleaved, a team's) lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionCounts {
    pub position: u32,
    pub impressions: u64,
    pub clicks: u64,
    pub conversions: u64,
}

#[derive(Debug, Default)]
struct ExperimentCounts {
    users: HashMap<String, UserCounts>,
    /// By variant index (interleaving: 0 control team, 1 treatment team), then position.
    positions: BTreeMap<(usize, u32), PositionCounts>,
}

impl ExperimentCounts {
    fn position(&mut self, lane: usize, position: u32) -> &mut PositionCounts {
        self.positions
            .entry((lane, position))
            .or_insert(PositionCounts {
                position,
                ..PositionCounts::default()
            })
    }
}

fn lane(team: Option<Team>, variant: usize) -> usize {
    match team {
        Some(Team::Control) => 0,
        Some(Team::Treatment) => 1,
        None => variant,
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counts {
    experiments: HashMap<String, ExperimentCounts>,
    /// (recommendation id, item) pairs already impressed.
    impressed: HashSet<(String, String)>,
    /// Keys of events already attributed.
    attributed: HashSet<String>,
    /// Lists with acknowledged impressions, by recommendation id.
    pub(crate) lists: HashMap<String, Arc<ImpressedList>>,
    /// (user, item) → (time, recommendation id) of the latest impression, for the window.
    pub(crate) last_shown: HashMap<(String, String), (i64, String)>,
}

impl Counts {
    pub(crate) fn is_impressed(&self, rid: &str, item: &str) -> bool {
        self.impressed
            .contains(&(rid.to_string(), item.to_string()))
    }

    pub(crate) fn is_attributed(&self, key: &str) -> bool {
        self.attributed.contains(key)
    }

    /// Adds one record's counts (live, after it was logged, and when the log is replayed).
    pub(crate) fn apply(&mut self, record: &LogRecord) {
        match record {
            LogRecord::Impression {
                rid,
                user,
                placement,
                experiment,
                variant,
                at,
                items,
            } => {
                let list = self.lists.entry(rid.clone()).or_insert_with(|| {
                    Arc::new(ImpressedList {
                        user: user.clone(),
                        placement: placement.clone(),
                        experiment: experiment.clone().map(|e| (e, *variant)),
                        items: HashMap::new(),
                    })
                });
                let list = Arc::make_mut(list);
                for s in items {
                    if !self.impressed.insert((rid.clone(), s.item.clone())) {
                        continue;
                    }
                    list.items.insert(s.item.clone(), (s.position, s.team));
                    let seen = self
                        .last_shown
                        .entry((user.clone(), s.item.clone()))
                        .or_insert((*at, rid.clone()));
                    if seen.0 <= *at {
                        *seen = (*at, rid.clone());
                    }
                    if let Some(e) = experiment {
                        let ec = self.experiments.entry(e.clone()).or_default();
                        ec.users
                            .entry(user.clone())
                            .or_insert(UserCounts {
                                variant: *variant,
                                ..UserCounts::default()
                            })
                            .impressions += 1;
                        ec.position(lane(s.team, *variant), s.position).impressions += 1;
                    }
                }
            }
            LogRecord::Event {
                key,
                user,
                experiment,
                variant,
                outcome,
                position,
                team,
                ..
            } => {
                if !self.attributed.insert(key.clone()) {
                    return;
                }
                let Some(e) = experiment else { return };
                let ec = self.experiments.entry(e.clone()).or_default();
                let u = ec.users.entry(user.clone()).or_insert(UserCounts {
                    variant: *variant,
                    ..UserCounts::default()
                });
                match outcome {
                    Outcome::Click => {
                        u.clicks += 1;
                        match team {
                            Some(Team::Control) => u.credit.control += 1,
                            Some(Team::Treatment) => u.credit.treatment += 1,
                            None => {}
                        }
                    }
                    Outcome::Conversion => u.conversions += 1,
                }
                let p = ec.position(lane(*team, *variant), *position);
                match outcome {
                    Outcome::Click => p.clicks += 1,
                    Outcome::Conversion => p.conversions += 1,
                }
            }
        }
    }

    /// The users counted in experiment `id`.
    pub(crate) fn users_of(&self, id: &str) -> Vec<String> {
        self.experiments
            .get(id)
            .map(|ec| ec.users.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The results of `e`; `pre_period` gives a user's activity before the experiment (CUPED).
    pub(crate) fn results(
        &self,
        e: &Experiment,
        pre_period: &mut dyn FnMut(&str) -> f64,
    ) -> ExperimentResults {
        let empty = ExperimentCounts::default();
        let ec = self.experiments.get(&e.id).unwrap_or(&empty);
        let k = e.variants.len();
        let positions = |lane: usize| -> Vec<PositionCounts> {
            ec.positions
                .range((lane, 0)..=(lane, u32::MAX))
                .map(|(_, c)| *c)
                .collect()
        };
        let mut users: Vec<(&String, &UserCounts)> = ec.users.iter().collect();
        users.sort_by(|a, b| a.0.cmp(b.0));
        match e.kind {
            ExperimentKind::Ab => {
                let mut variants: Vec<VariantResult> = e
                    .variants
                    .iter()
                    .enumerate()
                    .map(|(i, v)| VariantResult::new(&v.name, positions(i)))
                    .collect();
                let mut outcomes = Vec::with_capacity(users.len());
                let mut with_pre_period = 0;
                for (user, u) in &users {
                    if u.variant >= k {
                        continue;
                    }
                    let vr = &mut variants[u.variant];
                    vr.users += 1;
                    vr.impressions += u.impressions;
                    vr.clicks += u.clicks;
                    vr.conversions += u.conversions;
                    let pre = pre_period(user);
                    if pre > 0.0 {
                        with_pre_period += 1;
                    }
                    outcomes.push(UserOutcome {
                        variant: u.variant,
                        impressions: u.impressions as f64,
                        clicks: u.clicks as f64,
                        conversions: u.conversions as f64,
                        pre_period: pre,
                    });
                }
                variants.iter_mut().for_each(VariantResult::finish);
                let names: Vec<&str> = e.variants.iter().map(|v| v.name.as_str()).collect();
                let weights: Vec<u32> = e.variants.iter().map(|v| v.weight).collect();
                let mut config = AnalysisConfig::new(&names, &weights, e.planned_users as f64);
                config.cuped = with_pre_period > 0;
                let (analysis, analysis_error) = match analyze(&outcomes, &config) {
                    Ok(r) => (Some(r), None),
                    Err(err) => (None, Some(err.to_string())),
                };
                ExperimentResults {
                    users: users.len() as u64,
                    users_with_pre_period: with_pre_period,
                    variants,
                    analysis,
                    analysis_error,
                    preference: None,
                }
            }
            ExperimentKind::Interleaving => {
                let credits: Vec<Credit> = users.iter().map(|(_, u)| u.credit).collect();
                let mut variants: Vec<VariantResult> = e
                    .variants
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let pos = positions(i);
                        let mut r = VariantResult::new(&v.name, pos.clone());
                        r.users = users.len() as u64;
                        r.impressions = pos.iter().map(|p| p.impressions).sum();
                        r.clicks = pos.iter().map(|p| p.clicks).sum();
                        r.conversions = pos.iter().map(|p| p.conversions).sum();
                        r
                    })
                    .collect();
                variants.iter_mut().for_each(VariantResult::finish);
                ExperimentResults {
                    users: users.len() as u64,
                    users_with_pre_period: 0,
                    variants,
                    analysis: None,
                    analysis_error: None,
                    preference: Some(PreferenceSummary::from_users(&credits, 0.05)),
                }
            }
        }
    }
}

/// A variant's totals (interleaving: the items its team picked, and the clicks they got).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    pub name: String,
    pub users: u64,
    pub impressions: u64,
    pub clicks: u64,
    pub conversions: u64,
    /// clicks / impressions (0 without impressions).
    pub ctr: f64,
    /// conversions / impressions (0 without impressions).
    pub conversion_rate: f64,
    pub clicks_per_user: f64,
    pub conversions_per_user: f64,
    /// By 1-based position, the positions with any count.
    pub positions: Vec<PositionCounts>,
}

impl VariantResult {
    fn new(name: &str, positions: Vec<PositionCounts>) -> Self {
        VariantResult {
            name: name.to_string(),
            users: 0,
            impressions: 0,
            clicks: 0,
            conversions: 0,
            ctr: 0.0,
            conversion_rate: 0.0,
            clicks_per_user: 0.0,
            conversions_per_user: 0.0,
            positions,
        }
    }

    fn finish(&mut self) {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        self.ctr = ratio(self.clicks, self.impressions);
        self.conversion_rate = ratio(self.conversions, self.impressions);
        self.clicks_per_user = ratio(self.clicks, self.users);
        self.conversions_per_user = ratio(self.conversions, self.users);
    }
}

/// An experiment's results so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentResults {
    /// Users with an acknowledged impression or an attributed event in the experiment.
    pub users: u64,
    /// Users with events before the experiment started (CUPED is applied when there are any).
    pub users_with_pre_period: u64,
    pub variants: Vec<VariantResult>,
    /// A/B: differences to the control with fixed and always-valid intervals, Holm, SRM, decision.
    pub analysis: Option<Report>,
    /// A/B: why there is no analysis yet (e.g. a variant without users).
    pub analysis_error: Option<String>,
    /// Interleaving: the per-user preference for the treatment with its interval.
    pub preference: Option<PreferenceSummary>,
}

/// What `POST /v1/impressions` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImpressionsOutcome {
    /// Items newly recorded as shown.
    pub recorded: usize,
    /// Items of this list recorded before (a retry): not counted again.
    pub duplicates: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::defs::{ExperimentStatus, VariantDef};
    use cairn_experiment::NamespaceSlot;

    fn experiment(kind: ExperimentKind) -> Experiment {
        Experiment {
            id: "e".into(),
            description: String::new(),
            kind,
            placement: "home".into(),
            variants: ["a", "b"]
                .iter()
                .map(|n| VariantDef {
                    name: n.to_string(),
                    weight: 1,
                    model_version: None,
                    placement: None,
                })
                .collect(),
            namespace: None,
            traffic: 1.0,
            slot: NamespaceSlot {
                namespace: "experiment/e".into(),
                start: 0,
                end: 10_000,
            },
            salt: "experiment/e".into(),
            planned_users: 100,
            status: ExperimentStatus::Running,
            created_at: 0,
            created_by: "test".into(),
            stopped_at: None,
            shipped: None,
        }
    }

    fn impression(
        rid: &str,
        user: &str,
        variant: usize,
        items: &[(&str, Option<Team>)],
    ) -> LogRecord {
        LogRecord::Impression {
            rid: rid.into(),
            user: user.into(),
            placement: "home".into(),
            experiment: Some("e".into()),
            variant,
            at: 10,
            items: items
                .iter()
                .enumerate()
                .map(|(p, (i, team))| Shown {
                    item: i.to_string(),
                    position: p as u32 + 1,
                    team: *team,
                })
                .collect(),
        }
    }

    fn click(
        key: &str,
        rid: &str,
        user: &str,
        variant: usize,
        position: u32,
        team: Option<Team>,
    ) -> LogRecord {
        LogRecord::Event {
            key: key.into(),
            rid: rid.into(),
            user: user.into(),
            item: "x".into(),
            placement: "home".into(),
            experiment: Some("e".into()),
            variant,
            outcome: Outcome::Click,
            position,
            team,
            at: 11,
        }
    }

    #[test]
    fn each_impression_and_event_counts_once_and_the_log_replays_to_the_same_counts() {
        let log = vec![
            impression("r1", "u1", 0, &[("i1", None), ("i2", None)]),
            impression("r1", "u1", 0, &[("i1", None)]),
            impression("r2", "u2", 1, &[("i1", None), ("i2", None), ("i3", None)]),
            click("k1", "r1", "u1", 0, 1, None),
            click("k1", "r1", "u1", 0, 1, None),
            click("k2", "r2", "u2", 1, 3, None),
        ];
        let mut counts = Counts::default();
        log.iter().for_each(|r| counts.apply(r));
        let e = experiment(ExperimentKind::Ab);
        let r = counts.results(&e, &mut |_| 0.0);
        assert_eq!(r.users, 2);
        let v: Vec<(u64, u64, u64)> = r
            .variants
            .iter()
            .map(|v| (v.users, v.impressions, v.clicks))
            .collect();
        assert_eq!(v, [(1, 2, 1), (1, 3, 1)]);
        assert_eq!(r.variants[1].positions[2].clicks, 1);
        assert!((r.variants[0].ctr - 0.5).abs() < 1e-12);
        // The analysis ran over the two users (too few for a decision).
        assert_eq!(r.analysis.unwrap().srm.observed, vec![1, 1]);

        let mut replayed = Counts::default();
        for record in &log {
            let line = serde_json::to_string(record).unwrap();
            replayed.apply(&serde_json::from_str(&line).unwrap());
        }
        assert_eq!(
            replayed.results(&e, &mut |_| 0.0),
            counts.results(&e, &mut |_| 0.0)
        );
    }

    #[test]
    fn interleaved_clicks_credit_the_team_that_picked_the_item() {
        let mut counts = Counts::default();
        let teams = [("i1", Some(Team::Control)), ("i2", Some(Team::Treatment))];
        counts.apply(&impression("r1", "u1", 0, &teams));
        counts.apply(&impression("r2", "u2", 0, &teams));
        counts.apply(&click("k1", "r1", "u1", 0, 2, Some(Team::Treatment)));
        counts.apply(&click("k2", "r2", "u2", 0, 2, Some(Team::Treatment)));
        counts.apply(&click("k3", "r2", "u2", 0, 1, Some(Team::Control)));
        let r = counts.results(&experiment(ExperimentKind::Interleaving), &mut |_| 0.0);
        let p = r.preference.unwrap();
        assert_eq!((p.users, p.prefer_treatment, p.ties), (2, 1, 1));
        assert!((p.mean_preference - 0.5).abs() < 1e-12);
        assert_eq!((r.variants[0].clicks, r.variants[1].clicks), (1, 2));
        assert_eq!(
            (r.variants[0].impressions, r.variants[1].impressions),
            (2, 2)
        );
    }
}
