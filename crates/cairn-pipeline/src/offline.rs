//! The pipeline outside the engine: what offline evaluation needs to fit a model set from an
//! interaction log and rank users the way serving does (`cairn eval`'s `pipeline` model and
//! `cairn-bench pipeline` use these pieces).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cairn_core::{IdMap, Item};
use cairn_models::Recommender;

use crate::model_set::ModelSet;
use crate::placement::PlacementConfig;
use crate::request::{Context, HistoryConfig, HistoryEvent};

/// Catalog items from (item id, feature) pairs as split folders write them (`item_features.csv`):
/// `genre:<name>` features are categories, the others tags (`:` becomes `-`). Sorted by id.
pub fn catalog_from_features<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<Item> {
    let mut items: HashMap<String, Item> = HashMap::new();
    for (id, feature) in pairs {
        let item = items.entry(id.to_string()).or_insert_with(|| Item::new(id));
        match feature.split_once(':') {
            Some(("genre", g)) => item.categories.push(g.to_string()),
            _ => item.tags.push(feature.replace(':', "-")),
        }
    }
    let mut out: Vec<Item> = items.into_values().collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// A fitted pipeline as a [`Recommender`] over another index space (an evaluation task's items):
/// `score` runs every stage (retrieval, ranker, re-ranking) for the history and gives the listed
/// items decreasing scores and every other item none (−∞, which rankings skip), so ranking the
/// scores gives the pipeline's list.
///
/// A history given as (item, strength) carries no times, so its events are not decayed by age
/// (serving weighs recent events more); its order still decides which items are the most recent.
pub struct PipelineRecommender {
    models: Arc<ModelSet>,
    placement: PlacementConfig,
    history: HistoryConfig,
    window: usize,
    /// Per outer item, its table index.
    to_table: Vec<Option<u32>>,
    /// Per table item, its outer index.
    from_table: Vec<Option<u32>>,
    /// Per table item, whether a list may hold it; every item when `None`.
    allowed: Option<Vec<bool>>,
}

impl PipelineRecommender {
    /// `items` names the outer indices; `candidates`, when given, are the only outer items a list
    /// may hold; lists are `window` items long at most.
    pub fn new(
        models: ModelSet,
        placement: PlacementConfig,
        history: HistoryConfig,
        items: &IdMap,
        candidates: Option<&[u32]>,
        window: usize,
    ) -> PipelineRecommender {
        Self::shared(
            Arc::new(models),
            placement,
            history,
            items,
            candidates,
            window,
        )
    }

    /// Like [`PipelineRecommender::new`] over a model set that other recommenders share (e.g.
    /// one fit evaluated with several placements).
    pub fn shared(
        models: Arc<ModelSet>,
        placement: PlacementConfig,
        history: HistoryConfig,
        items: &IdMap,
        candidates: Option<&[u32]>,
        window: usize,
    ) -> PipelineRecommender {
        let to_table: Vec<Option<u32>> = (0..items.len() as u32)
            .map(|i| models.table.ids.get(items.id(i)))
            .collect();
        let mut from_table = vec![None; models.table.len()];
        for (outer, t) in to_table.iter().enumerate() {
            if let Some(t) = t {
                from_table[*t as usize] = Some(outer as u32);
            }
        }
        let allowed = candidates.map(|c| {
            let mut allowed = vec![false; models.table.len()];
            for t in c.iter().filter_map(|&i| to_table[i as usize]) {
                allowed[t as usize] = true;
            }
            allowed
        });
        PipelineRecommender {
            models,
            placement,
            history,
            window,
            to_table,
            from_table,
            allowed,
        }
    }
}

impl Recommender for PipelineRecommender {
    fn name(&self) -> &'static str {
        "pipeline"
    }

    fn n_items(&self) -> usize {
        self.to_table.len()
    }

    fn score(&self, history: &[(u32, f32)], scores: &mut [f32]) {
        let recent = &history[history.len().saturating_sub(self.history.history_limit)..];
        let events: Vec<HistoryEvent> = recent
            .iter()
            .map(|&(i, strength)| HistoryEvent {
                item: self.to_table.get(i as usize).copied().flatten(),
                strength,
                timestamp: 0,
            })
            .collect();
        let seen: HashSet<u32> = events.iter().filter_map(|e| e.item).collect();
        let allow =
            |i: u32| !seen.contains(&i) && self.allowed.as_ref().is_none_or(|a| a[i as usize]);
        let ctx = Context::for_history(
            &self.models.table,
            &events,
            &self.history,
            &allow,
            self.window,
        );
        scores.iter_mut().for_each(|s| *s = f32::NEG_INFINITY);
        for (rank, r) in crate::run(&self.models, &ctx, &self.placement)
            .iter()
            .enumerate()
        {
            if let Some(outer) = self.from_table[r.item as usize] {
                scores[outer as usize] = -(rank as f32);
            }
        }
    }
}
