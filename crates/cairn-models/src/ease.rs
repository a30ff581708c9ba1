//! EASE (Steck 2019, "Embarrassingly shallow autoencoders for sparse data"): a dense item-item weight
//! matrix in closed form, `B = I − P · diag(1 / diag(P))` with `P = (XᵀX + λI)⁻¹` and diag(B) = 0.
//!
//! The inverse is a Cholesky factorization and a triangular inverse (faer), done in place so that the
//! peak is two `n × n` matrices in the working precision plus the f32 result. Before allocating
//! anything the fit checks that peak against a configurable cap and returns
//! [`ModelError::TooLarge`] instead of running out of memory.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch};
use faer::linalg::matmul::triangular::{matmul, BlockStructure};
use faer::linalg::triangular_inverse::invert_lower_triangular;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, Par};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use cairn_core::CsrMatrix;

use crate::{top_k, ModelError, Recommender, SimilarItems};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// f64 up to `F64_MAX_ITEMS` items, f32 above (what the peers harness does).
    Auto,
    F32,
    F64,
}

/// Above this many items `Precision::Auto` inverts in f32.
pub const F64_MAX_ITEMS: usize = 8000;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EaseConfig {
    /// λ, added to the diagonal of the Gram matrix.
    pub lambda: f32,
    /// The fit refuses to start when its peak memory would exceed this.
    pub max_bytes: u64,
    pub precision: Precision,
}

