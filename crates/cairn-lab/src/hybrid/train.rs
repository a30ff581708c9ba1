//! The training loop of [`HybridModel`]: one pass per epoch over the users in a seeded random order;
//! for each user, every positive in random order against sampled negatives.
//!
//! Per user, the history sum is computed once; each positive is scored from the sum minus its own
//! context (leave-one-out). Item-side updates are applied at once; the user-side gradient is
//! accumulated and handed to the context rows of the history (each minus its own positive's share)
//! when the user is done. The run is sequential and seeded, so a fit is reproducible bit for bit;
//! only the per-epoch refresh of the item cache runs on rayon.

use cairn_content::features::rows_to_csr;
use cairn_content::ContentError;
use cairn_core::CsrMatrix;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::params::{axpy, dot, Table};
use super::{item_row, HybridConfig, HybridModel, Loss};

/// LightFM caps a WARP step's rank weight; a log rank of 10 is already ~22,000 items.
const MAX_WARP_WEIGHT: f32 = 10.0;

/// Fits on `interactions` (users × items, positive strengths), `item_features` (items × content
/// features, non-negative) and optionally `user_features` (users × user features, rows aligned with
/// `interactions`).
pub fn fit(
    interactions: &CsrMatrix,
    item_features: &CsrMatrix,
    user_features: Option<&CsrMatrix>,
    config: &HybridConfig,
) -> Result<HybridModel, ContentError> {
    config.validate()?;
    if item_features.n_rows != interactions.n_cols {
        return Err(ContentError::ShapeMismatch {
            what: "item features (rows) against interactions (columns)",
            expected: interactions.n_cols,
            got: item_features.n_rows,
        });
    }
    if let Some(uf) = user_features {
        if uf.n_rows != interactions.n_rows {
            return Err(ContentError::ShapeMismatch {
                what: "user features against interactions",
                expected: interactions.n_rows,
                got: uf.n_rows,
            });
        }
    }
    let n_items = interactions.n_cols;
    let n_features = item_features.n_cols;
    let d = config.factors;
    let mut warm = vec![false; n_items];
    for &i in &interactions.indices {
        warm[i as usize] = true;
    }
    let use_identity = config.identity_share > 0.0 || config.context_identity_share > 0.0;
    let n_columns = n_features + if use_identity { n_items } else { 0 };
    let rows_with = |share: f32| {
        let rows: Vec<Vec<(u32, f32)>> = (0..n_items)
            .map(|i| {
                let identity = (share > 0.0 && warm[i]).then_some((n_features + i) as u32);
                item_row(item_features.row(i), identity, share)
            })
            .collect();
        rows_to_csr(rows, n_columns)
    };
    let item_rows = rows_with(config.identity_share);
    let context_rows = rows_with(config.context_identity_share);
    let feature_rows = rows_with(0.0);

    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let scale = 1.0 / d as f32;
    let n_user_features = user_features.map_or(0, |u| u.n_cols);
    let mut model = HybridModel {
        config: config.clone(),
        n_features,
        item_rows,
        context_rows,
        item_table: Table::random(n_columns, d, scale, &mut rng),
        item_bias_table: Table::zeros(n_columns, 1),
        context_table: Table::random(n_columns, d, scale, &mut rng),
        user_table: Table::random(n_user_features, d, scale, &mut rng),
        user_identity_table: Table::random(
            if config.user_identity {
                interactions.n_rows
            } else {
                0
            },
            d,
            scale,
            &mut rng,
        ),
        warm: warm.clone(),
        projection: Vec::new(),
        item_emb: Vec::new(),
        item_bias: Vec::new(),
        item_ctx: Vec::new(),
    };
    let warm_items: Vec<u32> = (0..n_items as u32).filter(|&i| warm[i as usize]).collect();
    if !warm_items.is_empty() {
        let mut trainer = Trainer::new(
            &model,
            interactions,
            warm_items.clone(),
            feature_rows.clone(),
        );
        for epoch in 0..config.epochs {
            model.refresh_items();
            let mut epoch_rng = ChaCha8Rng::seed_from_u64(
                config.seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9),
            );
            trainer.epoch(&mut model, interactions, user_features, &mut epoch_rng);
        }
    }
    model.refresh_items();
    if config.projection_lambda > 0.0 && !warm_items.is_empty() {
        model.projection = fit_projection(&model, &feature_rows, &warm_items);
        model.refresh_items();
    }
    model.item_table.finish();
    model.item_bias_table.finish();
    model.context_table.finish();
    model.user_table.finish();
    model.user_identity_table.finish();
    Ok(model)
}

