//! Fitting a [`ModelSet`]: the `[train]` configuration, the retrieval models (popularity, trending,
//! item-kNN, the configured model, the item table, the content index, the ANN index) and then the
//! ranker, which [`crate::training`] learns from the same models refitted on the log's past.

use std::collections::HashMap;

use cairn_content::{ContentModel, FeatureConfig, FeatureSpace};
use cairn_core::Item;
use cairn_models::{ItemKnn, ItemKnnConfig, ModelSpec, Popularity, Trending};
use serde::{Deserialize, Serialize};

use crate::ann::{AnnConfig, ItemIndex};
use crate::items::ItemTable;
use crate::model_set::{ContentIndex, ModelSet};
use crate::placement::PlacementConfig;
use crate::request::HistoryConfig;
use crate::retrieve::item_vectors;
use crate::snapshot::Snapshot;
use crate::training::{fit_ranker, RankerTrainConfig};
use crate::PipelineError;

/// What fitting a model set uses: the `[train]` section of the engine's configuration (whose
/// `interval_secs` the server's background retraining reads, and `keep_models` the artifact pruning).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Background retraining period of `cairn serve`; 0 disables it.
    pub interval_secs: u64,
    /// Popularity half-life; 0 gives all-time counts.
    pub popularity_half_life_days: f64,
    /// Trending compares this recent window...
    pub trending_window_hours: f64,
    /// ...with this much history before it.
    pub trending_baseline_days: f64,
    pub knn_neighbours: usize,
    pub knn_shrinkage: f32,
    /// Model files kept in `data_dir/models` (older ones are deleted after a successful train).
    pub keep_models: usize,
    /// The model that ranks personalised recommendations, e.g. `{ model = "als", factors = 64 }`.
    /// Item-kNN is always fitted too: it gives the reasons and the similar-items lists. `None`
    /// leaves item-kNN as the only collaborative retriever.
    pub model: Option<ModelSpec>,
    /// The approximate nearest-neighbour index over the factor model's item vectors.
    pub ann: AnnConfig,
    /// The learned ranker of the serving pipeline.
    pub ranker: RankerTrainConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            interval_secs: 3600,
            popularity_half_life_days: 30.0,
            trending_window_hours: 24.0,
            trending_baseline_days: 14.0,
            knn_neighbours: 100,
            knn_shrinkage: 10.0,
            keep_models: 3,
            model: Some(ModelSpec::default_for("als").expect("als is a known model")),
            ann: AnnConfig::default(),
            ranker: RankerTrainConfig::default(),
        }
    }
}

impl TrainConfig {
    /// Checks what serde cannot; the message names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        let r = &self.ranker;
        if !(r.label_fraction > 0.0 && r.label_fraction < 1.0) {
            return Err("train.ranker.label_fraction must be between 0 and 1".into());
        }
        if self.knn_neighbours == 0 {
            return Err("train.knn_neighbours must be at least 1".into());
        }
        Ok(())
    }
}

impl ContentIndex {
    fn fit(table: &ItemTable, catalog: &[Item]) -> Result<Option<ContentIndex>, PipelineError> {
        if catalog.is_empty() {
            return Ok(None);
        }
        let err = PipelineError::Content;
        let by_id: HashMap<&str, &Item> = catalog.iter().map(|i| (i.id.as_str(), i)).collect();
        // Items deleted since their events keep an empty feature row.
        let rows: Vec<Item> = (0..table.len() as u32)
            .map(|i| {
                let id = table.ids.id(i);
                by_id
                    .get(id)
                    .map_or_else(|| Item::new(id), |item| (*item).clone())
            })
            .collect();
        let space = FeatureSpace::fit_items(catalog, &FeatureConfig::default()).map_err(err)?;
        let model = ContentModel::new(space.item_matrix(&rows)).map_err(err)?;
        Ok(Some(ContentIndex { space, model }))
    }
}

fn order_by(scores: &[f32]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..scores.len() as u32)
        .filter(|&i| scores[i as usize] > 0.0)
        .collect();
    order.sort_by(|&a, &b| {
        scores[b as usize]
            .total_cmp(&scores[a as usize])
            .then(a.cmp(&b))
    });
    order
}

impl ModelSet {
    /// Fits every model and the pipeline's ranker; `catalog` is the whole catalog (for the content
    /// model and the item table), in any order.
    pub fn fit(
        snapshot: &Snapshot,
        catalog: &[Item],
        config: &TrainConfig,
        history: &HistoryConfig,
        placement: &PlacementConfig,
        trained_at: i64,
    ) -> Result<ModelSet, PipelineError> {
        // The ranker learns from the retrieval models refitted on the log's past at each cut.
        let refit = |past: &Snapshot| Self::fit_models(past, catalog, config, 0);
        let ranker = fit_ranker(snapshot, &config.ranker, history, placement, &refit)?;
        let mut models = Self::fit_models(snapshot, catalog, config, trained_at)?;
        models.ranker = ranker;
        Ok(models)
    }

    /// Fits the retrieval models (everything but the ranker).
    pub fn fit_models(
        snapshot: &Snapshot,
        catalog: &[Item],
        config: &TrainConfig,
        trained_at: i64,
    ) -> Result<ModelSet, PipelineError> {
        let matrix = snapshot.matrix();
        let timed = snapshot.timed();
        let n_items = snapshot.items.len();
        let day = 86_400.0;
        let popularity = Popularity::fit(
            n_items,
            &timed,
            snapshot.reference_time,
            config.popularity_half_life_days * day,
        );
        let trending = Trending::fit(
            n_items,
            &timed,
            snapshot.reference_time,
            (config.trending_window_hours * 3600.0) as i64,
            (config.trending_baseline_days * day) as i64,
        );
        let knn = ItemKnn::fit(
            &matrix.user_items,
            ItemKnnConfig {
                neighbours: config.knn_neighbours,
                shrinkage: config.knn_shrinkage,
                ..ItemKnnConfig::default()
            },
        );
        let main = match &config.model {
            None | Some(ModelSpec::ItemKnn(_)) => None,
            Some(spec) => Some(
                spec.fit_model(&matrix)
                    .map_err(|source| PipelineError::Model {
                        model: spec.name(),
                        source,
                    })?,
            ),
        };
        let (first_seen, interactions) = snapshot.item_stats();
        let table = ItemTable::build(
            &snapshot.items,
            &first_seen,
            &interactions,
            &popularity.scores,
            catalog,
        );
        let content = ContentIndex::fit(&table, catalog)?;
        let ann = match main.as_ref() {
            Some(model) => match item_vectors(model) {
                Some((vectors, dim)) => {
                    let bias = model.factor_model().and_then(|f| f.item_bias());
                    ItemIndex::build(vectors, dim, bias, &config.ann)?
                }
                None => None,
            },
            None => None,
        };
        Ok(ModelSet {
            version: format!("{trained_at}-{}", snapshot.last_seq),
            trained_at,
            last_seq: snapshot.last_seq,
            reference_time: snapshot.reference_time,
            n_users: matrix.n_users(),
            n_interactions: matrix.user_items.nnz(),
            popular_order: order_by(&popularity.scores),
            trending_order: order_by(&trending.scores),
            items: snapshot.items.clone(),
            popularity,
            trending,
            knn,
            main,
            table,
            content,
            ranker: None,
            ann,
        })
    }
}
