//! On-disk encodings. Catalog rows are JSON (they are small, and their untagged property values need a
//! self-describing format); event rows are postcard because the log is large and scanned whole at
//! training time.

use std::collections::BTreeMap;

use cairn_core::{Event, PropertyValue, StoredEvent, Timestamp};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::StoreError;

#[derive(Serialize, Deserialize)]
pub(crate) struct EventRecord {
    pub user: String,
    pub item: String,
    pub event_type: String,
    pub value: Option<f64>,
    pub ts: i64,
    pub event_id: Option<String>,
    pub recommendation_id: Option<String>,
    /// JSON of the context map; `None` when empty, which is the common case.
    pub context_json: Option<String>,
}

impl EventRecord {
    pub fn from_event(e: &Event, now: Timestamp) -> Self {
        EventRecord {
            user: e.user_id.clone(),
            item: e.item_id.clone(),
            event_type: e.event_type.clone(),
            value: e.value,
            ts: e.timestamp.unwrap_or(now).0,
            event_id: e.event_id.clone(),
            recommendation_id: e.recommendation_id.clone(),
            context_json: (!e.context.is_empty())
                .then(|| serde_json::to_string(&e.context).expect("context serializes")),
        }
    }

    /// The record of an event another store holds (an import keeps its timestamp as stored).
    pub fn from_stored(e: &StoredEvent) -> Self {
        EventRecord {
            user: e.user_id.clone(),
            item: e.item_id.clone(),
            event_type: e.event_type.clone(),
            value: e.value,
            ts: e.timestamp.0,
            event_id: e.event_id.clone(),
            recommendation_id: e.recommendation_id.clone(),
            context_json: (!e.context.is_empty())
                .then(|| serde_json::to_string(&e.context).expect("context serializes")),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("event record serializes")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("event record: {e}")))
    }

    pub fn into_stored(self, seq: u64) -> Result<StoredEvent, StoreError> {
        let context: BTreeMap<String, PropertyValue> = match self.context_json {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("event {seq} context: {e}")))?,
            None => BTreeMap::new(),
        };
        Ok(StoredEvent {
            seq,
            event_id: self.event_id,
            user_id: self.user,
            item_id: self.item,
            event_type: self.event_type,
            value: self.value,
            timestamp: Timestamp(self.ts),
            recommendation_id: self.recommendation_id,
            context,
        })
    }
}

pub(crate) fn encode_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("catalog rows serialize")
}

pub(crate) fn decode_json<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}
