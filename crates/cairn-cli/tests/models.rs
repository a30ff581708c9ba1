//! `cairn models`: versions, promotion and rollback on the data directory, picked up by a running
//! `cairn serve`; the champion survives `kill -9`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

fn get(base: &str, path: &str) -> Value {
    reqwest::blocking::get(format!("{base}{path}"))
        .unwrap()
        .json()
        .unwrap()
}

fn served(base: &str) -> String {
    get(base, "/v1/model")["version"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Waits (functionally, not as a timing assertion) until the server serves `version`.
fn wait_for(base: &str, version: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while served(base) != version {
        assert!(
            Instant::now() < deadline,
            "the server never served {version}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn train(dir: &Path) -> String {
    let out = common::cairn_ok(dir, &["train"]);
    let text = common::text(&out);
    assert!(text.contains("passed the promotion gate"), "{text}");
    text.split_whitespace()
        .skip_while(|w| *w != "model")
        .nth(1)
        .unwrap()
        .to_string()
}

#[test]
fn the_champion_survives_kill_9_and_cli_promotions_reach_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::cairn_ok(
        d,
        &["demo", "--users", "60", "--items", "80", "--events", "3000"],
    );
    let first = train(d);
    let second = train(d);
    assert_ne!(first, second);
    let list = common::text(&common::cairn_ok(d, &["models", "list"]));
    assert!(
        list.contains(&format!("{second}\tpassed\tchampion")),
        "{list}"
    );

    let (mut server, base) = common::serve(d);
    assert_eq!(served(&base), second);
    // The CLI rolls back while the server runs; the server follows the history.
    let out = common::cairn_ok(d, &["models", "rollback", "--reason", "test rollback"]);
    assert!(common::text(&out).contains(&format!("rollback {first} (was {second})")));
    wait_for(&base, &first);
    let models = get(&base, "/v1/models");
    assert_eq!(models["champion"], first.as_str());
    let history = get(&base, "/v1/models/history");
    let last = history["entries"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["who"], "cli");
    assert_eq!(last["reason"], "test rollback");

    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    let (mut server, base) = common::serve(d);
    assert_eq!(served(&base), first, "the champion survives kill -9");
    common::cairn_ok(d, &["models", "promote", &second, "--reason", "back"]);
    wait_for(&base, &second);
    // A refused reason-less promotion, an unknown version.
    assert!(
        !common::cairn(d, &["models", "promote", &first, "--reason", " "])
            .status
            .success()
    );
    let out = common::cairn(d, &["models", "promote", "nope", "--reason", "x"]);
    assert!(!out.status.success());
    assert!(
        common::text(&out).contains("nope"),
        "{}",
        common::text(&out)
    );
    server.kill().unwrap();
    server.wait().unwrap();
}
