//! Catalog items.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::property::PropertyValue;
use crate::time::Timestamp;
use crate::validate::{check_id, check_labels, check_text, Validate, ValidationError};

pub const MAX_EMBEDDING_DIM: usize = 4096;

/// An item of the catalog: what can be recommended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// The client's id for the item.
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Typed properties: string, number, bool, or a list of those.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, PropertyValue>,
    /// Optional client-supplied embedding vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
    /// A hidden item is never recommended, on any path.
    #[serde(default, skip_serializing_if = "is_false")]
    pub hidden: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_from: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_until: Option<Timestamp>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Item {
    pub fn new(id: impl Into<String>) -> Self {
        Item {
            id: id.into(),
            categories: Vec::new(),
            tags: Vec::new(),
            title: None,
            description: None,
            properties: BTreeMap::new(),
            embedding: None,
            hidden: false,
            available_from: None,
            available_until: None,
        }
    }

    /// Whether the item may be recommended at `now` (unix seconds).
    pub fn is_recommendable(&self, now: i64) -> bool {
        !self.hidden
            && self.available_from.is_none_or(|t| t.0 <= now)
            && self.available_until.is_none_or(|t| now < t.0)
    }

    pub fn in_category(&self, category: &str) -> bool {
        self.categories.iter().any(|c| c == category)
    }

    /// A human label for reasons and logs: the title when there is one.
    pub fn label(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.id)
    }
}

impl Validate for Item {
    fn validate(&self) -> Result<(), ValidationError> {
        check_id("id", &self.id)?;
        check_labels("categories", &self.categories, 100)?;
        check_labels("tags", &self.tags, 1000)?;
        if let Some(t) = &self.title {
            check_text("title", t, 4096)?;
        }
        if let Some(d) = &self.description {
            check_text("description", d, 100_000)?;
        }
        check_properties("properties", &self.properties)?;
        if let Some(e) = &self.embedding {
            if e.is_empty() || e.len() > MAX_EMBEDDING_DIM {
                return Err(ValidationError::new(
                    "embedding",
                    format!(
                        "has {} dimensions; 1 to {MAX_EMBEDDING_DIM} are allowed",
                        e.len()
                    ),
                ));
            }
            if let Some(i) = e.iter().position(|x| !x.is_finite()) {
                return Err(ValidationError::new(
                    format!("embedding[{i}]"),
                    "must be a finite number",
                ));
            }
        }
        if let (Some(from), Some(until)) = (self.available_from, self.available_until) {
            if until <= from {
                return Err(ValidationError::new(
                    "available_until",
                    "must be later than available_from",
                ));
            }
        }
        Ok(())
    }
}

pub(crate) fn check_properties(
    field: &str,
    properties: &BTreeMap<String, PropertyValue>,
) -> Result<(), ValidationError> {
    if properties.len() > 256 {
        return Err(ValidationError::new(
            field,
            format!("has {} keys; at most 256 are allowed", properties.len()),
        ));
    }
    for (key, value) in properties {
        check_id(&format!("{field} key"), key)?;
        if let Some(problem) = value.problem() {
            return Err(ValidationError::new(format!("{field}.{key}"), problem));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_window_and_hidden_flag() {
        let mut item = Item::new("a");
        assert!(item.is_recommendable(100));
        item.available_from = Some(Timestamp(200));
        item.available_until = Some(Timestamp(300));
        assert!(!item.is_recommendable(100));
        assert!(item.is_recommendable(250));
        assert!(!item.is_recommendable(300));
        item.available_from = None;
        item.hidden = true;
        assert!(!item.is_recommendable(250));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<Item>(r#"{"id":"a","colour":"red"}"#).unwrap_err();
        assert!(err.to_string().contains("colour"));
    }

    #[test]
    fn bad_embeddings_are_rejected() {
        let mut item = Item::new("a");
        item.embedding = Some(vec![1.0, f32::NAN]);
        assert_eq!(item.validate().unwrap_err().field, "embedding[1]");
        item.embedding = Some(vec![]);
        assert!(item.validate().is_err());
    }
}
