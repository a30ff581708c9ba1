//! Privacy through the real binary: an erased user's id is gone from the store file after a clean
//! stop (the case a tester found with 157 occurrences left), `cairn compact`, and `cairn import`
//! with pseudonymised ids.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

fn occurrences(path: &Path, needle: &str) -> usize {
    let bytes = std::fs::read(path).unwrap();
    bytes
        .windows(needle.len())
        .filter(|w| *w == needle.as_bytes())
        .count()
}

/// Items i0..i19, and events of u0..u9 and of `user` (50 events), as JSONL files in `dir`.
fn write_data(dir: &Path, user: &str) -> (String, String) {
    let items: String = (0..20).map(|i| format!("{{\"id\":\"i{i}\"}}\n")).collect();
    let mut events = String::new();
    for u in 0..10 {
        for i in 0..5 {
            events.push_str(&format!(
                "{{\"user_id\":\"u{u}\",\"item_id\":\"i{}\",\"type\":\"view\"}}\n",
                (u + i) % 20
            ));
        }
    }
    for i in 0..50 {
        events.push_str(&format!(
            "{{\"user_id\":\"{user}\",\"item_id\":\"i{}\",\"type\":\"view\"}}\n",
            i % 20
        ));
    }
    let (items_path, events_path) = (dir.join("items.jsonl"), dir.join("events.jsonl"));
    std::fs::write(&items_path, items).unwrap();
    std::fs::write(&events_path, events).unwrap();
    (
        items_path.display().to_string(),
        events_path.display().to_string(),
    )
}

#[test]
#[cfg(unix)]
fn an_erased_user_leaves_no_byte_in_the_store_after_a_clean_stop() {
    let user = "cli-erased-31c7aa";
    let files = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (items, events) = write_data(files.path(), user);
    common::cairn_ok(dir.path(), &["import", "items", &items]);
    common::cairn_ok(dir.path(), &["import", "events", &events]);
    let store = dir.path().join("cairn.redb");
    assert!(occurrences(&store, user) > 0);

    let (mut server, base) = common::serve(dir.path());
    let status = reqwest::blocking::Client::new()
        .delete(format!("{base}/v1/users/{user}"))
        .send()
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
    let kill = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = server.try_wait().unwrap() {
            break exit;
        }
        if started.elapsed() > Duration::from_secs(60) {
            server.kill().unwrap();
            panic!("still running 60 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    assert_eq!(occurrences(&store, user), 0);
    // The compacted store opens and holds everyone else.
    let out = common::cairn_ok(dir.path(), &["export", "events"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 50);
}

#[test]
fn cairn_compact_rewrites_the_file_and_import_pseudonymises_ids() {
    let user = "cli-raw-id-8e02f4";
    let files = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (items, events) = write_data(files.path(), user);
    let cairn = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .env("CAIRN_LOG", "warn")
            .env("CAIRN_PRIVACY__PSEUDONYMIZE_USER_IDS", "true")
            .env("CAIRN_PRIVACY__HMAC_KEY", "an import key of 32 bytes......")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", common::text(&out));
        out
    };
    cairn(&["import", "items", &items]);
    cairn(&["import", "events", &events]);
    let store = dir.path().join("cairn.redb");
    assert_eq!(occurrences(&store, user), 0);
    let exported = String::from_utf8(cairn(&["export", "events"]).stdout).unwrap();
    // 50 events of u0..u9 and the user's 20 distinct ones (import drops same-content repeats).
    assert_eq!(exported.lines().count(), 70);
    assert_eq!(exported.lines().filter(|l| l.contains("\"ps_")).count(), 70);

    let out = cairn(&["compact"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["events"], 70);
    assert_eq!(report["items"], 20);

    // Without a key, pseudonymisation refuses to start.
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["export", "events", "--data-dir"])
        .arg(dir.path())
        .env("CAIRN_PRIVACY__PSEUDONYMIZE_USER_IDS", "true")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        common::text(&out).contains("hmac_key_file"),
        "{}",
        common::text(&out)
    );
}
