//! Parquet files of items, users, events and training interactions: written by `cairn export
//! --format parquet`, read back by `cairn import` as they were, and readable by Spark, pandas or
//! DuckDB as they are.
//!
//! One flat schema per kind, with the field names of the HTTP API (snappy-compressed):
//!
//! - items: `id`, `categories` and `tags` (lists of strings), `title`, `description`, `properties`
//!   (a JSON object, so that typed values and lists keep their types), `embedding` (a list of
//!   floats, null when the item has none), `hidden`, `available_from`, `available_until`.
//! - users: `id`, `properties` (JSON).
//! - events: `event_id`, `user_id`, `item_id`, `type`, `value` (double), `timestamp`,
//!   `recommendation_id`, `context` (JSON).
//! - interactions (the training snapshot, for training elsewhere): `user_id`, `item_id`, `strength`
//!   (float, signed: the event type's weight), `timestamp`.
//!
//! Timestamps are `TIMESTAMP(MICROS, UTC)` of whole seconds. Reading also takes millisecond
//! timestamps, plain integers (unix seconds) and RFC 3339 strings. A column the kind does not have
//! is refused when the file is opened; a row that is not a valid record is a bad row, named by the
//! file and its 1-based row number.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::parquet::basic::Compression;
use ::parquet::data_type::{
    BoolType, ByteArray, ByteArrayType, DataType, DoubleType, FloatType, Int64Type,
};
use ::parquet::errors::ParquetError;
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::reader::{FileReader, SerializedFileReader};
use ::parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use ::parquet::record::reader::RowIter;
use ::parquet::record::{Field, Row};
use ::parquet::schema::parser::parse_message_type;
use cairn_core::{Event, Item, PropertyValue, Timestamp, User, Validate};

use crate::error::{ImportError, RowError};
use crate::source::ByteCounter;
use crate::Rows;

/// One row of the training snapshot: a user's signed interest in an item at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    pub user_id: String,
    pub item_id: String,
    /// The event type's strength (negative for dislikes), as training weighs it.
    pub strength: f32,
    /// Unix seconds.
    pub timestamp: i64,
}

/// A record that has a Parquet schema: how a batch of them becomes columns, and how a row read back
/// becomes one.
pub trait ParquetRecord: Sized + Send + 'static {
    /// What the records are called in messages ("item").
    const KIND: &'static str;
    /// The schema, in Parquet's message-type syntax.
    const SCHEMA: &'static str;
    /// Columns every file of this kind must have.
    const REQUIRED: &'static [&'static str];
    /// Writes `rows` as one row group, a column at a time in the order of [`Self::SCHEMA`].
    fn write_columns<W: Write + Send>(
        rows: &[Self],
        out: &mut SerializedRowGroupWriter<'_, W>,
    ) -> Result<(), ParquetError>;
    /// The record a row holds, or what is wrong with it.
    fn from_row(row: Columns) -> Result<Self, String>;
}

/// Rows per row group: big enough for good compression, small enough to bound the writer's memory.
const ROW_GROUP: usize = 50_000;

/// Writes records of one kind to a Parquet file, a row group at a time.
pub struct ParquetWriter<T: ParquetRecord> {
    writer: SerializedFileWriter<BufWriter<File>>,
    buffer: Vec<T>,
    path: PathBuf,
    rows: u64,
}

impl<T: ParquetRecord> ParquetWriter<T> {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> Result<Self, ImportError> {
        let file = File::create(path).map_err(|e| ImportError::io(path, e))?;
        let schema = Arc::new(parse_message_type(T::SCHEMA).expect("the schemas parse"));
        let properties = Arc::new(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_created_by(format!("cairn {}", env!("CARGO_PKG_VERSION")))
                .build(),
        );
        let writer = SerializedFileWriter::new(BufWriter::new(file), schema, properties)
            .map_err(|e| parquet_error(path, e))?;
        Ok(ParquetWriter {
            writer,
            buffer: Vec::new(),
            path: path.to_path_buf(),
            rows: 0,
        })
    }

