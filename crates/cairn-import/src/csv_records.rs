//! The CSV reader of every CSV file Cairn imports: records split into cells, numbered by the line they
//! start on, with quoting checked so that one bad quote costs one row, never the rest of the file.
//!
//! Cells are separated by commas; a cell that starts with `"` is quoted, may contain commas and
//! quotes written twice (`""`), and ends at its closing quote, which must be followed by a comma or
//! the end of the line. A quote inside an unquoted cell is an ordinary character.
//!
//! A quoted cell may contain line breaks only in the columns the caller allows (free text: titles,
//! descriptions, properties) and only while its record spans at most `max_lines` lines. A quote
//! that opens and is not closed within those rules (the file ends inside it, the limit is reached, the
//! column may not hold line breaks, or the closing quote is followed by something other than a comma)
//! makes the line it opened on one bad row, and reading goes on with the next line: the lines a
//! runaway quote would have swallowed are read as rows of their own.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use crate::error::{ImportError, RowError};
use crate::source::{ByteCounter, Encoding, Lines};
use crate::Row;

/// How many lines one record may span by default: room for a long description, small enough that a
/// quote left open is found quickly.
pub const DEFAULT_MAX_RECORD_LINES: usize = 100;

/// What the reader may accept as a record that spans lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvOptions {
    /// The most lines one record may span (1: no line breaks inside cells at all).
    pub max_record_lines: usize,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            max_record_lines: DEFAULT_MAX_RECORD_LINES,
        }
    }
}

/// The records of a CSV file after its header.
pub struct Records {
    lines: Lines,
    /// Lines read ahead while following a quoted cell that turned out bad, to be read again.
    pending: VecDeque<(u64, Result<String, RowError>)>,
    path: PathBuf,
    header: Vec<String>,
    /// Per header column: may a quoted cell of it contain line breaks.
    multiline: Vec<bool>,
    max_lines: usize,
}

/// Opens `path` and reads its header row (one line; a BOM before it is dropped). Every column may
/// hold line breaks until [`Records::allow_line_breaks`] says which may.
pub fn open(
    path: &Path,
    counter: &ByteCounter,
    options: CsvOptions,
) -> Result<Records, ImportError> {
    let mut lines = Lines::open(path, Encoding::Utf8, counter)?;
    let header = loop {
        match lines.next() {
            None => return Err(ImportError::layout(path, "is empty; expected a header row")),
            Some((_, Ok(text))) if text.is_empty() => {}
            Some((_, Ok(text))) => break text,
            Some((_, Err(e))) => {
                return Err(ImportError::layout(path, format!("header {}", e.message)))
            }
        }
    };
    let mut parser = Parser::default();
    let names = match parser.feed(header.trim_start_matches('\u{feff}')) {
        Ok(true) => parser.fields,
        Ok(false) => {
            return Err(ImportError::layout(
                path,
                "the header row has a quote that is not closed on its line; close it",
            ))
        }
        Err(junk) => {
            return Err(ImportError::layout(
                path,
                format!(
                    "header row: the quoted name of column {} is followed by `{}`; a quoted cell ends at its closing quote",
                    junk.column + 1,
                    junk.found
                ),
            ))
        }
    };
    let header: Vec<String> = names.iter().map(|n| n.trim().to_string()).collect();
    Ok(Records {
        lines,
        pending: VecDeque::new(),
        path: path.to_path_buf(),
        multiline: vec![true; header.len()],
        header,
        max_lines: options.max_record_lines.max(1),
    })
}

impl Records {
    /// The header's column names, trimmed.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Which columns may hold line breaks inside a quoted cell: those for which `allowed(name)` holds.
    /// Cells beyond the header never may.
    pub fn allow_line_breaks(mut self, allowed: impl Fn(&str) -> bool) -> Self {
        self.multiline = self.header.iter().map(|name| allowed(name)).collect();
        self
    }

    fn next_line(&mut self) -> Option<(u64, Result<String, RowError>)> {
        self.pending.pop_front().or_else(|| self.lines.next())
    }

    /// Puts lines read ahead back, to be read again in order.
    fn put_back(&mut self, taken: Vec<(u64, Result<String, RowError>)>) {
        for line in taken.into_iter().rev() {
            self.pending.push_front(line);
        }
    }

    fn column(&self, index: usize) -> String {
        match self.header.get(index) {
            Some(name) => format!("`{name}`"),
            None => format!("number {} (beyond the header)", index + 1),
        }
    }

