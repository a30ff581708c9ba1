//! The web dashboard over HTTP: open mode without keys, the login with an admin key, the session
//! cookie's flags, CSRF refusals, promote and rollback through its forms, and 4xx for bad input.
//! (The end-to-end browser tests are tests/browser/, run by scripts/browser-tests.sh.)

use cairn_core::{Event, Item};
use cairn_engine::{Engine, Scope};
use reqwest::blocking::{Client, Response};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;

mod common;

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .unwrap()
}

/// 60 items in 3 categories, 120 users each viewing 10 items of one group.
fn seed(engine: &Engine) {
    let items = (0..60)
        .map(|i| {
            let mut item = Item::new(format!("i{i}"));
            item.categories = vec![format!("c{}", i / 20)];
            item.title = Some(format!("Item number {i}"));
            item
        })
        .collect();
    engine.put_items(items).unwrap();
    let mut events = Vec::new();
    for u in 0..120usize {
        let g = u % 3;
        for n in 0..10usize {
            let item = g * 20 + (u * 7 + n * 3) % 20;
            events.push(
                Event::new(format!("u{u}"), format!("i{item}"), "view")
                    .at(1_700_000_000 + (u * 20 + n) as i64),
            );
        }
    }
    engine.add_events(events).unwrap();
}

/// The value of cookie `name` set by `r`, and the whole `Set-Cookie` line.
fn set_cookie(r: &Response, name: &str) -> Option<(String, String)> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|line| {
            let value = line[name.len() + 1..]
                .split(';')
                .next()
                .unwrap()
                .to_string();
            (value, line.to_string())
        })
}

/// The CSRF token of the first form in `html`.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..at + 64].to_string()
}