impl Default for EaseConfig {
    fn default() -> Self {
        EaseConfig {
            lambda: 500.0,
            max_bytes: 8 << 30,
            precision: Precision::Auto,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ease {
    pub config: EaseConfig,
    pub n_items: usize,
    /// Row-major `n_items × n_items`; row h holds the weights that history item h gives every item.
    pub weights: Vec<f32>,
}

impl Ease {
    /// Peak bytes of a fit on `n_items` items in this precision.
    pub fn peak_bytes(n_items: usize, precision: Precision) -> u64 {
        let n2 = (n_items as u64).saturating_mul(n_items as u64);
        let elem = if resolve(precision, n_items) == Precision::F64 {
            8
        } else {
            4
        };
        n2.saturating_mul(2 * elem + 4)
    }

    /// Fits on the binarized user × item matrix.
    pub fn fit(user_items: &CsrMatrix, config: EaseConfig) -> Result<Self, ModelError> {
        let n = user_items.n_cols;
        if config.lambda.is_nan() || config.lambda <= 0.0 {
            return Err(ModelError::InvalidConfig {
                model: "ease",
                reason: format!("lambda must be positive, got {}", config.lambda),
            });
        }
        let needed = Self::peak_bytes(n, config.precision);
        if needed > config.max_bytes {
            return Err(ModelError::TooLarge {
                model: "ease",
                what: format!("the {n} × {n} item-item matrices"),
                needed_bytes: needed,
                cap_bytes: config.max_bytes,
            });
        }
        let weights = match resolve(config.precision, n) {
            Precision::F64 => weights_from_gram::<f64>(user_items, config.lambda as f64)?,
            _ => weights_from_gram::<f32>(user_items, config.lambda)?,
        };
        Ok(Ease {
            config,
            n_items: n,
            weights,
        })
    }
}

fn resolve(precision: Precision, n_items: usize) -> Precision {
    match precision {
        Precision::Auto if n_items <= F64_MAX_ITEMS => Precision::F64,
        Precision::Auto => Precision::F32,
        p => p,
    }
}

/// The working precision of the inverse.
trait Float: faer::traits::RealField + Copy + Send + Sync + 'static {
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
}

impl Float for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Float for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
}

fn weights_from_gram<T: Float>(user_items: &CsrMatrix, lambda: T) -> Result<Vec<f32>, ModelError> {
    let n = user_items.n_cols;
    let item_users = user_items.transpose();
    // Column-major n × n; the Gram matrix is symmetric, so column i is computed like row i.
    let mut g: Vec<T> = vec![T::from_f64(0.0); n * n];
    g.par_chunks_mut(n.max(1)).enumerate().for_each(|(i, col)| {
        for &u in item_users.row(i).0 {
            for &j in user_items.row(u as usize).0 {
                col[j as usize] += T::from_f64(1.0);
            }
        }
        col[i] += lambda;
    });
    weights_from_dense_gram(g, n)
}

/// EASE weights from a Gram matrix the caller built: `n × n`, symmetric, with λ already on the
/// diagonal (only the lower triangle is read). Models that add rows of side information to the
/// interaction matrix (collective EASE) solve through this. Row h of the result holds the weights that
/// input h gives every column; the diagonal is 0.
pub fn weights_from_gram_matrix(
    gram: Vec<f64>,
    n: usize,
    precision: Precision,
) -> Result<Vec<f32>, ModelError> {
    if gram.len() != n * n {
        return Err(ModelError::InvalidConfig {
            model: "ease",
            reason: format!(
                "a {n} × {n} Gram matrix needs {} values, got {}",
                n * n,
                gram.len()
            ),
        });
    }
    match resolve(precision, n) {
        Precision::F64 => weights_from_dense_gram(gram, n),
        _ => weights_from_dense_gram(gram.into_iter().map(|v| v as f32).collect(), n),
    }
}

fn weights_from_dense_gram<T: Float>(mut g: Vec<T>, n: usize) -> Result<Vec<f32>, ModelError> {
    let par = Par::rayon(0);
    let mut g = MatMut::from_column_major_slice_mut(&mut g[..], n, n);
    let mut buf = MemBuffer::new(cholesky_in_place_scratch::<T>(n, par, Default::default()));
    cholesky_in_place(
        g.rb_mut(),
        Default::default(),
        par,
        MemStack::new(&mut buf),
        Default::default(),
    )
    .map_err(|e| ModelError::Numerical {
        model: "ease",
        reason: format!("Cholesky factorization failed: {e:?}"),
    })?;
    drop(buf);
    // P = L⁻ᵀ L⁻¹, written over the factor (which is no longer needed once inverted).
    let mut l_inv: Mat<T> = Mat::zeros(n, n);
    invert_lower_triangular(l_inv.as_mut(), g.rb(), par);
    matmul(
        g.rb_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        l_inv.transpose(),
        BlockStructure::TriangularUpper,
        l_inv.as_ref(),
        BlockStructure::TriangularLower,
        T::from_f64(1.0),
        par,
    );
    drop(l_inv);
    // B[h][j] = −P[h][j] / P[j][j], diag 0, stored row-major by history item h. P is symmetric and only
    // its lower triangle is valid: P[h][j] = g[(max, min)].
    let diag: Vec<f64> = (0..n).map(|j| g[(j, j)].to_f64()).collect();
    let mut weights = vec![0f32; n * n];
    weights
        .par_chunks_mut(n.max(1))
        .enumerate()
        .for_each(|(h, row)| {
            for (j, w) in row.iter_mut().enumerate() {
                if j != h {
                    let p = if h >= j { g[(h, j)] } else { g[(j, h)] };
                    *w = (-p.to_f64() / diag[j]) as f32;
                }
            }
        });
    Ok(weights)
}

impl Recommender for Ease {
    fn name(&self) -> &'static str {
        "ease"
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    fn score(&self, history: &[(u32, f32)], scores: &mut [f32]) {
        scores.fill(0.0);
        let n = self.n_items;
        for &(h, w) in history {
            if (h as usize) < n && w > 0.0 {
                // The model is fitted on binarized data: any positive strength counts once.
                let row = &self.weights[h as usize * n..(h as usize + 1) * n];
                for (s, b) in scores.iter_mut().zip(row) {
                    *s += b;
                }
            }
        }
    }
}

impl SimilarItems for Ease {
    /// Items that `item` raises most in a user's scores.
    fn similar(&self, item: u32, k: usize) -> Vec<(u32, f32)> {
        let n = self.n_items;
        if item as usize >= n {
            return Vec::new();
        }
        let row = &self.weights[item as usize * n..(item as usize + 1) * n];
        top_k(row, k, |j| j == item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::*;

    #[test]
    fn beats_popularity_and_round_trips() {
        let data = planted(31, 600, 150, 6, 40);
        let pop = popularity_recall(&data, 10);
        let ease = Ease::fit(
            &data.train,
            EaseConfig {
                lambda: 50.0,
                ..EaseConfig::default()
            },
        )
        .unwrap();
        let recall = recall_at(&ease, &data.held_out, 10);
        assert!(
            recall > pop * 1.3 && recall > pop + 0.05,
            "{recall} vs pop {pop}"
        );
        let back: Ease = postcard::from_bytes(&postcard::to_allocvec(&ease).unwrap()).unwrap();
        assert_eq!(
            top_lists(&ease, &data.held_out, 10),
            top_lists(&back, &data.held_out, 10)
        );
    }

    #[test]
    fn matches_a_hand_computed_two_item_case() {
        // One user with both items: XᵀX = [[1, 1], [1, 1]]; λ = 1 gives G = [[2, 1], [1, 2]],
        // P = G⁻¹ = [[2, −1], [−1, 2]] / 3, so B[0][1] = −P[0][1] / P[1][1] = 1/2.
        let x = CsrMatrix::from_triplets(1, 2, vec![(0, 0, 1.0), (0, 1, 1.0)]);
        for precision in [Precision::F32, Precision::F64] {
            let ease = Ease::fit(
                &x,
                EaseConfig {
                    lambda: 1.0,
                    precision,
                    ..EaseConfig::default()
                },
            )
            .unwrap();
            let expect = [0.0, 0.5, 0.5, 0.0];
            for (w, e) in ease.weights.iter().zip(expect) {
                assert!((w - e).abs() < 1e-6, "{precision:?}: {:?}", ease.weights);
            }
        }
    }

    #[test]
    fn single_and_double_precision_agree() {
        let data = planted(32, 200, 10, 4, 25);
        let a = Ease::fit(
            &data.train,
            EaseConfig {
                lambda: 20.0,
                precision: Precision::F32,
                ..EaseConfig::default()
            },
        )
        .unwrap();
        let b = Ease::fit(
            &data.train,
            EaseConfig {
                lambda: 20.0,
                precision: Precision::F64,
                ..EaseConfig::default()
            },
        )
        .unwrap();
        let worst = a
            .weights
            .iter()
            .zip(&b.weights)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "{worst}");
    }

    #[test]
    fn a_caller_built_gram_gives_the_fitted_weights() {
        let data = planted(33, 120, 12, 3, 20);
        let fitted = Ease::fit(
            &data.train,
            EaseConfig {
                lambda: 5.0,
                precision: Precision::F64,
                ..EaseConfig::default()
            },
        )
        .unwrap();
        let n = data.train.n_cols;
        let mut gram = vec![0f64; n * n];
        for u in 0..data.train.n_rows {
            let items = data.train.row(u).0;
            for &i in items {
                for &j in items {
                    gram[i as usize * n + j as usize] += 1.0;
                }
            }
        }
        (0..n).for_each(|i| gram[i * n + i] += 5.0);
        let weights = weights_from_gram_matrix(gram, n, Precision::F64).unwrap();
        let worst = weights
            .iter()
            .zip(&fitted.weights)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-6, "{worst}");
        assert!(weights_from_gram_matrix(vec![1.0; 3], 2, Precision::F64).is_err());
    }

    #[test]
    fn refuses_a_catalogue_above_the_memory_cap() {
        let x = CsrMatrix::from_triplets(1, 1000, vec![(0, 0, 1.0)]);
        let err = Ease::fit(
            &x,
            EaseConfig {
                max_bytes: 1 << 20,
                ..EaseConfig::default()
            },
        )
        .unwrap_err();
        match err {
            ModelError::TooLarge {
                needed_bytes,
                cap_bytes,
                ..
            } => {
                assert_eq!(needed_bytes, 1000 * 1000 * 20);
                assert_eq!(cap_bytes, 1 << 20);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err_message_mentions_memory(
            &Ease::fit(
                &x,
                EaseConfig {
                    max_bytes: 1,
                    ..EaseConfig::default()
                }
            )
            .unwrap_err()
        ));
        let bad = Ease::fit(
            &x,
            EaseConfig {
                lambda: 0.0,
                ..EaseConfig::default()
            },
        );
        assert!(matches!(bad, Err(ModelError::InvalidConfig { .. })));
    }

    fn err_message_mentions_memory(e: &ModelError) -> bool {
        e.to_string().contains("memory")
    }
}
