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
