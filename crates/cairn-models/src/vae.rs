//! Mult-VAE (Liang, Krishnan, Hoffman, Jebara 2018, "Variational autoencoders for collaborative
//! filtering"): a user's item set, L2-normalised and thinned by dropout, is encoded by a tanh layer into
//! the mean and log-variance of a Gaussian latent vector; a sample of it is decoded by a tanh layer into
//! one logit per item, and the loss is the multinomial log-likelihood of the user's items under the
//! softmax of those logits plus β times the KL divergence from the standard normal prior, β annealed
//! linearly from 0 to a cap. With `variational: false` it is the paper's Mult-DAE (no sampling, no KL).
//!
//! Training is on the CPU: the dense products (the item-sized output layer dominates: three
//! `batch × hidden × items` products per step) run through faer's matmul, single-threaded per block,
//! with the blocks spread over rayon's threads; the sparse input layer is a hand-written gather and
//! scatter over each user's items. Every random draw (initialisation, user order, dropout, the latent
//! noise) comes from generators seeded from the configuration's seed, consumed in a fixed order, and
//! every product is cut into blocks that depend only on the matrix shapes, each block computed by the
//! same sequential code: the same seed gives the same weights on any number of threads.
//!
//! A new user is folded in by encoding their history (the latent mean, no noise): no retraining.

use faer::{Accum, MatMut, MatRef, Par};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use cairn_core::CsrMatrix;

use crate::{ModelError, Progress, Recommender, Silent};

/// Hyperparameters of [`MultVae`]. The defaults are the paper's architecture and optimiser (600 hidden
/// units, 200 latent dimensions, Adam at 10⁻³, batches of 500 users, input dropout 0.5, β capped at
/// 0.2); the epoch count and the annealing length were chosen on the validation users of the ML-1M
/// strong-generalization split (docs/bench/vae.md).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VaeConfig {
    /// Units of the encoder's and the decoder's hidden layer.
    pub hidden: usize,
    /// Dimensions of the latent vector.
    pub latent: usize,
    /// Passes over the training users.
    pub epochs: usize,
    /// Users per gradient step.
    pub batch_size: usize,
    /// Adam's step size.
    pub learning_rate: f32,
    /// Probability that an input item is dropped during training.
    pub dropout: f32,
    /// The cap of the KL weight β.
    pub beta_max: f32,
    /// Gradient steps over which β rises linearly from 0 to `beta_max`.
    pub anneal_steps: usize,
    /// L2 penalty on the weight matrices (added to their gradient as `weight_decay · w`).
    pub weight_decay: f32,
    /// `false`: the denoising autoencoder Mult-DAE (the latent mean is decoded, no KL term).
    pub variational: bool,
    pub seed: u64,
}

impl Default for VaeConfig {
    fn default() -> Self {
        VaeConfig {
            hidden: 600,
            latent: 200,
            epochs: 100,
            batch_size: 500,
            learning_rate: 1e-3,
            dropout: 0.5,
            beta_max: 0.2,
            anneal_steps: 2000,
            weight_decay: 0.0,
            variational: true,
            seed: 42,
        }
    }
}

impl VaeConfig {
    fn validate(&self) -> Result<(), ModelError> {
        let bad = |reason: String| {
            Err(ModelError::InvalidConfig {
                model: "vae",
                reason,
            })
        };
        if self.hidden == 0 || self.latent == 0 || self.batch_size == 0 {
            return bad("hidden, latent and batch_size must be positive".into());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!(
                "learning_rate must be positive, got {}",
                self.learning_rate
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        if !(self.beta_max.is_finite() && self.beta_max >= 0.0) {
            return bad(format!("beta_max must be ≥ 0, got {}", self.beta_max));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "weight_decay must be ≥ 0, got {}",
                self.weight_decay
            ));
        }
        Ok(())
    }
}

/// A fitted Mult-VAE. All matrices are row-major.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MultVae {
    pub config: VaeConfig,
    pub n_items: usize,
    /// Encoder input layer, `n_items × hidden`.
    pub w1: Vec<f32>,
    pub b1: Vec<f32>,
    /// Encoder output layer, `hidden × 2·latent`: the mean in the first `latent` columns, the
    /// log-variance in the others.
    pub w2: Vec<f32>,
    pub b2: Vec<f32>,
    /// Decoder hidden layer, `latent × hidden`.
    pub w3: Vec<f32>,
    pub b3: Vec<f32>,
    /// Decoder output layer, `hidden × n_items`.
    pub w4: Vec<f32>,
    pub b4: Vec<f32>,
}

