//! The peers harness's split folders as the bench's models see them, and synth.py output. The split
//! files are parsed by cairn-eval's readers (`cairn_eval::data`), as `cairn eval --split-dir` parses
//! them; indices are given here, in the orders the bench's numbers have always come from (a model's
//! fit depends on them): items in `items.csv` order for strong generalization, users and items in order
//! of first appearance in `train.csv` otherwise.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, Result};
use cairn_core::{CsrMatrix, IdMap, InteractionMatrix};
use cairn_eval::data::{read_item_list, read_rows, Vocab};
use cairn_eval::task::RatingPair;

/// A strong-generalization split: the training matrix over the split's item universe and the two
/// held-out groups.
pub struct StrongSplit {
    pub train: InteractionMatrix,
    pub validation: HeldOut,
    pub test: HeldOut,
}

/// One held-out user: fold-in history and targets, as item indices.
pub type HeldOutUser = (Vec<(u32, f32)>, Vec<u32>);

/// Held-out users.
pub struct HeldOut {
    pub users: Vec<HeldOutUser>,
}

pub fn read_strong(dir: &Path) -> Result<StrongSplit> {
    let mut vocab = Vocab::default();
    let universe = read_item_list(&dir.join("items.csv"), &mut vocab)?;
    let items = IdMap::from_ids(
        universe
            .iter()
            .map(|&i| vocab.items.id(i).to_string())
            .collect(),
    );
    let mut users = IdMap::new();
    let mut triplets = Vec::new();
    for row in read_rows(&dir.join("train.csv"), &mut vocab)?.0 {
        if let Some(i) = items.get(vocab.items.id(row.item)) {
            triplets.push((users.intern(vocab.users.id(row.user)), i, 1.0));
        }
    }
    let train = InteractionMatrix::from_triplets(users, items, triplets);
    Ok(StrongSplit {
        validation: read_held_out(
            dir,
            &mut vocab,
            &train.items,
            "validation_tr.csv",
            "validation_te.csv",
        )?,
        test: read_held_out(dir, &mut vocab, &train.items, "test_tr.csv", "test_te.csv")?,
        train,
    })
}

/// Held-out users in order of first appearance (fold-in file, then targets file); rows of items
/// outside `items` are dropped.
fn read_held_out(
    dir: &Path,
    vocab: &mut Vocab,
    items: &IdMap,
    fold_in: &str,
    targets: &str,
) -> Result<HeldOut> {
    let mut by_user: HashMap<u32, HeldOutUser> = HashMap::new();
    let mut order = Vec::new();
    for (file, is_target) in [(fold_in, false), (targets, true)] {
        for row in read_rows(&dir.join(file), vocab)?.0 {
            let Some(i) = items.get(vocab.items.id(row.item)) else {
                continue;
            };
            let e = by_user.entry(row.user).or_insert_with(|| {
                order.push(row.user);
                (Vec::new(), Vec::new())
            });
            if is_target {
                e.1.push(i);
            } else {
                e.0.push((i, 1.0));
            }
        }
    }
    let users = order
        .into_iter()
        .filter_map(|u| by_user.remove(&u))
        .collect();
    Ok(HeldOut { users })
}

/// synth.py's `interactions.csv` as a binary users × items matrix (ids are already dense integers).
pub fn read_synth(dir: &Path) -> Result<CsrMatrix> {
    let path = dir.join("interactions.csv");
    let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut lines = BufReader::with_capacity(1 << 22, file).lines();
    lines.next().context("empty file")??;
    let mut triplets = Vec::with_capacity(20_000_000);
    let (mut n_users, mut n_items) = (0u32, 0u32);
    for line in lines {
        let line = line?;
        let mut f = line.split(',');
        let u: u32 = f.next().context("user")?.parse()?;
        let i: u32 = f.next().context("item")?.parse()?;
        n_users = n_users.max(u + 1);
        n_items = n_items.max(i + 1);
        triplets.push((u, i, 1.0f32));
    }
    Ok(CsrMatrix::from_triplets(
        n_users as usize,
        n_items as usize,
        triplets,
    ))
}

/// An explicit-ratings fold: training matrix (values are ratings) and test ratings in its indices
/// (`None` for ids the training data lacks).
pub struct RatingFold {
    pub train: InteractionMatrix,
    pub test: Vec<RatingPair>,
}

pub fn read_rating_fold(dir: &Path) -> Result<RatingFold> {
    // Only train.csv's ids are interned, so the vocabulary's indices are the training indices.
    let mut vocab = Vocab::default();
    let mut triplets = Vec::new();
    for row in read_rows(&dir.join("train.csv"), &mut vocab)?.0 {
        let r = row.rating.context("train.csv needs a rating column")?;
        triplets.push((row.user, row.item, r));
    }
    let train = InteractionMatrix::from_triplets(vocab.users, vocab.items, triplets);
    let mut test_vocab = Vocab::default();
    let test = read_rows(&dir.join("test.csv"), &mut test_vocab)?
        .0
        .into_iter()
        .map(|row| {
            Ok(RatingPair {
                user: train.users.get(test_vocab.users.id(row.user)),
                item: train.items.get(test_vocab.items.id(row.item)),
                rating: row.rating.context("rating")?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(RatingFold { train, test })
}
