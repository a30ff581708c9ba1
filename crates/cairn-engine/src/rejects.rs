//! The log of rejected input: every row `cairn import` skipped or refused, and every batch the
//! bulk HTTP routes (`POST /v1/events`, `/v1/items`, `/v1/users`) answered with a 4xx, with where
//! it came from (file and line, or route and index), the error's code and message, and when. The
//! dashboard's data-quality page reads it; nothing else does.
//!
//! Why a file in the data directory and not a table of the store: the store is the catalog and
//! the event log, and a rejected row is neither; a file needs no new query in each backend and
//! works the same over the embedded store and PostgreSQL. The price: with PostgreSQL, each
//! replica (and each `cairn import` run, in the data directory it is given) keeps its own log,
//! and a replica's page shows only what was rejected in its own data directory.
//!
//! Bounded: two segments, `import-errors.jsonl` (written) and `import-errors.1.jsonl` (the one
//! before), each at most half of [`MAX_ENTRIES`] lines and half of [`MAX_BYTES`] bytes; when the
//! written one would pass either, it replaces the older one and a new one starts, so the oldest
//! entries go first and the two together never pass the bounds. A message is cut at
//! [`MAX_MESSAGE`] characters.
//!
//! Safe with several writers (the server and a `cairn import` in the same data directory): every
//! append and rotation happens under an exclusive lock of `import-errors.lock` (`flock`), the
//! lines of one append go in one `write` to a file opened for appending, and a line cut by a crash
//! is cut off before the next append. Readers take no lock and skip a line that does not parse
//! (one being written).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Most entries kept (both segments together).
pub const MAX_ENTRIES: usize = 10_000;
/// Most bytes kept (both segments together).
pub const MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Longest message kept, in characters.
pub const MAX_MESSAGE: usize = 1000;

const FILE: &str = "import-errors.jsonl";
const OLDER: &str = "import-errors.1.jsonl";
const LOCK: &str = "import-errors.lock";

/// One rejected row or batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    /// Unix seconds.
    pub at: i64,
    /// `import` (a row of a file `cairn import` read) or `http` (a batch a route refused).
    pub source: String,
    /// The file's path, or the route (`POST /v1/events`).
    pub origin: String,
    /// The 1-based line of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The 0-based index of the record in the batch the error names (`events[3]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// A stable code: the API's error code for a route, `bad_row` or `invalid_argument` for a file.
    pub code: String,
    pub message: String,
}

impl Rejection {
    /// A row of a file.
    pub fn row(file: &Path, line: u64, code: &str, message: &str) -> Rejection {
        Rejection {
            at: cairn_core::now_unix(),
            source: "import".into(),
            origin: file.display().to_string(),
            line: Some(line),
            index: None,
            code: code.into(),
            message: message.into(),
        }
    }

