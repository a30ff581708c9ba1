//! Bulk import for Cairn: streaming readers for generic CSV, JSONL and Parquet files (and the
//! Parquet writer of `cairn export`) and the MovieLens datasets, and the demo shop generator. Readers only parse and check records; they know nothing of storage.
//! Each yields `(line, Result<record, RowError>)` so that the caller decides whether a bad row is
//! skipped or rejects the whole import.

mod cells;
pub mod csv_records;
pub mod demo;
pub mod error;
pub mod factors;
pub mod generic;
pub mod movielens;
pub mod parquet_files;
pub mod source;

pub use csv_records::{CsvOptions, DEFAULT_MAX_RECORD_LINES};
pub use error::{ImportError, RowError};
pub use generic::{read_events, read_items, read_users, Format};
pub use movielens::{MovieLens, MovieLensKind};

pub use source::ByteCounter;

/// One row of an input: its 1-based line number and the record or what is wrong with it.
pub type Row<T> = (u64, Result<T, RowError>);

/// A stream of rows.
pub type Rows<T> = Box<dyn Iterator<Item = Row<T>> + Send>;
