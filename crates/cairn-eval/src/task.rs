//! Turns a [`Stage`] into the dense, model-ready form the evaluator needs, applying the peers
//! harness's item-universe rules (`run_peers.py`: `strong_stages`, `known_user_stage`):
//!
//! - new users (strong-gen): universe = `items.csv` in file order; fit users = train users in order of
//!   appearance; evaluated users = users of the fold-in and target files; rows outside the universe are
//!   dropped;
//! - known users: universe = sorted training items, then the sorted cold items (cold-items protocol);
//!   fit users = sorted training users; evaluated users = sorted test users; history = their training
//!   rows; test rows of items outside the universe are dropped.
//!
//! Every interaction is binarized (value 1), as the harness does for every model.

use std::collections::HashMap;

use cairn_core::{CsrMatrix, IdMap, InteractionMatrix};

use crate::data::{compare_ids, unique_in_order, unique_sorted_by_id, Row, Vocab};
use crate::metrics::ItemGroups;
use crate::split::{SplitSet, Stage, StageData};

/// One evaluated user.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalUser {
    pub id: String,
    /// Items the model may use to score the user and that are excluded from the ranking, with strength
    /// 1, oldest first where timestamps are known.
    pub history: Vec<(u32, f32)>,
    /// Target items, sorted and distinct.
    pub targets: Vec<u32>,
    /// Graded relevance of each target (its rating), parallel to `targets`, when the data has ratings.
    pub gains: Option<Vec<f32>>,
}

/// A test pair for rating prediction; `user` / `item` are `None` when the training data lacks them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatingPair {
    pub user: Option<u32>,
    pub item: Option<u32>,
    pub rating: f32,
}

/// Explicit ratings of a known-users stage, in the task's dense indices.
#[derive(Debug, Clone, Default)]
pub struct RatingData {
    pub train: Vec<(u32, u32, f32)>,
    pub test: Vec<RatingPair>,
}

/// Everything needed to fit models and score them on one stage.
#[derive(Debug, Clone)]
pub struct EvalTask {
    pub name: String,
    /// Fit data, binarized. Its item map is the universe the models rank.
    pub train: InteractionMatrix,
    /// Each fit user's training items (row `u` of `train`) oldest first by timestamp, ties in file
    /// order, each item at its first occurrence: what the sequence-aware models fit on.
    pub train_order: Vec<Vec<u32>>,
    /// Distinct training users per item (for novelty and popularity bias).
    pub item_popularity: Vec<u32>,
    pub users: Vec<EvalUser>,
    /// When set, the only items a user ranks (cold-items); otherwise the whole universe.
    pub candidates: Option<Vec<u32>>,
    /// Items × features, binary, for intra-list diversity.
    pub features: Option<CsrMatrix>,
    /// Item groups for miscalibration and exposure by group (see [`EvalTask::group_by`]); by
    /// default the `genre:` features where the split has any, else every feature.
    pub groups: Option<ItemGroups>,
    pub ratings: Option<RatingData>,
}

impl EvalTask {
    pub fn n_items(&self) -> usize {
        self.train.n_items()
    }

    /// The catalog size that coverage divides by: the candidates, or the whole universe.
    pub fn catalog_size(&self) -> usize {
        self.candidates.as_ref().map_or(self.n_items(), |c| c.len())
    }

    /// Users that count in the averages: those with at least one target.
    pub fn users_with_targets(&self) -> usize {
        self.users.iter().filter(|u| !u.targets.is_empty()).count()
    }