#[test]
fn open_mode_serves_pages_with_an_anonymous_session() {
    let server = common::Running::start(
        |c| c.train.ranker.enabled = false,
        |e| {
            seed(e);
            e.train().unwrap();
        },
    );
    let http = client();
    let base = &server.base;
    let r = http.get(format!("{base}/")).send().unwrap();
    assert_eq!(r.status(), 200);
    let (token, line) = set_cookie(&r, "cairn_session").expect("a session cookie");
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Strict"),
        "{line}"
    );
    assert!(!line.contains("Secure"), "no TLS, no Secure flag: {line}");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(r.headers().contains_key("server-timing"));
    let html = r.text().unwrap();
    assert!(html.contains("<h1>Overview</h1>"), "{html}");
    assert!(html.contains("Items</dt><dd>60</dd>"), "{html}");
    let cookie = format!("cairn_session={token}");
    for path in [
        "/models",
        "/items",
        "/items?q=number%201&category=c0",
        "/items/i3",
        "/users",
        "/users/u1",
        "/preview",
        "/preview?user=u1&placement=home&compare=item-page",
        "/reports",
        "/assets/dashboard.css",
    ] {
        let r = http
            .get(format!("{base}{path}"))
            .header(COOKIE, &cookie)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    // A search by category lists only that category's items.
    let html = http
        .get(format!("{base}/items?category=c1&rows=100"))
        .header(COOKIE, &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(html.matches("href=\"/items/i").count(), 20, "{html}");
    assert!(html.contains("/items/i20\"") && !html.contains("/items/i0\""));
    // A user id search opens the user's page.
    let r = http
        .get(format!("{base}/users?q=u7"))
        .header(COOKIE, &cookie)
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/users/u7");
    // The preview with a filter lists only matching items.
    let html = http
        .get(format!(
            "{base}/preview?user=u1&placement=home&filter=category%20%3D%3D%20%22c2%22&k=10"
        ))
        .header(COOKIE, &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let listed: Vec<u32> = html
        .split("<td><a href=\"/items/i")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
        .collect();
    assert!(!listed.is_empty(), "{html}");
    assert!(listed.iter().all(|i| (40..60).contains(i)), "{listed:?}");
}

#[test]
fn bad_input_is_a_4xx_page() {
    let server = common::Running::start(
        |c| c.train.ranker.enabled = false,
        |e| {
            seed(e);
            e.train().unwrap();
        },
    );
    let http = client();
    let base = &server.base;
    let r = http.get(format!("{base}/")).send().unwrap();
    let (token, _) = set_cookie(&r, "cairn_session").unwrap();
    let cookie = format!("cairn_session={token}");
    for (path, status) in [
        ("/items?rows=0", 400),
        ("/items?rows=101", 400),
        ("/items?bogus=1", 400),
        ("/models?page=0", 400),
        ("/models?page=99", 400),
        ("/reports?page=2", 400),
        ("/preview?user=u1&k=0", 400),
        ("/preview?user=u1&k=100000", 400),
        ("/preview?user=u1&placement=nope", 400),
        ("/preview?user=u1&placement=home&filter=((((", 400),
        ("/models/confirm?action=explode", 400),
        ("/models/confirm?action=promote&version=nope", 404),
        ("/reports/..%2Fx", 400),
        ("/reports/missing", 404),
        ("/items/nope", 404),
        ("/users/nope", 404),
        ("/users/u1?rows=1000", 400),
    ] {
        let r = http
            .get(format!("{base}{path}"))
            .header(COOKIE, &cookie)
            .send()
            .unwrap();
        assert_eq!(r.status(), status, "{path}");
        let html = r.text().unwrap();
        assert!(html.contains("role=\"alert\""), "{path}: {html}");
    }
    // The API's own routes still answer JSON, and unknown routes the API's 404.
    let r = http.get(format!("{base}/nothing-here")).send().unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"]["code"], "route_not_found");
}

#[test]
fn with_keys_the_pages_need_a_login_with_an_admin_key() {
    let mut admin = String::new();
    let mut reader = String::new();
    let server = common::Running::start(
        |c| c.train.ranker.enabled = false,
        |e| {
            seed(e);
            e.train().unwrap();
            admin = e.create_key("ops", Scope::Admin).unwrap().token;
            reader = e.create_key("app", Scope::Read).unwrap().token;
        },
    );
    let http = client();
    let base = &server.base;
    // No session: pages redirect to the login, posts are refused.
    let r = http.get(format!("{base}/models")).send().unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/login");
    let r = http.post(format!("{base}/logout")).send().unwrap();
    assert_eq!(r.status(), 401);
    // A forged anonymous-looking cookie opens nothing.
    let r = http
        .get(format!("{base}/"))
        .header(COOKIE, format!("cairn_session={}", "0".repeat(64)))
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);

    let login = |key: &str, with_token: bool| -> Response {
        let form = http.get(format!("{base}/login")).send().unwrap();
        assert_eq!(form.status(), 200);
        let (login_cookie, line) = set_cookie(&form, "cairn_login").unwrap();
        assert!(line.contains("HttpOnly") && line.contains("SameSite=Strict"));
        let csrf = csrf_of(&form.text().unwrap());
        let csrf = if with_token { csrf } else { "x".repeat(64) };
        http.post(format!("{base}/login"))
            .header(COOKIE, format!("cairn_login={login_cookie}"))
            .form(&[("csrf", csrf.as_str()), ("key", key)])
            .send()
            .unwrap()
    };
    assert_eq!(login(&admin, false).status(), 403, "a wrong login token");
    assert_eq!(login("cairn_nope", true).status(), 401);
    assert_eq!(
        login(&reader, true).status(),
        403,
        "a read key is not enough"
    );
    // Without the login cookie at all.
    let r = http
        .post(format!("{base}/login"))
        .form(&[("csrf", "x".repeat(64).as_str()), ("key", admin.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);

    let r = login(&admin, true);
    assert_eq!(r.status(), 303);
    let (session, line) = set_cookie(&r, "cairn_session").expect("a session");
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Strict"),
        "{line}"
    );
    let cookie = format!("cairn_session={session}");
    let page = http
        .get(format!("{base}/"))
        .header(COOKIE, &cookie)
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().unwrap();
    assert!(html.contains("ops ("), "who is logged in: {html}");
    let csrf = csrf_of(&html);

    // CSRF: a post without the token, or with another, is refused and changes nothing.
    for form in [vec![], vec![("csrf", "0".repeat(64))]] {
        let mut fields: Vec<(&str, String)> = form;
        fields.push(("action", "rollback".into()));
        fields.push(("reason", "test".into()));
        let r = http
            .post(format!("{base}/models/confirm"))
            .header(COOKIE, &cookie)
            .form(&fields)
            .send()
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    let r = http
        .post(format!("{base}/logout"))
        .header(COOKIE, &cookie)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403, "logout needs the token too");

    // The login and the refused move are in the audit log, which the API shows to the admin key.
    let audit: Value = http
        .get(format!("{base}/v1/audit"))
        .bearer_auth(&admin)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let text = audit.to_string();
    assert!(text.contains("POST /login (dashboard)"), "{text}");

    // Logging out ends the session.
    let r = http
        .post(format!("{base}/logout"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    let (cleared, line) = set_cookie(&r, "cairn_session").unwrap();
    assert!(cleared.is_empty() && line.contains("Max-Age=0"), "{line}");
    let r = http
        .get(format!("{base}/"))
        .header(COOKIE, &cookie)
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
}

#[test]
fn promote_and_rollback_through_the_forms_move_the_champion() {
    let server = common::Running::start(
        |c| c.train.ranker.enabled = false,
        |e| {
            seed(e);
            e.train().unwrap();
            e.add_events(vec![Event::new("u0", "i1", "purchase").at(1_700_100_000)])
                .unwrap();
            e.train().unwrap();
        },
    );
    let http = client();
    let base = &server.base;
    let api = common::client();
    let models = || -> Value {
        api.get(format!("{base}/v1/models"))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let before = models();
    let versions: Vec<String> = before["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(versions.len(), 2);
    assert_eq!(before["champion"], versions[1].as_str());
    let r = http.get(format!("{base}/models")).send().unwrap();
    let (token, _) = set_cookie(&r, "cairn_session").unwrap();
    let cookie = format!("cairn_session={token}");
    let html = r.text().unwrap();
    assert!(
        html.contains(&format!("action=promote&amp;version={}", versions[0])),
        "{html}"
    );

    // Rollback: the confirmation page, then the form.
    let confirm = http
        .get(format!("{base}/models/confirm?action=rollback"))
        .header(COOKIE, &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(confirm.contains(&versions[0]), "{confirm}");
    let csrf = csrf_of(&confirm);
    let r = http
        .post(format!("{base}/models/confirm"))
        .header(COOKIE, &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "rollback"),
            ("reason", "dashboard test"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().unwrap_or_default());
    assert_eq!(models()["champion"], versions[0].as_str());

    // Promote the newer one back.
    let r = http
        .post(format!("{base}/models/confirm"))
        .header(COOKIE, &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "promote"),
            ("version", versions[1].as_str()),
            ("reason", "back again"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(models()["champion"], versions[1].as_str());
    // An empty reason is a 400 and moves nothing.
    let r = http
        .post(format!("{base}/models/confirm"))
        .header(COOKIE, &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "rollback"),
            ("reason", " "),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(models()["champion"], versions[1].as_str());
    let history: Value = http
        .get(format!("{base}/v1/models/history"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let last = history["entries"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["reason"], "back again");
    assert!(
        last["who"].as_str().unwrap().ends_with("via dashboard"),
        "{last}"
    );
}

/// A trained shop with an A/B experiment on `home` created through the API, and some traffic:
/// 60 users ask for their list, see its first three items, every second one clicks the first.
fn experiment_server() -> common::Running {
    let server = common::Running::start(
        |c| c.train.ranker.enabled = false,
        |e| {
            seed(e);
            e.train().unwrap();
        },
    );
    let api = common::client();
    let base = &server.base;
    let r = api
        .post(format!("{base}/v1/experiments"))
        .json(&serde_json::json!({
            "id": "home-ab",
            "description": "cart configuration on home",
            "placement": "home",
            "variants": [{"name": "control"}, {"name": "cart-config", "placement": "cart"}],
        }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    for u in 0..60 {
        let list: Value = api
            .get(format!(
                "{base}/v1/users/u{u}/recommendations?placement=home"
            ))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(list["experiment"], "home-ab", "{list}");
        let rid = list["recommendation_id"].as_str().unwrap();
        let items: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .take(3)
            .map(|i| i["item_id"].as_str().unwrap())
            .collect();
        let shown: Vec<Value> = items
            .iter()
            .enumerate()
            .map(|(p, i)| serde_json::json!({"item_id": i, "position": p + 1}))
            .collect();
        let r = api
            .post(format!("{base}/v1/impressions"))
            .json(&serde_json::json!({"recommendation_id": rid, "user_id": format!("u{u}"), "items": shown}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        if u % 2 == 0 {
            let r = api
                .post(format!("{base}/v1/events"))
                .json(&serde_json::json!({"events": [{"event_id": format!("c{u}"), "user_id": format!("u{u}"),
                    "item_id": items[0], "type": "click", "recommendation_id": rid, "position": 1}]}))
                .send()
                .unwrap();
            assert!(r.status().is_success());
        }
    }
    server
}

#[test]
fn experiment_pages_show_what_the_api_reports() {
    let server = experiment_server();
    let http = client();
    let base = &server.base;
    let r = http.get(format!("{base}/experiments")).send().unwrap();
    assert_eq!(r.status(), 200);
    let (token, _) = set_cookie(&r, "cairn_session").unwrap();
    let cookie = format!("cairn_session={token}");
    let html = r.text().unwrap();
    assert!(html.contains("href=\"/experiments/home-ab\""), "{html}");
    assert!(html.contains("cart configuration on home"), "{html}");
    assert!(html.contains("name=\"name_1\""), "the create form: {html}");
    assert!(html.contains("href=\"/drift\""), "the navigation: {html}");

    let results: Value = http
        .get(format!("{base}/v1/experiments/home-ab/results"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let page = http
        .get(format!("{base}/experiments/home-ab"))
        .header(COOKIE, &cookie)
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().unwrap();
    assert!(html.contains("<h1>Experiment home-ab</h1>"), "{html}");
    assert!(
        html.contains("/experiments/home-ab/confirm?action=stop"),
        "{html}"
    );
    assert!(
        html.contains("/experiments/home-ab/confirm?action=ship&amp;variant=cart-config"),
        "{html}"
    );
    let mut impressions = 0;
    for v in results["variants"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        // The variant's row: its users, impressions, clicks and conversions as the API counts them.
        let row_at = html.find(&format!("<strong>{name}</strong>")).unwrap();
        let row = &html[row_at..row_at + html[row_at..].find("</tr>").unwrap()];
        let cells = format!(
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            v["users"], v["impressions"], v["clicks"], v["conversions"]
        );
        assert!(row.contains(&cells), "{name}: {cells} in {row}");
        impressions += v["impressions"].as_u64().unwrap();
    }
    assert_eq!(impressions, 180, "{results}");
    // The analysis: each treatment's differences with both intervals, the SRM check, the decision.
    assert!(results["analysis"].is_object(), "{results}");
    assert!(html.contains("Always-valid interval"), "{html}");
    assert!(html.contains("<td>ctr</td>"), "{html}");
    assert!(html.contains("Sample ratio"), "{html}");
    let reason = results["analysis"]["reason"].as_str().unwrap();
    let escaped = reason
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    assert!(
        html.contains(&escaped),
        "the decision's reason {reason}: {html}"
    );

    // The confirmation pages, and their refusals.
    for (path, status) in [
        ("/experiments/home-ab/confirm?action=stop", 200),
        (
            "/experiments/home-ab/confirm?action=ship&variant=cart-config",
            200,
        ),
        ("/experiments/home-ab/confirm?action=ship&variant=nope", 404),
        ("/experiments/home-ab/confirm?action=ship", 400),
        ("/experiments/home-ab/confirm?action=explode", 400),
        ("/experiments/nope", 404),
        ("/experiments/nope/confirm?action=stop", 404),
        ("/experiments?bogus=1", 400),
    ] {
        let r = http
            .get(format!("{base}{path}"))
            .header(COOKIE, &cookie)
            .send()
            .unwrap();
        assert_eq!(r.status(), status, "{path}");
    }
}

#[test]
fn experiments_are_created_and_stopped_through_the_forms_with_csrf() {
    let server = experiment_server();
    let http = client();
    let base = &server.base;
    let api = common::client();
    let status_of = |id: &str| -> Value {
        api.get(format!("{base}/v1/experiments/{id}"))
            .send()
            .unwrap()
            .json::<Value>()
            .unwrap()["status"]
            .clone()
    };
    let r = http
        .get(format!("{base}/experiments/home-ab"))
        .send()
        .unwrap();
    let (token, _) = set_cookie(&r, "cairn_session").unwrap();
    let cookie = format!("cairn_session={token}");
    let confirm = http
        .get(format!("{base}/experiments/home-ab/confirm?action=stop"))
        .header(COOKIE, &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let csrf = csrf_of(&confirm);

    // Without the token, or with another, nothing stops.
    for token in [None, Some("0".repeat(64))] {
        let mut fields: Vec<(&str, String)> =
            vec![("action", "stop".into()), ("reason", "no token".into())];
        if let Some(t) = token {
            fields.push(("csrf", t));
        }
        let r = http
            .post(format!("{base}/experiments/home-ab/confirm"))
            .header(COOKIE, &cookie)
            .form(&fields)
            .send()
            .unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(status_of("home-ab"), "running");
    }
    // An empty reason is a 400.
    let r = http
        .post(format!("{base}/experiments/home-ab/confirm"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str()), ("action", "stop"), ("reason", " ")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(status_of("home-ab"), "running");
    // With it, the experiment stops as the API sees it.
    let r = http
        .post(format!("{base}/experiments/home-ab/confirm"))
        .header(COOKIE, &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "stop"),
            ("reason", "dashboard test"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().unwrap_or_default());
    assert!(r.headers()[LOCATION]
        .to_str()
        .unwrap()
        .starts_with("/experiments/home-ab?done="));
    assert_eq!(status_of("home-ab"), "stopped");
    // Stopping again is the engine's 409, shown as a page.
    let r = http
        .post(format!("{base}/experiments/home-ab/confirm"))
        .header(COOKIE, &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "stop"),
            ("reason", "again"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 409);

    // The create form: an interleaving experiment of the champion against the cart configuration.
    let create = |id: &str, with_csrf: bool| -> Response {
        let mut fields = vec![
            ("id", id.to_string()),
            ("type", "interleaving".into()),
            ("placement", "home".into()),
            ("traffic", "0.5".into()),
            ("namespace", "".into()),
            ("planned_users", "2000".into()),
            ("description", "from the form".into()),
            ("name_1", "control".into()),
            ("model_1", "".into()),
            ("vplacement_1", "".into()),
            ("weight_1", "1".into()),
            ("name_2", "cart".into()),
            ("model_2", "".into()),
            ("vplacement_2", "cart".into()),
            ("weight_2", "1".into()),
            ("name_3", "".into()),
            ("model_3", "".into()),
            ("vplacement_3", "".into()),
            ("weight_3", "1".into()),
        ];
        if with_csrf {
            fields.push(("csrf", csrf.clone()));
        }
        http.post(format!("{base}/experiments"))
            .header(COOKIE, &cookie)
            .form(&fields)
            .send()
            .unwrap()
    };
    assert_eq!(create("il-form", false).status(), 403);
    let r = api
        .get(format!("{base}/v1/experiments/il-form"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404, "a refused form creates nothing");
    let r = create("il-form", true);
    assert_eq!(r.status(), 303, "{}", r.text().unwrap_or_default());
    let made: Value = api
        .get(format!("{base}/v1/experiments/il-form"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(made["type"], "interleaving", "{made}");
    assert_eq!(made["traffic"], 0.5);
    assert_eq!(made["planned_users"], 2000);
    assert_eq!(made["variants"][1]["placement"], "cart");
    assert!(
        made["created_by"]
            .as_str()
            .unwrap()
            .ends_with("via dashboard"),
        "{made}"
    );
    let html = http
        .get(format!("{base}/experiments/il-form"))
        .header(COOKIE, &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(html.contains("<h2>Preference</h2>"), "{html}");
    // The same id again: the engine's 409, with the form filled in as it was.
    let r = create("il-form", true);
    assert_eq!(r.status(), 409);
    let html = r.text().unwrap();
    assert!(html.contains("role=\"alert\""), "{html}");
    assert!(html.contains("value=\"from the form\""), "{html}");
    // A traffic that is not a number: 400, nothing created.
    let r = http
        .post(format!("{base}/experiments"))
        .header(COOKIE, &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("id", "bad-traffic"),
            ("traffic", "half"),
            ("name_1", "a"),
            ("name_2", "b"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = api
        .get(format!("{base}/v1/experiments/bad-traffic"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    // An unknown field is a 400 too.
    let r = http
        .post(format!("{base}/experiments"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str()), ("id", "x"), ("colour", "red")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// Sleeps until 100 ms after the next boundary of `secs`-second windows.
fn wait_for_window(secs: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let step = u128::from(secs) * 1000;
    let next = (now / step + 1) * step + 100;
    std::thread::sleep(std::time::Duration::from_millis((next - now) as u64));
}

#[test]
fn the_drift_page_shows_the_windows_and_their_alarms() {
    let server = common::Running::start(
        |c| {
            c.train.ranker.enabled = false;
            c.train.interval_secs = 0;
            c.drift.window_secs = 2;
            c.drift.min_window_events = 50;
        },
        |e| {
            seed(e);
            e.train().unwrap();
        },
    );
    let http = client();
    let base = &server.base;
    let html = http
        .get(format!("{base}/drift"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(html.contains("<h1>Data quality and drift</h1>"), "{html}");
    // One window of 80 events, all from new users on one item: popularity and new users alarm.
    wait_for_window(2);
    let events: Vec<Value> = (0..80)
        .map(|n| serde_json::json!({"user_id": format!("new{n}"), "item_id": "i0", "type": "view"}))
        .collect();
    let r = common::client()
        .post(format!("{base}/v1/events"))
        .json(&serde_json::json!({ "events": events }))
        .send()
        .unwrap();
    assert!(r.status().is_success());
    wait_for_window(2);
    let drift: Value = http
        .get(format!("{base}/v1/drift"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let windows = drift["windows"].as_array().unwrap();
    let shifted = windows
        .iter()
        .find(|w| w["events"] == 80.0)
        .unwrap_or_else(|| panic!("{drift}"));
    let alarms: Vec<&str> = shifted["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(alarms.contains(&"popularity_psi"), "{shifted}");
    let r = http.get(format!("{base}/drift")).send().unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().unwrap();
    // The window's row with its figures and alarms, the charts, and the alarm list.
    assert!(html.contains("<td>80</td><td>view 80</td>"), "{html}");
    assert!(html.contains(&alarms.join(", ")), "{alarms:?}: {html}");
    let psi = format!("{:.4}", shifted["popularity_psi"].as_f64().unwrap());
    assert!(html.contains(&psi), "{psi}: {html}");
    assert!(html.contains("<svg"), "{html}");
    assert!(html.contains("class=\"dot alarm\""), "{html}");
    assert!(
        html.contains("href=\"/models\"><code>"),
        "the reference: {html}"
    );
}

#[test]
fn the_item_page_charts_the_events_posted_per_day() {
    let server = common::Running::start(|c| c.train.ranker.enabled = false, seed);
    let http = client();
    let base = &server.base;
    // The seed's events are from 2023, outside the chart's 90 days: only these count.
    let today = cairn_core::now_unix().div_euclid(86_400) * 86_400;
    let day = |t: i64| cairn_core::Timestamp(t).to_rfc3339()[..10].to_string();
    let at = |user: &str, t: i64| serde_json::json!({"user_id": user, "item_id": "i5", "type": "view", "timestamp": t});
    let events = vec![
        at("p1", today),
        at("p2", today + 1),
        at("p3", today + 2),
        at("p1", today - 10),
        at("p2", today - 20),
        at("p1", today - 3 * 86_400),
        at("p1", today - 120 * 86_400),
    ];
    let r = common::client()
        .post(format!("{base}/v1/events"))
        .json(&serde_json::json!({ "events": events }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
    let r = http.get(format!("{base}/items/i5")).send().unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().unwrap();
    assert!(html.contains("Popularity over time"), "{html}");
    assert!(
        html.contains("<strong>6</strong> in all, at most 3 a day"),
        "{html}"
    );
    assert!(
        html.contains(&format!("{}: 3</title>", day(today))),
        "{html}"
    );
    assert!(
        html.contains(&format!("{}: 2</title>", day(today - 1))),
        "{html}"
    );
    assert!(
        html.contains(&format!("{}: 1</title>", day(today - 3 * 86_400))),
        "{html}"
    );
    assert_eq!(html.matches("<rect").count(), 3, "{html}");
    assert!(!html.contains("still counting"), "{html}");
    // Another item's page counts only its own events.
    let other = http
        .get(format!("{base}/items/i6"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(other.contains("<strong>0</strong> in all"), "{other}");
}

/// The item ids listed in each `<section class="list"` of a preview page, in order.
fn preview_columns(html: &str) -> Vec<Vec<String>> {
    html.split("<section class=\"list\"")
        .skip(1)
        .map(|section| {
            let section = section.split("</section>").next().unwrap();
            section
                .split("<td><a href=\"/items/")
                .skip(1)
                .map(|s| s.split('"').next().unwrap().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn the_preview_puts_another_kept_version_beside_the_champion() {
    let server = common::Running::start(
        |c| {
            c.train.ranker.enabled = false;
            // The second version must pass the gate whatever its held-out NDCG.
            c.models.gate.ndcg_tolerance = 1.0;
            c.models.gate.coverage_floor = 0.0;
        },
        |e| {
            seed(e);
            e.train().unwrap();
            // New traffic, all on six items of the last group: the second version's
            // popularity differs from the first's.
            let mut events = Vec::new();
            for u in 0..200usize {
                for n in 0..3usize {
                    events.push(
                        Event::new(
                            format!("n{u}"),
                            format!("i{}", 40 + (u + n) % 6),
                            "purchase",
                        )
                        .at(1_700_200_000 + (u * 3 + n) as i64),
                    );
                }
            }
            e.add_events(events).unwrap();
            e.train().unwrap();
        },
    );
    let http = client();
    let base = &server.base;
    let models: Value = common::client()
        .get(format!("{base}/v1/models"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let versions: Vec<String> = models["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(versions.len(), 2, "{models}");
    assert_eq!(models["champion"], versions[1].as_str(), "{models}");
    let (old, new) = (&versions[0], &versions[1]);

    // The form offers the other kept version.
    let form = http
        .get(format!("{base}/preview"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        form.contains(&format!("<option value=\"{old}\">")),
        "{form}"
    );

    let url = format!("{base}/preview?user=newcomer&placement=home&version={old}&k=6");
    let r = http.get(&url).send().unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().unwrap();
    assert!(html.contains("class=\"lists side\""), "{html}");
    assert!(html.contains(&format!("champion {new}")), "{html}");
    assert!(html.contains(&format!("version {old}")), "{html}");
    let columns = preview_columns(&html);
    assert_eq!(columns.len(), 2, "{html}");
    assert_eq!(columns[0].len(), 6, "{html}");
    assert_eq!(columns[1].len(), 6, "{html}");
    assert_ne!(columns[0], columns[1], "{html}");
    // The champion's list leads with the new traffic's items; the old version knew nothing of it.
    let hot: Vec<String> = (40..46).map(|i| format!("i{i}")).collect();
    let hot_in = |c: &[String]| c.iter().filter(|i| hot.contains(i)).count();
    assert!(hot.contains(&columns[0][0]), "{columns:?}");
    assert!(hot_in(&columns[0]) > hot_in(&columns[1]), "{columns:?}");

    // What serves did not change: the API still answers with the champion.
    let served: Value = common::client()
        .get(format!(
            "{base}/v1/users/newcomer/recommendations?placement=home&k=6"
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(served["model_version"], new.as_str(), "{served}");

    // An unknown version, or both comparisons at once, is a 4xx page.
    let r = http
        .get(format!("{base}/preview?user=newcomer&version=nope"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .get(format!(
            "{base}/preview?user=newcomer&compare=home&version={old}"
        ))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
}
