//! What a caller asks for and what it gets back. Both the serving code and the request rules read
//! these types, so they live here, apart from either, and import neither.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Engine, EngineError};
use cairn_pipeline::ModelSet;
use cairn_pipeline::Source;

#[derive(Debug, Clone, Default)]
pub struct RecommendRequest {
    pub user_id: String,
    pub k: usize,
    /// Leave out items the user already interacted with.
    pub exclude_seen: bool,
    /// Only items in this category.
    pub category: Option<String>,
    /// Pipeline configuration to use; `serve.default_placement` when absent.
    pub placement: Option<String>,
    /// Items on the page (the item being viewed, the cart's contents) that personalise placements
    /// whose seeds include the context.
    pub context_items: Vec<String>,
    /// A filter expression every returned item satisfies (see docs/FILTERS.md).
    pub filter: Option<String>,
    /// (expression, factor): items matching the expression get their relevance multiplied.
    pub boosts: Vec<(String, f32)>,
    /// (item id, 1-based position): items shown at fixed positions of the first page.
    pub pins: Vec<(String, usize)>,
    /// A `next_cursor` of an earlier response: the next page of that list.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    pub item_id: String,
    pub score: f32,
    /// Which stage put the item here.
    pub source: RecommendationSource,
    /// A short human-readable explanation.
    pub reason: String,
}

/// Where a recommended item came from. Clients read these names (the API shows them as they are
/// serialized here), so a variant's name is part of the API: the retrievers keep the names of
/// [`Source`], which placements are configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecommendationSource {
    /// The retrievers of the pipeline ([`Source`]); `ItemKnn` also heads similar-item lists, and
    /// `Popular` and `Trending` make the popular and trending lists, the top-up of similar-item
    /// lists and the fill of a personal list whose candidates ran dry.
    Embedding,
    ItemKnn,
    Content,
    CategoryPopular,
    Trending,
    NewItems,
    Popular,
    /// Placed by the pipeline's exploration rather than by its score.
    Exploration,
    /// Put at a fixed position by a request's pin.
    Pinned,
}

impl RecommendationSource {
    /// Every source, for whoever lists the possible values (the API's schema).
    pub const ALL: [RecommendationSource; 9] = [
        RecommendationSource::Embedding,
        RecommendationSource::ItemKnn,
        RecommendationSource::Content,
        RecommendationSource::CategoryPopular,
        RecommendationSource::Trending,
        RecommendationSource::NewItems,
        RecommendationSource::Popular,
        RecommendationSource::Exploration,
        RecommendationSource::Pinned,
    ];

    /// The name clients see (the serialized form).
    pub fn name(self) -> &'static str {
        match self {
            RecommendationSource::Embedding => "embedding",
            RecommendationSource::ItemKnn => "item-knn",
            RecommendationSource::Content => "content",
            RecommendationSource::CategoryPopular => "category-popular",
            RecommendationSource::Trending => "trending",
            RecommendationSource::NewItems => "new-items",
            RecommendationSource::Popular => "popular",
            RecommendationSource::Exploration => "exploration",
            RecommendationSource::Pinned => "pinned",
        }
    }
}

impl From<Source> for RecommendationSource {
    fn from(s: Source) -> Self {
        match s {
            Source::Embedding => RecommendationSource::Embedding,
            Source::ItemKnn => RecommendationSource::ItemKnn,
            Source::Content => RecommendationSource::Content,
            Source::CategoryPopular => RecommendationSource::CategoryPopular,
            Source::Trending => RecommendationSource::Trending,
            Source::NewItems => RecommendationSource::NewItems,
            Source::Popular => RecommendationSource::Popular,
        }
    }
}

/// Compares with a name as clients see it, so that a check reads like the API (`"pinned"`).
impl PartialEq<&str> for RecommendationSource {
    fn eq(&self, name: &&str) -> bool {
        self.name() == *name
    }
}

