//! Placements: named pipeline configurations ("home", "item-page", "cart"), each choosing its
//! candidate sources with quotas and its re-ranking rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A candidate source of the first stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Nearest neighbours of the user's folded-in vector among the factor model's item vectors
    /// (`train.model` ALS or BPR; other models score every item).
    Embedding,
    /// Item-kNN around the user's recent items.
    ItemKnn,
    /// Items whose features (categories, tags, text, properties) match the user's recent items,
    /// including items nobody has interacted with yet.
    Content,
    /// Popular items in the categories of the user's recent items.
    CategoryPopular,
    Trending,
    /// Items nobody had interacted with at training time, and items first seen recently.
    NewItems,
    Popular,
}

impl Source {
    /// Every source, in the fixed order the ranker's features use.
    pub const ALL: [Source; 7] = [
        Source::Embedding,
        Source::ItemKnn,
        Source::Content,
        Source::CategoryPopular,
        Source::Trending,
        Source::NewItems,
        Source::Popular,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Source::Embedding => "embedding",
            Source::ItemKnn => "item-knn",
            Source::Content => "content",
            Source::CategoryPopular => "category-popular",
            Source::Trending => "trending",
            Source::NewItems => "new-items",
            Source::Popular => "popular",
        }
    }

    pub fn index(self) -> usize {
        Source::ALL.iter().position(|&s| s == self).unwrap_or(0)
    }

    /// Sources that need something the user did (or the request's context items).
    pub fn is_personal(self) -> bool {
        matches!(
            self,
            Source::Embedding | Source::ItemKnn | Source::Content | Source::CategoryPopular
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub source: Source,
    /// Most candidates this source contributes.
    pub quota: usize,
}

/// What personalises a placement's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Seeds {
    /// The user's recent events.
    User,
    /// Only the request's `context` items (the item on the page, the cart's contents).
    Context,
    /// Context items first, then the user's recent events.
    Both,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlacementConfig {
    pub retrievers: Vec<Quota>,
    pub seeds: Seeds,
    /// Order candidates with the learned ranker when one was trained; otherwise (or when false) by
    /// reciprocal-rank fusion of the retrievers' lists.
    pub use_ranker: bool,
    /// The ranker scores only this many candidates, the best by rank fusion (it costs a few
    /// microseconds per candidate); the rest follow in fusion order.
    pub ranker_candidates: usize,
    /// At most this many items sharing a first category in a list; 0 means no limit.
    pub max_per_category: usize,
    /// Maximal marginal relevance trade-off: 1 ranks by relevance alone, lower values trade
    /// relevance for items unlike those already placed.
    pub mmr_lambda: f32,
    /// Probability that a position goes to a new item (exploration, epsilon-greedy).
    pub exploration: f32,
    /// Items first seen this recently (or never interacted with) count as new.
    pub new_item_days: f64,
    /// Positions (the third onward) reserved for items nobody has interacted with yet whose
    /// features match the user's recent items; 0 disables.
    pub new_item_slots: usize,
    /// Calibrated recommendations (Steck 2018): each position goes to the candidate that
    /// maximises (1 − λ)·relevance − λ·KL(p ‖ q̃), with p the category mix of the user's history
    /// and q̃ that of the list with the candidate added (smoothed: 0.99·q + 0.01·p). 0 (the
    /// default) disables; 1 orders by calibration alone. See `rerank`.
    pub calibration_lambda: f32,
    /// Popularity-bias correction (smooth xQuAD, Abdollahpouri et al. 2019, with the short head
    /// and the long tail as two groups): each position goes to the candidate that maximises
    /// (1 − λ)·relevance + λ·P(g|u)·(1 − share of g in the list so far), g the candidate's group
    /// and P(g|u) the share of the user's history in it. 0 (the default) disables.
    pub popularity_lambda: f32,
    /// The short head is the most popular items that together receive this share of the
    /// training interactions; every other item is in the long tail. Used by
    /// `popularity_lambda`.
    pub short_head_share: f32,
}

impl Default for PlacementConfig {
    fn default() -> Self {
        PlacementConfig {
            retrievers: vec![
                Quota {
                    source: Source::Embedding,
                    quota: 200,
                },
                Quota {
                    source: Source::ItemKnn,
                    quota: 200,
                },
                Quota {
                    source: Source::Content,
                    quota: 100,
                },
                Quota {
                    source: Source::CategoryPopular,
                    quota: 100,
                },
                Quota {
                    source: Source::Trending,
                    quota: 50,
                },
                Quota {
                    source: Source::NewItems,
                    quota: 50,
                },
                Quota {
                    source: Source::Popular,
                    quota: 100,
                },
            ],
            seeds: Seeds::User,
            use_ranker: true,
            ranker_candidates: 150,
            max_per_category: 0,
            mmr_lambda: 1.0,
            exploration: 0.0,
            new_item_days: 14.0,
            new_item_slots: 1,
            calibration_lambda: 0.0,
            popularity_lambda: 0.0,
            short_head_share: 0.8,
        }
    }
}

impl PlacementConfig {
    pub fn validate(&self, name: &str) -> Result<(), String> {
        if self.retrievers.is_empty() {
            return Err(format!(
                "serve.placements.{name}.retrievers is empty; list at least one source"
            ));
        }
        if let Some(q) = self
            .retrievers
            .iter()
            .find(|q| q.quota == 0 || q.quota > 10_000)
        {
            return Err(format!(
                "serve.placements.{name}: quota of `{}` is {}; use 1 to 10000",
                q.source.name(),
                q.quota
            ));
        }
        if !(0.0..=1.0).contains(&self.mmr_lambda) {
            return Err(format!(
                "serve.placements.{name}.mmr_lambda must be between 0 and 1"
            ));
        }
        if !(0.0..=1.0).contains(&self.exploration) {
            return Err(format!(
                "serve.placements.{name}.exploration must be between 0 and 1"
            ));
        }
        for (key, value) in [
            ("calibration_lambda", self.calibration_lambda),
            ("popularity_lambda", self.popularity_lambda),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!(
                    "serve.placements.{name}.{key} must be between 0 and 1"
                ));
            }
        }
        if !(self.short_head_share > 0.0 && self.short_head_share < 1.0) {
            return Err(format!(
                "serve.placements.{name}.short_head_share must be above 0 and below 1"
            ));
        }
        if self.new_item_days.is_nan() || self.new_item_days < 0.0 {
            return Err(format!(
                "serve.placements.{name}.new_item_days must be at least 0"
            ));
        }
        Ok(())
    }
}

