//! End to end with Apache Spark: `cairn export interactions` → `jobs/spark/train_als.py` (PySpark,
//! MLlib's implicit ALS, local mode) → `cairn import factors` → the promotion gate → recommendations
//! over HTTP. Needs `pyspark` importable by `python3` (or `$CAIRN_PYTHON`) and Java; without them
//! the test prints why and passes without running (`.ci/run` installs PyPI's pyspark where it can;
//! `CAIRN_SKIP_SPARK=1` skips it).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod common;

fn python() -> String {
    std::env::var("CAIRN_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Why the job cannot run here, if it cannot.
fn missing_spark() -> Option<String> {
    if std::env::var_os("CAIRN_SKIP_SPARK").is_some_and(|v| v != "0") {
        return Some("CAIRN_SKIP_SPARK is set".into());
    }
    let java = Command::new("java").arg("-version").output();
    if !java.is_ok_and(|o| o.status.success()) {
        return Some("no `java` on PATH (PySpark needs Java 17 or later)".into());
    }
    match Command::new(python())
        .args(["-c", "import pyspark, numpy"])
        .output()
    {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`{} -c 'import pyspark, numpy'` failed: {}",
            python(),
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
        Err(e) => Some(format!("cannot run `{}`: {e}", python())),
    }
}

fn job() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../jobs/spark/train_als.py")
}

#[test]
fn spark_trained_factors_serve_through_cairn() {
    if let Some(reason) = missing_spark() {
        eprintln!("SKIPPED spark_trained_factors_serve_through_cairn: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::cairn_ok(
        d,
        &["demo", "--users", "80", "--items", "60", "--events", "4000"],
    );
    let export = d.join("interactions.parquet");
    common::cairn_ok(
        d,
        &[
            "export",
            "interactions",
            "--without-holdout",
            "--out",
            export.to_str().unwrap(),
        ],
    );
    let factors = d.join("factors");
    let out = Command::new(python())
        .arg(job())
        .args(["--input", export.to_str().unwrap()])
        .args(["--out", factors.to_str().unwrap()])
        .args(["--rank", "8", "--reg-param", "0.05", "--alpha", "10"])
        .args([
            "--iterations",
            "5",
            "--master",
            "local[1]",
            "--driver-memory",
            "1g",
        ])
        .output()
        .expect("python runs");
    let job_text = common::text(&out);
    assert!(out.status.success(), "the Spark job failed:\n{job_text}");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(factors.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["format"], "cairn-factors");
    assert_eq!(manifest["params"]["rank"], 8);
    assert!(manifest["training_seconds"].as_f64().unwrap() > 0.0);
    assert!(manifest["spark_version"]
        .as_str()
        .is_some_and(|v| !v.is_empty()));

    let out = common::cairn_ok(d, &["import", "factors", factors.to_str().unwrap()]);
    let text = common::text(&out);
    assert!(
        text.contains("passed the promotion gate and is the champion"),
        "{text}"
    );
    let version = text
        .split_whitespace()
        .skip_while(|w| *w != "model")
        .nth(1)
        .unwrap()
        .to_string();

    let (mut server, base) = common::serve(d);
    let users: Vec<String> = (1..=10).map(|u| format!("user-{u:04}")).collect();
    let mut served = 0;
    let mut embedding = 0;
    for user in &users {
        let response =
            reqwest::blocking::get(format!("{base}/v1/users/{user}/recommendations?k=10")).unwrap();
        assert!(response.status().is_success());
        let body: Value = response.json().unwrap();
        assert_eq!(body["model_version"], version.as_str(), "{body}");
        let items = body["items"].as_array().unwrap();
        served += usize::from(items.len() == 10);
        embedding += items.iter().filter(|i| i["source"] == "embedding").count();
    }
    assert_eq!(served, users.len());
    assert!(embedding > 0, "no item came from the Spark factors");
    server.kill().unwrap();
    server.wait().unwrap();
}
