//! Fuzzing every JSON body of the API against the real server (127.0.0.1:0): for each POST and PUT
//! route, bodies that are arbitrary JSON, valid bodies with random mutations (a value replaced by any
//! JSON, a field removed or added, an element duplicated), and byte-level damage (truncated, a byte
//! changed, nested 200 deep, no or a wrong content type). Whatever the body:
//!
//! - the answer is never a 5xx;
//! - an error is the house shape, `{"error": {"code", "message", "field"?}}` and nothing else, and
//!   so is each failed result of a batch of recommendations;
//! - a refused request leaves the store as it was (items, users, keys, event count and log
//!   position, compared before and after: no partial write), a read changes nothing either, and
//!   an accepted batch of events adds exactly the events it says it stored.
//!
//! One server per route, all requests with an admin key. Seeded; `CAIRN_FUZZ_CASES` sets the number
//! of cases per route, `CAIRN_FUZZ_SEED` the seed. Each route prints its tally of statuses
//! (`--nocapture`): docs/RELIABILITY.md records a long run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cairn_core::{Event, Item};
use cairn_engine::{Engine, Scope};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use reqwest::blocking::Client;
use serde_json::{json, Map, Value};

mod common;

fn config(default: u32) -> Config {
    let cases = std::env::var("CAIRN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let seed = std::env::var("CAIRN_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0xa91_f022);
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        // A failing case is worth shrinking, but not for long against a live server.
        max_shrink_iters: 200,
        ..Config::default()
    }
}

const DEFAULT_CASES: u32 = 48;

// ----- values -----

/// Strings that mean something to some route, and strings that should mean nothing.
fn interesting_string() -> BoxedStrategy<String> {
    prop_oneof![
        3 => proptest::sample::select(vec![
            "", " ", "i0", "i1", "i9", "f1", "u0", "u1", "view", "click", "purchase", "rating",
            "add-to-cart", "read", "ingest", "admin", "home", "item-page", "c0", "c1",
            "price < 20", "category in [\"c0\"]", "c0 == ", "((((", "not not seen",
            "tags contains \"t1\"", "cairn-content:0", "2024-05-01T12:00:00Z",
            "2024-05-01T13:00:00+01:00", "2199-12-31T00:00:00Z", "1e999", "-1", "NaN", "../x",
            "/", "\u{0}", "\n", "\u{202e}", "é", "🦀", "%00", "null",
        ])
        .prop_map(str::to_string),
        1 => (1usize..5000).prop_map(|n| "x".repeat(n)),
        2 => "\\PC{0,24}",
    ]
    .boxed()
}

fn interesting_number() -> BoxedStrategy<Value> {
    prop_oneof![
        proptest::sample::select(vec![
            json!(0),
            json!(1),
            json!(-1),
            json!(0.5),
            json!(-0.0),
            json!(4.5),
            json!(1e9),
            json!(1e308),
            json!(-1e308),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(1_700_000_000),
            json!(7_258_118_401u64),
            json!(1_700_000_000_000u64),
        ]),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
    ]
    .boxed()
}

/// The names of every request field of the API, and a few others.
const KEYS: &[&str] = &[
    "items",
    "users",
    "events",
    "id",
    "title",
    "description",
    "categories",
    "tags",
    "properties",
    "embedding",
    "hidden",
    "available_from",
    "available_until",
    "event_id",
    "user_id",
    "item_id",
    "type",
    "value",
    "timestamp",
    "recommendation_id",
    "context",
    "k",
    "exclude_seen",
    "category",
    "placement",
    "filter",
    "boosts",
    "pins",
    "cursor",
    "when",
    "factor",
    "item",
    "position",
    "requests",
    "name",
    "scope",
    "path",
    "colour",
    "",
];

fn key() -> BoxedStrategy<String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS.to_vec()).prop_map(str::to_string),
        1 => "[a-z_]{1,8}",
    ]
    .boxed()
}

/// Any JSON value, up to four levels deep.
fn any_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        interesting_number(),
        interesting_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

// ----- valid bodies -----

fn item_id() -> BoxedStrategy<String> {
    prop_oneof![
        8 => (0u32..10).prop_map(|i| format!("i{i}")),
        2 => (0u32..30).prop_map(|i| format!("f{i}")),
        1 => interesting_string(),
    ]
    .boxed()
}

