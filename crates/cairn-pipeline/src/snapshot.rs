//! A training snapshot: the event log read once into compact indexed form. Where the events come
//! from (the engine's store, a split's training file) is the caller's business: it feeds them to a
//! [`SnapshotBuilder`] in log order.

use cairn_core::{IdMap, InteractionMatrix, Triplet};
use cairn_models::TimedInteraction;

pub struct Snapshot {
    pub users: IdMap,
    pub items: IdMap,
    /// (user, item, signed strength, unix seconds) for every event of a known type.
    pub events: Vec<(u32, u32, f32, i64)>,
    /// Log position of the last event read.
    pub last_seq: u64,
    /// The newest event's time: "now" for decay and trending, so that historical imports behave.
    /// A served model caps it at the clock ([`Snapshot::cap_reference_time`]).
    pub reference_time: i64,
}

impl Snapshot {
    /// Starts a snapshot to which events are added in log order.
    pub fn builder() -> SnapshotBuilder {
        SnapshotBuilder {
            users: IdMap::new(),
            items: IdMap::new(),
            events: Vec::new(),
            reference_time: i64::MIN,
        }
    }

    pub fn matrix(&self) -> InteractionMatrix {
        let triplets: Vec<Triplet> = self.events.iter().map(|&(u, i, s, _)| (u, i, s)).collect();
        InteractionMatrix::from_triplets(self.users.clone(), self.items.clone(), triplets)
    }

    /// Never lets "now" run ahead of `now`, the clock of the machine that trains: one event stamped
    /// in the future (stored before ingestion refused them, or by a client with a wrong clock)
    /// would otherwise make every other event look old, so that popular and trending showed that
    /// one item. Events after the cap count as now for popularity and not at all for trending.
    pub fn cap_reference_time(&mut self, now: i64) {
        self.reference_time = self.reference_time.min(now);
    }

    pub fn timed(&self) -> Vec<TimedInteraction> {
        self.events.iter().map(|&(_, i, s, t)| (i, s, t)).collect()
    }

    /// Each user's items (entry `u` is row `u` of [`Snapshot::matrix`]) oldest first by timestamp,
    /// ties in log order, from the positive events, each item at its first occurrence: what the
    /// sequence-aware models (`ModelSpec::needs_order`) fit on.
    pub fn sequences(&self) -> Vec<Vec<u32>> {
        let mut timed: Vec<Vec<(i64, usize, u32)>> = vec![Vec::new(); self.users.len()];
        for (n, &(u, i, s, t)) in self.events.iter().enumerate() {
            if s > 0.0 {
                timed[u as usize].push((t, n, i));
            }
        }
        let mut seen = vec![false; self.items.len()];
        timed
            .into_iter()
            .map(|mut events| {
                events.sort_unstable_by_key(|&(t, n, _)| (t, n));
                let order: Vec<u32> = events
                    .into_iter()
                    .filter(|&(_, _, i)| !std::mem::replace(&mut seen[i as usize], true))
                    .map(|(_, _, i)| i)
                    .collect();
                for &i in &order {
                    seen[i as usize] = false;
                }
                order
            })
            .collect()
    }
}

/// Collects events in log order into a [`Snapshot`], interning user and item ids as they come.
pub struct SnapshotBuilder {
    users: IdMap,
    items: IdMap,
    events: Vec<(u32, u32, f32, i64)>,
    reference_time: i64,
}

impl SnapshotBuilder {
    /// Adds one event of a known type; `strength` is its signed strength (non-zero).
    pub fn push(&mut self, user_id: &str, item_id: &str, strength: f32, timestamp: i64) {
        let u = self.users.intern(user_id);
        let i = self.items.intern(item_id);
        self.events.push((u, i, strength, timestamp));
        self.reference_time = self.reference_time.max(timestamp);
    }

    /// The snapshot of the events added; `last_seq` is the log position of the last event read
    /// (events of unknown types included).
    pub fn finish(self, last_seq: u64) -> Snapshot {
        Snapshot {
            users: self.users,
            items: self.items,
            events: self.events,
            last_seq,
            reference_time: if self.reference_time == i64::MIN {
                0
            } else {
                self.reference_time
            },
        }
    }
}

impl Snapshot {
    /// Each user's newest `fraction` of events (users with at least `min_events`) as
    /// (user id, item id, strength), and the rest as a snapshot of its own.
    pub fn split_user_tails(
        &self,
        fraction: f64,
        min_events: usize,
    ) -> (Snapshot, Vec<(String, String, f32)>) {
        let mut by_user: Vec<Vec<usize>> = vec![Vec::new(); self.users.len()];
        for (n, e) in self.events.iter().enumerate() {
            by_user[e.0 as usize].push(n);
        }
        let mut future = vec![false; self.events.len()];
        for list in &mut by_user {
            if list.len() < min_events {
                continue;
            }
            list.sort_by_key(|&n| (self.events[n].3, n));
            let tail = ((list.len() as f64) * fraction).ceil() as usize;
            for &n in &list[list.len() - tail.max(1)..] {
                future[n] = true;
            }
        }
        self.split_by(|n, _| future[n])
    }

    /// Splits at one time: the newest `fraction` of all events (by time, then log order) are the
    /// future, as the next period after a training would be.
    pub fn split_newest(&self, fraction: f64) -> (Snapshot, Vec<(String, String, f32)>) {
        let mut order: Vec<usize> = (0..self.events.len()).collect();
        order.sort_by_key(|&n| (self.events[n].3, n));
        let tail = ((order.len() as f64) * fraction).ceil() as usize;
        let mut future = vec![false; self.events.len()];
        for &n in &order[order.len() - tail.min(order.len())..] {
            future[n] = true;
        }
        self.split_by(|n, _| future[n])
    }

