//! Reading the training snapshot from the store: the one place where the pipeline's input meets
//! storage, so that `cairn-pipeline` knows nothing of stores.

use cairn_core::EventTypes;
use cairn_pipeline::Snapshot;
use cairn_store::{Store, StoreError};

/// Every event of a known type in log order, with its signed strength.
pub fn read_snapshot(store: &dyn Store, event_types: &EventTypes) -> Result<Snapshot, StoreError> {
    let mut snapshot = Snapshot::builder();
    // The log's last position, not only the last event read: when the newest events were erased
    // or expired, the snapshot has still seen everything up to it (else a training would be due
    // forever after).
    let mut last_seq = store.stats()?.last_seq;
    store.scan_events(0, &mut |e| {
        last_seq = last_seq.max(e.seq);
        let strength = event_types.strength(&e.event_type, e.value);
        if strength != 0.0 {
            snapshot.push(&e.user_id, &e.item_id, strength, e.timestamp.0);
        }
        true
    })?;
    Ok(snapshot.finish(last_seq))
}
