//! Imports from another store (`cairn migrate`, a PostgreSQL backup into a data directory): events
//! with the log positions and ids the source gave them, audit records with their positions.

use cairn_core::StoredEvent;
use redb::ReadableTable;

use super::USER_ITEMS_SEQ;
use super::{EmbeddedStore, AUDIT, EVENTS, EVENT_IDS, LAST_SEQ, META, USER_EVENTS, USER_ITEMS};
use crate::record::{encode_json, EventRecord};
use crate::{AuditRecord, StoreError};

impl EmbeddedStore {
    pub(super) fn import_log(
        &self,
        batch: &[StoredEvent],
        last_seq: u64,
    ) -> Result<(), StoreError> {
        self.write(|db| {
            let txn = db.begin_write()?;
            {
                let mut meta = txn.open_table(META)?;
                let mut events = txn.open_table(EVENTS)?;
                let mut index = txn.open_table(USER_EVENTS)?;
                let mut event_ids = txn.open_table(EVENT_IDS)?;
                let mut user_items = txn.open_table(USER_ITEMS)?;
                let mut end = meta.get(LAST_SEQ)?.map_or(0, |v| v.value());
                for event in batch {
                    crate::check_import_order(event.seq, end)?;
                    if let Some(eid) = event.event_id.as_deref() {
                        if event_ids.get(eid)?.is_some() {
                            return Err(StoreError::Backend(format!(
                                "imported event {} repeats the event id {eid:?}",
                                event.seq
                            )));
                        }
                        event_ids.insert(eid, event.seq)?;
                    }
                    let record = EventRecord::from_stored(event);
                    events.insert(event.seq, record.encode().as_slice())?;
                    index.insert((event.user_id.as_str(), event.seq), ())?;
                    user_items.insert((event.user_id.as_str(), event.item_id.as_str()), ())?;
                    end = event.seq;
                }
                let end = end.max(last_seq);
                meta.insert(LAST_SEQ, end)?;
                meta.insert(USER_ITEMS_SEQ, end)?;
            }
            txn.commit()?;
            Ok(())
        })
    }

    pub(super) fn import_audit_records(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        self.write(|db| {
            let txn = db.begin_write()?;
            {
                let mut audit = txn.open_table(AUDIT)?;
                let mut end = audit.last()?.map_or(0, |(k, _)| k.value());
                for record in records {
                    crate::check_import_order(record.seq, end)?;
                    audit.insert(record.seq, encode_json(record).as_slice())?;
                    end = record.seq;
                }
            }
            txn.commit()?;
            Ok(())
        })
    }
}
