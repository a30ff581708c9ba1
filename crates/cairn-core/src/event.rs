//! Interaction events: a user did something to an item at a time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::item::check_properties;
use crate::property::PropertyValue;
use crate::time::Timestamp;
use crate::validate::{check_id, Validate, ValidationError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Client-supplied id. When present, posting the same event twice stores it once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub user_id: String,
    pub item_id: String,
    /// One of the configured event types, e.g. `view`, `click`, `add-to-cart`, `purchase`, `rating`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The rating for explicit events; optional for implicit ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// When it happened; defaults to the time the server receives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// The recommendation this event follows from, for attribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation_id: Option<String>,
    /// Free context: device, page, placement...
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, PropertyValue>,
}

impl Event {
    pub fn new(
        user: impl Into<String>,
        item: impl Into<String>,
        event_type: impl Into<String>,
    ) -> Self {
        Event {
            event_id: None,
            user_id: user.into(),
            item_id: item.into(),
            event_type: event_type.into(),
            value: None,
            timestamp: None,
            recommendation_id: None,
            context: BTreeMap::new(),
        }
    }

    pub fn at(mut self, ts: i64) -> Self {
        self.timestamp = Some(Timestamp(ts));
        self
    }

    pub fn with_value(mut self, v: f64) -> Self {
        self.value = Some(v);
        self
    }
}

impl Validate for Event {
    fn validate(&self) -> Result<(), ValidationError> {
        if let Some(id) = &self.event_id {
            check_id("event_id", id)?;
        }
        check_id("user_id", &self.user_id)?;
        check_id("item_id", &self.item_id)?;
        check_id("type", &self.event_type)?;
        if let Some(v) = self.value {
            if !v.is_finite() || v.abs() > 1e9 {
                return Err(ValidationError::new(
                    "value",
                    format!("{v} must be a finite number at most 1e9 in magnitude"),
                ));
            }
        }
        if let Some(r) = &self.recommendation_id {
            check_id("recommendation_id", r)?;
        }
        check_properties("context", &self.context)
    }
}

/// An event as stored: with its position in the log and a definite timestamp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredEvent {
    /// Position in the event log; increases with every stored event.
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub user_id: String,
    pub item_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    pub timestamp: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation_id: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, PropertyValue>,
}

impl StoredEvent {
    pub fn from_event(seq: u64, event: Event, default_time: Timestamp) -> Self {
        StoredEvent {
            seq,
            event_id: event.event_id,
            user_id: event.user_id,
            item_id: event.item_id,
            event_type: event.event_type,
            value: event.value,
            timestamp: event.timestamp.unwrap_or(default_time),
            recommendation_id: event.recommendation_id,
            context: event.context,
        }
    }

    /// The event as a client would post it again (with its stored time), for export.
    pub fn into_event(self) -> Event {
        Event {
            user_id: self.user_id,
            item_id: self.item_id,
            event_type: self.event_type,
            value: self.value,
            timestamp: Some(self.timestamp),
            event_id: self.event_id,
            recommendation_id: self.recommendation_id,
            context: self.context,
        }
    }
}
