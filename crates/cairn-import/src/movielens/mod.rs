//! The MovieLens datasets, detected from the files in a directory:
//!
//! - **MovieLens 100K** (`u.data`, `u.item`, `u.user`): ratings become `rating` events; the 19 genre
//!   flags of `u.item` become categories; age, gender, occupation and zip become user properties.
//!   `u.item` and `u.user` are ISO-8859-1.
//! - **MovieLens latest** (`ratings.csv`, `movies.csv`, optional `tags.csv` and `links.csv`):
//!   `|`-separated genres become categories, free-text tags become item tags, links become
//!   `imdb_id`/`tmdb_id` properties. No user file exists, so no users are imported.
//! - **MovieLens 1M** (`movies.dat`, `users.dat`, and `ratings.dat`, or the partial
//!   `ratings_users_1-2999.dat` plus `user_movie_pairs.csv`): ratings become `rating` events with their
//!   timestamps. A pair of `user_movie_pairs.csv` that the ratings file does not cover becomes one
//!   `like` event (implicit, without value or timestamp, so the store stamps it with the import time);
//!   each (user, movie) pair is thus imported once. `movies_extrainfos.dat` (OMDb extras, UTF-8) adds
//!   the plot as description, director, actors, writer, rating, release and poster as properties and
//!   its genres as tags. `.dat` files other than the extras are ISO-8859-1.
//!
//! Every event gets the id `<dataset>:<user>:<movie>`, so importing the same files twice stores the
//! events once.

mod latest;
mod ml100k;
mod ml1m;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use cairn_core::{Event, Item, PropertyValue, User, Validate};

use crate::cells::year_in_title;
use crate::csv_records::{self, CsvOptions};
use crate::error::{ImportError, RowError};
use crate::source::{file_len, ByteCounter};
use crate::{Row, Rows};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovieLensKind {
    Ml100k,
    Latest,
    Ml1m,
}

impl MovieLensKind {
    pub fn name(self) -> &'static str {
        match self {
            MovieLensKind::Ml100k => "MovieLens 100K",
            MovieLensKind::Latest => "MovieLens latest",
            MovieLensKind::Ml1m => "MovieLens 1M",
        }
    }

    /// The prefix of event ids.
    fn id_prefix(self) -> &'static str {
        match self {
            MovieLensKind::Ml100k => "ml-100k",
            MovieLensKind::Latest => "ml-latest",
            MovieLensKind::Ml1m => "ml-1m",
        }
    }
}

/// A MovieLens dataset directory.
#[derive(Debug, Clone)]
pub struct MovieLens {
    dir: PathBuf,
    kind: MovieLensKind,
}

impl MovieLens {
    /// Recognises the dataset from the files in `dir`.
    pub fn detect(dir: &Path) -> Result<MovieLens, ImportError> {
        if !dir.is_dir() {
            return Err(ImportError::UnknownDataset {
                dir: dir.to_path_buf(),
                message: "it is not a directory".into(),
            });
        }
        let has = |name: &str| dir.join(name).is_file();
        let kind = if has("u.data") && has("u.item") {
            MovieLensKind::Ml100k
        } else if has("ratings.csv") && has("movies.csv") {
            MovieLensKind::Latest
        } else if has("movies.dat")
            && (has("ratings.dat") || has(ml1m::PARTIAL_RATINGS) || has(ml1m::PAIRS))
        {
            MovieLensKind::Ml1m
        } else {
            return Err(ImportError::UnknownDataset {
                dir: dir.to_path_buf(),
                message: "expected u.data + u.item (100K), ratings.csv + movies.csv (latest), \
                          or movies.dat + ratings.dat or user_movie_pairs.csv (1M)"
                    .into(),
            });
        };
        Ok(MovieLens {
            dir: dir.to_path_buf(),
            kind,
        })
    }

    /// A directory taken to hold `kind`, without [`MovieLens::detect`]'s checks, for a caller that
    /// chooses the files itself: `cairn eval --data` reads only the ratings (or pairs) file and, for
    /// genres, the movies file, so it needs neither the users nor every side file to be present.
    pub fn open(dir: &Path, kind: MovieLensKind) -> MovieLens {
        MovieLens {
            dir: dir.to_path_buf(),
            kind,
        }
    }