/// Output blocks of the parallel products: columns in blocks of this many...
const COL_BLOCK: usize = 256;
/// ...and rows in blocks of this many.
const ROW_BLOCK: usize = 64;

fn view(s: &[f32], rows: usize, cols: usize) -> MatRef<'_, f32> {
    MatRef::from_row_major_slice(s, rows, cols)
}

fn view_mut(s: &mut [f32], rows: usize, cols: usize) -> MatMut<'_, f32> {
    MatMut::from_row_major_slice_mut(s, rows, cols)
}

/// `dst ← lhs · rhs`, split into blocks of at most `ROW_BLOCK × COL_BLOCK` outputs that are fixed by
/// the shapes alone and each computed sequentially, the blocks run in parallel: the result does not
/// depend on the number of threads.
fn par_matmul(dst: MatMut<'_, f32>, lhs: MatRef<'_, f32>, rhs: MatRef<'_, f32>) {
    let (m, n) = (dst.nrows(), dst.ncols());
    if n > COL_BLOCK {
        let mid = n.div_ceil(COL_BLOCK) / 2 * COL_BLOCK;
        let (left, right) = dst.split_at_col_mut(mid);
        let (rl, rr) = rhs.split_at_col(mid);
        rayon::join(|| par_matmul(left, lhs, rl), || par_matmul(right, lhs, rr));
    } else if m > ROW_BLOCK {
        let mid = m.div_ceil(ROW_BLOCK) / 2 * ROW_BLOCK;
        let (top, bottom) = dst.split_at_row_mut(mid);
        let (lt, lb) = lhs.split_at_row(mid);
        rayon::join(|| par_matmul(top, lt, rhs), || par_matmul(bottom, lb, rhs));
    } else {
        faer::linalg::matmul::matmul(dst, Accum::Replace, lhs, rhs, 1.0f32, Par::Seq);
    }
}

/// Adds `bias` to every row of the row-major `rows × bias.len()` matrix `m`.
fn add_bias(m: &mut [f32], bias: &[f32]) {
    m.par_chunks_mut(bias.len())
        .for_each(|row| row.iter_mut().zip(bias).for_each(|(a, b)| *a += b));
}

/// Column sums of a row-major matrix with `out.len()` columns, rows added in order.
fn column_sums(m: &[f32], out: &mut [f32]) {
    let n = out.len();
    out.par_chunks_mut(COL_BLOCK)
        .enumerate()
        .for_each(|(b, chunk)| {
            chunk.fill(0.0);
            let start = b * COL_BLOCK;
            let len = chunk.len();
            for row in m.chunks(n) {
                chunk
                    .iter_mut()
                    .zip(&row[start..start + len])
                    .for_each(|(a, v)| *a += v);
            }
        });
}

/// Glorot-uniform initial weights (the paper's initialiser) and small normal biases.
fn glorot(rng: &mut ChaCha8Rng, fan_in: usize, fan_out: usize) -> Vec<f32> {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
    (0..fan_in * fan_out)
        .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * limit)
        .collect()
}

fn normals(rng: &mut ChaCha8Rng, out: &mut [f32]) {
    for pair in out.chunks_mut(2) {
        // Box–Muller; 1 − u keeps the logarithm's argument in (0, 1].
        let u1 = 1.0 - rng.random::<f64>();
        let u2 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        pair[0] = (r * t.cos()) as f32;
        if pair.len() > 1 {
            pair[1] = (r * t.sin()) as f32;
        }
    }
}

fn mix(seed: u64, a: u64) -> u64 {
    let mut z = seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One user of a training batch: every item (the targets of the likelihood) and the input after
/// normalisation and dropout.
struct BatchUser<'a> {
    items: &'a [u32],
    input: Vec<(u32, f32)>,
}

