//! Users. A user row is optional: events may name a user the catalog has never seen.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::item::check_properties;
use crate::property::PropertyValue;
use crate::validate::{check_id, Validate, ValidationError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct User {
    pub id: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, PropertyValue>,
}

impl User {
    pub fn new(id: impl Into<String>) -> Self {
        User {
            id: id.into(),
            properties: BTreeMap::new(),
        }
    }
}

impl Validate for User {
    fn validate(&self) -> Result<(), ValidationError> {
        check_id("id", &self.id)?;
        check_properties("properties", &self.properties)
    }
}
