//! Models by name, with their hyperparameters, so that the evaluation harness, the tuner and the engine
//! can fit any model from a configuration value.

use cairn_core::InteractionMatrix;
use serde::{Deserialize, Serialize};

use crate::{
    AlsConfig, Bpr, BprConfig, Ease, EaseConfig, ImplicitAls, ItemKnn, ItemKnnConfig, ModelError,
    Popularity, Recommender, UserKnn, UserKnnConfig,
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
            _ => return None,
        })
    }

    pub fn known_names() -> &'static [&'static str] {
        &["popularity", "item-knn", "als", "bpr", "ease", "user-knn"]
    }

    /// Fits the model on the interactions, or says why it cannot (e.g. EASE above its memory cap).
    pub fn try_fit(&self, data: &InteractionMatrix) -> Result<Box<dyn Recommender>, ModelError> {
        let m = &data.user_items;
        Ok(match self {
            ModelSpec::Popularity => Box::new(Popularity::from_matrix(m)),
            ModelSpec::ItemKnn(c) => Box::new(ItemKnn::fit(m, *c)),
            ModelSpec::Als(c) => Box::new(ImplicitAls::fit(m, *c)),
            ModelSpec::Bpr(c) => Box::new(Bpr::fit(m, *c)),
            ModelSpec::Ease(c) => Box::new(Ease::fit(m, *c)?),
            ModelSpec::UserKnn(c) => Box::new(UserKnn::fit(m, *c)),
        })
    }

    /// Fits the model on the interactions. A model whose fit fails (only EASE can, above its memory
    /// cap) is replaced by item-kNN with default settings so that serving keeps working; call
    /// [`ModelSpec::try_fit`] to see the error instead.
    pub fn fit(&self, data: &InteractionMatrix) -> Box<dyn Recommender> {
        match self.try_fit(data) {
            Ok(model) => model,
            Err(_) => Box::new(ItemKnn::fit(&data.user_items, ItemKnnConfig::default())),
        }
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
        // The infallible path still serves something.
        assert_eq!(spec.fit(&data).n_items(), 2);
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
        for name in ModelSpec::known_names() {
            let model = ModelSpec::default_for(name)
                .unwrap()
                .try_fit(&data)
                .unwrap();
            let mut scores = vec![0f32; model.n_items()];
            model.score(&[(0, 1.0)], &mut scores);
            assert!(scores.iter().all(|s| s.is_finite()), "{name}: {scores:?}");
        }
    }
}