fn user_id() -> BoxedStrategy<String> {
    prop_oneof![
        4 => (0u32..8).prop_map(|i| format!("u{i}")),
        1 => interesting_string(),
    ]
    .boxed()
}

fn labels(prefix: &'static str) -> BoxedStrategy<Vec<String>> {
    proptest::collection::vec((0u32..4).prop_map(move |i| format!("{prefix}{i}")), 0..3).boxed()
}

fn item() -> BoxedStrategy<Value> {
    (
        item_id(),
        proptest::option::of("[A-Za-z ]{1,20}"),
        labels("c"),
        labels("t"),
        proptest::option::of(0u32..100),
        any::<bool>(),
        proptest::option::of(proptest::collection::vec(-1.0f32..1.0, 1..5)),
        proptest::option::of(1_600_000_000i64..1_800_000_000),
    )
        .prop_map(
            |(id, title, categories, tags, price, hidden, embedding, from)| {
                let mut item =
                    json!({"id": id, "categories": categories, "tags": tags, "hidden": hidden});
                if let Some(t) = title {
                    item["title"] = json!(t);
                }
                if let Some(p) = price {
                    item["properties"] = json!({"price": p, "brand": "Acme"});
                }
                if let Some(e) = embedding {
                    item["embedding"] = json!(e);
                }
                if let Some(f) = from {
                    item["available_from"] = json!(f);
                }
                item
            },
        )
        .boxed()
}

fn user() -> BoxedStrategy<Value> {
    (user_id(), proptest::option::of(0u32..100))
        .prop_map(|(id, age)| match age {
            Some(a) => json!({"id": id, "properties": {"age": a, "city": "Oslo"}}),
            None => json!({"id": id}),
        })
        .boxed()
}

fn event() -> BoxedStrategy<Value> {
    (
        (user_id(), item_id()),
        proptest::sample::select(vec!["view", "click", "purchase", "rating", "add-to-cart"]),
        proptest::option::of((0u32..11).prop_map(|v| f64::from(v) / 2.0)),
        proptest::option::of(prop_oneof![
            (1_600_000_000i64..1_760_000_000).prop_map(Value::from),
            Just(json!("2026-11-20T10:00:00Z")),
        ]),
        proptest::option::of(prop_oneof![
            (0u32..20).prop_map(|i| format!("e{i}")),
            "[a-z0-9]{12}",
        ]),
    )
        .prop_map(|((user, item), kind, value, ts, id)| {
            let mut e = json!({"user_id": user, "item_id": item, "type": kind});
            // A rating needs its value; for the others it is optional.
            if let Some(v) = value.or((kind == "rating").then_some(4.0)) {
                e["value"] = json!(v);
            }
            if let Some(t) = ts {
                e["timestamp"] = t;
            }
            if let Some(id) = id {
                e["event_id"] = json!(id);
            }
            e
        })
        .boxed()
}

fn recommend_body() -> BoxedStrategy<Value> {
    (
        proptest::option::of(
            prop_oneof![6 => 1usize..20, 1 => Just(0), 1 => Just(1000), 1 => Just(1001)],
        ),
        proptest::option::of(any::<bool>()),
        proptest::option::of(prop_oneof![
            4 => proptest::sample::select(vec!["c0", "c1", "c2", "c3"]),
            1 => proptest::sample::select(vec!["c9", ""]),
        ]),
        proptest::option::of(prop_oneof![
            4 => proptest::sample::select(vec!["home", "item-page", "cart"]),
            1 => Just("x"),
        ]),
        proptest::collection::vec(item_id(), 0..3),
        proptest::option::of(prop_oneof![
            4 => proptest::sample::select(vec![
                "price < 50",
                "category in [\"c0\", \"c1\"]",
                "not seen and tags contains \"t1\"",
                "price >= 7 or category == \"c2\"",
            ]),
            1 => proptest::sample::select(vec!["colour == 1", "((", "price <"]),
        ]),
        proptest::collection::vec(
            (
                proptest::sample::select(vec!["price > 10", "seen", "category == \"c2\""]),
                prop_oneof![
                    4 => proptest::sample::select(vec![1.5f64, 0.5, 2.0]),
                    1 => proptest::sample::select(vec![0.0f64, -1.0, 1e39]),
                ],
            ),
            0..3,
        ),
        proptest::collection::vec(
            (
                item_id(),
                prop_oneof![4 => 1usize..12, 1 => Just(0), 1 => Just(usize::MAX)],
            ),
            0..3,
        ),
    )
        .prop_map(
            |(k, exclude_seen, category, placement, context, filter, boosts, pins)| {
                let mut b = Map::new();
                if let Some(k) = k {
                    b.insert("k".into(), json!(k));
                }
                if let Some(x) = exclude_seen {
                    b.insert("exclude_seen".into(), json!(x));
                }
                if let Some(c) = category {
                    b.insert("category".into(), json!(c));
                }
                if let Some(p) = placement {
                    b.insert("placement".into(), json!(p));
                }
                if !context.is_empty() {
                    b.insert("context".into(), json!(context));
                }
                if let Some(f) = filter {
                    b.insert("filter".into(), json!(f));
                }
                if !boosts.is_empty() {
                    let boosts: Vec<Value> = boosts
                        .into_iter()
                        .map(|(when, factor)| json!({"when": when, "factor": factor}))
                        .collect();
                    b.insert("boosts".into(), json!(boosts));
                }
                if !pins.is_empty() {
                    let pins: Vec<Value> = pins
                        .into_iter()
                        .map(|(item, position)| json!({"item": item, "position": position}))
                        .collect();
                    b.insert("pins".into(), json!(pins));
                }
                Value::Object(b)
            },
        )
        .boxed()
}

