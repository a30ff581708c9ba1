//! Reciprocal-rank fusion: one score per candidate from the ranks its retrievers gave it. Scoring
//! uses it when no ranker is trained and to choose the ranker's head, the ranker sees it as a
//! feature, and re-ranking credits a candidate to the source that ranked it best. It reads only a
//! candidate's ranks, so every stage can use it without depending on another stage.

use crate::placement::Source;
use crate::retrieve::Candidate;

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

pub(crate) fn credited_source(c: &Candidate) -> Source {
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

/// Indices of the `n` candidates with the best fusion scores (all of them, in order, if fewer).
pub fn fusion_head(fusion: &[f32], n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..fusion.len()).collect();
    if order.len() > n {
        order.sort_by(|&a, &b| fusion[b].total_cmp(&fusion[a]).then(a.cmp(&b)));
        order.truncate(n);
    }
    order
}