    fn bad(&self, line: u64, message: String) -> Option<Row<Vec<String>>> {
        Some((line, Err(RowError::new(&self.path, line, message))))
    }

    /// The rest of a record whose quoted cell is still open at the end of line `start`.
    fn continued(&mut self, start: u64, mut parser: Parser) -> Option<Row<Vec<String>>> {
        let mut taken: Vec<(u64, Result<String, RowError>)> = Vec::new();
        loop {
            let open = parser.fields.len();
            if !self.multiline.get(open).copied().unwrap_or(false) {
                let column = self.column(open);
                self.put_back(taken);
                return self.bad(
                    start,
                    format!(
                        "the quoted cell of column {column} that opens on this line is not closed on it, and only text columns may hold line breaks; close the quote, and write a quote inside a quoted cell as \"\""
                    ),
                );
            }
            if taken.len() + 1 >= self.max_lines {
                let column = self.column(open);
                let max = self.max_lines;
                self.put_back(taken);
                return self.bad(
                    start,
                    format!(
                        "the quoted cell of column {column} that opens on this line is still open after {max} lines; close the quote and write a quote inside a quoted cell as \"\", or raise --max-record-lines if the cell really is that long"
                    ),
                );
            }
            let Some((line, text)) = self.next_line() else {
                let column = self.column(open);
                self.put_back(taken);
                return self.bad(
                    start,
                    format!(
                        "the quoted cell of column {column} that opens on this line is never closed (the file ends inside it); close the quote, and write a quote inside a quoted cell as \"\""
                    ),
                );
            };
            let fed = match &text {
                Ok(t) => Ok(parser.feed(t)),
                Err(e) => Err(e.message.clone()),
            };
            taken.push((line, text));
            match fed {
                Err(e) => {
                    let column = self.column(open);
                    let message = format!(
                        "the quoted cell of column {column} that opens on this line runs into line {line}, which cannot be read ({e}); close the quote on its own line"
                    );
                    self.put_back(taken);
                    return self.bad(start, message);
                }
                Ok(Err(junk)) => {
                    let column = self.column(junk.column);
                    self.put_back(taken);
                    return self.bad(
                        start,
                        format!(
                            "the quoted cell of column {column} that opens on this line closes on line {line} followed by `{}` instead of a comma, so the quote is probably not closed where it should be; close it on this line, and write a quote inside a quoted cell as \"\"",
                            junk.found
                        ),
                    );
                }
                Ok(Ok(false)) => {}
                Ok(Ok(true)) if parser.fields.len() > self.header.len() => {
                    let found = parser.fields.len();
                    let expected = self.header.len();
                    self.put_back(taken);
                    return self.bad(
                        start,
                        format!(
                            "the quoted cell that opens on this line spans {} lines and leaves the row with {found} cells where the header names {expected}, so the quote is probably not closed where it should be; close it on this line, and write a quote inside a quoted cell as \"\"",
                            line - start + 1
                        ),
                    );
                }
                Ok(Ok(true)) => return Some((start, Ok(parser.fields))),
            }
        }
    }
}

impl Iterator for Records {
    type Item = Row<Vec<String>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (start, text) = self.next_line()?;
            let text = match text {
                Ok(t) if t.is_empty() => continue,
                Ok(t) => t,
                Err(e) => return Some((start, Err(e))),
            };
            let mut parser = Parser::default();
            return match parser.feed(&text) {
                Ok(true) => Some((start, Ok(parser.fields))),
                Ok(false) => self.continued(start, parser),
                Err(junk) => {
                    let column = self.column(junk.column);
                    self.bad(
                        start,
                        format!(
                            "the quoted cell of column {column} is followed by `{}` after its closing quote; a quoted cell ends at its closing quote, so write a quote inside it as \"\"",
                            junk.found
                        ),
                    )
                }
            };
        }
    }
}

/// Something other than a comma or the end of the line after a quoted cell's closing quote.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Junk {
    /// The 0-based column of the quoted cell.
    column: usize,
    found: char,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    StartCell,
    Unquoted,
    Quoted,
    /// Just after a quote inside a quoted cell: either its closing quote or the first of `""`.
    QuoteInQuoted,
}

/// Splits lines into cells; fed line after line while a quoted cell stays open.
#[derive(Debug, Default)]
struct Parser {
    fields: Vec<String>,
    cell: String,
    state: State,
}

