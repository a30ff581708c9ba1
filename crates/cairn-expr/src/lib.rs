//! Cairn's request-time filter and boost language. A recommendation request may carry a filter such as
//! `category in ["jazz", "blues"] and price < 20` and boosts such as `{"when": "new_release",
//! "factor": 1.2}`. The engine parses each expression once per request ([`parse_filter`],
//! [`parse_boost`]) and evaluates it for every candidate item ([`Filter::matches`]); parsing resolves
//! every field name, so evaluation is a walk over a small tree that allocates nothing.
//!
//! The user guide with more examples is `docs/FILTERS.md`; this is the reference.
//!
//! # Grammar
//!
//! ```text
//! expr       = or
//! or         = and { "or" and }
//! and        = unary { "and" unary }
//! unary      = "not" unary | comparison
//! comparison = term [ op term ]          (a term alone is a condition: see truthiness)
//! op         = "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in" | "contains"
//! term       = number | string | "true" | "false" | list | field
//!            | "exists" "(" field ")" | "(" expr ")"
//! list       = "[" [ literal { "," literal } [ "," ] ] "]"      (one element type; no nesting)
//! field      = name { "." name | "[" string "]" }
//! number     = -?digits(.digits)?(e[+-]?digits)?
//! string     = "..." or '...' with escapes \\ \" \' \n \t \r \u{hex}
//! name       = [A-Za-z_][A-Za-z0-9_]*
//! ```
//!
//! Keywords (`and or not in contains true false exists`) are lowercase; `AND` is an error that says so.
//! `and` binds tighter than `or`, `not` tighter than `and`; comparisons do not chain (`a < b < c` is an
//! error). Source is limited to [`MAX_SOURCE_BYTES`] bytes and parentheses plus `not` to [`MAX_DEPTH`]
//! levels, so no request can exhaust the stack.
//!
//! # Fields
//!
//! | written as | value |
//! |---|---|
//! | `id` | the item id (string) |
//! | `category`, `categories` | the item's categories (list of strings) |
//! | `tags` | the item's tags (list of strings) |
//! | `title`, `description` | text, missing when the item has none |
//! | `available_from`, `available_until` | unix seconds, missing when unset |
//! | any other name, `item.name`, `item["odd name"]` | the item property of that name |
//! | `item.properties.name`, `item.properties["title"]` | always the property, even when a built-in field has the name |
//! | `user.name`, `user["odd name"]`, `user.properties.name` | the user's property |
//! | `user.categories` | categories of the items the user interacted with (set of strings) |
//! | `seen` | whether the user interacted with this item (bool) |
//!
//! `item.name` and a bare `name` are the same field, except that bare `seen` is the history flag and
//! `item.seen` the property. `item["x"]` is the same as `item.x`.
//!
//! # Semantics
//!
//! * **Missing fields.** A field is missing when the item (or user) has no value for it: an absent
//!   property, an absent title, an empty category, tag or list-property list. Every comparison with a
//!   missing side is **false**, `!=` and `not in` included. `not (price < 20)` is true for an item
//!   without a price; `price >= 20` is not. `exists(f)` tests presence.
//! * **Lists.** A list-valued side compares element by element and holds if **any** element does:
//!   `category == "jazz"` is true when jazz is one of the categories; `category in ["jazz", "blues"]`
//!   when any category is in the list; `tags > "m"` when any tag sorts after "m". `x != y` and
//!   `x not in y` are the negations of `==` and `in` for present values: no element matches.
//! * **`in`** takes a list literal or a field on its right; a field holding a single value acts as a
//!   one-element list, so `category in user.favourite_genres` works with either shape.
//! * **`contains`**: a list field contains an element equal to the right side; a string contains the
//!   right side as a substring (case-sensitive). Anything else is false.
//! * **Types.** Equality between values of different types is false (`"5" == 5` is never true).
//!   Ordering (`< <= > >=`) holds between two numbers or two strings (byte order); anything else is
//!   false. When both types are known at parse time (literals, fixed-type fields such as `id`) a
//!   mismatch is a parse error instead.
//! * **Truthiness.** A value in boolean position is true when it is `true`, a non-zero number, a
//!   non-empty string or a non-empty list; false when missing. So the boost `new_release` works for a
//!   boolean property, and `title` tests for a non-empty title.
//! * `not e` is exactly the complement of `e`.
//!
//! # Example
//!
//! ```
//! use cairn_core::{Item, PropertyValue};
//! use cairn_expr::{parse_boost, parse_filter, UserContext};
//!
//! let filter = parse_filter(r#"category in ["jazz","blues"] and price < 20"#).unwrap();
//! let mut item = Item::new("kind-of-blue");
//! item.categories = vec!["jazz".into()];
//! item.properties.insert("price".into(), PropertyValue::Number(12.0));
//! assert!(filter.matches(&item, &UserContext::anonymous()));
//!
//! let boost = parse_boost("new_release", 1.2).unwrap();
//! assert_eq!(boost.factor_for(&item, &UserContext::anonymous()), 1.0);
//!
//! let err = parse_filter("price < ").unwrap_err();
//! assert_eq!(err.to_string(), r#"at 8: expected a value after "<", found end of input"#);
//! ```

