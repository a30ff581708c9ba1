//! Rating prediction for RMSE/MAE. The harness needs only `predict(user, item)` of
//! [`cairn_models::RatingPredictor`]; the baselines here make RMSE work end to end without any factor
//! model. `Baseline` reproduces Surprise's `BaselineOnly`
//! (alternating least squares on user and item biases) so that its numbers can be checked against the
//! peer run on the same folds.

use std::collections::HashMap;

use cairn_core::CsrMatrix;
use cairn_models::{BiasedMf, MfConfig, RatingPredictor, SvdPlusPlus};
use serde::{Deserialize, Serialize};

use crate::metrics::{mae, rmse};
use crate::stats::{bootstrap_mean_ci, CiConfig};
use crate::task::{RatingData, RatingPair};

/// Rating models this crate can fit itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "kebab-case")]
pub enum RatingModelSpec {
    /// The mean training rating for every pair.
    GlobalMean,
    /// μ + b_u + b_i, fitted like Surprise `BaselineOnly(bsl_options={"method": "als"})`.
    Baseline(BaselineConfig),
    /// Biased matrix factorization of the models crate (Funk SVD, Surprise `SVD`).
    Svd(MfConfig),
    /// SVD++ of the models crate.
    Svdpp(MfConfig),
}

impl RatingModelSpec {
    pub fn default_for(name: &str) -> Option<RatingModelSpec> {
        match name {
            "global-mean" => Some(RatingModelSpec::GlobalMean),
            "baseline" | "baselineonly" => {
                Some(RatingModelSpec::Baseline(BaselineConfig::default()))
            }
            "svd" | "biased-mf" => Some(RatingModelSpec::Svd(MfConfig::default())),
            // Surprise's SVD++ defaults, as run_peers.py uses them.
            "svdpp" => Some(RatingModelSpec::Svdpp(MfConfig {
                factors: 20,
                learning_rate: 0.007,
                ..MfConfig::default()
            })),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            RatingModelSpec::GlobalMean => "global-mean",
            RatingModelSpec::Baseline(_) => "baseline",
            RatingModelSpec::Svd(_) => "svd",
            RatingModelSpec::Svdpp(_) => "svdpp",
        }
    }

    pub fn known_names() -> &'static [&'static str] {
        &["global-mean", "baseline", "svd", "svdpp"]
    }

    pub fn fit(
        &self,
        data: &RatingData,
        n_users: usize,
        n_items: usize,
    ) -> Box<dyn RatingPredictor> {
        let scale = RatingScale::of(data);
        match self {
            RatingModelSpec::GlobalMean => {
                let mu = global_mean(data);
                Box::new(move |_: Option<u32>, _: Option<u32>| scale.clip(mu))
            }
            RatingModelSpec::Baseline(c) => {
                Box::new(Baseline::fit(data, n_users, n_items, c, scale))
            }
            RatingModelSpec::Svd(c) => {
                Box::new(BiasedMf::fit(&rating_matrix(data, n_users, n_items), *c))
            }
            RatingModelSpec::Svdpp(c) => {
                Box::new(SvdPlusPlus::fit(&rating_matrix(data, n_users, n_items), *c))
            }
        }
    }
}

