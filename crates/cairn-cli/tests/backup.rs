//! Backups from a running server, restores, and exports that `cairn import` reads back as they
//! were. Runs the real binary.

use std::path::Path;

mod common;
use common::{cairn_ok as cairn, serve};

fn export(dir: &Path, what: &str) -> String {
    String::from_utf8(cairn(dir, &["export", what]).stdout).unwrap()
}

#[test]
fn a_backup_from_a_running_server_restores_the_same_data() {
    let live = tempfile::tempdir().unwrap();
    cairn(
        live.path(),
        &["demo", "--users", "40", "--items", "60", "--events", "2000"],
    );
    cairn(live.path(), &["train"]);

    let (mut server, base) = serve(live.path());
    // An experiment, so that the backup has a definition and a history line to carry.
    let created = reqwest::blocking::Client::new()
        .post(format!("{base}/v1/experiments"))
        .json(&serde_json::json!({
            "id": "kept", "type": "ab", "placement": "home",
            "variants": [{"name": "control"}, {"name": "treatment"}]
        }))
        .send()
        .unwrap();
    assert!(created.status().is_success(), "{}", created.text().unwrap());
    let backups = tempfile::tempdir().unwrap();
    let dest = backups.path().join("nightly");
    let said = cairn(
        live.path(),
        &["backup", dest.to_str().unwrap(), "--url", &base],
    );
    let summary: serde_json::Value = serde_json::from_slice(&said.stdout).unwrap();
    assert_eq!(summary["events"], 2000, "{summary}");
    assert!(summary["model_version"].is_string(), "{summary}");
    assert!(
        summary["experiment_files"].as_u64().unwrap() >= 2,
        "the definition and its history: {summary}"
    );
    server.kill().unwrap();
    server.wait().unwrap();

    let restored = tempfile::tempdir().unwrap();
    cairn(restored.path(), &["restore", dest.to_str().unwrap()]);
    for what in ["items", "users", "events"] {
        assert_eq!(
            export(live.path(), what),
            export(restored.path(), what),
            "{what}"
        );
    }
    cairn(restored.path(), &["check"]);
    // The restored directory serves the experiment the live one had.
    let (mut server, base) = serve(restored.path());
    let kept: serde_json::Value = reqwest::blocking::get(format!("{base}/v1/experiments/kept"))
        .unwrap()
        .json()
        .unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(kept["id"], "kept", "{kept}");
    assert_eq!(kept["status"], "running", "{kept}");
}

#[test]
fn an_export_imports_back_as_it_was() {
    let from = tempfile::tempdir().unwrap();
    cairn(
        from.path(),
        &["demo", "--users", "30", "--items", "40", "--events", "800"],
    );
    let files = tempfile::tempdir().unwrap();
    let to = tempfile::tempdir().unwrap();
    for what in ["items", "users", "events"] {
        let file = files.path().join(format!("{what}.jsonl"));
        let n = cairn(
            from.path(),
            &["export", what, "--out", file.to_str().unwrap()],
        );
        assert!(String::from_utf8_lossy(&n.stderr).contains("exported"));
        cairn(to.path(), &["import", what, file.to_str().unwrap()]);
    }
    for what in ["items", "users", "events"] {
        let (a, b) = (export(from.path(), what), export(to.path(), what));
        assert!(!a.is_empty(), "{what}");
        assert_eq!(a, b, "{what}");
    }
}

/// Every field a record can carry, in JSONL as a client would send it: typed properties and lists,
/// tags, embeddings, availability, ratings, context, timestamps with UTC offsets.
const ITEMS: &str = r#"{"id":"i1","title":"Runner \"fast\"","description":"two\nlines","categories":["shoes","sale"],"tags":["red","light"],"properties":{"price":19.5,"stock":3,"new":true,"brand":"Acme","sizes":[42,"XL",false]},"embedding":[0.25,-1.5,3e-7],"available_from":"2024-05-01T13:00:00+01:00","available_until":1900000000}
{"id":"i2","hidden":true,"embedding":[1.0]}
{"id":"i3"}
"#;
const USERS: &str = r#"{"id":"u1","properties":{"age":31,"vip":false,"segments":["a","b"]}}
{"id":"u2"}
"#;
const EVENTS: &str = r#"{"user_id":"u1","item_id":"i1","type":"rating","value":4.5,"timestamp":"2024-05-01T13:00:00+01:00","recommendation_id":"rec-1","context":{"device":"ios","page":2}}
{"event_id":"e-2","user_id":"u2","item_id":"i2","type":"view","timestamp":1700000000}
{"user_id":"u2","item_id":"i3","type":"dislike","timestamp":"2024-01-01T00:00:00-05:30"}
{"user_id":"u1","item_id":"i2","type":"purchase","value":2,"timestamp":1700000100}
"#;

