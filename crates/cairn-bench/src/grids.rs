//! Hyperparameter grids for tuning on validation users: the peers' grids where they have one.
//!
//! `Width::Quick` is the harness's default grid (`run_peers.py --grid quick`), `Width::Full` its
//! `--grid full` (7 penalties × 7 confidence weights for ALS). Cairn's full ALS grid also tries the
//! frequency-scaled penalty (ν = 1) beside the constant one, since that is a Cairn option.

use cairn_models::{
    AlsConfig, AlsSolver, BprConfig, EaseConfig, ItemKnnConfig, KnnWeighting, ModelSpec,
    UserKnnConfig,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    Quick,
    Full,
}

/// The union of the grids for each factor count (models without factors get one copy).
pub fn grid_over(model: &str, factors: &[usize], width: Width) -> Option<Vec<ModelSpec>> {
    let mut out: Vec<ModelSpec> = Vec::new();
    for &f in factors {
        for spec in grid(model, f, width)? {
            if !out.contains(&spec) {
                out.push(spec);
            }
        }
    }
    Some(out)
}

pub fn grid(model: &str, factors: usize, width: Width) -> Option<Vec<ModelSpec>> {
    let full = width == Width::Full;
    Some(match model {
        "pop" => vec![ModelSpec::Popularity],
        "als" | "als-cg" | "als-chol" | "als-freq" => {
            let solver = match model {
                "als-chol" => AlsSolver::Cholesky,
                // implicit's solver: plain conjugate gradient, 3 steps.
                "als-cg" => AlsSolver::Cg { steps: 3 },
                _ => AlsConfig::default().solver,
            };
            let exps: &[f32] = match (model, full) {
                ("als-freq", _) => &[0.5, 1.0],
                (_, true) => &[0.0, 1.0],
                _ => &[0.0],
            };
            let regs: &[f32] = if full {
                &[0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 3000.0]
            } else {
                &[0.1, 1.0, 10.0, 100.0, 1000.0]
            };
            let alphas: &[f32] = if full {
                &[0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0]
            } else {
                &[1.0, 10.0, 40.0, 100.0]
            };
            let mut out = Vec::new();
            for &reg_exponent in exps {
                for &regularization in regs {
                    for &alpha in alphas {
                        out.push(ModelSpec::Als(AlsConfig {
                            factors,
                            iterations: 15,
                            regularization,
                            alpha,
                            reg_exponent,
                            solver,
                            ..AlsConfig::default()
                        }));
                    }
                }
            }
            out
        }
        "bpr" => (if full {
            &[0.01f32, 0.05, 0.1][..]
        } else {
            &[0.01, 0.05][..]
        })
        .iter()
        .copied()
        .map(|learning_rate| {
            ModelSpec::Bpr(BprConfig {
                factors,
                iterations: 100,
                learning_rate,
                regularization: 0.01,
                ..BprConfig::default()
            })
        })
        .collect(),
        "ease" => (if full {
            &[10.0f32, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0][..]
        } else {
            &[50.0, 200.0, 500.0, 1000.0, 2000.0][..]
        })
        .iter()
        .copied()
        .map(|lambda| {
            ModelSpec::Ease(EaseConfig {
                lambda,
                ..EaseConfig::default()
            })
        })
        .collect(),
        "knn-cosine" | "knn-bm25" | "knn-tfidf" => {
            let weighting = match model {
                "knn-cosine" => KnnWeighting::Cosine,
                "knn-tfidf" => KnnWeighting::TfIdf,
                _ => KnnWeighting::Bm25 { k1: 1.2, b: 0.75 },
            };
            let shrinks: &[f32] = if model == "knn-cosine" {
                &[0.0, 10.0]
            } else {
                &[0.0]
            };
            let mut out = Vec::new();
            let ks: &[usize] = if full {
                &[20, 50, 100, 200, 500]
            } else {
                &[50, 100, 200]
            };
            for &neighbours in ks {
                for &shrinkage in shrinks {
                    out.push(ModelSpec::ItemKnn(ItemKnnConfig {
                        neighbours,
                        shrinkage,
                        weighting,
                        max_user_items: usize::MAX,
                    }));
                }
            }
            out
        }
        "user-knn" => [50usize, 100, 200]
            .into_iter()
            .map(|neighbours| {
                ModelSpec::UserKnn(UserKnnConfig {
                    neighbours,
                    ..UserKnnConfig::default()
                })
            })
            .collect(),
        _ => return None,
    })
}
