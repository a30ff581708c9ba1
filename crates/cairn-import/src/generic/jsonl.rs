//! JSONL: one JSON object per line; blank lines are allowed and ignored.

use std::path::Path;

use cairn_core::Validate;
use serde::de::DeserializeOwned;

use crate::error::{ImportError, RowError};
use crate::source::{ByteCounter, Encoding, Lines};
use crate::Rows;

pub fn rows<T>(
    path: &Path,
    kind: &'static str,
    counter: &ByteCounter,
) -> Result<Rows<T>, ImportError>
where
    T: DeserializeOwned + Validate + Send + 'static,
{
    let lines = Lines::open(path, Encoding::Utf8, counter)?;
    let path = path.to_path_buf();
    Ok(Box::new(lines.filter_map(move |(line, text)| {
        let text = match text {
            Ok(t) if t.trim().is_empty() => return None,
            Ok(t) => t,
            Err(e) => return Some((line, Err(e))),
        };
        let parsed = serde_json::from_str::<T>(&text)
            .map_err(|e| format!("not a valid {kind} object: {e}"))
            .and_then(|record| {
                record
                    .validate()
                    .map(|()| record)
                    .map_err(|e| format!("{kind} {e}"))
            });
        Some((line, parsed.map_err(|m| RowError::new(&path, line, m))))
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::{Event, Item};

    fn write(content: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        std::fs::write(&path, content).unwrap();
        (dir, path)
    }

    #[test]
    fn objects_parse_and_bad_lines_name_their_line() {
        let (_d, path) = write(concat!(
            "{\"user_id\":\"u1\",\"item_id\":\"i1\",\"type\":\"view\",\"timestamp\":1700000000}\n",
            "\n",
            "{\"user_id\":\"u1\",\"item_id\":\"i2\",\"type\":\"rating\",\"value\":4.5,\"timestamp\":\"2023-11-14T22:13:20Z\"}\n",
            "{\"user_id\":\"u1\",\"item\":\"i2\",\"type\":\"view\"}\n",
            "{\"user_id\":\"\",\"item_id\":\"i2\",\"type\":\"view\"}\n",
            "not json\n",
        ));
        let rows: Vec<_> = rows::<Event>(&path, "event", &ByteCounter::new())
            .unwrap()
            .collect();
        let lines: Vec<u64> = rows.iter().map(|r| r.0).collect();
        assert_eq!(lines, [1, 3, 4, 5, 6]);
        let first = rows[0].1.as_ref().unwrap();
        assert_eq!(
            (first.user_id.as_str(), first.timestamp.unwrap().0),
            ("u1", 1_700_000_000)
        );
        assert_eq!(rows[1].1.as_ref().unwrap().value, Some(4.5));
        let unknown_field = rows[2].1.as_ref().unwrap_err();
        assert_eq!(unknown_field.line, 4);
        assert!(unknown_field.message.contains("item"), "{unknown_field}");
        let empty_user = rows[3].1.as_ref().unwrap_err();
        assert!(
            empty_user.message.contains("user_id: must not be empty"),
            "{empty_user}"
        );
        assert!(rows[4].1.is_err());
    }

    #[test]
    fn items_keep_typed_properties() {
        let (_d, path) = write(
            "{\"id\":\"a\",\"categories\":[\"x\"],\"properties\":{\"price\":9.5,\"new\":true}}\n",
        );
        let rows: Vec<_> = rows::<Item>(&path, "item", &ByteCounter::new())
            .unwrap()
            .collect();
        let item = rows[0].1.as_ref().unwrap();
        assert_eq!(item.properties["price"].as_f64(), Some(9.5));
        assert_eq!(item.properties["new"].as_bool(), Some(true));
    }
}