    pub fn write(&mut self, record: T) -> Result<(), ImportError> {
        self.buffer.push(record);
        if self.buffer.len() >= ROW_GROUP {
            self.flush_group()?;
        }
        Ok(())
    }

    fn flush_group(&mut self) -> Result<(), ImportError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let path = &self.path;
        let mut group = self
            .writer
            .next_row_group()
            .map_err(|e| parquet_error(path, e))?;
        T::write_columns(&self.buffer, &mut group).map_err(|e| parquet_error(path, e))?;
        group.close().map_err(|e| parquet_error(path, e))?;
        self.rows += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    /// Writes what is buffered and the footer, and syncs the file; returns the rows written.
    pub fn finish(mut self) -> Result<u64, ImportError> {
        self.flush_group()?;
        let path = self.path.clone();
        let out = self
            .writer
            .into_inner()
            .map_err(|e| parquet_error(&path, e))?;
        let file = out
            .into_inner()
            .map_err(|e| ImportError::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| ImportError::io(&path, e))?;
        Ok(self.rows)
    }
}

fn parquet_error(path: &Path, e: ParquetError) -> ImportError {
    match e {
        ParquetError::External(inner) => match inner.downcast::<std::io::Error>() {
            Ok(io) => ImportError::io(path, *io),
            Err(other) => ImportError::layout(path, format!("Parquet: {other}")),
        },
        other => ImportError::layout(path, format!("Parquet: {other}")),
    }
}

/// Reads a Parquet file of `T`s: rows numbered from 1, each a record or a bad row naming the
/// file and row. The file's columns are checked first: one the kind does not have, or a missing
/// required one, is an error of the whole file.
pub fn read<T: ParquetRecord>(path: &Path, counter: &ByteCounter) -> Result<Rows<T>, ImportError> {
    let file = File::open(path).map_err(|e| ImportError::io(path, e))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let reader = SerializedFileReader::new(file)
        .map_err(|e| ImportError::layout(path, format!("is not a readable Parquet file: {e}")))?;
    let meta = reader.metadata().file_metadata();
    let total_rows = meta.num_rows().max(1) as u64;
    let known: Vec<String> = parse_message_type(T::SCHEMA)
        .expect("the schemas parse")
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let columns: Vec<String> = meta
        .schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    if let Some(unknown) = columns.iter().find(|c| !known.contains(c)) {
        return Err(ImportError::layout(
            path,
            format!(
                "column `{unknown}` is not a column of {kind}s; they are {}",
                known.join(", "),
                kind = T::KIND
            ),
        ));
    }
    if let Some(missing) = T::REQUIRED
        .iter()
        .find(|c| !columns.iter().any(|n| n == *c))
    {
        return Err(ImportError::layout(
            path,
            format!("has no column `{missing}`, which {}s need", T::KIND),
        ));
    }
    let rows = RowIter::from_file_into(Box::new(reader));
    let path = path.to_path_buf();
    let counter = counter.clone();
    let mut done = false;
    Ok(Box::new(rows.enumerate().map_while(move |(i, row)| {
        if done {
            return None;
        }
        let n = i as u64 + 1;
        // Progress in bytes, spread evenly over the rows.
        counter.add_u64(len * n / total_rows - len * (n - 1) / total_rows);
        let record = match row {
            Ok(row) => T::from_row(Columns::new(row)),
            Err(e) => {
                done = true;
                Err(format!("reading stopped here: {e}"))
            }
        };
        Some((
            n,
            record.map_err(|m| RowError::new(&path, n, format!("row {n}: {m}"))),
        ))
    })))
}

/// The fields of one row read back, taken by name.
pub struct Columns(Vec<(String, Field)>);

impl Columns {
    fn new(row: Row) -> Self {
        Columns(row.into_columns())
    }

