//! Streaming ingestion from Redis (`[stream]`): each test starts a real `redis-server` on a free
//! loopback port in a temporary folder (no persistence) and the real server with the consumer on,
//! and skips, saying why, when `redis-server` is not installed (`apt-get install redis-server`;
//! `.ci/run` installs it).

mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_core::{Event, Item};
use cairn_engine::Config;
use common::{client, Running};
use serde_json::{json, Value};

const KEY: &str = "shop:events";
const GROUP: &str = "cairn";

/// A throwaway `redis-server`, killed when dropped.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// A server on a free port, or `None` (with the reason printed) when none is installed.
    fn start() -> Option<Redis> {
        if !installed() {
            return None;
        }
        Some(Redis::start_on(free_port()))
    }

    fn start_on(port: u16) -> Redis {
        let dir = tempfile::tempdir().expect("temp dir");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let redis = Redis {
            child,
            port,
            _dir: dir,
        };
        wait_until("redis-server answers PING", || {
            redis
                .try_con()
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c).ok())
                .is_some()
        });
        redis
    }

    fn url(&self) -> String {
        url(self.port)
    }

    fn try_con(&self) -> Option<redis::Connection> {
        redis::Client::open(self.url()).ok()?.get_connection().ok()
    }

    fn con(&self) -> redis::Connection {
        self.try_con().expect("connect to redis-server")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn installed() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!(
            "skipped: redis-server is not installed (apt-get install redis-server); the stream \
             consumer's tests need a real Redis"
        );
    }
    found
}