/// The placements every deployment starts with.
pub fn default_placements() -> BTreeMap<String, PlacementConfig> {
    let home = PlacementConfig {
        exploration: 0.05,
        max_per_category: 4,
        ..PlacementConfig::default()
    };
    let item_page = PlacementConfig {
        retrievers: vec![
            Quota {
                source: Source::ItemKnn,
                quota: 200,
            },
            Quota {
                source: Source::Embedding,
                quota: 100,
            },
            Quota {
                source: Source::Content,
                quota: 100,
            },
            Quota {
                source: Source::CategoryPopular,
                quota: 100,
            },
        ],
        seeds: Seeds::Context,
        ..PlacementConfig::default()
    };
    let cart = PlacementConfig {
        seeds: Seeds::Both,
        max_per_category: 3,
        ..PlacementConfig::default()
    };
    BTreeMap::from([
        ("home".to_string(), home),
        ("item-page".to_string(), item_page),
        ("cart".to_string(), cart),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fairness_knobs_are_off_by_default_and_validated() {
        for p in default_placements().values() {
            assert_eq!(p.calibration_lambda, 0.0);
            assert_eq!(p.popularity_lambda, 0.0);
        }
        let bad = |f: fn(&mut PlacementConfig)| {
            let mut p = PlacementConfig::default();
            f(&mut p);
            p.validate("home").unwrap_err()
        };
        assert!(bad(|p| p.calibration_lambda = 1.5).contains("calibration_lambda"));
        assert!(bad(|p| p.popularity_lambda = -0.1).contains("popularity_lambda"));
        assert!(bad(|p| p.short_head_share = 1.0).contains("short_head_share"));
        assert!(bad(|p| p.calibration_lambda = f32::NAN).contains("calibration_lambda"));
        let ok = PlacementConfig {
            calibration_lambda: 0.3,
            popularity_lambda: 1.0,
            ..PlacementConfig::default()
        };
        assert!(ok.validate("home").is_ok());
    }
}
