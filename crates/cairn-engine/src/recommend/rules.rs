//! Request-time business rules: the filter and boost expressions, and pins; and the checks of
//! the names a request uses against the catalog (an unknown category or property is an error, an
//! unknown context item or a pin that cannot be placed a [`Warning`]).

use cairn_core::Item;
use cairn_expr::{parse_boost, parse_filter, Boost, Filter, UserContext};

use super::lists::may_list;
use super::request::{
    RecommendRequest, Recommendation, RecommendationSource, Warning, WarningCode,
};
use crate::catalog::{Catalog, KnownNames};
use crate::error::NameKind;
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

    /// Fails with `unknown_property` when an expression reads an item property that no catalog
    /// item has: a misspelt name would otherwise match nothing (a filter) or never apply (a
    /// boost) without a word.
    pub fn check_properties(&self, properties: &KnownNames) -> Result<(), EngineError> {
        let expressions = self.filter.iter().map(|f| ("filter".to_string(), f)).chain(
            self.boosts
                .iter()
                .enumerate()
                .map(|(i, b)| (format!("boost[{i}]"), &b.when)),
        );
        for (field, expression) in expressions {
            if let Some(name) = expression
                .item_properties()
                .into_iter()
                .find(|p| !properties.contains(p))
            {
                return Err(unknown_name(NameKind::Property, field, name, properties));
            }
        }
        Ok(())
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

/// The error for a `name` of `kind` that no catalog item has, suggesting the nearest of `known`.
fn unknown_name(kind: NameKind, field: String, name: &str, known: &KnownNames) -> EngineError {
    let what = match kind {
        NameKind::Category => "category",
        NameKind::Property => "property",
    };
    let hint = match known.closest(name).as_slice() {
        [] => format!(
            "names are case-sensitive; check the spelling, or write items with this {what} first"
        ),
        [one] => format!("did you mean `{one}`?"),
        [init @ .., last] => format!(
            "did you mean {} or `{last}`?",
            init.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    EngineError::UnknownName {
        kind,
        field,
        message: format!("no catalog item has the {what} `{name}`; {hint}"),
    }
}

/// Fails with `unknown_category` when no catalog item has the requested category (hidden and
/// unavailable items count: their category exists, it is only empty for now).
pub fn check_category(catalog: &Catalog, category: Option<&str>) -> Result<(), EngineError> {
    match category {
        Some(c) if !catalog.categories().contains(c) => Err(unknown_name(
            NameKind::Category,
            "category".into(),
            c,
            catalog.categories(),
        )),
        _ => Ok(()),
    }
}

/// A `category_unavailable` warning when a list asked for `category` but has none of its items
/// (`listed` is whether it does) because none may be listed now. The catalog is read only for
/// lists without an item of the category, and then until the first item that may be listed.
pub fn category_warning(
    catalog: &Catalog,
    now: i64,
    category: Option<&str>,
    listed: bool,
) -> Option<Warning> {
    let c = category?;
    if listed || catalog.iter().any(|item| may_list(item, now, Some(c))) {
        return None;
    }
    Some(Warning::new(
        WarningCode::CategoryUnavailable,
        format!(
            "category `{c}`: no item of it can be listed now (every one is hidden or outside its \
             availability window)"
        ),
    ))
}

/// An `unknown_context_item` warning for each context item (each id once) the catalog does not
/// have: it cannot personalise the list.
pub fn context_warnings(catalog: &Catalog, context_items: &[String]) -> Vec<Warning> {
    let mut warned: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for (i, id) in context_items.iter().enumerate() {
        if catalog.contains(id) || warned.contains(&id.as_str()) {
            continue;
        }
        warned.push(id);
        out.push(Warning::new(
            WarningCode::UnknownContextItem,
            format!(
                "context[{i}]: item `{id}` is not in the catalog (not written yet, or deleted)"
            ),
        ));
    }
    out
}

/// Puts pinned items at their positions (1-based) of the list; a pinned item that is unknown,
/// hidden or unavailable is skipped, since pins are business rules, not a way around them, and
/// the returned warnings name each skipped pin.
pub fn apply_pins(
    catalog: &Catalog,
    now: i64,
    pins: &[(String, usize)],
    list: &mut Vec<Recommendation>,
) -> Vec<Warning> {
    let mut warnings = Vec::new();
    let mut pins: Vec<(usize, &(String, usize))> = pins.iter().enumerate().collect();
    pins.sort_by_key(|p| p.1 .1);
    for (i, (id, position)) in pins {
        let skipped = match catalog.get(id) {
            None => Some((WarningCode::UnknownPinnedItem, "is not in the catalog")),
            Some(item) if !item.is_recommendable(now) => Some((
                WarningCode::UnavailablePinnedItem,
                "is hidden or outside its availability window",
            )),
            Some(_) => None,
        };
        if let Some((code, why)) = skipped {
            let message = format!("pin[{i}]: item `{id}` {why}; it was not placed");
            warnings.push((i, Warning::new(code, message)));
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
    // In the request's order of pins, not of positions.
    warnings.sort_by_key(|w| w.0);
    warnings.into_iter().map(|w| w.1).collect()
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
        let warnings = apply_pins(&catalog, NOW, &pins, &mut list);
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
        // Each skipped pin is named, in the request's order.
        assert_eq!(
            warnings,
            [
                Warning::new(
                    WarningCode::UnavailablePinnedItem,
                    "pin[2]: item `h0` is hidden or outside its availability window; it was not \
                     placed"
                ),
                Warning::new(
                    WarningCode::UnknownPinnedItem,
                    "pin[3]: item `unknown` is not in the catalog; it was not placed"
                ),
            ]
        );
        let mut list = vec![rec("j0")];
        assert!(apply_pins(&catalog, NOW, &[("j1".into(), 1)], &mut list).is_empty());
    }

    fn rules(filter: Option<&str>, boosts: &[&str]) -> RequestRules {
        RequestRules::parse(&RecommendRequest {
            k: 5,
            filter: filter.map(String::from),
            boosts: boosts.iter().map(|b| (b.to_string(), 2.0)).collect(),
            ..RecommendRequest::default()
        })
        .unwrap()
    }

    /// The world's catalog plus an item with the properties `price` and `format`.
    fn catalog_with_properties(m: &Arc<cairn_pipeline::ModelSet>) -> Catalog {
        let mut catalog = fixture::catalog(m);
        let mut item = Item::new("p0");
        for name in ["price", "format"] {
            item.properties
                .insert(name.into(), cairn_core::PropertyValue::Number(1.0));
        }
        catalog.upsert(item);
        catalog
    }

    #[test]
    fn an_expression_reading_a_property_no_item_has_is_an_error_naming_it() {
        let m = Arc::new(fixture::models());
        let catalog = catalog_with_properties(&m);
        let known = catalog.properties();
        rules(
            Some(r#"price < 20 and title contains "x" and category == "jazz""#),
            &["format == 'LP'", "user.vip and not seen"],
        )
        .check_properties(known)
        .unwrap();

        let err = rules(Some("prce < 20"), &[])
            .check_properties(known)
            .unwrap_err();
        assert_eq!(err.code(), "unknown_property");
        assert_eq!(
            err.to_string(),
            "filter: no catalog item has the property `prce`; did you mean `price`?"
        );
        let err = rules(Some("price < 20"), &["format == 'LP'", "colour == 'red'"])
            .check_properties(known)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "boost[1]: no catalog item has the property `colour`; names are case-sensitive; \
             check the spelling, or write items with this property first"
        );
        // `exists` names the property too.
        let err = rules(None, &["exists(Format)"])
            .check_properties(known)
            .unwrap_err();
        assert!(
            matches!(&err, EngineError::UnknownName { kind: NameKind::Property, field, .. } if field == "boost[0]"),
            "{err:?}"
        );
        assert!(err.to_string().ends_with("did you mean `format`?"), "{err}");
    }

    #[test]
    fn a_category_no_item_has_is_an_error_with_the_nearest_categories() {
        let m = Arc::new(fixture::models());
        let catalog = fixture::catalog(&m);
        check_category(&catalog, None).unwrap();
        check_category(&catalog, Some("jazz")).unwrap();
        // h0, the only hidden item, is rock: a hidden item's category is known all the same.
        check_category(&catalog, Some("rock")).unwrap();
        let err = check_category(&catalog, Some("Jaz")).unwrap_err();
        assert_eq!(err.code(), "unknown_category");
        assert_eq!(
            err.to_string(),
            "category: no catalog item has the category `Jaz`; did you mean `jazz`?"
        );
        let err = check_category(&catalog, Some("classical")).unwrap_err();
        assert!(err.to_string().contains("check the spelling"), "{err}");
    }

    #[test]
    fn a_known_category_without_listable_items_is_a_warning() {
        let m = Arc::new(fixture::models());
        let mut catalog = fixture::catalog(&m);
        let mut hidden = Item::new("f0");
        hidden.categories = vec!["folk".into()];
        hidden.hidden = true;
        catalog.upsert(hidden);
        let mut over = Item::new("f1");
        over.categories = vec!["folk".into()];
        over.available_until = Some(cairn_core::Timestamp(NOW - 1));
        catalog.upsert(over);

        let warning = category_warning(&catalog, NOW, Some("folk"), false).unwrap();
        assert_eq!(warning.code, WarningCode::CategoryUnavailable);
        assert!(
            warning.message.starts_with("category `folk`: "),
            "{warning:?}"
        );
        // A list with an item of the category, no category, or a category with an item that may
        // be listed (though this list has none of them): nothing to warn about.
        assert_eq!(category_warning(&catalog, NOW, Some("folk"), true), None);
        assert_eq!(category_warning(&catalog, NOW, None, false), None);
        assert_eq!(category_warning(&catalog, NOW, Some("rock"), false), None);
        // Within its window, f1 may be listed.
        assert_eq!(
            category_warning(&catalog, NOW - 10, Some("folk"), false),
            None
        );
    }

    #[test]
    fn a_personal_list_reports_wrong_names_as_errors_and_suspicious_ones_as_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let engine = fixture::engine(dir.path(), Arc::new(fixture::models()));
        let req = |edit: &dyn Fn(&mut RecommendRequest)| {
            let mut req = RecommendRequest {
                user_id: "u0".into(),
                k: 2,
                ..RecommendRequest::default()
            };
            edit(&mut req);
            engine.recommend(&req)
        };
        let codes = |r: &crate::Recommendations| -> Vec<WarningCode> {
            r.warnings.iter().map(|w| w.code).collect()
        };

        let plain = req(&|_| {}).unwrap();
        assert!(plain.warnings.is_empty() && plain.items.len() == 2);
        let err = req(&|r| r.category = Some("Rock".into())).unwrap_err();
        assert_eq!(err.code(), "unknown_category");
        let err = req(&|r| r.filter = Some("price < 3".into())).unwrap_err();
        assert_eq!(err.code(), "unknown_property");
        assert!(err.to_string().starts_with("filter: "), "{err}");
        let err =
            req(&|r| r.boosts = vec![("title contains 'x'".into(), 2.0), ("year > 1".into(), 2.0)])
                .unwrap_err();
        assert!(err.to_string().starts_with("boost[1]: "), "{err}");

        let warned = req(&|r| {
            r.context_items = vec!["j1".into(), "not-synced".into()];
            r.pins = vec![("h0".into(), 1), ("gone".into(), 2), ("j2".into(), 2)];
        })
        .unwrap();
        assert_eq!(
            codes(&warned),
            [
                WarningCode::UnknownContextItem,
                WarningCode::UnavailablePinnedItem,
                WarningCode::UnknownPinnedItem
            ]
        );
        assert_eq!(
            warned.items[1].item_id, "j2",
            "the pin that could be placed is"
        );
        // Later pages carry no warnings: the first page had them.
        let next = engine
            .recommend(&RecommendRequest {
                user_id: "u0".into(),
                k: 2,
                cursor: warned.next_cursor.clone(),
                ..RecommendRequest::default()
            })
            .unwrap();
        assert!(!next.items.is_empty() && next.warnings.is_empty());

        // Rock's only hidden item is h0; once the other rock items are hidden too, the category
        // is known but nothing of it can be listed.
        let hidden: Vec<Item> = fixture::items()
            .into_iter()
            .filter(|i| i.in_category("rock"))
            .map(|mut i| {
                i.hidden = true;
                i
            })
            .collect();
        engine.put_items(hidden).unwrap();
        let rock = req(&|r| r.category = Some("rock".into())).unwrap();
        assert!(rock.items.is_empty());
        assert_eq!(codes(&rock), [WarningCode::CategoryUnavailable]);
        for list in [
            engine.popular(5, Some("rock")).unwrap(),
            engine.trending(5, Some("rock")).unwrap(),
            engine.similar_items("j0", 5, Some("rock")).unwrap(),
        ] {
            assert!(list.items.is_empty());
            assert_eq!(codes(&list), [WarningCode::CategoryUnavailable]);
        }
        assert_eq!(
            engine.popular(5, Some("Jazz")).unwrap_err().code(),
            "unknown_category"
        );
        assert!(engine.popular(5, Some("jazz")).unwrap().warnings.is_empty());
    }

    #[test]
    fn each_unknown_context_item_is_a_warning_once() {
        let m = Arc::new(fixture::models());
        let catalog = fixture::catalog(&m);
        let context: Vec<String> = ["j0", "new", "h0", "new", "other"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let warnings = context_warnings(&catalog, &context);
        assert_eq!(
            warnings,
            [
                Warning::new(
                    WarningCode::UnknownContextItem,
                    "context[1]: item `new` is not in the catalog (not written yet, or deleted)"
                ),
                Warning::new(
                    WarningCode::UnknownContextItem,
                    "context[4]: item `other` is not in the catalog (not written yet, or deleted)"
                ),
            ]
        );
    }
}
