//! Several apps in one deployment, end to end: the real server on 127.0.0.1:0 with the default app
//! and the apps `alpha` and `beta` (each its own store under the data directory), driven over HTTP
//! only. Nothing one app's requests do may read or change another's data: catalogs, users, events,
//! exports, recommendations and their cursors, models, keys. Plus per-app quotas and rate limits.

use reqwest::blocking::Client;
use reqwest::Method;
use serde_json::{json, Value};

mod common;

struct Reply {
    status: u16,
    body: Value,
    text: String,
}

impl Reply {
    fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.text);
        &self.body
    }

    fn ok(&self) -> &Value {
        self.expect(200)
    }

    fn error(&self, status: u16, code: &str) -> &Value {
        self.expect(status);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.text);
        &self.body
    }
}

struct Api {
    base: String,
    client: Client,
}

impl Api {
    /// `app` is `None` for the default app's routes.
    fn send(
        &self,
        app: Option<&str>,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let url = match app {
            Some(app) => format!(
                "{}/v1/apps/{app}{}",
                self.base,
                path.trim_start_matches("/v1")
            ),
            None => format!("{}{path}", self.base),
        };
        let mut request = self.client.request(method, &url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().expect("request");
        let status = response.status().as_u16();
        let text = response.text().expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, body, text }
    }
}

/// One app (or the default) and its admin key.
struct Tenant<'a> {
    api: &'a Api,
    app: Option<&'static str>,
    token: String,
}

impl Tenant<'_> {
    fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.api
            .send(self.app, method, path, Some(&self.token), body)
    }
    fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None)
    }
    fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body))
    }
    fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None)
    }
    fn with_token(&self, token: &str) -> Tenant<'_> {
        Tenant {
            api: self.api,
            app: self.app,
            token: token.to_string(),
        }
    }

    /// Every item id of the catalog, through the pages of `GET /v1/items`.
    fn item_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self.get(&format!("/v1/items?limit=7&cursor={cursor}"));
            let page = page.ok();
            for item in page["items"].as_array().expect("items") {
                ids.push(item["id"].as_str().expect("id").to_string());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = c.to_string(),
                None => return ids,
            }
        }
    }

    fn user_ids(&self) -> Vec<String> {
        let page = self.get("/v1/users?limit=1000");
        page.ok()["users"]
            .as_array()
            .expect("users")
            .iter()
            .map(|u| u["id"].as_str().expect("id").to_string())
            .collect()
    }

    fn list_ids(&self, path: &str) -> Vec<String> {
        self.get(path).ok()["items"]
            .as_array()
            .unwrap_or_else(|| panic!("items of {path}"))
            .iter()
            .map(|r| r["item_id"].as_str().expect("item_id").to_string())
            .collect()
    }
}

/// Creates the first (admin) key of `app` while the server is open on loopback.
fn first_key<'a>(api: &'a Api, app: Option<&'static str>) -> Tenant<'a> {
    let created = api.send(
        app,
        Method::POST,
        "/v1/keys",
        None,
        Some(json!({"name": "ops", "scope": "admin"})),
    );
    let token = created.expect(201)["token"]
        .as_str()
        .expect("token")
        .to_string();
    Tenant { api, app, token }
}

/// `prefix-i0..29` in 3 categories, an item `common` that each app holds with its own title, 24
/// users `prefix-u*` with 8 views each inside their group, and the user `common` with 4 views.
fn fill(t: &Tenant, prefix: &str) {
    let mut items: Vec<Value> = (0..30)
        .map(|i| json!({"id": format!("{prefix}-i{i}"), "categories": [format!("c{}", i % 3)]}))
        .collect();
    items.push(json!({"id": "common", "title": format!("{prefix}'s common item")}));
    assert_eq!(
        t.post("/v1/items", json!({"items": items})).ok()["upserted"],
        31
    );
    let mut users: Vec<Value> = (0..24)
        .map(|u| json!({"id": format!("{prefix}-u{u}")}))
        .collect();
    users.push(json!({"id": "common", "properties": {"home": prefix}}));
    t.post("/v1/users", json!({"users": users})).ok();
    let mut events = Vec::new();
    for u in 0..24 {
        for n in 0..8 {
            let item = (u % 3) + 3 * ((u * 5 + n * 7) % 10);
            events.push(json!({
                "user_id": format!("{prefix}-u{u}"),
                "item_id": format!("{prefix}-i{item}"),
                "type": "view",
                "timestamp": 1_700_000_000 + u * 100 + n,
            }));
        }
    }
    for n in 0..4 {
        events.push(json!({
            "user_id": "common",
            "item_id": format!("{prefix}-i{n}"),
            "type": "view",
            "timestamp": 1_700_000_000 + n,
        }));
    }
    let stored = t.post("/v1/events", json!({"events": events}));
    assert_eq!(stored.ok()["stored"], 24 * 8 + 4);
}

