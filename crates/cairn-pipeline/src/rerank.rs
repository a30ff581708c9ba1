//! Stage 3: re-ranking. Boosts scale relevance; the list is then filled greedily, position by
//! position: with probability `exploration` a new item takes the position, otherwise the best
//! remaining candidate by maximal marginal relevance that respects the per-category limit, its
//! value traded against calibration and the popularity correction where the placement asks
//! (`crate::fairness`).

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::fairness::FairObjective;
use crate::fusion::credited_source;
use crate::model_set::ModelSet;
use crate::placement::{PlacementConfig, Source};
use crate::request::{Context, Ranked};
use crate::retrieve::{item_vectors, Candidate, Retrieval};
use crate::score::Scores;

/// Squashes any score into (0, 1) so that multiplicative boosts and MMR mean the same whatever
/// produced the score (ranker margins can be negative; fusion scores are tiny).
fn relevance(scores: &[f32]) -> Vec<f32> {
    let (lo, hi) = scores
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &s| {
            (lo.min(s), hi.max(s))
        });
    let span = hi - lo;
    scores
        .iter()
        .map(|&s| {
            if span > 0.0 {
                0.05 + 0.95 * (s - lo) / span
            } else {
                1.0
            }
        })
        .collect()
}

pub fn rerank(
    m: &ModelSet,
    ctx: &Context,
    placement: &PlacementConfig,
    r: &Retrieval,
    scores: &Scores,
) -> Vec<Ranked> {
    let cands = &r.candidates;
    let mut rel = relevance(&scores.relevance);
    for (c, v) in cands.iter().zip(rel.iter_mut()) {
        *v *= (ctx.boost)(c.item);
    }
    // A tree ranker's scores are piecewise constant, so many candidates tie; fusion of the
    // retrievers' ranks orders them.
    let fusion = &scores.fusion;
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by(|&a, &b| {
        rel[b]
            .total_cmp(&rel[a])
            .then(fusion[b].total_cmp(&fusion[a]))
            .then(cands[a].item.cmp(&cands[b].item))
    });

    let new_pool: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&c| {
            cands[c].retrieved_by(Source::NewItems)
                || m.table
                    .is_new(cands[c].item, m.reference_time, placement.new_item_days)
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
    let mut placed = vec![false; cands.len()];
    let mut per_category: HashMap<u32, usize> = HashMap::new();
    let mut out: Vec<Ranked> = Vec::with_capacity(ctx.window);
    let vectors = m.main.as_ref().and_then(item_vectors);
    let mut fair = FairObjective::new(&m.table, &ctx.activity, placement);
    let place = |fair: &mut Option<FairObjective>, item: u32| {
        if let Some(f) = fair {
            f.add(
                m.table.categories_of(item),
                f.is_tail(m.table.interactions[item as usize]),
            );
        }
    };
    let fits_category = |per_category: &HashMap<u32, usize>, c: usize| {
        placement.max_per_category == 0
            || m.table.primary_category(cands[c].item).is_none_or(|k| {
                per_category.get(&k).copied().unwrap_or(0) < placement.max_per_category
            })
    };

    // Content-matched items nobody has touched: no collaborative signal can rank them yet.
    let mut untouched = order.iter().copied().filter(|&c| {
        let i = cands[c].item;
        cands[c].retrieved_by(Source::Content) && m.table.first_seen[i as usize] == i64::MIN
    });
    let mut untouched_left = placement.new_item_slots;
    let untouched_from = 2.min(ctx.window.saturating_sub(1));

    let mut head = 0;
    while out.len() < ctx.window {
        if untouched_left > 0 && out.len() >= untouched_from {
            untouched_left -= 1;
            if let Some(c) = untouched.by_ref().find(|&c| !placed[c]) {
                placed[c] = true;
                place(&mut fair, cands[c].item);
                out.push(Ranked {
                    item: cands[c].item,
                    score: rel[c],
                    source: Source::Content,
                    explored: false,
                });
                continue;
            }
        }
        let explore = placement.exploration > 0.0 && rng.random::<f32>() < placement.exploration;
        let mut pick = None;
        if explore {
            pick = new_pool
                .iter()
                .copied()
                .find(|&c| !placed[c] && fits_category(&per_category, c));
        }
        let explored = pick.is_some();
        // Everything before `head` in the relevance order is placed: later scans start there.
        while head < order.len() && placed[order[head]] {
            head += 1;
        }
        if pick.is_none() {
            pick = best_by_mmr(
                m,
                placement,
                vectors,
                cands,
                &rel,
                &order[head..],
                &placed,
                &out,
                |c| fits_category(&per_category, c),
                fair.as_ref(),
            );
        }
        if pick.is_none() && placement.max_per_category > 0 {
            // Every remaining candidate is in a full category: relax the limit rather than
            // return a short list.
            pick = order[head..].iter().copied().find(|&c| !placed[c]);
        }
        let Some(c) = pick else { break };
        placed[c] = true;
        place(&mut fair, cands[c].item);
        if let Some(k) = m.table.primary_category(cands[c].item) {
            *per_category.entry(k).or_insert(0) += 1;
        }
        out.push(Ranked {
            item: cands[c].item,
            score: rel[c],
            source: if explored {
                Source::NewItems
            } else {
                credited_source(&cands[c])
            },
            explored,
        });
    }
    out
}

/// The unplaced candidate with the best `λ·relevance − (1−λ)·max similarity to the placed ones`;
/// with λ = 1 simply the best remaining by relevance. With a fairness objective, that value is
/// traded against it ([`FairObjective::value`]).
#[allow(clippy::too_many_arguments)]
fn best_by_mmr(
    m: &ModelSet,
    placement: &PlacementConfig,
    vectors: Option<(&[f32], usize)>,
    cands: &[Candidate],
    rel: &[f32],
    order: &[usize],
    placed: &[bool],
    out: &[Ranked],
    eligible: impl Fn(usize) -> bool,
    fair: Option<&FairObjective>,
) -> Option<usize> {
    let lambda = placement.mmr_lambda;
    let mut remaining = order.iter().copied().filter(|&c| !placed[c] && eligible(c));
    let mmr = lambda < 1.0 && !out.is_empty();
    if !mmr && fair.is_none() {
        return remaining.next();
    }
    // MMR looks at the head of the relevance order only: far-down candidates cannot win.
    remaining
        .take(200)
        .map(|c| {
            let mut v = rel[c];
            if mmr {
                let sim = out
                    .iter()
                    .map(|p| similarity(m, vectors, cands[c].item, p.item))
                    .fold(0.0, f32::max);
                v = lambda * rel[c] - (1.0 - lambda) * sim;
            }
            if let Some(f) = fair {
                let item = cands[c].item;
                v = f.value(
                    v,
                    m.table.categories_of(item),
                    f.is_tail(m.table.interactions[item as usize]),
                );
            }
            (c, v)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(c, _)| c)
}

/// Cosine of the factor vectors where both items have one, else shared-category overlap.
fn similarity(m: &ModelSet, vectors: Option<(&[f32], usize)>, a: u32, b: u32) -> f32 {
    if let Some((v, k)) = vectors {
        if (a as usize) < m.table.n_cf && (b as usize) < m.table.n_cf {
            let x = &v[a as usize * k..(a as usize + 1) * k];
            let y = &v[b as usize * k..(b as usize + 1) * k];
            let (mut d, mut nx, mut ny) = (0f32, 0f32, 0f32);
            for (p, q) in x.iter().zip(y) {
                d += p * q;
                nx += p * p;
                ny += q * q;
            }
            return if nx > 0.0 && ny > 0.0 {
                d / (nx * ny).sqrt()
            } else {
                0.0
            };
        }
    }
    let (ca, cb) = (m.table.categories_of(a), m.table.categories_of(b));
    if ca.is_empty() || cb.is_empty() {
        return 0.0;
    }
    let shared = ca.iter().filter(|c| cb.contains(c)).count();
    shared as f32 / (ca.len() + cb.len() - shared) as f32
}
