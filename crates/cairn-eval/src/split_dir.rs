//! Reads the split folders that the peers' `splits.py` writes, file for file, so that Cairn and the
//! peer libraries are scored on identical rows.

use std::path::{Path, PathBuf};

use crate::data::{read_item_features, read_item_list, read_rows, Columns, Row, Vocab};
use crate::error::{EvalError, Result};
use crate::split::{Protocol, Role, SplitSet, Stage, StageData};

/// The protocol recorded in the folder's `meta.json`.
pub fn detect_protocol(dir: &Path) -> Result<Protocol> {
    let meta = dir.join("meta.json");
    let text = std::fs::read_to_string(&meta)
        .map_err(|_| EvalError::UnknownSplitProtocol(dir.to_path_buf()))?;
    let value: serde_json::Value = serde_json::from_str(&text)?;
    value
        .get("protocol")
        .and_then(|p| p.as_str())
        .ok_or_else(|| EvalError::UnknownSplitProtocol(dir.to_path_buf()))?
        .parse()
}

/// Reads every stage of a split folder. `protocol` defaults to the one in `meta.json`.
pub fn read_split_dir(dir: &Path, protocol: Option<Protocol>) -> Result<SplitSet> {
    let protocol = match protocol {
        Some(p) => p,
        None => detect_protocol(dir)?,
    };
    let mut reader = FolderReader {
        dir: dir.to_path_buf(),
        protocol,
        vocab: Vocab::default(),
        columns: Columns {
            rating: true,
            ts: true,
        },
    };
    let stages = match protocol {
        Protocol::StrongGen => reader.strong_gen()?,
        Protocol::WeakGen | Protocol::Temporal => reader.known_users(None)?,
        Protocol::ColdItems => {
            reader.known_users(Some(("cold_items.csv", "validation_cold_items.csv")))?
        }
        Protocol::ExplicitMl100k => reader.folds()?,
    };
    let features_path = dir.join("item_features.csv");
    let item_features = if features_path.exists() {
        Some(read_item_features(&features_path, &mut reader.vocab)?)
    } else {
        None
    };
    Ok(SplitSet {
        protocol: protocol.name().to_string(),
        vocab: reader.vocab,
        columns: reader.columns,
        stages,
        item_features,
        min_rating: None,
    })
}

struct FolderReader {
    dir: PathBuf,
    protocol: Protocol,
    vocab: Vocab,
    /// A column counts as present only if every file read had it.
    columns: Columns,
}

impl FolderReader {
    fn path(&self, name: &str) -> Result<PathBuf> {
        let p = self.dir.join(name);
        if p.exists() {
            Ok(p)
        } else {
            Err(EvalError::MissingSplitFile {
                path: self.dir.clone(),
                protocol: self.protocol.name().to_string(),
                file: name.to_string(),
            })
        }
    }

    fn rows(&mut self, name: &str) -> Result<Vec<Row>> {
        let path = self.path(name)?;
        let (rows, cols) = read_rows(&path, &mut self.vocab)?;
        self.columns.rating &= cols.rating;
        self.columns.ts &= cols.ts;
        Ok(rows)
    }

    fn has(&self, name: &str) -> bool {
        self.dir.join(name).exists()
    }

    fn strong_gen(&mut self) -> Result<Vec<Stage>> {
        let train = self.rows("train.csv")?;
        let universe = read_item_list(&self.path("items.csv")?, &mut self.vocab)?;
        let mut stages = Vec::new();
        for (name, role, tr, te) in [
            (
                "validation",
                Role::Validation,
                "validation_tr.csv",
                "validation_te.csv",
            ),
            ("test", Role::Test, "test_tr.csv", "test_te.csv"),
        ] {
            if role == Role::Validation && !(self.has(tr) && self.has(te)) {
                continue;
            }
            stages.push(Stage {
                name: name.to_string(),
                role,
                data: StageData::NewUsers {
                    train: train.clone(),
                    universe: universe.clone(),
                    fold_in: self.rows(tr)?,
                    targets: self.rows(te)?,
                },
            });
        }
        Ok(stages)
    }

    fn known_users(&mut self, cold: Option<(&str, &str)>) -> Result<Vec<Stage>> {
        let mut stages = Vec::new();
        for (name, role, tr, te, cold_file) in [
            (
                "validation",
                Role::Validation,
                "validation_train.csv",
                "validation_test.csv",
                cold.map(|c| c.1),
            ),
            (
                "test",
                Role::Test,
                "train.csv",
                "test.csv",
                cold.map(|c| c.0),
            ),
        ] {
            if role == Role::Validation && !(self.has(tr) && self.has(te)) {
                continue;
            }
            let cold_items = match cold_file {
                Some(f) => Some(read_item_list(&self.path(f)?, &mut self.vocab)?),
                None => None,
            };
            stages.push(Stage {
                name: name.to_string(),
                role,
                data: StageData::KnownUsers {
                    train: self.rows(tr)?,
                    test: self.rows(te)?,
                    cold_items,
                },
            });
        }
        Ok(stages)
    }

    /// `u1/ … u5/`, each with `train.csv` and `test.csv`.
    fn folds(&mut self) -> Result<Vec<Stage>> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .map_err(|e| EvalError::io(&self.dir, e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("train.csv").exists() && e.path().join("test.csv").exists())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        names.sort();
        if names.is_empty() {
            return Err(EvalError::MissingSplitFile {
                path: self.dir.clone(),
                protocol: self.protocol.name().to_string(),
                file: "u1/train.csv".to_string(),
            });
        }
        let mut stages = Vec::new();
        for name in names {
            stages.push(Stage {
                role: Role::Fold,
                data: StageData::KnownUsers {
                    train: self.rows(&format!("{name}/train.csv"))?,
                    test: self.rows(&format!("{name}/test.csv"))?,
                    cold_items: None,
                },
                name,
            });
        }
        Ok(stages)
    }
}
