//! `cairn-bench experiment-sim`, tiny, against the real server (in-process on a loopback port):
//! every case runs, every look read `GET /v1/experiments/{id}/results`, and the server's counts
//! equal what the simulator sent. The statistical targets are measured by
//! scripts/experiment-sim.sh at full size, not here.

#[path = "../../cairn-server/tests/common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::process::Command;

use cairn_pipeline::{PlacementConfig, Quota, Source};
use serde_json::Value;

/// The real server (the server's own test harness) with a non-personal `popular` placement beside
/// the default ones (the ranker case's control).
fn start() -> common::Running {
    common::Running::start(
        |config| {
            config.train.ranker.enabled = false;
            config.train.interval_secs = 0;
            config.serve.placements.insert(
                "popular".into(),
                PlacementConfig {
                    retrievers: vec![Quota {
                        source: Source::Popular,
                        quota: 200,
                    }],
                    ..PlacementConfig::default()
                },
            );
        },
        |_| {},
    )
}

fn results(base: &str, id: &str) -> Value {
    let response = common::client()
        .get(format!("{base}/v1/experiments/{id}/results"))
        .send()
        .expect("results answered");
    assert_eq!(response.status(), 200);
    response.json().expect("JSON")
}

#[test]
fn a_tiny_simulation_reads_the_results_and_its_tallies_match_the_server() {
    let server = start();
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out = out_dir.path().join("sim.jsonl");
    let days = 2;
    let status = Command::new(env!("CARGO_BIN_EXE_cairn-bench"))
        .args(["experiment-sim", "--url", &server.base])
        .args([
            "--items",
            "60",
            "--categories",
            "4",
            "--users",
            "300",
            "--history",
            "4",
        ])
        .args(["--days", &days.to_string(), "--concurrency", "4"])
        .args([
            "--aa-experiments",
            "4",
            "--aa-parallel",
            "2",
            "--aa-users",
            "60",
        ])
        .args(["--skew-users", "120", "--skew-drop", "0.3"])
        .args(["--lift-users", "80", "--lift-runs", "2"])
        .args(["--ranker-pilot-users", "100", "--ranker-runs", "1"])
        .args(["--ranker-max-users", "150"])
        .args(["--cases", "aa,skew,lift,ranker", "--seed", "7"])
        .arg("--out")
        .arg(&out)
        .status()
        .expect("cairn-bench runs");
    assert!(status.success(), "{status}");

    let rows: Vec<Value> = std::fs::read_to_string(&out)
        .expect("output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let cases: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r["row"] == "summary")
        .filter_map(|r| r["case"].as_str())
        .collect();
    assert_eq!(cases, BTreeSet::from(["aa", "lift", "ranker", "skew"]));
    let experiments: Vec<&Value> = rows.iter().filter(|r| r["row"] == "experiment").collect();
    let count = |case: &str| {
        experiments
            .iter()
            .filter(|r| r["run"]["case"] == case)
            .count()
    };
    assert_eq!(count("aa"), 4);
    assert_eq!(count("skew"), 1);
    assert_eq!(count("lift"), 2);
    // The two pilots, and at least the interleaving power runs.
    assert!(count("ranker-ab") >= 1 && count("ranker-interleaving") >= 1);

    for r in &experiments {
        let run = &r["run"];
        let id = run["id"].as_str().unwrap();
        let looks = run["looks"].as_array().unwrap();
        assert_eq!(looks.len(), days, "{id}: one look per day");
        for l in looks {
            assert_eq!(l["consistent"], true, "{id}: {l}");
        }
        // The last look is the server's results now (the experiment is stopped, so final):
        // the same users per variant, and what the simulator sent adds up to it.
        let last = looks.last().unwrap();
        let now = results(&server.base, id);
        let users: Vec<u64> = now["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["users"].as_u64().unwrap())
            .collect();
        assert_eq!(last["users_per_variant"], serde_json::json!(users), "{id}");
        assert_eq!(now["experiment"]["status"], "stopped", "{id}");
        let sent = run["sent"].as_array().unwrap();
        let sent_users: u64 = sent.iter().map(|a| a["users"].as_u64().unwrap()).sum();
        assert_eq!(sent_users, now["users"].as_u64().unwrap(), "{id}");
        assert!(sent_users > 0, "{id}: no user reached the experiment");
        let sent_clicks: u64 = sent.iter().map(|a| a["clicks"].as_u64().unwrap()).sum();
        let server_clicks: u64 = now["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["clicks"].as_u64().unwrap())
            .sum();
        assert_eq!(sent_clicks, server_clicks, "{id}");
        if run["kind"] == "ab" {
            assert!(
                last["srm_p"].is_number(),
                "{id}: an A/B look has the analysis"
            );
        } else {
            assert!(
                last["preference"].is_number(),
                "{id}: interleaving has a preference"
            );
        }
    }
    // The skew case lost users of the second variant only, and the server never saw them.
    let skew = experiments
        .iter()
        .find(|r| r["run"]["case"] == "skew")
        .unwrap();
    let dropped = skew["run"]["dropped_users"].as_u64().unwrap();
    let sent_b = skew["run"]["sent"][1]["users"].as_u64().unwrap();
    let server_b = results(&server.base, skew["run"]["id"].as_str().unwrap())["variants"][1]
        ["users"]
        .as_u64()
        .unwrap();
    assert_eq!(sent_b, server_b);
    assert!(dropped > 0, "30% of the second variant's users are lost");
    // Every summary says its looks were consistent.
    for r in rows
        .iter()
        .filter(|r| r["row"] == "summary" && r["case"] != "ranker")
    {
        assert_eq!(r["inconsistent_looks"], 0, "{r}");
    }
}
