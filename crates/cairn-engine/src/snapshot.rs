//! A training snapshot: the event log read once into compact indexed form.

use cairn_core::{EventTypes, IdMap, InteractionMatrix, Triplet};
use cairn_models::TimedInteraction;
use cairn_store::{Store, StoreError};

pub struct Snapshot {
    pub users: IdMap,
    pub items: IdMap,
    /// (user, item, signed strength, unix seconds) for every event of a known type.
    pub events: Vec<(u32, u32, f32, i64)>,
    /// Log position of the last event read.
    pub last_seq: u64,
    /// The newest event's time: "now" for decay and trending, so that historical imports behave.
    pub reference_time: i64,
}

impl Snapshot {
    pub fn read(store: &dyn Store, event_types: &EventTypes) -> Result<Snapshot, StoreError> {
        let mut users = IdMap::new();
        let mut items = IdMap::new();
        let mut events = Vec::new();
        let mut last_seq = 0;
        let mut reference_time = i64::MIN;
        store.scan_events(0, &mut |e| {
            last_seq = e.seq;
            let strength = event_types.strength(&e.event_type, e.value);
            if strength != 0.0 {
                let u = users.intern(&e.user_id);
                let i = items.intern(&e.item_id);
                events.push((u, i, strength, e.timestamp.0));
                reference_time = reference_time.max(e.timestamp.0);
            }
            true
        })?;
        Ok(Snapshot {
            users,
            items,
            events,
            last_seq,
            reference_time: if reference_time == i64::MIN {
                0
            } else {
                reference_time
            },
        })
    }

    pub fn matrix(&self) -> InteractionMatrix {
        let triplets: Vec<Triplet> = self.events.iter().map(|&(u, i, s, _)| (u, i, s)).collect();
        InteractionMatrix::from_triplets(self.users.clone(), self.items.clone(), triplets)
    }

    pub fn timed(&self) -> Vec<TimedInteraction> {
        self.events.iter().map(|&(_, i, s, t)| (i, s, t)).collect()
    }
}