#[test]
fn a_parquet_export_imports_back_with_every_field() {
    let from = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    for (what, content) in [("items", ITEMS), ("users", USERS), ("events", EVENTS)] {
        let file = files.path().join(format!("{what}.jsonl"));
        std::fs::write(&file, content).unwrap();
        cairn(from.path(), &["import", what, file.to_str().unwrap()]);
    }
    // Export as Parquet, import into a fresh data directory, export again.
    let to = tempfile::tempdir().unwrap();
    for what in ["items", "users", "events"] {
        let first = files.path().join(format!("{what}-1.parquet"));
        let said = cairn(
            from.path(),
            &[
                "export",
                what,
                "--format",
                "parquet",
                "--out",
                first.to_str().unwrap(),
            ],
        );
        assert!(
            String::from_utf8_lossy(&said.stderr).contains("exported"),
            "{what}"
        );
        cairn(to.path(), &["import", what, first.to_str().unwrap()]);
        // The extension alone picks Parquet too.
        let second = files.path().join(format!("{what}-2.parquet"));
        cairn(
            to.path(),
            &["export", what, "--out", second.to_str().unwrap()],
        );
        assert_eq!(
            read_parquet(what, &first),
            read_parquet(what, &second),
            "{what}"
        );
    }
    for what in ["items", "users", "events"] {
        let (a, b) = (export(from.path(), what), export(to.path(), what));
        assert_eq!(a, b, "{what}");
    }
    // What went in came out: the fields most easily lost, checked by value.
    let items = export(to.path(), "items");
    let i1: serde_json::Value = serde_json::from_str(items.lines().next().unwrap()).unwrap();
    assert_eq!(i1["properties"]["stock"], 3.0);
    assert_eq!(
        i1["properties"]["sizes"],
        serde_json::json!([42.0, "XL", false])
    );
    assert_eq!(i1["embedding"], serde_json::json!([0.25, -1.5, 3e-7_f32]));
    assert_eq!(i1["available_from"], "2024-05-01T12:00:00Z");
    assert_eq!(i1["tags"], serde_json::json!(["red", "light"]));
    let events = export(to.path(), "events");
    let rated: serde_json::Value = serde_json::from_str(events.lines().next().unwrap()).unwrap();
    assert_eq!(rated["value"], 4.5);
    assert_eq!(rated["timestamp"], "2024-05-01T12:00:00Z");
    assert_eq!(rated["context"]["page"], 2.0);
    assert_eq!(events.lines().count(), 4);
}

/// The rows of a Parquet export, as text, in file order.
fn read_parquet(what: &str, path: &Path) -> Vec<String> {
    use cairn_import::parquet_files::read;
    let counter = cairn_import::ByteCounter::new();
    fn rows<T: std::fmt::Debug>(rows: cairn_import::Rows<T>) -> Vec<String> {
        rows.map(|(_, r)| format!("{:?}", r.unwrap())).collect()
    }
    match what {
        "items" => rows(read::<cairn_core::Item>(path, &counter).unwrap()),
        "users" => rows(read::<cairn_core::User>(path, &counter).unwrap()),
        _ => rows(read::<cairn_core::Event>(path, &counter).unwrap()),
    }
}

#[test]
fn interactions_export_the_training_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    for (what, content) in [("items", ITEMS), ("events", EVENTS)] {
        let file = files.path().join(format!("{what}.jsonl"));
        std::fs::write(&file, content).unwrap();
        cairn(dir.path(), &["import", what, file.to_str().unwrap()]);
    }
    let file = files.path().join("interactions.parquet");
    cairn(
        dir.path(),
        &[
            "export",
            "interactions",
            "--format",
            "parquet",
            "--out",
            file.to_str().unwrap(),
        ],
    );
    let rows: Vec<_> =
        cairn_import::parquet_files::read::<cairn_import::parquet_files::Interaction>(
            &file,
            &cairn_import::ByteCounter::new(),
        )
        .unwrap()
        .map(|(_, r)| r.unwrap())
        .map(|r| (r.user_id, r.item_id, r.strength, r.timestamp))
        .collect();
    // One row per event, in log order, with the strength training gives its type and value.
    let types = cairn_core::EventTypes::default();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[1], ("u2".into(), "i2".into(), 1.0, 1_700_000_000));
    assert_eq!(rows[2].2, types.strength("dislike", None));
    assert!(rows[2].2 < 0.0);
    assert_eq!(rows[2].3, 1_704_087_000);
    assert_eq!(
        rows[0],
        (
            "u1".into(),
            "i1".into(),
            types.strength("rating", Some(4.5)),
            1_714_564_800
        )
    );
    assert_eq!(
        rows[3],
        (
            "u1".into(),
            "i2".into(),
            types.strength("purchase", Some(2.0)),
            1_700_000_100
        )
    );

    // The same rows as JSON lines.
    let jsonl = String::from_utf8(cairn(dir.path(), &["export", "interactions"]).stdout).unwrap();
    let first: serde_json::Value = serde_json::from_str(jsonl.lines().nth(1).unwrap()).unwrap();
    assert_eq!(
        first,
        serde_json::json!({"user_id": "u2", "item_id": "i2", "strength": 1.0, "timestamp": 1_700_000_000})
    );
    // Parquet needs a file.
    let said = common::cairn(
        dir.path(),
        &["export", "interactions", "--format", "parquet"],
    );
    assert!(!said.status.success());
}
