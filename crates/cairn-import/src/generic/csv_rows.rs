//! Generic CSV readers for items, users and events. See the module above for the column layouts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cairn_core::{Event, Item, PropertyValue, Timestamp, User, Validate};

use crate::cells;
use crate::csv_records::{self, CsvOptions, Records};
use crate::error::{ImportError, RowError};
use crate::source::ByteCounter;
use crate::Rows;

pub const EVENT_COLUMNS: &[&str] = &[
    "user_id",
    "item_id",
    "type",
    "value",
    "timestamp",
    "event_id",
    "recommendation_id",
];
pub const ITEM_COLUMNS: &[&str] = &[
    "id",
    "title",
    "description",
    "categories",
    "tags",
    "hidden",
    "available_from",
    "available_until",
    "embedding",
];
pub const USER_COLUMNS: &[&str] = &["id"];

/// The header row: which column holds which field.
struct Header {
    names: Vec<String>,
}

impl Header {
    fn position(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

/// One data row, with the header to look cells up by name.
struct Cells<'a> {
    header: &'a Header,
    values: &'a [String],
}

impl Cells<'_> {
    /// The cell of `column`, `None` when the column is absent or the cell is empty.
    fn get(&self, column: &str) -> Option<&str> {
        let i = self.header.position(column)?;
        self.values
            .get(i)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    fn required(&self, column: &str) -> Result<String, String> {
        self.get(column)
            .map(str::to_string)
            .ok_or_else(|| format!("column `{column}` is empty; every row needs one"))
    }

    /// The cell of `column` read as a timestamp, `None` when absent or empty.
    fn timestamp(&self, column: &str) -> Result<Option<Timestamp>, String> {
        self.get(column)
            .map(|v| cells::timestamp(column, v))
            .transpose()
    }

    /// Cells of the columns not in `known`, typed.
    fn extras(&self, known: &[&str]) -> BTreeMap<String, PropertyValue> {
        self.header
            .names
            .iter()
            .zip(self.values)
            .filter(|(name, _)| !known.contains(&name.as_str()))
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(name, v)| (name.clone(), cells::typed_value(v.trim())))
            .collect()
    }
}

type Convert<T> = fn(&Cells) -> Result<T, String>;

struct CsvRows<T> {
    records: Records,
    header: Header,
    path: PathBuf,
    kind: &'static str,
    convert: Convert<T>,
}

impl<T: Validate> Iterator for CsvRows<T> {
    type Item = (u64, Result<T, RowError>);

    fn next(&mut self) -> Option<Self::Item> {
        let (line, record) = self.records.next()?;
        let row = record.and_then(|values| {
            self.row(&values)
                .map_err(|m| RowError::new(&self.path, line, m))
        });
        Some((line, row))
    }
}

impl<T: Validate> CsvRows<T> {
    fn row(&self, values: &[String]) -> Result<T, String> {
        if values.len() > self.header.names.len() {
            return Err(format!(
                "has {} cells but the header names {} columns; quote cells that contain commas",
                values.len(),
                self.header.names.len()
            ));
        }
        let cells = Cells {
            header: &self.header,
            values,
        };
        let value = (self.convert)(&cells)?;
        value.validate().map_err(|e| format!("{} {e}", self.kind))?;
        Ok(value)
    }
}

/// The rows of a CSV file of `kind`, whose header must name the `required` columns. Quoted cells may
/// hold line breaks in the columns not in `known`, and in `title` and `description`: free text.
fn rows<T: Validate + Send + 'static>(
    path: &Path,
    counter: &ByteCounter,
    options: CsvOptions,
    kind: &'static str,
    (required, known): (&[&str], &'static [&'static str]),
    convert: Convert<T>,
) -> Result<Rows<T>, ImportError> {
    let records = csv_records::open(path, counter, options)?
        .allow_line_breaks(|name| is_text_column(known, name));
    let header = Header {
        names: records.header().to_vec(),
    };
    for column in required {
        if header.position(column).is_none() {
            return Err(ImportError::layout(
                path,
                format!(
                    "the header has no `{column}` column; a {kind} CSV needs a header row with at least {}",
                    required.join(",")
                ),
            ));
        }
    }
    Ok(Box::new(CsvRows {
        records,
        header,
        path: path.to_path_buf(),
        kind,
        convert,
    }))
}

