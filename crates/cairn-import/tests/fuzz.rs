//! Fuzzing the importers: arbitrary bytes and near-valid files through every reader (generic CSV and
//! JSONL for items, users and events; the three MovieLens layouts). Whatever the input:
//!
//! - no reader panics;
//! - every bad row is an error that names its file and a line of that file (`file:line: message`),
//!   the same line as the row it stands for, and rows come in file order;
//! - on near-valid files (valid rows with bad rows mixed in) every valid row comes back, alone, at its
//!   own line and with its own values, and every bad row is exactly one error: a bad row before a
//!   valid one never loses it or merges it into itself.
//!
//! Seeded, so every run tests the same cases. `CAIRN_FUZZ_CASES` sets the number of cases of each
//! property (a few hundred by default, a few seconds in all) and `CAIRN_FUZZ_SEED` the seed, for long
//! runs (docs/RELIABILITY.md).

use std::path::{Path, PathBuf};

use cairn_core::{Event, Item};
use cairn_import::{
    read_events, read_items, read_users, ByteCounter, CsvOptions, Format, MovieLens, MovieLensKind,
    Row,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// `default` cases unless `CAIRN_FUZZ_CASES` says otherwise; the seed from `CAIRN_FUZZ_SEED`.
fn config(default: u32) -> Config {
    let cases = std::env::var("CAIRN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let seed = std::env::var("CAIRN_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x1a9e_5eed);
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

/// How many lines `bytes` has, as the readers number them (a last line without `\n` counts).
fn line_count(bytes: &[u8]) -> u64 {
    let breaks = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    breaks + u64::from(!bytes.is_empty() && bytes.last() != Some(&b'\n'))
}

/// The invariants every stream of rows keeps: each error is `file:line: message` with the row's own
/// line, a line of a file of `files` (with its line count); with `ordered`, lines strictly increase.
fn check_rows<T>(rows: &[Row<T>], files: &[(PathBuf, u64)], ordered: bool) -> Result<(), String> {
    let mut last = 0;
    for (line, row) in rows {
        if ordered && *line <= last {
            return Err(format!("line {line} after line {last}"));
        }
        last = *line;
        if let Err(e) = row {
            if e.line != *line {
                return Err(format!(
                    "row of line {line} has the error of line {}",
                    e.line
                ));
            }
            let Some((_, lines)) = files.iter().find(|(p, _)| *p == e.file) else {
                return Err(format!("error names an unknown file: {e}"));
            };
            if e.line == 0 || e.line > *lines {
                return Err(format!(
                    "line {} is not in the file ({lines} lines): {e}",
                    e.line
                ));
            }
            let shown = e.to_string();
            let prefix = format!("{}:{}: ", e.file.display(), e.line);
            if !shown.starts_with(&prefix) || e.message.trim().is_empty() {
                return Err(format!("error does not name its file and line: {shown:?}"));
            }
        }
    }
    Ok(())
}

/// Headers of every generic layout, to put structure in front of the fuzzed bytes.
const HEADERS: &[&str] = &[
    "user_id,item_id,type,value,timestamp,event_id,note\n",
    "id,title,description,categories,tags,hidden,available_from,available_until,embedding,price\n",
    "id,age,city\n",
    "userId,movieId,rating,timestamp\n",
    "movieId,title,genres\n",
    "userId,movieId\n",
    "",
];

/// Bytes that matter to the parsers, and some that do not.
const ALPHABET: &[u8] = b"\"\",,,\n\n\r|:\t ab1-.e{}[]\\\xff\xc3\xa9";

/// Arbitrary bytes, half of them after a plausible header and drawn mostly from [`ALPHABET`].
fn fuzzed_bytes() -> impl Strategy<Value = Vec<u8>> {
    let structured = (
        proptest::sample::select(HEADERS.to_vec()),
        proptest::collection::vec(
            prop_oneof![
                4 => proptest::sample::select(ALPHABET.to_vec()),
                1 => any::<u8>(),
            ],
            0..600,
        ),
    )
        .prop_map(|(header, body)| {
            let mut bytes = header.as_bytes().to_vec();
            bytes.extend(body);
            bytes
        });
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..600),
        3 => structured,
    ]
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write the fuzzed file");
    path
}

