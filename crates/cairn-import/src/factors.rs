//! Factor tables trained outside Cairn (the Spark job `jobs/spark/train_als.py`), read for `cairn
//! import factors`: Parquet files with one row per user or item,
//!
//! - `id`: the user's or item's id as Cairn knows it (`BYTE_ARRAY (UTF8)`, not null);
//! - `features`: its vector, a list of `FLOAT` (or `DOUBLE`), the same length on every row, no null
//!   and no NaN or infinite value.
//!
//! Other columns are ignored. A table is one file or a folder of them (Spark writes
//! `part-*.parquet`; names starting with `_` or `.`, such as `_SUCCESS` and checksums, are skipped),
//! read in file-name order. A bad row stops the read with an error that names the file and its
//! 1-based row number.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::parquet::basic::Compression;
use ::parquet::data_type::{ByteArray, ByteArrayType, FloatType};
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::reader::{FileReader, SerializedFileReader};
use ::parquet::file::writer::SerializedFileWriter;
use ::parquet::record::reader::RowIter;
use ::parquet::record::Field;
use ::parquet::schema::parser::parse_message_type;

use crate::error::ImportError;

/// The schema [`write_factor_table`] writes (Spark's `id STRING, features ARRAY<FLOAT>` reads the
/// same way, with nullable fields).
pub const FACTOR_SCHEMA: &str = "message factors {
    REQUIRED BYTE_ARRAY id (UTF8);
    REQUIRED GROUP features (LIST) { REPEATED GROUP list { REQUIRED FLOAT element; } }
}";

/// The vectors of one table, in the order read.
#[derive(Debug, Clone, PartialEq)]
pub struct FactorTable {
    /// Length of every vector.
    pub dim: usize,
    pub ids: Vec<String>,
    /// Row-major, `dim` values per id.
    pub vectors: Vec<f32>,
    /// Where each id was read: index into `files`, 1-based row in that file.
    origins: Vec<(u32, u64)>,
    pub files: Vec<PathBuf>,
}

impl FactorTable {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The vector of the `k`-th id read.
    pub fn vector(&self, k: usize) -> &[f32] {
        &self.vectors[k * self.dim..(k + 1) * self.dim]
    }

    /// `file:row` of the `k`-th id read, for messages.
    pub fn origin(&self, k: usize) -> String {
        let (file, row) = self.origins[k];
        format!("{}:{row}", self.files[file as usize].display())
    }
}

