//! Fitting a [`ModelSet`]: the `[train]` configuration, the retrieval models (popularity, trending,
//! item-kNN, the configured model, the item table, the content index, the ANN index) and then the
//! ranker, which [`crate::training`] learns from the same models refitted on the log's past.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use cairn_content::{ContentModel, FeatureConfig, FeatureSpace};
use cairn_core::Item;
use cairn_models::{
    FittedModel, ItemKnn, ItemKnnConfig, ModelSpec, Popularity, Progress, Silent, Trending,
};
use serde::{Deserialize, Serialize};

use crate::ann::{AnnConfig, ItemIndex};
use crate::items::ItemTable;
use crate::model_set::{ContentIndex, ModelSet};
use crate::placement::PlacementConfig;
use crate::request::HistoryConfig;
use crate::retrieve::item_vectors;
use crate::snapshot::Snapshot;
use crate::training::{fit_ranker, ranker_cut_count, RankerTrainConfig};
use crate::PipelineError;

/// What fitting a model set uses: the `[train]` section of the engine's configuration (whose
/// `interval_secs` the server's background retraining reads, and `keep_models` the artifact pruning).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Background retraining period of `cairn serve`; 0 disables it.
    pub interval_secs: u64,
    /// A training running longer than this many seconds is abandoned at its next progress report
    /// (a model iteration or a stage): no model file is written and the served model stays; 0 =
    /// no limit.
    pub max_secs: u64,
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
            max_secs: 0,
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

