//! Access control end to end: the real server on 127.0.0.1:0, driven over HTTP with API keys of each
//! scope; the audit log; the rate limit; CORS; and the refusal to serve a public address without keys.

use std::sync::Arc;

use cairn_core::{Event, Item};
use cairn_engine::{Config, Engine, Scope};
use reqwest::blocking::Client;
use reqwest::Method;
use serde_json::{json, Value};

mod common;

struct TestServer {
    base: String,
    client: Client,
    server: common::Running,
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
    text: String,
}

impl Reply {
    fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.text);
        &self.body
    }

    fn expect_error(&self, status: u16, code: &str) -> String {
        self.expect(status);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.text);
        self.body["error"]["message"]
            .as_str()
            .expect("a message")
            .to_string()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Ten items and a few users with events, trained (so no startup training runs), so that
/// recommendations and training have data.
fn catalog(engine: &Engine) {
    engine
        .put_items((0..10).map(|i| Item::new(format!("i{i}"))).collect())
        .unwrap();
    let events = (0..6)
        .flat_map(|u| {
            (0..5).map(move |k| Event::new(format!("u{u}"), format!("i{}", (u + k) % 10), "view"))
        })
        .collect();
    engine.add_events(events).unwrap();
    engine.train().unwrap();
}

impl TestServer {
    fn start(configure: impl FnOnce(&mut Config), prepare: impl FnOnce(&Engine)) -> TestServer {
        let server = common::Running::start(configure, prepare);
        TestServer {
            base: server.base.clone(),
            client: common::client(),
            server,
        }
    }

    fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None)
    }

    fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body))
    }

    fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::DELETE, path, token, None)
    }

    fn create_key(&self, token: Option<&str>, name: &str, scope: &str) -> (String, String) {
        let reply = self.post("/v1/keys", token, json!({"name": name, "scope": scope}));
        let body = reply.expect(201);
        assert_eq!(body["scope"], scope);
        (
            body["id"].as_str().expect("id").to_string(),
            body["token"].as_str().expect("token").to_string(),
        )
    }

    /// Stops the server (closing the store) and hands over its data directory.
    fn stop(self) -> tempfile::TempDir {
        self.server.stop()
    }
}

