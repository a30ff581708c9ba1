//! Split protocols in Rust, deterministic for a seed (ChaCha8). They follow the rules of the peers'
//! `splits.py` (row filters, per-user 80/20 rule, item universes) but do not reproduce numpy's random
//! streams: to score on the peers' exact rows, read their folder with [`crate::split_dir`].
//!
//! Every splitter takes rows with distinct (user, item) pairs; [`prepare`] removes duplicates (the
//! last occurrence wins), keeps positives (rating ≥ min_rating) and users with enough rows.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use cairn_core::Item;
use cairn_import::movielens::{MovieLens, MovieLensKind};
use cairn_import::{ByteCounter, Row as ImportRow};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::data::{compare_ids, read_rows, Columns, Row, Vocab};
use crate::error::{EvalError, Result};
use crate::split::{Role, SplitSet, Stage, StageData};

/// Rows of a dataset with their vocabulary.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub vocab: Vocab,
    pub rows: Vec<Row>,
    pub columns: Columns,
    pub item_features: Option<Vec<(u32, String)>>,
}

/// Removes duplicate pairs (last wins, original order kept), keeps rows rated ≥ `min_rating` (when
/// given) and users with at least `min_user_rows` rows.
pub fn prepare(rows: &[Row], min_rating: Option<f32>, min_user_rows: usize) -> Result<Vec<Row>> {
    if min_rating.is_some() && rows.iter().any(|r| r.rating.is_none()) {
        return Err(EvalError::MissingData("rating"));
    }
    let mut last: HashMap<(u32, u32), usize> = HashMap::new();
    for (n, r) in rows.iter().enumerate() {
        last.insert((r.user, r.item), n);
    }
    let kept: Vec<Row> = rows
        .iter()
        .enumerate()
        .filter(|(n, r)| last.get(&(r.user, r.item)) == Some(n))
        .map(|(_, r)| *r)
        .filter(|r| match (min_rating, r.rating) {
            (Some(min), Some(v)) => v >= min,
            _ => true,
        })
        .collect();
    let mut per_user: HashMap<u32, usize> = HashMap::new();
    for r in &kept {
        *per_user.entry(r.user).or_default() += 1;
    }
    Ok(kept
        .into_iter()
        .filter(|r| per_user[&r.user] >= min_user_rows)
        .collect())
}

/// Row positions grouped by user, users in id order, rows in input order.
fn by_user(rows: &[Row], vocab: &Vocab) -> Vec<Vec<usize>> {
    let mut groups: HashMap<u32, Vec<usize>> = HashMap::new();
    for (n, r) in rows.iter().enumerate() {
        groups.entry(r.user).or_default().push(n);
    }
    let mut users: Vec<u32> = groups.keys().copied().collect();
    users.sort_by(|&a, &b| compare_ids(vocab.users.id(a), vocab.users.id(b)));
    users
        .into_iter()
        .map(|u| groups.remove(&u).unwrap_or_default())
        .collect()
}

/// The per-user rule of Liang et al.: a user with n ≥ 5 rows gets floor(test_frac · n) random rows as
/// test; users with fewer rows are all train. Returns (train, test).
pub fn per_user_holdout(
    rows: &[Row],
    vocab: &Vocab,
    test_frac: f64,
    seed: u64,
) -> (Vec<Row>, Vec<Row>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut train = Vec::new();
    let mut test = Vec::new();
    for group in by_user(rows, vocab) {
        let n = group.len();
        let n_test = if n >= 5 {
            (test_frac * n as f64) as usize
        } else {
            0
        };
        let chosen: HashSet<usize> = rand::seq::index::sample(&mut rng, n, n_test)
            .into_iter()
            .collect();
        for (pos, &row) in group.iter().enumerate() {
            if chosen.contains(&pos) {
                test.push(rows[row]);
            } else {
                train.push(rows[row]);
            }
        }
    }
    (train, test)
}