// ----- routes -----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    PostItems,
    PutItem,
    PostUsers,
    PutUser,
    PostEvents,
    Recommend,
    BatchRecommend,
    PostKeys,
    Backup,
}

impl Route {
    fn writes(self) -> bool {
        !matches!(self, Route::Recommend | Route::BatchRecommend)
    }

    /// A valid body for the route, and the id its path names (when it has one).
    fn valid(self, backups: &Path) -> BoxedStrategy<(Value, String)> {
        let no_id = |s: BoxedStrategy<Value>| s.prop_map(|v| (v, String::new())).boxed();
        match self {
            Route::PostItems => no_id(
                proptest::collection::vec(item(), 0..8)
                    .prop_map(|items| json!({ "items": items }))
                    .boxed(),
            ),
            Route::PutItem => (item(), item_id(), any::<bool>())
                .prop_map(|(mut body, id, keep_id)| {
                    if keep_id {
                        body["id"] = json!(id);
                    } else if let Some(m) = body.as_object_mut() {
                        m.remove("id");
                    }
                    (body, id)
                })
                .boxed(),
            Route::PostUsers => no_id(
                proptest::collection::vec(user(), 0..8)
                    .prop_map(|users| json!({ "users": users }))
                    .boxed(),
            ),
            Route::PutUser => (user(), user_id())
                .prop_map(|(mut body, id)| {
                    body["id"] = json!(id);
                    (body, id)
                })
                .boxed(),
            Route::PostEvents => no_id(
                proptest::collection::vec(event(), 0..6)
                    .prop_map(|events| json!({ "events": events }))
                    .boxed(),
            ),
            Route::Recommend => (recommend_body(), user_id()).boxed(),
            Route::BatchRecommend => no_id(
                proptest::collection::vec((user_id(), recommend_body()), 0..6)
                    .prop_map(|requests| {
                        let requests: Vec<Value> = requests
                            .into_iter()
                            .map(|(user, mut body)| {
                                body["user_id"] = json!(user);
                                body
                            })
                            .collect();
                        json!({ "requests": requests })
                    })
                    .boxed(),
            ),
            Route::PostKeys => no_id(
                (
                    prop_oneof![Just("backend".to_string()), interesting_string()],
                    proptest::sample::select(vec!["read", "ingest", "admin", "root", ""]),
                )
                    .prop_map(|(name, scope)| json!({"name": name, "scope": scope}))
                    .boxed(),
            ),
            Route::Backup => {
                let base = backups.to_path_buf();
                no_id(
                    prop_oneof![
                        (0u32..1_000_000)
                            .prop_map(move |n| json!({"path": base.join(format!("b{n}"))})),
                        Just(json!({"path": "relative/backup"})),
                    ]
                    .boxed(),
                )
            }
        }
    }

    fn method(self) -> reqwest::Method {
        match self {
            Route::PutItem | Route::PutUser => reqwest::Method::PUT,
            _ => reqwest::Method::POST,
        }
    }

