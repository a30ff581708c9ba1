//! The trained models that serving uses: one value that holds every fitted model, the item table,
//! the content index and the learned ranker, and that every stage reads. Fitting it is [`crate::fit`]
//! (the retrieval models, then the ranker through [`crate::training`]); saving and loading it is
//! [`crate::artifact`]. This module holds only the types, so the stages that read a model set do
//! not depend on how it is fitted.

use cairn_content::{ContentModel, FeatureSpace};
use cairn_core::IdMap;
use cairn_models::{FittedModel, ItemKnn, Popularity, Trending};
use cairn_rank::Ranker;
use serde::{Deserialize, Serialize};

use crate::ann::ItemIndex;
use crate::guard_report::GuardReport;
use crate::items::ItemTable;

/// Item features and the content recommender, indexed like the [`ItemTable`] (so over items
/// nobody has touched too), so that new items can be matched to users by what they are.
#[derive(Serialize, Deserialize)]
pub struct ContentIndex {
    pub space: FeatureSpace,
    pub model: ContentModel,
}

#[derive(Serialize, Deserialize)]
pub struct ModelSet {
    pub version: String,
    pub trained_at: i64,
    /// Log position of the last event the models saw.
    pub last_seq: u64,
    pub reference_time: i64,
    pub n_users: usize,
    pub n_interactions: usize,
    /// The collaborative models' items (the first `items.len()` entries of `table`).
    pub items: IdMap,
    /// Every item the pipeline can consider, with the facts its stages use.
    pub table: ItemTable,
    pub popularity: Popularity,
    pub trending: Trending,
    pub knn: ItemKnn,
    /// The configured ranking model (`train.model`), when it is not item-kNN.
    pub main: Option<FittedModel>,
    /// Content model over every catalog item at training time, including items nobody has touched
    /// yet; `None` when the catalog was empty.
    pub content: Option<ContentIndex>,
    /// The pipeline's learned ranker; `None` when disabled or the log was too small.
    pub ranker: Option<TrainedRanker>,
    /// Nearest-neighbour index over the factor model's item vectors; `None` for small catalogs
    /// (scored exactly) and models without item vectors.
    pub ann: Option<ItemIndex>,
    /// Item indices by decreasing popularity / trending score (zero-score items left out).
    pub popular_order: Vec<u32>,
    pub trending_order: Vec<u32>,
    /// What the ranker's guard measured on the newest slice of the training log and which order
    /// it chose (`crate::guard`); `None` when no ranker was trained, the guard is off, or the
    /// slice held no user to compare on (the ranker then serves unchecked). The last field, so
    /// that files of formats 4 and 5 load with `None` (see `crate::artifact`).
    pub guard: Option<GuardReport>,
}

/// A fitted ranker and how it did on held-out users at training time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainedRanker {
    pub ranker: Ranker,
    pub feature_names: Vec<String>,
    /// Candidate lists (a user at one cut) it was trained and validated on.
    pub train_groups: usize,
    pub valid_groups: usize,
    /// NDCG@10 over the validation lists: the ranker's, and reciprocal-rank fusion's. Where the
    /// log was cut several times, a validation list's user may have trained on another cut, so
    /// this is a little optimistic; offline evaluation on later events is the real test.
    pub valid_ndcg: f64,
    pub fusion_ndcg: f64,
}

impl TrainedRanker {
    pub fn predict_many(&self, rows: &[f32], out: &mut [f32]) {
        self.ranker.predict_many(rows, out)
    }
}
