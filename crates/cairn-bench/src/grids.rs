//! Hyperparameter grids for tuning on validation users: the peers' grids where they have one.

use cairn_models::{
    AlsConfig, AlsSolver, BprConfig, EaseConfig, ItemKnnConfig, KnnWeighting, ModelSpec,
    UserKnnConfig,
};

pub fn grid(model: &str, factors: usize) -> Option<Vec<ModelSpec>> {
    Some(match model {
        "pop" => vec![ModelSpec::Popularity],
        "als" | "als-chol" | "als-freq" => {
            let solver = if model == "als-chol" {
                AlsSolver::Cholesky
            } else {
                AlsSolver::Cg { steps: 3 }
            };
            let exps: &[f32] = if model == "als-freq" {
                &[0.5, 1.0]
            } else {
                &[0.0]
            };
            let mut out = Vec::new();
            for &reg_exponent in exps {
                for reg in [0.1, 1.0, 10.0, 100.0, 1000.0] {
                    for alpha in [1.0, 10.0, 40.0, 100.0] {
                        out.push(ModelSpec::Als(AlsConfig {
                            factors,
                            iterations: 15,
                            regularization: reg,
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
        "bpr" => [0.01f32, 0.05]
            .into_iter()
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
        "ease" => [50.0f32, 200.0, 500.0, 1000.0, 2000.0]
            .into_iter()
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
            for neighbours in [50, 100, 200] {
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
