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