    /// The field `name`, `None` when the column is absent or null.
    fn take(&mut self, name: &str) -> Option<Field> {
        let at = self.0.iter().position(|(n, _)| n == name)?;
        match self.0.swap_remove(at).1 {
            Field::Null => None,
            field => Some(field),
        }
    }

    fn string(&mut self, name: &str) -> Result<Option<String>, String> {
        self.take(name).map(|f| as_string(name, f)).transpose()
    }

    fn required_string(&mut self, name: &str) -> Result<String, String> {
        self.string(name)?
            .ok_or_else(|| format!("{name}: must not be null"))
    }

    fn strings(&mut self, name: &str) -> Result<Vec<String>, String> {
        match self.take(name) {
            None => Ok(Vec::new()),
            Some(Field::ListInternal(list)) => list
                .elements()
                .iter()
                .map(|f| as_string(name, f.clone()))
                .collect(),
            Some(other) => Err(format!("{name}: expected a list of strings, found {other}")),
        }
    }

    fn floats(&mut self, name: &str) -> Result<Option<Vec<f32>>, String> {
        match self.take(name) {
            None => Ok(None),
            Some(Field::ListInternal(list)) => list
                .elements()
                .iter()
                .map(|f| match f {
                    Field::Float(x) => Ok(*x),
                    Field::Double(x) => Ok(*x as f32),
                    other => Err(format!("{name}: expected numbers, found {other}")),
                })
                .collect::<Result<Vec<f32>, String>>()
                .map(Some),
            Some(other) => Err(format!("{name}: expected a list of numbers, found {other}")),
        }
    }

    fn double(&mut self, name: &str) -> Result<Option<f64>, String> {
        self.take(name)
            .map(|f| match f {
                Field::Double(x) => Ok(x),
                Field::Float(x) => Ok(f64::from(x)),
                Field::Int(x) => Ok(f64::from(x)),
                Field::Long(x) => Ok(x as f64),
                other => Err(format!("{name}: expected a number, found {other}")),
            })
            .transpose()
    }

    fn bool(&mut self, name: &str) -> Result<bool, String> {
        match self.take(name) {
            None => Ok(false),
            Some(Field::Bool(b)) => Ok(b),
            Some(other) => Err(format!("{name}: expected true or false, found {other}")),
        }
    }

    fn timestamp(&mut self, name: &str) -> Result<Option<Timestamp>, String> {
        let Some(field) = self.take(name) else {
            return Ok(None);
        };
        let secs = match field {
            Field::TimestampMicros(us) => us.div_euclid(1_000_000),
            Field::TimestampMillis(ms) => ms.div_euclid(1_000),
            Field::Long(s) => s,
            Field::Int(s) => i64::from(s),
            Field::Str(text) => return Timestamp::parse(&text).map(Some),
            other => return Err(format!("{name}: expected a timestamp, found {other}")),
        };
        Timestamp::from_secs(secs)
            .map(Some)
            .map_err(|e| format!("{name}: {e}"))
    }

    fn properties(&mut self, name: &str) -> Result<BTreeMap<String, PropertyValue>, String> {
        match self.string(name)? {
            None => Ok(BTreeMap::new()),
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| format!("{name}: not a JSON object of properties: {e}")),
        }
    }
}

fn as_string(name: &str, field: Field) -> Result<String, String> {
    match field {
        Field::Str(s) => Ok(s),
        other => Err(format!("{name}: expected a string, found {other}")),
    }
}

// ----- writing columns -----

fn bytes(s: &str) -> ByteArray {
    ByteArray::from(s.as_bytes().to_vec())
}

/// Writes the next column of the row group.
fn column<T: DataType, W: Write + Send>(
    out: &mut SerializedRowGroupWriter<'_, W>,
    values: &[T::T],
    def: Option<&[i16]>,
    rep: Option<&[i16]>,
) -> Result<(), ParquetError> {
    let mut column = out
        .next_column()?
        .ok_or_else(|| ParquetError::General("more columns than the schema has".into()))?;
    column.typed::<T>().write_batch(values, def, rep)?;
    column.close()
}