/// The buffers of one gradient step, sized for the largest batch.
struct Workspace {
    h1: Vec<f32>,
    a2: Vec<f32>,
    eps: Vec<f32>,
    z: Vec<f32>,
    h3: Vec<f32>,
    logits: Vec<f32>,
    d_h3: Vec<f32>,
    d_z: Vec<f32>,
    d_a2: Vec<f32>,
    d_h1: Vec<f32>,
    /// Gradients in the order of [`MultVae::params_mut`].
    grads: [Vec<f32>; 8],
}

impl MultVae {
    /// Fits on the binarised user × item matrix.
    pub fn fit(user_items: &CsrMatrix, config: VaeConfig) -> Result<Self, ModelError> {
        Self::fit_with(user_items, config, &Silent, &mut |_, _, _| {})
    }

    /// [`MultVae::fit`], reporting each epoch to `progress`, and calling `on_epoch(epoch, mean
    /// training loss, model)` after each (e.g. to follow a validation metric).
    pub fn fit_with(
        user_items: &CsrMatrix,
        config: VaeConfig,
        progress: &dyn Progress,
        on_epoch: &mut dyn FnMut(usize, f64, &MultVae),
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let (n, h, z) = (user_items.n_cols, config.hidden, config.latent);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let small = |len: usize, rng: &mut ChaCha8Rng| {
            let mut v = vec![0f32; len];
            normals(rng, &mut v);
            v.iter_mut().for_each(|x| *x *= 1e-3);
            v
        };
        let w1 = glorot(&mut rng, n, h);
        let b1 = small(h, &mut rng);
        let w2 = glorot(&mut rng, h, 2 * z);
        let b2 = small(2 * z, &mut rng);
        let w3 = glorot(&mut rng, z, h);
        let b3 = small(h, &mut rng);
        let w4 = glorot(&mut rng, h, n);
        let b4 = small(n, &mut rng);
        let mut model = MultVae {
            config,
            n_items: n,
            w1,
            b1,
            w2,
            b2,
            w3,
            b3,
            w4,
            b4,
        };
        let rows: Vec<Vec<u32>> = (0..user_items.n_rows)
            .map(|u| {
                let mut items: Vec<u32> = user_items.row(u).0.to_vec();
                items.sort_unstable();
                items.dedup();
                items
            })
            .filter(|items| !items.is_empty())
            .collect();
        if rows.is_empty() || n == 0 {
            return Ok(model);
        }
        let b_max = config.batch_size.min(rows.len());
        let mut ws = Workspace::new(&model, b_max);
        let mut adam = Adam::new(&ws.grads);
        let keep = 1.0 - config.dropout;
        let mut step = 0usize;
        let mut order: Vec<usize> = (0..rows.len()).collect();
        for epoch in 0..config.epochs {
            let mut erng = ChaCha8Rng::seed_from_u64(mix(config.seed, epoch as u64 + 1));
            // Fisher–Yates with the epoch's generator.
            for i in (1..order.len()).rev() {
                order.swap(i, erng.random_range(0..=i));
            }
            let mut loss_sum = 0.0;
            for batch in order.chunks(config.batch_size) {
                let users: Vec<BatchUser> = batch
                    .iter()
                    .map(|&u| {
                        let items = &rows[u][..];
                        let norm = 1.0 / (items.len() as f32).sqrt();
                        let input = items
                            .iter()
                            .filter(|_| config.dropout == 0.0 || erng.random::<f32>() < keep)
                            .map(|&i| (i, norm / keep))
                            .collect();
                        BatchUser { items, input }
                    })
                    .collect();
                let b = users.len();
                if config.variational {
                    normals(&mut erng, &mut ws.eps[..b * z]);
                }
                let beta = if config.variational {
                    let ramp = if config.anneal_steps == 0 {
                        1.0
                    } else {
                        step as f32 / config.anneal_steps as f32
                    };
                    config.beta_max.min(ramp)
                } else {
                    0.0
                };
                loss_sum += ws.forward_backward(&model, &users, beta) * b as f64;
                adam.step(&mut model, &mut ws.grads, config);
                step += 1;
            }
            progress.update("vae", epoch + 1, config.epochs);
            on_epoch(epoch + 1, loss_sum / rows.len() as f64, &model);
        }
        Ok(model)
    }

    /// The parameters, in a fixed order: w1, b1, w2, b2, w3, b3, w4, b4.
    fn params_mut(&mut self) -> [&mut Vec<f32>; 8] {
        [
            &mut self.w1,
            &mut self.b1,
            &mut self.w2,
            &mut self.b2,
            &mut self.w3,
            &mut self.b3,
            &mut self.w4,
            &mut self.b4,
        ]
    }

