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
    /// The 1-based position at which the item was shown in that recommendation, for attribution
    /// by position. Read by the experiments' attribution only; the event log does not store it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
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
            position: None,
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

    /// An event id derived from what the event says happened: its user, item, type, value and
    /// timestamp (as given; an event without one hashes as "no timestamp"). Two events that agree on
    /// all five get the same id, so storing them keeps the first only; recommendation id and context
    /// are not part of it. The id is [`CONTENT_ID_PREFIX`] followed by 32 hex digits of a 128-bit
    /// FNV-1a hash of the five fields, each length-prefixed; the recipe is fixed, so the same event
    /// gets the same id in every version and on every machine.
    pub fn content_id(&self) -> String {
        let mut hash = Fnv1a128::new();
        for text in [&self.user_id, &self.item_id, &self.event_type] {
            hash.write(&(text.len() as u64).to_le_bytes());
            hash.write(text.as_bytes());
        }
        match self.value {
            // `+ 0.0` makes -0.0 and 0.0 one value.
            Some(v) => {
                hash.write(&[1]);
                hash.write(&(v + 0.0).to_bits().to_le_bytes());
            }
            None => hash.write(&[0]),
        }
        match self.timestamp {
            Some(t) => {
                hash.write(&[1]);
                hash.write(&t.0.to_le_bytes());
            }
            None => hash.write(&[0]),
        }
        format!("{CONTENT_ID_PREFIX}{:032x}", hash.finish())
    }
}

/// The prefix of the event ids that [`Event::content_id`] derives. Client ids may not start with it
/// unless they are the event's own content id, so a derived id never collides with a client's.
pub const CONTENT_ID_PREFIX: &str = "cairn-content:";

/// 128-bit FNV-1a: tiny, dependency-free, and fixed by its published constants.
struct Fnv1a128(u128);

impl Fnv1a128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

    fn new() -> Self {
        Fnv1a128(Self::OFFSET)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u128::from(b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    fn finish(&self) -> u128 {
        self.0
    }
}

impl Validate for Event {
    fn validate(&self) -> Result<(), ValidationError> {
        if let Some(id) = &self.event_id {
            check_id("event_id", id)?;
            if id.starts_with(CONTENT_ID_PREFIX) && *id != self.content_id() {
                return Err(ValidationError::new(
                    "event_id",
                    format!(
                        "ids starting with `{CONTENT_ID_PREFIX}` are reserved for the ids Cairn derives from an event's content, and this one is not this event's; choose another id"
                    ),
                ));
            }
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
        if self.position == Some(0) {
            return Err(ValidationError::new(
                "position",
                "positions are 1-based: the first item of a list is at position 1",
            ));
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
            position: None,
            context: self.context,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_128_matches_the_published_vectors() {
        let mut h = Fnv1a128::new();
        assert_eq!(h.finish(), 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d);
        h.write(b"a");
        assert_eq!(h.finish(), 0xd228_cb69_6f1a_8caf_7891_2b70_4e4a_8964);
    }

    #[test]
    fn content_ids_follow_the_five_fields_only() {
        let e = Event::new("u1", "i1", "rating")
            .with_value(4.0)
            .at(1_700_000_000);
        let id = e.content_id();
        assert!(id.starts_with(CONTENT_ID_PREFIX), "{id}");
        assert_eq!(id.len(), CONTENT_ID_PREFIX.len() + 32);
        // The recipe's output, computed independently (Python's struct and the FNV constants): a
        // change of recipe would make a re-import store every event again, so it must fail here.
        assert_eq!(id, "cairn-content:7796b34817b11a5736717a898880416b");
        let mut same = e.clone();
        same.recommendation_id = Some("r9".into());
        same.context
            .insert("device".into(), PropertyValue::String("mobile".into()));
        assert_eq!(same.content_id(), id);
        let others = [
            Event::new("u2", "i1", "rating")
                .with_value(4.0)
                .at(1_700_000_000),
            Event::new("u1", "i2", "rating")
                .with_value(4.0)
                .at(1_700_000_000),
            Event::new("u1", "i1", "view")
                .with_value(4.0)
                .at(1_700_000_000),
            Event::new("u1", "i1", "rating")
                .with_value(4.5)
                .at(1_700_000_000),
            Event::new("u1", "i1", "rating").at(1_700_000_000),
            Event::new("u1", "i1", "rating")
                .with_value(4.0)
                .at(1_700_000_001),
            Event::new("u1", "i1", "rating").with_value(4.0),
            // Fields are length-prefixed: moving a character from one to the next changes the id.
            Event::new("u1i", "1", "rating")
                .with_value(4.0)
                .at(1_700_000_000),
        ];
        for other in &others {
            assert_ne!(other.content_id(), id, "{other:?}");
        }
        assert_eq!(
            Event::new("u", "i", "rating").with_value(0.0).content_id(),
            Event::new("u", "i", "rating").with_value(-0.0).content_id()
        );
    }

    #[test]
    fn the_content_prefix_is_reserved_for_the_events_own_content_id() {
        let mut e = Event::new("u1", "i1", "view").at(1_700_000_000);
        e.event_id = Some(e.content_id());
        assert_eq!(e.validate(), Ok(()));
        e.event_id = Some(format!("{CONTENT_ID_PREFIX}mine"));
        let err = e.validate().unwrap_err();
        assert_eq!(err.field, "event_id");
        assert!(err.message.contains("reserved"), "{err}");
        e.event_id = Some("content:mine".into());
        assert_eq!(e.validate(), Ok(()));
    }
}
