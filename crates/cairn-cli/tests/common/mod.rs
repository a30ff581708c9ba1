//! What the CLI's test files share: running the real `cairn` binary on a data directory, and
//! starting `cairn serve` on a free loopback port.
#![allow(dead_code)] // Each test file uses what it needs.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// Runs `cairn ARGS --data-dir DIR` and returns what it did, whatever its exit status.
pub fn cairn(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("CAIRN_LOG", "warn")
        .output()
        .expect("cairn runs")
}

/// Runs `cairn ARGS --data-dir DIR` and fails the test, showing its output, unless it succeeds.
pub fn cairn_ok(dir: &Path, args: &[&str]) -> Output {
    let out = cairn(dir, args);
    assert!(out.status.success(), "cairn {args:?}: {}", text(&out));
    out
}

/// Standard output then standard error, as text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `cairn serve` on port 0 over `dir`, without background retraining; returns the process and
/// its base URL, read from the one line it prints when it listens.
pub fn serve(dir: &Path) -> (Child, String) {
    serve_with(dir, &[])
}

/// [`serve`] with more environment variables (`CAIRN_SERVER__TLS_CERT`, ...).
pub fn serve_with(dir: &Path, envs: &[(&str, &std::ffi::OsStr)]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(dir)
        .env("CAIRN_TRAIN__INTERVAL_SECS", "0")
        .env("CAIRN_LOG", "warn")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cairn starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout is piped"))
        .read_line(&mut line)
        .expect("reads the banner");
    let base = line
        .trim()
        .strip_prefix("cairn listening on ")
        .unwrap_or_else(|| panic!("unexpected banner: {line:?}"))
        .to_string();
    (child, base)
}