/// Whether a column of a file whose own columns are `known` holds free text, which may span lines.
fn is_text_column(known: &[&str], name: &str) -> bool {
    TEXT_COLUMNS.contains(&name) || !known.contains(&name)
}

/// The known columns that hold free text; every other known column holds an id, a number, a time or
/// a list, none of which spans lines.
pub const TEXT_COLUMNS: &[&str] = &["title", "description"];

pub fn events(
    path: &Path,
    counter: &ByteCounter,
    options: CsvOptions,
) -> Result<Rows<Event>, ImportError> {
    let columns = (&["user_id", "item_id", "type"][..], EVENT_COLUMNS);
    rows(path, counter, options, "event", columns, event)
}

pub fn items(
    path: &Path,
    counter: &ByteCounter,
    options: CsvOptions,
) -> Result<Rows<Item>, ImportError> {
    rows(
        path,
        counter,
        options,
        "item",
        (&["id"], ITEM_COLUMNS),
        item,
    )
}

pub fn users(
    path: &Path,
    counter: &ByteCounter,
    options: CsvOptions,
) -> Result<Rows<User>, ImportError> {
    rows(
        path,
        counter,
        options,
        "user",
        (&["id"], USER_COLUMNS),
        user,
    )
}

fn event(c: &Cells) -> Result<Event, String> {
    let mut event = Event::new(
        c.required("user_id")?,
        c.required("item_id")?,
        c.required("type")?,
    );
    event.value = c
        .get("value")
        .map(|v| cells::number("value", v))
        .transpose()?;
    event.timestamp = c.timestamp("timestamp")?;
    event.event_id = c.get("event_id").map(str::to_string);
    event.recommendation_id = c.get("recommendation_id").map(str::to_string);
    event.context = c.extras(EVENT_COLUMNS);
    Ok(event)
}

fn item(c: &Cells) -> Result<Item, String> {
    let mut item = Item::new(c.required("id")?);
    item.title = c.get("title").map(str::to_string);
    item.description = c.get("description").map(str::to_string);
    item.categories = c.get("categories").map(cells::list).unwrap_or_default();
    item.tags = c.get("tags").map(cells::list).unwrap_or_default();
    item.hidden = c
        .get("hidden")
        .map(|v| cells::boolean("hidden", v))
        .transpose()?
        .unwrap_or(false);
    item.available_from = c.timestamp("available_from")?;
    item.available_until = c.timestamp("available_until")?;
    item.embedding = c
        .get("embedding")
        .map(|v| {
            cells::list(v)
                .iter()
                .map(|x| cells::number("embedding", x).map(|n| n as f32))
                .collect::<Result<Vec<f32>, String>>()
        })
        .transpose()?;
    item.properties = c.extras(ITEM_COLUMNS);
    Ok(item)
}