    pub fn build(split: &SplitSet, stage: &Stage) -> EvalTask {
        let vocab = &split.vocab;
        let has_rating = split.columns.rating;
        let (train_rows, universe, fit_users, eval_users, history_rows, target_rows, cold) =
            match &stage.data {
                StageData::NewUsers {
                    train,
                    universe,
                    fold_in,
                    targets,
                } => {
                    let fit_users = unique_in_order(train.iter().map(|r| r.user));
                    let eval_users =
                        unique_in_order(fold_in.iter().chain(targets.iter()).map(|r| r.user));
                    (
                        train,
                        unique_in_order(universe.iter().copied()),
                        fit_users,
                        eval_users,
                        fold_in,
                        targets,
                        None,
                    )
                }
                StageData::KnownUsers {
                    train,
                    test,
                    cold_items,
                } => {
                    let mut universe =
                        unique_sorted_by_id(train.iter().map(|r| r.item), &vocab.items);
                    let cold = cold_items.as_ref().map(|c| {
                        let mut c = unique_in_order(c.iter().copied());
                        c.sort_by(|&a, &b| compare_ids(vocab.items.id(a), vocab.items.id(b)));
                        c
                    });
                    if let Some(c) = &cold {
                        universe.extend(c.iter().copied());
                    }
                    let fit_users = unique_sorted_by_id(train.iter().map(|r| r.user), &vocab.users);
                    let eval_users = unique_sorted_by_id(test.iter().map(|r| r.user), &vocab.users);
                    (train, universe, fit_users, eval_users, train, test, cold)
                }
            };
        let item_index = dense_index(&universe);
        let user_index = dense_index(&fit_users);
        let items = ids_of(&universe, &vocab.items);
        let users = ids_of(&fit_users, &vocab.users);
        let triplets: Vec<_> = train_rows
            .iter()
            .filter_map(|r| Some((*user_index.get(&r.user)?, *item_index.get(&r.item)?, 1.0)))
            .collect();
        let mut train = InteractionMatrix::from_triplets(users, items, triplets);
        train.user_items = train.user_items.map_values(|_| 1.0);
        let train_order = time_ordered(train_rows, &user_index, &item_index, fit_users.len());
        let item_popularity = column_counts(&train.user_items);
        let users = build_users(
            &eval_users,
            vocab,
            &item_index,
            history_rows,
            target_rows,
            has_rating,
        );
        let candidates = cold.map(|c| {
            c.iter()
                .filter_map(|i| item_index.get(i).copied())
                .collect()
        });
        let features = split
            .item_features
            .as_ref()
            .map(|pairs| feature_matrix(pairs, &item_index, universe.len()));
        let ratings = match &stage.data {
            StageData::KnownUsers { train, test, .. } if has_rating => {
                Some(rating_data(train, test, &user_index, &item_index))
            }
            _ => None,
        };
        let mut task = EvalTask {
            name: stage.name.clone(),
            train,
            train_order,
            item_popularity,
            users,
            candidates,
            features,
            groups: None,
            ratings,
        };
        task.group_by(split, None);
        task
    }

    /// Groups the items by the split's features named `<prefix>:<group>` (e.g. `genre`, `brand`,
    /// `provider`). Without a prefix: `genre` where any feature has it, else every feature is a
    /// group. No matching feature leaves the task without groups.
    pub fn group_by(&mut self, split: &SplitSet, prefix: Option<&str>) {
        let Some(pairs) = &split.item_features else {
            self.groups = None;
            return;
        };
        let prefix = match prefix {
            Some(p) => Some(p.to_string()),
            None => pairs
                .iter()
                .any(|(_, f)| f.starts_with("genre:"))
                .then(|| "genre".to_string()),
        };
        let items = &self.train.items;
        let selected = pairs.iter().filter_map(|(item, feature)| {
            let name = match &prefix {
                Some(p) => feature.strip_prefix(p.as_str())?.strip_prefix(':')?,
                None => feature.as_str(),
            };
            Some((items.get(split.vocab.items.id(*item))?, name))
        });
        let groups = ItemGroups::from_pairs(self.n_items(), selected);
        self.groups = (groups.n_groups() > 0).then_some(groups);
    }
}

/// Each user's items (dense indices) oldest first by timestamp, ties (and rows without one) in the
/// rows' order, each item once at its first occurrence.
fn time_ordered(
    rows: &[Row],
    user_index: &HashMap<u32, u32>,
    item_index: &HashMap<u32, u32>,
    n_users: usize,
) -> Vec<Vec<u32>> {
    let mut timed: Vec<Vec<(i64, usize, u32)>> = vec![Vec::new(); n_users];
    for (n, r) in rows.iter().enumerate() {
        if let (Some(&u), Some(&i)) = (user_index.get(&r.user), item_index.get(&r.item)) {
            timed[u as usize].push((r.ts.unwrap_or(0), n, i));
        }
    }
    timed
        .into_iter()
        .map(|mut events| {
            events.sort_by_key(|&(ts, n, _)| (ts, n));
            let mut seen = std::collections::HashSet::new();
            events
                .into_iter()
                .filter(|&(_, _, i)| seen.insert(i))
                .map(|(_, _, i)| i)
                .collect()
        })
        .collect()
}

fn dense_index(values: &[u32]) -> HashMap<u32, u32> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| (v, i as u32))
        .collect()
}

fn ids_of(values: &[u32], ids: &IdMap) -> IdMap {
    IdMap::from_ids(values.iter().map(|&v| ids.id(v).to_string()).collect())
}

fn column_counts(m: &CsrMatrix) -> Vec<u32> {
    let mut counts = vec![0u32; m.n_cols];
    for &c in &m.indices {
        counts[c as usize] += 1;
    }
    counts
}

