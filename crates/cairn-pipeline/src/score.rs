//! Stage 2: scoring. Every candidate gets a reciprocal-rank fusion score of the retrievers' ranks,
//! and the best of them by fusion are scored by the learned ranker where one is trained and wanted.

use crate::features;
use crate::fusion::{fusion_head, fusion_score};
use crate::model_set::ModelSet;
use crate::placement::PlacementConfig;
use crate::request::Context;
use crate::retrieve::{Candidate, Retrieval};

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