fn only_prefixed(ids: &[String], prefix: &str, what: &str) {
    assert!(!ids.is_empty(), "{what}: empty");
    for id in ids {
        assert!(
            id.starts_with(&format!("{prefix}-")) || id == "common",
            "{what}: `{id}` is not {prefix}'s"
        );
    }
}

fn start() -> (common::Running, Api) {
    let server = common::Running::start_apps(|c| {
        c.train.interval_secs = 0;
        c.apps.insert("alpha".into(), json!({}));
        c.apps
            .insert("beta".into(), json!({"serve": {"default_k": 5}}));
    });
    let api = Api {
        base: server.base.clone(),
        client: common::client(),
    };
    (server, api)
}

#[test]
fn no_request_of_one_app_reads_or_changes_another_apps_data() {
    let (_server, api) = start();
    let default = first_key(&api, None);
    let alpha = first_key(&api, Some("alpha"));
    let beta = first_key(&api, Some("beta"));
    fill(&alpha, "alpha");
    fill(&beta, "beta");
    default
        .post(
            "/v1/items",
            json!({"items": [{"id": "d-0"}, {"id": "d-1"}]}),
        )
        .ok();

    // Keys: each app knows its own keys only.
    for (tenant, foreign) in [
        (&beta, &alpha.token),
        (&default, &alpha.token),
        (&alpha, &beta.token),
        (&alpha, &default.token),
    ] {
        let other = tenant.with_token(foreign);
        other.get("/v1/items").error(401, "unauthorized");
        other.get("/metrics").error(401, "unauthorized");
        other
            .post("/v1/items", json!({"items": [{"id": "intruder"}]}))
            .error(401, "unauthorized");
    }
    let keys = alpha.get("/v1/keys");
    assert_eq!(keys.ok()["keys"].as_array().unwrap().len(), 1);
    // Without a key, an app that has keys refuses too (its own rule, not the default app's).
    api.send(Some("beta"), Method::GET, "/v1/items", None, None)
        .error(401, "unauthorized");

    // An unknown app: 404 with a stable code, key or not.
    for token in [None, Some(alpha.token.as_str())] {
        api.send(Some("gamma"), Method::GET, "/v1/items", token, None)
            .error(404, "app_not_found");
    }
    api.send(Some("ALPHA"), Method::GET, "/v1/items", None, None)
        .error(404, "app_not_found");

    // Catalogs: lists and gets.
    only_prefixed(&alpha.item_ids(), "alpha", "alpha's items");
    only_prefixed(&beta.item_ids(), "beta", "beta's items");
    assert_eq!(default.item_ids(), ["d-0", "d-1"]);
    assert_eq!(alpha.item_ids().len(), 31);
    beta.get("/v1/items/alpha-i0").error(404, "item_not_found");
    default
        .get("/v1/items/alpha-i0")
        .error(404, "item_not_found");
    alpha.get("/v1/items/d-0").error(404, "item_not_found");
    let common_title = |t: &Tenant| t.get("/v1/items/common").ok()["title"].clone();
    assert_eq!(common_title(&alpha), "alpha's common item");
    assert_eq!(common_title(&beta), "beta's common item");
    // A listing cursor is a position, not a grant: alpha's, used on beta, pages beta's items.
    let page = alpha.get("/v1/items?limit=3");
    let alpha_cursor = page.ok()["next_cursor"].as_str().unwrap().to_string();
    let ids: Vec<String> = beta
        .get(&format!("/v1/items?limit=1000&cursor={alpha_cursor}"))
        .ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    only_prefixed(&ids, "beta", "beta's page after alpha's cursor");

    // Users, their histories and exports.
    only_prefixed(&alpha.user_ids(), "alpha", "alpha's users");
    only_prefixed(&beta.user_ids(), "beta", "beta's users");
    assert!(default.user_ids().is_empty());
    beta.get("/v1/users/alpha-u0").error(404, "user_not_found");
    assert_eq!(
        alpha.get("/v1/users/common").ok()["properties"]["home"],
        "alpha"
    );
    let history = |t: &Tenant| -> Vec<String> {
        t.get("/v1/users/common/events?limit=100").ok()["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["item_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(history(&alpha).len(), 4);
    only_prefixed(&history(&alpha), "alpha", "alpha's history of common");
    only_prefixed(&history(&beta), "beta", "beta's history of common");
    let export = beta.get("/v1/users/common/export");
    assert_eq!(export.ok()["events"].as_array().unwrap().len(), 4);
    assert!(!export.text.contains("alpha"), "{}", export.text);
    assert!(
        default.get("/v1/users/common/events?limit=10").ok()["events"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // An app cannot write events about another app's items.
    beta.post(
        "/v1/events",
        json!({"events": [{"user_id": "x", "item_id": "alpha-i0", "type": "view"}]}),
    )
    .error(400, "invalid_argument");

    // Training alpha trains alpha only.
    let models = |t: &Tenant| t.get("/v1/models").ok().clone();
    let beta_models_before = models(&beta);
    assert!(beta_models_before["versions"]
        .as_array()
        .unwrap()
        .is_empty());
    let trained = alpha.post("/v1/train", json!({}));
    let alpha_version = trained.ok()["version"].as_str().unwrap().to_string();
    assert_eq!(models(&beta), beta_models_before);
    beta.get("/v1/model").error(404, "model_not_found");
    default.get("/v1/model").error(404, "model_not_found");
    assert_eq!(alpha.get("/v1/model").ok()["version"], alpha_version);
    // Beta trains its own; a second training of alpha leaves beta's registry as it was.
    beta.post("/v1/train", json!({})).ok();
    let beta_models = models(&beta);
    assert_eq!(beta_models["versions"].as_array().unwrap().len(), 1);
    assert_eq!(models(&alpha)["versions"].as_array().unwrap().len(), 1);
    alpha
        .post(
            "/v1/events",
            json!({"events": [{"user_id": "alpha-u1", "item_id": "alpha-i2", "type": "purchase"}]}),
        )
        .ok();
    alpha.post("/v1/train", json!({})).ok();
    assert_eq!(models(&beta), beta_models);
    assert_eq!(models(&alpha)["versions"].as_array().unwrap().len(), 2);

    // Recommendations, similar, popular and trending: each app's own items only.
    for (t, prefix) in [(&alpha, "alpha"), (&beta, "beta")] {
        for user in ["alpha-u0", "beta-u0", "common", "nobody"] {
            let ids = t.list_ids(&format!("/v1/users/{user}/recommendations?k=10"));
            only_prefixed(&ids, prefix, &format!("{prefix}'s list for {user}"));
        }
        only_prefixed(&t.list_ids("/v1/popular?k=10"), prefix, "popular");
        let similar = t.list_ids(&format!("/v1/items/{prefix}-i0/similar?k=5"));
        only_prefixed(&similar, prefix, "similar");
    }
    beta.get("/v1/items/alpha-i0/similar")
        .error(404, "item_not_found");
    // Beta's own configuration (`serve.default_k = 5`) applies to beta alone.
    assert_eq!(beta.list_ids("/v1/popular").len(), 5);
    assert!(alpha.list_ids("/v1/popular").len() > 5);

    // A recommendation cursor of alpha's is refused by beta and by the default app, even for a
    // user of the same id.
    let first = alpha
        .get("/v1/users/common/recommendations?k=3")
        .ok()
        .clone();
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let next = format!("/v1/users/common/recommendations?k=3&cursor={cursor}");
    only_prefixed(
        &alpha.list_ids(&next),
        "alpha",
        "alpha's second page with its own cursor",
    );
    for t in [&beta, &default] {
        let refused = t.get(&next);
        assert!(
            (400..500).contains(&refused.status) && refused.body["error"]["code"].is_string(),
            "{}",
            refused.text
        );
    }

    // Deletes and erasures in beta leave alpha's data as it was.
    beta.delete("/v1/items/common").expect(204);
    assert_eq!(common_title(&alpha), "alpha's common item");
    beta.delete("/v1/items/alpha-i0")
        .error(404, "item_not_found");
    alpha.get("/v1/items/alpha-i0").ok();
    beta.delete("/v1/users/common").ok();
    beta.get("/v1/users/common").error(404, "user_not_found");
    assert_eq!(history(&alpha).len(), 4);
    assert_eq!(
        alpha.get("/v1/users/common").ok()["properties"]["home"],
        "alpha"
    );
    // Revoking beta's key changes nothing for alpha's.
    let beta_key_id = beta.get("/v1/keys").ok()["keys"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    alpha
        .delete(&format!("/v1/keys/{beta_key_id}"))
        .error(404, "key_not_found");
    beta.get("/v1/items/beta-i0").ok();

    // Metrics are each app's own: alpha's count alpha's catalog.
    let gauge = |t: &Tenant, name: &str| -> f64 {
        let text = t.get("/metrics").text;
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in {text}"))
            .parse()
            .unwrap()
    };
    assert_eq!(gauge(&alpha, "cairn_items"), 31.0);
    assert_eq!(gauge(&beta, "cairn_items"), 30.0);
    assert_eq!(gauge(&default, "cairn_items"), 2.0);
    // Each app's health and readiness at its own path.
    api.send(Some("alpha"), Method::GET, "/healthz", None, None)
        .ok();
}

#[test]
fn each_app_is_held_to_its_own_quotas_and_rate_limit() {
    let server = common::Running::start_apps(|c| {
        c.train.interval_secs = 0;
        c.apps.insert(
            "small".into(),
            json!({"quota": {"max_items": 3, "max_events": 5}}),
        );
        c.apps.insert(
            "slow".into(),
            json!({"auth": {"rate_limit_per_sec": 0.01, "rate_limit_burst": 3}}),
        );
    });
    let api = Api {
        base: server.base.clone(),
        client: common::client(),
    };
    let default = first_key(&api, None);
    let small = first_key(&api, Some("small"));
    let slow = first_key(&api, Some("slow"));

    let items = |n: usize| json!({"items": (0..n).map(|i| json!({"id": format!("i{i}")})).collect::<Vec<_>>()});
    small.post("/v1/items", items(3)).ok();
    // A fourth item is refused whole, with the setting named; rewriting stored ones is not new.
    let refused = small.post("/v1/items", json!({"items": [{"id": "i1"}, {"id": "i9"}]}));
    let message = refused.error(403, "quota_exceeded")["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("quota.max_items"), "{message}");
    small.get("/v1/items/i9").error(404, "item_not_found");
    small
        .post(
            "/v1/items",
            json!({"items": [{"id": "i1", "title": "renamed"}]}),
        )
        .ok();
    let events = |n: usize, user: &str| json!({"events": (0..n).map(|i| json!({"user_id": user, "item_id": format!("i{}", i % 3), "type": "view", "timestamp": 1_700_000_000 + i})).collect::<Vec<_>>()});
    small.post("/v1/events", events(4, "u")).ok();
    small
        .post("/v1/events", events(2, "v"))
        .error(403, "quota_exceeded");
    small.post("/v1/events", events(1, "w")).ok();
    small
        .post("/v1/events", events(1, "x"))
        .error(403, "quota_exceeded");
    assert_eq!(small.item_ids().len(), 3);
    // The default app has no quota.
    default.post("/v1/items", items(10)).ok();
    default.post("/v1/events", events(20, "u")).ok();

    // `slow`'s keys get 3 requests, then 429; the default app's key is not limited.
    let statuses: Vec<u16> = (0..5).map(|_| slow.get("/v1/items").status).collect();
    // The key's creation did not go through its own bucket; the fourth request is refused.
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    assert!((0..10).all(|_| default.get("/v1/items").status == 200));
}
