//! The multi-stage serving pipeline: candidate generation from several retrievers with quotas,
//! scoring (learned ranker, or reciprocal-rank fusion), re-ranking (boosts, diversity,
//! exploration). It works on a trained [`ModelSet`] and a request [`Context`] only, with no storage
//! access, so that offline evaluation runs exactly the code that serves.

pub mod ann;
pub mod features;
pub mod items;
pub mod placement;
pub mod rerank;
pub mod retrieve;
pub mod sparse;
pub mod training;

use std::collections::HashMap;

pub use items::ItemTable;
pub use placement::{default_placements, PlacementConfig, Quota, Seeds, Source};
pub use retrieve::{Candidate, Retrieval};

use crate::model_set::ModelSet;

pub const N_SOURCES: usize = Source::ALL.len();

/// What the user has done, summarised for retrieval and features.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    /// Events in the history considered.
    pub events: usize,
    /// Distinct items among them.
    pub items: usize,
    /// Events per strength bucket (see [`features::strength_bucket`]).
    pub strength_counts: [f32; features::STRENGTH_BUCKETS],
    /// Share of the user's positive weight per category (sums to 1 when non-empty); categories
    /// named by the user's properties count too.
    pub category_affinity: HashMap<u32, f32>,
    /// Strongest single event per category.
    pub category_strongest: HashMap<u32, f32>,
}

impl Activity {
    /// `events`: (table item, strength) of every event considered; `stated`: categories the
    /// user's properties name.
    pub fn from_events(
        table: &ItemTable,
        events: &[(Option<u32>, f32)],
        stated: &[u32],
    ) -> Activity {
        let mut a = Activity {
            events: events.len(),
            ..Activity::default()
        };
        let mut items: Vec<u32> = Vec::new();
        for &(item, strength) in events {
            a.strength_counts[features::strength_bucket(strength)] += 1.0;
            let Some(i) = item else { continue };
            items.push(i);
            for &c in table.categories_of(i) {
                if strength > 0.0 {
                    *a.category_affinity.entry(c).or_insert(0.0) += strength;
                }
                let s = a.category_strongest.entry(c).or_insert(0.0);
                *s = s.max(strength);
            }
        }
        items.sort_unstable();
        items.dedup();
        a.items = items.len();
        let observed: f32 = a.category_affinity.values().sum();
        for &c in stated {
            // A stated interest weighs like a fifth of the observed behaviour, or fully when
            // there is none.
            let w = if observed > 0.0 { observed * 0.2 } else { 1.0 };
            *a.category_affinity.entry(c).or_insert(0.0) += w;
        }
        let total: f32 = a.category_affinity.values().sum();
        if total > 0.0 {
            a.category_affinity.values_mut().for_each(|v| *v /= total);
        }
        a
    }
}

/// One request's inputs to the pipeline.
pub struct Context<'a> {
    /// Table items that personalise the list, with weights, oldest first.
    pub seeds: Vec<(u32, f32)>,
    pub activity: Activity,
    /// Whether an item may appear (catalog, availability, seen, request filter).
    pub allow: &'a (dyn Fn(u32) -> bool + Sync),
    /// Multiplier of an item's relevance (request boosts); 1 leaves it unchanged.
    pub boost: &'a (dyn Fn(u32) -> f32 + Sync),
    /// Length of the final list.
    pub window: usize,
    /// Seeds exploration, so one request's list is reproducible.
    pub seed: u64,
}

/// One item of the pipeline's final list.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub item: u32,
    pub score: f32,
    /// The source that deserves the credit (the personal source that ranked it best, else the
    /// best-ranking one).
    pub source: Source,
    /// Placed by exploration rather than by its score.
    pub explored: bool,
}

/// Per-source weights of reciprocal-rank fusion when no ranker is used: collaborative evidence
/// first, so that several weak sources agreeing (an item popular, trending and in a liked
/// category) do not outweigh what users like this one chose.
fn fusion_weight(s: Source) -> f32 {
    match s {
        Source::Embedding | Source::ItemKnn => 1.0,
        Source::Content => 0.5,
        Source::CategoryPopular => 0.3,
        Source::Trending | Source::Popular | Source::NewItems => 0.1,
    }
}

const RRF_K: f32 = 60.0;

pub fn fusion_score(c: &Candidate) -> f32 {
    Source::ALL
        .iter()
        .filter(|s| c.retrieved_by(**s))
        .map(|&s| fusion_weight(s) / (RRF_K + c.rank[s.index()] as f32))
        .sum()
}

