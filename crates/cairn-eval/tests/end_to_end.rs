//! The whole path on generated data: a split folder in the peers' format → runner → report files; and,
//! where ../shared/data is present, a Rust split of ml-latest-small.

use std::fmt::Write as _;
use std::path::Path;

use cairn_eval::report::write_report;
use cairn_eval::runner::StageSelection;
use cairn_eval::{read_split_dir, ModelChoice, RankingOptions, RunConfig};
use cairn_models::Silent;

/// Two taste groups: even users like items 0..15, odd users items 15..30, with a few items of the
/// other group and a popular item 29 for everyone, so that item-kNN must beat popularity.
fn write_strong_gen_folder(dir: &Path) {
    let mut train = String::from("user,item\n");
    let mut items = std::collections::BTreeSet::new();
    let liked = |u: u32| -> Vec<u32> {
        let base = if u.is_multiple_of(2) { 0 } else { 15 };
        let mut v: Vec<u32> = (0..8).map(|j| base + (u * 3 + j * 5) % 15).collect();
        v.push(29);
        v.sort_unstable();
        v.dedup();
        v
    };
    for u in 0..80 {
        for i in liked(u) {
            writeln!(train, "{u},{i}").unwrap();
            items.insert(i);
        }
    }
    std::fs::write(dir.join("train.csv"), train).unwrap();
    let mut items_csv = String::from("item\n");
    for i in &items {
        writeln!(items_csv, "{i}").unwrap();
    }
    std::fs::write(dir.join("items.csv"), items_csv).unwrap();
    let (mut tr, mut te) = (String::from("user,item\n"), String::from("user,item\n"));
    for u in 100..120 {
        let l = liked(u);
        for (n, i) in l.iter().enumerate() {
            let out = if n.is_multiple_of(3) {
                &mut te
            } else {
                &mut tr
            };
            writeln!(out, "{u},{i}").unwrap();
        }
    }
    std::fs::write(dir.join("test_tr.csv"), tr).unwrap();
    std::fs::write(dir.join("test_te.csv"), te).unwrap();
    std::fs::write(dir.join("meta.json"), r#"{"protocol": "strong-gen"}"#).unwrap();
}

#[test]
fn strong_gen_folder_to_report() {
    let dir = tempfile::tempdir().unwrap();
    write_strong_gen_folder(dir.path());
    let split = read_split_dir(dir.path(), None).unwrap();
    assert_eq!(split.protocol, "strong-gen");
    let models = vec![
        ModelChoice::by_name("popularity").unwrap(),
        ModelChoice::by_name("item-knn").unwrap(),
    ];
    let config = RunConfig {
        ranking: RankingOptions {
            ks: vec![5, 10],
            auc: true,
            ..RankingOptions::default()
        },
        ..RunConfig::default()
    };
    let report = cairn_eval::run(&split, "generated", &models, &config, &Silent).unwrap();
    assert_eq!(
        report.stages.len(),
        1,
        "no validation files, so only the test stage"
    );
    let stage = &report.stages[0];
    assert_eq!((stage.n_eval_users, stage.n_fit_users), (20, 80));
    let pop = &stage.models[0];
    let knn = &stage.models[1];
    for m in [pop, knn] {
        for (name, s) in &m.metrics {
            assert!(
                s.n == 20 || name.starts_with("ILD"),
                "{name}: {} users",
                s.n
            );
            assert!(s.ci_low <= s.mean && s.mean <= s.ci_high, "{name}: {s:?}");
        }
    }
    let ndcg = |m: &cairn_eval::runner::ModelReport| m.metrics["NDCG@10"].mean;
    assert!(
        ndcg(knn) > ndcg(pop) + 0.1,
        "item-knn {} vs popularity {}",
        ndcg(knn),
        ndcg(pop)
    );
    let cmp = stage
        .comparisons
        .iter()
        .find(|c| c.metric == "NDCG@10")
        .expect("a paired comparison");
    assert_eq!(
        (cmp.model.as_str(), cmp.baseline.as_str()),
        ("item-knn", "popularity")
    );
    assert!(cmp.result.ci_low > 0.0 && cmp.result.p_value < 0.05);

    let out = tempfile::tempdir().unwrap();
    let (json, html) = write_report(&report, out.path()).unwrap();
    let back: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(back["stages"][0]["models"][1]["model"], "item-knn");
    let page = std::fs::read_to_string(html).unwrap();
    assert!(
        page.contains("<svg") && page.contains("Model comparison") && !page.contains("<script")
    );
}

#[test]
fn missing_split_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("meta.json"), r#"{"protocol": "weak-gen"}"#).unwrap();
    let err = read_split_dir(dir.path(), None).unwrap_err().to_string();
    assert!(err.contains("train.csv"), "{err}");
    std::fs::write(dir.path().join("meta.json"), r#"{"protocol": "nope"}"#).unwrap();
    assert!(read_split_dir(dir.path(), None).is_err());
}

#[test]
fn ml_latest_small_holdout_item_knn_beats_popularity() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/ml-latest-small");
    if !data.join("ratings.csv").exists() {
        println!("skipped: {} not found", data.display());
        return;
    }
    let split = cairn_eval::splitters::split_dataset(&data, "holdout", Some(4.0), 7).unwrap();
    let models = vec![
        ModelChoice::by_name("popularity").unwrap(),
        ModelChoice::by_name("item-knn").unwrap(),
    ];
    let config = RunConfig {
        ranking: RankingOptions {
            ks: vec![20],
            auc: false,
            ..RankingOptions::default()
        },
        stages: StageSelection::Test,
        ..RunConfig::default()
    };
    let report = cairn_eval::run(&split, "ml-latest-small", &models, &config, &Silent).unwrap();
    let stage = &report.stages[0];
    assert!(stage.n_eval_users > 500, "{} users", stage.n_eval_users);
    let r = |i: usize| stage.models[i].metrics["RecallLiang@20"].mean;
    assert!(
        r(1) > r(0) * 1.1,
        "item-knn {} vs popularity {}",
        r(1),
        r(0)
    );
    assert!(
        stage.models[0].metrics.contains_key("ILD@20"),
        "genres give ILD"
    );
}

