//! One request's inputs to the pipeline and its output: the user's history mapped onto the item
//! table, summarised into seeds and activity, the request's filter and boosts, and the ranked items.

use std::collections::HashMap;

use crate::items::ItemTable;
use crate::placement::Source;

/// A history's events are counted in four buckets of strength: at most 0, 1, 4, and above.
pub const STRENGTH_BUCKETS: usize = 4;

pub fn strength_bucket(strength: f32) -> usize {
    if strength <= 0.0 {
        0
    } else if strength <= 1.0 {
        1
    } else if strength <= 4.0 {
        2
    } else {
        3
    }
}

/// What the user has done, summarised for retrieval and features.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    /// Events in the history considered.
    pub events: usize,
    /// Distinct items among them.
    pub items: usize,
    /// Events per strength bucket (see [`strength_bucket`]).
    pub strength_counts: [f32; STRENGTH_BUCKETS],
    /// Share of the user's positive weight per category (sums to 1 when non-empty); categories
    /// named by the user's properties count too.
    pub category_affinity: HashMap<u32, f32>,
    /// Strongest single event per category.
    pub category_strongest: HashMap<u32, f32>,
    /// Content features (column, weight) of the seed items the item table lacks (added to the
    /// catalog after training): each item's feature row times its seed weight. The content
    /// retriever adds them to the seeds' profile, so that such an item personalises the list by
    /// what it is.
    pub unseen_features: Vec<(u32, f32)>,
    /// (table item, strength) of every event with positive strength, in the order given: the
    /// history that calibrated re-ranking and the popularity correction measure the list against.
    pub positives: Vec<(u32, f32)>,
}

impl Activity {
    /// `events`: (table item, strength) of every event considered; `stated`: categories the
    /// user's properties name.
    pub fn from_events(
        table: &ItemTable,
        events: &[(Option<u32>, f32)],
        stated: &[u32],
    ) -> Activity {
        Self::from_events_and_unseen(table, events, &[], stated)
    }

    /// Like [`Activity::from_events`], where `unseen` gives, for events about items outside the
    /// table (`None` in `events`), the categories (table category indices) of the item and the
    /// event's strength, so that they count in the category shares too.
    pub fn from_events_and_unseen(
        table: &ItemTable,
        events: &[(Option<u32>, f32)],
        unseen: &[(Vec<u32>, f32)],
        stated: &[u32],
    ) -> Activity {
        let mut a = Activity {
            events: events.len(),
            ..Activity::default()
        };
        let mut items: Vec<u32> = Vec::new();
        for &(item, strength) in events {
            a.strength_counts[strength_bucket(strength)] += 1.0;
            let Some(i) = item else { continue };
            items.push(i);
            if strength > 0.0 {
                a.positives.push((i, strength));
            }
            for &c in table.categories_of(i) {
                if strength > 0.0 {
                    *a.category_affinity.entry(c).or_insert(0.0) += strength;
                }
                let s = a.category_strongest.entry(c).or_insert(0.0);
                *s = s.max(strength);
            }
        }
        for (categories, strength) in unseen {
            for &c in categories {
                if *strength > 0.0 {
                    *a.category_affinity.entry(c).or_insert(0.0) += strength;
                }
                let s = a.category_strongest.entry(c).or_insert(0.0);
                *s = s.max(*strength);
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

fn no_boost(_: u32) -> f32 {
    1.0
}

impl<'a> Context<'a> {
    /// A request without rules for a user with this history (oldest first, already cut to the
    /// events to consider), as offline evaluation and ranker training make them: seeds from the
    /// recent items, activity from the whole history, no stated categories, no boosts, seed 0.
    pub fn for_history(
        table: &ItemTable,
        history: &[HistoryEvent],
        config: &HistoryConfig,
        allow: &'a (dyn Fn(u32) -> bool + Sync),
        window: usize,
    ) -> Context<'a> {
        let pairs: Vec<(Option<u32>, f32)> = history.iter().map(|e| (e.item, e.strength)).collect();
        Context {
            seeds: seeds(history, config.recent_items, config.recency_half_life_days),
            activity: Activity::from_events(table, &pairs, &[]),
            allow,
            boost: &no_boost,
            window,
            seed: 0,
        }
    }
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

/// How a user's history becomes the pipeline's inputs. Serving and ranker training read it alike, so
/// that the ranker learns on the seeds it is later asked to score; the engine's configuration holds
/// the values (`serve.history_limit`, `serve.recent_items`, `serve.recency_half_life_days`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryConfig {
    /// Most recent events read per user.
    pub history_limit: usize,
    /// Of those, how many of the most recent items drive the personalised scores.
    pub recent_items: usize,
    /// Half-life of an event's influence on the scores, in days.
    pub recency_half_life_days: f64,
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
