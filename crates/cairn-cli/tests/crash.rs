//! Durability: events acknowledged by `cairn serve` survive `kill -9`, and a batch is stored whole or
//! not at all. Runs the real binary on a loopback port.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

mod common;

struct Server {
    child: Child,
    base: String,
}

fn start(data_dir: &Path) -> Server {
    let (child, base) = common::serve(data_dir);
    Server { child, base }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

const WRITERS: usize = 4;
const BATCH: usize = 5;
const MAX_BATCHES: usize = 150;

#[test]
fn acknowledged_events_survive_kill_9_and_batches_stay_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let http = client();
    let items: Vec<Value> = (0..10).map(|i| json!({"id": format!("i{i}")})).collect();
    let r = http
        .post(format!("{}/v1/items", server.base))
        .json(&json!({ "items": items }))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());

    // Each writer posts batches of events with client ids until the server dies.
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let sent: Arc<Mutex<HashMap<String, usize>>> = Arc::default(); // event id -> batch number
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (acked, sent, base) = (acked.clone(), sent.clone(), server.base.clone());
            thread::spawn(move || {
                let http = client();
                for b in 0..MAX_BATCHES {
                    let ids: Vec<String> = (0..BATCH).map(|j| format!("w{w}-b{b}-e{j}")).collect();
                    let events: Vec<Value> = ids
                        .iter()
                        .enumerate()
                        .map(|(j, id)| {
                            json!({"event_id": id, "user_id": format!("u{w}"), "item_id": format!("i{j}"), "type": "view"})
                        })
                        .collect();
                    {
                        let mut sent = sent.lock().unwrap();
                        for id in &ids {
                            sent.insert(id.clone(), w * MAX_BATCHES + b);
                        }
                    }
                    match http.post(format!("{base}/v1/events")).json(&json!({ "events": events })).send() {
                        Ok(r) if r.status().is_success() => acked.lock().unwrap().extend(ids),
                        _ => return,
                    }
                }
            })
        })
        .collect();

    // Let some batches be acknowledged, then kill -9 mid-stream.
    while acked.lock().unwrap().len() < 40 * BATCH {
        thread::sleep(Duration::from_millis(5));
    }
    server.child.kill().unwrap(); // SIGKILL on Unix
    server.child.wait().unwrap();
    for w in writers {
        w.join().unwrap();
    }

    let mut server = start(dir.path());
    let mut present = BTreeSet::new();
    for w in 0..WRITERS {
        let events: Value = http
            .get(format!("{}/v1/users/u{w}/events?limit=1000", server.base))
            .send()
            .unwrap()
            .json()
            .unwrap();
        for e in events["events"].as_array().expect("an events array") {
            present.insert(e["event_id"].as_str().unwrap().to_string());
        }
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let acked = acked.lock().unwrap();
    let sent = sent.lock().unwrap();
    let lost: Vec<_> = acked.difference(&present).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    // Anything stored beyond the acknowledged events belongs to batches in flight at the kill, and
    // those batches are present whole.
    let mut extra_batches: HashMap<usize, usize> = HashMap::new();
    for id in present.difference(&acked) {
        let batch = sent
            .get(id)
            .unwrap_or_else(|| panic!("stored but never sent: {id}"));
        *extra_batches.entry(*batch).or_default() += 1;
    }
    assert!(extra_batches.len() <= WRITERS, "{extra_batches:?}");
    for (batch, n) in extra_batches {
        assert_eq!(n, BATCH, "batch {batch} stored partially");
    }
    assert!(acked.len() >= 40 * BATCH);
}