fn options(max_record_lines: usize) -> CsvOptions {
    CsvOptions { max_record_lines }
}

/// Every generic reader over `bytes`, as CSV and as JSONL.
fn all_generic_readers(bytes: &[u8], max_lines: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let counter = ByteCounter::new();
    for (name, format) in [("x.csv", Format::Csv), ("x.jsonl", Format::Jsonl)] {
        let path = write(dir.path(), name, bytes);
        let files = [(path.clone(), line_count(bytes))];
        if let Ok(rows) = read_events(&path, format, &counter, options(max_lines)) {
            check_rows(&rows.collect::<Vec<_>>(), &files, true)?;
        }
        if let Ok(rows) = read_items(&path, format, &counter, options(max_lines)) {
            check_rows(&rows.collect::<Vec<_>>(), &files, true)?;
        }
        if let Ok(rows) = read_users(&path, format, &counter, options(max_lines)) {
            check_rows(&rows.collect::<Vec<_>>(), &files, true)?;
        }
    }
    Ok(())
}

/// Small valid files of each MovieLens layout, so that a fuzzed file meets valid companions.
fn movielens_fixture(kind: MovieLensKind) -> Vec<(&'static str, &'static [u8])> {
    match kind {
        MovieLensKind::Ml100k => vec![
            (
                "u.item",
                b"1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n",
            ),
            ("u.user", b"1|24|M|technician|85711\n"),
            ("u.data", b"1\t1\t5\t874965758\n"),
        ],
        MovieLensKind::Latest => vec![
            ("movies.csv", b"movieId,title,genres\n1,Toy Story (1995),Comedy\n"),
            ("ratings.csv", b"userId,movieId,rating,timestamp\n1,1,4.5,964982703\n"),
            ("tags.csv", b"userId,movieId,tag,timestamp\n1,1,funny,1445714994\n"),
            ("links.csv", b"movieId,imdbId,tmdbId\n1,0114709,862\n"),
        ],
        MovieLensKind::Ml1m => vec![
            ("movies.dat", b"1::Toy Story (1995)::Animation|Comedy\n"),
            ("users.dat", b"1::F::1::10::48067\n"),
            ("ratings_users_1-2999.dat", b"1::1::5::978300760\n"),
            ("user_movie_pairs.csv", b"userId,movieId\n1,1\n2,1\n"),
            (
                "movies_extrainfos.dat",
                b"1::Toy Story::1995::G::22 Nov 1995::Animation::John Lasseter::Writers::Actors::Plot::http://p\n",
            ),
        ],
    }
}

/// Every reader of a MovieLens dataset of `kind` whose file number `which` holds `bytes` instead of
/// its valid content.
fn all_movielens_readers(kind: MovieLensKind, which: usize, bytes: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let fixture = movielens_fixture(kind);
    let which = which % fixture.len();
    let mut files = Vec::new();
    for (i, (name, content)) in fixture.iter().enumerate() {
        let content = if i == which { bytes } else { content };
        let path = write(dir.path(), name, content);
        files.push((path, line_count(content)));
    }
    // Also ml-1m's full ratings file, when the fuzzed file is its partial one.
    if kind == MovieLensKind::Ml1m && which == 2 {
        let path = write(dir.path(), "ratings.dat", bytes);
        files.push((path, line_count(bytes)));
    }
    let counter = ByteCounter::new();
    let dataset = MovieLens::open(dir.path(), kind);
    if let Ok(rows) = dataset.items(&counter) {
        check_rows(&rows, &files, false)?;
    }
    if let Ok(rows) = dataset.users(&counter) {
        check_rows(&rows.collect::<Vec<_>>(), &files, true)?;
    }
    if let Ok(rows) = dataset.events(&counter) {
        // ml-1m's events come from two files one after the other: each in order, not both.
        check_rows(
            &rows.collect::<Vec<_>>(),
            &files,
            kind != MovieLensKind::Ml1m,
        )?;
    }
    if kind == MovieLensKind::Ml1m {
        if let Ok(rows) = dataset.pairs(&counter) {
            check_rows(&rows.collect::<Vec<_>>(), &files, true)?;
        }
    }
    let _ = MovieLens::detect(dir.path());
    Ok(())
}