    fn path(self, id: &str) -> String {
        let id = encode(id);
        match self {
            Route::PostItems => "/v1/items".into(),
            Route::PutItem => format!("/v1/items/{id}"),
            Route::PostUsers => "/v1/users".into(),
            Route::PutUser => format!("/v1/users/{id}"),
            Route::PostEvents => "/v1/events".into(),
            Route::Recommend => format!("/v1/users/{id}/recommendations"),
            Route::BatchRecommend => "/v1/recommendations/batch".into(),
            Route::PostKeys => "/v1/keys".into(),
            Route::Backup => "/v1/backup".into(),
        }
    }
}

/// A path segment, percent-encoded byte by byte except for letters, digits, `-` and `_`.
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

// ----- mutations -----

#[derive(Debug, Clone)]
enum Mutation {
    Replace(Value),
    Remove,
    AddField(String, Value),
    Duplicate,
}

fn mutation() -> BoxedStrategy<(usize, Mutation)> {
    (
        any::<usize>(),
        prop_oneof![
            4 => any_json().prop_map(Mutation::Replace),
            2 => Just(Mutation::Remove),
            1 => (key(), any_json()).prop_map(|(k, v)| Mutation::AddField(k, v)),
            1 => Just(Mutation::Duplicate),
        ],
    )
        .boxed()
}

