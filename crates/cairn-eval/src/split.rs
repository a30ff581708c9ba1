//! A split: the named parts of one evaluation protocol, in the shapes `splits.py` writes, whether they
//! were read from a split folder ([`crate::split_dir`]) or made by a Rust splitter ([`crate::splitters`]).

use serde::{Deserialize, Serialize};

use crate::data::{Columns, Row, Vocab};
use crate::error::EvalError;

/// The five protocols of the peers harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    ExplicitMl100k,
    StrongGen,
    WeakGen,
    ColdItems,
    Temporal,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::ExplicitMl100k => "explicit-ml100k",
            Protocol::StrongGen => "strong-gen",
            Protocol::WeakGen => "weak-gen",
            Protocol::ColdItems => "cold-items",
            Protocol::Temporal => "temporal",
        }
    }
}

impl std::str::FromStr for Protocol {
    type Err = EvalError;
    fn from_str(s: &str) -> Result<Self, EvalError> {
        Ok(match s {
            "explicit-ml100k" | "explicit" => Protocol::ExplicitMl100k,
            "strong-gen" => Protocol::StrongGen,
            "weak-gen" => Protocol::WeakGen,
            "cold-items" => Protocol::ColdItems,
            "temporal" => Protocol::Temporal,
            other => return Err(EvalError::UnknownProtocol(other.to_string())),
        })
    }
}

/// What a stage is for: tuning, the final score, or one of several cross-validation folds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Validation,
    Test,
    Fold,
}

/// One fit-and-score pass.
#[derive(Debug, Clone)]
pub struct Stage {
    /// `validation`, `test`, or the fold's name (`u1`).
    pub name: String,
    pub role: Role,
    pub data: StageData,
}

#[derive(Debug, Clone)]
pub enum StageData {
    /// Strong generalization: the model never sees the evaluated users in training; each is scored
    /// from their fold-in rows against their target rows. The item universe is given explicitly.
    NewUsers {
        train: Vec<Row>,
        universe: Vec<u32>,
        fold_in: Vec<Row>,
        targets: Vec<Row>,
    },
    /// Weak generalization, temporal, cold items, folds: the evaluated users are training users, their
    /// history is their own training rows. The universe is the training items (plus the cold items).
    KnownUsers {
        train: Vec<Row>,
        test: Vec<Row>,
        /// Cold-items protocol: the only items a test user ranks.
        cold_items: Option<Vec<u32>>,
    },
}

/// A complete split: its stages plus what all stages share.
#[derive(Debug, Clone)]
pub struct SplitSet {
    /// Protocol name for reports (a peer protocol or a Rust splitter's name).
    pub protocol: String,
    pub vocab: Vocab,
    pub columns: Columns,
    pub stages: Vec<Stage>,
    /// (item, feature) pairs for intra-list diversity, if the split has side information.
    pub item_features: Option<Vec<(u32, String)>>,
    /// Rows rated below this were dropped before splitting (`--min-rating`): the explicit ratings
    /// left are positives only, which biases RMSE and MAE (see [`crate::runner::Report::warnings`]).
    pub min_rating: Option<f32>,
}

impl SplitSet {
    pub fn stages_with_role(&self, role: Role) -> impl Iterator<Item = &Stage> {
        self.stages.iter().filter(move |s| s.role == role)
    }

    /// The stages that give the final numbers: the test stage, or every fold.
    pub fn scoring_stages(&self) -> Vec<&Stage> {
        self.stages
            .iter()
            .filter(|s| s.role != Role::Validation)
            .collect()
    }
}
