//! `cairn import factors`: factors trained outside Cairn on `cairn export interactions` become a
//! model version that passes the promotion gate and serves recommendations over HTTP. The factors
//! here are written by this test (Cairn's ALS fitted on the export, written in the Spark job's
//! layout), so no Spark is needed; `spark_job.rs` runs the real job when PySpark is installed.

use std::collections::HashMap;
use std::path::Path;

use cairn_core::InteractionMatrix;
use cairn_import::factors::write_factor_table;
use cairn_import::parquet_files::{read, Interaction};
use cairn_import::ByteCounter;
use cairn_models::{AlsConfig, ImplicitAls};
use serde_json::Value;

mod common;

const RANK: usize = 8;

/// The export's interactions, summed per pair and binarized as the Spark job does.
fn exported(file: &Path) -> InteractionMatrix {
    let mut sums: HashMap<(String, String), f32> = HashMap::new();
    let mut order = Vec::new();
    for (_, row) in read::<Interaction>(file, &ByteCounter::new()).unwrap() {
        let row = row.unwrap();
        let key = (row.user_id, row.item_id);
        if !sums.contains_key(&key) {
            order.push(key.clone());
        }
        *sums.entry(key).or_default() += row.strength;
    }
    InteractionMatrix::from_rows(
        order
            .iter()
            .filter(|k| sums[*k] > 0.0)
            .map(|(u, i)| (u.as_str(), i.as_str(), 1.0)),
    )
}

/// What jobs/spark/train_als.py writes: user_factors/ and item_factors/ (two part files each)
/// and manifest.json.
fn write_job_output(out: &Path, data: &InteractionMatrix) {
    let als = ImplicitAls::fit(
        &data.user_items,
        AlsConfig {
            factors: RANK,
            iterations: 8,
            regularization: 0.5,
            alpha: 10.0,
            ..AlsConfig::default()
        },
    );
    for (name, ids, vectors) in [
        ("user_factors", data.users.ids(), &als.user_factors),
        ("item_factors", data.items.ids(), &als.item_factors),
    ] {
        let dir = out.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let half = ids.len() / 2;
        write_factor_table(
            &dir.join("part-00000.parquet"),
            &ids[..half],
            &vectors[..half * RANK],
        )
        .unwrap();
        write_factor_table(
            &dir.join("part-00001.parquet"),
            &ids[half..],
            &vectors[half * RANK..],
        )
        .unwrap();
        std::fs::write(dir.join("_SUCCESS"), "").unwrap();
    }
    let manifest = serde_json::json!({
        "format": "cairn-factors",
        "format_version": 1,
        "algorithm": "test: cairn als in the job's layout",
        "params": {"rank": RANK, "reg_param": 0.01, "alpha": 10.0, "iterations": 8, "seed": 1, "binarize": true},
        "users": data.n_users(),
        "items": data.n_items(),
        "interactions": data.user_items.nnz(),
        "mean_user_interactions": data.user_items.nnz() as f64 / data.n_users() as f64,
        "training_seconds": 0.1,
        "spark_version": "none",
    });
    std::fs::write(out.join("manifest.json"), manifest.to_string()).unwrap();
}

fn get(base: &str, path: &str) -> Value {
    let response = reqwest::blocking::get(format!("{base}{path}")).unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().unwrap()
}

#[test]
fn imported_factors_pass_the_gate_and_serve_over_http() {
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
    let data = exported(&export);
    let factors = d.join("factors");
    write_job_output(&factors, &data);

    // `cairn demo` trained a champion: the imported version is gated against it.
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
    let show = common::text(&common::cairn_ok(d, &["models", "show", &version]));
    assert!(show.contains("\"imported\""), "{show}");
    assert!(show.contains("\"cairn-factors\""), "{show}");

    let (mut server, base) = common::serve(d);
    assert_eq!(get(&base, "/v1/model")["version"], version.as_str());
    // Every user of the export is served a full list of unseen items, and the factor model's
    // retriever (the imported item vectors, users folded in) contributes to them.
    let mut embedding = 0;
    for user in data.users.ids().iter().take(20) {
        let body = get(&base, &format!("/v1/users/{user}/recommendations?k=10"));
        assert_eq!(body["model_version"], version.as_str(), "{body}");
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), 10, "{body}");
        let u = data.users.get(user).unwrap() as usize;
        let (seen, _) = data.user_items.row(u);
        for item in items {
            let id = item["item_id"].as_str().unwrap();
            if let Some(i) = data.items.get(id) {
                assert!(!seen.contains(&i), "{user} was recommended {id}, seen");
            }
            embedding += usize::from(item["source"] == "embedding");
        }
    }
    assert!(embedding > 0, "no item came from the imported factors");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn bad_factor_files_are_refused_naming_the_file_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::cairn_ok(
        d,
        &["demo", "--users", "40", "--items", "30", "--events", "1200"],
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
    let data = exported(&export);
    let factors = d.join("factors");
    write_job_output(&factors, &data);
    // `cairn demo` trained a first version; none of the imports below may add one.
    let versions = common::text(&common::cairn_ok(d, &["models", "list"]));
    let items = factors.join("item_factors");
    let part = items.join("part-00001.parquet");
    let ids: Vec<String> = data.items.ids().to_vec();
    let half = ids.len() / 2;
    let mut rows: Vec<String> = ids[half..].to_vec();
    let n = rows.len();

    // An item the data directory has never seen, on the second row of the second part.
    rows[1] = "no-such-item".into();
    write_factor_table(&part, &rows, &vec![0.5; n * RANK]).unwrap();
    let out = common::cairn(d, &["import", "factors", factors.to_str().unwrap()]);
    assert!(!out.status.success());
    let text = common::text(&out);
    assert!(
        text.contains(&format!(
            "{}:2: item `no-such-item` has no events in the training data",
            part.display()
        )),
        "{text}"
    );

    // A vector of the wrong length.
    write_factor_table(&part, &ids[half..], &vec![0.5; n * (RANK + 1)]).unwrap();
    let text = common::text(&common::cairn(
        d,
        &["import", "factors", factors.to_str().unwrap()],
    ));
    assert!(
        text.contains(&format!(
            "{}: row 1: id `{}`: features: {} values, but the vectors have {RANK}",
            part.display(),
            ids[half],
            RANK + 1
        )),
        "{text}"
    );

    // NaN in the third row.
    let mut vectors = vec![0.5; n * RANK];
    vectors[2 * RANK + 3] = f32::NAN;
    write_factor_table(&part, &ids[half..], &vectors).unwrap();
    let text = common::text(&common::cairn(
        d,
        &["import", "factors", factors.to_str().unwrap()],
    ));
    assert!(
        text.contains(&format!(
            "{}: row 3: id `{}`: features[3] is NaN",
            part.display(),
            ids[half + 2]
        )),
        "{text}"
    );

    // No manifest.
    std::fs::remove_file(factors.join("manifest.json")).unwrap();
    let text = common::text(&common::cairn(
        d,
        &["import", "factors", factors.to_str().unwrap()],
    ));
    assert!(text.contains("manifest.json"), "{text}");
    // Nothing was imported by any of these.
    let list = common::text(&common::cairn_ok(d, &["models", "list"]));
    assert_eq!(list, versions);
}