    /// The latent mean of a user with these items, through `h1` (`hidden` long) into `mu`.
    fn encode(&self, items: &[u32], h1: &mut [f32], mu: &mut [f32]) {
        let (h, z) = (self.config.hidden, self.config.latent);
        h1.copy_from_slice(&self.b1);
        if !items.is_empty() {
            let norm = 1.0 / (items.len() as f32).sqrt();
            for &i in items {
                let row = &self.w1[i as usize * h..(i as usize + 1) * h];
                h1.iter_mut().zip(row).for_each(|(a, w)| *a += norm * w);
            }
        }
        h1.iter_mut().for_each(|v| *v = v.tanh());
        mu.copy_from_slice(&self.b2[..z]);
        for (k, &x) in h1.iter().enumerate() {
            let row = &self.w2[k * 2 * z..k * 2 * z + z];
            mu.iter_mut().zip(row).for_each(|(a, w)| *a += x * w);
        }
    }
}

impl Workspace {
    fn new(model: &MultVae, b: usize) -> Self {
        let (n, h, z) = (model.n_items, model.config.hidden, model.config.latent);
        Workspace {
            h1: vec![0.0; b * h],
            a2: vec![0.0; b * 2 * z],
            eps: vec![0.0; b * z],
            z: vec![0.0; b * z],
            h3: vec![0.0; b * h],
            logits: vec![0.0; b * n],
            d_h3: vec![0.0; b * h],
            d_z: vec![0.0; b * z],
            d_a2: vec![0.0; b * 2 * z],
            d_h1: vec![0.0; b * h],
            grads: [
                vec![0.0; n * h],
                vec![0.0; h],
                vec![0.0; h * 2 * z],
                vec![0.0; 2 * z],
                vec![0.0; z * h],
                vec![0.0; h],
                vec![0.0; h * n],
                vec![0.0; n],
            ],
        }
    }

