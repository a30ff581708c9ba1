//! Retention: deleting the events older than a cutoff, with what depends on them (the by-user
//! index, idempotency records, and the `user_items` pairs no remaining event supports).

use std::collections::{BTreeMap, BTreeSet};

use cairn_core::Timestamp;
use redb::ReadableTable;

use super::{EmbeddedStore, EVENTS, EVENT_IDS, USER_EVENTS, USER_ITEMS};
use crate::record::EventRecord;
use crate::{ExpiredEvents, StoreError};

impl EmbeddedStore {
    pub(super) fn expire_before(
        &self,
        cutoff: Timestamp,
        limit: usize,
    ) -> Result<ExpiredEvents, StoreError> {
        self.write(|db| {
            let txn = db.begin_write()?;
            let mut out = ExpiredEvents::default();
            {
                let mut events = txn.open_table(EVENTS)?;
                let mut index = txn.open_table(USER_EVENTS)?;
                let mut event_ids = txn.open_table(EVENT_IDS)?;
                let mut user_items = txn.open_table(USER_ITEMS)?;
                // Timestamps are the clients', so not in log order: the whole log is read.
                let mut old: Vec<(u64, EventRecord)> = Vec::new();
                for entry in events.iter()? {
                    let (seq, bytes) = entry?;
                    let record = EventRecord::decode(bytes.value())?;
                    if record.ts < cutoff.0 {
                        old.push((seq.value(), record));
                        if old.len() == limit {
                            break;
                        }
                    }
                }
                // The items each user lost an event about.
                let mut touched: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
                for (seq, record) in old {
                    events.remove(seq)?;
                    index.remove((record.user.as_str(), seq))?;
                    if let Some(eid) = &record.event_id {
                        event_ids.remove(eid.as_str())?;
                    }
                    touched.entry(record.user).or_default().insert(record.item);
                    out.events += 1;
                }
                for (user, mut items) in touched {
                    // Items that still have an event of this user keep their pair.
                    let seqs: Vec<u64> = index
                        .range((user.as_str(), 0u64)..=(user.as_str(), u64::MAX))?
                        .map(|entry| entry.map(|(k, _)| k.value().1))
                        .collect::<Result<_, _>>()?;
                    for seq in seqs {
                        if items.is_empty() {
                            break;
                        }
                        if let Some(bytes) = events.get(seq)? {
                            items.remove(&EventRecord::decode(bytes.value())?.item);
                        }
                    }
                    for item in items {
                        user_items.remove((user.as_str(), item.as_str()))?;
                        out.pairs += 1;
                    }
                }
            }
            txn.commit()?;
            Ok(out)
        })
    }
}

// Tested by the store suite (`tests/suite`, `old_events_go_with_their_ids_...`) on every backend.