fn required_strings<'r, W: Write + Send>(
    out: &mut SerializedRowGroupWriter<'_, W>,
    values: impl Iterator<Item = &'r str>,
) -> Result<(), ParquetError> {
    let values: Vec<ByteArray> = values.map(bytes).collect();
    column::<ByteArrayType, W>(out, &values, None, None)
}

fn optional_strings<'r, W: Write + Send>(
    out: &mut SerializedRowGroupWriter<'_, W>,
    values: impl Iterator<Item = Option<&'r str>>,
) -> Result<(), ParquetError> {
    let (values, def) = optional(values.map(|v| v.map(bytes)));
    column::<ByteArrayType, W>(out, &values, Some(&def), None)
}

/// Present values, and the definition level of each row (1 present, 0 null).
fn optional<T>(values: impl Iterator<Item = Option<T>>) -> (Vec<T>, Vec<i16>) {
    let mut present = Vec::new();
    let mut def = Vec::new();
    for v in values {
        def.push(i16::from(v.is_some()));
        present.extend(v);
    }
    (present, def)
}

/// A list column: the values with their definition and repetition levels. `optional` lists are
/// null (level 0), empty (1) or hold values (2); required ones are empty (0) or hold values (1).
fn list_levels<T>(
    rows: impl Iterator<Item = Option<Vec<T>>>,
    optional: bool,
) -> (Vec<T>, Vec<i16>, Vec<i16>) {
    let base = i16::from(optional);
    let (mut values, mut def, mut rep) = (Vec::new(), Vec::new(), Vec::new());
    for row in rows {
        match row {
            None => {
                def.push(0);
                rep.push(0);
            }
            Some(list) if list.is_empty() => {
                def.push(base);
                rep.push(0);
            }
            Some(list) => {
                for (j, v) in list.into_iter().enumerate() {
                    def.push(base + 1);
                    rep.push(i16::from(j > 0));
                    values.push(v);
                }
            }
        }
    }
    (values, def, rep)
}

fn string_lists<'r, W: Write + Send>(
    out: &mut SerializedRowGroupWriter<'_, W>,
    rows: impl Iterator<Item = &'r [String]>,
) -> Result<(), ParquetError> {
    let (values, def, rep) = list_levels(
        rows.map(|r| Some(r.iter().map(|s| bytes(s)).collect())),
        false,
    );
    column::<ByteArrayType, W>(out, &values, Some(&def), Some(&rep))
}

fn properties_json(map: &BTreeMap<String, PropertyValue>) -> Option<String> {
    (!map.is_empty()).then(|| serde_json::to_string(map).expect("properties serialize"))
}

fn json_columns<'r, W: Write + Send>(
    out: &mut SerializedRowGroupWriter<'_, W>,
    rows: impl Iterator<Item = &'r BTreeMap<String, PropertyValue>>,
) -> Result<(), ParquetError> {
    let json: Vec<Option<String>> = rows.map(properties_json).collect();
    optional_strings(out, json.iter().map(|j| j.as_deref()))
}

fn micros(t: Timestamp) -> i64 {
    t.0.saturating_mul(1_000_000)
}

fn optional_timestamps<W: Write + Send>(
    out: &mut SerializedRowGroupWriter<'_, W>,
    values: impl Iterator<Item = Option<Timestamp>>,
) -> Result<(), ParquetError> {
    let (values, def) = optional(values.map(|t| t.map(micros)));
    column::<Int64Type, W>(out, &values, Some(&def), None)
}

// ----- the four kinds -----

