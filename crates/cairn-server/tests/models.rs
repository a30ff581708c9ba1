//! `/v1/models`: the registry over HTTP, and a rollback under load that no request notices.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;

use common::seed;

#[test]
fn routes_list_show_promote_and_refuse() {
    let server = common::Running::start(
        |c| c.train.ranker.enabled = false,
        |e| {
            seed(e);
            e.train().unwrap();
        },
    );
    let http = common::client();
    let base = &server.base;
    let list: Value = http
        .get(format!("{base}/v1/models"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let v1 = list["champion"].as_str().unwrap().to_string();
    assert_eq!(list["versions"][0]["status"], "passed");
    assert_eq!(list["versions"][0]["aliases"], json!(["champion"]));
    let meta = &list["versions"][0]["metadata"];
    assert!(meta["data"]["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(meta["metrics"]["p99_ms"].as_f64().is_some());

    let trained: Value = http
        .post(format!("{base}/v1/train"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let v2 = trained["version"].as_str().unwrap().to_string();
    assert_eq!(trained["status"], "passed", "{trained}");
    let show: Value = http
        .get(format!("{base}/v1/models/{v2}"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(show["aliases"], json!(["champion"]));
    let history: Value = http
        .get(format!("{base}/v1/models/history"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let who = history["entries"][1]["who"].as_str().unwrap();
    assert!(who.starts_with("training (anonymous"), "{who}");

    let promote = |version: &str, body: Value| {
        http.post(format!("{base}/v1/models/{version}/promote"))
            .json(&body)
            .send()
            .unwrap()
    };
    let r = promote(&v1, json!({"reason": ""}));
    assert_eq!(r.status(), 400);
    let r = promote("nope", json!({"reason": "x"}));
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().unwrap()["error"]["code"],
        "model_version_not_found"
    );
    let r = promote(&v2, json!({"reason": "again"}));
    assert_eq!(r.status(), 409);
    let r = promote(&v1, json!({"reason": "compare", "alias": "challenger"}));
    assert_eq!(r.status(), 200);
    let list: Value = http
        .get(format!("{base}/v1/models"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list["challenger"], v1.as_str());
    assert_eq!(list["champion"], v2.as_str());

    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("cairn_model_versions_refused_total 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("cairn_model_champion{{version=\"{v2}\"}} 1")),
        "{metrics}"
    );
}

#[test]
fn a_rollback_under_load_fails_no_request() {
    let server = common::Running::start(
        |c| c.train.ranker.enabled = false,
        |e| {
            seed(e);
            e.train().unwrap();
            e.train().unwrap();
        },
    );
    let http = common::client();
    let base = server.base.clone();
    let list: Value = http
        .get(format!("{base}/v1/models"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let versions: Vec<String> = list["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap().to_string())
        .collect();
    let (old, new) = (versions[0].clone(), versions[1].clone());
    assert_eq!(list["champion"], new.as_str());

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    // (when the request was sent, when its response came, the model version that served it)
    let served: Arc<Mutex<Vec<(Instant, Instant, String)>>> = Arc::default();
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (stop, ok, failed, served, base) = (
                stop.clone(),
                ok.clone(),
                failed.clone(),
                served.clone(),
                base.clone(),
            );
            std::thread::spawn(move || {
                let http = common::client();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let user = format!("u{}", (c * 31 + n) % 120);
                    n += 1;
                    let at = Instant::now();
                    let r = http
                        .get(format!("{base}/v1/users/{user}/recommendations?k=10"))
                        .send();
                    match r {
                        Ok(r) if r.status() == 200 => {
                            let body: Value = r.json().unwrap();
                            let version = body["model_version"].as_str().unwrap_or("").to_string();
                            served.lock().unwrap().push((at, Instant::now(), version));
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    let r = http
        .post(format!("{base}/v1/models/rollback"))
        .json(&json!({"reason": "load test"}))
        .send()
        .unwrap();
    let answered = Instant::now();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let served = served.lock().unwrap();
    let before = served.iter().filter(|(_, t, _)| *t < sent).count();
    let first_new = served
        .iter()
        .filter(|(_, _, v)| *v == old)
        .map(|(_, t, _)| *t)
        .min();
    // Every request sent after the rollback was answered is served by the rolled-back-to version.
    let stale = served
        .iter()
        .filter(|(at, _, v)| *at > answered && *v != old)
        .count();
    eprintln!(
        "rollback under load: {} requests answered ({} before the rollback), {} failed; the \
         rollback request took {:.1} ms; first response from the rolled-back-to version {:.1} ms \
         after it was sent",
        ok.load(Ordering::Relaxed),
        before,
        failed.load(Ordering::Relaxed),
        (answered - sent).as_secs_f64() * 1000.0,
        first_new.map_or(f64::NAN, |t| (t.max(sent) - sent).as_secs_f64() * 1000.0),
    );
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(before > 0 && ok.load(Ordering::Relaxed) > before);
    assert_eq!(stale, 0);
    let model: Value = http
        .get(format!("{base}/v1/model"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(model["version"], old.as_str());
}
