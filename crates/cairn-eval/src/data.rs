//! Interaction rows with interned ids, and the CSV reader for the `user,item[,rating][,weight][,ts]`
//! files that the peers' `splits.py` writes (and that datasets exported to CSV use).

use std::cmp::Ordering;
use std::path::Path;

use cairn_core::IdMap;

use crate::error::{EvalError, Result};

/// User and item ids shared by every file of one split, so that rows of different files can be joined.
#[derive(Debug, Clone, Default)]
pub struct Vocab {
    pub users: IdMap,
    pub items: IdMap,
}

/// One interaction. `user` and `item` index the [`Vocab`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub user: u32,
    pub item: u32,
    /// Explicit rating, where the data has one (used for graded gain and RMSE).
    pub rating: Option<f32>,
    /// Unix seconds, where the data has them.
    pub ts: Option<i64>,
}

/// Which optional columns a file had.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Columns {
    pub rating: bool,
    pub ts: bool,
}

/// Reads an interaction CSV with a header naming at least `user` and `item`. Other columns are
/// optional; `weight` is read past because the harness binarizes every interaction.
pub fn read_rows(path: &Path, vocab: &mut Vocab) -> Result<(Vec<Row>, Columns)> {
    let mut reader = open_csv(path)?;
    let headers = reader
        .headers()
        .map_err(|source| EvalError::Csv {
            path: path.to_path_buf(),
            source,
        })?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let user_col = col("user").ok_or_else(|| EvalError::MissingColumn {
        path: path.to_path_buf(),
        column: "user",
    })?;
    let item_col = col("item").ok_or_else(|| EvalError::MissingColumn {
        path: path.to_path_buf(),
        column: "item",
    })?;
    let rating_col = col("rating");
    let ts_col = col("ts");
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let more = reader
            .read_record(&mut record)
            .map_err(|source| EvalError::Csv {
                path: path.to_path_buf(),
                source,
            })?;
        if !more {
            break;
        }
        let line = record.position().map_or(0, |p| p.line());
        let field = |c: usize, column: &'static str| -> Result<&str> {
            record.get(c).ok_or_else(|| EvalError::BadValue {
                path: path.to_path_buf(),
                line,
                column,
                value: String::new(),
            })
        };
        let user = vocab.users.intern(field(user_col, "user")?.trim());
        let item = vocab.items.intern(field(item_col, "item")?.trim());
        let rating = match rating_col {
            Some(c) => Some(parse_f32(field(c, "rating")?, path, line, "rating")?),
            None => None,
        };
        let ts = match ts_col {
            Some(c) => Some(parse_ts(field(c, "ts")?, path, line)?),
            None => None,
        };
        rows.push(Row {
            user,
            item,
            rating,
            ts,
        });
    }
    Ok((
        rows,
        Columns {
            rating: rating_col.is_some(),
            ts: ts_col.is_some(),
        },
    ))
}

/// Reads a one-column CSV of item ids (`items.csv`, `cold_items.csv`), in file order.
pub fn read_item_list(path: &Path, vocab: &mut Vocab) -> Result<Vec<u32>> {
    let mut reader = open_csv(path)?;
    let mut items = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|source| EvalError::Csv {
            path: path.to_path_buf(),
            source,
        })?;
        if let Some(id) = record.get(0) {
            items.push(vocab.items.intern(id.trim()));
        }
    }
    Ok(items)
}

/// Reads `item_features.csv` (`item,feature`, one row per pair) as (item, feature name) pairs.
pub fn read_item_features(path: &Path, vocab: &mut Vocab) -> Result<Vec<(u32, String)>> {
    let mut reader = open_csv(path)?;
    let mut pairs = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|source| EvalError::Csv {
            path: path.to_path_buf(),
            source,
        })?;
        if let (Some(item), Some(feature)) = (record.get(0), record.get(1)) {
            pairs.push((vocab.items.intern(item.trim()), feature.to_string()));
        }
    }
    Ok(pairs)
}

fn open_csv(path: &Path) -> Result<csv::Reader<std::fs::File>> {
    let file = std::fs::File::open(path).map_err(|e| EvalError::io(path, e))?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(file))
}

fn parse_f32(s: &str, path: &Path, line: u64, column: &'static str) -> Result<f32> {
    s.trim()
        .parse::<f32>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| EvalError::BadValue {
            path: path.to_path_buf(),
            line,
            column,
            value: s.to_string(),
        })
}

fn parse_ts(s: &str, path: &Path, line: u64) -> Result<i64> {
    let t = s.trim();
    if let Ok(v) = t.parse::<i64>() {
        return Ok(v);
    }
    // Some exports write seconds as floats ("964982703.0").
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v as i64),
        _ => Err(EvalError::BadValue {
            path: path.to_path_buf(),
            line,
            column: "ts",
            value: s.to_string(),
        }),
    }
}

/// Orders ids the way numpy sorts the harness's integer ids: numerically when both parse as integers,
/// otherwise as strings (integers first).
pub fn compare_ids(a: &str, b: &str) -> Ordering {
    match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// Distinct indices in first-appearance order (`pandas.unique`).
pub fn unique_in_order(values: impl IntoIterator<Item = u32>) -> Vec<u32> {
    let mut seen = std::collections::HashSet::new();
    values.into_iter().filter(|v| seen.insert(*v)).collect()
}

/// Distinct indices sorted by their ids (`numpy.sort(pandas.unique(...))`).
pub fn unique_sorted_by_id(values: impl IntoIterator<Item = u32>, ids: &IdMap) -> Vec<u32> {
    let mut out = unique_in_order(values);
    out.sort_by(|&a, &b| compare_ids(ids.id(a), ids.id(b)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_optional_columns_and_interns_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        let mut f = std::fs::File::create(&path).unwrap();
        writeln!(
            f,
            "user,item,rating,weight,ts\n1,10,4.5,3,100\n2,10,1,1,200.0"
        )
        .unwrap();
        let mut vocab = Vocab::default();
        let (rows, cols) = read_rows(&path, &mut vocab).unwrap();
        assert_eq!(
            cols,
            Columns {
                rating: true,
                ts: true
            }
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].item, rows[0].item);
        assert_eq!(rows[0].rating, Some(4.5));
        assert_eq!(rows[1].ts, Some(200));
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, "user,item,rating\n1,2,abc\n").unwrap();
        let err = read_rows(&path, &mut Vocab::default()).unwrap_err();
        assert!(
            matches!(
                err,
                EvalError::BadValue {
                    column: "rating",
                    ..
                }
            ),
            "{err}"
        );
        std::fs::write(&path, "u,item\n1,2\n").unwrap();
        assert!(matches!(
            read_rows(&path, &mut Vocab::default()),
            Err(EvalError::MissingColumn { column: "user", .. })
        ));
    }

    #[test]
    fn ids_sort_numerically_like_numpy() {
        let mut ids = vec!["10", "9", "b", "100", "a"];
        ids.sort_by(|a, b| compare_ids(a, b));
        assert_eq!(ids, vec!["9", "10", "100", "a", "b"]);
    }
}