mod ast;
mod error;
mod eval;
mod lexer;
mod parser;
mod types;

#[cfg(test)]
mod tests;

use cairn_core::Item;

pub use ast::Uses;
pub use error::{ErrorKind, ExprError};
pub use eval::UserContext;
pub use parser::{MAX_DEPTH, MAX_SOURCE_BYTES};

/// A compiled filter expression. Cheap to evaluate, `Send + Sync`, immutable.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter(Compiled);

#[derive(Debug, Clone, PartialEq)]
struct Compiled {
    root: ast::Node,
    source: Box<str>,
    uses: Uses,
}

/// Parses and compiles a filter expression. See the crate docs for the language.
pub fn parse_filter(src: &str) -> Result<Filter, ExprError> {
    let root = parser::parse(src)?;
    let uses = Uses::of(&root);
    Ok(Filter(Compiled {
        root,
        source: src.into(),
        uses,
    }))
}

impl Filter {
    /// Whether `item` passes the filter for this user.
    #[inline]
    pub fn matches(&self, item: &Item, user: &UserContext<'_>) -> bool {
        eval::matches(&self.0.root, item, user)
    }

    /// The expression as the client wrote it, for logs and echoing back.
    pub fn source(&self) -> &str {
        &self.0.source
    }

    /// Which parts of the [`UserContext`] the filter reads, so the engine can skip filling the rest.
    pub fn uses(&self) -> Uses {
        self.0.uses
    }

    /// The item properties the filter reads (`price`, `item["odd name"]`,
    /// `item.properties.title`; not built-in fields such as `title`), each once, in the order
    /// they first appear: what a caller checks against the properties items have, to catch a
    /// misspelt name that would otherwise silently match nothing.
    pub fn item_properties(&self) -> Vec<&str> {
        ast::item_properties(&self.0.root)
    }
}

impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.source())
    }
}

impl std::str::FromStr for Filter {
    type Err = ExprError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_filter(s)
    }
}

/// Multiply an item's score by `factor` when it matches `when`.
#[derive(Debug, Clone, PartialEq)]
pub struct Boost {
    pub when: Filter,
    pub factor: f32,
}

/// Parses a boost: its condition, and a factor that must be finite and above zero (below 1 demotes).
pub fn parse_boost(when: &str, factor: f32) -> Result<Boost, ExprError> {
    if !factor.is_finite() || factor <= 0.0 {
        return Err(ExprError::new(
            ErrorKind::InvalidFactor,
            0,
            format!(
                "a boost factor must be a finite number above 0 (below 1 demotes), not {factor}"
            ),
        ));
    }
    Ok(Boost {
        when: parse_filter(when)?,
        factor,
    })
}

impl Boost {
    /// `factor` when the item matches, else 1: the multiplier to apply to its score.
    #[inline]
    pub fn factor_for(&self, item: &Item, user: &UserContext<'_>) -> f32 {
        if self.when.matches(item, user) {
            self.factor
        } else {
            1.0
        }
    }
}

/// The product of the factors of all boosts that match `item`.
pub fn combined_factor(boosts: &[Boost], item: &Item, user: &UserContext<'_>) -> f32 {
    boosts.iter().map(|b| b.factor_for(item, user)).product()
}
