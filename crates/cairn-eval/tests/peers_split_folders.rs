//! Reads every split folder that the peers' splits.py wrote on this machine and checks the stages
//! against the counts in each folder's meta.json. Skips (printing why) where there are none.

use std::path::PathBuf;

use cairn_eval::{read_split_dir, EvalTask, Role};
use serde_json::Value;

fn splits_root() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CAIRN_PEERS_SPLITS") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/peers-splits"))
}

fn count(meta: &Value, file: &str, what: &str) -> usize {
    meta["files"][file][what]
        .as_u64()
        .unwrap_or_else(|| panic!("meta.json lacks files.{file}.{what}")) as usize
}

#[test]
fn stages_match_the_counts_in_meta_json() {
    let Some(root) = splits_root().filter(|r| r.is_dir()) else {
        println!("skipped: no peers split folders (set CAIRN_PEERS_SPLITS)");
        return;
    };
    let mut checked = 0;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("meta.json").exists())
        .collect();
    dirs.sort();
    for dir in dirs {
        let meta: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
        let split = read_split_dir(&dir, None).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let name = dir.display();
        match meta["protocol"].as_str().unwrap() {
            "strong-gen" => {
                for stage in &split.stages {
                    let task = EvalTask::build(&split, stage);
                    assert_eq!(
                        task.train.n_users(),
                        count(&meta, "train.csv", "users"),
                        "{name}"
                    );
                    assert_eq!(
                        task.n_items(),
                        meta["n_items_universe"].as_u64().unwrap() as usize,
                        "{name}"
                    );
                    assert_eq!(
                        task.train.user_items.nnz(),
                        count(&meta, "train.csv", "rows"),
                        "{name}"
                    );
                    let prefix = if stage.role == Role::Test {
                        "test"
                    } else {
                        "validation"
                    };
                    let held = count(&meta, &format!("{prefix}_tr.csv"), "users");
                    assert_eq!(
                        task.users.len(),
                        held,
                        "{name} {prefix}: every fold-in user is evaluated"
                    );
                    let targets: usize = task.users.iter().map(|u| u.targets.len()).sum();
                    assert_eq!(
                        targets,
                        count(&meta, &format!("{prefix}_te.csv"), "rows"),
                        "{name}"
                    );
                }
            }
            "weak-gen" | "temporal" | "cold-items" => {
                let test = split.stages.iter().find(|s| s.role == Role::Test).unwrap();
                let task = EvalTask::build(&split, test);
                assert_eq!(
                    task.train.n_users(),
                    count(&meta, "train.csv", "users"),
                    "{name}"
                );
                let cold = meta["n_cold_items"].as_u64().unwrap_or(0) as usize;
                assert_eq!(
                    task.n_items(),
                    count(&meta, "train.csv", "items") + cold,
                    "{name}"
                );
                assert_eq!(
                    task.catalog_size(),
                    if cold > 0 { cold } else { task.n_items() },
                    "{name}"
                );
                assert_eq!(
                    task.users.len(),
                    count(&meta, "test.csv", "users"),
                    "{name}"
                );
                let targets: usize = task.users.iter().map(|u| u.targets.len()).sum();
                assert_eq!(targets, count(&meta, "test.csv", "rows"), "{name}");
            }
            "explicit-ml100k" => {
                assert_eq!(split.stages.len(), 5, "{name}");
                for stage in &split.stages {
                    let task = EvalTask::build(&split, stage);
                    let f = &stage.name;
                    assert_eq!(
                        task.train.user_items.nnz(),
                        count(&meta, &format!("{f}/train.csv"), "rows")
                    );
                    assert_eq!(
                        task.ratings.as_ref().unwrap().test.len(),
                        count(&meta, &format!("{f}/test.csv"), "rows")
                    );
                }
            }
            other => panic!("{name}: unexpected protocol {other}"),
        }
        checked += 1;
    }
    println!("checked {checked} split folders under {}", root.display());
}