impl ParquetRecord for Item {
    const KIND: &'static str = "item";
    const SCHEMA: &'static str = "message item {
        REQUIRED BYTE_ARRAY id (UTF8);
        REQUIRED GROUP categories (LIST) { REPEATED GROUP list { REQUIRED BYTE_ARRAY element (UTF8); } }
        REQUIRED GROUP tags (LIST) { REPEATED GROUP list { REQUIRED BYTE_ARRAY element (UTF8); } }
        OPTIONAL BYTE_ARRAY title (UTF8);
        OPTIONAL BYTE_ARRAY description (UTF8);
        OPTIONAL BYTE_ARRAY properties (JSON);
        OPTIONAL GROUP embedding (LIST) { REPEATED GROUP list { REQUIRED FLOAT element; } }
        REQUIRED BOOLEAN hidden;
        OPTIONAL INT64 available_from (TIMESTAMP(MICROS,true));
        OPTIONAL INT64 available_until (TIMESTAMP(MICROS,true));
    }";
    const REQUIRED: &'static [&'static str] = &["id"];

    fn write_columns<W: Write + Send>(
        rows: &[Self],
        out: &mut SerializedRowGroupWriter<'_, W>,
    ) -> Result<(), ParquetError> {
        required_strings(out, rows.iter().map(|r| r.id.as_str()))?;
        string_lists(out, rows.iter().map(|r| r.categories.as_slice()))?;
        string_lists(out, rows.iter().map(|r| r.tags.as_slice()))?;
        optional_strings(out, rows.iter().map(|r| r.title.as_deref()))?;
        optional_strings(out, rows.iter().map(|r| r.description.as_deref()))?;
        json_columns(out, rows.iter().map(|r| &r.properties))?;
        let (values, def, rep) = list_levels(rows.iter().map(|r| r.embedding.clone()), true);
        column::<FloatType, W>(out, &values, Some(&def), Some(&rep))?;
        let hidden: Vec<bool> = rows.iter().map(|r| r.hidden).collect();
        column::<BoolType, W>(out, &hidden, None, None)?;
        optional_timestamps(out, rows.iter().map(|r| r.available_from))?;
        optional_timestamps(out, rows.iter().map(|r| r.available_until))
    }

    fn from_row(mut row: Columns) -> Result<Self, String> {
        let item = Item {
            id: row.required_string("id")?,
            categories: row.strings("categories")?,
            tags: row.strings("tags")?,
            title: row.string("title")?,
            description: row.string("description")?,
            properties: row.properties("properties")?,
            embedding: row.floats("embedding")?,
            hidden: row.bool("hidden")?,
            available_from: row.timestamp("available_from")?,
            available_until: row.timestamp("available_until")?,
        };
        item.validate().map_err(|e| format!("item {e}"))?;
        Ok(item)
    }
}

impl ParquetRecord for User {
    const KIND: &'static str = "user";
    const SCHEMA: &'static str = "message user {
        REQUIRED BYTE_ARRAY id (UTF8);
        OPTIONAL BYTE_ARRAY properties (JSON);
    }";
    const REQUIRED: &'static [&'static str] = &["id"];

    fn write_columns<W: Write + Send>(
        rows: &[Self],
        out: &mut SerializedRowGroupWriter<'_, W>,
    ) -> Result<(), ParquetError> {
        required_strings(out, rows.iter().map(|r| r.id.as_str()))?;
        json_columns(out, rows.iter().map(|r| &r.properties))
    }

    fn from_row(mut row: Columns) -> Result<Self, String> {
        let user = User {
            id: row.required_string("id")?,
            properties: row.properties("properties")?,
        };
        user.validate().map_err(|e| format!("user {e}"))?;
        Ok(user)
    }
}