/// Scratch buffers, allocated once per fit.
struct Trainer {
    warm_items: Vec<u32>,
    /// Items' features-only rows, for feature dropout.
    feature_rows: CsrMatrix,
    order: Vec<u32>,
    positions: Vec<u32>,
    /// `stamp[i] == current` marks item i as in the current user's history.
    stamp: Vec<u32>,
    current: u32,
    history_sum: Vec<f32>,
    user_part: Vec<f32>,
    user: Vec<f32>,
    /// Context embedding of each history item, `max_history × d`.
    contexts: Vec<f32>,
    /// Each positive's own contribution to the accumulated user gradient, `max_history × d`.
    own_grads: Vec<f32>,
    grad_sum: Vec<f32>,
    grad_plain: Vec<f32>,
    q_pos: Vec<f32>,
    q_neg: Vec<f32>,
    grad_u: Vec<f32>,
    grad_item: Vec<f32>,
}

impl Trainer {
    fn new(
        model: &HybridModel,
        interactions: &CsrMatrix,
        warm_items: Vec<u32>,
        feature_rows: CsrMatrix,
    ) -> Self {
        let d = model.config.factors;
        let max_history = (0..interactions.n_rows)
            .map(|u| interactions.row_len(u))
            .max()
            .unwrap_or(0);
        Trainer {
            warm_items,
            feature_rows,
            order: (0..interactions.n_rows as u32).collect(),
            positions: Vec::with_capacity(max_history),
            stamp: vec![0; interactions.n_cols],
            current: 0,
            history_sum: vec![0.0; d],
            user_part: vec![0.0; d],
            user: vec![0.0; d],
            contexts: vec![0.0; max_history * d],
            own_grads: vec![0.0; max_history * d],
            grad_sum: vec![0.0; d],
            grad_plain: vec![0.0; d],
            q_pos: vec![0.0; d],
            q_neg: vec![0.0; d],
            grad_u: vec![0.0; d],
            grad_item: vec![0.0; d],
        }
    }

    fn epoch(
        &mut self,
        model: &mut HybridModel,
        interactions: &CsrMatrix,
        user_features: Option<&CsrMatrix>,
        rng: &mut ChaCha8Rng,
    ) {
        let mut order = std::mem::take(&mut self.order);
        order.shuffle(rng);
        for &u in &order {
            let (items, weights) = interactions.row(u as usize);
            let features = user_features.map(|m| m.row(u as usize));
            self.user_pass(model, u as usize, items, weights, features, rng);
        }
        self.order = order;
    }

    /// Finds a negative for a positive scoring `positive`, with the step weight; None when no sampled
    /// item violates the margin (WARP) or by chance (BPR never returns None).
    fn sample_negative(
        &self,
        model: &HybridModel,
        positive: f32,
        rng: &mut ChaCha8Rng,
    ) -> Option<(u32, f32)> {
        let d = model.config.factors;
        let n = self.warm_items.len();
        let draw = |rng: &mut ChaCha8Rng| -> Option<u32> {
            // A few redraws to avoid the user's own items; giving up just skips the step.
            for _ in 0..8 {
                let j = self.warm_items[rng.random_range(0..n)];
                if self.stamp[j as usize] != self.current {
                    return Some(j);
                }
            }
            None
        };
        match model.config.loss {
            Loss::Warp { max_trials } => {
                for trial in 1..=max_trials {
                    let j = draw(rng)?;
                    let ju = j as usize;
                    // Cached embeddings (refreshed each epoch) are enough to find a violator.
                    let score = dot(&self.user, &model.item_emb[ju * d..(ju + 1) * d])
                        + model.item_bias[ju];
                    if score > positive - 1.0 {
                        let rank = ((n.saturating_sub(1)) / trial).max(1) as f32;
                        return Some((j, rank.ln().min(MAX_WARP_WEIGHT)));
                    }
                }
                None
            }
            Loss::Bpr => {
                let j = draw(rng)?;
                let ju = j as usize;
                let score =
                    dot(&self.user, &model.item_emb[ju * d..(ju + 1) * d]) + model.item_bias[ju];
                Some((j, 1.0 / (1.0 + (positive - score).exp())))
            }
        }
    }

