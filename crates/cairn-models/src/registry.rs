//! Models by name, with their hyperparameters, so that the evaluation harness, the tuner and the engine
//! can fit any model from a configuration value.

use cairn_core::InteractionMatrix;
use serde::{Deserialize, Serialize};

use crate::{ItemKnn, ItemKnnConfig, Popularity, Recommender};

/// A model and its hyperparameters. Serialized as `{"model": "item-knn", ...params}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "kebab-case")]
pub enum ModelSpec {
    /// Number of users per item.
    Popularity,
    ItemKnn(ItemKnnConfig),
}

impl ModelSpec {
    pub fn name(&self) -> &'static str {
        match self {
            ModelSpec::Popularity => "popularity",
            ModelSpec::ItemKnn(_) => "item-knn",
        }
    }

    /// The spec with default hyperparameters for a model name, if the name is known.
    pub fn default_for(name: &str) -> Option<ModelSpec> {
        Some(match name {
            "popularity" | "pop" => ModelSpec::Popularity,
            "item-knn" | "knn" => ModelSpec::ItemKnn(ItemKnnConfig::default()),
            _ => return None,
        })
    }

    pub fn known_names() -> &'static [&'static str] {
        &["popularity", "item-knn"]
    }

    /// Fits the model on the interactions.
    pub fn fit(&self, data: &InteractionMatrix) -> Box<dyn Recommender> {
        match self {
            ModelSpec::Popularity => Box::new(Popularity::from_matrix(&data.user_items)),
            ModelSpec::ItemKnn(c) => Box::new(ItemKnn::fit(&data.user_items, *c)),
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
}