    /// One batch: the mean loss over its users (negative log-likelihood + β·KL), and its gradient in
    /// `self.grads`. `self.eps` holds the latent noise of the batch (ignored by Mult-DAE).
    fn forward_backward(&mut self, model: &MultVae, users: &[BatchUser], beta: f32) -> f64 {
        let (n, h, z) = (model.n_items, model.config.hidden, model.config.latent);
        let z2 = 2 * z;
        let b = users.len();
        let inv_b = 1.0 / b as f32;
        let variational = model.config.variational;
        let h1 = &mut self.h1[..b * h];
        let a2 = &mut self.a2[..b * z2];
        let eps = &self.eps[..b * z];
        let zs = &mut self.z[..b * z];
        let h3 = &mut self.h3[..b * h];
        let logits = &mut self.logits[..b * n];

        // Encoder: sparse input layer, tanh, dense layer to (mean, log-variance).
        h1.par_chunks_mut(h).zip(users).for_each(|(row, user)| {
            row.copy_from_slice(&model.b1);
            for &(i, v) in &user.input {
                let w = &model.w1[i as usize * h..(i as usize + 1) * h];
                row.iter_mut().zip(w).for_each(|(a, w)| *a += v * w);
            }
            row.iter_mut().for_each(|x| *x = x.tanh());
        });
        par_matmul(view_mut(a2, b, z2), view(h1, b, h), view(&model.w2, h, z2));
        add_bias(a2, &model.b2);
        // The latent sample.
        let mut kl = 0.0f64;
        for u in 0..b {
            let row = &a2[u * z2..(u + 1) * z2];
            let (mu, logvar) = row.split_at(z);
            let out = &mut zs[u * z..(u + 1) * z];
            if variational {
                for k in 0..z {
                    out[k] = mu[k] + eps[u * z + k] * (0.5 * logvar[k]).exp();
                    kl += 0.5 * (-logvar[k] + logvar[k].exp() + mu[k] * mu[k] - 1.0) as f64;
                }
            } else {
                out.copy_from_slice(mu);
            }
        }
        // Decoder.
        par_matmul(view_mut(h3, b, h), view(zs, b, z), view(&model.w3, z, h));
        add_bias(h3, &model.b3);
        h3.par_iter_mut().for_each(|x| *x = x.tanh());
        par_matmul(
            view_mut(logits, b, n),
            view(h3, b, h),
            view(&model.w4, h, n),
        );
        add_bias(logits, &model.b4);
        // Multinomial likelihood: loss −Σ_{i∈x} log softmax_i; its gradient in the logits is
        // softmax · |x| − x, over the batch size. The per-user losses are added in user order.
        let per_user: Vec<f64> = logits
            .par_chunks_mut(n)
            .zip(users)
            .map(|(row, user)| {
                let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                let mut sum = 0.0f64;
                for x in row.iter_mut() {
                    *x = (*x - max).exp();
                    sum += *x as f64;
                }
                let log_sum = sum.ln();
                let mut nll = 0.0f64;
                for &i in user.items {
                    // log softmax_i = log(e_i) − log Σ e.
                    nll -= (row[i as usize] as f64).ln() - log_sum;
                }
                let scale = (user.items.len() as f64 / sum) as f32 * inv_b;
                row.iter_mut().for_each(|x| *x *= scale);
                for &i in user.items {
                    row[i as usize] -= inv_b;
                }
                nll
            })
            .collect();
        let nll: f64 = per_user.iter().sum();
        let d_logits = &*logits;
        let [g_w1, g_b1, g_w2, g_b2, g_w3, g_b3, g_w4, g_b4] = &mut self.grads;
        // Output layer.
        par_matmul(
            view_mut(g_w4, h, n),
            view(h3, b, h).transpose(),
            view(d_logits, b, n),
        );
        column_sums(d_logits, g_b4);
        let d_h3 = &mut self.d_h3[..b * h];
        par_matmul(
            view_mut(d_h3, b, h),
            view(d_logits, b, n),
            view(&model.w4, h, n).transpose(),
        );
        d_h3.par_iter_mut()
            .zip(&*h3)
            .for_each(|(d, y)| *d *= 1.0 - y * y);
        // Decoder hidden layer.
        par_matmul(
            view_mut(g_w3, z, h),
            view(zs, b, z).transpose(),
            view(d_h3, b, h),
        );
        column_sums(d_h3, g_b3);
        let d_z = &mut self.d_z[..b * z];
        par_matmul(
            view_mut(d_z, b, z),
            view(d_h3, b, h),
            view(&model.w3, z, h).transpose(),
        );
        // Through the sample to the mean and log-variance, plus the KL term.
        let d_a2 = &mut self.d_a2[..b * z2];
        let kl_scale = beta * inv_b;
        for u in 0..b {
            let row = &a2[u * z2..(u + 1) * z2];
            let (mu, logvar) = row.split_at(z);
            let out = &mut d_a2[u * z2..(u + 1) * z2];
            let (d_mu, d_logvar) = out.split_at_mut(z);
            let dz = &d_z[u * z..(u + 1) * z];
            if variational {
                for k in 0..z {
                    let std = (0.5 * logvar[k]).exp();
                    d_mu[k] = dz[k] + kl_scale * mu[k];
                    d_logvar[k] =
                        dz[k] * eps[u * z + k] * 0.5 * std + kl_scale * 0.5 * (std * std - 1.0);
                }
            } else {
                d_mu.copy_from_slice(dz);
                d_logvar.fill(0.0);
            }
        }
        par_matmul(
            view_mut(g_w2, h, z2),
            view(h1, b, h).transpose(),
            view(d_a2, b, z2),
        );
        column_sums(d_a2, g_b2);
        let d_h1 = &mut self.d_h1[..b * h];
        par_matmul(
            view_mut(d_h1, b, h),
            view(d_a2, b, z2),
            view(&model.w2, h, z2).transpose(),
        );
        d_h1.par_iter_mut()
            .zip(&*h1)
            .for_each(|(d, y)| *d *= 1.0 - y * y);
        column_sums(d_h1, g_b1);
        // Sparse input layer: the gradient of w1's row i is Σ_u v_ui · d_h1[u], users in order.
        g_w1.fill(0.0);
        for (u, user) in users.iter().enumerate() {
            let d = &d_h1[u * h..(u + 1) * h];
            for &(i, v) in &user.input {
                let g = &mut g_w1[i as usize * h..(i as usize + 1) * h];
                g.iter_mut().zip(d).for_each(|(a, d)| *a += v * d);
            }
        }
        (nll + beta as f64 * kl) / b as f64
    }
}

