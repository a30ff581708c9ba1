//! The experiments' files: atomic rewrites for definitions, fsynced appends for the logs.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::counts::LogRecord;
use super::defs::{Experiment, HistoryRecord};
use crate::EngineError;

const DEFS: &str = "defs";
const HISTORY: &str = "history.jsonl";
const DEFAULTS: &str = "defaults.json";
/// The attribution log.
pub(crate) const LOG: &str = "attribution.jsonl";

fn io_err(path: &Path, e: impl std::fmt::Display) -> EngineError {
    EngineError::ExperimentStorage(format!("{}: {e}", path.display()))
}

/// Writes `bytes` to `path` through a temp file, fsync and rename, then fsyncs the folder.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let write = || -> std::io::Result<()> {
        fs::create_dir_all(dir)?;
        let tmp = path.with_extension("tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| io_err(path, e))
}

/// Appends whole lines and fsyncs them. A line cut by a crash mid-append is cut off first, so the
/// file stays whole lines (the readers skip a cut last line too).
fn append_lines(path: &Path, lines: &str) -> Result<(), EngineError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let write = || -> std::io::Result<()> {
        let created = !path.exists();
        fs::create_dir_all(dir)?;
        let mut f = OpenOptions::new().create(true).append(true).open(path)?;
        let len = f.metadata()?.len();
        if len > 0 {
            use std::io::{Read, Seek, SeekFrom};
            let mut last = [0u8; 1];
            let mut r = File::open(path)?;
            r.seek(SeekFrom::Start(len - 1))?;
            r.read_exact(&mut last)?;
            if last[0] != b'\n' {
                let bytes = fs::read(path)?;
                let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
                f.set_len(whole as u64)?;
            }
        }
        f.write_all(lines.as_bytes())?;
        f.sync_data()?;
        if created {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| io_err(path, e))
}

/// The whole lines of a JSON-lines file, parsed; a cut last line (a crash mid-append) is skipped,
/// any other bad line is an error naming its number.
fn read_lines<T: serde::de::DeserializeOwned>(
    path: &Path,
    each: &mut dyn FnMut(T),
) -> Result<(), EngineError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(path, e)),
    };
    let whole = text.rfind('\n').map_or("", |p| &text[..p]);
    for (n, line) in whole.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value =
            serde_json::from_str(line).map_err(|e| io_err(path, format!("line {}: {e}", n + 1)))?;
        each(value);
    }
    Ok(())
}

pub(crate) fn read_defs(dir: &Path) -> Result<Vec<Experiment>, EngineError> {
    let defs = dir.join(DEFS);
    let entries = match fs::read_dir(&defs) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&defs, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io_err(&defs, e))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let bytes = fs::read(&path).map_err(|e| io_err(&path, e))?;
        out.push(serde_json::from_slice(&bytes).map_err(|e| io_err(&path, e))?);
    }
    Ok(out)
}

pub(crate) fn write_def(dir: &Path, e: &Experiment) -> Result<(), EngineError> {
    let path = dir.join(DEFS).join(format!("{}.json", e.id));
    let bytes = serde_json::to_vec_pretty(e).map_err(|err| io_err(&path, err))?;
    write_atomic(&path, &bytes)
}

pub(crate) fn read_defaults(dir: &Path) -> Result<BTreeMap<String, String>, EngineError> {
    let path = dir.join(DEFAULTS);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| io_err(&path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(io_err(&path, e)),
    }
}

pub(crate) fn write_defaults(
    dir: &Path,
    defaults: &BTreeMap<String, String>,
) -> Result<(), EngineError> {
    let path = dir.join(DEFAULTS);
    let bytes = serde_json::to_vec_pretty(defaults).map_err(|e| io_err(&path, e))?;
    write_atomic(&path, &bytes)
}

pub(crate) fn append_history(dir: &Path, record: &HistoryRecord) -> Result<(), EngineError> {
    let path = dir.join(HISTORY);
    let mut line = serde_json::to_string(record).map_err(|e| io_err(&path, e))?;
    line.push('\n');
    append_lines(&path, &line)
}

pub(crate) fn read_history(dir: &Path) -> Result<Vec<HistoryRecord>, EngineError> {
    let mut out = Vec::new();
    read_lines(&dir.join(HISTORY), &mut |r| out.push(r))?;
    Ok(out)
}

/// Appends attribution records, fsynced, in one write.
pub(crate) fn append_log(dir: &Path, records: &[LogRecord]) -> Result<(), EngineError> {
    if records.is_empty() {
        return Ok(());
    }
    let path = dir.join(LOG);
    let mut lines = String::new();
    for r in records {
        lines.push_str(&serde_json::to_string(r).map_err(|e| io_err(&path, e))?);
        lines.push('\n');
    }
    append_lines(&path, &lines)
}

pub(crate) fn replay(dir: &Path, each: &mut dyn FnMut(LogRecord)) -> Result<(), EngineError> {
    read_lines(&dir.join(LOG), each)
}
