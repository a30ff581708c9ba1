//! Stage 2: scoring. Every candidate gets a reciprocal-rank fusion score of the retrievers' ranks,
//! and the best of them by fusion are scored by the learned ranker where one is trained and wanted,
//! unless the ranker's guard refused it at training time: then the retriever the guard chose
//! orders the candidates (`crate::guard`).

use crate::features;
use crate::fusion::{fusion_head, fusion_score};
use crate::model_set::ModelSet;
use crate::placement::{PlacementConfig, Source};
use crate::request::Context;
use crate::retrieve::{Candidate, Retrieval};

/// Per candidate of a retrieval: its relevance (the ranker's score where one is trained and
/// wanted, the guard's fallback retriever's order where the guard refused the ranker, else its
/// fusion score) and its reciprocal-rank fusion score.
pub struct Scores {
    pub relevance: Vec<f32>,
    pub fusion: Vec<f32>,
}

/// Scores every candidate as serving does. With a ranker that passed its guard (or was not
/// guarded), only the best `ranker_candidates` by fusion are scored by it; the others rank below
/// them, in fusion order. Where the guard refused the ranker, the candidates of its fallback
/// retriever come first in that retriever's order, then the others by fusion.
pub fn score_candidates(
    m: &ModelSet,
    ctx: &Context,
    r: &Retrieval,
    placement: &PlacementConfig,
) -> Scores {
    let fallback = m.guard.as_ref().and_then(|g| g.fallback);
    match fallback {
        Some(source) if placement.use_ranker => Scores {
            relevance: source_relevance(r, source),
            fusion: r.candidates.iter().map(fusion_score).collect(),
        },
        _ => score_with_ranker(m, ctx, r, placement),
    }
}

/// Scores every candidate with the ranker where one is trained and the placement wants it, as if
/// no guard had looked at it (what the guard and offline evaluation compare); by fusion otherwise.
pub fn score_with_ranker(
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

/// Relevance of each candidate when `source` orders the list: its own candidates first, in its
/// order, then the others by fusion (below them all).
pub(crate) fn source_relevance(r: &Retrieval, source: Source) -> Vec<f32> {
    r.candidates
        .iter()
        .map(|c| {
            if c.retrieved_by(source) {
                // In (1.5, 2], decreasing with the rank (quotas are at most 10,000, so no two
                // ranks tie in f32); fusion scores stay far below.
                2.0 - c.rank[source.index()] as f32 / 20_000.0
            } else {
                fusion_score(c).min(0.5)
            }
        })
        .collect()
}
