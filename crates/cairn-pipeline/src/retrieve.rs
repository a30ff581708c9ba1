//! Stage 1: candidate generation. Each source proposes up to its quota of allowed items; the
//! lists are merged into one candidate per item that remembers every source's score and rank.

use std::collections::HashMap;

use cairn_models::{top_k, FittedModel, Recommender};

use crate::model_set::ModelSet;
use crate::placement::{PlacementConfig, Source};
use crate::request::Context;
use crate::sparse::{best_positive_allowed, SparseScores};
use crate::N_SOURCES;

#[derive(Debug, Clone)]
pub struct Candidate {
    pub item: u32,
    /// Score and 0-based rank per source (indexed by `Source::index`); rank `u32::MAX` where the
    /// source did not propose the item.
    pub score: [f32; N_SOURCES],
    pub rank: [u32; N_SOURCES],
}

impl Candidate {
    pub fn retrieved_by(&self, s: Source) -> bool {
        self.rank[s.index()] != u32::MAX
    }
}

/// What retrieval computed about the user, reused by the feature stage.
pub struct Retrieval {
    pub candidates: Vec<Candidate>,
    /// Item-kNN scores of the collaborative items the seeds' neighbour lists touch, when the
    /// user has seeds.
    pub knn_scores: Option<SparseScores>,
    /// Content scores over every item of the table, when the user has seeds.
    pub content_scores: Option<Vec<f32>>,
    /// The user's vector in the factor model's space.
    pub user_vector: Option<Vec<f32>>,
    /// Main-model scores over every collaborative item, for models without item vectors.
    pub model_scores: Option<Vec<f32>>,
}

/// The factor model's item vectors, when `train.model` has them.
pub fn item_vectors(main: &FittedModel) -> Option<(&[f32], usize)> {
    main.factor_model().map(|f| (f.item_factors(), f.factors()))
}

fn item_bias(main: &FittedModel, item: u32) -> f32 {
    main.factor_model()
        .and_then(|f| f.item_bias())
        .map_or(0.0, |bias| bias[item as usize])
}

/// The main model's score of one collaborative item for this user.
pub fn embedding_score(m: &ModelSet, r: &Retrieval, item: u32) -> Option<f32> {
    let main = m.main.as_ref()?;
    if item as usize >= m.table.n_cf {
        return None;
    }
    if let Some(scores) = &r.model_scores {
        return Some(scores[item as usize]);
    }
    let (vectors, k) = item_vectors(main)?;
    let u = r.user_vector.as_ref()?;
    let v = &vectors[item as usize * k..(item as usize + 1) * k];
    Some(v.iter().zip(u).map(|(a, b)| a * b).sum::<f32>() + item_bias(main, item))
}

pub fn retrieve(m: &ModelSet, ctx: &Context, placement: &PlacementConfig) -> Retrieval {
    let cf_seeds: Vec<(u32, f32)> = ctx
        .seeds
        .iter()
        .copied()
        .filter(|&(i, _)| (i as usize) < m.table.n_cf)
        .collect();
    let wants = |s: Source| placement.retrievers.iter().any(|q| q.source == s);
    let mut r = Retrieval {
        candidates: Vec::new(),
        knn_scores: None,
        content_scores: None,
        user_vector: None,
        model_scores: None,
    };
    if !cf_seeds.is_empty() && (wants(Source::ItemKnn) || wants(Source::Embedding)) {
        r.knn_scores = Some(SparseScores::item_knn(&m.knn.neighbours, &cf_seeds));
    }
    if !ctx.seeds.is_empty() || !ctx.activity.unseen_features.is_empty() {
        if let Some(content) = &m.content {
            let mut s = vec![0f32; m.table.len()];
            let profile = content
                .model
                .profile_with(&ctx.seeds, &ctx.activity.unseen_features);
            content.model.score_profile(&profile, &mut s);
            r.content_scores = Some(s);
        }
    }
    if let (Some(main), false) = (&m.main, cf_seeds.is_empty()) {
        match main.factor_model() {
            Some(f) => r.user_vector = Some(f.fold_in(&cf_seeds)),
            None => {
                let mut s = vec![0f32; m.table.n_cf];
                main.score(&cf_seeds, &mut s);
                r.model_scores = Some(s);
            }
        }
    }

    let mut merged: HashMap<u32, usize> = HashMap::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    for q in &placement.retrievers {
        let list = propose(m, ctx, &r, q.source, q.quota, placement);
        for (rank, (item, score)) in list.into_iter().enumerate() {
            let at = *merged.entry(item).or_insert_with(|| {
                candidates.push(Candidate {
                    item,
                    score: [0.0; N_SOURCES],
                    rank: [u32::MAX; N_SOURCES],
                });
                candidates.len() - 1
            });
            let c = &mut candidates[at];
            let s = q.source.index();
            if c.rank[s] == u32::MAX {
                c.rank[s] = rank as u32;
                c.score[s] = score;
            }
        }
    }
    r.candidates = candidates;
    r
}