// ----- near-valid files -----

/// A word that starts with a letter or digit: what a valid cell starts with here. (A valid cell that
/// starts with a quote or a comma can legally continue a quote left open on an earlier line, as one
/// multi-line cell: CSV itself cannot tell those apart, so they are not generated.)
fn word() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9_-]{0,7}"
}

/// Free text for a text column: may hold commas, quotes and line breaks, then written quoted. It
/// starts with `n-` (so it is never read as a number or a bool) and ends with a letter or digit (so
/// trimming keeps it whole).
fn free_text() -> impl Strategy<Value = String> {
    ("[a-z ,\"\n.é]{0,20}", "[a-z0-9]{1,4}").prop_map(|(rest, end)| format!("n-{rest}{end}"))
}

/// A cell as CSV writes it: quoted (quotes doubled) when it holds a comma, quote or line break.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[derive(Debug, Clone, PartialEq)]
struct ValidEvent {
    user: String,
    item: String,
    kind: String,
    value: Option<f64>,
    timestamp: Option<i64>,
    note: Option<String>,
}

fn valid_event() -> impl Strategy<Value = ValidEvent> {
    (
        word(),
        word(),
        proptest::sample::select(vec!["view", "click", "purchase", "rating"]),
        proptest::option::of((0u32..20).prop_map(|v| f64::from(v) / 2.0)),
        proptest::option::of(0i64..2_000_000_000),
        proptest::option::of(free_text()),
    )
        .prop_map(|(user, item, kind, value, timestamp, note)| ValidEvent {
            user,
            item,
            kind: kind.to_string(),
            value,
            timestamp,
            note,
        })
}

impl ValidEvent {
    /// The CSV row of the header `user_id,item_id,type,value,timestamp,event_id,note`.
    fn csv(&self) -> String {
        format!(
            "{},{},{},{},{},,{}",
            self.user,
            self.item,
            self.kind,
            self.value.map(|v| v.to_string()).unwrap_or_default(),
            self.timestamp.map(|t| t.to_string()).unwrap_or_default(),
            self.note.as_deref().map(csv_cell).unwrap_or_default()
        )
    }

    fn json(&self) -> String {
        let mut event = Event::new(&self.user, &self.item, &self.kind);
        event.value = self.value;
        event.timestamp = self.timestamp.map(cairn_core::Timestamp);
        if let Some(note) = &self.note {
            event.context.insert(
                "note".into(),
                cairn_core::PropertyValue::String(note.clone()),
            );
        }
        serde_json::to_string(&event).unwrap()
    }

    fn matches(&self, event: &Event) -> bool {
        let note = event.context.get("note").and_then(|v| v.as_str());
        event.user_id == self.user
            && event.item_id == self.item
            && event.event_type == self.kind
            && event.value == self.value
            && event.timestamp.map(|t| t.0) == self.timestamp
            && note == self.note.as_deref().map(str::trim)
    }
}

/// Ways to spoil a valid CSV event row; each leaves a row that must be refused as one bad row.
#[derive(Debug, Clone, Copy)]
enum CsvDamage {
    /// A quote opened in the item id and never closed (ids may not span lines).
    OpenQuoteInId,
    /// A quote opened in the note, a text column, and never closed: the runaway quote.
    OpenQuoteInNote,
    /// Text after a quoted cell's closing quote.
    JunkAfterQuote,
    ExtraCells,
    EmptyUser,
    ValueNotANumber,
    TimestampNotATime,
    TimestampInMilliseconds,
    InvalidUtf8,
    ControlCharacterInId,
    ReservedEventId,
}

fn csv_damage() -> impl Strategy<Value = CsvDamage> {
    proptest::sample::select(vec![
        CsvDamage::OpenQuoteInId,
        CsvDamage::OpenQuoteInNote,
        CsvDamage::JunkAfterQuote,
        CsvDamage::ExtraCells,
        CsvDamage::EmptyUser,
        CsvDamage::ValueNotANumber,
        CsvDamage::TimestampNotATime,
        CsvDamage::TimestampInMilliseconds,
        CsvDamage::InvalidUtf8,
        CsvDamage::ControlCharacterInId,
        CsvDamage::ReservedEventId,
    ])
}

