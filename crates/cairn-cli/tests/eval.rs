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

/// `--rerank` adds re-ranking variants of the pipeline, fitted once; the report shows
/// miscalibration, exposure by genre and the trade-off chart; a wrong knob names itself.
#[test]
fn eval_sweeps_the_pipeline_re_rankers_and_reports_calibration() {
    let (dir, data) = tiny_dataset();
    let out = dir.path().join("report");
    let (stdout, stderr) = eval_ok(
        &data,
        &[
            "--models".as_ref(),
            "pipeline".as_ref(),
            "--rerank".as_ref(),
            "calibration=0.5,popularity=1,calibration=1+popularity=0.5".as_ref(),
            "--k".as_ref(),
            "5,10".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
    );
    assert!(!stderr.contains("could not be fitted"), "{stderr}");
    assert!(
        stdout.contains("calibration and popularity bias (top-10)"),
        "{stdout}"
    );
    assert!(stdout.contains("share of position-discounted top-10 exposure per item group"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let models = report["stages"][0]["models"].as_array().unwrap();
    let labels: Vec<&str> = models
        .iter()
        .map(|m| m["model"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "pipeline",
            "pipeline calibration=0.5",
            "pipeline popularity=1",
            "pipeline calibration=1+popularity=0.5"
        ]
    );
    for m in models {
        let miscal = m["metrics"]["Miscalibration@10"]["mean"].as_f64().unwrap();
        assert!(miscal.is_finite() && miscal >= 0.0, "{m}");
        assert!(m["group_exposure"]["groups"].as_array().unwrap().len() >= 2);
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Trade-off: NDCG@10, Miscalibration@10 and ARP@10"));
    assert!(html.contains("Exposure by item group (top-10)"));

    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["eval", "--data"])
        .arg(&data)
        .args(["--models", "pipeline", "--rerank", "calibration=2"])
        .env("CAIRN_LOG", "warn")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("calibration_lambda must be between 0 and 1"),
        "{stderr}"
    );
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
    // The tuned model beside the default one: two readable labels, no `item-knn#2`.
    let out = dir.path().join("report");
    let (stdout, _) = eval_ok(
        &data,
        &[
            "--models".as_ref(),
            "popularity,item-knn".as_ref(),
            "--model-file".as_ref(),
            best.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
    );
    assert!(!stdout.contains('#'), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let labels: Vec<&str> = report["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 3);
    assert_eq!(&labels[..2], ["popularity", "item-knn"]);
    // `item-knn (neighbours=…)` for a setting other than the default, `item-knn [2]` for the default.
    assert!(labels[2].starts_with("item-knn "), "{labels:?}");
}

/// The HTML of a real run carries its header (version, UTC date, command line, every model's
/// hyperparameters), HitRate and ILD columns, and the warning that RMSE on positives only is biased;
/// stderr shows each model fitting and scoring as plain lines (no ANSI codes: stderr is a pipe here).
#[test]
fn eval_report_has_the_run_header_extra_columns_and_the_positives_only_warning() {
    let (dir, data) = tiny_dataset();
    let out = dir.path().join("report");
    let (_, stderr) = eval_ok(
        &data,
        &[
            "--models".as_ref(),
            "popularity,item-knn,baseline".as_ref(),
            "--k".as_ref(),
            "5,10".as_ref(),
            "--min-rating".as_ref(),
            "4".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(json["run"]["cairn_version"], version);
    assert!(
        html.contains(&format!("<td>{version}")),
        "no version in the page"
    );
    let date = json["run"]["date"].as_str().unwrap();
    assert!(date.ends_with('Z') && date.len() == 20, "{date}");
    assert!(html.contains(date));
    assert!(
        html.contains("--min-rating 4 --out"),
        "no command line in the page"
    );
    assert!(html.contains("<td>temporal</td>"));
    assert!(
        html.contains("neighbours=") && html.contains("shrinkage="),
        "item-knn's hyperparameters"
    );
    assert!(html.contains("<th>HitRate@10</th>") && html.contains("<th>ILD@10</th>"));
    assert!(html.contains("class=\"warn\"") && html.contains("only on ratings &gt;= 4"));
    assert!(json["warnings"][0]
        .as_str()
        .unwrap()
        .contains("--min-rating"));
    assert!(stderr.contains("warning: RMSE and MAE were computed only on ratings >= 4"));
    assert!(
        stderr.contains("test (1/1) model 2/3: fitting item-knn ...")
            && stderr.contains("test (1/1) model 2/3: scoring item-knn: done in"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "ANSI codes in a piped stderr");
}