    /// The events for which `is_future(position, time)` is false as a snapshot of their own (ids
    /// re-interned), and the others as (user id, item id, strength).
    fn split_by(
        &self,
        is_future: impl Fn(usize, i64) -> bool,
    ) -> (Snapshot, Vec<(String, String, f32)>) {
        let mut users = IdMap::new();
        let mut items = IdMap::new();
        let mut events = Vec::new();
        let mut future = Vec::new();
        let mut reference_time = i64::MIN;
        for (n, &(u, i, s, t)) in self.events.iter().enumerate() {
            let (user, item) = (self.users.id(u), self.items.id(i));
            if !is_future(n, t) {
                events.push((users.intern(user), items.intern(item), s, t));
                reference_time = reference_time.max(t);
            } else {
                future.push((user.to_string(), item.to_string(), s));
            }
        }
        let past = Snapshot {
            users,
            items,
            events,
            last_seq: self.last_seq,
            reference_time: if reference_time == i64::MIN {
                self.reference_time
            } else {
                reference_time
            },
        };
        (past, future)
    }

    /// Per item: the time of its first event, and its number of events.
    pub fn item_stats(&self) -> (Vec<i64>, Vec<u32>) {
        let mut first = vec![i64::MAX; self.items.len()];
        let mut count = vec![0u32; self.items.len()];
        for &(_, i, _, t) in &self.events {
            first[i as usize] = first[i as usize].min(t);
            count[i as usize] += 1;
        }
        (first, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two users: `a` with events at times 1-5, `b` with events at times 10-14 (item = time).
    fn log() -> Snapshot {
        let (mut users, mut items) = (IdMap::new(), IdMap::new());
        let mut events = Vec::new();
        for (user, times) in [("a", 1..6), ("b", 10..15)] {
            for t in times {
                let (u, i) = (users.intern(user), items.intern(&format!("i{t}")));
                events.push((u, i, 1.0, t as i64));
            }
        }
        Snapshot {
            users,
            items,
            events,
            last_seq: 10,
            reference_time: 14,
        }
    }

    fn future_items(future: &[(String, String, f32)]) -> Vec<&str> {
        let mut items: Vec<&str> = future.iter().map(|f| f.1.as_str()).collect();
        items.sort_unstable();
        items
    }

    #[test]
    fn sequences_follow_timestamps_not_log_order() {
        let mut b = Snapshot::builder();
        // Logged out of time order; a dislike and a repeat.
        for (user, item, strength, ts) in [
            ("u", "c", 1.0, 30),
            ("u", "a", 1.0, 10),
            ("v", "x", -1.0, 5),
            ("u", "b", 1.0, 20),
            ("u", "a", 1.0, 40),
            ("v", "a", 1.0, 7),
            ("u", "d", 1.0, 30),
        ] {
            b.push(user, item, strength, ts);
        }
        let snap = b.finish(7);
        let names =
            |order: &Vec<u32>| -> Vec<&str> { order.iter().map(|&i| snap.items.id(i)).collect() };
        let seqs = snap.sequences();
        assert_eq!(names(&seqs[0]), ["a", "b", "c", "d"], "ties in log order");
        assert_eq!(names(&seqs[1]), ["a"], "negative events are not steps");
    }

    #[test]
    fn a_time_cut_takes_the_log_s_newest_events() {
        let (past, future) = log().split_newest(0.2);
        assert_eq!(future_items(&future), vec!["i13", "i14"]);
        assert_eq!(past.events.len(), 8);
        assert_eq!(past.reference_time, 12);
    }

    #[test]
    fn user_tails_take_each_user_s_newest_events() {
        let (past, future) = log().split_user_tails(0.2, 5);
        assert_eq!(future_items(&future), vec!["i14", "i5"]);
        assert_eq!(past.events.len(), 8);
        assert_eq!(past.reference_time, 13);
        // Users below the minimum keep all their events.
        let (past, future) = log().split_user_tails(0.2, 6);
        assert!(future.is_empty());
        assert_eq!(past.events.len(), 10);
    }

    #[test]
    fn a_future_event_does_not_make_the_rest_of_the_log_old() {
        use cairn_models::{Popularity, Trending};
        let now = 1_750_000_000;
        let mut b = Snapshot::builder();
        // Item `a`: ten views in the last hour; item `z`: one view stamped in 2199.
        for u in 0..10 {
            b.push(&format!("u{u}"), "a", 1.0, now - 60 * u);
        }
        b.push("mallory", "z", 1.0, 7_258_000_000);
        let mut snapshot = b.finish(11);
        let top = |s: &Snapshot| {
            let timed = s.timed();
            let n = s.items.len();
            let day = 86_400;
            let pop = Popularity::fit(n, &timed, s.reference_time, 30.0 * day as f64);
            let trend = Trending::fit(n, &timed, s.reference_time, day, 7 * day);
            let best = |scores: &[f32]| {
                let i = (0..n)
                    .max_by(|&x, &y| scores[x].total_cmp(&scores[y]))
                    .unwrap();
                s.items.id(i as u32).to_string()
            };
            (best(&pop.scores), best(&trend.scores))
        };
        // Uncapped, "now" is 2199 and the one future view wins both lists.
        assert_eq!(top(&snapshot), ("z".to_string(), "z".to_string()));
        snapshot.cap_reference_time(now);
        assert_eq!(snapshot.reference_time, now);
        assert_eq!(top(&snapshot), ("a".to_string(), "a".to_string()));
    }
}
