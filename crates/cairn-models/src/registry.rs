//! Models by name, with their hyperparameters, so that the evaluation harness, the tuner and the engine
//! can fit any model from a configuration value.

use cairn_core::InteractionMatrix;
use serde::{Deserialize, Serialize};

use crate::{
    AlsConfig, Bpr, BprConfig, Ease, EaseConfig, ImplicitAls, ItemKnn, ItemKnnConfig, ModelError,
    MultVae, Popularity, Progress, Recommender, Sequences, Silent, SimilarItems, Transition,
    TransitionConfig, UserKnn, UserKnnConfig, VaeConfig,
};

/// A model and its hyperparameters. Serialized as `{"model": "item-knn", ...params}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "kebab-case")]
pub enum ModelSpec {
    /// Number of users per item.
    Popularity,
    ItemKnn(ItemKnnConfig),
    /// Implicit alternating least squares.
    Als(AlsConfig),
    /// Bayesian personalized ranking with sampled negatives.
    Bpr(BprConfig),
    /// Closed-form item-item autoencoder; fails cleanly above its memory cap.
    Ease(EaseConfig),
    UserKnn(UserKnnConfig),
    /// Variational (or denoising) autoencoder with a multinomial likelihood.
    Vae(VaeConfig),
    /// Item-to-next-item transitions over each user's time-ordered history, scored from the newest
    /// events; needs the order ([`ModelSpec::needs_order`]).
    Transition(TransitionConfig),
}

impl ModelSpec {
    pub fn name(&self) -> &'static str {
        match self {
            ModelSpec::Popularity => "popularity",
            ModelSpec::ItemKnn(_) => "item-knn",
            ModelSpec::Als(_) => "als",
            ModelSpec::Bpr(_) => "bpr",
            ModelSpec::Ease(_) => "ease",
            ModelSpec::UserKnn(_) => "user-knn",
            ModelSpec::Vae(_) => "vae",
            ModelSpec::Transition(_) => "transition",
        }
    }

    /// The spec with default hyperparameters for a model name, if the name is known.
    pub fn default_for(name: &str) -> Option<ModelSpec> {
        Some(match name {
            "popularity" | "pop" => ModelSpec::Popularity,
            "item-knn" | "knn" => ModelSpec::ItemKnn(ItemKnnConfig::default()),
            "als" | "ials" => ModelSpec::Als(AlsConfig::default()),
            "bpr" => ModelSpec::Bpr(BprConfig::default()),
            "ease" => ModelSpec::Ease(EaseConfig::default()),
            "user-knn" => ModelSpec::UserKnn(UserKnnConfig::default()),
            "vae" | "mult-vae" => ModelSpec::Vae(VaeConfig::default()),
            "transition" | "next-item" => ModelSpec::Transition(TransitionConfig::default()),
            _ => return None,
        })
    }

    pub fn known_names() -> &'static [&'static str] {
        &[
            "popularity",
            "item-knn",
            "als",
            "bpr",
            "ease",
            "user-knn",
            "vae",
            "transition",
        ]
    }

    /// Whether the model fits on the users' events in time order ([`ModelSpec::try_fit_ordered`]);
    /// fitted from the matrix alone it fails with [`ModelError::NeedsOrder`].
    pub fn needs_order(&self) -> bool {
        matches!(self, ModelSpec::Transition(_))
    }

    /// Fits the model on the interactions, or says why it cannot (e.g. EASE above its memory cap).
    pub fn try_fit(&self, data: &InteractionMatrix) -> Result<Box<dyn Recommender>, ModelError> {
        Ok(Box::new(self.fit_model(data)?))
    }

    /// [`ModelSpec::try_fit`] with each training user's items in time order, for the models that
    /// need it (the others ignore `order`).
    pub fn try_fit_ordered(
        &self,
        data: &InteractionMatrix,
        order: Option<&Sequences>,
    ) -> Result<Box<dyn Recommender>, ModelError> {
        Ok(Box::new(self.fit_model_ordered(data, order, &Silent)?))
    }

    /// Fits the model and returns it as a [`FittedModel`], which can be saved (serde) and blended.
    pub fn fit_model(&self, data: &InteractionMatrix) -> Result<FittedModel, ModelError> {
        self.fit_model_with_progress(data, &Silent)
    }

    /// [`ModelSpec::fit_model`], telling `progress` how the iterative models (ALS, BPR) advance.
    pub fn fit_model_with_progress(
        &self,
        data: &InteractionMatrix,
        progress: &dyn Progress,
    ) -> Result<FittedModel, ModelError> {
        self.fit_model_ordered(data, None, progress)
    }

    /// [`ModelSpec::fit_model_with_progress`] with each training user's items in time order (entry
    /// `u` is row `u` of `data`), which the sequence-aware models need.
    pub fn fit_model_ordered(
        &self,
        data: &InteractionMatrix,
        order: Option<&Sequences>,
        progress: &dyn Progress,
    ) -> Result<FittedModel, ModelError> {
        let m = &data.user_items;
        Ok(match self {
            ModelSpec::Popularity => FittedModel::Popularity(Popularity::from_matrix(m)),
            ModelSpec::ItemKnn(c) => FittedModel::ItemKnn(ItemKnn::fit(m, *c)),
            ModelSpec::Als(c) => FittedModel::Als(ImplicitAls::fit_with_progress(m, *c, progress)),
            ModelSpec::Bpr(c) => FittedModel::Bpr(Bpr::fit_with_progress(m, *c, progress)),
            ModelSpec::Ease(c) => FittedModel::Ease(Ease::fit(m, *c)?),
            ModelSpec::UserKnn(c) => FittedModel::UserKnn(UserKnn::fit(m, *c)),
            ModelSpec::Vae(c) => {
                FittedModel::Vae(MultVae::fit_with(m, *c, progress, &mut |_, _, _| {})?)
            }
            ModelSpec::Transition(c) => {
                let order = order.ok_or(ModelError::NeedsOrder {
                    model: "transition",
                })?;
                FittedModel::Transition(Transition::fit(m.n_cols, order, *c)?)
            }
        })
    }
}

