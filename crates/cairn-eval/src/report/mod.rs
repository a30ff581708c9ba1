//! Human-facing outputs of a [`crate::runner::Report`]: a text table, JSON and a self-contained HTML
//! page with inline SVG plots.

pub mod html;
pub mod svg;
pub mod table;

use std::path::{Path, PathBuf};

use crate::error::{EvalError, Result};
use crate::runner::Report;

/// Writes `report.json` and `report.html` into `dir` (created if needed); returns their paths.
pub fn write_report(report: &Report, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
    let json_path = dir.join("report.json");
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(&json_path, json).map_err(|e| EvalError::io(&json_path, e))?;
    let html_path = dir.join("report.html");
    std::fs::write(&html_path, html::render(report)).map_err(|e| EvalError::io(&html_path, e))?;
    Ok((json_path, html_path))
}

/// Writes every kept ranked list as `DIR/lists/<stage>__<model>.csv` (`user,item,rank`, rank from 1),
/// the shape the peers harness scores with `metrics.topk_metrics`. In the file name, the characters of
/// a model's label other than letters, digits, `-`, `.` and `=` become `_`
/// (`item-knn (neighbours=120)` → `item-knn__neighbours=120_`).
pub fn write_lists(report: &Report, dir: &Path) -> Result<Vec<PathBuf>> {
    let lists_dir = dir.join("lists");
    std::fs::create_dir_all(&lists_dir).map_err(|e| EvalError::io(&lists_dir, e))?;
    let mut written = Vec::new();
    for stage in &report.stages {
        for model in stage.models.iter().filter(|m| !m.lists.is_empty()) {
            let path = lists_dir.join(format!(
                "{}__{}.csv",
                file_safe(&stage.name),
                file_safe(&model.model)
            ));
            let mut w = csv::Writer::from_path(&path).map_err(|source| EvalError::Csv {
                path: path.clone(),
                source,
            })?;
            let csv_err = |source| EvalError::Csv {
                path: path.clone(),
                source,
            };
            w.write_record(["user", "item", "rank"]).map_err(csv_err)?;
            for (user, items) in &model.lists {
                for (rank, item) in items.iter().enumerate() {
                    w.write_record([user.as_str(), item.as_str(), &(rank + 1).to_string()])
                        .map_err(csv_err)?;
                }
            }
            w.flush().map_err(|e| EvalError::io(&path, e))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// A label as part of a file name: letters, digits, `-`, `.` and `=` kept, anything else `_`.
fn file_safe(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-.=".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
