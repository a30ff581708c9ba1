//! Generic files: CSV with a header row, or JSONL with one object per line in the shape of the HTTP
//! API's `Item`, `User` or `Event`.
//!
//! CSV layouts (UTF-8, comma separated, quoted as usual; an empty cell means "not given"):
//!
//! - events: `user_id,item_id,type` required; `value`, `timestamp` (unix seconds or RFC 3339),
//!   `event_id`, `recommendation_id` optional; any other column goes into the event's `context`.
//! - items: `id` required; `title`, `description`, `categories` and `tags` (`|` separated),
//!   `hidden` (true/false), `available_from`, `available_until`, `embedding` (`|` separated numbers)
//!   optional; any other column becomes a property.
//! - users: `id` required; any other column becomes a property.
//!
//! Extra columns are typed cell by cell: numbers (without a leading zero), `true`/`false`, else text.
//!
//! Quoting is the usual one (see [`crate::csv_records`]). A quoted cell may hold line breaks only in a
//! free-text column (`title`, `description`, and the extra columns) and only while its row spans at
//! most [`CsvOptions::max_record_lines`] lines; otherwise the line its quote opens on is one bad row
//! and the lines after it are read as rows of their own.

mod csv_rows;
mod jsonl;

use std::path::Path;

use cairn_core::{Event, Item, User};

use crate::csv_records::CsvOptions;
use crate::error::ImportError;
use crate::source::ByteCounter;
use crate::Rows;

pub use csv_rows::{EVENT_COLUMNS, ITEM_COLUMNS, TEXT_COLUMNS, USER_COLUMNS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
    /// The Parquet files `cairn export --format parquet` writes (see [`crate::parquet_files`]).
    Parquet,
}

impl Format {
    /// The format a file name implies: `.csv`, `.jsonl`/`.ndjson`/`.json`, or `.parquet`.
    pub fn from_path(path: &Path) -> Result<Format, ImportError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") => Ok(Format::Csv),
            Some("jsonl" | "ndjson" | "json") => Ok(Format::Jsonl),
            Some("parquet" | "pq") => Ok(Format::Parquet),
            _ => Err(ImportError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

pub fn read_items(
    path: &Path,
    format: Format,
    counter: &ByteCounter,
    options: CsvOptions,
) -> Result<Rows<Item>, ImportError> {
    match format {
        Format::Csv => csv_rows::items(path, counter, options),
        Format::Jsonl => jsonl::rows::<Item>(path, "item", counter),
        Format::Parquet => crate::parquet_files::read::<Item>(path, counter),
    }
}

pub fn read_users(
    path: &Path,
    format: Format,
    counter: &ByteCounter,
    options: CsvOptions,
) -> Result<Rows<User>, ImportError> {
    match format {
        Format::Csv => csv_rows::users(path, counter, options),
        Format::Jsonl => jsonl::rows::<User>(path, "user", counter),
        Format::Parquet => crate::parquet_files::read::<User>(path, counter),
    }
}

pub fn read_events(
    path: &Path,
    format: Format,
    counter: &ByteCounter,
    options: CsvOptions,
) -> Result<Rows<Event>, ImportError> {
    match format {
        Format::Csv => csv_rows::events(path, counter, options),
        Format::Jsonl => jsonl::rows::<Event>(path, "event", counter),
        Format::Parquet => crate::parquet_files::read::<Event>(path, counter),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_come_from_the_extension() {
        assert_eq!(
            Format::from_path(Path::new("a/b.CSV")).unwrap(),
            Format::Csv
        );
        assert_eq!(
            Format::from_path(Path::new("e.ndjson")).unwrap(),
            Format::Jsonl
        );
        assert_eq!(
            Format::from_path(Path::new("e.jsonl")).unwrap(),
            Format::Jsonl
        );
        let err = Format::from_path(Path::new("e.txt")).unwrap_err();
        assert!(err.to_string().contains("--format"), "{err}");
        assert!(Format::from_path(Path::new("noext")).is_err());
        assert_eq!(
            Format::from_path(Path::new("items.parquet")).unwrap(),
            Format::Parquet
        );
    }
}