/// A fitted model of any kind: one type to save as a versioned artifact or to put in a blend.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FittedModel {
    Popularity(Popularity),
    ItemKnn(ItemKnn),
    Als(ImplicitAls),
    Bpr(Bpr),
    Ease(Ease),
    UserKnn(UserKnn),
    Vae(MultVae),
    Transition(Transition),
}

impl FittedModel {
    fn inner(&self) -> &dyn Recommender {
        match self {
            FittedModel::Popularity(m) => m,
            FittedModel::ItemKnn(m) => m,
            FittedModel::Als(m) => m,
            FittedModel::Bpr(m) => m,
            FittedModel::Ease(m) => m,
            FittedModel::UserKnn(m) => m,
            FittedModel::Vae(m) => m,
            FittedModel::Transition(m) => m,
        }
    }

    /// The user and item vectors of a factor model; `None` for the other models. Serving folds users
    /// in and searches item vectors through this view, so a new factor model needs only an
    /// implementation of [`FactorModel`] and an arm here.
    pub fn factor_model(&self) -> Option<&dyn FactorModel> {
        match self {
            FittedModel::Als(m) => Some(m),
            FittedModel::Bpr(m) => Some(m),
            FittedModel::Popularity(_)
            | FittedModel::ItemKnn(_)
            | FittedModel::Ease(_)
            | FittedModel::UserKnn(_)
            | FittedModel::Vae(_)
            | FittedModel::Transition(_) => None,
        }
    }

    /// Item-to-item similarities, for the models that have them.
    pub fn similar_items(&self) -> Option<&dyn SimilarItems> {
        match self {
            FittedModel::ItemKnn(m) => Some(m),
            FittedModel::Als(m) => Some(m),
            FittedModel::Bpr(m) => Some(m),
            FittedModel::Ease(m) => Some(m),
            FittedModel::Transition(m) => Some(m),
            FittedModel::Popularity(_) | FittedModel::UserKnn(_) | FittedModel::Vae(_) => None,
        }
    }
}

