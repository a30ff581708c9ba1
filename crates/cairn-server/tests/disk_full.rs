//! A disk that refuses the store's writes, through the real server: the store file's writes go
//! through a `FaultInjector` (`Engine::open_with_faults`). Writes are 507 `storage_full` (or 503
//! `storage_unavailable`) and store nothing, reads are 200, `/readyz` is 503 with the reason and
//! `/healthz` 200, `cairn_store_writable` is 0; once the disk takes writes again the server's
//! probe clears it all, writes are taken, and every acknowledged event is there.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cairn_core::{Event, Item};
use cairn_engine::{Engine, Fault, FaultInjector};
use reqwest::blocking::Client;
use serde_json::{json, Value};

mod common;

const USERS: usize = 10;
const ITEMS: usize = 20;

/// Events `b<n>-<i>` as the API takes them.
fn batch(n: usize, size: usize) -> Value {
    let events: Vec<Value> = (0..size)
        .map(|i| {
            json!({
                "event_id": format!("b{n}-{i}"),
                "user_id": format!("u{}", i % USERS),
                "item_id": format!("i{}", (i * 7 + n) % ITEMS),
                "type": "view",
            })
        })
        .collect();
    json!({ "events": events })
}

struct Api {
    base: String,
    client: Client,
}

impl Api {
    fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .expect("request");
        let status = r.status().as_u16();
        let text = r.text().expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn text(&self, path: &str) -> String {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .and_then(|r| r.text())
            .expect("request")
    }

    fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .json(&body)
            .send()
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().expect("JSON body"))
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body)
    }

    /// Every event id stored, read through the API user by user.
    fn event_ids(&self) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for u in 0..USERS {
            let (status, body) = self.get(&format!("/v1/users/u{u}/events?limit=1000"));
            assert_eq!(status, 200, "{body}");
            for e in body["events"].as_array().expect("events") {
                ids.insert(e["event_id"].as_str().expect("event_id").to_string());
            }
        }
        ids
    }

    /// Polls `/readyz` until it answers `status` (the probe runs every second here).
    fn wait_ready_status(&self, status: u16) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (s, body) = self.get("/readyz");
            if s == status {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "/readyz stayed {s} ({body}), expected {status}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn writable_gauge(&self) -> String {
        let metrics = self.text("/metrics");
        metrics
            .lines()
            .find(|l| l.starts_with("cairn_store_writable "))
            .unwrap_or_else(|| panic!("no cairn_store_writable in {metrics}"))
            .to_string()
    }
}

fn ids(n: usize, size: usize) -> BTreeSet<String> {
    (0..size).map(|i| format!("b{n}-{i}")).collect()
}

/// A server over a store whose disk fails on demand, with a catalog, 100 events and a model.
fn start(faults: &FaultInjector) -> (common::Running, Api) {
    let faults = faults.clone();
    let server = common::Running::start_opened(
        |c| c.server.storage_retry_secs = 1,
        move |c| Engine::open_with_faults(c, &faults).expect("engine opens"),
        |engine| {
            engine
                .put_items((0..ITEMS).map(|i| Item::new(format!("i{i}"))).collect())
                .unwrap();
            let events = (0..100)
                .map(|i| {
                    let mut e =
                        Event::new(format!("u{}", i % USERS), format!("i{}", i % ITEMS), "view");
                    e.event_id = Some(format!("b0-{i}"));
                    e
                })
                .collect();
            engine.add_events(events).unwrap();
            engine.train().unwrap();
        },
    );
    let api = Api {
        base: server.base.clone(),
        client: common::client(),
    };
    (server, api)
}

#[test]
fn a_full_disk_is_507_while_reads_go_on_and_writes_come_back_with_nothing_lost() {
    let faults = FaultInjector::new();
    let (_server, api) = start(&faults);
    let mut acknowledged = ids(0, 100);

    let (status, body) = api.post("/v1/events", batch(1, 20));
    assert_eq!((status, &body["stored"]), (200, &json!(20)), "{body}");
    acknowledged.extend(ids(1, 20));
    assert_eq!(api.get("/readyz").0, 200);
    assert_eq!(api.writable_gauge(), "cairn_store_writable 1");

    faults.fail(Fault::NoSpace);
    let (status, body) = api.post("/v1/events", batch(2, 300));
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["error"]["code"], "storage_full", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("free space") && message.contains("nothing of it was stored"),
        "{message}"
    );
    // Other writes too, at once.
    let (status, body) = api.send(
        reqwest::Method::PUT,
        "/v1/items/new",
        json!({"id": "new", "title": "new"}),
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (507, &json!("storage_full"))
    );

    // The process is alive, but not ready, and says why.
    assert_eq!(api.get("/healthz").0, 200);
    let (status, body) = api.get("/readyz");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "storage_full", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("No space left on device"),
        "{body}"
    );
    assert_eq!(api.writable_gauge(), "cairn_store_writable 0");

    // Reads go on: the catalog, histories, recommendations from the first request.
    assert_eq!(api.get("/v1/items/i3").0, 200);
    assert_eq!(api.event_ids(), acknowledged);
    let (status, body) = api.get("/v1/users/u1/recommendations?k=5");
    assert_eq!(status, 200, "{body}");
    assert!(!body["items"].as_array().unwrap().is_empty(), "{body}");
    assert_eq!(api.get("/v1/popular?k=5").0, 200);

    // The probe keeps trying while the disk is full, and readiness stays honest.
    let tried = faults.refused();
    let deadline = Instant::now() + Duration::from_secs(30);
    while faults.refused() == tried {
        assert!(Instant::now() < deadline, "the probe never tried the disk");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(api.get("/readyz").0, 503);

    faults.heal();
    let body = api.wait_ready_status(200);
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(api.writable_gauge(), "cairn_store_writable 1");
    let (status, body) = api.post("/v1/events", batch(2, 300));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["stored"], &body["duplicates"]),
        (&json!(300), &json!(0)),
        "nothing of the refused batch had been stored"
    );
    acknowledged.extend(ids(2, 300));
    assert_eq!(api.event_ids(), acknowledged, "0 acknowledged events lost");
}

#[test]
fn an_io_error_is_503_storage_unavailable_and_clears_when_the_disk_works() {
    let faults = FaultInjector::new();
    let (_server, api) = start(&faults);
    faults.fail(Fault::Io);
    let (status, body) = api.post("/v1/events", batch(1, 50));
    assert_eq!(
        (status, &body["error"]["code"]),
        (503, &json!("storage_unavailable")),
        "{body}"
    );
    let (status, body) = api.get("/readyz");
    assert_eq!(
        (status, &body["error"]["code"]),
        (503, &json!("storage_unavailable")),
        "{body}"
    );
    assert_eq!(api.get("/healthz").0, 200);
    assert_eq!(api.event_ids(), ids(0, 100));
    faults.heal();
    api.wait_ready_status(200);
    let (status, body) = api.post("/v1/events", batch(1, 50));
    assert_eq!((status, &body["stored"]), (200, &json!(50)), "{body}");
    let mut want = ids(0, 100);
    want.extend(ids(1, 50));
    assert_eq!(api.event_ids(), want);
}
