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
