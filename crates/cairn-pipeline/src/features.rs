//! Stage 2 inputs: the features the learned ranker sees for one (user, candidate) pair. The same
//! function computes them at training time (on a time split) and at request time, so the ranker
//! is trained on exactly what it is later asked to score. Each feature's name and code sit together
//! in one table ([`features`]), whose order is the column order.

use std::sync::LazyLock;

use crate::fusion::fusion_score;
use crate::model_set::ModelSet;
use crate::placement::Source;
use crate::request::{Activity, STRENGTH_BUCKETS};
use crate::retrieve::{embedding_score, Candidate, Retrieval};
use crate::N_SOURCES;

/// Strength buckets of the user's past events: negative, light (a view), medium (click, like,
/// cart, rating), strong (purchase).
pub const N_FEATURES: usize = 2 * N_SOURCES + 17 + STRENGTH_BUCKETS;

/// What the features see of one (user, candidate) pair, with the values several of them share
/// computed once.
pub struct Pair<'a> {
    pub m: &'a ModelSet,
    pub activity: &'a Activity,
    pub retrieval: &'a Retrieval,
    pub candidate: &'a Candidate,
    /// The candidate's table index.
    item: usize,
    /// Whether the collaborative models know the candidate.
    cf: bool,
    categories: &'a [u32],
    /// The main model's score of the candidate, where it has one.
    model: Option<f32>,
}

impl<'a> Pair<'a> {
    pub fn new(
        m: &'a ModelSet,
        activity: &'a Activity,
        retrieval: &'a Retrieval,
        candidate: &'a Candidate,
    ) -> Pair<'a> {
        let item = candidate.item as usize;
        Pair {
            m,
            activity,
            retrieval,
            candidate,
            item,
            cf: item < m.table.n_cf,
            categories: m.table.categories_of(candidate.item),
            model: embedding_score(m, retrieval, candidate.item),
        }
    }
}

/// One column of the ranker's input: its name, and how its value is computed.
pub struct Feature {
    pub name: String,
    value: Box<dyn Fn(&Pair) -> f32 + Send + Sync>,
}

impl Feature {
    fn new(name: impl Into<String>, value: impl Fn(&Pair) -> f32 + Send + Sync + 'static) -> Self {
        Feature {
            name: name.into(),
            value: Box::new(value),
        }
    }

    pub fn value(&self, pair: &Pair) -> f32 {
        (self.value)(pair)
    }
}

/// Every feature in column order: the one list of names and of the code that computes them, so
/// that a name can never describe another column's values.
pub fn features() -> &'static [Feature] {
    static FEATURES: LazyLock<Vec<Feature>> = LazyLock::new(|| {
        let mut f = Vec::with_capacity(N_FEATURES);
        for source in Source::ALL {
            let s = source.index();
            f.push(Feature::new(format!("{}.score", source.name()), move |p| {
                p.candidate.score[s]
            }));
        }
        for source in Source::ALL {
            let s = source.index();
            f.push(Feature::new(
                format!("{}.reciprocal_rank", source.name()),
                move |p| {
                    let rank = p.candidate.rank[s];
                    if rank == u32::MAX {
                        0.0
                    } else {
                        1.0 / (1.0 + rank as f32)
                    }
                },
            ));
        }
        f.push(Feature::new("sources", |p| {
            p.candidate.rank.iter().filter(|&&r| r != u32::MAX).count() as f32
        }));
        f.push(Feature::new("item.log_interactions", |p| {
            (p.m.table.interactions[p.item] as f32).ln_1p()
        }));
        f.push(Feature::new("item.popularity", |p| {
            if p.cf {
                p.m.popularity.scores[p.item].max(0.0).ln_1p()
            } else {
                0.0
            }
        }));
        f.push(Feature::new("item.trending", |p| {
            if p.cf {
                p.m.trending.scores[p.item]
            } else {
                0.0
            }
        }));
        f.push(Feature::new("item.log_age_days", |p| {
            let first = p.m.table.first_seen[p.item];
            if first == i64::MIN {
                0.0
            } else {
                ((p.m.reference_time - first).max(0) as f32 / 86_400.0).ln_1p()
            }
        }));
        f.push(Feature::new("item.never_interacted", |p| {
            (p.m.table.first_seen[p.item] == i64::MIN) as u8 as f32
        }));
        f.push(Feature::new("user.log_events", |p| {
            (p.activity.events as f32).ln_1p()
        }));
        f.push(Feature::new("user.log_items", |p| {
            (p.activity.items as f32).ln_1p()
        }));
        f.push(Feature::new("user.category_affinity", |p| {
            p.categories
                .iter()
                .map(|k| p.activity.category_affinity.get(k).copied().unwrap_or(0.0))
                .fold(0.0, f32::max)
        }));
        f.push(Feature::new("user.strongest_in_category", |p| {
            p.categories
                .iter()
                .map(|k| p.activity.category_strongest.get(k).copied().unwrap_or(0.0))
                .fold(0.0, f32::max)
        }));
        f.push(Feature::new("pair.content_similarity", |p| {
            p.retrieval
                .content_scores
                .as_ref()
                .map_or(0.0, |s| s[p.item])
        }));
        f.push(Feature::new("pair.model_score", |p| p.model.unwrap_or(0.0)));
        f.push(Feature::new("pair.knn_score", |p| {
            p.retrieval
                .knn_scores
                .as_ref()
                .filter(|_| p.cf)
                .map_or(0.0, |s| s.get(p.candidate.item))
        }));
        f.push(Feature::new("pair.model_score_has", |p| {
            p.model.is_some() as u8 as f32
        }));
        f.push(Feature::new("item.category_count", |p| {
            p.categories.len() as f32
        }));
        f.push(Feature::new("user.has_history", |p| {
            (p.activity.events > 0) as u8 as f32
        }));
        // The fusion score gives the ranker a strong baseline to correct rather than rediscover.
        f.push(Feature::new("pair.rank_fusion", |p| {
            fusion_score(p.candidate) * 100.0
        }));
        for (b, name) in ["negative", "light", "medium", "strong"].iter().enumerate() {
            f.push(Feature::new(format!("user.log_{name}_events"), move |p| {
                p.activity.strength_counts[b].ln_1p()
            }));
        }
        assert_eq!(f.len(), N_FEATURES, "one table entry per feature column");
        f
    });
    &FEATURES
}

/// Feature names in column order, for reports and importance listings.
pub fn feature_names() -> Vec<String> {
    features().iter().map(|f| f.name.clone()).collect()
}

/// Appends one row of `N_FEATURES` values per candidate of `r` to `out`.
pub fn compute(m: &ModelSet, activity: &Activity, r: &Retrieval, out: &mut Vec<f32>) {
    compute_with(m, activity, r, &r.candidates, out);
}

/// The same for a subset of `r`'s candidates.
pub fn compute_with(
    m: &ModelSet,
    activity: &Activity,
    r: &Retrieval,
    candidates: &[Candidate],
    out: &mut Vec<f32>,
) {
    out.reserve(candidates.len() * N_FEATURES);
    let features = features();
    for c in candidates {
        let pair = Pair::new(m, activity, r, c);
        out.extend(features.iter().map(|f| f.value(&pair)));
    }
}