#[test]
fn keys_scopes_revocation_and_the_audit_log() {
    let server = TestServer::start(|_| {}, catalog);

    // No key yet: open, on loopback, so the quick start works; the first admin key is made here.
    server.get("/v1/popular", None).expect(200);
    let (admin_id, admin) = server.create_key(None, "ops", "admin");
    assert!(admin.starts_with("cairn_") && admin.len() > 60, "{admin}");

    // From now on every route but the health checks and the document needs a key.
    let refused = server.get("/v1/popular", None);
    let message = refused.expect_error(401, "unauthorized");
    assert!(message.contains("Authorization: Bearer"), "{message}");
    assert!(refused
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer"));
    server.get("/healthz", None).expect(200);
    server.get("/openapi.json", None).expect(200);
    let bad = server.get("/v1/popular", Some("cairn_0000"));
    bad.expect_error(401, "unauthorized");
    assert!(bad
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));
    server
        .call(Method::GET, "/v1/popular", None, None)
        .expect_error(401, "unauthorized");

    let (read_id, read) = server.create_key(Some(&admin), "dashboard", "read");
    let (_, ingest) = server.create_key(Some(&admin), "backend", "ingest");

    // read: recommendations and item reads, nothing that writes.
    server
        .get("/v1/users/u0/recommendations", Some(&read))
        .expect(200);
    server.get("/v1/items/i1", Some(&read)).expect(200);
    let event = json!({"events": [{"user_id": "u9", "item_id": "i3", "type": "view"}]});
    let message = server
        .post("/v1/events", Some(&read), event.clone())
        .expect_error(403, "forbidden");
    assert!(
        message.contains("`ingest`") && message.contains("dashboard"),
        "{message}"
    );
    let message = server
        .delete("/v1/users/u0", Some(&read))
        .expect_error(403, "forbidden");
    assert!(message.contains("`admin`"), "{message}");

    // ingest: writes events, cannot train, delete or manage keys.
    server.post("/v1/events", Some(&ingest), event).expect(200);
    server
        .call(Method::POST, "/v1/train", Some(&ingest), None)
        .expect_error(403, "forbidden");
    server
        .post(
            "/v1/keys",
            Some(&ingest),
            json!({"name": "x", "scope": "admin"}),
        )
        .expect_error(403, "forbidden");
    server
        .get("/v1/users/u0/events", Some(&ingest))
        .expect_error(403, "forbidden");

    // admin: everything.
    server
        .call(Method::POST, "/v1/train", Some(&admin), None)
        .expect(200);
    server.delete("/v1/users/u1", Some(&admin)).expect(200);
    let keys = server.get("/v1/keys", Some(&admin));
    let listed = keys.expect(200)["keys"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|k| k.get("token").is_none()));
    assert!(!keys.text.contains(&read) && !keys.text.contains(&admin));
    let ops = listed
        .iter()
        .find(|k| k["id"] == admin_id.as_str())
        .unwrap();
    assert!(ops["last_used_at"].as_i64().is_some());
    server
        .post(
            "/v1/keys",
            Some(&admin),
            json!({"name": "x", "scope": "root"}),
        )
        .expect_error(400, "invalid_argument");

    // Revocation takes effect at once.
    server
        .delete(&format!("/v1/keys/{read_id}"), Some(&admin))
        .expect(204);
    server
        .get("/v1/popular", Some(&read))
        .expect_error(401, "unauthorized");
    server
        .delete(&format!("/v1/keys/{read_id}"), Some(&admin))
        .expect_error(404, "key_not_found");

    // The audit log: who, what, when, newest first, in pages; only admin requests are in it.
    let page = server.get("/v1/audit?limit=3", Some(&admin));
    let body = page.expect(200);
    let entries = body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["action"], format!("DELETE /v1/keys/{read_id}"));
    assert_eq!(entries[0]["status"], 404);
    assert_eq!(entries[1]["action"], format!("DELETE /v1/keys/{read_id}"));
    assert_eq!(entries[1]["target"], read_id.as_str());
    assert_eq!(entries[1]["status"], 204);
    assert_eq!(entries[1]["key_id"], admin_id.as_str());
    assert_eq!(entries[1]["key_name"], "ops");
    assert!(entries[1]["at"].as_i64().unwrap() > 1_700_000_000);
    let cursor = body["next_cursor"].as_str().expect("more pages");
    let rest = server.get(
        &format!("/v1/audit?limit=1000&cursor={cursor}"),
        Some(&admin),
    );
    let older = rest.expect(200)["entries"].as_array().unwrap().clone();
    assert!(rest.body["next_cursor"].is_null());
    let actions: Vec<&str> = older
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"POST /v1/train"), "{actions:?}");
    // An erasure is audited without the id it erased.
    assert!(
        actions.contains(&"DELETE /v1/users/[erased]"),
        "{actions:?}"
    );
    assert!(!actions.contains(&"POST /v1/events"), "{actions:?}");
    let first = older.last().unwrap();
    assert_eq!(
        (
            first["action"].as_str(),
            first["key_id"].as_str(),
            first["status"].as_u64()
        ),
        (Some("POST /v1/keys"), Some("anonymous"), Some(201))
    );
    let seqs: Vec<u64> = entries
        .iter()
        .chain(&older)
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] == w[1] + 1), "{seqs:?}");

    // Tokens are stored only as digests: no token appears in the store file.
    let dir = server.stop();
    let bytes = std::fs::read(dir.path().join("cairn.redb")).unwrap();
    for token in [&admin, &read, &ingest] {
        let found = bytes.windows(token.len()).any(|w| w == token.as_bytes());
        assert!(!found, "a token is in the store file");
    }
    let engine = Engine::open(Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    })
    .unwrap();
    assert_eq!(
        engine.authenticate(&admin).map(|k| k.name),
        Some("ops".into())
    );
    assert_eq!(engine.authenticate(&read), None);
}

#[test]
fn a_key_over_its_rate_gets_429_with_retry_after() {
    let mut tokens = Vec::new();
    let server = TestServer::start(
        |c| {
            // Half a request per second, two at once: the third quick request is over.
            c.auth.rate_limit_per_sec = 0.5;
            c.auth.rate_limit_burst = 2;
        },
        |engine| {
            for name in ["a", "b"] {
                tokens.push(engine.create_key(name, Scope::Read).unwrap().token);
            }
        },
    );
    let (a, b) = (&tokens[0], &tokens[1]);
    server.get("/v1/popular", Some(a)).expect(200);
    server.get("/v1/popular", Some(a)).expect(200);
    let limited = server.get("/v1/popular", Some(a));
    let message = limited.expect_error(429, "rate_limited");
    assert!(message.contains("retry in"), "{message}");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After: {retry}");
    // Each key has its own bucket; unauthenticated requests do not spend a key's tokens.
    server.get("/v1/popular", Some(b)).expect(200);
    server.get("/healthz", None).expect(200);
}

