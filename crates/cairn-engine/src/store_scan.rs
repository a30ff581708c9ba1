//! Reading the training snapshot from the store: the one place where the pipeline's input meets
//! storage, so that `cairn-pipeline` knows nothing of stores.

use std::collections::BTreeMap;

use cairn_core::EventTypes;
use cairn_pipeline::Snapshot;
use cairn_store::{Store, StoreError};
use sha2::{Digest, Sha256};

use crate::drift::ReferenceBuilder;
use crate::registry::DataSnapshot;

/// Every event of a known type in log order, with its signed strength, and what a model version
/// records of the data it was trained on: counts, the event-type mix and a digest of every event
/// read.
pub fn read_snapshot_with_summary(
    store: &dyn Store,
    event_types: &EventTypes,
) -> Result<(Snapshot, DataSnapshot), StoreError> {
    read_snapshot_with_reference(store, event_types, None)
}

/// [`read_snapshot_with_summary`], also feeding every event read to `reference` (the drift
/// reference the version saves, see [`crate::drift`]).
pub fn read_snapshot_with_reference(
    store: &dyn Store,
    event_types: &EventTypes,
    mut reference: Option<&mut ReferenceBuilder>,
) -> Result<(Snapshot, DataSnapshot), StoreError> {
    let mut snapshot = Snapshot::builder();
    // The log's last position, not only the last event read: when the newest events were erased
    // or expired, the snapshot has still seen everything up to it (else a training would be due
    // forever after).
    let mut last_seq = store.stats()?.last_seq;
    let mut log_events = 0u64;
    let mut mix: BTreeMap<String, u64> = BTreeMap::new();
    let mut digest = Sha256::new();
    store.scan_events(0, &mut |e| {
        last_seq = last_seq.max(e.seq);
        log_events += 1;
        if let Some(r) = reference.as_deref_mut() {
            r.add(&e.user_id, &e.item_id, &e.event_type);
        }
        *mix.entry(e.event_type.clone()).or_insert(0) += 1;
        digest.update(e.seq.to_le_bytes());
        for s in [&e.user_id, &e.item_id, &e.event_type] {
            digest.update((s.len() as u64).to_le_bytes());
            digest.update(s.as_bytes());
        }
        digest.update(e.value.unwrap_or(f64::NAN).to_le_bytes());
        digest.update(e.timestamp.0.to_le_bytes());
        let strength = event_types.strength(&e.event_type, e.value);
        if strength != 0.0 {
            snapshot.push(&e.user_id, &e.item_id, strength, e.timestamp.0);
        }
        true
    })?;
    let snapshot = snapshot.finish(last_seq);
    let summary = DataSnapshot {
        last_seq,
        log_events,
        events: snapshot.events.len() as u64,
        users: snapshot.users.len() as u64,
        items: snapshot.items.len() as u64,
        event_types: mix,
        digest: format!("sha256:{:x}", digest.finalize()),
    };
    Ok((snapshot, summary))
}