/// users × items with the training ratings (a repeated pair keeps its last rating).
fn rating_matrix(data: &RatingData, n_users: usize, n_items: usize) -> CsrMatrix {
    let mut last: HashMap<(u32, u32), f32> = HashMap::new();
    for &(u, i, r) in &data.train {
        last.insert((u, i), r);
    }
    let triplets = last.into_iter().map(|((u, i), r)| (u, i, r)).collect();
    CsrMatrix::from_triplets(n_users, n_items, triplets)
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BaselineConfig {
    pub epochs: usize,
    pub reg_user: f64,
    pub reg_item: f64,
}

impl Default for BaselineConfig {
    /// Surprise's defaults.
    fn default() -> Self {
        BaselineConfig {
            epochs: 10,
            reg_user: 15.0,
            reg_item: 10.0,
        }
    }
}

/// Predictions are clipped to the range of the training ratings, as Surprise clips to its rating scale.
#[derive(Debug, Clone, Copy)]
struct RatingScale {
    low: f64,
    high: f64,
}

impl RatingScale {
    fn of(data: &RatingData) -> Self {
        let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
        for &(_, _, r) in &data.train {
            low = low.min(f64::from(r));
            high = high.max(f64::from(r));
        }
        if low > high {
            (low, high) = (f64::NEG_INFINITY, f64::INFINITY);
        }
        RatingScale { low, high }
    }

    fn clip(&self, v: f64) -> f64 {
        v.clamp(self.low, self.high)
    }
}

fn global_mean(data: &RatingData) -> f64 {
    if data.train.is_empty() {
        return 0.0;
    }
    data.train.iter().map(|t| f64::from(t.2)).sum::<f64>() / data.train.len() as f64
}

struct Baseline {
    mu: f64,
    user_bias: Vec<f64>,
    item_bias: Vec<f64>,
    /// Users / items with training ratings; only these get their bias added, as in Surprise.
    user_known: Vec<bool>,
    item_known: Vec<bool>,
    scale: RatingScale,
}

impl Baseline {
    fn fit(
        data: &RatingData,
        n_users: usize,
        n_items: usize,
        c: &BaselineConfig,
        scale: RatingScale,
    ) -> Self {
        let mu = global_mean(data);
        let mut by_user: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n_users];
        let mut by_item: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n_items];
        for &(u, i, r) in &data.train {
            by_user[u as usize].push((i, f64::from(r)));
            by_item[i as usize].push((u, f64::from(r)));
        }
        let mut bu = vec![0f64; n_users];
        let mut bi = vec![0f64; n_items];
        for _ in 0..c.epochs {
            for (i, ratings) in by_item.iter().enumerate() {
                let dev: f64 = ratings.iter().map(|&(u, r)| r - mu - bu[u as usize]).sum();
                bi[i] = dev / (c.reg_item + ratings.len() as f64);
            }
            for (u, ratings) in by_user.iter().enumerate() {
                let dev: f64 = ratings.iter().map(|&(i, r)| r - mu - bi[i as usize]).sum();
                bu[u] = dev / (c.reg_user + ratings.len() as f64);
            }
        }
        Baseline {
            mu,
            user_bias: bu,
            item_bias: bi,
            user_known: by_user.iter().map(|r| !r.is_empty()).collect(),
            item_known: by_item.iter().map(|r| !r.is_empty()).collect(),
            scale,
        }
    }
}

impl RatingPredictor for Baseline {
    fn predict(&self, user: Option<u32>, item: Option<u32>) -> f64 {
        let mut est = self.mu;
        if let Some(u) = user.filter(|&u| self.user_known.get(u as usize) == Some(&true)) {
            est += self.user_bias[u as usize];
        }
        if let Some(i) = item.filter(|&i| self.item_known.get(i as usize) == Some(&true)) {
            est += self.item_bias[i as usize];
        }
        self.scale.clip(est)
    }
}

/// RMSE and MAE over the test pairs, with bootstrap intervals over pairs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatingResult {
    pub n_pairs: usize,
    pub rmse: f64,
    pub rmse_ci: (f64, f64),
    pub mae: f64,
    pub mae_ci: (f64, f64),
}

