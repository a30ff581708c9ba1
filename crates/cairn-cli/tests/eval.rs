//! `cairn eval`, run as the real binary on a tiny generated dataset.

use std::fmt::Write as _;
use std::process::Command;

/// A MovieLens-style folder: 40 users who each rate 12 of 30 films in two genres over 12 days, the
/// users of one half preferring the first genre.
fn tiny_movielens(dir: &std::path::Path) {
    let mut ratings = String::from("userId,movieId,rating,timestamp\n");
    for u in 0..40u32 {
        for n in 0..12u32 {
            let film = if u % 2 == 0 {
                (u + 7 * n) % 15
            } else {
                15 + (u + 4 * n) % 15
            };
            let t = 1_600_000_000 + (n as i64) * 86_400 + u as i64;
            writeln!(ratings, "{u},{film},{}.0,{t}", 3 + (u + n) % 3).unwrap();
        }
    }
    let mut movies = String::from("movieId,title,genres\n");
    for film in 0..30u32 {
        let genre = if film < 15 { "Comedy" } else { "Drama" };
        writeln!(movies, "{film},Film {film},{genre}|Feature").unwrap();
    }
    std::fs::write(dir.join("ratings.csv"), ratings).unwrap();
    std::fs::write(dir.join("movies.csv"), movies).unwrap();
}

#[test]
fn eval_scores_the_served_pipeline_beside_registry_models() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ml");
    std::fs::create_dir_all(&data).unwrap();
    tiny_movielens(&data);
    let out = dir.path().join("report");
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["eval", "--data"])
        .arg(&data)
        .args([
            "--protocol",
            "temporal",
            "--models",
            "pipeline,item-knn",
            "--k",
            "5,10",
            "--bootstrap",
            "20",
            "--out",
        ])
        .arg(&out)
        .env("CAIRN_LOG", "warn")
        .output()
        .expect("cairn runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "cairn eval failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!stderr.contains("could not be fitted"), "{stderr}");
    for model in ["pipeline", "item-knn"] {
        assert!(
            stdout.lines().any(|l| l.contains(model)),
            "no {model} row in\n{stdout}"
        );
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let models = report["stages"][0]["models"].as_array().unwrap();
    let pipeline = models
        .iter()
        .find(|m| m["model"] == "pipeline")
        .expect("the pipeline is in the report");
    assert_eq!(pipeline["spec"], "pipeline");
    let recall = pipeline["metrics"]["Recall@10"]["mean"].as_f64().unwrap();
    assert!(recall.is_finite() && recall > 0.0, "Recall@10 {recall}");
}

/// What `cairn tune --out best.toml` writes is a configuration the server and training read as it
/// is (`[train.model]`), and `cairn eval --model-file` reads it back.
#[test]
fn tune_output_is_a_configuration_serve_reads() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ml");
    std::fs::create_dir_all(&data).unwrap();
    tiny_movielens(&data);
    let best = dir.path().join("best.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["tune", "--data"])
        .arg(&data)
        .args(["--model", "item-knn", "--trials", "3", "--out"])
        .arg(&best)
        .env("CAIRN_LOG", "warn")
        .output()
        .expect("cairn runs");
    assert!(
        output.status.success(),
        "cairn tune failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config = cairn_engine::Config::load(Some(&best)).expect("serve reads the tune output");
    let tuned = cairn_eval::tune::TunedConfig::read_model(&best).unwrap();
    assert_eq!(config.train.model, Some(tuned));

    let out = dir.path().join("report");
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["eval", "--data"])
        .arg(&data)
        .args([
            "--protocol",
            "temporal",
            "--models",
            "popularity",
            "--bootstrap",
            "20",
        ])
        .arg("--model-file")
        .arg(&best)
        .arg("--out")
        .arg(&out)
        .env("CAIRN_LOG", "warn")
        .output()
        .expect("cairn runs");
    assert!(
        output.status.success(),
        "cairn eval --model-file failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