/// One source's list, best first, of allowed items.
fn propose(
    m: &ModelSet,
    ctx: &Context,
    r: &Retrieval,
    source: Source,
    quota: usize,
    placement: &PlacementConfig,
) -> Vec<(u32, f32)> {
    let allow = |i: u32| (ctx.allow)(i);
    match source {
        Source::Embedding => {
            if let (Some(main), Some(u)) = (&m.main, &r.user_vector) {
                if let Some(index) = &m.ann {
                    return index.nearest(u, quota, &allow);
                }
                let (vectors, k) =
                    item_vectors(main).expect("user vectors come from factor models");
                let scores: Vec<f32> = vectors
                    .chunks_exact(k)
                    .enumerate()
                    .map(|(i, v)| {
                        v.iter().zip(u).map(|(a, b)| a * b).sum::<f32>() + item_bias(main, i as u32)
                    })
                    .collect();
                return top_k(&scores, quota, |i| !allow(i));
            }
            match &r.model_scores {
                Some(s) => top_k(s, quota, |i| !allow(i)),
                None => Vec::new(),
            }
        }
        Source::ItemKnn => match &r.knn_scores {
            Some(s) => s.best_allowed(quota, &allow),
            None => Vec::new(),
        },
        Source::Content => match &r.content_scores {
            Some(s) => best_positive_allowed(s, quota, &allow),
            None => Vec::new(),
        },
        Source::CategoryPopular => category_popular(m, ctx, quota, &allow),
        Source::Trending => from_order(&m.trending_order, &m.trending.scores, quota, &allow),
        Source::Popular => from_order(&m.popular_order, &m.popularity.scores, quota, &allow),
        Source::NewItems => {
            let fresh = m
                .table
                .newest
                .iter()
                .copied()
                .filter(|&i| m.table.is_new(i, m.reference_time, placement.new_item_days));
            let mut list: Vec<(u32, f32)> = match &r.content_scores {
                // Rank new items by how well they match the user; unmatched ones still qualify.
                Some(s) => fresh.map(|i| (i, s[i as usize])).collect(),
                None => fresh.map(|i| (i, 0.0)).collect(),
            };
            list.sort_by(|a, b| b.1.total_cmp(&a.1));
            list.into_iter()
                .filter(|&(i, _)| allow(i))
                .take(quota)
                .collect()
        }
    }
}

fn from_order(
    order: &[u32],
    scores: &[f32],
    quota: usize,
    allow: &dyn Fn(u32) -> bool,
) -> Vec<(u32, f32)> {
    order
        .iter()
        .copied()
        .filter(|&i| allow(i))
        .take(quota)
        .map(|i| (i, scores[i as usize]))
        .collect()
}

/// Popular items of the user's strongest categories, the quota shared in proportion to affinity.
fn category_popular(
    m: &ModelSet,
    ctx: &Context,
    quota: usize,
    allow: &dyn Fn(u32) -> bool,
) -> Vec<(u32, f32)> {
    let mut cats: Vec<(u32, f32)> = ctx
        .activity
        .category_affinity
        .iter()
        .map(|(&c, &w)| (c, w))
        .collect();
    cats.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    cats.truncate(5);
    let total: f32 = cats.iter().map(|c| c.1).sum();
    if total <= 0.0 {
        return Vec::new();
    }
    let mut out: Vec<(u32, f32)> = Vec::with_capacity(quota);
    for &(c, w) in &cats {
        let share = ((quota as f32 * w / total).ceil() as usize).max(1);
        let Some(list) = m.table.popular_by_category.get(c as usize) else {
            continue;
        };
        let mut taken = 0;
        for &i in list {
            if taken == share || out.len() == quota {
                break;
            }
            if allow(i) && !out.iter().any(|&(j, _)| j == i) {
                let pop = m.popularity.scores.get(i as usize).copied().unwrap_or(0.0);
                out.push((i, w * pop));
                taken += 1;
            }
        }
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}
