//! Copying everything one store holds into another, empty one, through the [`Store`] trait: the
//! catalog, the event log with its positions and event ids, API keys and the audit log. `cairn
//! migrate` moves a deployment between backends with it.

use cairn_core::{Item, StoredEvent};

use crate::{BackupReport, Store, StoreError};

/// Rows moved per write.
const CHUNK: usize = 5_000;

/// Copies every row of `from` into `to`, which must hold nothing (no item, user, event, key or
/// audit record): items, users, keys, the audit log with its positions, then the event log in
/// position order, chunk by chunk (never the whole log in memory), with its ids and its end.
/// `from` must not take writes meanwhile (a stopped server; the embedded store's lock ensures it).
pub fn copy_store(from: &dyn Store, to: &dyn Store) -> Result<BackupReport, StoreError> {
    let target = to.stats()?;
    if target != crate::StoreStats::default()
        || !to.list_keys()?.is_empty()
        || !to.list_audit(None, 1)?.is_empty()
    {
        return Err(StoreError::Backend(
            "the target store is not empty: migrate into a new data directory or database".into(),
        ));
    }
    let source = from.stats()?;
    let mut report = BackupReport::default();

    let mut items: Vec<Item> = Vec::new();
    let mut failed = None;
    from.scan_items(&mut |item| {
        if failed.is_some() {
            return;
        }
        items.push(item);
        if items.len() == CHUNK {
            report.items += items.len() as u64;
            if let Err(e) = to.put_items(&std::mem::take(&mut items)) {
                failed = Some(e);
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    report.items += items.len() as u64;
    to.put_items(&items)?;

    let mut after: Option<String> = None;
    loop {
        let users = from.list_users(after.as_deref(), CHUNK)?;
        let Some(last) = users.last() else { break };
        after = Some(last.id.clone());
        report.users += users.len() as u64;
        to.put_users(&users)?;
    }

    for key in from.list_keys()? {
        to.put_key(&key)?;
    }
    // The audit log pages newest first; it is imported oldest first.
    let mut audit = Vec::new();
    let mut before = None;
    loop {
        let page = from.list_audit(before, CHUNK)?;
        let Some(last) = page.last() else { break };
        before = Some(last.seq);
        audit.extend(page);
    }
    audit.reverse();
    for chunk in audit.chunks(CHUNK) {
        to.import_audit(chunk)?;
    }

    let mut events: Vec<StoredEvent> = Vec::with_capacity(CHUNK);
    let mut failed = None;
    from.scan_events(0, &mut |event| {
        events.push(event);
        if events.len() == CHUNK {
            report.events += events.len() as u64;
            if let Err(e) = to.import_events(&std::mem::take(&mut events), 0) {
                failed = Some(e);
                return false;
            }
        }
        true
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    report.events += events.len() as u64;
    to.import_events(&events, source.last_seq)?;
    report.last_seq = to.stats()?.last_seq;
    Ok(report)
}