fn url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}")
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Polls `ok` until it holds; panics after 60 s (a bound on a hang, not a performance check).
fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of the metric line `name` (no labels) on `/metrics`.
fn metric(server: &Running, name: &str) -> Option<f64> {
    let text = client()
        .get(format!("{}/metrics", server.base))
        .send()
        .ok()?
        .text()
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Waits until the consumer has read everything: lag 0, nothing pending, and
/// `cairn_stream_entries_total` at `entries`.
fn wait_drained(server: &Running, entries: u64) {
    wait_until(&format!("{entries} entries acknowledged, lag 0"), || {
        metric(server, "cairn_stream_entries_total") == Some(entries as f64)
            && metric(server, "cairn_stream_lag") == Some(0.0)
            && metric(server, "cairn_stream_pending") == Some(0.0)
    });
}

fn stream_config(c: &mut Config, url: String) {
    c.stream.redis_url = Some(url);
    c.stream.key = KEY.into();
    c.stream.group = GROUP.into();
    c.stream.consumer = Some("c1".into());
    c.stream.batch = 7;
    c.stream.block_ms = 100;
    c.stream.max_backoff_ms = 200;
    // No model needed: keep the background quiet.
    c.train.interval_secs = 0;
}

fn items(engine: &cairn_engine::Engine) {
    let items = (0..10).map(|i| Item::new(format!("i{i}"))).collect();
    engine.put_items(items).unwrap();
}

fn xadd(con: &mut redis::Connection, data: &str) -> String {
    redis::cmd("XADD")
        .arg(KEY)
        .arg("*")
        .arg("data")
        .arg(data)
        .query(con)
        .expect("XADD")
}

fn event(user: &str, item: &str, ts: i64) -> Value {
    json!({"user_id": user, "item_id": item, "type": "view", "timestamp": ts})
}

fn history(server: &Running, user: &str) -> Vec<Value> {
    let body: Value = client()
        .get(format!("{}/v1/users/{user}/events?limit=1000", server.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    body["events"].as_array().cloned().unwrap_or_default()
}

#[test]
fn events_added_to_the_stream_are_stored_and_the_lag_drops_to_zero() {
    let Some(redis) = Redis::start() else { return };
    let mut con = redis.con();
    // Entries added before Cairn first starts are read too (the group starts at 0).
    for n in 0..5 {
        xadd(
            &mut con,
            &event("early", "i1", 1_700_000_000 + n).to_string(),
        );
    }
    let server = Running::start(|c| stream_config(c, redis.url()), items);
    for n in 0..30i64 {
        let user = format!("u{}", n % 3);
        let item = format!("i{}", n % 10);
        xadd(
            &mut con,
            &event(&user, &item, 1_700_000_100 + n).to_string(),
        );
    }
    // The body of POST /v1/events, as one entry; a client id is kept.
    let mut with_id = event("u0", "i9", 1_700_000_500);
    with_id["event_id"] = json!("client-1");
    let batch = json!({"events": [event("u0", "i8", 1_700_000_400), with_id]});
    xadd(&mut con, &batch.to_string());

    wait_drained(&server, 36);
    assert_eq!(
        metric(&server, "cairn_stream_events_stored_total"),
        Some(37.0)
    );
    assert_eq!(
        metric(&server, "cairn_stream_dead_letters_total"),
        Some(0.0)
    );
    assert_eq!(metric(&server, "cairn_stream_connected"), Some(1.0));
    assert_eq!(metric(&server, "cairn_events"), Some(37.0));
    assert_eq!(history(&server, "early").len(), 5);
    assert_eq!(history(&server, "u1").len(), 10);
    let u0 = history(&server, "u0");
    assert_eq!(u0.len(), 12);
    let ids: Vec<&str> = u0.iter().filter_map(|e| e["event_id"].as_str()).collect();
    assert!(ids.contains(&"client-1"), "{ids:?}");
    assert!(
        ids.iter()
            .all(|id| *id == "client-1" || id.starts_with("shop:events:")),
        "events without an id get one from their entry: {ids:?}"
    );
    // The group agrees: nothing pending.
    let pending: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(KEY)
        .arg(GROUP)
        .arg("-")
        .arg("+")
        .arg(100)
        .query(&mut con)
        .unwrap();
    assert!(pending.is_empty(), "{pending:?}");
}

#[test]
fn entries_read_but_not_acknowledged_are_stored_exactly_once() {
    let Some(redis) = Redis::start() else { return };
    let mut con = redis.con();
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(KEY)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query(&mut con)
        .unwrap();
    // 20 entries: 10 with a client id, 10 without.
    let mut ids = Vec::new();
    for n in 0..20i64 {
        let mut e = event("u", &format!("i{}", n % 10), 1_700_000_000 + n);
        if n < 10 {
            e["event_id"] = json!(format!("e{n}"));
        }
        ids.push(xadd(&mut con, &e.to_string()));
    }
    // Consumer c1 reads them all and dies before acknowledging: they stay pending for c1.
    let read_as = |con: &mut redis::Connection, consumer: &str| {
        let _: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(1000)
            .arg("STREAMS")
            .arg(KEY)
            .arg(">")
            .query(con)
            .unwrap();
    };
    read_as(&mut con, "c1");
    // Five more entries, read by consumer `gone` that never comes back.
    for n in 20..25i64 {
        xadd(&mut con, &event("u", "i0", 1_700_000_000 + n).to_string());
    }
    read_as(&mut con, "gone");
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_path_buf();
    let configure = |c: &mut Config| {
        stream_config(c, redis.url());
        c.data_dir = data_dir.clone();
        c.stream.claim_idle_ms = 200;
    };
    // Before dying, c1 had stored half of what it read (its write was acknowledged, its XACK
    // never sent): events 0..5 with their client ids, and entries 10..15 with the ids the
    // consumer derives from their entry ids.
    let stored_before = |engine: &cairn_engine::Engine| {
        items(engine);
        let mut events = Vec::new();
        for n in (0..5).chain(10..15) {
            let mut e = Event::new("u", format!("i{}", n % 10), "view").at(1_700_000_000 + n);
            e.event_id = Some(if n < 10 {
                format!("e{n}")
            } else {
                format!("{KEY}:{}:0", ids[n as usize])
            });
            events.push(e);
        }
        engine.add_events(events).unwrap();
    };
    let server = Running::start(configure, stored_before);
    wait_drained(&server, 25);
    // c1's 20 pending entries: 10 stored now, 10 found stored before; `gone`'s 5 claimed.
    assert_eq!(
        metric(&server, "cairn_stream_events_stored_total"),
        Some(15.0)
    );
    assert_eq!(
        metric(&server, "cairn_stream_events_duplicate_total"),
        Some(10.0)
    );
    assert_eq!(metric(&server, "cairn_events"), Some(25.0));
    assert_eq!(history(&server, "u").len(), 25);
    drop(server);

    // A restart reads nothing again: everything was acknowledged.
    let server = Running::start(configure, |_| {});
    xadd(&mut con, &event("u", "i3", 1_700_000_100).to_string());
    wait_drained(&server, 1);
    assert_eq!(
        metric(&server, "cairn_stream_events_stored_total"),
        Some(1.0)
    );
    assert_eq!(
        metric(&server, "cairn_stream_events_duplicate_total"),
        Some(0.0)
    );
    assert_eq!(history(&server, "u").len(), 26);
}

#[test]
fn bad_entries_go_to_the_dead_letters_with_their_reason_and_the_rest_is_stored() {
    let Some(redis) = Redis::start() else { return };
    let mut con = redis.con();
    let server = Running::start(|c| stream_config(c, redis.url()), items);
    let good = |n: i64| event("u", "i1", 1_700_000_000 + n).to_string();
    xadd(&mut con, &good(0));
    let bad_json = xadd(&mut con, "{\"user_id\": ");
    let bad_type = xadd(
        &mut con,
        &json!({"user_id": "u", "item_id": "i1", "type": "teleport"}).to_string(),
    );
    xadd(&mut con, &good(1));
    let bad_item = xadd(
        &mut con,
        &json!({"user_id": "u", "item_id": "nope", "type": "view"}).to_string(),
    );
    let no_data: String = redis::cmd("XADD")
        .arg(KEY)
        .arg("*")
        .arg("payload")
        .arg(good(9))
        .query(&mut con)
        .unwrap();
    // One bad event spoils its entry (a batch is stored whole or not at all, as over HTTP).
    let bad_batch = xadd(
        &mut con,
        &json!({"events": [event("u", "i2", 1_700_000_010), event("u", "missing", 1_700_000_011)]})
            .to_string(),
    );
    xadd(&mut con, &good(2));

    wait_drained(&server, 8);
    assert_eq!(
        metric(&server, "cairn_stream_dead_letters_total"),
        Some(5.0)
    );
    assert_eq!(
        metric(&server, "cairn_stream_events_stored_total"),
        Some(3.0)
    );
    assert_eq!(history(&server, "u").len(), 3);

    let dead: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
        .arg(format!("{KEY}:dead"))
        .arg("-")
        .arg("+")
        .query(&mut con)
        .unwrap();
    let reasons: Vec<(String, String, Option<String>)> = dead
        .iter()
        .map(|(_, fields)| {
            (
                fields["id"].clone(),
                fields["reason"].clone(),
                fields.get("data").cloned(),
            )
        })
        .collect();
    let reason_of = |id: &str| {
        reasons
            .iter()
            .find(|(i, _, _)| i == id)
            .unwrap_or_else(|| panic!("{id} in {reasons:?}"))
            .clone()
    };
    assert!(reason_of(&bad_json).1.starts_with("malformed_json"));
    assert_eq!(reason_of(&bad_json).2.as_deref(), Some("{\"user_id\": "));
    assert!(reason_of(&bad_type).1.contains("teleport"), "{reasons:?}");
    let item = reason_of(&bad_item).1;
    assert!(
        item.starts_with("invalid_argument: events[0].item_id: item `nope`"),
        "{item}"
    );
    assert!(
        reason_of(&no_data).1.contains("no `data` field"),
        "{reasons:?}"
    );
    let batch = reason_of(&bad_batch);
    assert!(batch.1.contains("missing"), "{batch:?}");
    assert!(
        batch.2.unwrap().contains("\"i2\""),
        "the entry is kept whole"
    );
}

#[test]
fn redis_down_is_a_metric_not_a_readiness_failure_and_the_consumer_reconnects() {
    if !installed() {
        return;
    }
    let port = free_port();
    let server = Running::start(|c| stream_config(c, url(port)), items);
    wait_until("two failed connections are counted", || {
        metric(&server, "cairn_stream_reconnects_total").is_some_and(|n| n >= 2.0)
    });
    assert_eq!(metric(&server, "cairn_stream_connected"), Some(0.0));
    let ready = client()
        .get(format!("{}/readyz", server.base))
        .send()
        .unwrap();
    assert_eq!(ready.status(), 200);

    let redis = Redis::start_on(port);
    let mut con = redis.con();
    xadd(&mut con, &event("u", "i1", 1_700_000_000).to_string());
    wait_drained(&server, 1);
    assert_eq!(metric(&server, "cairn_stream_connected"), Some(1.0));
    assert_eq!(history(&server, "u").len(), 1);

    // Redis goes away under a connected consumer: counted, then back again.
    let before = metric(&server, "cairn_stream_reconnects_total").unwrap();
    drop(con);
    drop(redis);
    wait_until("the dropped connection is counted", || {
        metric(&server, "cairn_stream_reconnects_total").is_some_and(|n| n > before)
            && metric(&server, "cairn_stream_connected") == Some(0.0)
    });
    let redis = Redis::start_on(port);
    let mut con = redis.con();
    xadd(&mut con, &event("v", "i2", 1_700_000_001).to_string());
    wait_until("the event after the restart is stored", || {
        history(&server, "v").len() == 1
    });
}