/// Each user's last `n` rows by time (ties: input order) are test, for users with more than `n` rows.
pub fn leave_last_out(rows: &[Row], vocab: &Vocab, n: usize) -> Result<(Vec<Row>, Vec<Row>)> {
    if rows.iter().any(|r| r.ts.is_none()) {
        return Err(EvalError::MissingData("ts"));
    }
    let mut train = Vec::new();
    let mut test = Vec::new();
    for mut group in by_user(rows, vocab) {
        group.sort_by_key(|&i| (rows[i].ts, i));
        let cut = if group.len() > n {
            group.len() - n
        } else {
            group.len()
        };
        train.extend(group[..cut].iter().map(|&i| rows[i]));
        test.extend(group[cut..].iter().map(|&i| rows[i]));
    }
    Ok((train, test))
}

/// Global time split: t_cut = the `quantile` of the timestamps (numpy's "lower" method); train is
/// ts ≤ t_cut, test is ts > t_cut restricted to users and items seen in train.
pub fn global_temporal(rows: &[Row], quantile: f64) -> Result<(Vec<Row>, Vec<Row>, i64)> {
    let mut ts: Vec<i64> = rows
        .iter()
        .map(|r| r.ts.ok_or(EvalError::MissingData("ts")))
        .collect::<Result<_>>()?;
    if ts.is_empty() {
        return Ok((Vec::new(), Vec::new(), 0));
    }
    ts.sort_unstable();
    let t_cut = ts[(quantile.clamp(0.0, 1.0) * (ts.len() - 1) as f64).floor() as usize];
    let train: Vec<Row> = rows
        .iter()
        .filter(|r| r.ts <= Some(t_cut))
        .copied()
        .collect();
    let (users, items) = users_and_items(&train);
    let test = rows
        .iter()
        .filter(|r| r.ts > Some(t_cut) && users.contains(&r.user) && items.contains(&r.item))
        .copied()
        .collect();
    Ok((train, test, t_cut))
}

fn users_and_items(rows: &[Row]) -> (HashSet<u32>, HashSet<u32>) {
    (
        rows.iter().map(|r| r.user).collect(),
        rows.iter().map(|r| r.item).collect(),
    )
}

/// Drops test rows whose item is not in train (the model cannot rank it).
fn keep_known_items(train: &[Row], test: Vec<Row>) -> Vec<Row> {
    let items: HashSet<u32> = train.iter().map(|r| r.item).collect();
    test.into_iter()
        .filter(|r| items.contains(&r.item))
        .collect()
}

/// Strong generalization (Liang et al. 2018): users permuted; the last `n_heldout` are test users, the
/// `n_heldout` before them validation users; the universe is the training users' items; each held-out
/// user's rows inside it are split by the per-user rule into fold-in and targets.
pub fn strong_generalization(
    rows: &[Row],
    vocab: &Vocab,
    heldout_frac: f64,
    test_frac: f64,
    seed: u64,
) -> Vec<Stage> {
    let mut users: Vec<u32> = users_and_items(rows).0.into_iter().collect();
    users.sort_by(|&a, &b| compare_ids(vocab.users.id(a), vocab.users.id(b)));
    users.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let n = users.len();
    let n_held = ((heldout_frac * n as f64) as usize).min(n / 3);
    let train_users: HashSet<u32> = users[..n - 2 * n_held].iter().copied().collect();
    let groups = [
        (
            "validation",
            Role::Validation,
            &users[n - 2 * n_held..n - n_held],
        ),
        ("test", Role::Test, &users[n - n_held..]),
    ];
    let train: Vec<Row> = rows
        .iter()
        .filter(|r| train_users.contains(&r.user))
        .copied()
        .collect();
    let universe = crate::data::unique_in_order(train.iter().map(|r| r.item));
    let in_universe: HashSet<u32> = universe.iter().copied().collect();
    groups
        .into_iter()
        .map(|(name, role, group)| {
            let members: HashSet<u32> = group.iter().copied().collect();
            let held: Vec<Row> = rows
                .iter()
                .filter(|r| members.contains(&r.user) && in_universe.contains(&r.item))
                .copied()
                .collect();
            let (fold_in, targets) = per_user_holdout(&held, vocab, test_frac, seed);
            Stage {
                name: name.to_string(),
                role,
                data: StageData::NewUsers {
                    train: train.clone(),
                    universe: universe.clone(),
                    fold_in,
                    targets,
                },
            }
        })
        .collect()
}

