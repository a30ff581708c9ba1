//! The crate graph follows ARCHITECTURE.md: every workspace crate has a row in its table, and each
//! crate depends (normally or for its tests) only on the Cairn crates its row's "may depend on"
//! column allows. The table is the rule a contributor reads; this test keeps it true.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/cairn-cli sits two folders below the workspace root")
        .to_path_buf()
}

/// Each workspace crate's Cairn dependencies (normal, dev and build), from `cargo metadata`.
fn actual_graph(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let mut graph = BTreeMap::new();
    for package in meta["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("name").to_string();
        let deps = package["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter_map(|d| d["name"].as_str())
            .filter(|d| d.starts_with("cairn-"))
            .map(str::to_string)
            .collect();
        graph.insert(name, deps);
    }
    graph
}

/// The crates table of ARCHITECTURE.md: crate → the Cairn crates it may depend on, in table order.
fn allowed_graph(text: &str) -> Vec<(String, BTreeSet<String>)> {
    let mut rows: Vec<(String, BTreeSet<String>)> = Vec::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        let Some(name) = cells.first().map(|c| c.trim()) else {
            continue;
        };
        let Some(name) = name
            .strip_prefix("`cairn-")
            .and_then(|n| n.strip_suffix('`'))
        else {
            continue;
        };
        let may = cells.last().expect("a row has cells").trim();
        let allowed: BTreeSet<String> = match may {
            "nothing of ours" => BTreeSet::new(),
            "all of the above" => rows.iter().map(|(n, _)| n.clone()).collect(),
            list => list
                .split(',')
                .map(|short| format!("cairn-{}", short.trim()))
                .collect(),
        };
        rows.push((format!("cairn-{name}"), allowed));
    }
    rows
}

#[test]
fn the_crate_graph_follows_the_architecture_table() {
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let table = allowed_graph(&text);
    let actual = actual_graph(&root);

    let in_table: BTreeSet<&String> = table.iter().map(|(n, _)| n).collect();
    let in_workspace: BTreeSet<&String> = actual.keys().collect();
    assert_eq!(
        in_table, in_workspace,
        "ARCHITECTURE.md's crates table must have one row per workspace crate"
    );
    for (name, allowed) in &table {
        for target in allowed {
            assert!(
                actual.contains_key(target),
                "{name}: may depend on `{target}`, which is not a workspace crate"
            );
        }
    }
    let mut wrong = Vec::new();
    for (name, allowed) in &table {
        for dep in &actual[name] {
            if !allowed.contains(dep) {
                wrong.push(format!("{name} depends on {dep}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies that ARCHITECTURE.md's table does not allow (fix the code, or the table \
         if the design changed): {wrong:?}"
    );
}

#[test]
fn the_table_parser_reads_every_form_of_the_last_column() {
    let text = "| crate | job | may depend on |\n|---|---|---|\n\
                | `cairn-a` | A. | nothing of ours |\n\
                | `cairn-b` | B, with a comma. | a |\n\
                | `cairn-c` | C. | all of the above |\n";
    let rows = allowed_graph(text);
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        rows,
        vec![
            ("cairn-a".to_string(), set(&[])),
            ("cairn-b".to_string(), set(&["cairn-a"])),
            ("cairn-c".to_string(), set(&["cairn-a", "cairn-b"])),
        ]
    );
}