/// JSON pointers of every value inside `v`, `v` itself first.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let escaped = k.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{escaped}"), out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn mutate(body: &mut Value, (selector, m): &(usize, Mutation)) {
    let mut all = Vec::new();
    pointers(body, String::new(), &mut all);
    let at = &all[selector % all.len()];
    let (parent, last) = match at.rfind('/') {
        Some(i) => (
            &at[..i],
            Some(at[i + 1..].replace("~1", "/").replace("~0", "~")),
        ),
        None => ("", None),
    };
    match m {
        Mutation::Replace(v) => {
            if let Some(target) = body.pointer_mut(at) {
                *target = v.clone();
            }
        }
        Mutation::AddField(k, v) => match body.pointer_mut(at) {
            Some(Value::Object(o)) => {
                o.insert(k.clone(), v.clone());
            }
            Some(other) => *other = v.clone(),
            None => {}
        },
        Mutation::Remove | Mutation::Duplicate => {
            let (Some(last), Some(container)) = (last, body.pointer_mut(parent)) else {
                return;
            };
            match container {
                Value::Object(o) if matches!(m, Mutation::Remove) => {
                    o.remove(&last);
                }
                Value::Array(a) => {
                    if let Ok(i) = last.parse::<usize>() {
                        if matches!(m, Mutation::Remove) {
                            a.remove(i);
                        } else {
                            let copy = a[i].clone();
                            a.insert(i, copy);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// What goes on the wire.
#[derive(Debug, Clone)]
enum Wire {
    Json,
    Truncated(usize),
    ByteChanged(usize, u8),
    Nested(usize),
    NoContentType,
    TextContentType,
}

fn wire() -> BoxedStrategy<Wire> {
    prop_oneof![
        12 => Just(Wire::Json),
        2 => any::<usize>().prop_map(Wire::Truncated),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Wire::ByteChanged(i, b)),
        1 => (100usize..300).prop_map(Wire::Nested),
        1 => Just(Wire::NoContentType),
        1 => Just(Wire::TextContentType),
    ]
    .boxed()
}

/// One generated request: the body, its path id, and how it is sent.
#[derive(Debug, Clone)]
struct Case {
    body: Value,
    id: String,
    wire: Wire,
}

fn case(route: Route, backups: &Path) -> BoxedStrategy<Case> {
    let mutated = (
        route.valid(backups),
        proptest::collection::vec(mutation(), 0..4),
    )
        .prop_map(|((mut body, id), mutations)| {
            for m in &mutations {
                mutate(&mut body, m);
            }
            (body, id)
        });
    let arbitrary = (any_json(), route.valid(backups)).prop_map(|(body, (_, id))| (body, id));
    (
        prop_oneof![2 => route.valid(backups), 4 => mutated, 2 => arbitrary],
        wire(),
    )
        .prop_map(|((body, id), wire)| Case { body, id, wire })
        .boxed()
}

/// Keeps every backup of the fuzzer inside `backups`: an absolute path elsewhere (a mutation can
/// write any string) is moved under it, so the test writes nowhere else on the machine.
fn confine_backup(body: &mut Value, backups: &Path) {
    if let Some(Value::String(path)) = body.get_mut("path") {
        let p = PathBuf::from(&*path);
        if p.is_absolute() && !p.starts_with(backups) {
            let inside = path.trim_start_matches('/').replace("..", "_");
            *path = backups.join(inside).display().to_string();
        } else if p.components().any(|c| c == std::path::Component::ParentDir) {
            *path = path.replace("..", "_");
        }
    }
}

// ----- the server and its state -----

struct Fuzzed {
    server: common::Running,
    client: Client,
    token: String,
    backups: tempfile::TempDir,
}

/// Ten items in four categories with tags and prices, eight users with events, and a trained
/// model, so that recommendations run the whole pipeline; and an admin key.
fn start() -> Fuzzed {
    let mut token = String::new();
    let server = common::Running::start(
        |_| {},
        |engine: &Engine| {
            let items = (0..10)
                .map(|i| {
                    let mut item = Item::new(format!("i{i}"));
                    item.categories = vec![format!("c{}", i % 4)];
                    item.tags = vec![format!("t{}", i % 3)];
                    item.properties.insert(
                        "price".into(),
                        cairn_core::PropertyValue::Number(f64::from(i * 7)),
                    );
                    item
                })
                .collect();
            engine.put_items(items).unwrap();
            let events = (0..8)
                .flat_map(|u| {
                    (0..4).map(move |k| {
                        Event::new(format!("u{u}"), format!("i{}", (u + k) % 10), "view")
                    })
                })
                .collect();
            engine.add_events(events).unwrap();
            engine.train().unwrap();
            token = engine.create_key("fuzz", Scope::Admin).unwrap().token;
        },
    );
    Fuzzed {
        server,
        client: common::client(),
        token,
        backups: tempfile::tempdir().unwrap(),
    }
}

/// What the store holds, as seen through the API.
#[derive(Debug, PartialEq)]
struct Snapshot {
    gauges: BTreeMap<String, String>,
    items: Vec<Value>,
    users: Vec<Value>,
    keys: Vec<Value>,
}

impl Fuzzed {
    fn get(&self, path: &str) -> Value {
        let r = self
            .client
            .get(format!("{}{path}", self.server.base))
            .bearer_auth(&self.token)
            .send()
            .expect("GET sent");
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().expect("GET answers JSON")
    }

    fn pages(&self, route: &str, field: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self.get(&format!("{route}?limit=1000&cursor={}", encode(&cursor)));
            all.extend(page[field].as_array().expect("a list").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = next.to_string(),
                None => return all,
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        let metrics = self
            .client
            .get(format!("{}/metrics", self.server.base))
            .bearer_auth(&self.token)
            .send()
            .expect("metrics")
            .text()
            .expect("metrics text");
        let gauges = metrics
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(name, _)| {
                [
                    "cairn_items",
                    "cairn_users",
                    "cairn_events",
                    "cairn_event_log_last_seq",
                ]
                .contains(name)
            })
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let mut keys = self.get("/v1/keys")["keys"]
            .as_array()
            .expect("keys")
            .clone();
        for k in &mut keys {
            // Changes with every request of the key; not stored data.
            k.as_object_mut().expect("a key").remove("last_used_at");
        }
        Snapshot {
            gauges,
            items: self.pages("/v1/items", "items"),
            users: self.pages("/v1/users", "users"),
            keys,
        }
    }

    fn gauge(snapshot: &Snapshot, name: &str) -> u64 {
        snapshot.gauges[name].parse::<f64>().expect("a number") as u64
    }

    /// Sends one case; returns the status and the body's text.
    fn send(&self, route: Route, case: &Case) -> (u16, String) {
        let mut body = case.body.clone();
        if route == Route::Backup {
            confine_backup(&mut body, self.backups.path());
        }
        let mut bytes = serde_json::to_vec(&body).expect("encodes");
        let mut content_type = Some("application/json");
        match case.wire {
            Wire::Json => {}
            // Backups keep their (confined) path whole.
            _ if route == Route::Backup => {}
            Wire::Truncated(at) => bytes.truncate(at % bytes.len().max(1)),
            Wire::ByteChanged(at, b) => {
                let i = at % bytes.len().max(1);
                if let Some(x) = bytes.get_mut(i) {
                    *x = b;
                }
            }
            Wire::Nested(depth) => {
                let mut nested = "[".repeat(depth).into_bytes();
                nested.extend(&bytes);
                nested.extend("]".repeat(depth).into_bytes());
                bytes = nested;
            }
            Wire::NoContentType => content_type = None,
            Wire::TextContentType => content_type = Some("text/plain"),
        }
        let mut request = self
            .client
            .request(
                route.method(),
                format!("{}{}", self.server.base, route.path(&case.id)),
            )
            .bearer_auth(&self.token)
            .body(bytes);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = request.send().expect("request sent");
        let status = response.status().as_u16();
        (status, response.text().expect("body read"))
    }
}

/// That `value` is exactly the house error detail: a code, a message, maybe a field.
fn check_error_detail(detail: &Value) -> Result<(), String> {
    let Some(d) = detail.as_object() else {
        return Err(format!("error is not an object: {detail}"));
    };
    let code_ok = d["code"]
        .as_str()
        .is_some_and(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    let message_ok = d
        .get("message")
        .and_then(Value::as_str)
        .is_some_and(|m| !m.trim().is_empty());
    let field_ok = d.get("field").is_none_or(Value::is_string);
    let only_known = d
        .keys()
        .all(|k| ["code", "message", "field"].contains(&k.as_str()));
    if code_ok && message_ok && field_ok && only_known {
        Ok(())
    } else {
        Err(format!("not the house error shape: {detail}"))
    }
}

/// One case against the server: no 5xx, the house error shape, no write unless accepted.
fn run_case(
    f: &Fuzzed,
    route: Route,
    case: &Case,
    tally: &mut BTreeMap<u16, u64>,
) -> Result<(), TestCaseError> {
    let before = f.snapshot();
    let (status, text) = f.send(route, case);
    *tally.entry(status).or_default() += 1;
    let shown: String = text.chars().take(400).collect();
    prop_assert!(status < 500, "{status} for {case:?}: {shown}");
    let body: Value = serde_json::from_str(&text)
        .map_err(|e| TestCaseError::fail(format!("{status}: not JSON ({e}): {shown}")))?;
    let after = f.snapshot();
    if status >= 400 {
        let only_error = body.as_object().is_some_and(|o| o.len() == 1);
        prop_assert!(only_error, "{status}: more than an error: {shown}");
        check_error_detail(&body["error"]).map_err(TestCaseError::fail)?;
        prop_assert!(
            before == after,
            "{status} refused, but the store changed: {case:?}\nbefore {before:?}\nafter {after:?}"
        );
        return Ok(());
    }
    if !route.writes() {
        prop_assert!(before == after, "a read changed the store: {case:?}");
    }
    match route {
        Route::PostEvents => {
            let stored = body["stored"].as_u64().expect("stored");
            let events = |s: &Snapshot| Fuzzed::gauge(s, "cairn_events");
            let seq = |s: &Snapshot| Fuzzed::gauge(s, "cairn_event_log_last_seq");
            prop_assert_eq!(events(&after), events(&before) + stored, "{}", shown);
            prop_assert_eq!(seq(&after), seq(&before) + stored, "{}", shown);
        }
        Route::BatchRecommend => {
            for result in body["results"].as_array().expect("results") {
                let s = result["status"].as_u64().expect("a status");
                prop_assert!(s < 500, "a batch result is {s}: {result}");
                if s >= 400 {
                    check_error_detail(&result["error"]).map_err(TestCaseError::fail)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn fuzz(route: Route) {
    let f = start();
    let config = config(DEFAULT_CASES);
    let cases = config.cases;
    let mut runner = TestRunner::new(config);
    let tally = std::cell::RefCell::new(BTreeMap::new());
    let strategy = case(route, f.backups.path());
    runner
        .run(&strategy, |c| {
            run_case(&f, route, &c, &mut tally.borrow_mut())
        })
        .unwrap();
    println!(
        "{route:?}: {cases} cases, statuses {:?}",
        tally.into_inner()
    );
}

#[test]
fn post_items_bodies() {
    fuzz(Route::PostItems);
}

#[test]
fn put_item_bodies() {
    fuzz(Route::PutItem);
}

#[test]
fn post_users_bodies() {
    fuzz(Route::PostUsers);
}

#[test]
fn put_user_bodies() {
    fuzz(Route::PutUser);
}

#[test]
fn post_events_bodies() {
    fuzz(Route::PostEvents);
}

#[test]
fn recommendation_bodies() {
    fuzz(Route::Recommend);
}

#[test]
fn batch_recommendation_bodies() {
    fuzz(Route::BatchRecommend);
}

#[test]
fn post_keys_bodies() {
    fuzz(Route::PostKeys);
}

#[test]
fn backup_bodies() {
    fuzz(Route::Backup);
}