fn credited_source(c: &Candidate) -> Source {
    let best = |personal: bool| {
        Source::ALL
            .iter()
            .copied()
            .filter(|s| c.retrieved_by(*s) && (!personal || s.is_personal()))
            .min_by_key(|s| (c.rank[s.index()], s.index()))
    };
    best(true)
        .or_else(|| best(false))
        .unwrap_or(Source::Popular)
}

/// Per candidate of a retrieval: its relevance (the ranker's score where one is trained and
/// wanted, else its fusion score) and its reciprocal-rank fusion score.
pub struct Scores {
    pub relevance: Vec<f32>,
    pub fusion: Vec<f32>,
}

/// Scores every candidate. With a ranker, only the best `ranker_candidates` by fusion are scored
/// by it; the others rank below them, in fusion order.
pub fn score_candidates(
    m: &ModelSet,
    ctx: &Context,
    r: &Retrieval,
    placement: &PlacementConfig,
) -> Scores {
    let fusion: Vec<f32> = r.candidates.iter().map(fusion_score).collect();
    let Some(ranker) = m.ranker.as_ref().filter(|_| placement.use_ranker) else {
        return Scores {
            relevance: fusion.clone(),
            fusion,
        };
    };
    let order = fusion_head(&fusion, placement.ranker_candidates);
    let head: Vec<Candidate> = order.iter().map(|&c| r.candidates[c].clone()).collect();
    let mut rows = Vec::with_capacity(order.len() * features::N_FEATURES);
    features::compute_with(m, &ctx.activity, r, &head, &mut rows);
    let mut head_scores = vec![0f32; order.len()];
    ranker.predict_many(&rows, &mut head_scores);
    // Unscored candidates sit below the lowest ranked one, keeping their fusion order.
    let floor = head_scores.iter().copied().fold(f32::INFINITY, f32::min);
    let mut relevance: Vec<f32> = fusion.iter().map(|f| floor - 1.0 + f).collect();
    for (&c, &s) in order.iter().zip(&head_scores) {
        relevance[c] = s;
    }
    Scores { relevance, fusion }
}

/// Indices of the `n` candidates with the best fusion scores (all of them, in order, if fewer).
pub fn fusion_head(fusion: &[f32], n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..fusion.len()).collect();
    if order.len() > n {
        order.sort_by(|&a, &b| fusion[b].total_cmp(&fusion[a]).then(a.cmp(&b)));
        order.truncate(n);
    }
    order
}

/// Runs all stages and returns up to `ctx.window` items, best first.
pub fn run(m: &ModelSet, ctx: &Context, placement: &PlacementConfig) -> Vec<Ranked> {
    let retrieval = retrieve::retrieve(m, ctx, placement);
    let scores = score_candidates(m, ctx, &retrieval, placement);
    rerank::rerank(m, ctx, placement, &retrieval, &scores)
}

/// One event of a user's history, mapped onto the item table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryEvent {
    /// `None` when the item is not in the table (unknown at training time).
    pub item: Option<u32>,
    pub strength: f32,
    pub timestamp: i64,
}

/// The user's recent items as (table index, weight), oldest first: event strengths summed per
/// item, each decayed by its age relative to the newest event, at most `recent_items` items.
pub fn seeds(
    history: &[HistoryEvent],
    recent_items: usize,
    half_life_days: f64,
) -> Vec<(u32, f32)> {
    let Some(newest) = history.iter().map(|e| e.timestamp).max() else {
        return Vec::new();
    };
    let half_life = half_life_days * 86_400.0;
    let mut per_item: HashMap<u32, f32> = HashMap::new();
    let mut order: Vec<u32> = Vec::new();
    for e in history.iter().rev() {
        let Some(i) = e.item else { continue };
        if !per_item.contains_key(&i) {
            if order.len() == recent_items {
                continue;
            }
            order.push(i);
        }
        let age = (newest - e.timestamp).max(0) as f64;
        let decay = if half_life > 0.0 {
            (-age / half_life * std::f64::consts::LN_2).exp()
        } else {
            1.0
        };
        *per_item.entry(i).or_insert(0.0) += e.strength * decay as f32;
    }
    order.reverse();
    order
        .into_iter()
        .filter_map(|i| {
            let w = per_item[&i];
            (w > 0.0).then_some((i, w))
        })
        .collect()
}