    /// A batch a route refused; the index is read from the field the error names (`items[4].id`).
    pub fn request(route: &str, field: Option<&str>, code: &str, message: &str) -> Rejection {
        Rejection {
            at: cairn_core::now_unix(),
            source: "http".into(),
            origin: route.into(),
            line: None,
            index: field.and_then(index_of),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// The index in `events[3].item_id`.
fn index_of(field: &str) -> Option<u64> {
    let open = field.find('[')?;
    let close = open + field[open..].find(']')?;
    field[open + 1..close].parse().ok()
}

/// A page of the log, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectionPage {
    /// Entries kept in all.
    pub total: usize,
    pub entries: Vec<Rejection>,
}

/// The log in one folder (see the module's docs).
pub struct RejectLog {
    dir: PathBuf,
    max_entries: usize,
    max_bytes: u64,
    /// (length, lines) of the written segment as this process last left it, so an append need not
    /// count its lines again unless another process wrote in between.
    known: Mutex<Option<(u64, usize)>>,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{}: {e}", path.display()))
}

impl RejectLog {
    pub fn new(dir: impl Into<PathBuf>) -> RejectLog {
        Self::with_bounds(dir, MAX_ENTRIES, MAX_BYTES)
    }

    /// A log with other bounds (tests).
    pub fn with_bounds(dir: impl Into<PathBuf>, max_entries: usize, max_bytes: u64) -> RejectLog {
        RejectLog {
            dir: dir.into(),
            max_entries: max_entries.max(2),
            max_bytes: max_bytes.max(2),
            known: Mutex::new(None),
        }
    }

    /// Appends `entries` (oldest first), dropping the oldest kept ones past the bounds.
    pub fn append(&self, entries: &[Rejection]) -> std::io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let seg_entries = self.max_entries / 2;
        let seg_bytes = self.max_bytes / 2;
        let mut lines: Vec<String> = Vec::with_capacity(entries.len());
        for e in entries {
            let mut e = e.clone();
            if e.message.chars().count() > MAX_MESSAGE {
                e.message = e.message.chars().take(MAX_MESSAGE).collect::<String>() + "…";
            }
            let mut line = serde_json::to_string(&e).map_err(|e| io_err(&self.dir, e))?;
            line.push('\n');
            if line.len() as u64 <= seg_bytes {
                lines.push(line);
            }
        }
        // A batch larger than a segment: only its newest entries can be kept.
        let mut start = lines.len().saturating_sub(seg_entries);
        let mut bytes: u64 = lines[start..].iter().map(|l| l.len() as u64).sum();
        while bytes > seg_bytes {
            bytes -= lines[start].len() as u64;
            start += 1;
        }
        let lines = &lines[start..];
        if lines.is_empty() {
            return Ok(());
        }
        fs::create_dir_all(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        let lock_path = self.dir.join(LOCK);
        let lock = File::create(&lock_path).map_err(|e| io_err(&lock_path, e))?;
        lock.lock().map_err(|e| io_err(&lock_path, e))?;
        let path = self.dir.join(FILE);
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let write = || -> std::io::Result<(u64, usize)> {
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(&path)?;
            let mut len = f.metadata()?.len();
            let mut count = match *known {
                Some((l, c)) if l == len => c,
                _ => {
                    // Written by another process since (or never seen): count its whole lines, and
                    // cut off a last line a crash left unfinished.
                    let mut bytes = Vec::new();
                    f.seek(SeekFrom::Start(0))?;
                    f.read_to_end(&mut bytes)?;
                    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
                        f.set_len(whole as u64)?;
                        bytes.truncate(whole);
                        len = whole as u64;
                    }
                    bytes.iter().filter(|&&b| b == b'\n').count()
                }
            };
            if count + lines.len() > seg_entries || len + bytes > seg_bytes {
                fs::rename(&path, self.dir.join(OLDER))?;
                f = OpenOptions::new().create(true).append(true).open(&path)?;
                len = 0;
                count = 0;
            }
            f.write_all(lines.concat().as_bytes())?;
            f.sync_data()?;
            Ok((len + bytes, count + lines.len()))
        };
        match write() {
            Ok(now) => *known = Some(now),
            Err(e) => {
                *known = None;
                return Err(io_err(&path, e));
            }
        }
        drop(known);
        drop(lock);
        Ok(())
    }

    /// Every entry kept, oldest first (lines that do not parse are skipped).
    pub fn read_all(&self) -> std::io::Result<Vec<Rejection>> {
        let mut out = Vec::new();
        for name in [OLDER, FILE] {
            let path = self.dir.join(name);
            let text = match fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&path, e)),
            };
            out.extend(
                text.lines()
                    .filter_map(|l| serde_json::from_str::<Rejection>(l).ok()),
            );
        }
        Ok(out)
    }

    /// `limit` entries, newest first, after skipping the `offset` newest.
    pub fn page(&self, offset: usize, limit: usize) -> std::io::Result<RejectionPage> {
        let all = self.read_all()?;
        let entries = all.iter().rev().skip(offset).take(limit).cloned().collect();
        Ok(RejectionPage {
            total: all.len(),
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u64) -> Rejection {
        Rejection::row(
            Path::new("events.csv"),
            i,
            "bad_row",
            &format!("row {i} is bad"),
        )
    }

    #[test]
    fn the_log_keeps_the_newest_entries_within_its_entry_bound() {
        let dir = tempfile::tempdir().unwrap();
        let log = RejectLog::with_bounds(dir.path(), 10, 1 << 20);
        for i in 1..=23 {
            log.append(&[entry(i)]).unwrap();
        }
        let all = log.read_all().unwrap();
        assert!(all.len() <= 10 && all.len() >= 5, "{}", all.len());
        let lines: Vec<u64> = all.iter().map(|e| e.line.unwrap()).collect();
        assert_eq!(*lines.last().unwrap(), 23);
        assert!(lines.windows(2).all(|w| w[1] == w[0] + 1), "{lines:?}");
        // A batch larger than the log keeps its newest entries.
        let batch: Vec<Rejection> = (100..130).map(entry).collect();
        log.append(&batch).unwrap();
        let page = log.page(0, 3).unwrap();
        assert!(page.total <= 10);
        let newest: Vec<u64> = page.entries.iter().map(|e| e.line.unwrap()).collect();
        assert_eq!(newest, [129, 128, 127]);
    }

    #[test]
    fn the_log_stays_within_its_byte_bound_and_cuts_long_messages() {
        let dir = tempfile::tempdir().unwrap();
        let log = RejectLog::with_bounds(dir.path(), 1_000_000, 4096);
        for i in 0..200 {
            log.append(&[entry(i)]).unwrap();
        }
        let size = |name: &str| fs::metadata(dir.path().join(name)).map_or(0, |m| m.len());
        assert!(size(FILE) + size(OLDER) <= 4096);
        assert_eq!(log.read_all().unwrap().last().unwrap().line, Some(199));
        let long = Rejection::row(Path::new("f"), 1, "bad_row", &"x".repeat(5000));
        let big = RejectLog::new(dir.path().join("big"));
        big.append(&[long]).unwrap();
        let kept = big.read_all().unwrap();
        assert_eq!(kept[0].message.chars().count(), MAX_MESSAGE + 1);
    }

    #[test]
    fn a_cut_line_is_skipped_then_cut_off_and_concurrent_writers_leave_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = RejectLog::with_bounds(dir.path(), 100_000, 1 << 24);
        log.append(&[entry(1)]).unwrap();
        // A crash in the middle of a line (another process's append).
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE))
            .unwrap();
        f.write_all(b"{\"at\":1,\"sou").unwrap();
        assert_eq!(log.read_all().unwrap().len(), 1);
        // Two "processes" (two logs over one folder) append at once.
        let other = RejectLog::with_bounds(dir.path(), 100_000, 1 << 24);
        std::thread::scope(|s| {
            s.spawn(|| (0..200).for_each(|i| log.append(&[entry(1000 + i)]).unwrap()));
            s.spawn(|| (0..200).for_each(|i| other.append(&[entry(5000 + i)]).unwrap()));
        });
        let text = fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(text
            .lines()
            .all(|l| serde_json::from_str::<Rejection>(l).is_ok()));
        assert_eq!(log.read_all().unwrap().len(), 401);
    }

    #[test]
    fn a_request_error_names_its_index() {
        let r = Rejection::request(
            "POST /v1/events",
            Some("events[3].item_id"),
            "invalid_argument",
            "m",
        );
        assert_eq!(r.index, Some(3));
        assert_eq!(index_of("items"), None);
        assert_eq!(index_of("a[x]"), None);
    }
}
