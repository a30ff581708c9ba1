//! Durability: events acknowledged by `cairn serve` survive `kill -9`, a batch is stored whole or not
//! at all, and a batch retried with its event ids after a crash is stored once. Runs the real binary
//! on a loopback port.
//!
//! Several writers post batches of events with client ids as fast as the server takes them; after a
//! seeded, varying number of acknowledged batches the server is killed with SIGKILL while they keep
//! posting, and restarted. Each writer first retries its batch that was in flight at the kill (same
//! event ids: the answer's `duplicates` says whether the batch had been stored before the kill, and
//! must be all of it or none), then goes on. After the last cycle every in-flight batch is retried
//! once more and the events are counted through the API (each writer's user history, paged, and the
//! server's event count): no acknowledged event may be missing, and no event id may be stored twice.
//!
//! `CAIRN_CRASH_CYCLES` sets the number of kill -9 cycles (3 by default, for CI);
//! `scripts/crash-cycles.sh` runs 20 and prints the tally (docs/RELIABILITY.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

mod common;

const WRITERS: usize = 4;
const BATCH: usize = 10;
const ITEMS: usize = 10;

fn cycles() -> usize {
    std::env::var("CAIRN_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A small seeded generator (xorshift64*), so that the moments of the kills are the same every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// One writer's progress, carried across the cycles.
#[derive(Default)]
struct Writer {
    id: usize,
    /// Number of the next new batch.
    next: usize,
    /// The batch sent when the server died, unanswered: retried first after the restart.
    in_flight: Option<usize>,
    acked: BTreeSet<String>,
    /// Retried batches the server had stored before the kill (all duplicates)...
    stored_before_kill: usize,
    /// ...and those it had not (no duplicates).
    not_stored_before_kill: usize,
    /// Retries that found part of their batch stored: must stay empty.
    partial: Vec<String>,
    /// Answers other than 200 while the server was up: must stay empty.
    refused: Vec<String>,
}

impl Writer {
    fn ids(&self, batch: usize) -> Vec<String> {
        (0..BATCH)
            .map(|j| format!("w{}-b{batch}-e{j}", self.id))
            .collect()
    }

    fn body(&self, batch: usize) -> Value {
        let events: Vec<Value> = self
            .ids(batch)
            .into_iter()
            .enumerate()
            .map(|(j, id)| {
                json!({"event_id": id, "user_id": format!("u{}", self.id),
                       "item_id": format!("i{}", (batch + j) % ITEMS), "type": "view"})
            })
            .collect();
        json!({ "events": events })
    }

    /// Posts `batch`. `false` when the server did not answer (it is gone): the batch stays in flight.
    fn post(&mut self, http: &reqwest::blocking::Client, base: &str, batch: usize) -> bool {
        let retry = self.in_flight == Some(batch);
        self.in_flight = Some(batch);
        let response = match http
            .post(format!("{base}/v1/events"))
            .json(&self.body(batch))
            .send()
        {
            Ok(r) => r,
            Err(_) => return false,
        };
        let status = response.status();
        let text = response.text().unwrap_or_default();
        if !status.is_success() {
            self.refused.push(format!("batch {batch}: {status} {text}"));
            return false;
        }
        let Ok(answer) = serde_json::from_str::<Value>(&text) else {
            // The connection broke while the body was read: the answer is lost, as at a kill.
            return false;
        };
        let duplicates = answer["duplicates"].as_u64().unwrap_or(u64::MAX) as usize;
        let stored = answer["stored"].as_u64().unwrap_or(u64::MAX) as usize;
        match (retry, duplicates) {
            _ if stored.checked_add(duplicates) != Some(BATCH) => {
                self.partial.push(format!("batch {batch}: {text}"));
            }
            (true, 0) => self.not_stored_before_kill += 1,
            (true, BATCH) => self.stored_before_kill += 1,
            (false, 0) => {}
            _ => self
                .partial
                .push(format!("batch {batch} (retry: {retry}): {text}")),
        }
        self.acked.extend(self.ids(batch));
        self.in_flight = None;
        if batch == self.next {
            self.next += 1;
        }
        true
    }

    /// Retries the in-flight batch, then posts new batches until the server stops answering.
    fn run(mut self, base: String, acked_batches: Arc<AtomicUsize>) -> Writer {
        let http = client();
        if let Some(batch) = self.in_flight {
            if !self.post(&http, &base, batch) {
                return self;
            }
        }
        loop {
            let batch = self.next;
            if !self.post(&http, &base, batch) {
                return self;
            }
            acked_batches.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Server {
    child: Child,
    base: String,
}

fn start(data_dir: &Path) -> Server {
    let (child, base) = common::serve(data_dir);
    Server { child, base }
}

impl Server {
    fn kill_9(mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
    }
}

/// Every event id stored for `user`, paging through the history; ids seen twice are returned twice.
fn stored_ids(http: &reqwest::blocking::Client, base: &str, user: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = http
            .get(format!(
                "{base}/v1/users/{user}/events?limit=1000&cursor={cursor}"
            ))
            .send()
            .unwrap()
            .json()
            .unwrap();
        for e in page["events"].as_array().expect("an events array") {
            ids.push(e["event_id"].as_str().expect("an event id").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return ids,
        }
    }
}

fn event_count(http: &reqwest::blocking::Client, base: &str) -> u64 {
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("cairn_events "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .expect("the cairn_events gauge") as u64
}

#[test]
fn acknowledged_events_survive_kill_9_cycles_and_retries_store_once() {
    let cycles = cycles();
    let dir = tempfile::tempdir().unwrap();
    let http = client();
    let mut rng = Rng(0x5eed_c0de_0000_0001);

    let server = start(dir.path());
    let items: Vec<Value> = (0..ITEMS).map(|i| json!({"id": format!("i{i}")})).collect();
    let r = http
        .post(format!("{}/v1/items", server.base))
        .json(&json!({ "items": items }))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());

    let mut writers: Vec<Writer> = (0..WRITERS)
        .map(|id| Writer {
            id,
            ..Writer::default()
        })
        .collect();
    let mut server = Some(server);
    let mut in_flight_at_kills = 0;
    for _ in 0..cycles {
        let running = server.take().unwrap_or_else(|| start(dir.path()));
        let acked_batches = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = writers
            .drain(..)
            .map(|w| {
                let (base, acked) = (running.base.clone(), acked_batches.clone());
                thread::spawn(move || w.run(base, acked))
            })
            .collect();
        // Kill after a varying number of acknowledged batches, a varying moment after that.
        let target = 20 + rng.below(100) as usize;
        while acked_batches.load(Ordering::Relaxed) < target
            && !threads.iter().all(|t| t.is_finished())
        {
            thread::sleep(Duration::from_millis(1));
        }
        thread::sleep(Duration::from_millis(rng.below(20)));
        running.kill_9();
        writers = threads.into_iter().map(|t| t.join().unwrap()).collect();
        in_flight_at_kills += writers.iter().filter(|w| w.in_flight.is_some()).count();
    }

    // The last restart: retry what was in flight, then count.
    let server = start(dir.path());
    for w in &mut writers {
        if let Some(batch) = w.in_flight {
            assert!(w.post(&http, &server.base, batch), "the final retry failed");
        }
    }
    let mut lost = 0;
    let mut duplicated = 0;
    let mut unknown = 0;
    let mut stored_total = 0;
    for w in &writers {
        let ids = stored_ids(&http, &server.base, &format!("u{}", w.id));
        stored_total += ids.len();
        let mut seen = BTreeMap::<&str, usize>::new();
        for id in &ids {
            *seen.entry(id).or_default() += 1;
        }
        duplicated += seen
            .values()
            .filter(|&&n| n > 1)
            .map(|n| n - 1)
            .sum::<usize>();
        lost += w
            .acked
            .iter()
            .filter(|id| !seen.contains_key(id.as_str()))
            .count();
        unknown += seen.keys().filter(|id| !w.acked.contains(**id)).count();
    }
    let counted = event_count(&http, &server.base);
    server.kill_9();

    let acked: usize = writers.iter().map(|w| w.acked.len()).sum();
    let before: usize = writers.iter().map(|w| w.stored_before_kill).sum();
    let not_before: usize = writers.iter().map(|w| w.not_stored_before_kill).sum();
    println!(
        "crash cycles: {cycles} kill -9 cycles, {WRITERS} writers, batches of {BATCH}; \
         {acked} events acknowledged, {stored_total} stored (server count {counted}); \
         {in_flight_at_kills} batches in flight at the kills, retried with their ids: \
         {before} had been stored whole before the kill, {not_before} not at all; \
         lost {lost}, duplicated {duplicated}, stored but never acknowledged {unknown}"
    );
    for w in &writers {
        assert!(w.refused.is_empty(), "refused while up: {:?}", w.refused);
        assert!(
            w.partial.is_empty(),
            "partly stored batches: {:?}",
            w.partial
        );
    }
    assert_eq!(lost, 0, "acknowledged events lost");
    assert_eq!(duplicated, 0, "events stored twice");
    assert_eq!(unknown, 0, "events stored that no acknowledged batch holds");
    assert_eq!(stored_total, acked);
    assert_eq!(counted as usize, acked, "the server's event count");
    assert!(
        acked >= cycles * 20 * BATCH,
        "too little was written: {acked}"
    );
}
