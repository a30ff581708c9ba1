//! A LightFM-style hybrid factorization that learns from interactions and features together.
//!
//! - An item's embedding is the weighted sum of the embeddings of its feature columns: its content
//!   features, plus (for items that had interactions at fit time) an identity column. An item with no
//!   interactions is therefore placed by its features alone, and a new item can be added after
//!   training ([`HybridModel::push_item`]).
//! - A user is not a free parameter: the user vector is folded in from the history,
//!   `u = (Σ w)^-α Σ_j w_j c_j + Σ_g y_g p_g`, where `c_j` is item j's *context* embedding (built from
//!   its feature columns like the item embedding, with a second table) and `p_g` are embeddings of
//!   the user's property features. So a user known only by properties, or by a first event, is served
//!   without retraining, and training optimises exactly the vector that serving uses.
//! - Training is SGD with Adagrad on the WARP loss (or BPR), sampled negatives among the items that
//!   have interactions, seeded. During training each positive is scored from the *other* items of the
//!   history (leave-one-out), so the model cannot learn to recommend an item from itself.
//!
//! Scores are `u · q_i + b_i`, with `b_i` the item's bias, also a sum over its feature columns.

mod params;
mod projection;
mod train;

use cairn_content::ContentError;
use cairn_core::CsrMatrix;
use cairn_models::Recommender;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use params::{axpy, dot, Table};