impl CsvDamage {
    /// The bad row, one line, made from `e`.
    fn csv_row(self, e: &ValidEvent) -> Vec<u8> {
        let (u, i, k) = (&e.user, &e.item, &e.kind);
        let row = match self {
            CsvDamage::OpenQuoteInId => format!("{u},\"{i},{k},,,,"),
            CsvDamage::OpenQuoteInNote => format!("{u},{i},{k},,,,\"{u} never closed"),
            CsvDamage::JunkAfterQuote => format!("{u},\"{i}\"x,{k},,,,"),
            CsvDamage::ExtraCells => format!("{u},{i},{k},,,,note,extra"),
            CsvDamage::EmptyUser => format!(",{i},{k},,,,"),
            CsvDamage::ValueNotANumber => format!("{u},{i},{k},lots,,,"),
            CsvDamage::TimestampNotATime => format!("{u},{i},{k},,yesterday,,"),
            CsvDamage::TimestampInMilliseconds => format!("{u},{i},{k},,1700000000000,,"),
            CsvDamage::InvalidUtf8 => {
                let mut bytes = format!("{u},{i}").into_bytes();
                bytes.extend(b"\xff\xfe");
                bytes.extend(format!(",{k},,,,").into_bytes());
                return bytes;
            }
            CsvDamage::ControlCharacterInId => format!("{u}\u{7},{i},{k},,,,"),
            CsvDamage::ReservedEventId => format!("{u},{i},{k},,,cairn-content:0,"),
        };
        row.into_bytes()
    }
}

/// Ways to spoil a JSONL event line.
#[derive(Debug, Clone, Copy)]
enum JsonDamage {
    Truncated,
    UnknownField,
    WrongType,
    MissingUser,
    EmptyItem,
    NotAnObject,
    InvalidUtf8,
    ValueTooLarge,
    TimestampOutOfRange,
}

fn json_damage() -> impl Strategy<Value = JsonDamage> {
    proptest::sample::select(vec![
        JsonDamage::Truncated,
        JsonDamage::UnknownField,
        JsonDamage::WrongType,
        JsonDamage::MissingUser,
        JsonDamage::EmptyItem,
        JsonDamage::NotAnObject,
        JsonDamage::InvalidUtf8,
        JsonDamage::ValueTooLarge,
        JsonDamage::TimestampOutOfRange,
    ])
}