    pub fn kind(&self) -> MovieLensKind {
        self.kind
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The files an import reads, in the order it reads them.
    pub fn files(&self) -> Vec<PathBuf> {
        let names: &[&str] = match self.kind {
            MovieLensKind::Ml100k => &["u.item", "u.user", "u.data"],
            MovieLensKind::Latest => &["movies.csv", "tags.csv", "links.csv", "ratings.csv"],
            MovieLensKind::Ml1m => &[
                "movies.dat",
                ml1m::EXTRAS,
                "users.dat",
                "ratings.dat",
                ml1m::PARTIAL_RATINGS,
                ml1m::PAIRS,
            ],
        };
        let mut files: Vec<PathBuf> = names
            .iter()
            .map(|n| self.dir.join(n))
            .filter(|p| p.is_file())
            .collect();
        if self.kind == MovieLensKind::Ml1m && self.dir.join("ratings.dat").is_file() {
            files.retain(|p| !p.ends_with(ml1m::PARTIAL_RATINGS) && !p.ends_with(ml1m::PAIRS));
        }
        files
    }

    /// The file an event of [`MovieLens::events`] was read from, to name it in a message about the
    /// event (the events of MovieLens 1M come from two files).
    pub fn event_file(&self, event: &Event) -> PathBuf {
        let name = match self.kind {
            MovieLensKind::Ml100k => "u.data",
            MovieLensKind::Latest => "ratings.csv",
            MovieLensKind::Ml1m if self.dir.join("ratings.dat").is_file() => "ratings.dat",
            MovieLensKind::Ml1m if event.event_type == ml1m::PAIR_EVENT_TYPE => ml1m::PAIRS,
            MovieLensKind::Ml1m => ml1m::PARTIAL_RATINGS,
        };
        self.dir.join(name)
    }

    /// Total size of [`MovieLens::files`], for a progress bar.
    pub fn total_bytes(&self) -> Result<u64, ImportError> {
        self.files().iter().map(|p| file_len(p)).sum()
    }

    /// The movies, joined with their side files. Rows of side files that cannot be used come back as
    /// errors naming the side file.
    pub fn items(&self, counter: &ByteCounter) -> Result<Vec<Row<Item>>, ImportError> {
        match self.kind {
            MovieLensKind::Ml100k => ml100k::items(&self.dir, counter),
            MovieLensKind::Latest => latest::items(&self.dir, counter),
            MovieLensKind::Ml1m => ml1m::items(&self.dir, counter),
        }
    }

    pub fn users(&self, counter: &ByteCounter) -> Result<Rows<User>, ImportError> {
        match self.kind {
            MovieLensKind::Ml100k => ml100k::users(&self.dir, counter),
            MovieLensKind::Latest => Ok(Box::new(std::iter::empty())),
            MovieLensKind::Ml1m => ml1m::users(&self.dir, counter),
        }
    }

    pub fn events(&self, counter: &ByteCounter) -> Result<Rows<Event>, ImportError> {
        match self.kind {
            MovieLensKind::Ml100k => ml100k::events(&self.dir, counter),
            MovieLensKind::Latest => latest::events(&self.dir, counter),
            MovieLensKind::Ml1m => ml1m::events(&self.dir, counter),
        }
    }

    /// MovieLens 1M's `user_movie_pairs.csv` alone: every (user, movie) pair of the dataset as one
    /// implicit event, in file order, without the values of the partial ratings file. For callers that
    /// want all the pairs in one kind (evaluation), where [`MovieLens::events`] mixes ratings and pairs.
    pub fn pairs(&self, counter: &ByteCounter) -> Result<Rows<Event>, ImportError> {
        ml1m::pairs(&self.dir, counter)
    }
}

/// Splits a line into exactly `names.len()` fields, or says what was expected.
fn split_exact<'a>(line: &'a str, separator: &str, names: &[&str]) -> Result<Vec<&'a str>, String> {
    let fields: Vec<&str> = line.split(separator).collect();
    if fields.len() != names.len() {
        return Err(format!(
            "expected {} `{}`-separated fields ({}), found {}",
            names.len(),
            separator.escape_default(),
            names.join(", "),
            fields.len()
        ));
    }
    Ok(fields)
}

/// A non-empty id field.
fn id(name: &str, text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{name} is empty"));
    }
    Ok(text.to_string())
}

fn rating_event(
    kind: MovieLensKind,
    user: String,
    movie: String,
    rating: &str,
    timestamp: &str,
) -> Result<Event, String> {
    let value = crate::cells::number("rating", rating)?;
    let ts = crate::cells::timestamp("timestamp", timestamp)?;
    let mut event = Event::new(user, movie, "rating").with_value(value);
    event.timestamp = Some(ts);
    event.event_id = Some(format!(
        "{}:{}:{}",
        kind.id_prefix(),
        event.user_id,
        event.item_id
    ));
    Ok(event)
}

/// `value`, or the message of its failed validation prefixed with `kind` (`item`, `user`, `event`).
fn validated<T: Validate>(kind: &str, value: T) -> Result<T, String> {
    value.validate().map_err(|e| format!("{kind} {e}"))?;
    Ok(value)
}

/// One rating row of any MovieLens dataset: the fields user, movie, rating and timestamp, the first
/// two named `user_name` and `movie_name` in messages, as a validated `rating` event.
fn rating_row<S: AsRef<str>>(
    kind: MovieLensKind,
    user_name: &str,
    movie_name: &str,
    f: &[S],
) -> Result<Event, String> {
    let event = rating_event(
        kind,
        id(user_name, f[0].as_ref())?,
        id(movie_name, f[1].as_ref())?,
        f[2].as_ref(),
        f[3].as_ref(),
    )?;
    validated("event", event)
}