impl Parser {
    /// Reads one line (without its terminator). `Ok(true)`: the record is complete; `Ok(false)`: a
    /// quoted cell is open at the end of the line, which it keeps as `\n`.
    fn feed(&mut self, line: &str) -> Result<bool, Junk> {
        for c in line.chars() {
            match (self.state, c) {
                (State::StartCell, '"') => self.state = State::Quoted,
                (State::StartCell | State::Unquoted | State::QuoteInQuoted, ',') => {
                    self.fields.push(std::mem::take(&mut self.cell));
                    self.state = State::StartCell;
                }
                (State::StartCell | State::Unquoted, c) => {
                    self.cell.push(c);
                    self.state = State::Unquoted;
                }
                (State::Quoted, '"') => self.state = State::QuoteInQuoted,
                (State::Quoted, c) => self.cell.push(c),
                (State::QuoteInQuoted, '"') => {
                    self.cell.push('"');
                    self.state = State::Quoted;
                }
                (State::QuoteInQuoted, found) => {
                    return Err(Junk {
                        column: self.fields.len(),
                        found,
                    })
                }
            }
        }
        if self.state == State::Quoted {
            self.cell.push('\n');
            return Ok(false);
        }
        self.fields.push(std::mem::take(&mut self.cell));
        self.state = State::StartCell;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(content: &str, max_lines: usize, text_columns: &[&str]) -> Vec<Row<Vec<String>>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, content).unwrap();
        let options = CsvOptions {
            max_record_lines: max_lines,
        };
        open(&path, &ByteCounter::new(), options)
            .unwrap()
            .allow_line_breaks(|name| text_columns.contains(&name))
            .collect()
    }

    type Good = Vec<(u64, Vec<String>)>;
    type Bad = Vec<(u64, String)>;

    /// `(line, cells)` of the good rows and `(line, message)` of the bad ones.
    fn split(rows: Vec<Row<Vec<String>>>) -> (Good, Bad) {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (line, row) in rows {
            match row {
                Ok(cells) => good.push((line, cells)),
                Err(e) => {
                    assert_eq!(e.line, line);
                    bad.push((line, e.message));
                }
            }
        }
        (good, bad)
    }

    fn cells(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn quoting_follows_the_usual_rules() {
        let rows = records(
            "id,title,price\n\
             a,\"Desk, large\",249\n\
             b,\"The \"\"Big\"\" one\",\n\
             c,6\" screen,9\n\
             \n\
             d,,\r\n\
             e\n",
            100,
            &["title"],
        );
        let (good, bad) = split(rows);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(
            good,
            [
                (2, cells(&["a", "Desk, large", "249"])),
                (3, cells(&["b", "The \"Big\" one", ""])),
                (4, cells(&["c", "6\" screen", "9"])),
                (6, cells(&["d", "", ""])),
                (7, cells(&["e"])),
            ]
        );
    }

    #[test]
    fn a_quoted_text_cell_may_span_lines_within_the_limit() {
        let content = "id,title,price\na,\"two\nlines\",5\nb,\"three\n\nlines\",6\nc,x,7\n";
        let (good, bad) = split(records(content, 100, &["title"]));
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(
            good,
            [
                (2, cells(&["a", "two\nlines", "5"])),
                (4, cells(&["b", "three\n\nlines", "6"])),
                (7, cells(&["c", "x", "7"])),
            ]
        );
        // With a limit of 2 lines the second record is too long: its first line is the bad row, and
        // the lines after it are read again as rows of their own (the empty line is skipped, and in
        // `lines",6` the quote is an ordinary character of an unquoted cell).
        let (good, bad) = split(records(content, 2, &["title"]));
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].0, 4);
        assert!(bad[0].1.contains("still open after 2 lines"), "{bad:?}");
        assert!(bad[0].1.contains("--max-record-lines"), "{bad:?}");
        assert_eq!(
            good,
            [
                (2, cells(&["a", "two\nlines", "5"])),
                (6, cells(&["lines\"", "6"])),
                (7, cells(&["c", "x", "7"])),
            ]
        );
    }

    #[test]
    fn an_unterminated_quote_costs_its_own_line_only() {
        // The items file: the title's quote never closes.
        let content = "id,title,price\n\
                       a,\"Unterminated title,19\n\
                       b,Lamp,5\n\
                       c,Chair,7\n\
                       d,Desk,9\n";
        let (good, bad) = split(records(content, 100, &["title"]));
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].0, 2);
        assert!(bad[0].1.contains("column `title`"), "{bad:?}");
        assert!(bad[0].1.contains("never closed"), "{bad:?}");
        let ids: Vec<(u64, &str)> = good.iter().map(|(l, c)| (*l, c[0].as_str())).collect();
        assert_eq!(ids, [(3, "b"), (4, "c"), (5, "d")]);
    }

    #[test]
    fn a_runaway_quote_that_closes_later_before_junk_is_found() {
        // The opening quote of line 2 would close at `c,"` on line 4, followed by `D`.
        let content = "id,title,price\n\
                       a,\"Unterminated,19\n\
                       b,Lamp,5\n\
                       c,\"Desk, large\",249\n\
                       d,Chair,7\n";
        let (good, bad) = split(records(content, 100, &["title"]));
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].0, 2);
        assert!(
            bad[0].1.contains("closes on line 4 followed by `D`"),
            "{bad:?}"
        );
        let ids: Vec<(u64, &str)> = good.iter().map(|(l, c)| (*l, c[1].as_str())).collect();
        assert_eq!(ids, [(3, "Lamp"), (4, "Desk, large"), (5, "Chair")]);
    }

    #[test]
    fn a_runaway_quote_that_makes_too_many_cells_is_found() {
        let content = "id,title\na,\"Unterminated\nb,\",x,y\nc,ok\n";
        let (good, bad) = split(records(content, 100, &["title"]));
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert_eq!(bad[0].0, 2);
        assert!(
            bad[0].1.contains("4 cells where the header names 2"),
            "{bad:?}"
        );
        // Line 3 read alone: `b,",x,y` opens a quote that the file's end leaves open.
        assert_eq!(bad[1].0, 3);
        assert_eq!(good, [(4, cells(&["c", "ok"]))]);
    }

    #[test]
    fn only_text_columns_may_hold_line_breaks() {
        let content = "user_id,item_id,type,note\n\
                       u1,\"i1\n\
                       u1,i2,view,\"seen\n\
                       twice\"\n\
                       u2,i3,view,\n";
        let (good, bad) = split(records(content, 100, &["note"]));
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].0, 2);
        assert!(bad[0].1.contains("column `item_id`"), "{bad:?}");
        assert!(bad[0].1.contains("only text columns"), "{bad:?}");
        assert_eq!(
            good,
            [
                (3, cells(&["u1", "i2", "view", "seen\ntwice"])),
                (5, cells(&["u2", "i3", "view", ""])),
            ]
        );
        // A limit of one line allows no line breaks at all: line 3 is bad too, and line 4 is read
        // as a row of its own (whose quote is an ordinary character of an unquoted cell).
        let (good, bad) = split(records(content, 1, &["note"]));
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), [2, 3]);
        assert!(bad[1].1.contains("still open after 1 lines"), "{bad:?}");
        assert_eq!(good[0], (4, cells(&["twice\""])));
    }

    #[test]
    fn junk_after_a_closing_quote_is_a_bad_row() {
        let (good, bad) = split(records(
            "id,title\na,\"6\" screen\"\nb,ok\n",
            100,
            &["title"],
        ));
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].0, 2);
        assert!(bad[0].1.contains("followed by ` `"), "{bad:?}");
        assert!(bad[0].1.contains("\"\""), "{bad:?}");
        assert_eq!(good, [(3, cells(&["b", "ok"]))]);
    }

    #[test]
    fn unreadable_lines_inside_a_quote_are_reported_and_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, b"id,title\na,\"open\nb,Caf\xe9\nc,ok\n").unwrap();
        let rows: Vec<_> = open(&path, &ByteCounter::new(), CsvOptions::default())
            .unwrap()
            .allow_line_breaks(|n| n == "title")
            .collect();
        let (good, bad) = split(rows);
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), [2, 3]);
        assert!(bad[0].1.contains("runs into line 3"), "{bad:?}");
        assert!(bad[1].1.contains("UTF-8"), "{bad:?}");
        assert_eq!(good, [(4, cells(&["c", "ok"]))]);
    }

    #[test]
    fn headers_drop_a_bom_and_must_close_their_quotes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, "\u{feff}id, title \na,b\n").unwrap();
        let r = open(&path, &ByteCounter::new(), CsvOptions::default()).unwrap();
        assert_eq!(r.header(), ["id", "title"]);
        std::fs::write(&path, "id,\"title\na,b\n").unwrap();
        let err = open(&path, &ByteCounter::new(), CsvOptions::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("not closed"), "{err}");
        std::fs::write(&path, "").unwrap();
        let err = open(&path, &ByteCounter::new(), CsvOptions::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("is empty"), "{err}");
    }
}
