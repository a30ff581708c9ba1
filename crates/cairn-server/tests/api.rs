//! End-to-end tests: the real server on 127.0.0.1:0 over an engine on a temporary directory, driven
//! over HTTP. Data is small and generated: two clusters of users and items ("alpha" and "beta"), where
//! alpha users only touch alpha items and beta users only beta items, so good recommendations are
//! checkable by cluster.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use cairn_core::{Event, Item};
use cairn_engine::{Config, Engine};
use reqwest::blocking::Client;
use reqwest::Method;
use serde_json::{json, Value};

// ----- harness -----

mod common;

struct TestServer {
    base: String,
    client: Client,
    _server: common::Running,
}

struct Reply {
    status: u16,
    content_type: String,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status, self.text
            )
        })
    }

    /// Asserts this is a JSON error with the given status and code; returns the error object.
    fn expect_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "wrong status; body: {}", self.text);
        assert!(
            self.content_type.starts_with("application/json"),
            "error is not JSON ({}): {}",
            self.content_type,
            self.text
        );
        let body = self.json();
        if std::env::var("SHOW").is_ok() {
            eprintln!("{} {}", self.status, self.text);
        }
        let error = &body["error"];
        assert_eq!(error["code"], code, "wrong code; body: {}", self.text);
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "no message: {}",
            self.text
        );
        error.clone()
    }

    fn expect_ok(&self) -> Value {
        assert!(
            (200..300).contains(&self.status),
            "expected success, got {}: {}",
            self.status,
            self.text
        );
        if self.text.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }
}

/// The home placement without exploration and per-category limit, so that lists are the relevance
/// order; those rules are tested in the engine's tests.
fn plain(config: &mut Config) {
    let home = config
        .serve
        .placements
        .get_mut("home")
        .expect("home placement");
    home.exploration = 0.0;
    home.max_per_category = 0;
}

impl TestServer {
    fn start() -> TestServer {
        Self::start_with(plain, |_| {})
    }

    /// `configure` adjusts the configuration; `prepare` writes to the engine before serving starts.
    fn start_with(
        configure: impl FnOnce(&mut Config),
        prepare: impl FnOnce(&Engine),
    ) -> TestServer {
        let server = common::Running::start(configure, prepare);
        TestServer {
            base: server.base.clone(),
            client: common::client(),
            _server: server,
        }
    }

    fn raw(&self, method: Method, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.body(body).send().expect("request sent");
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().expect("body read");
        Reply {
            status,
            content_type,
            text,
        }
    }

    fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        match body {
            Some(b) => self.raw(
                method,
                path,
                Some("application/json"),
                b.to_string().into_bytes(),
            ),
            None => self.raw(method, path, None, Vec::new()),
        }
    }

    fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None)
    }

    fn put(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(body))
    }

    fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body))
    }

    fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None)
    }

    fn train(&self) -> Value {
        self.send(Method::POST, "/v1/train", None).expect_ok()
    }

    /// Ids of a recommendation list, after checking the response's shape.
    fn list_ids(&self, path: &str) -> Vec<String> {
        let body = self.get(path).expect_ok();
        assert!(
            body["recommendation_id"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{body}"
        );
        assert!(body.get("model_version").is_some(), "{body}");
        body["items"]
            .as_array()
            .expect("items array")
            .iter()
            .map(|r| {
                assert!(r["score"].is_number(), "{r}");
                assert!(r["source"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
                assert!(r["reason"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
                r["item_id"].as_str().expect("item_id").to_string()
            })
            .collect()
    }

    fn list_sources(&self, path: &str) -> Vec<String> {
        let body = self.get(path).expect_ok();
        body["items"]
            .as_array()
            .expect("items array")
            .iter()
            .map(|r| r["source"].as_str().expect("source").to_string())
            .collect()
    }

    fn item_count(&self) -> usize {
        let mut count = 0;
        let mut cursor = String::new();
        loop {
            let page = self
                .get(&format!("/v1/items?limit=1000&cursor={cursor}"))
                .expect_ok();
            count += page["items"].as_array().expect("items").len();
            match page["next_cursor"].as_str() {
                Some(c) => cursor = c.to_string(),
                None => return count,
            }
        }
    }

    fn event_count(&self, user: &str) -> usize {
        let body = self
            .get(&format!("/v1/users/{user}/events?limit=1000"))
            .expect_ok();
        body["events"].as_array().expect("events").len()
    }
}

// ----- data -----

const PER_CLUSTER: usize = 10;

fn item_ids(cluster: &str) -> Vec<String> {
    (0..PER_CLUSTER).map(|i| format!("{cluster}{i}")).collect()
}

/// Ten items per cluster, plus a hidden and a not-yet-available alpha item that every user touches
/// (so they would top every list if the filters failed).
fn catalog() -> Value {
    let mut items: Vec<Value> = Vec::new();
    for (cluster, category) in [("a", "alpha"), ("b", "beta")] {
        for id in item_ids(cluster) {
            items.push(json!({"id": id, "categories": [category], "title": format!("Item {id}")}));
        }
    }
    let next_year = cairn_core::now_unix() + 365 * 86_400;
    items.push(json!({"id": "hidden", "categories": ["alpha"], "hidden": true}));
    items.push(json!({"id": "future", "categories": ["alpha"], "available_from": next_year}));
    json!({ "items": items })
}

/// User `ua{u}` views alpha items u..u+4 (mod 10), `ub{u}` likewise beta items; all view the hidden
/// and the future item.
fn cluster_events() -> Value {
    let mut events = Vec::new();
    for (cluster, prefix) in [("a", "ua"), ("b", "ub")] {
        for u in 0..PER_CLUSTER {
            let user = format!("{prefix}{u}");
            for j in 0..5 {
                let item = format!("{cluster}{}", (u + j) % PER_CLUSTER);
                events.push(json!({"user_id": user, "item_id": item, "type": "view"}));
            }
            events.push(json!({"user_id": user, "item_id": "hidden", "type": "view"}));
            events.push(json!({"user_id": user, "item_id": "future", "type": "view"}));
        }
    }
    json!({ "events": events })
}

fn seed(server: &TestServer) {
    server.post("/v1/items", catalog()).expect_ok();
    let stored = server.post("/v1/events", cluster_events()).expect_ok();
    assert_eq!(stored["stored"], 2 * PER_CLUSTER * 7);
}

fn is_alpha(id: &str) -> bool {
    id.starts_with('a') && id.len() == 2
}

fn is_beta(id: &str) -> bool {
    id.starts_with('b') && id.len() == 2
}

// ----- tests -----

#[test]
fn items_users_and_events_round_trip() {
    let s = TestServer::start();

    // An item: id from the path, body id optional but must match.
    let item =
        json!({"title": "Blue mug", "categories": ["kitchen"], "properties": {"price": 12.5}});
    let stored = s.put("/v1/items/mug", item).expect_ok();
    assert_eq!(stored["id"], "mug");
    let fetched = s.get("/v1/items/mug").expect_ok();
    assert_eq!(fetched, stored);
    s.put("/v1/items/mug", json!({"id": "cup"}))
        .expect_error(400, "invalid_argument");
    let replaced = s
        .put("/v1/items/mug", json!({"id": "mug", "title": "Red mug"}))
        .expect_ok();
    assert_eq!(s.get("/v1/items/mug").expect_ok(), replaced);
    assert!(
        replaced.get("categories").is_none(),
        "replacement is whole: {replaced}"
    );

    // A user.
    let user = s
        .put("/v1/users/ann", json!({"properties": {"country": "NZ"}}))
        .expect_ok();
    assert_eq!(s.get("/v1/users/ann").expect_ok(), user);
    let batch = s
        .post(
            "/v1/users",
            json!({"users": [{"id": "bob"}, {"id": "cat"}]}),
        )
        .expect_ok();
    assert_eq!(batch["upserted"], 2);
    let page = s.get("/v1/users?limit=10").expect_ok();
    let ids: Vec<&str> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ann", "bob", "cat"]);

    // Events, returned newest first.
    let events = json!({"events": [
        {"user_id": "ann", "item_id": "mug", "type": "view", "timestamp": 1_700_000_000},
        {"user_id": "ann", "item_id": "mug", "type": "rating", "value": 4.5, "timestamp": "2023-11-14T22:20:00Z"},
    ]});
    let outcome = s.post("/v1/events", events).expect_ok();
    assert_eq!(outcome, json!({"stored": 2, "duplicates": 0}));
    let history = s.get("/v1/users/ann/events").expect_ok();
    assert_eq!(history["user_id"], "ann");
    let history = history["events"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["type"], "rating");
    assert_eq!(history[0]["value"], 4.5);
    assert_eq!(history[1]["type"], "view");
    assert_eq!(history[1]["timestamp"], "2023-11-14T22:13:20Z");
    assert!(history[0]["seq"].as_u64() > history[1]["seq"].as_u64());
    assert_eq!(
        s.get("/v1/users/nobody/events").expect_ok()["events"],
        json!([])
    );

    // Deleting.
    assert_eq!(s.delete("/v1/items/mug").status, 204);
    s.get("/v1/items/mug").expect_error(404, "item_not_found");
    s.delete("/v1/items/mug")
        .expect_error(404, "item_not_found");
    let erased = s.delete("/v1/users/bob").expect_ok();
    assert_eq!(
        erased,
        json!({"user_id": "bob", "user_existed": true, "events_removed": 0})
    );
    s.get("/v1/users/bob").expect_error(404, "user_not_found");
}

#[test]
fn pagination_visits_every_item_exactly_once() {
    let s = TestServer::start();
    let ids: Vec<String> = (0..57).map(|i| format!("item-{i:03}")).collect();
    let items: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
    assert_eq!(
        s.post("/v1/items", json!({"items": items})).expect_ok()["upserted"],
        57
    );

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/items?limit=10&cursor={c}"),
            None => "/v1/items?limit=10&cursor=".to_string(),
        };
        let page = s.get(&path).expect_ok();
        pages += 1;
        let batch = page["items"].as_array().unwrap();
        assert!(batch.len() <= 10);
        seen.extend(batch.iter().map(|i| i["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(pages < 20, "pagination does not end");
    }
    assert_eq!(pages, 6);
    assert_eq!(seen, ids, "every item once, in id order");
}

#[test]
fn a_user_history_pages_back_to_its_first_event_each_once() {
    let s = TestServer::start();
    s.post("/v1/items", json!({"items": [{"id": "x"}, {"id": "y"}]}))
        .expect_ok();
    let events: Vec<Value> = (0..57)
        .map(|i| {
            json!({"user_id": "long", "item_id": if i % 2 == 0 { "x" } else { "y" },
                   "type": "view", "event_id": format!("e{i:02}"), "timestamp": 1_700_000_000 + i})
        })
        .collect();
    s.post("/v1/events", json!({"events": events})).expect_ok();
    s.post(
        "/v1/events",
        json!({"events": [{"user_id": "other", "item_id": "x", "type": "view"}]}),
    )
    .expect_ok();

    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let page = s
            .get(&format!("/v1/users/long/events?limit=10&cursor={cursor}"))
            .expect_ok();
        pages += 1;
        let batch = page["events"].as_array().unwrap();
        assert!(batch.len() <= 10);
        seen.extend(
            batch
                .iter()
                .map(|e| e["event_id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
        assert!(pages < 20, "pagination does not end");
    }
    assert_eq!(pages, 6);
    let want: Vec<String> = (0..57).rev().map(|i| format!("e{i:02}")).collect();
    assert_eq!(seen, want, "every event once, newest first");

    for bad in ["abc", "-3", "0"] {
        let e = s
            .get(&format!("/v1/users/long/events?cursor={bad}"))
            .expect_error(400, "invalid_argument");
        assert_eq!(e["field"], "cursor", "{bad}");
    }
}

#[test]
fn recommendations_follow_new_events_and_exclude_seen_items() {
    let s = TestServer::start();
    seed(&s);
    s.train();

    // A newcomer gets popular items.
    let before = s.list_ids("/v1/users/newbie/recommendations?k=5");
    assert_eq!(before.len(), 5);
    assert!(s
        .list_sources("/v1/users/newbie/recommendations?k=5")
        .iter()
        .all(|src| ["popular", "trending", "new-items"].contains(&src.as_str())));

    // Two alpha views, no retraining: the next list is alpha items similar to them, minus those two.
    let events = json!({"events": [
        {"user_id": "newbie", "item_id": "a0", "type": "view"},
        {"user_id": "newbie", "item_id": "a1", "type": "view"},
    ]});
    s.post("/v1/events", events).expect_ok();
    let after = s.list_ids("/v1/users/newbie/recommendations?k=5");
    assert_ne!(before, after);
    assert_eq!(after.len(), 5);
    assert!(after.iter().all(|id| is_alpha(id)), "{after:?}");
    assert!(!after.contains(&"a0".to_string()) && !after.contains(&"a1".to_string()));
    let first = &s.list_sources("/v1/users/newbie/recommendations?k=5")[0];
    assert!(
        ["embedding", "item-knn", "content"].contains(&first.as_str()),
        "{first}"
    );

    // Beta users get beta items; seen ones may come back only when asked for.
    let beta = s.list_ids("/v1/users/ub3/recommendations?k=3");
    assert!(beta.iter().all(|id| is_beta(id)), "{beta:?}");
    let seen: HashSet<String> = (3..8).map(|i| format!("b{}", i % PER_CLUSTER)).collect();
    assert!(beta.iter().all(|id| !seen.contains(id)), "{beta:?}");
    let with_seen = s.list_ids("/v1/users/ub3/recommendations?k=20&exclude_seen=false");
    assert!(
        with_seen.iter().any(|id| seen.contains(id)),
        "{with_seen:?}"
    );

    // Similar items stay in the cluster.
    let similar = s.list_ids("/v1/items/b0/similar?k=4");
    assert!(
        similar.iter().all(|id| is_beta(id) && id != "b0"),
        "{similar:?}"
    );

    let model = s.get("/v1/model").expect_ok();
    let list = s.get("/v1/popular?k=3").expect_ok();
    assert_eq!(list["model_version"], model["version"]);
}

#[test]
fn hidden_and_unavailable_items_are_never_recommended() {
    let s = TestServer::start();
    seed(&s);
    s.train();
    let forbidden = |ids: &[String]| ids.iter().any(|id| id == "hidden" || id == "future");

    let mut lists = vec![
        "/v1/popular?k=100".to_string(),
        "/v1/trending?k=100".to_string(),
        "/v1/popular?k=100&category=alpha".to_string(),
        "/v1/trending?k=100&category=alpha".to_string(),
        "/v1/users/newbie/recommendations?k=100".to_string(),
    ];
    for u in 0..PER_CLUSTER {
        lists.push(format!(
            "/v1/users/ua{u}/recommendations?k=100&exclude_seen=false"
        ));
        lists.push(format!("/v1/users/ub{u}/recommendations?k=100"));
        lists.push(format!(
            "/v1/users/ua{u}/recommendations?k=100&placement=item-page&context=a{u}"
        ));
        lists.push(format!(
            "/v1/users/ub{u}/recommendations?k=100&placement=cart&context=hidden,b1"
        ));
    }
    for item in item_ids("a").iter().chain(item_ids("b").iter()) {
        lists.push(format!("/v1/items/{item}/similar?k=100"));
    }
    lists.push("/v1/items/hidden/similar?k=100".to_string());
    for path in &lists {
        let ids = s.list_ids(path);
        assert!(!forbidden(&ids), "{path} returned {ids:?}");
    }
    assert_eq!(s.list_ids("/v1/popular?k=100").len(), 2 * PER_CLUSTER);

    // Once available and visible, the same items do appear: the filter, not the data, kept them out.
    s.put("/v1/items/hidden", json!({"categories": ["alpha"]}))
        .expect_ok();
    assert!(s
        .list_ids("/v1/popular?k=100")
        .contains(&"hidden".to_string()));
}

/// Query-string encoding of a filter expression.
fn encode(expr: &str) -> String {
    expr.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn filter_expressions_are_obeyed_on_every_path_including_fallbacks() {
    let s = TestServer::start();
    seed(&s);
    // Prices 0..9 by item number; cheap = price below 4.
    for cluster in ["a", "b"] {
        for (i, id) in item_ids(cluster).iter().enumerate() {
            let category = if cluster == "a" { "alpha" } else { "beta" };
            s.put(
                &format!("/v1/items/{id}"),
                json!({"categories": [category], "properties": {"price": i}}),
            )
            .expect_ok();
        }
    }
    s.train();
    let cheap = |id: &str| id.len() == 2 && id[1..].parse::<usize>().unwrap() < 4;
    let filter = encode("price < 4 and category in [\"alpha\", \"beta\"]");
    for (user, extra) in [
        ("ua0", ""),
        ("ub3", ""),
        ("newbie", ""),
        ("ua2", "&placement=item-page&context=a2"),
        ("ub1", "&placement=cart&context=b1,b2"),
        ("newbie", "&placement=cart&context=a5"),
    ] {
        let path = format!(
            "/v1/users/{user}/recommendations?k=50&exclude_seen=false&filter={filter}{extra}"
        );
        let ids = s.list_ids(&path);
        assert!(ids.iter().all(|id| cheap(id)), "{path}: {ids:?}");
        // The retrievers' candidates run out before k: the fallback fills from the whole catalog,
        // through the same filter, so every cheap item (minus the context items) is there.
        let context = extra.split("context=").nth(1).unwrap_or("");
        let expected = (0..4)
            .flat_map(|i| [format!("a{i}"), format!("b{i}")])
            .filter(|id| !context.split(',').any(|c| c == id))
            .count();
        assert_eq!(ids.len(), expected, "{path}: {ids:?}");
    }
    // The POST form carries boosts and pins; the filter still binds them, pins excepted.
    let body = s
        .post(
            "/v1/users/ua0/recommendations",
            json!({
                "k": 5,
                "filter": "price < 4",
                "boosts": [{"when": "category == 'beta'", "factor": 50.0}],
                "pins": [{"item": "a9", "position": 1}],
            }),
        )
        .expect_ok();
    let ids: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["item_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids[0], "a9", "{body}");
    assert_eq!(body["items"][0]["source"], "pinned");
    assert!(ids[1..].iter().all(|id| cheap(id)), "{ids:?}");
    assert!(
        ids[1..3].iter().all(|id| is_beta(id)),
        "boosted beta first: {ids:?}"
    );

    // Bad expressions are 400s that say where and what.
    let err = s
        .get(&format!(
            "/v1/users/ua0/recommendations?filter={}",
            encode("price <")
        ))
        .expect_error(400, "invalid_expression");
    assert_eq!(err["field"], "filter");
    assert!(err["message"].as_str().unwrap().contains("at 7"), "{err}");
    let err = s
        .post(
            "/v1/users/ua0/recommendations",
            json!({"boosts": [{"when": "price >", "factor": 2.0}]}),
        )
        .expect_error(400, "invalid_expression");
    assert_eq!(err["field"], "boost[0]");
    s.get("/v1/users/ua0/recommendations?placement=nowhere")
        .expect_error(400, "invalid_argument");
}

#[test]
fn an_item_created_with_only_text_and_categories_reaches_matching_users_before_any_event() {
    let s = TestServer::start();
    seed(&s);
    s.put(
        "/v1/items/fresh",
        json!({"categories": ["alpha"], "title": "Fresh alpha pressing", "description": "just in"}),
    )
    .expect_ok();
    s.train();
    let body = s.get("/v1/users/ua0/recommendations?k=5").expect_ok();
    let fresh = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["item_id"] == "fresh")
        .unwrap_or_else(|| panic!("not offered to the alpha user: {body}"))
        .clone();
    assert_eq!(fresh["source"], "content");
    assert_eq!(
        fresh["reason"],
        "not yet discovered, and it matches your interest in the category alpha"
    );
    // A user who only ever touched beta items has five beta items left to see, and is not
    // offered the alpha newcomer. (The seeded users all viewed two alpha items, so a new one.)
    let views: Vec<Value> = (0..5)
        .map(|i| json!({"user_id": "beta-fan", "item_id": format!("b{i}"), "type": "view"}))
        .collect();
    s.post("/v1/events", json!({ "events": views })).expect_ok();
    let beta = s.list_ids("/v1/users/beta-fan/recommendations?k=5");
    assert!(beta.iter().all(|id| is_beta(id)), "{beta:?}");
}

#[test]
fn an_item_created_after_training_has_similar_items_by_its_content_at_once() {
    let s = TestServer::start();
    seed(&s);
    s.train();
    // Created after training, so the models have never seen it, and nobody has touched it.
    s.put(
        "/v1/items/late",
        json!({"categories": ["beta"], "title": "Late beta pressing"}),
    )
    .expect_ok();
    let body = s.get("/v1/items/late/similar?k=5").expect_ok();
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 5, "{body}");
    for r in items {
        assert!(is_beta(r["item_id"].as_str().unwrap()), "{body}");
        assert_eq!(r["source"], "content", "{body}");
        assert!(r["score"].as_f64().is_some_and(|s| s > 0.0), "{body}");
        assert_eq!(
            r["reason"],
            "shares the category beta with \"Late beta pressing\""
        );
    }
}

#[test]
fn recommendation_pages_never_repeat_an_item() {
    let s = TestServer::start();
    seed(&s);
    s.train();
    let mut ids: Vec<String> = Vec::new();
    let mut page = s.get("/v1/users/ua0/recommendations?k=3").expect_ok();
    let id = page["recommendation_id"].clone();
    loop {
        for r in page["items"].as_array().unwrap() {
            ids.push(r["item_id"].as_str().unwrap().to_string());
        }
        let Some(cursor) = page["next_cursor"].as_str().map(str::to_string) else {
            break;
        };
        page = s
            .get(&format!(
                "/v1/users/ua0/recommendations?k=3&cursor={cursor}"
            ))
            .expect_ok();
        assert_eq!(page["recommendation_id"], id);
    }
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    // Every recommendable item the user has not seen: 20 items, 5 seen.
    assert_eq!(ids.len(), 2 * PER_CLUSTER - 5, "{ids:?}");
    s.get("/v1/users/ua0/recommendations?k=3&cursor=junk")
        .expect_error(400, "invalid_argument");
    // A cursor serves only its own user's list, and only offsets inside it.
    let first = s.get("/v1/users/ua0/recommendations?k=3").expect_ok();
    let cursor = first["next_cursor"].as_str().unwrap();
    let other = s
        .get(&format!(
            "/v1/users/ub0/recommendations?k=3&cursor={cursor}"
        ))
        .expect_error(400, "invalid_argument");
    assert_eq!(other["field"], "cursor", "{other}");
    let list_id = first["recommendation_id"].as_str().unwrap();
    s.get(&format!(
        "/v1/users/ua0/recommendations?k=3&cursor={list_id}.{}",
        usize::MAX
    ))
    .expect_error(400, "invalid_argument");
    let stale = s.get("/v1/users/ua0/recommendations?k=3").expect_ok()["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    s.post(
        "/v1/events",
        json!({"events": [{"user_id": "ua0", "item_id": "b0", "type": "view"}]}),
    )
    .expect_ok();
    s.train();
    s.get(&format!("/v1/users/ua0/recommendations?k=3&cursor={stale}"))
        .expect_error(410, "cursor_expired");
}

/// Asserts the API's definition of `score` over a list's items, in order: each in [0, 1], none
/// above the one before it.
fn assert_scores_never_rise(what: &str, items: &[Value]) {
    let mut above = 1.0;
    for r in items {
        let score = r["score"].as_f64().expect("a numeric score");
        assert!(
            (0.0..=above).contains(&score),
            "{what}: {score} after {above}: {items:?}"
        );
        above = score;
    }
}

#[test]
fn scores_are_in_0_1_and_never_rise_down_any_list_or_its_pages() {
    let s = TestServer::start();
    seed(&s);
    s.train();
    // A personal list with pins, page by page.
    let body =
        json!({"k": 3, "pins": [{"item": "b3", "position": 1}, {"item": "b5", "position": 3}]});
    let mut page = s.post("/v1/users/ua0/recommendations", body).expect_ok();
    let mut items: Vec<Value> = Vec::new();
    loop {
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        let Some(cursor) = page["next_cursor"].as_str().map(str::to_string) else {
            break;
        };
        page = s
            .get(&format!(
                "/v1/users/ua0/recommendations?k=3&cursor={cursor}"
            ))
            .expect_ok();
    }
    assert!(items.len() > 6, "{items:?}");
    assert_scores_never_rise("personal list with pins", &items);
    assert_eq!(items[0]["source"], "pinned");
    assert_eq!(items[0]["score"], items[1]["score"], "{items:?}");
    for path in [
        "/v1/users/ua0/recommendations?k=20",
        "/v1/users/nobody/recommendations?k=20",
        "/v1/items/a0/similar?k=20",
        "/v1/popular?k=20",
        "/v1/popular?k=20&category=beta",
        "/v1/trending?k=20",
    ] {
        let list = s.get(path).expect_ok();
        let items = list["items"].as_array().unwrap();
        assert!(!items.is_empty(), "{path}");
        assert_scores_never_rise(path, items);
        assert_eq!(items[0]["score"], 1.0, "{path}: {items:?}");
    }
    // The similar list's neighbours and its popular top-up share one scale.
    let similar = s.get("/v1/items/a0/similar?k=20").expect_ok();
    let items = similar["items"].as_array().unwrap();
    let sources: Vec<&str> = items
        .iter()
        .map(|r| r["source"].as_str().unwrap())
        .collect();
    assert!(sources.contains(&"item-knn"), "{sources:?}");
}

#[test]
fn category_filter_is_obeyed_on_every_list() {
    let s = TestServer::start();
    seed(&s);
    s.train();
    for path in [
        "/v1/popular?k=50&category=beta",
        "/v1/trending?k=50&category=beta",
        "/v1/users/ua0/recommendations?k=50&category=beta",
        "/v1/users/newbie/recommendations?k=50&category=beta",
        "/v1/items/a0/similar?k=50&category=beta",
    ] {
        let ids = s.list_ids(path);
        assert!(ids.iter().all(|id| is_beta(id)), "{path}: {ids:?}");
    }
    let beta = s.list_ids("/v1/popular?k=50&category=beta");
    assert_eq!(beta.len(), PER_CLUSTER);
    // A category no item has is an error (see wrong_names_are_errors_and_suspicious_ones_warnings).
    s.get("/v1/popular?k=50&category=gamma")
        .expect_error(400, "unknown_category");
    // An empty category means no filter.
    assert_eq!(
        s.list_ids("/v1/popular?k=50&category=").len(),
        2 * PER_CLUSTER
    );
}

/// The `code`s of a list response's warnings; asserts that a response without warnings has no
/// `warnings` key at all.
fn warning_codes(body: &Value) -> Vec<String> {
    match body.get("warnings") {
        None => Vec::new(),
        Some(w) => {
            let w = w.as_array().expect("warnings array");
            assert!(!w.is_empty(), "an empty warnings list is left out: {body}");
            w.iter()
                .map(|w| {
                    assert!(w["message"].as_str().is_some_and(|m| !m.is_empty()), "{w}");
                    w["code"].as_str().expect("code").to_string()
                })
                .collect()
        }
    }
}

#[test]
fn wrong_names_are_errors_and_suspicious_ones_warnings() {
    let s = TestServer::start();
    seed(&s);
    s.put(
        "/v1/items/a0",
        json!({"categories": ["alpha"], "properties": {"price": 3, "format": "LP"}}),
    )
    .expect_ok();
    s.train();
    let recs = "/v1/users/ua0/recommendations";
    let plain = s.get(&format!("{recs}?k=3")).expect_ok();
    assert!(plain.get("warnings").is_none(), "{plain}");

    // An empty or blank filter or boost is an error, as docs/FILTERS.md says: leave it out.
    let err = s
        .get(&format!("{recs}?filter="))
        .expect_error(400, "invalid_expression");
    assert_eq!(err["field"], "filter");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("empty expression"),
        "{err}"
    );
    s.post(recs, json!({"filter": "  "}))
        .expect_error(400, "invalid_expression");
    let err = s
        .post(recs, json!({"boosts": [{"when": "", "factor": 2.0}]}))
        .expect_error(400, "invalid_expression");
    assert_eq!(err["field"], "boost[0]");

    // A property no item has: the name and the nearest known names.
    let err = s
        .get(&format!("{recs}?filter={}", encode("prce < 4")))
        .expect_error(400, "unknown_property");
    assert_eq!(err["field"], "filter");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("`prce`") && message.contains("did you mean `price`?"),
        "{err}"
    );
    let err = s
        .post(
            recs,
            json!({"filter": "price < 4", "boosts": [{"when": "colour == 'red'", "factor": 2.0}]}),
        )
        .expect_error(400, "unknown_property");
    assert_eq!(err["field"], "boost[0]");
    let ok = s
        .post(
            recs,
            json!({"k": 3, "filter": "exists(price)", "boosts": [{"when": "format == 'LP'", "factor": 2.0}]}),
        )
        .expect_ok();
    assert!(warning_codes(&ok).is_empty());

    // A category no item has, on every list that takes one.
    for path in [
        format!("{recs}?category=Alpha"),
        "/v1/popular?category=Alpha".to_string(),
        "/v1/trending?category=Alpha".to_string(),
        "/v1/items/b0/similar?category=Alpha".to_string(),
    ] {
        let err = s.get(&path).expect_error(400, "unknown_category");
        assert_eq!(err["field"], "category", "{path}");
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("did you mean `alpha`?"),
            "{path}: {err}"
        );
    }
    // A category whose only item is hidden is known, but empty for now: a warning.
    s.put(
        "/v1/items/g0",
        json!({"categories": ["gamma"], "hidden": true}),
    )
    .expect_ok();
    for path in [
        format!("{recs}?category=gamma"),
        "/v1/popular?category=gamma".to_string(),
        "/v1/trending?category=gamma".to_string(),
        "/v1/items/b0/similar?category=gamma".to_string(),
    ] {
        let body = s.get(&path).expect_ok();
        assert_eq!(body["items"], json!([]), "{path}");
        assert_eq!(warning_codes(&body), ["category_unavailable"], "{path}");
    }

    // An unknown context item is answered, with a warning naming it.
    let body = s
        .get(&format!(
            "{recs}?k=3&placement=item-page&context=a1,not-synced"
        ))
        .expect_ok();
    assert_eq!(body["items"].as_array().unwrap().len(), 3, "{body}");
    assert_eq!(warning_codes(&body), ["unknown_context_item"]);
    assert!(
        body["warnings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("context[1]: item `not-synced`"),
        "{body}"
    );

    // Pins that cannot be placed are named, the others placed; the next page has no warnings.
    let body = s
        .post(
            recs,
            json!({"k": 3, "pins": [
                {"item": "hidden", "position": 1},
                {"item": "ghost", "position": 2},
                {"item": "b5", "position": 3},
            ]}),
        )
        .expect_ok();
    assert_eq!(
        warning_codes(&body),
        ["unavailable_pinned_item", "unknown_pinned_item"]
    );
    assert!(body["warnings"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("pin[0]: item `hidden`"));
    assert!(body["warnings"][1]["message"]
        .as_str()
        .unwrap()
        .starts_with("pin[1]: item `ghost`"));
    assert_eq!(body["items"][2]["item_id"], "b5", "{body}");
    assert_eq!(body["items"][2]["source"], "pinned");
    let cursor = body["next_cursor"].as_str().expect("a next page");
    let next = s.get(&format!("{recs}?k=3&cursor={cursor}")).expect_ok();
    assert!(!next["items"].as_array().unwrap().is_empty());
    assert!(warning_codes(&next).is_empty());
}

#[test]
fn bad_input_is_a_json_error_and_stores_nothing() {
    let s = TestServer::start_with(|c| c.server.max_body_bytes = 4096, |_| {});
    s.post("/v1/items", json!({"items": [{"id": "a0"}, {"id": "a1"}]}))
        .expect_ok();
    let items_before = s.item_count();

    let json_ct = Some("application/json");
    let raw = |method: Method, path: &str, ct: Option<&str>, body: &str| {
        s.raw(method, path, ct, body.as_bytes().to_vec())
    };

    // Body problems.
    raw(Method::POST, "/v1/events", json_ct, "{\"events\": [").expect_error(400, "malformed_json");
    raw(Method::POST, "/v1/events", json_ct, "").expect_error(400, "malformed_json");
    raw(
        Method::POST,
        "/v1/events",
        json_ct,
        "{\"events\": [{\"value\": NaN}]}",
    )
    .expect_error(400, "malformed_json");
    raw(Method::PUT, "/v1/items/x", json_ct, "{} trailing").expect_error(400, "malformed_json");
    raw(
        Method::POST,
        "/v1/items",
        Some("text/plain"),
        "{\"items\": []}",
    )
    .expect_error(415, "unsupported_media_type");
    raw(Method::POST, "/v1/items", None, "{\"items\": []}")
        .expect_error(415, "unsupported_media_type");
    let e = s
        .put("/v1/items/x", json!({"colour": "red"}))
        .expect_error(400, "invalid_argument");
    assert!(e["message"].as_str().unwrap().contains("colour"), "{e}");
    let e = s
        .post(
            "/v1/items",
            json!({"items": [{"id": "x", "titel": "typo"}]}),
        )
        .expect_error(400, "invalid_argument");
    assert!(e["message"].as_str().unwrap().contains("titel"), "{e}");
    let e = s
        .post("/v1/events", json!({"events": [], "extra": 1}))
        .expect_error(400, "invalid_argument");
    assert!(e["message"].as_str().unwrap().contains("extra"), "{e}");
    s.post(
        "/v1/events",
        json!([{"user_id": "u", "item_id": "a0", "type": "view"}]),
    )
    .expect_error(400, "invalid_argument");
    s.put("/v1/items/x", json!({"title": 5}))
        .expect_error(400, "invalid_argument");
    s.put("/v1/items/x", json!({"embedding": [1.0, 1e39]}))
        .expect_error(400, "invalid_argument");
    s.put("/v1/items/x", json!({"properties": {"weight": 1e300}}))
        .expect_error(400, "invalid_argument");
    raw(
        Method::PUT,
        "/v1/items/x",
        json_ct,
        "{\"properties\": {\"w\": 1e400}}",
    )
    .expect_error(400, "malformed_json");
    s.put("/v1/items/a%0Ab", json!({}))
        .expect_error(400, "invalid_argument");
    s.put(&format!("/v1/items/{}", "x".repeat(300)), json!({}))
        .expect_error(400, "invalid_argument");
    s.put(
        "/v1/items/x",
        json!({"available_from": 100, "available_until": 50}),
    )
    .expect_error(400, "invalid_argument");
    let big =
        json!({"items": (0..1000).map(|i| json!({"id": format!("big-{i}")})).collect::<Vec<_>>()});
    s.post("/v1/items", big)
        .expect_error(413, "payload_too_large");

    // A batch with one bad member stores none of it.
    let e = s
        .post(
            "/v1/items",
            json!({"items": [{"id": "ok-1"}, {"id": "bad", "categories": [""]}]}),
        )
        .expect_error(400, "invalid_argument");
    assert_eq!(e["field"], "items[1].categories[0]");
    let ok = json!({"user_id": "u", "item_id": "a0", "type": "view"});
    let cases = [
        (
            json!({"user_id": "u", "item_id": "nope", "type": "view"}),
            "events[1].item_id",
        ),
        (
            json!({"user_id": "u", "item_id": "a1", "type": "teleport"}),
            "events[1].type",
        ),
        (
            json!({"user_id": "u", "item_id": "a1", "type": "rating", "value": 1e300}),
            "events[1].value",
        ),
        (
            json!({"user_id": "", "item_id": "a1", "type": "view"}),
            "events[1].user_id",
        ),
    ];
    for (bad, field) in cases {
        let e = s
            .post("/v1/events", json!({"events": [ok, bad]}))
            .expect_error(400, "invalid_argument");
        assert_eq!(e["field"], field, "{e}");
    }
    let e = s
        .post(
            "/v1/events",
            json!({"events": [{"user_id": "u", "item_id": "a0", "type": "view", "timestamp": 1_700_000_000_000u64}]}),
        )
        .expect_error(400, "invalid_argument");
    assert!(
        e["message"].as_str().unwrap().contains("milliseconds"),
        "{e}"
    );

    // Query strings.
    for path in [
        "/v1/popular?k=0",
        "/v1/popular?k=1000000",
        "/v1/popular?k=abc",
        "/v1/popular?k=-1",
        "/v1/popular?k=99999999999999999999999",
        "/v1/popular?kk=3",
        "/v1/trending?k=0",
        "/v1/users/u/recommendations?exclude_seen=maybe",
        "/v1/users/u/recommendations?k=0",
        "/v1/items/a0/similar?k=0",
        "/v1/items?limit=0",
        "/v1/items?limit=5000",
        "/v1/users/u/events?limit=0",
    ] {
        s.get(path).expect_error(400, "invalid_argument");
    }
    let e = s
        .get("/v1/popular?k=0")
        .expect_error(400, "invalid_argument");
    assert_eq!(e["field"], "k");
    s.get(&format!("/v1/users/{}/recommendations", "u".repeat(300)))
        .expect_error(400, "invalid_argument");

    // Unknown ids, routes and methods.
    s.get("/v1/items/nope").expect_error(404, "item_not_found");
    s.get("/v1/items/nope/similar")
        .expect_error(404, "item_not_found");
    s.get("/v1/users/nope").expect_error(404, "user_not_found");
    s.delete("/v1/users/nope")
        .expect_error(404, "user_not_found");
    s.get("/v1/nothing-here")
        .expect_error(404, "route_not_found");
    s.get("/nothing-here").expect_error(404, "route_not_found");
    s.send(Method::PATCH, "/v1/items/a0", Some(json!({})))
        .expect_error(405, "method_not_allowed");
    s.send(Method::DELETE, "/v1/popular", None)
        .expect_error(405, "method_not_allowed");
    s.get("/v1/train").expect_error(405, "method_not_allowed");
    s.get("/v1/model").expect_error(404, "model_not_found");

    // Nothing was stored by any of it.
    assert_eq!(s.item_count(), items_before);
    assert_eq!(s.event_count("u"), 0);
    s.get("/v1/items/x").expect_error(404, "item_not_found");
    s.get("/v1/items/ok-1").expect_error(404, "item_not_found");
    let metrics = s.get("/metrics").text;
    assert!(metrics.contains("cairn_events 0"), "{metrics}");
}

#[test]
fn erasing_a_user_removes_their_events_and_personalisation() {
    let s = TestServer::start();
    seed(&s);
    s.train();
    assert_eq!(s.event_count("ua2"), 7);
    assert!(s
        .list_sources("/v1/users/ua2/recommendations?k=3")
        .iter()
        .any(|src| src == "item-knn" || src == "embedding"));

    let erased = s.delete("/v1/users/ua2").expect_ok();
    assert_eq!(
        erased,
        json!({"user_id": "ua2", "user_existed": false, "events_removed": 7})
    );
    assert_eq!(s.event_count("ua2"), 0);
    let sources = s.list_sources("/v1/users/ua2/recommendations?k=3");
    assert_eq!(sources.len(), 3);
    assert!(
        sources
            .iter()
            .all(|src| ["popular", "trending", "new-items"].contains(&src.as_str())),
        "{sources:?}"
    );
    s.delete("/v1/users/ua2")
        .expect_error(404, "user_not_found");
    // Other users keep theirs.
    assert_eq!(s.event_count("ua3"), 7);
}

#[test]
fn events_with_ids_are_stored_once() {
    let s = TestServer::start();
    s.post("/v1/items", json!({"items": [{"id": "a0"}, {"id": "a1"}]}))
        .expect_ok();
    let batch = json!({"events": [
        {"event_id": "e1", "user_id": "u", "item_id": "a0", "type": "view"},
        {"event_id": "e2", "user_id": "u", "item_id": "a1", "type": "click"},
        {"event_id": "e1", "user_id": "u", "item_id": "a0", "type": "view"},
        {"user_id": "u", "item_id": "a1", "type": "view"},
    ]});
    assert_eq!(
        s.post("/v1/events", batch.clone()).expect_ok(),
        json!({"stored": 3, "duplicates": 1})
    );
    assert_eq!(
        s.post("/v1/events", batch).expect_ok(),
        json!({"stored": 1, "duplicates": 3}),
        "only the event without an id is stored again"
    );
    assert_eq!(s.event_count("u"), 4);
    assert_eq!(
        s.post("/v1/events", json!({"events": []})).expect_ok(),
        json!({"stored": 0, "duplicates": 0})
    );
}

#[test]
fn readiness_model_status_and_training() {
    let s = TestServer::start();
    assert_eq!(s.get("/healthz").expect_ok()["status"], "ok");
    // Nothing to train on: ready, with empty lists.
    assert_eq!(s.get("/readyz").expect_ok()["status"], "ready");
    assert!(s.list_ids("/v1/popular").is_empty());
    assert_eq!(
        s.get("/v1/popular").expect_ok()["model_version"],
        Value::Null
    );

    seed(&s);
    let e = s.get("/readyz").expect_error(503, "not_ready");
    assert!(
        e["message"].as_str().unwrap().contains("POST /v1/train"),
        "{e}"
    );

    let report = s.train();
    assert_eq!(report["items"], 2 * PER_CLUSTER + 2);
    assert_eq!(report["users"], 2 * PER_CLUSTER);
    let ready = s.get("/readyz").expect_ok();
    assert_eq!(ready["model_version"], report["version"]);
    let model = s.get("/v1/model").expect_ok();
    assert_eq!(model["version"], report["version"]);
    assert_eq!(model["interactions"], report["interactions"]);
    assert!(model["age_seconds"].as_i64().is_some_and(|a| a >= 0));
    assert_eq!(s.list_ids("/v1/popular?k=3").len(), 3);
}

#[test]
fn serve_trains_at_startup_when_events_wait_for_a_model() {
    let s = TestServer::start_with(
        |_| {},
        |engine| {
            engine
                .put_items(vec![Item::new("a"), Item::new("b")])
                .expect("items");
            engine
                .add_events(vec![
                    Event::new("u", "a", "view"),
                    Event::new("u", "b", "view"),
                ])
                .expect("events");
        },
    );
    // Training runs in the background; wait for it with a generous bound (it takes milliseconds).
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.get("/v1/model").status != 200 {
        assert!(Instant::now() < deadline, "no model after startup training");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(s.get("/readyz").status, 200);
    assert_eq!(s.list_ids("/v1/popular").len(), 2);
}

/// The percent in a `/readyz` message while the first model trains (`... 40% done ...`).
fn training_percent(message: &str) -> Option<u8> {
    let rest = message.strip_prefix("training the first model: ")?;
    rest.split('%').next()?.parse().ok()
}

#[test]
fn serve_answers_at_once_and_says_how_far_the_first_training_is() {
    let s = TestServer::start_with(
        |config| {
            // Enough ALS iterations on a tiny log that the first training lasts a few seconds, so
            // that requests meet it running (the test prints how long it took).
            let mut model = serde_json::to_value(&config.train.model).expect("model spec");
            assert_eq!(model["model"], "als", "the default model is ALS: {model}");
            model["iterations"] = json!(1000);
            config.train.model = serde_json::from_value(model).expect("model spec");
        },
        |engine| {
            engine
                .put_items(vec![Item::new("a"), Item::new("b"), Item::new("c")])
                .expect("items");
            engine
                .add_events(vec![
                    Event::new("u", "a", "view"),
                    Event::new("u", "b", "view"),
                    Event::new("v", "b", "view"),
                    Event::new("v", "c", "view"),
                ])
                .expect("events");
        },
    );
    let started = Instant::now();
    // Liveness at once; readiness says no until the model serves.
    assert_eq!(s.get("/healthz").expect_ok()["status"], "ok");
    // Before the training reports anything the message says no model is trained yet; then it
    // says how far the training is.
    let first = s.get("/readyz").expect_error(503, "not_ready");
    let message = first["message"].as_str().unwrap();
    assert!(
        message.contains("no model") || training_percent(message).is_some(),
        "{first}"
    );
    // Meanwhile recommendations answer, empty.
    let list = s.get("/v1/users/u/recommendations").expect_ok();
    assert_eq!(list["items"], json!([]), "{list}");
    assert_eq!(list["model_version"], Value::Null, "{list}");
    let mut percents = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = s.get("/readyz");
        if ready.status == 200 {
            break;
        }
        let e = ready.expect_error(503, "not_ready");
        let message = e["message"].as_str().unwrap();
        if let Some(p) = training_percent(message) {
            assert!(message.contains("recommendations are empty"), "{message}");
            percents.push(p);
        }
        assert!(Instant::now() < deadline, "no model after 120 s: {message}");
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "first model served after {:.2}s; {} progress answers, from {:?} to {:?}%",
        started.elapsed().as_secs_f64(),
        percents.len(),
        percents.first(),
        percents.last()
    );
    assert!(!percents.is_empty(), "the progress was never reported");
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
    assert!(percents.iter().all(|&p| p <= 100), "{percents:?}");
    let ready = s.get("/readyz").expect_ok();
    assert_eq!(
        ready["model_version"],
        s.get("/v1/model").expect_ok()["version"]
    );
}

#[test]
fn batch_recommendations_answer_each_request_in_order() {
    let s = TestServer::start();
    seed(&s);
    s.train();
    let reply = s
        .post(
            "/v1/recommendations/batch",
            json!({"requests": [
                {"user_id": "ua0", "k": 3},
                {"user_id": "ub0", "k": 2, "category": "beta"},
                {"user_id": "ua1", "k": 0},
                {"k": 3},
                {"user_id": "ua2", "filter": "price <"},
                {"user_id": "ua3", "kk": 1},
                {"user_id": "nobody-yet", "k": 2},
            ]}),
        )
        .expect_ok();
    let results = reply["results"].as_array().expect("results");
    assert_eq!(results.len(), 7, "{reply}");
    let ids = |r: &Value| -> Vec<String> {
        r["recommendations"]["items"]
            .as_array()
            .unwrap_or_else(|| panic!("no recommendations: {r}"))
            .iter()
            .map(|i| i["item_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        (results[0]["user_id"].clone(), results[0]["status"].clone()),
        (json!("ua0"), json!(200))
    );
    let a = ids(&results[0]);
    assert_eq!(a.len(), 3);
    assert!(a.iter().all(|id| is_alpha(id)), "{a:?}");
    // The same as the single-user route answers.
    assert_eq!(a, s.list_ids("/v1/users/ua0/recommendations?k=3"));
    let b = ids(&results[1]);
    assert_eq!(b.len(), 2);
    assert!(b.iter().all(|id| is_beta(id)), "{b:?}");
    // Bad requests fail alone, with the code the single-user route gives and the request named.
    for (i, code) in [
        (2, "invalid_argument"),
        (3, "invalid_argument"),
        (4, "invalid_expression"),
        (5, "invalid_argument"),
    ] {
        let r = &results[i];
        assert_eq!(r["status"], 400, "{r}");
        assert!(r.get("recommendations").is_none(), "{r}");
        assert_eq!(r["error"]["code"], code, "{r}");
        let message = r["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("requests[{i}]")), "{message}");
    }
    assert_eq!(results[3]["user_id"], Value::Null);
    assert_eq!(results[3]["error"]["field"], "requests[3].user_id");
    assert!(results[5]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("kk"));
    // A user without history gets the popular fallback, as on the single-user route.
    assert_eq!(results[6]["status"], 200);
    assert_eq!(ids(&results[6]).len(), 2);

    // The batch's own limits are 400s for the whole call.
    let e = s
        .post("/v1/recommendations/batch", json!({"requests": []}))
        .expect_error(400, "invalid_argument");
    assert_eq!(e["field"], "requests");
    let many: Vec<Value> = (0..101).map(|_| json!({"user_id": "ua0"})).collect();
    let e = s
        .post("/v1/recommendations/batch", json!({"requests": many}))
        .expect_error(400, "invalid_argument");
    assert!(e["message"].as_str().unwrap().contains("1 to 100"), "{e}");
    s.post("/v1/recommendations/batch", json!({"users": []}))
        .expect_error(400, "invalid_argument");
}

#[test]
fn metrics_count_requests_by_route_and_status() {
    let s = TestServer::start();
    s.get("/v1/items/nope").expect_error(404, "item_not_found");
    s.get("/v1/items/other").expect_error(404, "item_not_found");
    s.get("/healthz").expect_ok();
    s.get("/no/such/route").expect_error(404, "route_not_found");
    let reply = s.get("/metrics");
    assert_eq!(reply.status, 200);
    assert!(reply.content_type.starts_with("text/plain"));
    let text = reply.text;
    assert!(
        text.contains(
            r#"cairn_http_requests_total{method="GET",route="/v1/items/{id}",status="404"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"cairn_http_requests_total{method="GET",route="/healthz",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"cairn_http_requests_total{method="GET",route="unmatched",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains("cairn_http_request_duration_seconds_bucket{"),
        "{text}"
    );
    for gauge in ["cairn_items 0", "cairn_events 0", "cairn_model_loaded 0"] {
        assert!(text.contains(gauge), "{gauge} missing: {text}");
    }
}

#[test]
fn openapi_documents_every_route_and_every_documented_route_exists() {
    let s = TestServer::start();
    let doc = s.get("/openapi.json").expect_ok();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        "/v1/items",
        "/v1/items/{id}",
        "/v1/items/{id}/similar",
        "/v1/users",
        "/v1/users/{id}",
        "/v1/users/{id}/events",
        "/v1/users/{id}/export",
        "/v1/users/{id}/recommendations",
        "/v1/recommendations/batch",
        "/v1/events",
        "/v1/backup",
        "/v1/compact",
        "/v1/popular",
        "/v1/trending",
        "/v1/train",
        "/v1/model",
        "/v1/models",
        "/v1/models/{version}",
        "/v1/models/history",
        "/v1/models/{version}/promote",
        "/v1/models/rollback",
        "/v1/shadow",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/drift",
        "/openapi.json",
        "/v1/keys",
        "/v1/keys/{id}",
        "/v1/audit",
        "/v1/experiments",
        "/v1/experiments/{id}",
        "/v1/experiments/{id}/results",
        "/v1/experiments/{id}/stop",
        "/v1/experiments/{id}/ship",
        "/v1/impressions",
    ]
    .into_iter()
    .collect();
    assert_eq!(documented, expected);
    assert!(doc["components"]["schemas"]["Item"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r.strip_prefix("#/components/schemas/").expect("schema ref");
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} is referenced but not defined"
        );
    }

    // Every documented operation is routed (answered by its handler, not the fallbacks).
    for (path, operations) in paths {
        let concrete = path.replace("{id}", "x");
        for method in operations.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = matches!(method, Method::PUT | Method::POST).then(|| json!({}));
            let reply = s.send(method.clone(), &concrete, body);
            if reply.status >= 400 {
                let code = reply.json()["error"]["code"].clone();
                assert!(
                    code != "route_not_found" && code != "method_not_allowed",
                    "{method} {path} is documented but not routed: {}",
                    reply.text
                );
            }
        }
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(values) => values.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[test]
fn a_user_export_holds_everything_stored_and_timestamps_follow_the_server_clock() {
    let s = TestServer::start();
    s.post("/v1/items", json!({"items": [{"id": "a"}, {"id": "b"}]}))
        .expect_ok();
    s.put("/v1/users/ann", json!({"properties": {"plan": "pro"}}))
        .expect_ok();
    // An offset is an instant like any other: 13:00+01:00 is 12:00Z.
    s.post(
        "/v1/events",
        json!({"events": [
            {"user_id": "ann", "item_id": "a", "type": "view", "timestamp": "2024-05-01T13:00:00+01:00"},
            {"user_id": "ann", "item_id": "b", "type": "purchase"},
        ]}),
    )
    .expect_ok();
    // A year ahead of the clock: refused, naming the setting.
    let e = s
        .post(
            "/v1/events",
            json!({"events": [{"user_id": "ann", "item_id": "a", "type": "view", "timestamp": "2199-12-31T00:00:00Z"}]}),
        )
        .expect_error(400, "invalid_argument");
    assert!(
        e["message"].as_str().unwrap().contains("max_future_secs"),
        "{e}"
    );

    let export = s.get("/v1/users/ann/export").expect_ok();
    assert_eq!(export["user"]["properties"]["plan"], "pro", "{export}");
    let events = export["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{export}");
    assert_eq!(events[0]["timestamp"], "2024-05-01T12:00:00Z");
    // After erasure there is nothing left to export.
    s.delete("/v1/users/ann").expect_ok();
    let export = s.get("/v1/users/ann/export").expect_ok();
    assert!(export["user"].is_null() && export["events"].as_array().unwrap().is_empty());
}