impl JsonDamage {
    fn json_row(self, e: &ValidEvent) -> Vec<u8> {
        let (u, i, k) = (&e.user, &e.item, &e.kind);
        let row = match self {
            JsonDamage::Truncated => {
                let full = e.json().into_bytes();
                return full[..full.len() / 2].to_vec();
            }
            JsonDamage::UnknownField => {
                format!(r#"{{"user_id":"{u}","item_id":"{i}","type":"{k}","colour":"red"}}"#)
            }
            JsonDamage::WrongType => {
                format!(r#"{{"user_id":"{u}","item_id":["{i}"],"type":"{k}"}}"#)
            }
            JsonDamage::MissingUser => format!(r#"{{"item_id":"{i}","type":"{k}"}}"#),
            JsonDamage::EmptyItem => format!(r#"{{"user_id":"{u}","item_id":"","type":"{k}"}}"#),
            JsonDamage::NotAnObject => format!(r#"["{u}","{i}","{k}"]"#),
            JsonDamage::InvalidUtf8 => {
                let mut bytes = format!(r#"{{"user_id":"{u}"#).into_bytes();
                bytes.extend(b"\xc3\x28");
                bytes.extend(format!(r#"","item_id":"{i}","type":"{k}"}}"#).into_bytes());
                return bytes;
            }
            JsonDamage::ValueTooLarge => {
                format!(r#"{{"user_id":"{u}","item_id":"{i}","type":"{k}","value":1e300}}"#)
            }
            JsonDamage::TimestampOutOfRange => {
                format!(r#"{{"user_id":"{u}","item_id":"{i}","type":"{k}","timestamp":-5}}"#)
            }
        };
        row.into_bytes()
    }
}

/// One line (or record) of a near-valid file: a valid event, or a bad row made from one.
#[derive(Debug, Clone)]
enum Planned<D> {
    Valid(ValidEvent),
    Bad(D, ValidEvent),
    Blank,
}

fn planned<D: Clone + std::fmt::Debug>(
    damage: impl Strategy<Value = D>,
) -> impl Strategy<Value = Vec<Planned<D>>> {
    proptest::collection::vec(
        prop_oneof![
            6 => valid_event().prop_map(Planned::Valid),
            3 => (damage, valid_event()).prop_map(|(d, e)| Planned::Bad(d, e)),
            1 => Just(Planned::Blank),
        ],
        0..40,
    )
}

/// Writes the planned rows after `header`, one record each, and says at which line each starts.
fn lay_out<D>(
    header: &str,
    plan: &[Planned<D>],
    row: impl Fn(&Planned<D>) -> Vec<u8>,
) -> (Vec<u8>, Vec<u64>) {
    let mut bytes = header.as_bytes().to_vec();
    let mut starts = Vec::new();
    let mut line = line_count(&bytes) + 1;
    for p in plan {
        starts.push(line);
        let r = row(p);
        line += 1 + r.iter().filter(|&&b| b == b'\n').count() as u64;
        bytes.extend(r);
        bytes.push(b'\n');
    }
    (bytes, starts)
}

/// That the rows read are exactly the planned ones: each valid row at its line with its values, one
/// error at the line of each bad row, nothing for blank lines, nothing else.
fn expect_plan<D: std::fmt::Debug>(
    rows: &[Row<Event>],
    plan: &[Planned<D>],
    starts: &[u64],
) -> Result<(), String> {
    let expected: Vec<(u64, &Planned<D>)> = starts
        .iter()
        .copied()
        .zip(plan)
        .filter(|(_, p)| !matches!(p, Planned::Blank))
        .collect();
    let got: Vec<String> = rows
        .iter()
        .map(|(l, r)| match r {
            Ok(e) => format!("{l}: ok {} {}", e.user_id, e.item_id),
            Err(e) => format!("{l}: err {}", e.message),
        })
        .collect();
    if rows.len() != expected.len() {
        return Err(format!(
            "{} rows read where {} were written: {got:#?} / {expected:#?}",
            rows.len(),
            expected.len()
        ));
    }
    for ((line, row), (want_line, want)) in rows.iter().zip(&expected) {
        if line != want_line {
            return Err(format!(
                "row at line {line} where one starts at {want_line}: {got:#?}"
            ));
        }
        match (row, want) {
            (Ok(event), Planned::Valid(v)) if v.matches(event) => {}
            (Err(_), Planned::Bad(..)) => {}
            _ => return Err(format!("line {line}: read {row:?}, planned {want:?}")),
        }
    }
    Ok(())
}

const EVENTS_HEADER: &str = "user_id,item_id,type,value,timestamp,event_id,note\n";

fn near_valid_csv_events(plan: &[Planned<CsvDamage>], max_lines: usize) -> Result<(), String> {
    let (bytes, starts) = lay_out(EVENTS_HEADER, plan, |p| match p {
        Planned::Valid(e) => e.csv().into_bytes(),
        Planned::Bad(d, e) => d.csv_row(e),
        Planned::Blank => Vec::new(),
    });
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "events.csv", &bytes);
    let rows: Vec<_> = read_events(&path, Format::Csv, &ByteCounter::new(), options(max_lines))
        .map_err(|e| e.to_string())?
        .collect();
    check_rows(&rows, &[(path, line_count(&bytes))], true)?;
    // A valid note that spans more lines than allowed is a bad row too; only compare when none does.
    let longest = plan
        .iter()
        .filter_map(|p| match p {
            Planned::Valid(e) => e.note.as_ref().map(|n| n.matches('\n').count() + 1),
            _ => None,
        })
        .max()
        .unwrap_or(1);
    if longest <= max_lines {
        expect_plan(&rows, plan, &starts)?;
    }
    Ok(())
}

fn near_valid_jsonl_events(plan: &[Planned<JsonDamage>]) -> Result<(), String> {
    let (bytes, starts) = lay_out("", plan, |p| match p {
        Planned::Valid(e) => e.json().into_bytes(),
        Planned::Bad(d, e) => d.json_row(e),
        Planned::Blank => Vec::new(),
    });
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "events.jsonl", &bytes);
    let rows: Vec<_> = read_events(&path, Format::Jsonl, &ByteCounter::new(), options(100))
        .map_err(|e| e.to_string())?
        .collect();
    check_rows(&rows, &[(path, line_count(&bytes))], true)?;
    expect_plan(&rows, plan, &starts)
}

/// Ways to spoil a MovieLens rating line (any of the three layouts).
#[derive(Debug, Clone, Copy)]
enum RatingDamage {
    MissingField,
    ExtraField,
    RatingNotANumber,
    EmptyUser,
    TimestampNotATime,
    OpenQuote,
}

fn rating_damage() -> impl Strategy<Value = RatingDamage> {
    proptest::sample::select(vec![
        RatingDamage::MissingField,
        RatingDamage::ExtraField,
        RatingDamage::RatingNotANumber,
        RatingDamage::EmptyUser,
        RatingDamage::TimestampNotATime,
        RatingDamage::OpenQuote,
    ])
}

/// A rating of `e` in the layout of `kind`: its file name, header, and the line (valid or spoilt).
fn rating_line(kind: MovieLensKind, e: &ValidEvent, damage: Option<RatingDamage>) -> String {
    let sep = match kind {
        MovieLensKind::Ml100k => "\t",
        MovieLensKind::Ml1m => "::",
        MovieLensKind::Latest => ",",
    };
    let rating = e.value.unwrap_or(3.0).to_string();
    let ts = e.timestamp.unwrap_or(978_300_760).to_string();
    let mut f: Vec<String> = vec![e.user.clone(), e.item.clone(), rating, ts];
    match damage {
        None => {}
        Some(RatingDamage::MissingField) => {
            f.pop();
        }
        Some(RatingDamage::ExtraField) => f.push("9".into()),
        Some(RatingDamage::RatingNotANumber) => f[2] = "five".into(),
        Some(RatingDamage::EmptyUser) => f[0] = String::new(),
        Some(RatingDamage::TimestampNotATime) => f[3] = "noon".into(),
        Some(RatingDamage::OpenQuote) => match kind {
            // Quotes mean nothing in the `.dat` and `u.data` layouts: an open one spoils a number.
            MovieLensKind::Latest => f[1] = format!("\"{}", f[1]),
            _ => f[2] = format!("\"{}", f[2]),
        },
    }
    f.join(sep)
}

fn near_valid_ratings(kind: MovieLensKind, plan: &[Planned<RatingDamage>]) -> Result<(), String> {
    let (file, header) = match kind {
        MovieLensKind::Ml100k => ("u.data", ""),
        MovieLensKind::Ml1m => ("ratings.dat", ""),
        MovieLensKind::Latest => ("ratings.csv", "userId,movieId,rating,timestamp\n"),
    };
    // MovieLens ratings always carry a value and a time, and no note.
    let plan: Vec<Planned<RatingDamage>> = plan
        .iter()
        .map(|p| {
            let fill = |e: &ValidEvent| ValidEvent {
                kind: "rating".into(),
                value: Some(e.value.unwrap_or(3.0)),
                timestamp: Some(e.timestamp.unwrap_or(978_300_760)),
                note: None,
                ..e.clone()
            };
            match p {
                Planned::Valid(e) => Planned::Valid(fill(e)),
                Planned::Bad(d, e) => Planned::Bad(*d, fill(e)),
                Planned::Blank => Planned::Blank,
            }
        })
        .collect();
    let (bytes, starts) = lay_out(header, &plan, |p| match p {
        Planned::Valid(e) => rating_line(kind, e, None).into_bytes(),
        Planned::Bad(d, e) => rating_line(kind, e, Some(*d)).into_bytes(),
        Planned::Blank => Vec::new(),
    });
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), file, &bytes);
    let rows: Vec<_> = MovieLens::open(dir.path(), kind)
        .events(&ByteCounter::new())
        .map_err(|e| e.to_string())?
        .collect();
    check_rows(&rows, &[(path, line_count(&bytes))], true)?;
    expect_plan(&rows, &plan, &starts)
}

/// Items CSV: valid items around bad ones keep their ids, titles (which may span lines) and prices.
fn near_valid_csv_items(plan: &[(bool, String, String, u32)]) -> Result<(), String> {
    let mut bytes = b"id,title,hidden,price\n".to_vec();
    // Per row: its line, and the id, title and price of a valid one.
    type Expected = (u64, Option<(String, String, f64)>);
    let mut expected: Vec<Expected> = Vec::new();
    let mut line = 2;
    for (valid, id, title, price) in plan {
        let row = if *valid {
            format!("{id},{},false,{price}", csv_cell(title))
        } else {
            // A bool that is not one, and a title whose quote stays open to the end of the line.
            format!("{id},\"{title}\"\"x,maybe,{price}").replace('\n', " ")
        };
        let span = 1 + row.matches('\n').count() as u64;
        expected.push((
            line,
            valid.then(|| (id.clone(), title.trim().to_string(), f64::from(*price))),
        ));
        line += span;
        bytes.extend(row.into_bytes());
        bytes.push(b'\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "items.csv", &bytes);
    let rows: Vec<Row<Item>> = read_items(&path, Format::Csv, &ByteCounter::new(), options(100))
        .map_err(|e| e.to_string())?
        .collect();
    check_rows(&rows, &[(path, line_count(&bytes))], true)?;
    if rows.len() != expected.len() {
        return Err(format!(
            "{} rows for {} written: {rows:#?}",
            rows.len(),
            expected.len()
        ));
    }
    for ((line, row), (want_line, want)) in rows.iter().zip(&expected) {
        let ok = line == want_line
            && match (row, want) {
                (Ok(item), Some((id, title, price))) => {
                    item.id == *id
                        && item.title.as_deref() == Some(title.as_str())
                        && item.properties["price"].as_f64() == Some(*price)
                }
                (Err(_), None) => true,
                _ => false,
            };
        if !ok {
            return Err(format!(
                "line {line}: read {row:?}, planned line {want_line} {want:?}"
            ));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn generic_readers_take_arbitrary_bytes(
        bytes in fuzzed_bytes(),
        max_lines in proptest::sample::select(vec![1usize, 3, 100]),
    ) {
        prop_assert_eq!(all_generic_readers(&bytes, max_lines), Ok(()));
    }

    #[test]
    fn movielens_readers_take_arbitrary_bytes(
        bytes in fuzzed_bytes(),
        kind in proptest::sample::select(vec![
            MovieLensKind::Ml100k, MovieLensKind::Latest, MovieLensKind::Ml1m,
        ]),
        which in 0usize..5,
    ) {
        prop_assert_eq!(all_movielens_readers(kind, which, &bytes), Ok(()));
    }

    #[test]
    fn csv_events_keep_every_valid_row_around_bad_ones(
        plan in planned(csv_damage()),
        max_lines in proptest::sample::select(vec![1usize, 3, 100]),
    ) {
        prop_assert_eq!(near_valid_csv_events(&plan, max_lines), Ok(()));
    }

    #[test]
    fn jsonl_events_keep_every_valid_row_around_bad_ones(plan in planned(json_damage())) {
        prop_assert_eq!(near_valid_jsonl_events(&plan), Ok(()));
    }

    #[test]
    fn movielens_ratings_keep_every_valid_row_around_bad_ones(
        plan in planned(rating_damage()),
        kind in proptest::sample::select(vec![
            MovieLensKind::Ml100k, MovieLensKind::Latest, MovieLensKind::Ml1m,
        ]),
    ) {
        prop_assert_eq!(near_valid_ratings(kind, &plan), Ok(()));
    }

    #[test]
    fn csv_items_keep_every_valid_row_around_bad_ones(
        plan in proptest::collection::vec((any::<bool>(), word(), free_text(), 0u32..1000), 0..30),
    ) {
        prop_assert_eq!(near_valid_csv_items(&plan), Ok(()));
    }
}