/// The stage under which [`ModelSet::fit_with_progress`] reports its steps: `done` of `total` steps
/// finished. A step's own work reports between two such updates under its own stage names: one
/// per step as it starts and ends (`ranker cut 1 of 3: refit models`, `fit models`, `item-knn`,
/// `content`, `ann index`: 0 of 1, then 1 of 1) and the iterations of the factor model (`als`,
/// `bpr`).
pub const TRAINING_STAGE: &str = "training";

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
        Self::fit_with_progress(
            snapshot, catalog, config, history, placement, trained_at, &Silent,
        )
    }

    /// [`ModelSet::fit`], telling `progress` how far it got (see [`TRAINING_STAGE`]): one step per
    /// cut of the log the ranker learns from (the retrieval models refitted on its past), one for
    /// the ranker's trees, one for the served models.
    pub fn fit_with_progress(
        snapshot: &Snapshot,
        catalog: &[Item],
        config: &TrainConfig,
        history: &HistoryConfig,
        placement: &PlacementConfig,
        trained_at: i64,
        progress: &dyn Progress,
    ) -> Result<ModelSet, PipelineError> {
        Self::fit_all(
            snapshot, catalog, config, history, placement, trained_at, progress, None,
        )
    }

    /// [`ModelSet::fit_with_progress`] with a factor model trained elsewhere (e.g. ALS factors
    /// from Spark) as the served model instead of fitting `train.model`: the ANN index is built over
    /// its item vectors and serving folds users in through it. `main` must be indexed by
    /// `snapshot.items` (its `n_items` their count). The ranker learns, as in every training, from
    /// the models `config` fits on the log's past at each cut; it then reads the served model's
    /// scores as its factor-model feature.
    #[allow(clippy::too_many_arguments)]
    pub fn fit_with_main(
        snapshot: &Snapshot,
        catalog: &[Item],
        config: &TrainConfig,
        history: &HistoryConfig,
        placement: &PlacementConfig,
        trained_at: i64,
        progress: &dyn Progress,
        main: FittedModel,
    ) -> Result<ModelSet, PipelineError> {
        use cairn_models::Recommender as _;
        if main.n_items() != snapshot.items.len() {
            return Err(PipelineError::Artifact(format!(
                "the imported model has {} items, the training data {}",
                main.n_items(),
                snapshot.items.len()
            )));
        }
        Self::fit_all(
            snapshot,
            catalog,
            config,
            history,
            placement,
            trained_at,
            progress,
            Some(main),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn fit_all(
        snapshot: &Snapshot,
        catalog: &[Item],
        config: &TrainConfig,
        history: &HistoryConfig,
        placement: &PlacementConfig,
        trained_at: i64,
        progress: &dyn Progress,
        main: Option<FittedModel>,
    ) -> Result<ModelSet, PipelineError> {
        let cuts = ranker_cut_count(snapshot, &config.ranker);
        // The guard repeats the ranker's training on the log without its newest slice and
        // compares it there with each single retriever (`crate::guard`).
        let guard_cut = (cuts > 0 && config.ranker.guard)
            .then(|| snapshot.split_newest(config.ranker.label_fraction));
        let guard_config = RankerTrainConfig {
            min_events: (config.ranker.min_events as f64 * (1.0 - config.ranker.label_fraction))
                as usize,
            ..config.ranker.clone()
        };
        let guard_cuts = guard_cut
            .as_ref()
            .map_or(0, |(past, _)| ranker_cut_count(past, &guard_config));
        let guard_steps = match guard_cut {
            Some(_) if guard_cuts > 0 => guard_cuts + 2,
            Some(_) => 1,
            None => 0,
        };
        let ranker_steps = if cuts > 0 { cuts + 1 } else { 0 };
        let steps = guard_steps + ranker_steps + 1;
        progress.update(TRAINING_STAGE, 0, steps);
        let done = AtomicUsize::new(0);
        let advance = |to: usize| {
            let was = done.fetch_max(to, Ordering::Relaxed);
            progress.update(TRAINING_STAGE, was.max(to).min(steps), steps);
        };
        // The ranker learns from the retrieval models refitted on the log's past at each cut;
        // `phase` names the training, `base` is the steps done before it.
        let refit = |phase: &str, k: &AtomicUsize, of: usize, base: usize, past: &Snapshot| {
            let k = k.fetch_add(1, Ordering::Relaxed);
            let step = format!("{phase} cut {} of {of}: refit models", k + 1);
            progress.update(&step, 0, 1);
            let models = Self::fit_models_with_progress(past, catalog, config, 0, progress, None);
            progress.update(&step, 1, 1);
            advance(base + (k + 1).min(of));
            models
        };
        let guard = match guard_cut {
            None => None,
            Some((past, future)) => {
                let k = AtomicUsize::new(0);
                let refit_past = |p: &Snapshot| refit("guard: ranker", &k, guard_cuts, 0, p);
                let ranker = fit_ranker(&past, &guard_config, history, placement, &refit_past)?;
                advance(guard_steps - 1);
                progress.update("guard: compare", 0, 1);
                let mut held =
                    Self::fit_models_with_progress(&past, catalog, config, 0, progress, None)?;
                held.ranker = ranker;
                let report = crate::guard::evaluate(
                    &held,
                    &past,
                    &future,
                    history,
                    placement,
                    config.ranker.max_users,
                    config.ranker.seed,
                );
                progress.update("guard: compare", 1, 1);
                advance(guard_steps);
                report
            }
        };
        let k = AtomicUsize::new(0);
        let refit_all = |p: &Snapshot| refit("ranker", &k, cuts, guard_steps, p);
        let ranker = fit_ranker(snapshot, &config.ranker, history, placement, &refit_all)?;
        advance(guard_steps + ranker_steps);
        progress.update("fit models", 0, 1);
        let mut models =
            Self::fit_models_with_progress(snapshot, catalog, config, trained_at, progress, main)?;
        progress.update("fit models", 1, 1);
        models.ranker = ranker;
        models.guard = guard;
        advance(steps);
        Ok(models)
    }

    /// Fits the retrieval models (everything but the ranker).
    pub fn fit_models(
        snapshot: &Snapshot,
        catalog: &[Item],
        config: &TrainConfig,
        trained_at: i64,
    ) -> Result<ModelSet, PipelineError> {
        Self::fit_models_with_progress(snapshot, catalog, config, trained_at, &Silent, None)
    }

    fn fit_models_with_progress(
        snapshot: &Snapshot,
        catalog: &[Item],
        config: &TrainConfig,
        trained_at: i64,
        progress: &dyn Progress,
        imported: Option<FittedModel>,
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
        progress.update("item-knn", 0, 1);
        let knn = ItemKnn::fit(
            &matrix.user_items,
            ItemKnnConfig {
                neighbours: config.knn_neighbours,
                shrinkage: config.knn_shrinkage,
                ..ItemKnnConfig::default()
            },
        );
        progress.update("item-knn", 1, 1);
        let main = match (imported, &config.model) {
            (Some(model), _) => Some(model),
            (None, None | Some(ModelSpec::ItemKnn(_))) => None,
            (None, Some(spec)) => {
                let order = spec.needs_order().then(|| snapshot.sequences());
                Some(
                    spec.fit_model_ordered(&matrix, order.as_deref(), progress)
                        .map_err(|source| PipelineError::Model {
                            model: spec.name(),
                            source,
                        })?,
                )
            }
        };
        let (first_seen, interactions) = snapshot.item_stats();
        let table = ItemTable::build(
            &snapshot.items,
            &first_seen,
            &interactions,
            &popularity.scores,
            catalog,
        );
        progress.update("content", 0, 1);
        let content = ContentIndex::fit(&table, catalog)?;
        progress.update("content", 1, 1);
        progress.update("ann index", 0, 1);
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
        progress.update("ann index", 1, 1);
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
            guard: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::placement::default_placements;

    /// 60 users with 12 events each over 40 items, in a seeded pattern.
    fn log() -> (Snapshot, Vec<Item>) {
        let mut b = Snapshot::builder();
        for u in 0..60u32 {
            for t in 0..12u32 {
                let item = (u * 7 + t * t + u % 5) % 40;
                b.push(
                    &format!("u{u}"),
                    &format!("i{item}"),
                    1.0,
                    i64::from(t * 100 + u),
                );
            }
        }
        let catalog = (0..40).map(|i| Item::new(format!("i{i}"))).collect();
        (b.finish(720), catalog)
    }

    type Seen = Vec<(String, usize, usize)>;

    /// Fits the test log with `guard` on or off, recording every progress report.
    fn fit_recorded(guard: bool) -> (TrainConfig, Snapshot, ModelSet, Seen) {
        let (snapshot, catalog) = log();
        let mut config = TrainConfig::default();
        config.ranker.min_events = 100;
        config.ranker.min_groups = 1;
        config.ranker.min_data_in_leaf = 5;
        config.ranker.trees = 5;
        config.ranker.guard = guard;
        let history = HistoryConfig {
            history_limit: 50,
            recent_items: 10,
            recency_half_life_days: 30.0,
        };
        let placement = default_placements().into_values().next().unwrap();
        let seen = Mutex::new(Vec::new());
        let record = |stage: &str, done: usize, total: usize| {
            seen.lock().unwrap().push((stage.to_string(), done, total));
        };
        let models = ModelSet::fit_with_progress(
            &snapshot, &catalog, &config, &history, &placement, 1, &record,
        )
        .unwrap();
        (config, snapshot, models, seen.into_inner().unwrap())
    }

    /// The training stage's (done, total) reports, checked to start at 0, never go back, and end
    /// at all done; returns the total.
    fn checked_total(seen: &Seen) -> usize {
        let steps: Vec<(usize, usize)> = seen
            .iter()
            .filter(|(s, _, _)| s == TRAINING_STAGE)
            .map(|(_, d, t)| (*d, *t))
            .collect();
        let total = steps[0].1;
        assert_eq!(steps.first(), Some(&(0, total)));
        assert_eq!(steps.last(), Some(&(total, total)));
        assert!(steps.windows(2).all(|w| w[0].0 <= w[1].0), "{steps:?}");
        assert!(steps.iter().all(|s| s.1 == total));
        total
    }

    fn als_iterations(config: &TrainConfig) -> usize {
        match &config.model {
            Some(ModelSpec::Als(c)) => c.iterations,
            other => panic!("the default model is ALS, not {other:?}"),
        }
    }

    #[test]
    fn fitting_reports_its_steps_in_order_and_ends_at_all_done() {
        let (config, snapshot, models, seen) = fit_recorded(false);
        assert!(models.guard.is_none(), "the guard is off");
        let total = checked_total(&seen);
        let cuts = ranker_cut_count(&snapshot, &config.ranker);
        assert!(cuts > 0, "the log is large enough for the ranker");
        assert_eq!(
            total,
            cuts + 2,
            "one step per cut, the trees, the served models"
        );
        let als = seen.iter().filter(|(s, _, _)| s == "als").count();
        let iterations = als_iterations(&config);
        assert_eq!(als, iterations * (cuts + 1), "ALS iterations of every fit");
        let first_cut = format!("ranker cut 1 of {cuts}: refit models");
        assert!(seen
            .iter()
            .any(|(s, d, t)| *s == first_cut && (*d, *t) == (1, 1)));
    }

    #[test]
    fn the_guard_repeats_the_training_on_the_past_and_reports_its_steps() {
        let (config, snapshot, models, seen) = fit_recorded(true);
        let total = checked_total(&seen);
        let cuts = ranker_cut_count(&snapshot, &config.ranker);
        let (past, _) = snapshot.split_newest(config.ranker.label_fraction);
        let guard_config = RankerTrainConfig {
            min_events: 80,
            ..config.ranker.clone()
        };
        let guard_cuts = ranker_cut_count(&past, &guard_config);
        assert!(guard_cuts > 0, "the past is large enough for a ranker");
        assert_eq!(
            total,
            guard_cuts + 2 + cuts + 2,
            "the guard's cuts, its trees, its comparison; then the served training's steps"
        );
        // Every refit of both trainings, the guard's models on the past, the served models.
        let als = seen.iter().filter(|(s, _, _)| s == "als").count();
        assert_eq!(als, als_iterations(&config) * (guard_cuts + cuts + 2));
        let first = format!("guard: ranker cut 1 of {guard_cuts}: refit models");
        assert!(seen
            .iter()
            .any(|(s, d, t)| *s == first && (*d, *t) == (1, 1)));
        assert!(seen
            .iter()
            .any(|(s, d, t)| s == "guard: compare" && (*d, *t) == (1, 1)));
        // The decision follows the documented rule on the figures it records.
        let g = models.guard.expect("the guard ran");
        assert!(g.users > 0);
        assert_eq!(
            g.sources.len(),
            default_placements()
                .into_values()
                .next()
                .unwrap()
                .retrievers
                .len()
        );
        let best = g.sources.iter().map(|s| s.ndcg).fold(f64::MIN, f64::max);
        assert_eq!(g.best_ndcg, best);
        let passed = g.ranker_ndcg.is_some() && g.diff_mean - g.diff_se > 0.0;
        assert_eq!(g.fallback, (!passed).then_some(g.best_source));
        assert!(
            models.ranker.is_some(),
            "the served ranker is trained either way"
        );
    }
}
