//! Request-time business rules: the filter and boost expressions, and pins.

use cairn_core::Item;
use cairn_expr::{parse_boost, parse_filter, Boost, Filter, UserContext};

use super::request::{RecommendRequest, Recommendation, RecommendationSource};
use crate::catalog::Catalog;
use crate::EngineError;

/// Most boosts and pins one request may carry.
pub const MAX_RULES: usize = 32;

pub struct RequestRules {
    pub filter: Option<Filter>,
    pub boosts: Vec<Boost>,
}

impl RequestRules {
    pub fn parse(req: &RecommendRequest) -> Result<RequestRules, EngineError> {
        let filter = match req.filter.as_deref() {
            Some(src) => Some(
                parse_filter(src).map_err(|e| EngineError::InvalidExpression {
                    field: "filter".into(),
                    message: e.to_string(),
                })?,
            ),
            None => None,
        };
        if req.boosts.len() > MAX_RULES || req.pins.len() > MAX_RULES {
            return Err(EngineError::invalid(
                "boost",
                format!("at most {MAX_RULES} boosts and {MAX_RULES} pins per request"),
            ));
        }
        let boosts = req
            .boosts
            .iter()
            .enumerate()
            .map(|(i, (when, factor))| {
                parse_boost(when, *factor).map_err(|e| EngineError::InvalidExpression {
                    field: format!("boost[{i}]"),
                    message: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for (i, (id, position)) in req.pins.iter().enumerate() {
            cairn_core::validate::check_id(&format!("pin[{i}].item"), id)?;
            if *position == 0 || *position > req.k {
                return Err(EngineError::invalid(
                    format!("pin[{i}].position"),
                    format!(
                        "{position} is outside the first page; use 1 to k ({})",
                        req.k
                    ),
                ));
            }
        }
        Ok(RequestRules { filter, boosts })
    }

    /// Whether an expression names `user.categories` (which needs the history's categories).
    pub fn uses_user_categories(&self) -> bool {
        self.filter
            .iter()
            .chain(self.boosts.iter().map(|b| &b.when))
            .any(|f| f.uses().user_categories)
    }

    /// Product of the factors of the boosts the item matches.
    pub fn boost(&self, item: Option<&Item>, user: &UserContext) -> f32 {
        let Some(item) = item else { return 1.0 };
        self.boosts
            .iter()
            .filter(|b| b.when.matches(item, user))
            .map(|b| b.factor)
            .product()
    }
}

/// Puts pinned items at their positions (1-based) of the list; a pinned item that is unknown,
/// hidden or unavailable is skipped, since pins are business rules, not a way around them.
pub fn apply_pins(
    catalog: &Catalog,
    now: i64,
    pins: &[(String, usize)],
    list: &mut Vec<Recommendation>,
) {
    let mut pins: Vec<&(String, usize)> = pins.iter().collect();
    pins.sort_by_key(|p| p.1);
    for (id, position) in pins {
        if !catalog.get(id).is_some_and(|i| i.is_recommendable(now)) {
            continue;
        }
        list.retain(|r| &r.item_id != id);
        let at = (position - 1).min(list.len());
        list.insert(
            at,
            Recommendation {
                item_id: id.clone(),
                score: 0.0,
                source: RecommendationSource::Pinned,
                reason: "featured".into(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::recommend::fixture::{self, NOW};

    fn rec(id: &str) -> Recommendation {
        Recommendation {
            item_id: id.into(),
            score: 0.5,
            source: RecommendationSource::Popular,
            reason: "popular".into(),
        }
    }

    #[test]
    fn pins_take_their_positions_unless_the_item_may_not_be_listed() {
        let m = Arc::new(fixture::models());
        let catalog = fixture::catalog(&m);
        let mut list: Vec<Recommendation> = ["j0", "j1", "j2"].iter().map(|id| rec(id)).collect();
        let pins = [
            ("r1".to_string(), 9),
            ("j2".to_string(), 1),
            ("h0".to_string(), 2),
            ("unknown".to_string(), 2),
        ];
        apply_pins(&catalog, NOW, &pins, &mut list);
        let got: Vec<(&str, RecommendationSource)> = list
            .iter()
            .map(|r| (r.item_id.as_str(), r.source))
            .collect();
        // j2 moves to the top; r1's position is past the end, so it goes last; the hidden and the
        // unknown item are skipped.
        assert_eq!(
            got,
            [
                ("j2", RecommendationSource::Pinned),
                ("j0", RecommendationSource::Popular),
                ("j1", RecommendationSource::Popular),
                ("r1", RecommendationSource::Pinned),
            ]
        );
        assert!(list
            .iter()
            .filter(|r| r.source == RecommendationSource::Pinned)
            .all(|r| r.score == 0.0 && r.reason == "featured"));
    }
}