pub use train::fit;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Loss {
    /// Weighted approximate-rank pairwise loss: sample negatives until one scores within a margin of
    /// the positive, and weight the step by how rarely that happened (an estimate of the rank).
    Warp { max_trials: usize },
    /// Bayesian personalised ranking with one sampled negative.
    Bpr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HybridConfig {
    pub factors: usize,
    pub epochs: usize,
    pub learning_rate: f32,
    /// L2 decay applied to every updated weight.
    pub l2: f32,
    pub loss: Loss,
    /// Share of a warm item's row given to its identity column (0 disables identities: items are
    /// pure feature sums, as cold items always are).
    pub identity_share: f32,
    /// The same share in the rows that build user vectors (context embeddings). Users are folded in
    /// from warm items, so identities there give collaborative precision without making cold items
    /// (always pure feature sums on the item side) depend on them.
    pub context_identity_share: f32,
    /// Probability that a training pair is scored with both items in their features-only form (as a
    /// cold item is), so that feature embeddings are trained for exactly the cold-start case
    /// (DropoutNet's idea).
    pub feature_dropout: f32,
    /// Give every training user a free embedding too (LightFM's user identity), added to the folded-in
    /// vector. It is used only through [`HybridModel::score_known_user`]; history-only scoring (new
    /// users, the `Recommender` path) leaves it out.
    pub user_identity: bool,
    /// Users are folded in through the item embedding table itself (context = item embedding), so an
    /// item shares features with a history by construction, as in content-based scoring.
    pub tie_context: bool,
    /// Place items without interactions by a ridge regression from features to the warm items'
    /// learned embeddings (see `projection`), instead of their raw feature sum. 0 disables it.
    pub projection_lambda: f32,
    /// Probability that a training positive is scored from the user's property features alone (no
    /// history), so that a user known only by properties gets a trained vector. Used only when user
    /// features are given.
    pub history_dropout: f32,
    /// Learn per-feature biases (a popularity prior shared by every user).
    pub item_bias: bool,
    /// The user vector divides the history sum by (Σ weights)^α.
    pub history_exponent: f32,
    pub seed: u64,
}

impl Default for HybridConfig {
    fn default() -> Self {
        HybridConfig {
            factors: 64,
            epochs: 20,
            learning_rate: 0.05,
            l2: 1e-6,
            loss: Loss::Warp { max_trials: 10 },
            identity_share: 0.6,
            context_identity_share: 0.9,
            feature_dropout: 0.0,
            item_bias: true,
            user_identity: false,
            tie_context: false,
            projection_lambda: 10.0,
            history_dropout: 0.0,
            history_exponent: 0.5,
            seed: 42,
        }
    }
}

impl HybridConfig {
    pub fn validate(&self) -> Result<(), ContentError> {
        let bad = |m: &str| Err(ContentError::InvalidConfig(m.to_string()));
        if self.factors == 0 || self.factors > 1024 {
            return bad("factors must be 1 to 1024");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate must be positive");
        }
        if !(self.l2 >= 0.0 && self.l2.is_finite()) {
            return bad("l2 must be non-negative");
        }
        if !(0.0..1.0).contains(&self.identity_share)
            || !(0.0..1.0).contains(&self.context_identity_share)
        {
            return bad("identity shares must be in [0, 1)");
        }
        if !(self.projection_lambda >= 0.0 && self.projection_lambda.is_finite()) {
            return bad("projection_lambda must be non-negative");
        }
        if !(0.0..=1.0).contains(&self.history_dropout) {
            return bad("history_dropout must be in [0, 1]");
        }
        if !(0.0..=1.0).contains(&self.feature_dropout) {
            return bad("feature_dropout must be in [0, 1]");
        }
        if !(0.0..=1.0).contains(&self.history_exponent) {
            return bad("history_exponent must be in [0, 1]");
        }
        if let Loss::Warp { max_trials } = self.loss {
            if max_trials == 0 {
                return bad("WARP needs max_trials >= 1");
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HybridModel {
    pub config: HybridConfig,
    /// Content feature columns (identity columns come after them).
    n_features: usize,
    /// Items × columns: content features rescaled to sum 1, plus the identity column of warm items.
    item_rows: CsrMatrix,
    /// Items × columns for the context (user-side) embeddings, with `context_identity_share`.
    context_rows: CsrMatrix,
    item_table: Table,
    item_bias_table: Table,
    context_table: Table,
    user_table: Table,
    /// Free per-user embeddings of the training users (empty unless `user_identity`).
    user_identity_table: Table,
    /// Whether each item had interactions at fit time.
    warm: Vec<bool>,
    /// Content features × (factors + 1): the ridge map to (embedding, bias) for non-warm items; empty
    /// when disabled.
    projection: Vec<f32>,
    /// Per item, derived from the tables: embedding, bias and context embedding (for serving).
    item_emb: Vec<f32>,
    item_bias: Vec<f32>,
    item_ctx: Vec<f32>,
}

/// The rescaled row of an item: content features summing to `1 - identity share` (or 1 without an
/// identity), then the identity column.
fn item_row(
    features: (&[u32], &[f32]),
    identity: Option<u32>,
    identity_share: f32,
) -> Vec<(u32, f32)> {
    let (cols, vals) = features;
    let total: f32 = vals.iter().filter(|v| **v > 0.0).sum();
    let identity_weight = match identity {
        Some(_) if total > 0.0 => identity_share,
        Some(_) => 1.0,
        None => 0.0,
    };
    let mut row: Vec<(u32, f32)> = if total > 0.0 {
        cols.iter()
            .zip(vals)
            .filter(|(_, v)| **v > 0.0)
            .map(|(&c, &v)| (c, v / total * (1.0 - identity_weight)))
            .collect()
    } else {
        Vec::new()
    };
    if let (Some(id), true) = (identity, identity_weight > 0.0) {
        row.push((id, identity_weight));
    }
    row
}

impl HybridModel {
    pub fn n_items(&self) -> usize {
        self.item_rows.n_rows
    }

    pub fn factors(&self) -> usize {
        self.config.factors
    }

    /// The embedding of item `i` (its features and identity), as scored against user vectors.
    pub fn item_embedding(&self, i: u32) -> Option<&[f32]> {
        let d = self.config.factors;
        let i = i as usize;
        (i < self.n_items()).then(|| &self.item_emb[i * d..(i + 1) * d])
    }

    /// Appends an item that the fit never saw, placed by its content features alone (columns of the
    /// same feature space, e.g. [`cairn_content::FeatureSpace::transform_item`]); returns its index.
    pub fn push_item(&mut self, features: &[(u32, f32)]) -> u32 {
        let cols: Vec<u32> = features.iter().map(|f| f.0).collect();
        let vals: Vec<f32> = features.iter().map(|f| f.1).collect();
        let row: Vec<(u32, f32)> = item_row((&cols, &vals), None, 0.0)
            .into_iter()
            .filter(|&(c, _)| (c as usize) < self.n_features)
            .collect();
        for m in [&mut self.item_rows, &mut self.context_rows] {
            for &(c, v) in &row {
                m.indices.push(c);
                m.values.push(v);
            }
            m.indptr.push(m.indices.len());
            m.n_rows += 1;
        }
        let i = self.item_rows.n_rows - 1;
        let d = self.config.factors;
        self.item_emb.resize(self.item_emb.len() + d, 0.0);
        self.item_ctx.resize(self.item_ctx.len() + d, 0.0);
        self.item_bias.push(0.0);
        self.warm.push(false);
        self.refresh_item(i);
        i as u32
    }

    fn refresh_item(&mut self, i: usize) {
        let d = self.config.factors;
        let (cols, vals) = self.item_rows.row(i);
        self.item_table
            .gather(cols, vals, &mut self.item_emb[i * d..(i + 1) * d]);
        let (ctx_cols, ctx_vals) = self.context_rows.row(i);
        let ctx_table = if self.config.tie_context {
            &self.item_table
        } else {
            &self.context_table
        };
        ctx_table.gather(ctx_cols, ctx_vals, &mut self.item_ctx[i * d..(i + 1) * d]);
        self.item_bias[i] = cols
            .iter()
            .zip(vals)
            .map(|(&c, &v)| v * self.item_bias_table.weights[c as usize])
            .sum();
        if !self.warm.get(i).copied().unwrap_or(false) && !self.projection.is_empty() {
            project(
                &self.projection,
                d,
                cols,
                vals,
                &mut self.item_emb[i * d..(i + 1) * d],
                &mut self.item_bias[i],
            );
        }
    }

    /// Recomputes every item's embedding, bias and context from the tables.
    fn refresh_items(&mut self) {
        let d = self.config.factors;
        let n = self.n_items();
        let (warm, projection) = (&self.warm, &self.projection);
        let (rows, ctx_rows, items, ctx_t, bias_t) = (
            &self.item_rows,
            &self.context_rows,
            &self.item_table,
            if self.config.tie_context {
                &self.item_table
            } else {
                &self.context_table
            },
            &self.item_bias_table,
        );
        self.item_emb.resize(n * d, 0.0);
        self.item_ctx.resize(n * d, 0.0);
        self.item_bias.resize(n, 0.0);
        self.item_emb
            .par_chunks_mut(d)
            .zip(self.item_ctx.par_chunks_mut(d))
            .zip(self.item_bias.par_iter_mut())
            .enumerate()
            .for_each(|(i, ((e, c), b))| {
                let (cols, vals) = rows.row(i);
                items.gather(cols, vals, e);
                let (ctx_cols, ctx_vals) = ctx_rows.row(i);
                ctx_t.gather(ctx_cols, ctx_vals, c);
                *b = cols
                    .iter()
                    .zip(vals)
                    .map(|(&c, &v)| v * bias_t.weights[c as usize])
                    .sum();
                if !warm.get(i).copied().unwrap_or(false) && !projection.is_empty() {
                    project(projection, d, cols, vals, e, b);
                }
            });
    }

    /// The user vector from a history (item, strength) and, optionally, the user's property feature
    /// row (columns of the user feature space the model was fitted with). Unknown items and
    /// columns are ignored; an empty input gives the zero vector (scores are then the item biases).
    pub fn user_vector(
        &self,
        history: &[(u32, f32)],
        user_features: Option<&[(u32, f32)]>,
    ) -> Vec<f32> {
        let d = self.config.factors;
        let mut u = vec![0f32; d];
        let mut total = 0f32;
        for &(j, w) in history {
            let j = j as usize;
            if j < self.n_items() && w > 0.0 {
                axpy(w, &self.item_ctx[j * d..(j + 1) * d], &mut u);
                total += w;
            }
        }
        if total > 0.0 {
            let s = total.powf(-self.config.history_exponent);
            u.iter_mut().for_each(|x| *x *= s);
        }
        for &(g, y) in user_features.unwrap_or(&[]) {
            if (g as usize) < self.user_table.rows() {
                axpy(y, self.user_table.row(g as usize), &mut u);
            }
        }
        u
    }

    /// Scores for a training user (row `user` of the fitted interactions): the folded-in vector plus the
    /// user's own embedding when the model has them. Unknown users fall back to [`Self::score_user`].
    pub fn score_known_user(
        &self,
        user: u32,
        history: &[(u32, f32)],
        user_features: Option<&[(u32, f32)]>,
        scores: &mut [f32],
    ) {
        let mut u = self.user_vector(history, user_features);
        if (user as usize) < self.user_identity_table.rows() {
            axpy(1.0, self.user_identity_table.row(user as usize), &mut u);
        }
        self.score_vector(&u, scores);
    }

    /// Scores every item for a user vector.
    pub fn score_vector(&self, u: &[f32], scores: &mut [f32]) {
        let d = self.config.factors;
        for (i, s) in scores.iter_mut().enumerate().take(self.n_items()) {
            *s = dot(u, &self.item_emb[i * d..(i + 1) * d]) + self.item_bias[i];
        }
    }

    /// Scores for a user given by history and/or property features.
    pub fn score_user(
        &self,
        history: &[(u32, f32)],
        user_features: Option<&[(u32, f32)]>,
        scores: &mut [f32],
    ) {
        let u = self.user_vector(history, user_features);
        self.score_vector(&u, scores);
    }
}

/// Embedding and bias of a feature row through the ridge map (`factors + 1` columns per feature).
fn project(map: &[f32], d: usize, cols: &[u32], vals: &[f32], emb: &mut [f32], bias: &mut f32) {
    emb.iter_mut().for_each(|x| *x = 0.0);
    *bias = 0.0;
    for (&c, &v) in cols.iter().zip(vals) {
        let row = &map[c as usize * (d + 1)..(c as usize + 1) * (d + 1)];
        axpy(v, &row[..d], emb);
        *bias += v * row[d];
    }
}

impl Recommender for HybridModel {
    fn name(&self) -> &'static str {
        "hybrid"
    }

    fn n_items(&self) -> usize {
        self.item_rows.n_rows
    }

    fn score(&self, history: &[(u32, f32)], scores: &mut [f32]) {
        self.score_user(history, None, scores);
    }
}

#[cfg(test)]
mod tests;