impl ParquetRecord for Event {
    const KIND: &'static str = "event";
    const SCHEMA: &'static str = "message event {
        OPTIONAL BYTE_ARRAY event_id (UTF8);
        REQUIRED BYTE_ARRAY user_id (UTF8);
        REQUIRED BYTE_ARRAY item_id (UTF8);
        REQUIRED BYTE_ARRAY type (UTF8);
        OPTIONAL DOUBLE value;
        OPTIONAL INT64 timestamp (TIMESTAMP(MICROS,true));
        OPTIONAL BYTE_ARRAY recommendation_id (UTF8);
        OPTIONAL BYTE_ARRAY context (JSON);
    }";
    const REQUIRED: &'static [&'static str] = &["user_id", "item_id", "type"];

    fn write_columns<W: Write + Send>(
        rows: &[Self],
        out: &mut SerializedRowGroupWriter<'_, W>,
    ) -> Result<(), ParquetError> {
        optional_strings(out, rows.iter().map(|r| r.event_id.as_deref()))?;
        required_strings(out, rows.iter().map(|r| r.user_id.as_str()))?;
        required_strings(out, rows.iter().map(|r| r.item_id.as_str()))?;
        required_strings(out, rows.iter().map(|r| r.event_type.as_str()))?;
        let (values, def) = optional(rows.iter().map(|r| r.value));
        column::<DoubleType, W>(out, &values, Some(&def), None)?;
        optional_timestamps(out, rows.iter().map(|r| r.timestamp))?;
        optional_strings(out, rows.iter().map(|r| r.recommendation_id.as_deref()))?;
        json_columns(out, rows.iter().map(|r| &r.context))
    }

    fn from_row(mut row: Columns) -> Result<Self, String> {
        let event = Event {
            event_id: row.string("event_id")?,
            user_id: row.required_string("user_id")?,
            item_id: row.required_string("item_id")?,
            event_type: row.required_string("type")?,
            value: row.double("value")?,
            timestamp: row.timestamp("timestamp")?,
            recommendation_id: row.string("recommendation_id")?,
            position: None,
            context: row.properties("context")?,
        };
        event.validate().map_err(|e| format!("event {e}"))?;
        Ok(event)
    }
}