/// Sets an item's title (unless blank) and the year its title ends with, if any.
fn set_title_and_year(item: &mut Item, title: &str) {
    if !title.is_empty() {
        item.title = Some(title.to_string());
    }
    if let Some(year) = year_in_title(title) {
        item.properties
            .insert("year".into(), PropertyValue::Number(year));
    }
}

/// Sets each `(key, cell)` as a string property, trimmed, unless the cell is blank.
fn set_text_properties<'a>(
    properties: &mut BTreeMap<String, PropertyValue>,
    cells: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    for (key, value) in cells {
        if !value.trim().is_empty() {
            properties.insert(key.into(), PropertyValue::String(value.trim().into()));
        }
    }
}

/// Where each movie of `rows` that parsed sits, by id, for the side files to find it.
fn movie_index(rows: &[Row<Item>]) -> HashMap<String, usize> {
    rows.iter()
        .enumerate()
        .filter_map(|(i, (_, r))| r.as_ref().ok().map(|item| (item.id.clone(), i)))
        .collect()
}

/// The movie `id` of `rows`, or a message saying that `movies_file` lacks it.
fn find_movie<'a>(
    rows: &'a mut [Row<Item>],
    index: &HashMap<String, usize>,
    id: &str,
    movies_file: &str,
) -> Result<&'a mut Item, String> {
    index
        .get(id)
        .and_then(|&i| rows[i].1.as_mut().ok())
        .ok_or_else(|| format!("movie `{id}` is not in {movies_file}"))
}

/// The movies read from `movies_path`, each validated (a failure becomes that row's error), followed by
/// the errors of the side files.
fn with_side_errors(
    mut rows: Vec<Row<Item>>,
    movies_path: &Path,
    side_errors: Vec<Row<Item>>,
) -> Vec<Row<Item>> {
    for (line, row) in &mut rows {
        if let Ok(item) = row {
            if let Err(e) = item.validate() {
                *row = Err(RowError::new(movies_path, *line, format!("item {e}")));
            }
        }
    }
    rows.extend(side_errors);
    rows
}

/// The rows of a MovieLens CSV file after its header, which must be `expected`. No cell of these
/// files spans lines.
fn csv_rows(
    path: &Path,
    expected: &[&str],
    counter: &ByteCounter,
) -> Result<impl Iterator<Item = Row<Vec<String>>> + Send + use<>, ImportError> {
    let options = CsvOptions {
        max_record_lines: 1,
    };
    let records = csv_records::open(path, counter, options)?;
    let names = records.header();
    if names.len() < expected.len() || names[..expected.len()] != *expected {
        return Err(ImportError::layout(
            path,
            format!(
                "expected the MovieLens header `{}`, found `{}`",
                expected.join(","),
                names.join(",")
            ),
        ));
    }
    let width = expected.len();
    let owned = path.to_path_buf();
    Ok(records.map(move |(line, record)| {
        let fields = record.and_then(|fields| {
            if fields.len() == width {
                Ok(fields)
            } else {
                let message = format!("expected {width} fields, found {}", fields.len());
                Err(RowError::new(&owned, line, message))
            }
        });
        (line, fields)
    }))
}

#[cfg(test)]
pub(crate) mod fixtures {
    use std::path::Path;

    pub fn write(dir: &Path, name: &str, content: &[u8]) {
        std::fs::write(dir.join(name), content).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_names_the_dataset_or_says_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let err = MovieLens::detect(dir.path()).unwrap_err();
        assert!(err.to_string().contains("u.data"), "{err}");
        fixtures::write(dir.path(), "movies.dat", b"");
        fixtures::write(dir.path(), "user_movie_pairs.csv", b"");
        assert_eq!(
            MovieLens::detect(dir.path()).unwrap().kind(),
            MovieLensKind::Ml1m
        );
        fixtures::write(dir.path(), "ratings.csv", b"");
        fixtures::write(dir.path(), "movies.csv", b"");
        assert_eq!(
            MovieLens::detect(dir.path()).unwrap().kind(),
            MovieLensKind::Latest
        );
        fixtures::write(dir.path(), "u.data", b"");
        fixtures::write(dir.path(), "u.item", b"");
        assert_eq!(
            MovieLens::detect(dir.path()).unwrap().kind(),
            MovieLensKind::Ml100k
        );
    }

    #[test]
    fn split_exact_says_what_it_expected() {
        let err = split_exact("1::2", "::", &["user id", "movie id", "rating"]).unwrap_err();
        assert_eq!(
            err,
            "expected 3 `::`-separated fields (user id, movie id, rating), found 2"
        );
    }
}
