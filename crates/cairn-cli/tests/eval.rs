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

/// A temporary folder holding [`tiny_movielens`] in `ml/`.
fn tiny_dataset() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ml");
    std::fs::create_dir_all(&data).unwrap();
    tiny_movielens(&data);
    (dir, data)
}

/// Runs `cairn` with `args` (quiet logs) and insists that it succeeded; returns stdout and stderr.
fn cairn_ok(args: &[&std::ffi::OsStr]) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .env("CAIRN_LOG", "warn")
        .output()
        .expect("cairn runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "cairn {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

/// `cairn eval --data DIR --protocol temporal --bootstrap 20` and `more` arguments.
fn eval_ok(data: &std::path::Path, more: &[&std::ffi::OsStr]) -> (String, String) {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "eval".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--protocol".as_ref(),
        "temporal".as_ref(),
        "--bootstrap".as_ref(),
        "20".as_ref(),
    ];
    args.extend_from_slice(more);
    cairn_ok(&args)
}

#[test]
fn eval_scores_the_served_pipeline_beside_registry_models() {
    let (dir, data) = tiny_dataset();
    let out = dir.path().join("report");
    let (stdout, stderr) = eval_ok(
        &data,
        &[
            "--models".as_ref(),
            "pipeline,item-knn".as_ref(),
            "--k".as_ref(),
            "5,10".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
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
    let (dir, data) = tiny_dataset();
    let best = dir.path().join("best.toml");
    cairn_ok(&[
        "tune".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--model".as_ref(),
        "item-knn".as_ref(),
        "--trials".as_ref(),
        "3".as_ref(),
        "--out".as_ref(),
        best.as_os_str(),
    ]);
    let config = cairn_engine::Config::load(Some(&best)).expect("serve reads the tune output");
    let tuned = cairn_eval::tune::TunedConfig::read_model(&best).unwrap();
    assert_eq!(config.train.model, Some(tuned));
    eval_ok(
        &data,
        &[
            "--models".as_ref(),
            "popularity".as_ref(),
            "--model-file".as_ref(),
            best.as_os_str(),
        ],
    );
}