#[derive(Debug, Clone)]
pub struct Recommendations {
    /// Unique per list (shared by its pages); clients send it back with events for attribution.
    pub recommendation_id: String,
    pub model_version: Option<String>,
    pub items: Vec<Recommendation>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// What looked wrong in the request without making it wrong (an unknown context item, a pin
    /// that was not placed); empty when nothing did. Only the first page of a list carries them.
    pub warnings: Vec<Warning>,
    /// The experiment and variant that served the list (first page only), if any.
    pub experiment: Option<crate::ExperimentTag>,
}

/// Something suspicious about a request that was answered anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub code: WarningCode,
    /// What was noticed and what the engine did about it, naming the offending value.
    pub message: String,
}

impl Warning {
    pub fn new(code: WarningCode, message: impl Into<String>) -> Warning {
        Warning {
            code,
            message: message.into(),
        }
    }
}

/// The kinds of [`Warning`]. Clients branch on these names (the serialized form), so a variant's
/// name is part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningCode {
    /// A context item the catalog does not have: it neither personalises nor is left out of the
    /// list (a page may show an item before it is synced).
    UnknownContextItem,
    /// A pinned item the catalog does not have: not placed.
    UnknownPinnedItem,
    /// A pinned item that is hidden or outside its availability window: not placed.
    UnavailablePinnedItem,
    /// The requested category is known, but none of its items may be listed now (all hidden or
    /// outside their availability window), so the list has none of them.
    CategoryUnavailable,
}

impl WarningCode {
    /// Every code, for whoever lists the possible values (the API's schema).
    pub const ALL: [WarningCode; 4] = [
        WarningCode::UnknownContextItem,
        WarningCode::UnknownPinnedItem,
        WarningCode::UnavailablePinnedItem,
        WarningCode::CategoryUnavailable,
    ];

    /// The name clients see (the serialized form).
    pub fn name(self) -> &'static str {
        match self {
            WarningCode::UnknownContextItem => "unknown_context_item",
            WarningCode::UnknownPinnedItem => "unknown_pinned_item",
            WarningCode::UnavailablePinnedItem => "unavailable_pinned_item",
            WarningCode::CategoryUnavailable => "category_unavailable",
        }
    }
}

impl Engine {
    pub(super) fn check_k(&self, k: usize) -> Result<(), EngineError> {
        let max = self.config.serve.max_k;
        if k == 0 || k > max {
            return Err(EngineError::invalid(
                "k",
                format!("{k} is out of range; use 1 to {max}"),
            ));
        }
        Ok(())
    }

    pub(super) fn respond(
        &self,
        models: Option<&ModelSet>,
        items: Vec<Recommendation>,
        warnings: Vec<Warning>,
    ) -> Recommendations {
        Recommendations {
            recommendation_id: Uuid::new_v4().to_string(),
            model_version: models.map(|m| m.version.clone()),
            items,
            next_cursor: None,
            warnings,
            experiment: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_serializes_as_its_api_name() {
        for s in RecommendationSource::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.name()));
            let back: RecommendationSource = serde_json::from_str(&json).unwrap();
            assert_eq!(back, s);
            assert!(s == s.name());
        }
        let names: Vec<&str> = RecommendationSource::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "embedding",
                "item-knn",
                "content",
                "category-popular",
                "trending",
                "new-items",
                "popular",
                "exploration",
                "pinned"
            ]
        );
    }

    #[test]
    fn every_warning_code_serializes_as_its_api_name() {
        for c in WarningCode::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.name()));
            let back: WarningCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, c);
        }
    }

    #[test]
    fn a_retriever_keeps_the_name_placements_configure_it_by() {
        for s in Source::ALL {
            assert_eq!(RecommendationSource::from(s).name(), s.name());
        }
    }

    #[test]
    fn the_old_spelling_of_popular_is_not_a_source() {
        assert!(serde_json::from_str::<RecommendationSource>("\"popularity\"").is_err());
        assert!(RecommendationSource::Popular != "popularity");
    }
}