/// A model that scores an item by the inner product of the user's and the item's vectors, plus
/// the item's bias where it has one: what lets serving fold a user in once per request and search
/// the item vectors by nearest neighbour instead of scoring every item.
pub trait FactorModel: Send + Sync {
    /// Length of every vector.
    fn factors(&self) -> usize;
    /// The item vectors, `factors()` values per item, in item order.
    fn item_factors(&self) -> &[f32];
    /// Per-item bias added to the inner product, for the models that have one.
    fn item_bias(&self) -> Option<&[f32]>;
    /// The vector of a user with this history: (item index, strength), oldest first.
    fn fold_in(&self, history: &[(u32, f32)]) -> Vec<f32>;
}

impl FactorModel for ImplicitAls {
    fn factors(&self) -> usize {
        ImplicitAls::factors(self)
    }

    fn item_factors(&self) -> &[f32] {
        &self.item_factors
    }

    fn item_bias(&self) -> Option<&[f32]> {
        None
    }

    fn fold_in(&self, history: &[(u32, f32)]) -> Vec<f32> {
        ImplicitAls::fold_in(self, history)
    }
}

impl FactorModel for Bpr {
    fn factors(&self) -> usize {
        Bpr::factors(self)
    }

    fn item_factors(&self) -> &[f32] {
        &self.item_factors
    }

    fn item_bias(&self) -> Option<&[f32]> {
        Some(&self.item_bias)
    }

    fn fold_in(&self, history: &[(u32, f32)]) -> Vec<f32> {
        Bpr::fold_in(self, history)
    }
}

impl Recommender for FittedModel {
    fn name(&self) -> &'static str {
        self.inner().name()
    }

    fn n_items(&self) -> usize {
        self.inner().n_items()
    }

    fn score(&self, history: &[(u32, f32)], scores: &mut [f32]) {
        self.inner().score(history, scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_name_has_a_default() {
        for name in ModelSpec::known_names() {
            let spec = ModelSpec::default_for(name).unwrap();
            assert_eq!(spec.name(), *name);
        }
    }

    #[test]
    fn specs_round_trip_through_json() {
        for name in ModelSpec::known_names() {
            let spec = ModelSpec::default_for(name).unwrap();
            let json = serde_json::to_string(&spec).unwrap();
            let back: ModelSpec = serde_json::from_str(&json).unwrap();
            assert_eq!(back, spec, "{json}");
        }
    }

    #[test]
    fn ease_above_its_cap_is_an_error_not_a_crash() {
        let data = InteractionMatrix::from_rows([("u1", "a", 1.0), ("u1", "b", 1.0)]);
        let spec = ModelSpec::Ease(EaseConfig {
            max_bytes: 1,
            ..EaseConfig::default()
        });
        assert!(matches!(
            spec.try_fit(&data),
            Err(ModelError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_sequence_model_without_the_order_is_an_error() {
        let data = InteractionMatrix::from_rows([("u1", "a", 1.0), ("u1", "b", 1.0)]);
        let spec = ModelSpec::default_for("transition").unwrap();
        assert!(spec.needs_order());
        assert_eq!(
            spec.try_fit(&data).err(),
            Some(ModelError::NeedsOrder {
                model: "transition"
            })
        );
        assert!(!ModelSpec::default_for("item-knn").unwrap().needs_order());
    }

    #[test]
    fn every_model_fits_and_scores_a_tiny_matrix() {
        let data = InteractionMatrix::from_rows([
            ("u1", "a", 1.0),
            ("u1", "b", 1.0),
            ("u2", "b", 1.0),
            ("u2", "c", 1.0),
            ("u3", "a", 1.0),
            ("u3", "c", 1.0),
        ]);
        let order: Vec<Vec<u32>> = (0..data.user_items.n_rows)
            .map(|u| data.user_items.row(u).0.to_vec())
            .collect();
        for name in ModelSpec::known_names() {
            let model = ModelSpec::default_for(name)
                .unwrap()
                .try_fit_ordered(&data, Some(&order))
                .unwrap();
            let mut scores = vec![0f32; model.n_items()];
            model.score(&[(0, 1.0)], &mut scores);
            assert!(scores.iter().all(|s| s.is_finite()), "{name}: {scores:?}");
        }
    }
}
