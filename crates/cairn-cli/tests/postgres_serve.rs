//! `cairn serve` with `store.url` naming PostgreSQL: the server migrates the database when it
//! starts, stores what it acknowledges there (not in the data directory), answers reads from it,
//! erases a user in it, and a second start over the same database sees everything. Needs
//! `CAIRN_TEST_POSTGRES_URL` (scripts/with-postgres.sh); skipped, saying why, without it.

mod common;

use std::ffi::OsStr;

use serde_json::{json, Value};

#[test]
fn a_server_on_postgres_stores_serves_and_erases_there() {
    let Ok(base) = std::env::var("CAIRN_TEST_POSTGRES_URL") else {
        eprintln!(
            "skipped: CAIRN_TEST_POSTGRES_URL is not set (run `scripts/with-postgres.sh cargo \
             test -p cairn-cli --test postgres_serve` to start a throwaway PostgreSQL)"
        );
        return;
    };
    let schema = format!("cli_serve_{}", std::process::id());
    let mut db = postgres::Client::connect(&base, postgres::NoTls).unwrap();
    db.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ))
    .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let envs = [("CAIRN_STORE__URL", OsStr::new(&url))];
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::blocking::Client::new();

    let (mut server, addr) = common::serve_with(dir.path(), &envs);
    let items: Vec<Value> = (0..5).map(|i| json!({"id": format!("i{i}")})).collect();
    let r = http
        .post(format!("{addr}/v1/items"))
        .json(&json!({ "items": items }))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    let events: Vec<Value> = (0..20)
        .map(|i| {
            json!({"event_id": format!("e{i}"), "user_id": if i % 2 == 0 { "alice" } else { "bob" },
                   "item_id": format!("i{}", i % 5), "type": "view"})
        })
        .collect();
    let body = json!({ "events": events });
    let first: Value = http
        .post(format!("{addr}/v1/events"))
        .json(&body)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        (first["stored"].as_u64(), first["duplicates"].as_u64()),
        (Some(20), Some(0))
    );
    let again: Value = http
        .post(format!("{addr}/v1/events"))
        .json(&body)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(again["duplicates"].as_u64(), Some(20), "{again}");
    let count = |db: &mut postgres::Client| -> i64 {
        db.query_one(
            format!("SELECT count(*) FROM {schema}.events").as_str(),
            &[],
        )
        .unwrap()
        .get(0)
    };
    assert_eq!(count(&mut db), 20, "the events are in PostgreSQL");
    assert!(
        !dir.path().join("cairn.redb").exists(),
        "no embedded store is made"
    );
    let history: Value = http
        .get(format!("{addr}/v1/users/alice/events"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        history["events"].as_array().map(Vec::len),
        Some(10),
        "{history}"
    );
    let r = http.delete(format!("{addr}/v1/users/bob")).send().unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        count(&mut db),
        10,
        "bob's events are erased from PostgreSQL"
    );
    server.kill().unwrap();
    server.wait().unwrap();

    // A second start migrates nothing and sees everything.
    let (mut server, addr) = common::serve_with(dir.path(), &envs);
    let history: Value = http
        .get(format!("{addr}/v1/users/alice/events"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        history["events"].as_array().map(Vec::len),
        Some(10),
        "{history}"
    );
    let versions: Vec<i32> = db
        .query(
            format!("SELECT version FROM {schema}.cairn_migrations").as_str(),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1]);
    server.kill().unwrap();
    server.wait().unwrap();
    db.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
}
