//! `/v1/experiments` and `/v1/impressions` against the real server: assignment, serving,
//! impressions and clicks with exact counts, interleaving credit, a restart, bad input.

use std::collections::BTreeMap;

use serde_json::{json, Value};

mod common;

use common::seed;

fn start() -> common::Running {
    common::Running::start(
        |c| c.train.ranker.enabled = false,
        |e| {
            seed(e);
            e.train().unwrap();
        },
    )
}

fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    let r = common::client()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn get(base: &str, path: &str) -> (u16, Value) {
    let r = common::client()
        .get(format!("{base}{path}"))
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn recommend(base: &str, user: &str) -> Value {
    let (status, body) = get(base, &format!("/v1/users/{user}/recommendations?k=5"));
    assert_eq!(status, 200, "{body}");
    body
}

fn champion(base: &str) -> String {
    get(base, "/v1/models").1["champion"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Expected counts of one variant.
#[derive(Debug, Default, Clone, PartialEq)]
struct Want {
    users: u64,
    impressions: u64,
    clicks: u64,
    conversions: u64,
    /// position → (impressions, clicks, conversions)
    positions: BTreeMap<u64, (u64, u64, u64)>,
}

fn check_variant(got: &Value, want: &Want) {
    let what = format!("{got:#}\nwant {want:?}");
    assert_eq!(got["users"], want.users, "{what}");
    assert_eq!(got["impressions"], want.impressions, "{what}");
    assert_eq!(got["clicks"], want.clicks, "{what}");
    assert_eq!(got["conversions"], want.conversions, "{what}");
    let positions: BTreeMap<u64, (u64, u64, u64)> = got["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["position"].as_u64().unwrap(),
                (
                    p["impressions"].as_u64().unwrap(),
                    p["clicks"].as_u64().unwrap(),
                    p["conversions"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(positions, want.positions, "{what}");
    let ctr = if want.impressions == 0 {
        0.0
    } else {
        want.clicks as f64 / want.impressions as f64
    };
    assert!((got["ctr"].as_f64().unwrap() - ctr).abs() < 1e-12, "{what}");
}

#[test]
fn ab_assignment_impressions_clicks_results_and_a_restart() {
    let server = start();
    let base = server.base.clone();
    let v1 = champion(&base);
    let (status, created) = post(
        &base,
        "/v1/experiments",
        json!({
            "id": "home-ab",
            "type": "ab",
            "variants": [
                {"name": "control"},
                {"name": "cart-config", "placement": "cart", "model_version": v1},
            ],
            "namespace": "home",
            "traffic": 0.5,
        }),
    );
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["status"], "running");
    assert_eq!(created["placement"], "home");
    assert_eq!(created["namespace_range"]["start"], 0);
    assert_eq!(created["namespace_range"]["end"], 5000);

    // 400 users (the 120 with history and 280 without) ask twice: the same variant each time.
    let users: Vec<String> = (0..400)
        .map(|i| {
            if i < 120 {
                format!("u{i}")
            } else {
                format!("new-{i}")
            }
        })
        .collect();
    let mut lists: Vec<(String, Value)> = Vec::new();
    let mut in_variant = [0usize; 2];
    for u in &users {
        let first = recommend(&base, u);
        let second = recommend(&base, u);
        assert_eq!(first["experiment"], second["experiment"], "{u}");
        assert_eq!(first["variant"], second["variant"], "{u}");
        assert_ne!(first["recommendation_id"], second["recommendation_id"]);
        match first["variant"].as_str() {
            Some("control") => in_variant[0] += 1,
            Some("cart-config") => in_variant[1] += 1,
            None => {
                assert!(first.get("experiment").is_none(), "{first}");
                continue;
            }
            Some(other) => panic!("variant {other}"),
        }
        assert_eq!(first["experiment"], "home-ab");
        lists.push((u.clone(), first));
    }
    // Traffic 0.5 of 400 users: 200 expected, sd 10; the split inside 1:1 (sd √n/2). Both
    // within five standard deviations.
    let inside = (in_variant[0] + in_variant[1]) as f64;
    assert!((inside - 200.0).abs() < 50.0, "{in_variant:?}");
    let diff = (in_variant[0] as f64 - in_variant[1] as f64).abs();
    assert!(diff < 5.0 * inside.sqrt(), "{in_variant:?}");

    // Impressions of the first three items; a click on position 1 for every second user, and a
    // purchase of it for every fourth.
    let mut want = [Want::default(), Want::default()];
    let http = common::client();
    for (n, (user, list)) in lists.iter().enumerate() {
        let v = usize::from(list["variant"] == "cart-config");
        let rid = list["recommendation_id"].as_str().unwrap();
        let items: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["item_id"].as_str().unwrap())
            .collect();
        assert!(items.len() >= 3, "{list}");
        let shown: Vec<Value> = (0..3)
            .map(|p| json!({"item_id": items[p], "position": p + 1}))
            .collect();
        let (status, body) = post(
            &base,
            "/v1/impressions",
            json!({"recommendation_id": rid, "user_id": user, "items": shown}),
        );
        assert_eq!((status, &body["recorded"]), (200, &json!(3)), "{body}");
        let w = &mut want[v];
        w.users += 1;
        w.impressions += 3;
        for p in 1..=3 {
            w.positions.entry(p).or_default().0 += 1;
        }
        let mut events = Vec::new();
        if n % 2 == 0 {
            events.push(
                json!({"event_id": format!("c-{n}"), "user_id": user, "item_id": items[0],
                "type": "click", "recommendation_id": rid, "position": 1}),
            );
            w.clicks += 1;
            w.positions.get_mut(&1).unwrap().1 += 1;
        }
        if n % 4 == 0 {
            events.push(
                json!({"event_id": format!("p-{n}"), "user_id": user, "item_id": items[0],
                "type": "purchase", "recommendation_id": rid}),
            );
            w.conversions += 1;
            w.positions.get_mut(&1).unwrap().2 += 1;
        }
        // A view is neither a click nor a conversion.
        events.push(
            json!({"user_id": user, "item_id": items[1], "type": "view", "recommendation_id": rid}),
        );
        let r = http
            .post(format!("{base}/v1/events"))
            .json(&json!({ "events": events }))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // Retries count nothing twice: the same impressions, the same click.
    let (user, list) = &lists[0];
    let rid = list["recommendation_id"].as_str().unwrap();
    let item0 = list["items"][0]["item_id"].as_str().unwrap();
    let item1 = list["items"][1]["item_id"].as_str().unwrap();
    let (status, body) = post(
        &base,
        "/v1/impressions",
        json!({"recommendation_id": rid, "items": [{"item_id": item0, "position": 1}]}),
    );
    assert_eq!((status, &body["duplicates"]), (200, &json!(1)), "{body}");
    let (status, body) = post(
        &base,
        "/v1/events",
        json!({"events": [{"event_id": "c-0", "user_id": user, "item_id": item0,
            "type": "click", "recommendation_id": rid, "position": 1}]}),
    );
    assert_eq!((status, &body["duplicates"]), (200, &json!(1)), "{body}");
    // A click without a recommendation id, after an impression of its item to its user, counts
    // by the attribution window (at the position it was shown).
    let (status, _) = post(
        &base,
        "/v1/events",
        json!({"events": [{"event_id": "w-0", "user_id": user, "item_id": item1, "type": "click"}]}),
    );
    assert_eq!(status, 200);
    let v0 = usize::from(list["variant"] == "cart-config");
    want[v0].clicks += 1;
    want[v0].positions.get_mut(&2).unwrap().1 += 1;
    // A click by a user outside the experiment, who was shown nothing, counts for nothing.
    let outsider = users
        .iter()
        .find(|u| !lists.iter().any(|(l, _)| l == *u))
        .unwrap();
    let (status, _) = post(
        &base,
        "/v1/events",
        json!({"events": [{"event_id": "x-0", "user_id": outsider, "item_id": "i59", "type": "click"}]}),
    );
    assert_eq!(status, 200);

    let (status, results) = get(&base, "/v1/experiments/home-ab/results");
    assert_eq!(status, 200, "{results}");
    check_variant(&results["variants"][0], &want[0]);
    check_variant(&results["variants"][1], &want[1]);
    assert_eq!(results["users"], want[0].users + want[1].users);
    // The 120 users with history had events before the experiment: CUPED's pre-period.
    assert!(results["users_with_pre_period"].as_u64().unwrap() > 0);
    let analysis = &results["analysis"];
    assert_eq!(
        analysis["srm"]["observed"],
        json!([want[0].users, want[1].users])
    );
    assert!(analysis["srm"]["flagged"].is_boolean(), "{analysis}");
    let metrics: Vec<&str> = analysis["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["metric"].as_str().unwrap())
        .collect();
    assert!(metrics.contains(&"ctr"), "{analysis}");
    for c in analysis["comparisons"].as_array().unwrap() {
        assert!(c["always_valid"]["lo"].as_f64().unwrap() <= c["difference"].as_f64().unwrap());
        assert!(c["holm_p"].as_f64().unwrap() >= c["always_valid_p"].as_f64().unwrap() - 1e-12);
    }
    assert!(analysis["decision"]["action"].is_string(), "{analysis}");

    // A second experiment of the namespace gets the other half, never the first's users.
    let (status, body) = post(
        &base,
        "/v1/experiments",
        json!({"id": "home-b", "variants": [{"name": "a"}, {"name": "b", "placement": "cart"}],
            "namespace": "home", "traffic": 0.6}),
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("experiment_conflict"))
    );
    let (status, body) = post(
        &base,
        "/v1/experiments",
        json!({"id": "home-b", "variants": [{"name": "a"}, {"name": "b", "placement": "cart"}],
            "namespace": "home", "traffic": 0.5}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["namespace_range"]["start"], 5000);
    for (user, list) in lists.iter().take(40) {
        let again = recommend(&base, user);
        assert_eq!(again["experiment"], "home-ab", "{user}");
        assert_eq!(again["variant"], list["variant"], "{user}");
    }
    let mut in_b = 0;
    for u in users.iter().take(100) {
        let r = recommend(&base, u);
        if r["experiment"] == "home-b" {
            in_b += 1;
            assert!(!lists.iter().any(|(l, _)| l == u), "{u} in both");
        }
    }
    assert!(in_b > 0);

    // A restart keeps the experiments, their assignment and their counts.
    let before = results;
    let dir = server.stop();
    let server = common::Running::start(
        |c| {
            c.train.ranker.enabled = false;
            c.data_dir = dir.path().to_path_buf();
        },
        |_| {},
    );
    let base = server.base.clone();
    let (_, after) = get(&base, "/v1/experiments/home-ab/results");
    assert_eq!(after["variants"], before["variants"]);
    assert_eq!(after["users"], before["users"]);
    let (user, list) = &lists[1];
    let again = recommend(&base, user);
    assert_eq!(again["experiment"], "home-ab");
    assert_eq!(again["variant"], list["variant"]);
    // A list impressed before the restart still takes its clicks.
    let rid = list["recommendation_id"].as_str().unwrap();
    let item0 = list["items"][0]["item_id"].as_str().unwrap();
    let (status, _) = post(
        &base,
        "/v1/events",
        json!({"events": [{"event_id": "r-1", "user_id": user, "item_id": item0,
            "type": "click", "recommendation_id": rid}]}),
    );
    assert_eq!(status, 200);
    let v1i = usize::from(list["variant"] == "cart-config");
    want[v1i].clicks += 1;
    want[v1i].positions.get_mut(&1).unwrap().1 += 1;
    let (_, after) = get(&base, "/v1/experiments/home-ab/results");
    check_variant(&after["variants"][v1i], &want[v1i]);

    // Stop: no more lists from it; listed as stopped; a second stop conflicts.
    let (status, stopped) = post(
        &base,
        "/v1/experiments/home-ab/stop",
        json!({"reason": "done"}),
    );
    assert_eq!(
        (status, &stopped["status"]),
        (200, &json!("stopped")),
        "{stopped}"
    );
    let r = recommend(&base, user);
    assert_ne!(r["experiment"], "home-ab", "{r}");
    let (status, body) = post(&base, "/v1/experiments/home-ab/stop", json!({}));
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("experiment_conflict"))
    );
    let (status, list) = get(&base, "/v1/experiments");
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["home-ab", "home-b"]);

    // Ship: the variant's placement serves the placement from now on; recorded.
    let (status, body) = post(
        &base,
        "/v1/experiments/home-b/ship",
        json!({"variant": "nope"}),
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("invalid_argument"))
    );
    let (status, shipped) = post(
        &base,
        "/v1/experiments/home-b/ship",
        json!({"variant": "b", "reason": "better"}),
    );
    assert_eq!(status, 200, "{shipped}");
    assert_eq!(shipped["status"], "shipped");
    assert_eq!(shipped["shipped"]["default_placement"], "cart");
    let r = recommend(&base, "u5");
    assert!(r.get("experiment").is_none(), "{r}");
}

#[test]
fn interleaving_credits_the_team_that_picked_the_clicked_item() {
    let server = start();
    let base = server.base.clone();
    let (status, created) = post(
        &base,
        "/v1/experiments",
        json!({"id": "il", "type": "interleaving",
            "variants": [{"name": "home"}, {"name": "cart", "placement": "cart"}]}),
    );
    assert_eq!(status, 200, "{created}");
    let n = 60u64;
    let mut shown_total = 0u64;
    for u in 0..n {
        let user = format!("u{u}");
        let list = recommend(&base, &user);
        assert_eq!(list["experiment"], "il");
        assert_eq!(list["variant"], "interleaved");
        let items: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["item_id"].as_str().unwrap().to_string())
            .collect();
        // No item twice in an interleaved list; scores never rise.
        let mut unique = items.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), items.len(), "{list}");
        let scores: Vec<f64> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["score"].as_f64().unwrap())
            .collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{list}");
        let rid = list["recommendation_id"].as_str().unwrap();
        let shown: Vec<Value> = items
            .iter()
            .enumerate()
            .map(|(p, i)| json!({"item_id": i, "position": p + 1}))
            .collect();
        shown_total += shown.len() as u64;
        let (status, _) = post(
            &base,
            "/v1/impressions",
            json!({"recommendation_id": rid, "items": shown}),
        );
        assert_eq!(status, 200);
        let (status, _) = post(
            &base,
            "/v1/events",
            json!({"events": [{"user_id": user, "item_id": items[0], "type": "click",
                "recommendation_id": rid, "position": 1}]}),
        );
        assert_eq!(status, 200);
    }
    let (status, results) = get(&base, "/v1/experiments/il/results");
    assert_eq!(status, 200, "{results}");
    let pref = &results["preference"];
    // One credited click per user: every user prefers exactly one side.
    assert_eq!(pref["users"], n, "{pref}");
    assert_eq!(pref["ties"], 0, "{pref}");
    let (t, c) = (
        pref["prefer_treatment"].as_u64().unwrap(),
        pref["prefer_control"].as_u64().unwrap(),
    );
    assert_eq!(t + c, n);
    let v = &results["variants"];
    assert_eq!(v[0]["clicks"].as_u64().unwrap(), c, "{results}");
    assert_eq!(v[1]["clicks"].as_u64().unwrap(), t, "{results}");
    assert_eq!(
        v[0]["impressions"].as_u64().unwrap() + v[1]["impressions"].as_u64().unwrap(),
        shown_total
    );
    // Position 1 was shown once per user, by one team or the other.
    let at1 = |x: &Value| {
        x["positions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["position"] == 1)
            .map_or(0, |p| p["impressions"].as_u64().unwrap())
    };
    assert_eq!(at1(&v[0]) + at1(&v[1]), n);
    let mean = pref["mean_preference"].as_f64().unwrap();
    assert!((mean - (t as f64 - c as f64) / n as f64).abs() < 1e-12);
}

