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
    let backups = tempfile::tempdir().unwrap();
    let dest = backups.path().join("nightly");
    let said = cairn(
        live.path(),
        &["backup", dest.to_str().unwrap(), "--url", &base],
    );
    let summary: serde_json::Value = serde_json::from_slice(&said.stdout).unwrap();
    assert_eq!(summary["events"], 2000, "{summary}");
    assert!(summary["model_version"].is_string(), "{summary}");
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