#[test]
fn random_search_is_seeded_and_keeps_the_best_trial() {
    use cairn_eval::tune::{default_space, random_search};
    let dir = tempfile::tempdir().unwrap();
    write_strong_gen_folder(dir.path());
    let split = read_split_dir(dir.path(), None).unwrap();
    let task = cairn_eval::EvalTask::build(&split, &split.stages[0]);
    let base = cairn_models::ModelSpec::default_for("item-knn").unwrap();
    let space = default_space(&base).unwrap();
    let mut seen = 0;
    let a = random_search(&base, &space, &task, "NDCG@10", 6, 9, &mut |_, _| seen += 1).unwrap();
    let b = random_search(&base, &space, &task, "NDCG@10", 6, 9, &mut |_, _| {}).unwrap();
    assert_eq!(seen, 6);
    assert_eq!(a.trials.len(), 6);
    assert_eq!(a.trials[0].spec, base, "trial 0 is the default");
    let values =
        |r: &cairn_eval::tune::TuneResult| r.trials.iter().map(|t| t.value).collect::<Vec<_>>();
    assert_eq!(values(&a), values(&b));
    assert_eq!(
        a.trials.iter().map(|t| &t.spec).collect::<Vec<_>>(),
        b.trials.iter().map(|t| &t.spec).collect::<Vec<_>>()
    );
    let best = a.best_trial().value;
    assert!(a.trials.iter().all(|t| t.value <= best));
    assert!(random_search(&base, &space, &task, "Bogus@10", 2, 9, &mut |_, _| {}).is_err());
}
