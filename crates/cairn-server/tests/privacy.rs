//! Privacy over HTTP, through the real server: `DELETE /v1/users/{id}` erases the user (store,
//! cursor pages, audit log), `POST /v1/compact` takes the bytes out of the store file while
//! serving, and pseudonymised ids keep raw ids out of the store while the raw id works.

use std::path::Path;

use cairn_core::{Event, Item};
use cairn_engine::Engine;
use serde_json::{json, Value};

mod common;

const GONE: &str = "http-erased-6b0f2d9a";

fn occurrences(path: &Path, needle: &str) -> usize {
    let bytes = std::fs::read(path).unwrap();
    bytes
        .windows(needle.len())
        .filter(|w| *w == needle.as_bytes())
        .count()
}

/// 30 items; users u0..u19 with events, and `user` with 40.
fn seed(engine: &Engine, user: &str) {
    engine
        .put_items((0..30).map(|i| Item::new(format!("i{i}"))).collect())
        .unwrap();
    let mut events: Vec<Event> = (0..20)
        .flat_map(|u| {
            (0..6).map(move |i| Event::new(format!("u{u}"), format!("i{}", (u + i) % 30), "view"))
        })
        .collect();
    events.extend((0..40).map(|i| Event::new(user, format!("i{}", i % 10), "view")));
    engine.add_events(events).unwrap();
    engine.train().unwrap();
}

fn call(client: &reqwest::blocking::Client, method: reqwest::Method, url: String) -> (u16, Value) {
    let r = client.request(method, url).send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

#[test]
fn delete_erases_everywhere_and_compaction_leaves_no_byte_while_serving() {
    let server = common::Running::start(|c| c.serve.list_window = 30, |engine| seed(engine, GONE));
    let base = server.base.clone();
    let client = common::client();
    let get = reqwest::Method::GET;
    let (status, first) = call(
        &client,
        get.clone(),
        format!("{base}/v1/users/{GONE}/recommendations?k=5"),
    );
    assert_eq!(status, 200, "{first}");
    let cursor = first["next_cursor"].as_str().expect("a cursor").to_string();
    let (status, history) = call(
        &client,
        get.clone(),
        format!("{base}/v1/users/{GONE}/events"),
    );
    assert_eq!(
        (status, history["events"].as_array().unwrap().len()),
        (200, 40)
    );

    let (status, erased) = call(
        &client,
        reqwest::Method::DELETE,
        format!("{base}/v1/users/{GONE}"),
    );
    assert_eq!(status, 200, "{erased}");
    assert_eq!(erased["events_removed"], 40);

    // The audit log keeps the reads of the user's data and the erasure itself, without the id.
    let audit = || {
        let (_, log) = call(
            &client,
            reqwest::Method::GET,
            format!("{base}/v1/audit?limit=100"),
        );
        log.to_string()
    };
    let log = audit();
    assert!(!log.contains(GONE), "{log}");
    assert!(log.contains("DELETE /v1/users/[erased]"), "{log}");
    assert!(log.contains("GET /v1/users/[erased]/events"), "{log}");
    // The cursor's kept pages went with the user.
    let (status, page) = call(
        &client,
        get.clone(),
        format!("{base}/v1/users/{GONE}/recommendations?k=5&cursor={cursor}"),
    );
    assert_eq!(status, 410, "{page}");
    assert_eq!(page["error"]["code"], "cursor_expired");
    let (status, history) = call(
        &client,
        get.clone(),
        format!("{base}/v1/users/{GONE}/events"),
    );
    assert_eq!(
        (status, history["events"].as_array().unwrap().len()),
        (200, 0)
    );
    // That lookup is an admin request about the id, audited with it; erasing again (404, nothing
    // is stored) scrubs it.
    assert!(audit().contains(GONE));
    let (status, again) = call(
        &client,
        reqwest::Method::DELETE,
        format!("{base}/v1/users/{GONE}"),
    );
    assert_eq!(
        (status, &again["error"]["code"]),
        (404, &json!("user_not_found"))
    );
    assert!(!audit().contains(GONE));

    let (status, compacted) = call(&client, reqwest::Method::POST, format!("{base}/v1/compact"));
    assert_eq!(status, 200, "{compacted}");
    assert_eq!(compacted["users"], 0);
    // Serving goes on over the rewritten file, writes included.
    let (status, _) = call(
        &client,
        get,
        format!("{base}/v1/users/u1/recommendations?k=5"),
    );
    assert_eq!(status, 200);
    let r = client
        .post(format!("{base}/v1/events"))
        .json(&json!({ "events": [{ "user_id": "u1", "item_id": "i29", "type": "view" }] }))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let dir = server.stop();
    assert_eq!(occurrences(&dir.path().join("cairn.redb"), GONE), 0);
}

#[test]
fn pseudonymised_ids_over_http_keep_raw_ids_out_of_the_store() {
    let raw = "carol-raw-55e0c1";
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("key");
    std::fs::write(&key_file, "0123456789abcdef0123456789abcdef").unwrap();
    let server = common::Running::start(
        |c| {
            c.privacy.pseudonymize_user_ids = true;
            c.privacy.hmac_key_file = Some(key_file.clone());
        },
        |engine| {
            engine
                .put_items((0..30).map(|i| Item::new(format!("i{i}"))).collect())
                .unwrap();
        },
    );
    let base = server.base.clone();
    let client = common::client();
    let events: Vec<Value> = (0..20)
        .flat_map(|u| {
            (0..6).map(move |i| json!({"user_id": format!("u{u}"), "item_id": format!("i{}", (u + i) % 30), "type": "view"}))
        })
        .chain((0..8).map(|i| json!({"user_id": raw, "item_id": format!("i{i}"), "type": "view"})))
        .collect();
    let r = client
        .post(format!("{base}/v1/events"))
        .json(&json!({ "events": events }))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());
    let r = client
        .put(format!("{base}/v1/users/{raw}"))
        .json(&json!({ "properties": { "tier": "gold" } }))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        client
            .post(format!("{base}/v1/train"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );

    let (status, list) = call(
        &client,
        reqwest::Method::GET,
        format!("{base}/v1/users/{raw}/recommendations?k=5"),
    );
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    // Seen items are left out: the raw id found its history under the pseudonym.
    for item in items {
        let n: usize = item["item_id"].as_str().unwrap()[1..].parse().unwrap();
        assert!(n >= 8, "{list}");
    }
    let (_, user) = call(
        &client,
        reqwest::Method::GET,
        format!("{base}/v1/users/{raw}"),
    );
    assert_eq!(user["id"], raw);
    let (_, history) = call(
        &client,
        reqwest::Method::GET,
        format!("{base}/v1/users/{raw}/events"),
    );
    assert_eq!(history["events"].as_array().unwrap().len(), 8);

    let dir = server.stop();
    assert_eq!(occurrences(&dir.path().join("cairn.redb"), raw), 0);
}
