//! `pipeline` in `cairn eval --models`: the served pipeline as a model of the evaluation harness,
//! fitted per stage with the deployment's configuration (`train`, `serve.default_placement` and the
//! history settings of `serve`), so that offline numbers describe what `cairn serve` would list.
//!
//! The adapter lives in the CLI because the CLI is the one crate that sees both sides: cairn-eval
//! must not depend on the pipeline or the engine (dependencies point down: evaluation knows core and
//! models), and cairn-pipeline's job is fitting and running the pipeline, not the harness's split
//! types. So cairn-eval defines the [`ExternalModel`] trait, cairn-pipeline offers the pieces
//! (the snapshot builder, catalog items from split features, the pipeline as a `Recommender`), and
//! this module only joins them; `cairn-bench pipeline` reuses the same pieces.

use std::sync::{Arc, Mutex, PoisonError};

use cairn_engine::Config;
use cairn_eval::split::{SplitSet, Stage, StageData};
use cairn_eval::{EvalTask, ExternalModel};
use cairn_models::Recommender;
use cairn_pipeline::offline::{catalog_from_features, PipelineRecommender};
use cairn_pipeline::{ModelSet, PlacementConfig, Snapshot};

/// The name `cairn eval --models` knows the pipeline by.
pub const NAME: &str = "pipeline";

pub struct ServedPipeline {
    pub config: Config,
    /// Length of the lists it ranks (the largest cut-off evaluated).
    pub window: usize,
    /// Its label in the report: [`NAME`], or a re-ranking variant's.
    pub label: &'static str,
    /// The placement it runs instead of `serve.default_placement` (a `--rerank` variant).
    pub placement: Option<PlacementConfig>,
    /// The last stage's fitted model set, shared by every variant of one run: the variants
    /// differ only in re-ranking, so the stage is fitted once.
    pub fitted: SharedFit,
}

/// A fitted stage shared by the variants of one run: the stage's name and its model set.
pub type SharedFit = Arc<Mutex<Option<(String, Arc<ModelSet>)>>>;

impl ServedPipeline {
    pub fn new(config: Config, window: usize) -> ServedPipeline {
        ServedPipeline {
            config,
            window,
            label: NAME,
            placement: None,
            fitted: Arc::default(),
        }
    }

    /// The same pipeline (sharing its fits) re-ranking with `knobs`, e.g.
    /// `calibration=0.3+popularity=0.2` (also `short_head=0.8`, the placement's
    /// `short_head_share`): the default placement with those knobs set.
    pub fn variant(&self, knobs: &str) -> anyhow::Result<ServedPipeline> {
        let mut placement = self.config.default_placement()?.clone();
        for part in knobs.split('+').map(str::trim) {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("--rerank `{part}`: write calibration=λ or popularity=λ")
            })?;
            let lambda: f32 = value
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("--rerank `{part}`: `{value}` is not a number"))?;
            match key.trim() {
                "calibration" => placement.calibration_lambda = lambda,
                "popularity" => placement.popularity_lambda = lambda,
                "short_head" => placement.short_head_share = lambda,
                other => anyhow::bail!(
                    "--rerank `{part}`: unknown knob `{other}` (calibration, popularity, short_head)"
                ),
            }
        }
        placement
            .validate("rerank")
            .map_err(|e| anyhow::anyhow!("--rerank `{knobs}`: {e}"))?;
        // A handful of labels per run, alive until the process ends: reports name models by
        // `&'static str`.
        let label: &'static str = Box::leak(format!("{NAME} {knobs}").into_boxed_str());
        Ok(ServedPipeline {
            config: self.config.clone(),
            window: self.window,
            label,
            placement: Some(placement),
            fitted: Arc::clone(&self.fitted),
        })
    }
}

impl ExternalModel for ServedPipeline {
    fn name(&self) -> &'static str {
        self.label
    }

    /// Fits on the stage's training rows in file order, each an event of strength 1 at its time
    /// (the harness binarizes every model's data), with every item of the task's universe in the
    /// catalog (features where the split has them), so cold items can be listed as served.
    fn fit(
        &self,
        split: &SplitSet,
        stage: &Stage,
        task: &EvalTask,
    ) -> Result<Box<dyn Recommender>, String> {
        let placement = match &self.placement {
            Some(p) => p.clone(),
            None => self
                .config
                .default_placement()
                .map_err(|e| e.to_string())?
                .clone(),
        };
        let cached = self
            .fitted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|(name, _)| *name == task.name)
            .map(|(_, m)| Arc::clone(m));
        let models = match cached {
            Some(m) => m,
            None => {
                let m = Arc::new(self.fit_models(split, stage, task)?);
                *self.fitted.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some((task.name.clone(), Arc::clone(&m)));
                m
            }
        };
        Ok(Box::new(PipelineRecommender::shared(
            models,
            placement,
            self.config.serve.history(),
            &task.train.items,
            task.candidates.as_deref(),
            self.window,
        )))
    }
}

impl ServedPipeline {
    fn fit_models(
        &self,
        split: &SplitSet,
        stage: &Stage,
        task: &EvalTask,
    ) -> Result<ModelSet, String> {
        let rows = match &stage.data {
            StageData::NewUsers { train, .. } | StageData::KnownUsers { train, .. } => train,
        };
        let universe = &task.train.items;
        let mut snapshot = Snapshot::builder();
        for r in rows {
            let item = split.vocab.items.id(r.item);
            if universe.get(item).is_some() {
                snapshot.push(split.vocab.users.id(r.user), item, 1.0, r.ts.unwrap_or(0));
            }
        }
        let snapshot = snapshot.finish(rows.len() as u64);
        let features = split.item_features.iter().flatten();
        let mut catalog = catalog_from_features(
            features
                .map(|(item, feature)| (split.vocab.items.id(*item), feature.as_str()))
                .filter(|(item, _)| universe.get(item).is_some()),
        );
        let described = catalog.len();
        for i in 0..universe.len() as u32 {
            let id = universe.id(i);
            if catalog[..described]
                .binary_search_by(|item| item.id.as_str().cmp(id))
                .is_err()
            {
                catalog.push(cairn_core::Item::new(id));
            }
        }
        self.config
            .fit_model_set(&snapshot, &catalog, snapshot.reference_time)
            .map_err(|e| e.to_string())
    }
}