/// The Parquet files of a table at `path`: the file itself, or a folder's `*.parquet` files in
/// name order.
pub fn table_files(path: &Path) -> Result<Vec<PathBuf>, ImportError> {
    let meta = std::fs::metadata(path).map_err(|e| ImportError::io(path, e))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| ImportError::io(path, e))? {
        let entry = entry.map_err(|e| ImportError::io(path, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('_') || name.starts_with('.') || !name.ends_with(".parquet") {
            continue;
        }
        files.push(entry.path());
    }
    files.sort();
    if files.is_empty() {
        return Err(ImportError::layout(
            path,
            "holds no .parquet file (expected the folder the Spark job writes, or one file)",
        ));
    }
    Ok(files)
}

/// Reads a table of vectors (a file or a folder of files). `dim`, when given, is the length every
/// vector must have; otherwise the first row's sets it. Ids must be unique across the table.
pub fn read_factor_table(path: &Path, dim: Option<usize>) -> Result<FactorTable, ImportError> {
    let files = table_files(path)?;
    let mut table = FactorTable {
        dim: dim.unwrap_or(0),
        ids: Vec::new(),
        vectors: Vec::new(),
        origins: Vec::new(),
        files: files.clone(),
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut dim_known = dim.is_some();
    for (f, file) in files.iter().enumerate() {
        let reader = open(file)?;
        let rows = RowIter::from_file_into(Box::new(reader));
        for (r, row) in rows.enumerate() {
            let n = r as u64 + 1;
            let bad = |message: String| ImportError::layout(file, format!("row {n}: {message}"));
            let row = row.map_err(|e| bad(format!("reading stopped here: {e}")))?;
            let (mut id, mut features) = (None, None);
            for (name, field) in row.into_columns() {
                match name.as_str() {
                    "id" => id = Some(field),
                    "features" => features = Some(field),
                    _ => {}
                }
            }
            let id = match id {
                Some(Field::Str(s)) if !s.is_empty() => s,
                Some(Field::Str(_)) => return Err(bad("id: must not be empty".into())),
                Some(Field::Null) | None => return Err(bad("id: must not be null".into())),
                Some(other) => return Err(bad(format!("id: expected a string, found {other}"))),
            };
            let vector = floats(features).map_err(|m| bad(format!("id `{id}`: {m}")))?;
            if !dim_known {
                if vector.is_empty() {
                    return Err(bad(format!("id `{id}`: features: the vector is empty")));
                }
                table.dim = vector.len();
                dim_known = true;
            }
            if vector.len() != table.dim {
                return Err(bad(format!(
                    "id `{id}`: features: {} values, but the vectors have {}",
                    vector.len(),
                    table.dim
                )));
            }
            if let Some(j) = vector.iter().position(|v| !v.is_finite()) {
                return Err(bad(format!(
                    "id `{id}`: features[{j}] is {}, not a finite number",
                    vector[j]
                )));
            }
            if let Some(&earlier) = seen.get(&id) {
                return Err(bad(format!(
                    "id `{id}` appears twice (first at {})",
                    table.origin(earlier)
                )));
            }
            seen.insert(id.clone(), table.ids.len());
            table.ids.push(id);
            table.vectors.extend_from_slice(&vector);
            table.origins.push((f as u32, n));
        }
    }
    Ok(table)
}

/// Opens one file and checks it has the two columns.
fn open(file: &Path) -> Result<SerializedFileReader<File>, ImportError> {
    let handle = File::open(file).map_err(|e| ImportError::io(file, e))?;
    let reader = SerializedFileReader::new(handle)
        .map_err(|e| ImportError::layout(file, format!("is not a readable Parquet file: {e}")))?;
    let schema = reader.metadata().file_metadata().schema();
    let columns: Vec<&str> = schema.get_fields().iter().map(|f| f.name()).collect();
    for needed in ["id", "features"] {
        if !columns.contains(&needed) {
            return Err(ImportError::layout(
                file,
                format!(
                    "has no column `{needed}`; a factor table has `id` (string) and `features` \
                     (list of floats), this file has {}",
                    columns.join(", ")
                ),
            ));
        }
    }
    Ok(reader)
}

fn floats(field: Option<Field>) -> Result<Vec<f32>, String> {
    match field {
        Some(Field::ListInternal(list)) => list
            .elements()
            .iter()
            .enumerate()
            .map(|(j, f)| match f {
                Field::Float(x) => Ok(*x),
                Field::Double(x) => Ok(*x as f32),
                Field::Null => Err(format!("features[{j}] is null")),
                other => Err(format!("features[{j}]: expected a number, found {other}")),
            })
            .collect(),
        Some(Field::Null) | None => Err("features: must not be null".into()),
        Some(other) => Err(format!(
            "features: expected a list of floats, found {other}"
        )),
    }
}

/// Writes a table in [`FACTOR_SCHEMA`] (one row group): what the Spark job writes, for tests and
/// for tools that train elsewhere without Spark. `vectors` holds `ids.len()` rows of equal length.
pub fn write_factor_table(path: &Path, ids: &[String], vectors: &[f32]) -> Result<(), ImportError> {
    let dim = if ids.is_empty() {
        0
    } else {
        vectors.len() / ids.len()
    };
    assert_eq!(dim * ids.len(), vectors.len(), "whole rows of equal length");
    let layout =
        |e: ::parquet::errors::ParquetError| ImportError::layout(path, format!("Parquet: {e}"));
    let file = File::create(path).map_err(|e| ImportError::io(path, e))?;
    let schema = Arc::new(parse_message_type(FACTOR_SCHEMA).expect("the schema parses"));
    let properties = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let mut writer =
        SerializedFileWriter::new(BufWriter::new(file), schema, properties).map_err(layout)?;
    let mut group = writer.next_row_group().map_err(layout)?;
    let names: Vec<ByteArray> = ids
        .iter()
        .map(|s| ByteArray::from(s.as_bytes().to_vec()))
        .collect();
    let mut column = group.next_column().map_err(layout)?.expect("id column");
    column
        .typed::<ByteArrayType>()
        .write_batch(&names, None, None)
        .map_err(layout)?;
    column.close().map_err(layout)?;
    let mut def = Vec::with_capacity(vectors.len());
    let mut rep = Vec::with_capacity(vectors.len());
    for _ in ids {
        if dim == 0 {
            def.push(0);
            rep.push(0);
        }
        for j in 0..dim {
            def.push(1);
            rep.push(i16::from(j > 0));
        }
    }
    let mut column = group
        .next_column()
        .map_err(layout)?
        .expect("features column");
    column
        .typed::<FloatType>()
        .write_batch(vectors, Some(&def), Some(&rep))
        .map_err(layout)?;
    column.close().map_err(layout)?;
    group.close().map_err(layout)?;
    let out = writer.into_inner().map_err(layout)?;
    let file = out
        .into_inner()
        .map_err(|e| ImportError::io(path, e.into_error()))?;
    file.sync_all().map_err(|e| ImportError::io(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::parquet::data_type::{DoubleType, Int32Type};

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_written_table_reads_back_with_its_origins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("items.parquet");
        let vectors = [0.5, -1.0, 0.0, 2.5, 1e-7, 3.0];
        write_factor_table(&path, &ids(&["a", "b", "c"]), &vectors).unwrap();
        let table = read_factor_table(&path, None).unwrap();
        assert_eq!(table.dim, 2);
        assert_eq!(table.ids, ids(&["a", "b", "c"]));
        assert_eq!(table.vectors, vectors);
        assert_eq!(table.vector(1), &[0.0, 2.5]);
        assert_eq!(table.origin(2), format!("{}:3", path.display()));
    }

    #[test]
    fn a_folder_of_part_files_reads_in_name_order_and_skips_markers() {
        let dir = tempfile::tempdir().unwrap();
        write_factor_table(&dir.path().join("part-00001.parquet"), &ids(&["z"]), &[9.0]).unwrap();
        write_factor_table(
            &dir.path().join("part-00000.parquet"),
            &ids(&["x", "y"]),
            &[1.0, 2.0],
        )
        .unwrap();
        std::fs::write(dir.path().join("_SUCCESS"), "").unwrap();
        std::fs::write(dir.path().join(".part-00000.parquet.crc"), "junk").unwrap();
        let table = read_factor_table(dir.path(), Some(1)).unwrap();
        assert_eq!(table.ids, ids(&["x", "y", "z"]));
        assert_eq!(table.vectors, [1.0, 2.0, 9.0]);
        assert!(
            table.origin(2).ends_with("part-00001.parquet:1"),
            "{}",
            table.origin(2)
        );

        let empty = tempfile::tempdir().unwrap();
        let err = read_factor_table(empty.path(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds no .parquet file"), "{err}");
    }

    /// A row as Spark may write it: a nullable id and a nullable list of nullable floats.
    type SparkRow<'a> = (Option<&'a str>, Option<Vec<Option<f32>>>);

    /// Spark's layout: nullable id, `features` a nullable list of nullable floats, written here
    /// with one row per case the reader must refuse.
    fn spark_like(path: &Path, rows: &[SparkRow]) {
        let schema = "message spark_schema {
            OPTIONAL BYTE_ARRAY id (UTF8);
            OPTIONAL GROUP features (LIST) { REPEATED GROUP list { OPTIONAL FLOAT element; } }
        }";
        let schema = Arc::new(parse_message_type(schema).unwrap());
        let file = File::create(path).unwrap();
        let mut writer =
            SerializedFileWriter::new(file, schema, Arc::new(WriterProperties::builder().build()))
                .unwrap();
        let mut group = writer.next_row_group().unwrap();
        let (mut names, mut def) = (Vec::new(), Vec::new());
        for (id, _) in rows {
            def.push(i16::from(id.is_some()));
            names.extend(id.map(|s| ByteArray::from(s.as_bytes().to_vec())));
        }
        let mut c = group.next_column().unwrap().unwrap();
        c.typed::<ByteArrayType>()
            .write_batch(&names, Some(&def), None)
            .unwrap();
        c.close().unwrap();
        let (mut values, mut def, mut rep) = (Vec::new(), Vec::new(), Vec::new());
        for (_, features) in rows {
            match features {
                None => {
                    def.push(0);
                    rep.push(0);
                }
                Some(list) => {
                    for (j, v) in list.iter().enumerate() {
                        rep.push(i16::from(j > 0));
                        match v {
                            Some(x) => {
                                def.push(3);
                                values.push(*x);
                            }
                            None => def.push(2),
                        }
                    }
                }
            }
        }
        let mut c = group.next_column().unwrap().unwrap();
        c.typed::<FloatType>()
            .write_batch(&values, Some(&def), Some(&rep))
            .unwrap();
        c.close().unwrap();
        group.close().unwrap();
        writer.close().unwrap();
    }

    fn error_of(rows: &[SparkRow]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part-0.parquet");
        spark_like(&path, rows);
        let err = read_factor_table(&path, None).unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        err
    }

    #[test]
    fn spark_layout_reads_and_bad_rows_name_the_file_and_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ok.parquet");
        spark_like(&path, &[(Some("u1"), Some(vec![Some(1.0), Some(-2.0)]))]);
        let table = read_factor_table(&path, None).unwrap();
        assert_eq!(
            (table.ids.as_slice(), table.vectors.as_slice()),
            (ids(&["u1"]).as_slice(), [1.0, -2.0].as_slice())
        );

        let good = (Some("u1"), Some(vec![Some(1.0), Some(2.0)]));
        let err = error_of(&[good.clone(), (Some("u2"), Some(vec![Some(1.0)]))]);
        assert!(
            err.ends_with("row 2: id `u2`: features: 1 values, but the vectors have 2"),
            "{err}"
        );
        let err = error_of(&[
            good.clone(),
            (Some("u2"), Some(vec![Some(f32::NAN), Some(0.0)])),
        ]);
        assert!(
            err.ends_with("row 2: id `u2`: features[0] is NaN, not a finite number"),
            "{err}"
        );
        let err = error_of(&[good.clone(), (Some("u2"), Some(vec![Some(1.0), None]))]);
        assert!(
            err.ends_with("row 2: id `u2`: features[1] is null"),
            "{err}"
        );
        let err = error_of(&[good.clone(), (Some("u3"), None)]);
        assert!(
            err.ends_with("row 2: id `u3`: features: must not be null"),
            "{err}"
        );
        let err = error_of(&[good.clone(), (None, Some(vec![Some(1.0), Some(2.0)]))]);
        assert!(err.ends_with("row 2: id: must not be null"), "{err}");
        let err = error_of(&[good.clone(), good.clone()]);
        assert!(
            err.contains("row 2: id `u1` appears twice (first at "),
            "{err}"
        );
        assert!(err.ends_with("part-0.parquet:1)"), "{err}");
    }

    #[test]
    fn a_missing_or_mistyped_column_is_an_error_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wrong.parquet");
        let schema = "message m { REQUIRED BYTE_ARRAY id (UTF8); REQUIRED INT32 vector; }";
        let schema = Arc::new(parse_message_type(schema).unwrap());
        let mut writer = SerializedFileWriter::new(
            File::create(&path).unwrap(),
            schema,
            Arc::new(WriterProperties::builder().build()),
        )
        .unwrap();
        let mut group = writer.next_row_group().unwrap();
        let mut c = group.next_column().unwrap().unwrap();
        c.typed::<ByteArrayType>()
            .write_batch(&[ByteArray::from("a")], None, None)
            .unwrap();
        c.close().unwrap();
        let mut c = group.next_column().unwrap().unwrap();
        c.typed::<Int32Type>()
            .write_batch(&[1], None, None)
            .unwrap();
        c.close().unwrap();
        group.close().unwrap();
        writer.close().unwrap();
        let err = read_factor_table(&path, None).unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        assert!(err.contains("has no column `features`"), "{err}");

        // Features as a plain double instead of a list.
        let path = dir.path().join("scalar.parquet");
        let schema = "message m { REQUIRED BYTE_ARRAY id (UTF8); REQUIRED DOUBLE features; }";
        let schema = Arc::new(parse_message_type(schema).unwrap());
        let mut writer = SerializedFileWriter::new(
            File::create(&path).unwrap(),
            schema,
            Arc::new(WriterProperties::builder().build()),
        )
        .unwrap();
        let mut group = writer.next_row_group().unwrap();
        let mut c = group.next_column().unwrap().unwrap();
        c.typed::<ByteArrayType>()
            .write_batch(&[ByteArray::from("a")], None, None)
            .unwrap();
        c.close().unwrap();
        let mut c = group.next_column().unwrap().unwrap();
        c.typed::<DoubleType>()
            .write_batch(&[1.0], None, None)
            .unwrap();
        c.close().unwrap();
        group.close().unwrap();
        writer.close().unwrap();
        let err = read_factor_table(&path, None).unwrap_err().to_string();
        assert!(
            err.contains("row 1: id `a`: features: expected a list of floats"),
            "{err}"
        );
    }
}
