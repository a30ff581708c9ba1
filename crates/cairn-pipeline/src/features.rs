//! Stage 2 inputs: the features the learned ranker sees for one (user, candidate) pair. The same
//! function computes them at training time (on a time split) and at request time, so the ranker
//! is trained on exactly what it is later asked to score.

use crate::model_set::ModelSet;
use crate::placement::Source;
use crate::request::Activity;
use crate::retrieve::{embedding_score, Candidate, Retrieval};
use crate::score::fusion_score;
use crate::N_SOURCES;

/// Strength buckets of the user's past events: negative, light (a view), medium (click, like,
/// cart, rating), strong (purchase).
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

pub const N_FEATURES: usize = 2 * N_SOURCES + 17 + STRENGTH_BUCKETS;

/// Feature names in column order, for reports and importance listings.
pub fn feature_names() -> Vec<String> {
    let mut names = Vec::with_capacity(N_FEATURES);
    for s in Source::ALL {
        names.push(format!("{}.score", s.name()));
    }
    for s in Source::ALL {
        names.push(format!("{}.reciprocal_rank", s.name()));
    }
    for n in [
        "sources",
        "item.log_interactions",
        "item.popularity",
        "item.trending",
        "item.log_age_days",
        "item.never_interacted",
        "user.log_events",
        "user.log_items",
        "user.category_affinity",
        "user.strongest_in_category",
        "pair.content_similarity",
        "pair.model_score",
        "pair.knn_score",
        "pair.model_score_has",
        "item.category_count",
        "user.has_history",
        "pair.rank_fusion",
    ] {
        names.push(n.to_string());
    }
    for b in ["negative", "light", "medium", "strong"] {
        names.push(format!("user.log_{b}_events"));
    }
    debug_assert_eq!(names.len(), N_FEATURES);
    names
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
    for c in candidates {
        row(m, activity, r, c, out);
    }
}

fn row(m: &ModelSet, a: &Activity, r: &Retrieval, c: &Candidate, out: &mut Vec<f32>) {
    let i = c.item as usize;
    let cf = i < m.table.n_cf;
    for s in 0..N_SOURCES {
        out.push(c.score[s]);
    }
    for s in 0..N_SOURCES {
        out.push(if c.rank[s] == u32::MAX {
            0.0
        } else {
            1.0 / (1.0 + c.rank[s] as f32)
        });
    }
    out.push(c.rank.iter().filter(|&&r| r != u32::MAX).count() as f32);
    out.push((m.table.interactions[i] as f32).ln_1p());
    out.push(if cf {
        m.popularity.scores[i].max(0.0).ln_1p()
    } else {
        0.0
    });
    out.push(if cf { m.trending.scores[i] } else { 0.0 });
    let first = m.table.first_seen[i];
    let never = first == i64::MIN;
    let age_days = if never {
        0.0
    } else {
        ((m.reference_time - first).max(0) as f32 / 86_400.0).ln_1p()
    };
    out.push(age_days);
    out.push(never as u8 as f32);
    out.push((a.events as f32).ln_1p());
    out.push((a.items as f32).ln_1p());
    let cats = m.table.categories_of(c.item);
    let affinity: f32 = cats
        .iter()
        .map(|k| a.category_affinity.get(k).copied().unwrap_or(0.0))
        .fold(0.0, f32::max);
    let strongest: f32 = cats
        .iter()
        .map(|k| a.category_strongest.get(k).copied().unwrap_or(0.0))
        .fold(0.0, f32::max);
    out.push(affinity);
    out.push(strongest);
    out.push(r.content_scores.as_ref().map_or(0.0, |s| s[i]));
    let model = embedding_score(m, r, c.item);
    out.push(model.unwrap_or(0.0));
    out.push(
        r.knn_scores
            .as_ref()
            .filter(|_| cf)
            .map_or(0.0, |s| s.get(c.item)),
    );
    out.push(model.is_some() as u8 as f32);
    out.push(cats.len() as f32);
    out.push((a.events > 0) as u8 as f32);
    // The fusion score gives the ranker a strong baseline to correct rather than rediscover.
    out.push(fusion_score(c) * 100.0);
    for b in 0..STRENGTH_BUCKETS {
        out.push(a.strength_counts[b].ln_1p());
    }
}