/// Cold-start items: a `frac` of the items (permuted) is held out entirely. Train = the other items'
/// rows; test = the cold items' rows of users who are in train. Returns (train, test, cold items).
pub fn cold_items(
    rows: &[Row],
    vocab: &Vocab,
    frac: f64,
    seed: u64,
) -> (Vec<Row>, Vec<Row>, Vec<u32>) {
    let mut items: Vec<u32> = users_and_items(rows).1.into_iter().collect();
    items.sort_by(|&a, &b| compare_ids(vocab.items.id(a), vocab.items.id(b)));
    items.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let cold: Vec<u32> = items[..(frac * items.len() as f64) as usize].to_vec();
    let cold_set: HashSet<u32> = cold.iter().copied().collect();
    let train: Vec<Row> = rows
        .iter()
        .filter(|r| !cold_set.contains(&r.item))
        .copied()
        .collect();
    let users = users_and_items(&train).0;
    let test = rows
        .iter()
        .filter(|r| cold_set.contains(&r.item) && users.contains(&r.user))
        .copied()
        .collect();
    (train, test, cold)
}

/// k-fold cross-validation over rows: rows are shuffled and dealt into k folds; fold f's test is its
/// rows, its train every other row. Test rows of items or users absent from that train are kept (the
/// task builder drops unknown items from the targets; unknown users rank from an empty history).
pub fn k_fold(rows: &[Row], k: usize, seed: u64) -> Result<Vec<(Vec<Row>, Vec<Row>)>> {
    if k < 2 {
        return Err(EvalError::InvalidOption("k-fold needs k >= 2".into()));
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut fold_of = vec![0usize; rows.len()];
    for (pos, &row) in order.iter().enumerate() {
        fold_of[row] = pos % k;
    }
    Ok((0..k)
        .map(|f| {
            let mut train = Vec::new();
            let mut test = Vec::new();
            for (n, r) in rows.iter().enumerate() {
                if fold_of[n] == f {
                    test.push(*r);
                } else {
                    train.push(*r);
                }
            }
            (train, test)
        })
        .collect())
}

fn known(
    name: &str,
    role: Role,
    train: Vec<Row>,
    test: Vec<Row>,
    cold_items: Option<Vec<u32>>,
) -> Stage {
    Stage {
        name: name.to_string(),
        role,
        data: StageData::KnownUsers {
            train,
            test,
            cold_items,
        },
    }
}

/// Splits a dataset with a named protocol; validation stages repeat the rule inside the training part
/// (seed + 1), as splits.py does.
pub fn split(
    data: &Dataset,
    protocol: &str,
    min_rating: Option<f32>,
    seed: u64,
) -> Result<SplitSet> {
    let vocab = &data.vocab;
    let stages = match protocol {
        "holdout" | "weak-gen" => {
            let rows = prepare(&data.rows, min_rating, 5)?;
            let (train, test) = per_user_holdout(&rows, vocab, 0.2, seed);
            let test = keep_known_items(&train, test);
            let (vtrain, vtest) = per_user_holdout(&train, vocab, 0.2, seed + 1);
            let vtest = keep_known_items(&vtrain, vtest);
            vec![
                known("validation", Role::Validation, vtrain, vtest, None),
                known("test", Role::Test, train, test, None),
            ]
        }
        "leave-last-out" => {
            let rows = prepare(&data.rows, min_rating, 5)?;
            let (train, test) = leave_last_out(&rows, vocab, 1)?;
            let test = keep_known_items(&train, test);
            let (vtrain, vtest) = leave_last_out(&train, vocab, 1)?;
            let vtest = keep_known_items(&vtrain, vtest);
            vec![
                known("validation", Role::Validation, vtrain, vtest, None),
                known("test", Role::Test, train, test, None),
            ]
        }
        "temporal" => {
            let rows = prepare(&data.rows, min_rating, 1)?;
            let (train, test, _) = global_temporal(&rows, 0.8)?;
            let (vtrain, vtest, _) = global_temporal(&train, 0.8)?;
            vec![
                known("validation", Role::Validation, vtrain, vtest, None),
                known("test", Role::Test, train, test, None),
            ]
        }
        "strong-gen" => {
            let rows = prepare(&data.rows, min_rating, 5)?;
            strong_generalization(&rows, vocab, 0.1, 0.2, seed)
        }
        "cold-items" => {
            let rows = prepare(&data.rows, min_rating, 5)?;
            let (train, test, cold) = cold_items(&rows, vocab, 0.1, seed);
            let (vtrain, vtest, vcold) = cold_items(&train, vocab, 0.1, seed + 1);
            vec![
                known("validation", Role::Validation, vtrain, vtest, Some(vcold)),
                known("test", Role::Test, train, test, Some(cold)),
            ]
        }
        "k-fold" => {
            let rows = prepare(&data.rows, min_rating, 1)?;
            k_fold(&rows, 5, seed)?
                .into_iter()
                .enumerate()
                .map(|(f, (train, test))| {
                    known(&format!("fold{}", f + 1), Role::Fold, train, test, None)
                })
                .collect()
        }
        other => return Err(EvalError::UnknownProtocol(other.to_string())),
    };
    Ok(SplitSet {
        protocol: protocol.to_string(),
        vocab: data.vocab.clone(),
        columns: data.columns,
        stages,
        item_features: data.item_features.clone(),
        min_rating,
    })
}

/// Reads a dataset (see [`load_dataset`]) and splits it.
pub fn split_dataset(
    path: &Path,
    protocol: &str,
    min_rating: Option<f32>,
    seed: u64,
) -> Result<SplitSet> {
    split(&load_dataset(path)?, protocol, min_rating, seed)
}

/// Reads a MovieLens folder (ml-latest-small `ratings.csv` + `movies.csv` genres, ml-100k `u.data` +
/// `u.item` genres, ml-1m `user_movie_pairs.csv`) through cairn-import's MovieLens readers, or a
/// `user,item[,rating][,ts]` CSV file.
pub fn load_dataset(path: &Path) -> Result<Dataset> {
    let mut vocab = Vocab::default();
    if path.is_file() {
        let (rows, columns) = read_rows(path, &mut vocab)?;
        return Ok(Dataset {
            vocab,
            rows,
            columns,
            item_features: None,
        });
    }
    // The first of these files decides the dataset, whatever else the folder holds.
    let (kind, columns) = if path.join("ratings.csv").exists() {
        (MovieLensKind::Latest, RATINGS_AND_TIMES)
    } else if path.join("u.data").exists() {
        (MovieLensKind::Ml100k, RATINGS_AND_TIMES)
    } else if path.join("user_movie_pairs.csv").exists() {
        (MovieLensKind::Ml1m, Columns::default())
    } else {
        return Err(EvalError::InvalidOption(format!(
            "{}: no ratings.csv, u.data or user_movie_pairs.csv, and not a CSV file",
            path.display()
        )));
    };
    let movielens = MovieLens::open(path, kind);
    let counter = ByteCounter::new();
    // ml-1m: the pairs alone, so that every row has the same columns (no rating, no time).
    let events = match kind {
        MovieLensKind::Ml1m => movielens.pairs(&counter)?,
        MovieLensKind::Latest | MovieLensKind::Ml100k => movielens.events(&counter)?,
    };
    let mut rows = Vec::new();
    for (_, event) in events {
        let event = event?;
        rows.push(Row {
            user: vocab.users.intern(&event.user_id),
            item: vocab.items.intern(&event.item_id),
            rating: event.value.map(|v| v as f32),
            ts: event.timestamp.map(|t| t.0),
        });
    }
    let item_features = match kind {
        MovieLensKind::Ml1m => None,
        // Genres are optional extras: a movies file that cannot be read gives no features.
        MovieLensKind::Latest | MovieLensKind::Ml100k => movielens
            .items(&counter)
            .ok()
            .map(|items| genre_features(items, &mut vocab)),
    };
    Ok(Dataset {
        vocab,
        rows,
        columns,
        item_features,
    })
}

const RATINGS_AND_TIMES: Columns = Columns {
    rating: true,
    ts: true,
};

/// (item, `genre:<name>`) for each genre of each movie, movies in file order; rows that the reader
/// rejects add none.
fn genre_features(items: Vec<ImportRow<Item>>, vocab: &mut Vocab) -> Vec<(u32, String)> {
    let mut pairs = Vec::new();
    for item in items.into_iter().filter_map(|(_, item)| item.ok()) {
        let index = vocab.items.intern(&item.id);
        for genre in &item.categories {
            pairs.push((index, format!("genre:{genre}")));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::IdMap;
    use proptest::prelude::*;

    fn dataset(pairs: &[(u32, u32, i64)]) -> (Vocab, Vec<Row>) {
        let n_users = pairs.iter().map(|p| p.0).max().map_or(0, |m| m + 1);
        let n_items = pairs.iter().map(|p| p.1).max().map_or(0, |m| m + 1);
        let vocab = Vocab {
            users: IdMap::from_ids((0..n_users).map(|u| u.to_string()).collect()),
            items: IdMap::from_ids((0..n_items).map(|i| i.to_string()).collect()),
        };
        let rows = pairs
            .iter()
            .map(|&(u, i, t)| Row {
                user: u,
                item: i,
                rating: Some(((u + i) % 5 + 1) as f32),
                ts: Some(t),
            })
            .collect();
        (vocab, rows)
    }

    fn pairs_strategy() -> impl Strategy<Value = Vec<(u32, u32, i64)>> {
        prop::collection::vec((0u32..25, 0u32..40, 0i64..1000), 0..400)
    }

    fn keys(rows: &[Row]) -> HashSet<(u32, u32)> {
        rows.iter().map(|r| (r.user, r.item)).collect()
    }

    #[test]
    fn prepare_dedupes_filters_ratings_and_light_users() {
        let r = |u, i, rating| Row {
            user: u,
            item: i,
            rating: Some(rating),
            ts: None,
        };
        let rows = vec![
            r(0, 0, 1.0),
            r(0, 0, 5.0),
            r(0, 1, 4.0),
            r(1, 0, 5.0),
            r(1, 1, 2.0),
        ];
        let kept = prepare(&rows, Some(4.0), 2).unwrap();
        assert_eq!(kept, vec![r(0, 0, 5.0), r(0, 1, 4.0)]);
        let no_rating = vec![Row {
            user: 0,
            item: 0,
            rating: None,
            ts: None,
        }];
        assert!(prepare(&no_rating, Some(4.0), 1).is_err());
    }

    #[test]
    fn leave_last_out_takes_the_latest_rows() {
        let (vocab, rows) = dataset(&[(0, 0, 5), (0, 1, 9), (0, 2, 1), (1, 0, 3)]);
        let (train, test) = leave_last_out(&rows, &vocab, 1).unwrap();
        assert_eq!(keys(&test), HashSet::from([(0, 1)]));
        assert_eq!(train.len(), 3, "a user with one row keeps it in train");
    }

    #[test]
    fn temporal_cut_uses_the_lower_quantile() {
        let (_, rows) = dataset(&[(0, 0, 1), (0, 1, 2), (1, 0, 3), (1, 1, 4), (0, 2, 5)]);
        // ts sorted 1..5, index floor(0.8 * 4) = 3 -> t_cut = 4; test = ts 5 but item 2 is unseen
        let (train, test, cut) = global_temporal(&rows, 0.8).unwrap();
        assert_eq!((cut, train.len(), test.len()), (4, 4, 0));
    }

    proptest! {
        #[test]
        fn holdout_partitions_each_users_rows(pairs in pairs_strategy(), seed in 0u64..50) {
            let (vocab, rows) = dataset(&pairs);
            let rows = prepare(&rows, None, 1).unwrap();
            let (train, test) = per_user_holdout(&rows, &vocab, 0.2, seed);
            prop_assert_eq!(train.len() + test.len(), rows.len());
            prop_assert!(keys(&train).is_disjoint(&keys(&test)));
            let mut per_user: HashMap<u32, (usize, usize)> = HashMap::new();
            for r in &train { per_user.entry(r.user).or_default().0 += 1; }
            for r in &test { per_user.entry(r.user).or_default().1 += 1; }
            for (_, (tr, te)) in per_user {
                let n = tr + te;
                prop_assert_eq!(te, if n >= 5 { (0.2 * n as f64) as usize } else { 0 });
            }
            prop_assert_eq!(per_user_holdout(&rows, &vocab, 0.2, seed), (train, test));
        }

        #[test]
        fn strong_gen_separates_users_and_stays_in_the_universe(pairs in pairs_strategy(), seed in 0u64..50) {
            let (vocab, rows) = dataset(&pairs);
            let rows = prepare(&rows, None, 1).unwrap();
            let stages = strong_generalization(&rows, &vocab, 0.1, 0.2, seed);
            prop_assert_eq!(stages.len(), 2);
            let mut heldout_users = Vec::new();
            for s in &stages {
                let StageData::NewUsers { train, universe, fold_in, targets } = &s.data else {
                    return Err(TestCaseError::fail("strong-gen stages are new-user stages"));
                };
                let train_users: HashSet<u32> = train.iter().map(|r| r.user).collect();
                let universe: HashSet<u32> = universe.iter().copied().collect();
                let users: HashSet<u32> = fold_in.iter().chain(targets).map(|r| r.user).collect();
                prop_assert!(train_users.is_disjoint(&users));
                prop_assert!(fold_in.iter().chain(targets).all(|r| universe.contains(&r.item)));
                prop_assert!(keys(fold_in).is_disjoint(&keys(targets)));
                heldout_users.push(users);
            }
            prop_assert!(heldout_users[0].is_disjoint(&heldout_users[1]));
            let again = strong_generalization(&rows, &vocab, 0.1, 0.2, seed);
            prop_assert_eq!(format!("{:?}", again), format!("{:?}", stages));
        }

        #[test]
        fn cold_items_never_appear_in_train(pairs in pairs_strategy(), seed in 0u64..50) {
            let (vocab, rows) = dataset(&pairs);
            let rows = prepare(&rows, None, 1).unwrap();
            let (train, test, cold) = cold_items(&rows, &vocab, 0.1, seed);
            let cold: HashSet<u32> = cold.into_iter().collect();
            prop_assert!(train.iter().all(|r| !cold.contains(&r.item)));
            prop_assert!(test.iter().all(|r| cold.contains(&r.item)));
            let train_users: HashSet<u32> = train.iter().map(|r| r.user).collect();
            prop_assert!(test.iter().all(|r| train_users.contains(&r.user)));
            let all_cold_rows = rows.iter().filter(|r| cold.contains(&r.item) && train_users.contains(&r.user)).count();
            prop_assert_eq!(test.len(), all_cold_rows);
        }

        #[test]
        fn temporal_test_is_later_than_train(pairs in pairs_strategy()) {
            let (_, rows) = dataset(&pairs);
            let rows = prepare(&rows, None, 1).unwrap();
            let (train, test, cut) = global_temporal(&rows, 0.8).unwrap();
            prop_assert!(train.iter().all(|r| r.ts <= Some(cut)));
            prop_assert!(test.iter().all(|r| r.ts > Some(cut)));
            let (users, items) = users_and_items(&train);
            prop_assert!(test.iter().all(|r| users.contains(&r.user) && items.contains(&r.item)));
        }

        #[test]
        fn leave_last_out_keeps_the_latest(pairs in pairs_strategy()) {
            let (vocab, rows) = dataset(&pairs);
            let rows = prepare(&rows, None, 1).unwrap();
            let (train, test) = leave_last_out(&rows, &vocab, 1).unwrap();
            prop_assert_eq!(train.len() + test.len(), rows.len());
            for t in &test {
                prop_assert!(train.iter().filter(|r| r.user == t.user).all(|r| r.ts <= t.ts));
            }
        }

        #[test]
        fn k_fold_tests_cover_every_row_once(pairs in pairs_strategy(), seed in 0u64..50, k in 2usize..6) {
            let (_, rows) = dataset(&pairs);
            let rows = prepare(&rows, None, 1).unwrap();
            let folds = k_fold(&rows, k, seed).unwrap();
            prop_assert_eq!(folds.len(), k);
            let mut seen: HashMap<(u32, u32), usize> = HashMap::new();
            for (train, test) in &folds {
                prop_assert_eq!(train.len() + test.len(), rows.len());
                prop_assert!(keys(train).is_disjoint(&keys(test)));
                for r in test { *seen.entry((r.user, r.item)).or_default() += 1; }
            }
            prop_assert_eq!(seen.len(), rows.len());
            prop_assert!(seen.values().all(|&c| c == 1));
            prop_assert_eq!(k_fold(&rows, k, seed).unwrap(), folds);
        }
    }
}
