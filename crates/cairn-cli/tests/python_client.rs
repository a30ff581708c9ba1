//! The Python client (clients/python): the committed package is what scripts/gen_python_client.py
//! makes from docs/openapi.json, and it works against the real server on a loopback port. Both need
//! `python3` on PATH and say that they skip when it is not there (CI has it).

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `python3`, when it runs here.
fn python() -> Option<&'static str> {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: python3 is not on PATH (the Python client needs Python 3.11+)");
    }
    ok.then_some("python3")
}

/// Every file under `dir`, relative to it, sorted; caches and the hand-written tests left out.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name == "__pycache__" || name.ends_with(".egg-info") || name == "tests" {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn committed_python_client_is_what_the_generator_makes() {
    let Some(python) = python() else { return };
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(python)
        .arg(root().join("scripts/gen_python_client.py"))
        .arg("--openapi")
        .arg(root().join("docs/openapi.json"))
        .arg("--out")
        .arg(out.path())
        .status()
        .expect("the generator runs");
    assert!(status.success());
    let committed = root().join("clients/python");
    let fix = "clients/python is stale: regenerate it with `python3 scripts/gen_python_client.py`";
    assert_eq!(files(out.path()), files(&committed), "{fix}");
    for file in files(out.path()) {
        let generated = std::fs::read_to_string(out.path().join(&file)).unwrap();
        let current = std::fs::read_to_string(committed.join(&file)).unwrap();
        assert!(generated == current, "{}: {fix}", file.display());
    }
}

#[test]
fn python_client_works_against_a_real_server() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = common::serve(dir.path());
    let output = Command::new(python)
        .arg(root().join("clients/python/tests/live_check.py"))
        .arg(&base)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs the live check");
    let _ = server.kill();
    let _ = server.wait();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(text.contains("python client live check: ok"), "{text}");
}