#[test]
fn keys_with_their_own_limits_get_429_at_their_own_rates_and_their_last_use_is_kept() {
    // The default: 3 requests at once, then one per 1000 s (none comes back during the test).
    let server = TestServer::start(
        |c| {
            c.auth.rate_limit_per_sec = 0.001;
            c.auth.rate_limit_burst = 3;
        },
        catalog,
    );
    let create = |token: Option<&str>, body: Value| {
        let created = server.post("/v1/keys", token, body).expect(201).clone();
        (
            created["id"].as_str().unwrap().to_string(),
            created["token"].as_str().unwrap().to_string(),
            created,
        )
    };
    // The admin key is not limited (rate 0), so that it can set up and look.
    let (_, admin, body) = create(
        None,
        json!({"name": "ops", "scope": "admin", "rate_limit_per_sec": 0}),
    );
    assert_eq!(
        (&body["rate_limit_per_sec"], &body["rate_limit_burst"]),
        (&json!(0.0), &json!(1))
    );
    let admin_token = admin.clone();
    let admin = Some(admin.as_str());
    let (slow_id, slow, _) = create(
        admin,
        json!({"name": "slow", "scope": "read", "rate_limit_per_sec": 0.01, "rate_limit_burst": 2}),
    );
    let (fast_id, fast, _) = create(
        admin,
        json!({"name": "fast", "scope": "read", "rate_limit_per_sec": 0.01, "rate_limit_burst": 7}),
    );
    let (plain_id, plain, body) = create(admin, json!({"name": "plain", "scope": "read"}));
    assert!(body["rate_limit_per_sec"].is_null(), "{body}");

    // Ten requests at once from each: each key gets through as many as its own burst allows.
    let allowed = |token: &str| {
        (0..10)
            .filter(|_| {
                let reply = server.get("/v1/popular", Some(token));
                if reply.status == 429 {
                    reply.expect_error(429, "rate_limited");
                    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
                    assert!(retry >= 1, "Retry-After: {retry}");
                    false
                } else {
                    reply.expect(200);
                    true
                }
            })
            .count()
    };
    assert_eq!(allowed(&slow), 2);
    assert_eq!(allowed(&fast), 7);
    assert_eq!(allowed(&plain), 3);
    assert_eq!(allowed(&admin_token), 10);

    // Wrong limits are refused.
    for (body, field) in [
        (
            json!({"name": "x", "scope": "read", "rate_limit_burst": 5}),
            "rate_limit_burst",
        ),
        (
            json!({"name": "x", "scope": "read", "rate_limit_per_sec": -1}),
            "rate_limit_per_sec",
        ),
    ] {
        let message = server
            .post("/v1/keys", admin, body)
            .expect_error(400, "invalid_argument");
        assert!(message.contains(field), "{message}");
    }

    // The listing shows each key's limit and last use.
    let list = server.get("/v1/keys", admin).expect(200).clone();
    let key = |id: &str| {
        list["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(key(&fast_id)["rate_limit_burst"], 7);
    assert_eq!(key(&slow_id)["rate_limit_per_sec"], 0.01);
    assert!(key(&plain_id)["rate_limit_burst"].is_null());
    let before = cairn_core::now_unix();
    for id in [&slow_id, &fast_id, &plain_id] {
        let used = key(id)["last_used_at"].as_i64().expect("used");
        assert!(used <= before && used > before - 600, "{used}");
    }

    // The last use was written to the store: it is there after a restart.
    let dir = server.stop();
    let engine = Engine::open(Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    })
    .unwrap();
    let keys = engine.list_keys();
    assert_eq!(keys.len(), 4);
    assert!(keys.iter().all(|k| k.last_used_at.is_some()), "{keys:?}");
    let fast = keys.iter().find(|k| k.id == fast_id).unwrap();
    assert_eq!(
        fast.rate_limit,
        Some(cairn_engine::RateLimit {
            per_sec: 0.01,
            burst: 7
        })
    );
}

#[test]
fn cors_is_off_by_default_and_answers_configured_origins() {
    let preflight = |server: &TestServer| {
        server
            .client
            .request(Method::OPTIONS, format!("{}/v1/popular", server.base))
            .header("origin", "https://shop.example")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
            .unwrap()
    };
    let closed = TestServer::start(|_| {}, |_| {});
    let reply = preflight(&closed);
    assert!(reply.headers().get("access-control-allow-origin").is_none());
    let open = TestServer::start(
        |c| c.auth.cors_origins = vec!["https://shop.example".into()],
        |_| {},
    );
    let reply = preflight(&open);
    assert_eq!(reply.status(), 200);
    assert_eq!(
        reply.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
}

#[test]
fn a_public_address_without_keys_is_refused_unless_insecure() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let serve_public = |configure: fn(&mut Config), key: bool| {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        configure(&mut config);
        let engine = Engine::open(config).unwrap();
        if key {
            engine.create_key("ops", Scope::Admin).unwrap();
        }
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
            // Shut down at once: only whether serving starts matters here.
            cairn_server::serve(Arc::new(engine), listener, async {}).await
        })
    };
    let refused = serve_public(|_| {}, false).unwrap_err();
    let message = refused.to_string();
    assert!(
        message.contains("--insecure") && message.contains("cairn keys create"),
        "{message}"
    );
    serve_public(|_| {}, true).expect("a key makes a public address allowed");
    serve_public(|c| c.auth.insecure = true, false).expect("insecure serves open on purpose");
}
