//! Event types: what each kind of event means to the models. A deployment configures them; the defaults
//! cover a shop or a media site (view, click, add-to-cart, purchase, like, dislike, rating).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::validate::ValidationError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Implicit positive feedback (a view, a purchase): strength is the type's weight.
    Implicit,
    /// Explicit rating in `value`: positive above the threshold, negative at or below the negative one.
    Rating,
    /// Explicit negative feedback (dislike, skip, return).
    Negative,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EventTypeConfig {
    pub kind: EventKind,
    /// How much one such event counts relative to a view.
    pub weight: f32,
    /// Ratings: the lowest value that counts as positive.
    #[serde(default = "default_positive_threshold")]
    pub positive_threshold: f64,
    /// Ratings: values at or below this count as negative.
    #[serde(default = "default_negative_threshold")]
    pub negative_threshold: f64,
    /// Ratings: allowed range of `value`.
    #[serde(default = "default_min_value")]
    pub min_value: f64,
    #[serde(default = "default_max_value")]
    pub max_value: f64,
}

fn default_positive_threshold() -> f64 {
    4.0
}
fn default_negative_threshold() -> f64 {
    2.0
}
fn default_min_value() -> f64 {
    0.0
}
fn default_max_value() -> f64 {
    5.0
}

impl EventTypeConfig {
    pub fn implicit(weight: f32) -> Self {
        EventTypeConfig {
            kind: EventKind::Implicit,
            weight,
            positive_threshold: default_positive_threshold(),
            negative_threshold: default_negative_threshold(),
            min_value: default_min_value(),
            max_value: default_max_value(),
        }
    }

    pub fn negative(weight: f32) -> Self {
        EventTypeConfig {
            kind: EventKind::Negative,
            ..Self::implicit(weight)
        }
    }

    pub fn rating(weight: f32) -> Self {
        EventTypeConfig {
            kind: EventKind::Rating,
            ..Self::implicit(weight)
        }
    }
}

/// The configured event types, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventTypes(pub BTreeMap<String, EventTypeConfig>);

impl Default for EventTypes {
    fn default() -> Self {
        let mut m = BTreeMap::new();
        m.insert("view".into(), EventTypeConfig::implicit(1.0));
        m.insert("click".into(), EventTypeConfig::implicit(2.0));
        m.insert("like".into(), EventTypeConfig::implicit(4.0));
        m.insert("add-to-cart".into(), EventTypeConfig::implicit(4.0));
        m.insert("purchase".into(), EventTypeConfig::implicit(8.0));
        m.insert("rating".into(), EventTypeConfig::rating(4.0));
        m.insert("dislike".into(), EventTypeConfig::negative(4.0));
        EventTypes(m)
    }
}

impl EventTypes {
    pub fn get(&self, name: &str) -> Option<&EventTypeConfig> {
        self.0.get(name)
    }

    /// Checks that an event's type is known and its value fits the type.
    pub fn check(&self, event_type: &str, value: Option<f64>) -> Result<(), ValidationError> {
        let Some(cfg) = self.get(event_type) else {
            let known: Vec<&str> = self.0.keys().map(String::as_str).collect();
            return Err(ValidationError::new(
                "type",
                format!(
                    "unknown event type `{event_type}`; configured types are {}",
                    known.join(", ")
                ),
            ));
        };
        if cfg.kind == EventKind::Rating {
            match value {
                None => {
                    return Err(ValidationError::new(
                        "value",
                        format!("a `{event_type}` event needs a value"),
                    ))
                }
                Some(v) if v < cfg.min_value || v > cfg.max_value => {
                    return Err(ValidationError::new(
                        "value",
                        format!(
                            "{v} is outside the {}..{} range of `{event_type}`",
                            cfg.min_value, cfg.max_value
                        ),
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Signed strength of an event for implicit-feedback models: positive for interest, negative for
    /// rejection, zero for neutral. Unknown types count as zero.
    pub fn strength(&self, event_type: &str, value: Option<f64>) -> f32 {
        let Some(cfg) = self.get(event_type) else {
            return 0.0;
        };
        match cfg.kind {
            EventKind::Implicit => cfg.weight,
            EventKind::Negative => -cfg.weight,
            EventKind::Rating => match value {
                Some(v) if v >= cfg.positive_threshold => cfg.weight,
                Some(v) if v <= cfg.negative_threshold => -cfg.weight,
                _ => 0.0,
            },
        }
    }

    pub fn validate(&self) -> Result<(), ValidationError> {
        for (name, cfg) in &self.0 {
            crate::validate::check_id("event_types key", name)?;
            if !cfg.weight.is_finite() || cfg.weight < 0.0 {
                return Err(ValidationError::new(
                    format!("event_types.{name}.weight"),
                    "must be a finite number >= 0",
                ));
            }
            if cfg.min_value >= cfg.max_value {
                return Err(ValidationError::new(
                    format!("event_types.{name}.min_value"),
                    "must be below max_value",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_cover_a_shop() {
        let t = EventTypes::default();
        for name in ["view", "click", "add-to-cart", "purchase", "rating"] {
            assert!(t.get(name).is_some(), "{name}");
        }
        assert!(t.strength("purchase", None) > t.strength("view", None));
    }

    #[test]
    fn ratings_split_into_positive_neutral_negative() {
        let t = EventTypes::default();
        assert!(t.strength("rating", Some(5.0)) > 0.0);
        assert_eq!(t.strength("rating", Some(3.0)), 0.0);
        assert!(t.strength("rating", Some(1.0)) < 0.0);
        assert!(t.check("rating", None).is_err());
        assert!(t.check("rating", Some(7.0)).is_err());
        assert!(t
            .check("teleport", None)
            .unwrap_err()
            .message
            .contains("purchase"));
    }
}