fn user(c: &Cells) -> Result<User, String> {
    let mut user = User::new(c.required("id")?);
    user.properties = c.extras(USER_COLUMNS);
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(content: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, content).unwrap();
        (dir, path)
    }

    #[test]
    fn events_parse_with_optional_columns_and_context() {
        let (_d, path) = write(
            b"user_id,item_id,type,value,timestamp,event_id,device\n\
              u1,i1,view,,1700000000,e1,mobile\n\
              u1,i2,rating,4.5,2023-11-14T22:13:20Z,,\n",
        );
        let rows: Vec<_> = events(&path, &ByteCounter::new(), CsvOptions::default())
            .unwrap()
            .collect();
        assert_eq!(rows.len(), 2);
        let (line, first) = &rows[0];
        let first = first.as_ref().unwrap();
        assert_eq!(*line, 2);
        assert_eq!(first.event_id.as_deref(), Some("e1"));
        assert_eq!(first.value, None);
        assert_eq!(first.context["device"].as_str(), Some("mobile"));
        let second = rows[1].1.as_ref().unwrap();
        assert_eq!((rows[1].0, second.value), (3, Some(4.5)));
        assert_eq!(second.timestamp.unwrap().0, 1_700_000_000);
        assert!(second.context.is_empty());
    }

    #[test]
    fn bad_event_rows_report_line_and_fix() {
        let (_d, path) = write(
            b"user_id,item_id,type,value,timestamp\n\
              u1,i1,view,,1700000000\n\
              u1,,view,,\n\
              u1,i1,rating,lots,\n\
              u1,i1,view,,yesterday\n\
              u1,i1,view,,1,extra\n\
              u1,i1,view,,1700000000000\n",
        );
        let rows: Vec<_> = events(&path, &ByteCounter::new(), CsvOptions::default())
            .unwrap()
            .collect();
        let errors: Vec<(u64, String)> = rows
            .iter()
            .filter_map(|(_, r)| r.as_ref().err())
            .map(|e| (e.line, e.message.clone()))
            .collect();
        assert_eq!(
            errors.iter().map(|e| e.0).collect::<Vec<_>>(),
            [3, 4, 5, 6, 7]
        );
        assert!(errors[0].1.contains("`item_id` is empty"), "{errors:?}");
        assert!(errors[1].1.contains("`lots` is not a number"), "{errors:?}");
        assert!(errors[2].1.contains("RFC 3339"), "{errors:?}");
        assert!(errors[3].1.contains("header names 5 columns"), "{errors:?}");
        assert!(errors[4].1.contains("milliseconds"), "{errors:?}");
        let shown = rows[1].1.as_ref().unwrap_err().to_string();
        assert!(
            shown.starts_with(&format!("{}:3: ", path.display())),
            "{shown}"
        );
    }

    #[test]
    fn missing_required_column_is_a_layout_error() {
        let (_d, path) = write(b"user,item_id,type\nu1,i1,view\n");
        let err = events(&path, &ByteCounter::new(), CsvOptions::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("no `user_id` column"), "{err}");
        let (_d, empty) = write(b"");
        assert!(items(&empty, &ByteCounter::new(), CsvOptions::default()).is_err());
    }

    #[test]
    fn items_split_lists_and_type_extra_columns() {
        let (_d, path) = write(
            "\u{feff}id,title,categories,tags,price,zip,on_sale,hidden,description\n\
             sku-1,\"Caf\u{e9} table, oak\",furniture|kitchen,oak| round ,129.90,00501,true,false,Solid\n\
             sku-2,,,,,,,maybe,\n"
                .as_bytes(),
        );
        let rows: Vec<_> = items(&path, &ByteCounter::new(), CsvOptions::default())
            .unwrap()
            .collect();
        let item = rows[0].1.as_ref().unwrap();
        assert_eq!(item.title.as_deref(), Some("Café table, oak"));
        assert_eq!(item.categories, ["furniture", "kitchen"]);
        assert_eq!(item.tags, ["oak", "round"]);
        assert_eq!(item.properties["price"], PropertyValue::Number(129.9));
        assert_eq!(
            item.properties["zip"],
            PropertyValue::String("00501".into())
        );
        assert_eq!(item.properties["on_sale"], PropertyValue::Bool(true));
        assert!(!item.properties.contains_key("description"));
        assert_eq!(item.description.as_deref(), Some("Solid"));
        let bad = rows[1].1.as_ref().unwrap_err();
        assert_eq!(bad.line, 3);
        assert!(bad.message.contains("`maybe` is not a bool"), "{bad}");
    }

    #[test]
    fn item_windows_and_embeddings_are_read_and_checked() {
        let (_d, path) = write(
            b"id,available_from,available_until,embedding\n\
              a,1700000000,2024-01-01T00:00:00Z,0.5|-1|2e-3\n\
              b,1700000000,1600000000,\n\
              c,,,1|x\n",
        );
        let rows: Vec<_> = items(&path, &ByteCounter::new(), CsvOptions::default())
            .unwrap()
            .collect();
        let a = rows[0].1.as_ref().unwrap();
        assert_eq!(a.available_from.unwrap().0, 1_700_000_000);
        assert_eq!(a.available_until.unwrap().0, 1_704_067_200);
        assert_eq!(a.embedding.as_deref(), Some(&[0.5, -1.0, 0.002][..]));
        let b = rows[1].1.as_ref().unwrap_err();
        assert!(b.message.contains("available_until: must be later"), "{b}");
        let c = rows[2].1.as_ref().unwrap_err();
        assert!(
            c.message
                .contains("column `embedding`: `x` is not a number"),
            "{c}"
        );
    }

    #[test]
    fn non_utf8_cells_are_row_errors() {
        let (_d, path) = write(b"id,title\na,Caf\xe9\nb,ok\n");
        let rows: Vec<_> = items(&path, &ByteCounter::new(), CsvOptions::default())
            .unwrap()
            .collect();
        assert!(rows[0].1.as_ref().unwrap_err().message.contains("UTF-8"));
        assert!(rows[1].1.is_ok());
    }

    #[test]
    fn text_cells_may_span_lines_and_a_runaway_quote_costs_one_row() {
        let (_d, path) = write(
            b"id,title,description,categories,price\n\
              a,\"Unterminated title,,furniture,19\n\
              b,Lamp,\"Bright.\n\nWarm.\",lighting,5\n\
              c,Chair,,\"furniture\n\",7\n\
              d,Desk,,office,9\n",
        );
        let rows: Vec<_> = items(&path, &ByteCounter::new(), CsvOptions::default())
            .unwrap()
            .collect();
        let lines: Vec<(u64, bool)> = rows.iter().map(|(l, r)| (*l, r.is_ok())).collect();
        // Line 2's quote never closes; the lamp spans lines 3 to 5; line 6's quote opens in
        // `categories`, which is not free text, and line 7 (`",7`) is then read alone: its quote too
        // is never closed.
        assert_eq!(
            lines,
            [(2, false), (3, true), (6, false), (7, false), (8, true)]
        );
        let title = rows[0].1.as_ref().unwrap_err();
        assert!(title.message.contains("column `title`"), "{title}");
        let lamp = rows[1].1.as_ref().unwrap();
        assert_eq!(lamp.description.as_deref(), Some("Bright.\n\nWarm."));
        let categories = rows[2].1.as_ref().unwrap_err();
        assert!(
            categories.message.contains("column `categories`"),
            "{categories}"
        );
        assert_eq!(rows[4].1.as_ref().unwrap().id, "d");
    }

    #[test]
    fn users_get_typed_properties() {
        let (_d, path) = write(b"id,age,country\nu1,34,FR\n,5,DE\n");
        let rows: Vec<_> = users(&path, &ByteCounter::new(), CsvOptions::default())
            .unwrap()
            .collect();
        let u = rows[0].1.as_ref().unwrap();
        assert_eq!(u.properties["age"], PropertyValue::Number(34.0));
        assert_eq!(u.properties["country"].as_str(), Some("FR"));
        assert_eq!(rows[1].1.as_ref().unwrap_err().line, 3);
    }

    mod round_trip {
        use super::*;
        use proptest::prelude::*;

        fn id() -> impl Strategy<Value = String> {
            // Commas, quotes and pipes force the writer to quote; ids never start or end with blanks
            // because the reader trims cells.
            "[a-z0-9][a-z0-9 ,\"|é-]{0,12}[a-z0-9]"
        }

        fn event() -> impl Strategy<Value = Event> {
            (
                id(),
                id(),
                prop::sample::select(vec!["view", "click", "rating", "purchase"]),
                prop::option::of(0u32..=10),
                prop::option::of(0i64..4_000_000_000),
                prop::option::of(id()),
            )
                .prop_map(|(user, item, kind, half_stars, ts, event_id)| {
                    let mut e = Event::new(user, item, kind);
                    e.value = half_stars.map(|h| f64::from(h) / 2.0);
                    e.timestamp = ts.map(cairn_core::Timestamp);
                    e.event_id = event_id;
                    e
                })
        }

        proptest! {
            #[test]
            fn events_written_as_csv_read_back_equal(events in prop::collection::vec(event(), 0..20)) {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("e.csv");
                let mut w = csv::Writer::from_path(&path).unwrap();
                w.write_record(["user_id", "item_id", "type", "value", "timestamp", "event_id"]).unwrap();
                for e in &events {
                    w.write_record([
                        e.user_id.clone(),
                        e.item_id.clone(),
                        e.event_type.clone(),
                        e.value.map(|v| v.to_string()).unwrap_or_default(),
                        e.timestamp.map(|t| t.0.to_string()).unwrap_or_default(),
                        e.event_id.clone().unwrap_or_default(),
                    ]).unwrap();
                }
                w.flush().unwrap();
                drop(w);
                let read: Vec<Event> = super::events(&path, &ByteCounter::new(), CsvOptions::default())
                    .unwrap()
                    .map(|(_, r)| r.unwrap())
                    .collect();
                prop_assert_eq!(read, events);
            }
        }
    }
}