/// Adam (Kingma & Ba) with the usual constants, element-wise and therefore thread-count independent.
struct Adam {
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    t: i32,
}

impl Adam {
    /// Zero moments shaped like the gradients.
    fn new(grads: &[Vec<f32>; 8]) -> Self {
        Adam {
            m: grads.iter().map(|g| vec![0.0; g.len()]).collect(),
            v: grads.iter().map(|g| vec![0.0; g.len()]).collect(),
            t: 0,
        }
    }

    fn step(&mut self, model: &mut MultVae, grads: &mut [Vec<f32>; 8], config: VaeConfig) {
        const B1: f32 = 0.9;
        const B2: f32 = 0.999;
        const EPS: f32 = 1e-8;
        self.t += 1;
        let c1 = 1.0 - B1.powi(self.t);
        let c2 = 1.0 - B2.powi(self.t);
        let lr = config.learning_rate * c2.sqrt() / c1;
        for (k, ((p, g), (m, v))) in model
            .params_mut()
            .into_iter()
            .zip(grads.iter())
            .zip(self.m.iter_mut().zip(self.v.iter_mut()))
            .enumerate()
        {
            // Even indices are weight matrices, odd ones biases; only weights are penalised.
            let decay = if k % 2 == 0 { config.weight_decay } else { 0.0 };
            p.par_iter_mut()
                .zip(g.par_iter())
                .zip(m.par_iter_mut().zip(v.par_iter_mut()))
                .for_each(|((p, &g), (m, v))| {
                    let g = g + decay * *p;
                    *m = B1 * *m + (1.0 - B1) * g;
                    *v = B2 * *v + (1.0 - B2) * g * g;
                    *p -= lr * *m / (v.sqrt() + EPS * c2.sqrt());
                });
        }
    }
}

