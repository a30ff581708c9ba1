//! Typed properties of items and users: string, number, bool, or a list of those.

use serde::{Deserialize, Serialize};

/// One scalar property value. Numbers are f64 and must be finite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Number(f64),
    String(String),
}

/// A property value: a scalar, or a list of scalars (e.g. `["red", "blue"]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum PropertyValue {
    Bool(bool),
    Number(f64),
    String(String),
    List(Vec<Scalar>),
}

impl PropertyValue {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            PropertyValue::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            PropertyValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            PropertyValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Why this value cannot be stored, if it cannot.
    pub fn problem(&self) -> Option<String> {
        fn number_problem(n: f64) -> Option<String> {
            (!n.is_finite() || n.abs() > 1e15)
                .then(|| format!("number {n} must be finite and at most 1e15 in magnitude"))
        }
        fn string_problem(s: &str) -> Option<String> {
            (s.len() > 10_000).then(|| format!("string of {} bytes is longer than 10000", s.len()))
        }
        match self {
            PropertyValue::Number(n) => number_problem(*n),
            PropertyValue::String(s) => string_problem(s),
            PropertyValue::Bool(_) => None,
            PropertyValue::List(items) => {
                if items.len() > 1000 {
                    return Some(format!(
                        "list of {} values is longer than 1000",
                        items.len()
                    ));
                }
                items.iter().find_map(|v| match v {
                    Scalar::Number(n) => number_problem(*n),
                    Scalar::String(s) => string_problem(s),
                    Scalar::Bool(_) => None,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untagged_json_picks_the_natural_type() {
        let v: PropertyValue = serde_json::from_str("12.5").unwrap();
        assert_eq!(v.as_f64(), Some(12.5));
        let v: PropertyValue = serde_json::from_str("\"red\"").unwrap();
        assert_eq!(v.as_str(), Some("red"));
        let v: PropertyValue = serde_json::from_str("[\"a\", 1, true]").unwrap();
        assert!(matches!(v, PropertyValue::List(ref l) if l.len() == 3));
        assert!(serde_json::from_str::<PropertyValue>("{\"x\":1}").is_err());
    }

    #[test]
    fn huge_numbers_are_a_problem() {
        assert!(PropertyValue::Number(1e300).problem().is_some());
        assert!(PropertyValue::Number(42.0).problem().is_none());
    }
}
