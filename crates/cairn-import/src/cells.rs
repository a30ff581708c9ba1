//! Turning text cells into typed values. Shared by the CSV readers and the MovieLens readers.

use cairn_core::{PropertyValue, Timestamp};

/// The value of an extra column: a number when the text is one, `true`/`false` as a bool, otherwise the
/// text itself. Numbers with a leading zero (`00501`, a zip code) or a sign stay text, because reading
/// them as numbers would lose what the client wrote.
pub fn typed_value(text: &str) -> PropertyValue {
    if let Some(n) = plain_number(text) {
        return PropertyValue::Number(n);
    }
    match text {
        "true" | "TRUE" | "True" => PropertyValue::Bool(true),
        "false" | "FALSE" | "False" => PropertyValue::Bool(false),
        _ => PropertyValue::String(text.to_string()),
    }
}

fn plain_number(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let first = *bytes.first()?;
    let signed = first == b'-' && bytes.len() > 1;
    if !(first.is_ascii_digit() || signed) {
        return None;
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    let d = digits.as_bytes();
    if d.len() > 1 && d[0] == b'0' && d[1].is_ascii_digit() {
        return None;
    }
    if !d
        .iter()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
    {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A `|`-separated list cell, trimmed, without empty entries.
pub fn list(text: &str) -> Vec<String> {
    text.split('|')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub fn number(column: &str, text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| format!("column `{column}`: `{text}` is not a number"))
}

pub fn timestamp(column: &str, text: &str) -> Result<Timestamp, String> {
    Timestamp::parse(text).map_err(|e| format!("column `{column}`: {e}"))
}

pub fn boolean(column: &str, text: &str) -> Result<bool, String> {
    match text.trim() {
        "true" | "TRUE" | "True" | "1" | "yes" => Ok(true),
        "false" | "FALSE" | "False" | "0" | "no" => Ok(false),
        other => Err(format!(
            "column `{column}`: `{other}` is not a bool; write true or false"
        )),
    }
}

/// The year in a MovieLens title such as `Toy Story (1995)`.
pub fn year_in_title(title: &str) -> Option<f64> {
    let inner = title.trim_end().strip_suffix(')')?;
    let open = inner.rfind('(')?;
    let year = &inner[open + 1..];
    let digits = year.split('-').next()?;
    (digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_bools_and_text_are_told_apart() {
        assert_eq!(typed_value("12.5"), PropertyValue::Number(12.5));
        assert_eq!(typed_value("-3"), PropertyValue::Number(-3.0));
        assert_eq!(typed_value("0"), PropertyValue::Number(0.0));
        assert_eq!(typed_value("0.25"), PropertyValue::Number(0.25));
        assert_eq!(typed_value("1e3"), PropertyValue::Number(1000.0));
        assert_eq!(typed_value("true"), PropertyValue::Bool(true));
        assert_eq!(typed_value("00501"), PropertyValue::String("00501".into()));
        assert_eq!(typed_value("+7"), PropertyValue::String("+7".into()));
        assert_eq!(typed_value("inf"), PropertyValue::String("inf".into()));
        assert_eq!(typed_value("NaN"), PropertyValue::String("NaN".into()));
        assert_eq!(typed_value("-"), PropertyValue::String("-".into()));
        assert_eq!(typed_value("12 kg"), PropertyValue::String("12 kg".into()));
    }

    #[test]
    fn lists_drop_blanks() {
        assert_eq!(list(" a | b||c "), ["a", "b", "c"]);
        assert!(list("").is_empty());
    }

    #[test]
    fn years_come_from_the_end_of_titles() {
        assert_eq!(year_in_title("Toy Story (1995)"), Some(1995.0));
        assert_eq!(year_in_title("Babylon 5 (1994-1998) "), Some(1994.0));
        assert_eq!(year_in_title("Untitled"), None);
        assert_eq!(year_in_title("Film (abcd)"), None);
    }
}