fn build_users(
    eval_users: &[u32],
    vocab: &Vocab,
    item_index: &HashMap<u32, u32>,
    history_rows: &[Row],
    target_rows: &[Row],
    has_rating: bool,
) -> Vec<EvalUser> {
    let position = dense_index(eval_users);
    let mut histories: Vec<Vec<(i64, usize, u32)>> = vec![Vec::new(); eval_users.len()];
    for (n, r) in history_rows.iter().enumerate() {
        if let (Some(&u), Some(&i)) = (position.get(&r.user), item_index.get(&r.item)) {
            histories[u as usize].push((r.ts.unwrap_or(0), n, i));
        }
    }
    let mut targets: Vec<HashMap<u32, f32>> = vec![HashMap::new(); eval_users.len()];
    for r in target_rows {
        if let (Some(&u), Some(&i)) = (position.get(&r.user), item_index.get(&r.item)) {
            targets[u as usize].insert(i, r.rating.unwrap_or(1.0));
        }
    }
    eval_users
        .iter()
        .zip(histories)
        .zip(targets)
        .map(|((&u, mut hist), tgt)| {
            // Oldest first; file order breaks ties (and orders everything when there is no ts).
            hist.sort_by_key(|&(ts, n, _)| (ts, n));
            let mut seen = std::collections::HashSet::new();
            let history = hist
                .into_iter()
                .filter(|&(_, _, i)| seen.insert(i))
                .map(|(_, _, i)| (i, 1.0))
                .collect();
            let mut pairs: Vec<(u32, f32)> = tgt.into_iter().collect();
            pairs.sort_by_key(|p| p.0);
            EvalUser {
                id: vocab.users.id(u).to_string(),
                history,
                targets: pairs.iter().map(|p| p.0).collect(),
                gains: has_rating.then(|| pairs.iter().map(|p| p.1).collect()),
            }
        })
        .collect()
}

fn feature_matrix(
    pairs: &[(u32, String)],
    item_index: &HashMap<u32, u32>,
    n_items: usize,
) -> CsrMatrix {
    let mut names = IdMap::new();
    let mut triplets = Vec::new();
    for (item, feature) in pairs {
        let f = names.intern(feature);
        if let Some(&i) = item_index.get(item) {
            triplets.push((i, f, 1.0));
        }
    }
    CsrMatrix::from_triplets(n_items, names.len(), triplets).map_values(|_| 1.0)
}

