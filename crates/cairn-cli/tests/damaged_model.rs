//! A damaged newest model file (truncated, or bytes flipped) through the real `cairn serve`: it is
//! refused at start with a log line naming the file, and the previous kept model serves from the
//! first request on (lists are not empty, `/v1/model` names the previous version).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{cairn_ok, text};

/// Trains twice (at least two kept model files); returns (previous, newest) file paths.
fn two_models(dir: &Path) -> (PathBuf, PathBuf) {
    cairn_ok(
        dir,
        &["demo", "--users", "60", "--items", "80", "--events", "3000"],
    );
    cairn_ok(dir, &["train"]);
    // Versions are named by the training's second.
    std::thread::sleep(Duration::from_millis(1100));
    cairn_ok(dir, &["train"]);
    let models = dir.join("models");
    let newest = models.join(
        std::fs::read_to_string(models.join("LATEST"))
            .unwrap()
            .trim(),
    );
    // `cairn demo` may have trained one too: the previous model is the newest of the others.
    let older = std::fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cairn") && *p != newest)
        .max_by_key(|p| version_of(p))
        .expect("an older kept model");
    (older, newest)
}

fn version_of(path: &Path) -> String {
    let name = path.file_stem().unwrap().to_str().unwrap();
    name.strip_prefix("model-").unwrap().to_string()
}

/// `cairn serve` with its log captured; returns the base URL, the child and the log reader.
fn serve_logged(dir: &Path) -> (String, std::process::Child, std::thread::JoinHandle<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(dir)
        .env("CAIRN_TRAIN__INTERVAL_SECS", "0")
        .env("CAIRN_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cairn starts");
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("cairn listening on ")
        .unwrap_or_else(|| panic!("unexpected banner: {line:?}"))
        .to_string();
    (base, child, log)
}

#[test]
fn a_damaged_newest_model_is_refused_by_name_and_the_previous_one_serves_from_the_first_request() {
    for damage in ["truncated", "flipped"] {
        let dir = tempfile::tempdir().unwrap();
        let (older, newest) = two_models(dir.path());
        let mut bytes = std::fs::read(&newest).unwrap();
        match damage {
            "truncated" => bytes.truncate(bytes.len() - 4096.min(bytes.len() / 2)),
            _ => {
                let n = bytes.len();
                for k in 0..20 {
                    bytes[n / 3 + k * 97 % (n / 2)] ^= 0x5a;
                }
            }
        }
        std::fs::write(&newest, &bytes).unwrap();

        let (base, mut child, log) = serve_logged(dir.path());
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let get = |path: &str| -> serde_json::Value {
            let r = client.get(format!("{base}{path}")).send().unwrap();
            assert_eq!(r.status().as_u16(), 200, "{damage}: {path}");
            r.json().unwrap()
        };
        // The first request already gets a list.
        let users = get("/v1/users?limit=1");
        let user = users["users"][0]["id"].as_str().unwrap().to_string();
        let recs = get(&format!("/v1/users/{user}/recommendations?k=10"));
        let first = get("/v1/popular?k=10");
        let model = get("/v1/model");
        let ready = client.get(format!("{base}/readyz")).send().unwrap();
        let ready_status = ready.status().as_u16();
        child.kill().unwrap();
        child.wait().unwrap();
        let log = log.join().unwrap();

        assert!(
            !recs["items"].as_array().unwrap().is_empty(),
            "{damage}: {recs}"
        );
        assert!(
            !first["items"].as_array().unwrap().is_empty(),
            "{damage}: {first}"
        );
        let files: Vec<_> = std::fs::read_dir(dir.path().join("models"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            model["version"],
            version_of(&older),
            "{damage}: {model}; files {files:?}; log {log}"
        );
        assert_eq!(ready_status, 200, "{damage}");
        let name = newest.file_name().unwrap().to_str().unwrap();
        assert!(
            log.contains(name) && log.contains(&version_of(&older)),
            "{damage}: the log does not name the refused file and the served one: {log}"
        );
        // `cairn check` names it too.
        let check = common::cairn(dir.path(), &["check"]);
        assert!(!check.status.success(), "{damage}: {}", text(&check));
        assert!(text(&check).contains(name), "{damage}: {}", text(&check));
    }
}