impl Recommender for MultVae {
    fn name(&self) -> &'static str {
        "vae"
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    /// The decoder's logits for the latent mean of the history's items (strengths are ignored:
    /// the model is trained on the binarised matrix).
    fn score(&self, history: &[(u32, f32)], scores: &mut [f32]) {
        let (n, h, z) = (self.n_items, self.config.hidden, self.config.latent);
        let mut items: Vec<u32> = history
            .iter()
            .map(|p| p.0)
            .filter(|&i| (i as usize) < n)
            .collect();
        items.sort_unstable();
        items.dedup();
        let mut h1 = vec![0f32; h];
        let mut mu = vec![0f32; z];
        self.encode(&items, &mut h1, &mut mu);
        let mut h3 = self.b3.clone();
        for (k, &x) in mu.iter().enumerate() {
            h3.iter_mut()
                .zip(&self.w3[k * h..(k + 1) * h])
                .for_each(|(a, w)| *a += x * w);
        }
        h3.iter_mut().for_each(|v| *v = v.tanh());
        let out = &mut scores[..n];
        out.copy_from_slice(&self.b4);
        for (k, &x) in h3.iter().enumerate() {
            out.iter_mut()
                .zip(&self.w4[k * n..(k + 1) * n])
                .for_each(|(a, w)| *a += x * w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::*;

    fn small() -> VaeConfig {
        VaeConfig {
            hidden: 32,
            latent: 8,
            epochs: 30,
            batch_size: 64,
            learning_rate: 3e-3,
            anneal_steps: 100,
            ..VaeConfig::default()
        }
    }

    #[test]
    fn beats_popularity_on_planted_clusters() {
        let data = planted(51, 600, 150, 6, 40);
        let pop = popularity_recall(&data, 10);
        let vae = MultVae::fit(&data.train, small()).unwrap();
        let recall = recall_at(&vae, &data.held_out, 10);
        assert!(recall > pop * 1.3, "vae {recall} vs popularity {pop}");
        let dae = MultVae::fit(
            &data.train,
            VaeConfig {
                variational: false,
                ..small()
            },
        )
        .unwrap();
        let recall = recall_at(&dae, &data.held_out, 10);
        assert!(recall > pop * 1.3, "dae {recall} vs popularity {pop}");
    }

    #[test]
    fn same_seed_same_weights_on_any_thread_count() {
        let data = planted(52, 300, 80, 4, 30);
        let config = VaeConfig {
            epochs: 3,
            ..small()
        };
        let fit_on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| MultVae::fit(&data.train, config).unwrap())
        };
        let (a, b) = (fit_on(1), fit_on(3));
        assert_eq!(a.w1, b.w1);
        assert_eq!(a.w4, b.w4);
        assert_eq!(a.b4, b.b4);
        let other = MultVae::fit(&data.train, VaeConfig { seed: 7, ..config }).unwrap();
        assert_ne!(a.w4, other.w4);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        // A tiny network in f32; central differences in every parameter group.
        let m = CsrMatrix::from_triplets(
            3,
            6,
            vec![
                (0, 0, 1.0),
                (0, 1, 1.0),
                (0, 4, 1.0),
                (1, 2, 1.0),
                (1, 3, 1.0),
                (2, 5, 1.0),
                (2, 0, 1.0),
            ],
        );
        let config = VaeConfig {
            hidden: 5,
            latent: 3,
            epochs: 0,
            ..VaeConfig::default()
        };
        for variational in [true, false] {
            let config = VaeConfig {
                variational,
                ..config
            };
            let model = MultVae::fit(&m, config).unwrap();
            let rows: Vec<Vec<u32>> = (0..3).map(|u| m.row(u).0.to_vec()).collect();
            let users: Vec<BatchUser> = rows
                .iter()
                .map(|items| BatchUser {
                    items,
                    // The input after dropout: the row's first two items, at uneven strengths.
                    input: vec![(items[0], 0.8), (items[1], 1.3)],
                })
                .collect();
            let mut ws = Workspace::new(&model, 3);
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            normals(&mut rng, &mut ws.eps);
            let beta = 0.7;
            ws.forward_backward(&model, &users, beta);
            let grads = ws.grads.clone();
            // `group` indexes both the parameters of a model copy and the gradients.
            #[allow(clippy::needless_range_loop)]
            for group in 0..8 {
                for idx in [0, 3, 7] {
                    let mut plus = model.clone();
                    let len = plus.params_mut()[group].len();
                    let idx = idx % len;
                    let step = 1e-2;
                    plus.params_mut()[group][idx] += step;
                    let mut minus = model.clone();
                    minus.params_mut()[group][idx] -= step;
                    let lp = ws.forward_backward(&plus, &users, beta);
                    let lm = ws.forward_backward(&minus, &users, beta);
                    let numeric = (lp - lm) / (2.0 * step as f64);
                    let analytic = grads[group][idx] as f64;
                    assert!(
                        (numeric - analytic).abs() < 2e-3 + 2e-2 * analytic.abs(),
                        "variational {variational}, group {group}, index {idx}: numeric {numeric}, analytic {analytic}"
                    );
                }
            }
        }
    }

    #[test]
    fn scores_fold_in_and_round_trip() {
        let data = planted(53, 200, 60, 4, 20);
        let vae = MultVae::fit(
            &data.train,
            VaeConfig {
                epochs: 2,
                ..small()
            },
        )
        .unwrap();
        let history = history_of(&data.train, 0);
        let mut a = vec![0f32; vae.n_items()];
        vae.score(&history, &mut a);
        assert!(a.iter().all(|s| s.is_finite()));
        let bytes = postcard::to_allocvec(&vae).unwrap();
        let back: MultVae = postcard::from_bytes(&bytes).unwrap();
        let mut b = vec![0f32; back.n_items()];
        back.score(&history, &mut b);
        assert_eq!(a, b);
        // Unknown items and an empty history are scored without panicking.
        vae.score(&[(10_000, 1.0)], &mut b);
        assert!(b.iter().all(|s| s.is_finite()));
    }

    #[test]
    fn rejects_bad_configurations() {
        let m = CsrMatrix::from_triplets(1, 2, vec![(0, 0, 1.0)]);
        for config in [
            VaeConfig {
                hidden: 0,
                ..VaeConfig::default()
            },
            VaeConfig {
                dropout: 1.0,
                ..VaeConfig::default()
            },
            VaeConfig {
                learning_rate: f32::NAN,
                ..VaeConfig::default()
            },
        ] {
            assert!(matches!(
                MultVae::fit(&m, config),
                Err(ModelError::InvalidConfig { .. })
            ));
        }
    }
}