pub fn evaluate_ratings(
    model: &dyn RatingPredictor,
    test: &[RatingPair],
    ci: &CiConfig,
) -> Option<RatingResult> {
    let pairs: Vec<(f64, f64)> = test
        .iter()
        .map(|p| (model.predict(p.user, p.item), f64::from(p.rating)))
        .collect();
    let squared: Vec<f64> = pairs.iter().map(|(p, t)| (p - t) * (p - t)).collect();
    let absolute: Vec<f64> = pairs.iter().map(|(p, t)| (p - t).abs()).collect();
    let (mse_low, mse_high) = bootstrap_mean_ci(&squared, ci);
    Some(RatingResult {
        n_pairs: pairs.len(),
        rmse: rmse(&pairs)?,
        rmse_ci: (mse_low.sqrt(), mse_high.sqrt()),
        mae: mae(&pairs)?,
        mae_ci: bootstrap_mean_ci(&absolute, ci),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> RatingData {
        RatingData {
            train: vec![(0, 0, 5.0), (0, 1, 3.0), (1, 0, 4.0)],
            test: vec![
                RatingPair {
                    user: Some(1),
                    item: Some(1),
                    rating: 2.0,
                },
                RatingPair {
                    user: None,
                    item: None,
                    rating: 4.0,
                },
            ],
        }
    }

    #[test]
    fn one_epoch_of_baseline_als_by_hand() {
        // mu = 4. Epoch 1, items first with bu = 0: bi0 = (1 + 0)/(1 + 2) = 1/3, bi1 = (-1)/(1 + 1) = -1/2
        // (reg_item = 1); then users: bu0 = ((5-4-1/3) + (3-4+1/2))/(1 + 2) = (2/3 - 1/2)/3 = 1/18,
        // bu1 = (4 - 4 - 1/3)/(1 + 1) = -1/6 (reg_user = 1).
        let c = BaselineConfig {
            epochs: 1,
            reg_user: 1.0,
            reg_item: 1.0,
        };
        let d = data();
        let m = RatingModelSpec::Baseline(c).fit(&d, 2, 2);
        assert!((m.predict(Some(1), Some(1)) - (4.0 - 1.0 / 6.0 - 0.5)).abs() < 1e-12);
        assert!((m.predict(Some(0), Some(0)) - (4.0 + 1.0 / 18.0 + 1.0 / 3.0)).abs() < 1e-12);
        assert_eq!(m.predict(None, None), 4.0);
        let r = evaluate_ratings(m.as_ref(), &d.test, &CiConfig::default()).unwrap();
        let e1 = 4.0 - 1.0 / 6.0 - 0.5 - 2.0;
        assert!((r.rmse - ((e1 * e1 + 0.0) / 2.0f64).sqrt()).abs() < 1e-12);
        assert!((r.mae - e1.abs() / 2.0).abs() < 1e-12);
    }

    #[test]
    fn factor_models_fit_and_beat_the_global_mean_on_their_training_pairs() {
        // 4 users × 4 items with a clear user and item structure.
        let mut train = Vec::new();
        for u in 0..4u32 {
            for i in 0..4u32 {
                train.push((u, i, 1.0 + u as f32 + if i % 2 == 0 { 0.5 } else { 0.0 }));
            }
        }
        let test: Vec<RatingPair> = train
            .iter()
            .map(|&(u, i, r)| RatingPair {
                user: Some(u),
                item: Some(i),
                rating: r,
            })
            .collect();
        let data = RatingData { train, test };
        let ci = CiConfig::default();
        let mean = evaluate_ratings(
            RatingModelSpec::GlobalMean.fit(&data, 4, 4).as_ref(),
            &data.test,
            &ci,
        )
        .unwrap();
        for name in ["svd", "svdpp"] {
            let spec = RatingModelSpec::default_for(name).unwrap();
            let model = spec.fit(&data, 4, 4);
            let r = evaluate_ratings(model.as_ref(), &data.test, &ci).unwrap();
            assert!(
                r.rmse < mean.rmse,
                "{name}: {} vs global mean {}",
                r.rmse,
                mean.rmse
            );
            let unknown = model.predict(None, None);
            assert!((1.0..=4.5).contains(&unknown), "{name}: {unknown}");
        }
    }

    #[test]
    fn predictions_are_clipped_to_the_training_range() {
        let d = data();
        let m = RatingModelSpec::GlobalMean.fit(&d, 2, 2);
        assert_eq!(m.predict(Some(0), Some(0)), 4.0);
        let far = |_: Option<u32>, _: Option<u32>| 9.0;
        let r = evaluate_ratings(&far, &d.test, &CiConfig::default()).unwrap();
        assert_eq!(r.n_pairs, 2);
        assert!(r.mae > 4.0);
    }
}
