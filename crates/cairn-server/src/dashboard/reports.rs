//! Evaluation: the HTML reports of `cairn eval` runs kept in the data directory, listed and opened.
//!
//! A report is a folder `DATA_DIR/reports/<name>/` holding the `report.html` (and `report.json`)
//! that `cairn eval --out DATA_DIR/reports/<name>` writes. Names are letters, digits, `.`, `_` and
//! `-`; nothing outside that folder can be named.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::models::{pager, urlencode};
use super::{layout, when, Dash, PageError, Sess, P, Q};

/// The folder under the data directory that holds the reports.
pub const REPORTS_DIR: &str = "reports";
/// Folder entries read at most when listing.
const MAX_ENTRIES: usize = 10_000;
const PER_PAGE: usize = 25;

/// Whether `name` may name a report folder.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

struct Report {
    name: String,
    modified: i64,
    bytes: u64,
}

/// The reports under `dir`, newest first (at most [`MAX_ENTRIES`] folder entries read).
fn scan(dir: &Path) -> std::io::Result<Vec<Report>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries.take(MAX_ENTRIES) {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !valid_name(&name) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(entry.path().join("report.html")) else {
            continue;
        };
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        found.push(Report {
            name,
            modified,
            bytes: meta.len(),
        });
    }
    found.sort_by(|a, b| b.modified.cmp(&a.modified).then(a.name.cmp(&b.name)));
    Ok(found)
}

fn reports_dir(dash: &Dash) -> PathBuf {
    dash.app.engine.config().data_dir.join(REPORTS_DIR)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    page: Option<usize>,
}

pub(super) async fn list(
    State(dash): State<Dash>,
    axum::Extension(session): Sess,
    Q(q): Q<ListQuery>,
) -> Result<Html<String>, PageError> {
    let dir = reports_dir(&dash);
    let shown_dir = dir.display().to_string();
    let reports = tokio::task::spawn_blocking(move || scan(&dir))
        .await
        .map_err(|e| PageError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| {
            PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read {shown_dir}: {e}"),
            )
        })?;
    let pages = reports.len().div_ceil(PER_PAGE).max(1);
    let page = q.page.unwrap_or(1);
    if page == 0 || page > pages {
        return Err(PageError::bad(format!(
            "page {page} is out of range; there are {pages} pages"
        )));
    }
    let body = html! {
        p { "Reports of " code { "cairn eval" } " runs written with "
            code { "--out " (shown_dir) "/NAME" } "." }
        @if reports.is_empty() {
            p.muted { "No report yet. For example: " code { "cairn eval --split-dir SPLIT --models pipeline --out " (shown_dir) "/first" } }
        } @else {
            div.scroll { table {
                thead { tr { th { "Report" } th { "Written" } th { "Size" } } }
                tbody { @for r in reports.iter().skip((page - 1) * PER_PAGE).take(PER_PAGE) {
                    tr {
                        td { a href=(format!("/reports/{}", urlencode(&r.name))) { (r.name) } }
                        td { (when(r.modified)) }
                        td { (r.bytes / 1024) " KiB" }
                    }
                } }
            } }
            (pager("/reports?", page, pages))
        }
    };
    Ok(layout("Evaluation reports", "/reports", &session, body))
}

pub(super) async fn open(
    State(dash): State<Dash>,
    P(name): P<String>,
) -> Result<Response, PageError> {
    if !valid_name(&name) {
        return Err(PageError::bad(format!(
            "`{name}` is not a report name (letters, digits, `.`, `_`, `-`)"
        )));
    }
    let path = reports_dir(&dash).join(&name).join("report.html");
    let html = tokio::task::spawn_blocking(move || std::fs::read(&path))
        .await
        .map_err(|e| PageError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|_| PageError::new(StatusCode::NOT_FOUND, format!("no report `{name}`")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The report is a file on disk, not ours: no script runs, its inline style may.
            (
                header::CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:",
            ),
        ],
        html,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names_cannot_leave_the_folder() {
        assert!(valid_name("ml-100k_2026.12.07"));
        for bad in ["", "..", ".hidden", "a/b", "a\\b", "x y", "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn scan_lists_folders_with_a_report_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        assert!(scan(&dir.path().join("missing")).unwrap().is_empty());
        for name in ["a", "b"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
            std::fs::write(dir.path().join(name).join("report.html"), "<p>x</p>").unwrap();
        }
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let names: Vec<String> = scan(dir.path())
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&"a".to_string()) && names.contains(&"b".to_string()));
    }
}