#[test]
fn bad_input_is_a_4xx_with_a_code() {
    let server = start();
    let base = server.base.clone();
    let code = |(status, body): (u16, Value)| {
        (
            status,
            body["error"]["code"].as_str().unwrap_or("").to_string(),
        )
    };
    let exp = |body: Value| code(post(&base, "/v1/experiments", body));
    assert_eq!(
        exp(json!({"id": "x", "type": "bandit", "variants": [{"name": "a"}, {"name": "b"}]})),
        (400, "invalid_argument".into())
    );
    assert_eq!(
        exp(json!({"id": "x", "variants": [{"name": "a"}]})),
        (400, "invalid_argument".into())
    );
    assert_eq!(
        exp(json!({"id": "x", "variants": [{"name": "a"}, {"name": "b", "placement": "nowhere"}]})),
        (400, "invalid_argument".into())
    );
    assert_eq!(
        exp(
            json!({"id": "x", "variants": [{"name": "a"}, {"name": "b", "model_version": "v-none"}]})
        ),
        (404, "model_version_not_found".into())
    );
    assert_eq!(
        exp(
            json!({"id": "x", "type": "interleaving", "variants": [{"name": "a"}, {"name": "b"}, {"name": "c"}]})
        ),
        (400, "invalid_argument".into())
    );
    assert_eq!(
        exp(json!({"id": "x", "variants": [{"name": "a"}, {"name": "b"}], "traffic": 0})),
        (400, "invalid_argument".into())
    );
    assert_eq!(
        exp(json!({"id": "x", "variants": [{"name": "a"}, {"name": "b"}], "colour": 1})),
        (400, "invalid_argument".into())
    );
    assert_eq!(
        exp(json!({"id": "ok", "variants": [{"name": "a"}, {"name": "b", "placement": "cart"}]})).0,
        200
    );
    assert_eq!(
        exp(json!({"id": "ok", "variants": [{"name": "a"}, {"name": "b", "placement": "cart"}]})),
        (409, "experiment_conflict".into())
    );
    // Another experiment on the same placement outside the first's namespace.
    assert_eq!(
        exp(json!({"id": "ok2", "variants": [{"name": "a"}, {"name": "b", "placement": "cart"}]})),
        (409, "experiment_conflict".into())
    );
    assert_eq!(
        code(get(&base, "/v1/experiments/none")),
        (404, "experiment_not_found".into())
    );
    assert_eq!(
        code(get(&base, "/v1/experiments/none/results")),
        (404, "experiment_not_found".into())
    );
    let imp = |body: Value| code(post(&base, "/v1/impressions", body));
    assert_eq!(
        imp(json!({"recommendation_id": "nope", "items": [{"item_id": "i1", "position": 1}]})),
        (404, "recommendation_not_found".into())
    );
    let list = recommend(&base, "u1");
    let rid = list["recommendation_id"].as_str().unwrap();
    let item = list["items"][0]["item_id"].as_str().unwrap();
    assert_eq!(
        imp(
            json!({"recommendation_id": rid, "items": [{"item_id": "not-in-list", "position": 1}]})
        ),
        (400, "invalid_argument".into())
    );
    assert_eq!(
        imp(json!({"recommendation_id": rid, "items": [{"item_id": item, "position": 0}]})),
        (400, "invalid_argument".into())
    );
    assert_eq!(
        imp(json!({"recommendation_id": rid, "items": []})),
        (400, "invalid_argument".into())
    );
    assert_eq!(
        imp(
            json!({"recommendation_id": rid, "user_id": "u2", "items": [{"item_id": item, "position": 1}]})
        ),
        (400, "invalid_argument".into())
    );
    assert_eq!(
        code(post(
            &base,
            "/v1/events",
            json!({"events": [{"user_id": "u1", "item_id": item,
            "type": "click", "position": 0}]})
        )),
        (400, "invalid_argument".into())
    );
    // Outside any experiment a list still has its id and takes impressions.
    let (status, body) = post(
        &base,
        "/v1/impressions",
        json!({"recommendation_id": rid, "items": [{"item_id": item, "position": 1}]}),
    );
    assert_eq!((status, &body["recorded"]), (200, &json!(1)), "{body}");
}