fn rating_data(
    train: &[Row],
    test: &[Row],
    user_index: &HashMap<u32, u32>,
    item_index: &HashMap<u32, u32>,
) -> RatingData {
    RatingData {
        train: train
            .iter()
            .filter_map(|r| {
                Some((
                    *user_index.get(&r.user)?,
                    *item_index.get(&r.item)?,
                    r.rating?,
                ))
            })
            .collect(),
        test: test
            .iter()
            .filter_map(|r| {
                Some(RatingPair {
                    user: user_index.get(&r.user).copied(),
                    item: item_index.get(&r.item).copied(),
                    rating: r.rating?,
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Columns;
    use crate::split::Role;

    fn vocab(users: &[&str], items: &[&str]) -> Vocab {
        Vocab {
            users: IdMap::from_ids(users.iter().map(|s| s.to_string()).collect()),
            items: IdMap::from_ids(items.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn row(user: u32, item: u32) -> Row {
        Row {
            user,
            item,
            rating: None,
            ts: None,
        }
    }

    #[test]
    fn leave_last_out_holds_out_the_newest_event_and_orders_the_rest_by_time() {
        // Two users, six items, rows in file order not time order; user "b" has no time tie.
        let ts_rows = [
            (0, 3, 50),
            (0, 0, 10),
            (0, 5, 90),
            (0, 1, 30),
            (0, 2, 20),
            (0, 4, 40),
            (1, 2, 7),
            (1, 0, 5),
            (1, 1, 6),
            (1, 5, 1),
            (1, 4, 3),
            (1, 3, 2),
        ];
        let data = crate::splitters::Dataset {
            vocab: vocab(&["a", "b"], &["0", "1", "2", "3", "4", "5"]),
            rows: ts_rows
                .iter()
                .map(|&(user, item, ts)| Row {
                    user,
                    item,
                    rating: None,
                    ts: Some(ts),
                })
                .collect(),
            columns: Columns {
                rating: false,
                ts: true,
            },
            item_features: None,
        };
        let split = crate::splitters::split(&data, "leave-last-out", None, 1).unwrap();
        let test = split.stages_with_role(Role::Test).next().unwrap();
        let t = EvalTask::build(&split, test);
        let ids = |order: &[u32]| -> Vec<String> {
            order
                .iter()
                .map(|&i| t.train.items.id(i).to_string())
                .collect()
        };
        // a: 0@10 2@20 1@30 4@40 3@50, newest 5@90 held out; b: 5 3 4 0 1, newest 2@7 held out.
        assert_eq!(ids(&t.train_order[0]), ["0", "2", "1", "4", "3"]);
        assert_eq!(ids(&t.train_order[1]), ["5", "3", "4", "0", "1"]);
        for (user, newest) in t.users.iter().zip(["5", "2"]) {
            assert_eq!(ids(&user.targets), [newest]);
            let history: Vec<u32> = user.history.iter().map(|&(i, _)| i).collect();
            let row = t.train.users.get(&user.id).unwrap() as usize;
            assert_eq!(history, t.train_order[row], "history in time order");
        }
    }

    #[test]
    fn strong_gen_keeps_the_universe_order_and_drops_rows_outside_it() {
        // items: "10"=0, "2"=1, "7"=2 (7 is outside the universe)
        let split = SplitSet {
            protocol: "strong-gen".into(),
            vocab: vocab(&["a", "b", "x"], &["10", "2", "7"]),
            columns: Columns::default(),
            stages: vec![],
            item_features: None,
            min_rating: None,
        };
        let stage = Stage {
            name: "test".into(),
            role: Role::Test,
            data: StageData::NewUsers {
                train: vec![row(0, 0), row(1, 1), row(1, 0), row(1, 0)],
                universe: vec![0, 1],
                fold_in: vec![row(2, 1), row(2, 2)],
                targets: vec![row(2, 0), row(2, 2)],
            },
        };
        let t = EvalTask::build(&split, &stage);
        assert_eq!(t.train.items.ids(), &["10".to_string(), "2".to_string()]);
        assert_eq!(
            t.train.user_items.row(1),
            (&[0u32, 1][..], &[1.0f32, 1.0][..])
        );
        assert_eq!(t.item_popularity, vec![2, 1]);
        assert_eq!(t.users.len(), 1);
        assert_eq!(t.users[0].history, vec![(1, 1.0)]);
        assert_eq!(t.users[0].targets, vec![0]);
        assert!(t.ratings.is_none());
    }

    #[test]
    fn known_users_sort_ids_numerically_and_append_cold_items() {
        let split = SplitSet {
            protocol: "cold-items".into(),
            vocab: vocab(&["2", "10"], &["30", "4", "100", "9"]),
            columns: Columns {
                rating: true,
                ts: false,
            },
            stages: vec![],
            item_features: Some(vec![
                (0, "g:a".into()),
                (1, "g:a".into()),
                (3, "g:b".into()),
            ]),
            min_rating: None,
        };
        let r = |u, i, rating| Row {
            user: u,
            item: i,
            rating: Some(rating),
            ts: None,
        };
        let stage = Stage {
            name: "test".into(),
            role: Role::Test,
            data: StageData::KnownUsers {
                train: vec![r(1, 0, 4.0), r(0, 1, 3.0), r(0, 0, 5.0)],
                test: vec![r(1, 3, 2.0), r(1, 2, 5.0)],
                cold_items: Some(vec![3, 2]),
            },
        };
        let t = EvalTask::build(&split, &stage);
        // training items sorted (4, 30), then cold items sorted (9, 100)
        assert_eq!(
            t.train.items.ids(),
            &["4", "30", "9", "100"].map(String::from)
        );
        assert_eq!(t.train.users.ids(), &["2", "10"].map(String::from));
        assert_eq!(t.candidates, Some(vec![2, 3]));
        assert_eq!(t.catalog_size(), 2);
        assert_eq!(t.users.len(), 1);
        assert_eq!(t.users[0].id, "10");
        assert_eq!(t.users[0].history, vec![(1, 1.0)]);
        assert_eq!(t.users[0].targets, vec![2, 3]);
        assert_eq!(t.users[0].gains, Some(vec![2.0, 5.0]));
        let f = t.features.unwrap();
        assert_eq!(f.row(0).0, &[0]);
        assert_eq!(f.row(2).0, &[1]);
        let ratings = t.ratings.unwrap();
        assert_eq!(ratings.train.len(), 3);
        assert_eq!(ratings.test[0].user, Some(1));
        assert_eq!(
            ratings.test[0].item,
            Some(2),
            "cold items are in the universe"
        );
    }
}
