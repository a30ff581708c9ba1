//! Readers for the peers harness's split folders and synth.py output. The files are plain
//! `user,item[,rating|weight,ts]` CSVs with a header; ids stay strings, mapped to dense indices.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{bail, Context, Result};
use cairn_core::{CsrMatrix, IdMap, InteractionMatrix};

/// Rows of a CSV as (user, item, third column if any).
pub fn read_rows(path: &Path) -> Result<Vec<(String, String, Option<f32>)>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut lines = BufReader::with_capacity(1 << 20, file).lines();
    let header = lines.next().context("empty file")??;
    if !header.starts_with("user,item") {
        bail!(
            "{}: expected a user,item header, got {header}",
            path.display()
        );
    }
    let mut out = Vec::new();
    for (n, line) in lines.enumerate() {
        let line = line?;
        let mut f = line.split(',');
        let (Some(u), Some(i)) = (f.next(), f.next()) else {
            bail!("{}:{}: short line", path.display(), n + 2);
        };
        let third = match f.next() {
            Some(v) => Some(
                v.parse::<f32>()
                    .with_context(|| format!("{}:{}", path.display(), n + 2))?,
            ),
            None => None,
        };
        out.push((u.to_string(), i.to_string(), third));
    }
    Ok(out)
}

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

/// A test rating in training indices (`None` for ids the training data lacks).
pub type TestRating = (Option<u32>, Option<u32>, f32);

pub fn read_strong(dir: &Path) -> Result<StrongSplit> {
    let items: Vec<String> = read_single_column(&dir.join("items.csv"))?;
    let items = IdMap::from_ids(items);
    let mut users = IdMap::new();
    let mut triplets = Vec::new();
    for (u, i, _) in read_rows(&dir.join("train.csv"))? {
        if let Some(i) = items.get(&i) {
            triplets.push((users.intern(&u), i, 1.0));
        }
    }
    let train = InteractionMatrix::from_triplets(users, items, triplets);
    let held = |tr: &str, te: &str| -> Result<HeldOut> {
        let mut by_user: HashMap<String, HeldOutUser> = HashMap::new();
        let mut order = Vec::new();
        for (file, is_target) in [(tr, false), (te, true)] {
            for (u, i, _) in read_rows(&dir.join(file))? {
                let Some(i) = train.items.get(&i) else {
                    continue;
                };
                let e = by_user.entry(u.clone()).or_insert_with(|| {
                    order.push(u.clone());
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
    };
    Ok(StrongSplit {
        validation: held("validation_tr.csv", "validation_te.csv")?,
        test: held("test_tr.csv", "test_te.csv")?,
        train,
    })
}

fn read_single_column(path: &Path) -> Result<Vec<String>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if n > 0 && !line.is_empty() {
            out.push(line.split(',').next().unwrap_or_default().to_string());
        }
    }
    Ok(out)
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

/// An explicit-ratings fold: training matrix (values are ratings) and test triples in its indices
/// (`None` for ids the training data lacks).
pub struct RatingFold {
    pub train: InteractionMatrix,
    pub test: Vec<TestRating>,
}

pub fn read_rating_fold(dir: &Path) -> Result<RatingFold> {
    let mut users = IdMap::new();
    let mut items = IdMap::new();
    let mut triplets = Vec::new();
    for (u, i, r) in read_rows(&dir.join("train.csv"))? {
        let r = r.context("train.csv needs a rating column")?;
        triplets.push((users.intern(&u), items.intern(&i), r));
    }
    let train = InteractionMatrix::from_triplets(users, items, triplets);
    let test = read_rows(&dir.join("test.csv"))?
        .into_iter()
        .map(|(u, i, r)| {
            Ok((
                train.users.get(&u),
                train.items.get(&i),
                r.context("rating")?,
            ))
        })
        .collect::<Result<_>>()?;
    Ok(RatingFold { train, test })
}
