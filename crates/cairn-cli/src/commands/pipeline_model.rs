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

use cairn_engine::Config;
use cairn_eval::split::{SplitSet, Stage, StageData};
use cairn_eval::{EvalTask, ExternalModel};
use cairn_models::Recommender;
use cairn_pipeline::offline::{catalog_from_features, PipelineRecommender};
use cairn_pipeline::Snapshot;

/// The name `cairn eval --models` knows the pipeline by.
pub const NAME: &str = "pipeline";

pub struct ServedPipeline {
    pub config: Config,
    /// Length of the lists it ranks (the largest cut-off evaluated).
    pub window: usize,
}

impl ExternalModel for ServedPipeline {
    fn name(&self) -> &'static str {
        NAME
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
        let models = self
            .config
            .fit_model_set(&snapshot, &catalog, snapshot.reference_time)
            .map_err(|e| e.to_string())?;
        let placement = self.config.default_placement().map_err(|e| e.to_string())?;
        Ok(Box::new(PipelineRecommender::new(
            models,
            placement.clone(),
            self.config.serve.history(),
            universe,
            task.candidates.as_deref(),
            self.window,
        )))
    }
}