impl ParquetRecord for Interaction {
    const KIND: &'static str = "interaction";
    const SCHEMA: &'static str = "message interaction {
        REQUIRED BYTE_ARRAY user_id (UTF8);
        REQUIRED BYTE_ARRAY item_id (UTF8);
        REQUIRED FLOAT strength;
        REQUIRED INT64 timestamp (TIMESTAMP(MICROS,true));
    }";
    const REQUIRED: &'static [&'static str] = &["user_id", "item_id", "strength", "timestamp"];

    fn write_columns<W: Write + Send>(
        rows: &[Self],
        out: &mut SerializedRowGroupWriter<'_, W>,
    ) -> Result<(), ParquetError> {
        required_strings(out, rows.iter().map(|r| r.user_id.as_str()))?;
        required_strings(out, rows.iter().map(|r| r.item_id.as_str()))?;
        let strength: Vec<f32> = rows.iter().map(|r| r.strength).collect();
        column::<FloatType, W>(out, &strength, None, None)?;
        let timestamp: Vec<i64> = rows
            .iter()
            .map(|r| micros(Timestamp(r.timestamp)))
            .collect();
        column::<Int64Type, W>(out, &timestamp, None, None)
    }

    fn from_row(mut row: Columns) -> Result<Self, String> {
        Ok(Interaction {
            user_id: row.required_string("user_id")?,
            item_id: row.required_string("item_id")?,
            strength: row
                .double("strength")?
                .ok_or("strength: must not be null")? as f32,
            timestamp: row
                .timestamp("timestamp")?
                .ok_or("timestamp: must not be null")?
                .0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::property::Scalar;

    fn round_trip<T: ParquetRecord + Clone>(records: &[T]) -> Vec<T> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        let mut writer = ParquetWriter::<T>::create(&path).unwrap();
        for r in records {
            writer.write(r.clone()).unwrap();
        }
        assert_eq!(writer.finish().unwrap(), records.len() as u64);
        let counter = ByteCounter::new();
        let back: Vec<T> = read::<T>(&path, &counter)
            .unwrap()
            .map(|(_, r)| r.unwrap())
            .collect();
        assert_eq!(counter.get(), std::fs::metadata(&path).unwrap().len());
        back
    }

    #[test]
    fn items_keep_every_field() {
        let mut full = Item::new("i1");
        full.categories = vec!["shoes".into(), "sale".into()];
        full.tags = vec!["red".into()];
        full.title = Some("Runner, \"fast\"\nmodel".into());
        full.description = Some(String::new());
        full.properties = BTreeMap::from([
            ("price".into(), PropertyValue::Number(19.5)),
            ("count".into(), PropertyValue::Number(3.0)),
            ("new".into(), PropertyValue::Bool(true)),
            ("brand".into(), PropertyValue::String("Acme".into())),
            (
                "sizes".into(),
                PropertyValue::List(vec![Scalar::Number(42.0), Scalar::String("XL".into())]),
            ),
        ]);
        full.embedding = Some(vec![0.25, -1.5, 3.0e-7]);
        full.hidden = true;
        full.available_from = Some(Timestamp(1_700_000_000));
        full.available_until = Some(Timestamp(1_800_000_000));
        let mut short = Item::new("i2");
        short.embedding = Some(vec![1.0]);
        short.tags = vec!["a".into(), "b".into(), "c".into()];
        let bare = Item::new("i3");
        let items = vec![full, short, bare];
        assert_eq!(round_trip(&items), items);
    }

    #[test]
    fn users_events_and_interactions_keep_every_field() {
        let mut user = User::new("u1");
        user.properties
            .insert("age".into(), PropertyValue::Number(31.0));
        let users = vec![user, User::new("u2")];
        assert_eq!(round_trip(&users), users);

        let mut rated = Event::new("u1", "i1", "rating")
            .at(1_700_000_123)
            .with_value(4.5);
        rated.event_id = Some("e-1".into());
        rated.recommendation_id = Some("rec-9".into());
        rated
            .context
            .insert("device".into(), PropertyValue::String("ios".into()));
        let mut viewed = Event::new("u2", "i2", "view");
        viewed.value = Some(-0.0);
        let events = vec![rated, viewed, Event::new("u3", "i3", "view").at(0)];
        assert_eq!(round_trip(&events), events);

        let interactions = vec![
            Interaction {
                user_id: "u1".into(),
                item_id: "i1".into(),
                strength: -1.0,
                timestamp: 1_700_000_000,
            },
            Interaction {
                user_id: "u2".into(),
                item_id: "i1".into(),
                strength: 0.5,
                timestamp: 0,
            },
        ];
        assert_eq!(round_trip(&interactions), interactions);
    }

    #[test]
    fn many_rows_span_row_groups() {
        let users: Vec<User> = (0..ROW_GROUP + 7)
            .map(|i| User::new(format!("u{i}")))
            .collect();
        assert_eq!(round_trip(&users), users);
    }

    #[test]
    fn bad_rows_and_wrong_files_name_the_file_and_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.parquet");
        let mut writer = ParquetWriter::<Event>::create(&path).unwrap();
        writer.write(Event::new("u1", "i1", "view")).unwrap();
        writer.write(Event::new("", "i1", "view")).unwrap();
        writer.finish().unwrap();
        let rows: Vec<_> = read::<Event>(&path, &ByteCounter::new()).unwrap().collect();
        assert!(rows[0].1.is_ok());
        let err = rows[1].1.as_ref().unwrap_err();
        assert_eq!((rows[1].0, err.line), (2, 2));
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("{}:2: row 2: event user_id", path.display())),
            "{text}"
        );

        // A file of another kind: its columns are not an item's.
        let err = read::<Item>(&path, &ByteCounter::new()).err().unwrap();
        assert!(
            err.to_string().contains("is not a column of items"),
            "{err}"
        );
        let err = read::<User>(&path, &ByteCounter::new()).err().unwrap();
        assert!(err.to_string().contains("event_id"), "{err}");

        let text_file = dir.path().join("not.parquet");
        std::fs::write(&text_file, "id\nu1\n").unwrap();
        let err = read::<User>(&text_file, &ByteCounter::new()).err().unwrap();
        let message = err.to_string();
        assert!(
            message.contains("not.parquet") && message.contains("not a readable Parquet file"),
            "{message}"
        );
    }
}