    fn user_pass(
        &mut self,
        model: &mut HybridModel,
        user: usize,
        items: &[u32],
        weights: &[f32],
        user_features: Option<(&[u32], &[f32])>,
        rng: &mut ChaCha8Rng,
    ) {
        let d = model.config.factors;
        let lr = model.config.learning_rate;
        let l2 = model.config.l2;
        let alpha = model.config.history_exponent;
        let learn_bias = model.config.item_bias;
        let has_user_features = user_features.is_some_and(|(c, _)| !c.is_empty());
        let has_identity = user < model.user_identity_table.rows();
        if items.is_empty() || (items.len() < 2 && !has_user_features && !has_identity) {
            return;
        }
        self.current = self.current.wrapping_add(1);
        if self.current == 0 {
            self.stamp.iter_mut().for_each(|s| *s = 0);
            self.current = 1;
        }
        self.history_sum.iter_mut().for_each(|x| *x = 0.0);
        let mut total = 0f32;
        for (k, (&j, &w)) in items.iter().zip(weights).enumerate() {
            self.stamp[j as usize] = self.current;
            let (cols, vals) = model.context_rows.row(j as usize);
            let ctx = &mut self.contexts[k * d..(k + 1) * d];
            if model.config.tie_context {
                model.item_table.gather(cols, vals, ctx);
            } else {
                model.context_table.gather(cols, vals, ctx);
            }
            axpy(w, ctx, &mut self.history_sum);
            total += w;
        }
        match user_features {
            Some((cols, vals)) => model.user_table.gather(cols, vals, &mut self.user_part),
            None => self.user_part.iter_mut().for_each(|x| *x = 0.0),
        }
        self.grad_sum.iter_mut().for_each(|x| *x = 0.0);
        self.grad_plain.iter_mut().for_each(|x| *x = 0.0);
        self.positions.clear();
        self.positions.extend(0..items.len() as u32);
        self.positions.shuffle(rng);

        for p in 0..self.positions.len() {
            let k = self.positions[p] as usize;
            let (i, w_i) = (items[k] as usize, weights[k]);
            let others = total - w_i;
            let history_dropped = has_user_features
                && model.config.history_dropout > 0.0
                && rng.random::<f32>() < model.config.history_dropout;
            let s = if others > 0.0 && !history_dropped {
                others.powf(-alpha)
            } else {
                0.0
            };
            let own = &mut self.own_grads[k * d..(k + 1) * d];
            own.iter_mut().for_each(|x| *x = 0.0);
            let ctx = &self.contexts[k * d..(k + 1) * d];
            for (((u, h), c), p) in self
                .user
                .iter_mut()
                .zip(&self.history_sum)
                .zip(ctx)
                .zip(&self.user_part)
            {
                *u = s * (h - w_i * c) + p;
            }
            if has_identity {
                axpy(1.0, model.user_identity_table.row(user), &mut self.user);
            }
            let dropout = model.config.feature_dropout > 0.0
                && rng.random::<f32>() < model.config.feature_dropout;
            let rows = if dropout {
                &self.feature_rows
            } else {
                &model.item_rows
            };
            let (cols_i, vals_i) = rows.row(i);
            model.item_table.gather(cols_i, vals_i, &mut self.q_pos);
            let positive = dot(&self.user, &self.q_pos) + bias(model, cols_i, vals_i);
            let Some((j, weight)) = self.sample_negative(model, positive, rng) else {
                continue;
            };
            let (cols_j, vals_j) = rows.row(j as usize);
            model.item_table.gather(cols_j, vals_j, &mut self.q_neg);
            // Loss weight × (1 - positive + negative): gradients below.
            for ((g, n), p) in self.grad_u.iter_mut().zip(&self.q_neg).zip(&self.q_pos) {
                *g = weight * (n - p);
            }
            self.grad_item.copy_from_slice(&self.user);
            for (&c, &v) in cols_i.iter().zip(vals_i) {
                model
                    .item_table
                    .step(c as usize, &self.grad_item, -weight * v, lr, l2);
                if learn_bias {
                    model
                        .item_bias_table
                        .step(c as usize, &[1.0], -weight * v, lr, l2);
                }
            }
            for (&c, &v) in cols_j.iter().zip(vals_j) {
                model
                    .item_table
                    .step(c as usize, &self.grad_item, weight * v, lr, l2);
                if learn_bias {
                    model
                        .item_bias_table
                        .step(c as usize, &[1.0], weight * v, lr, l2);
                }
            }
            let own = &mut self.own_grads[k * d..(k + 1) * d];
            for (((o, g), sum), plain) in own
                .iter_mut()
                .zip(&self.grad_u)
                .zip(self.grad_sum.iter_mut())
                .zip(self.grad_plain.iter_mut())
            {
                *o = s * g;
                *sum += *o;
                *plain += g;
            }
            if has_identity {
                // A free vector learns from every step at once, as in LightFM.
                model
                    .user_identity_table
                    .step(user, &self.grad_u, 1.0, lr, l2);
            }
        }

        // The history sum feeds every positive but its own: item k's context gets the accumulated
        // gradient minus what its own positive contributed.
        for (k, (&j, &w)) in items.iter().zip(weights).enumerate() {
            let own = &mut self.own_grads[k * d..(k + 1) * d];
            for (o, sum) in own.iter_mut().zip(&self.grad_sum) {
                *o = w * (sum - *o);
            }
            let (cols, vals) = model.context_rows.row(j as usize);
            for (&c, &v) in cols.iter().zip(vals) {
                if model.config.tie_context {
                    model.item_table.step(c as usize, own, v, lr, l2);
                } else {
                    model.context_table.step(c as usize, own, v, lr, l2);
                }
            }
        }
        if let Some((cols, vals)) = user_features {
            for (&g, &y) in cols.iter().zip(vals) {
                model
                    .user_table
                    .step(g as usize, &self.grad_plain, y, lr, l2);
            }
        }
    }
}

/// Ridge map from the warm items' feature rows to their (embedding, bias).
fn fit_projection(model: &HybridModel, feature_rows: &CsrMatrix, warm_items: &[u32]) -> Vec<f32> {
    let d = model.config.factors;
    let k = d + 1;
    let rows: Vec<Vec<(u32, f32)>> = warm_items
        .iter()
        .map(|&i| {
            let (c, v) = feature_rows.row(i as usize);
            c.iter().copied().zip(v.iter().copied()).collect()
        })
        .collect();
    let x = rows_to_csr(rows, model.n_features);
    let mut y = vec![0f32; warm_items.len() * k];
    for (r, &i) in warm_items.iter().enumerate() {
        let i = i as usize;
        y[r * k..r * k + d].copy_from_slice(&model.item_emb[i * d..(i + 1) * d]);
        y[r * k + d] = model.item_bias[i];
    }
    super::projection::ridge(&x, &y, k, model.config.projection_lambda, 100)
}

fn bias(model: &HybridModel, cols: &[u32], vals: &[f32]) -> f32 {
    cols.iter()
        .zip(vals)
        .map(|(&c, &v)| v * model.item_bias_table.weights[c as usize])
        .sum()
}
