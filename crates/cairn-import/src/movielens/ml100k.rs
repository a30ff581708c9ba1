//! MovieLens 100K: `u.item` and `u.user` (ISO-8859-1, `|` separated) and `u.data` (tab separated).

use std::path::Path;
use std::sync::LazyLock;

use cairn_core::{Event, Item, PropertyValue, User};

use super::{id, rating_row, set_text_properties, split_exact, validated, MovieLensKind};
use crate::cells::year_in_title;
use crate::error::{ImportError, RowError};
use crate::source::{ByteCounter, Encoding, Lines};
use crate::{Row, Rows};

/// The genre flags of `u.item`, in column order (as listed in `u.genre`).
pub const GENRES: [&str; 19] = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

/// The columns of `u.item` before the genre flags.
const ITEM_LEADING_FIELDS: [&str; 5] = [
    "movie id",
    "title",
    "release date",
    "video release date",
    "IMDb URL",
];

/// Every column name of `u.item`: the leading fields, then one flag per genre.
static ITEM_FIELDS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| ITEM_LEADING_FIELDS.iter().chain(&GENRES).copied().collect());

/// Applies `parse` to every line of a file, attaching the file and line to its errors.
pub(super) fn parse_lines<T, F>(
    path: &Path,
    encoding: Encoding,
    counter: &ByteCounter,
    parse: F,
) -> Result<impl Iterator<Item = Row<T>> + Send + use<T, F>, ImportError>
where
    F: Fn(&str) -> Result<T, String> + Send,
{
    let lines = Lines::open(path, encoding, counter)?;
    let owned = path.to_path_buf();
    Ok(lines.filter_map(move |(line, text)| {
        let result = match text {
            Ok(t) if t.trim().is_empty() => return None,
            Ok(t) => parse(&t).map_err(|m| RowError::new(&owned, line, m)),
            Err(e) => Err(e),
        };
        Some((line, result))
    }))
}

/// [`parse_lines`] over a file that a dataset may lack: no file, no rows.
pub(super) fn parse_optional_file<T, F>(
    path: &Path,
    encoding: Encoding,
    counter: &ByteCounter,
    parse: F,
) -> Result<Rows<T>, ImportError>
where
    T: Send + 'static,
    F: Fn(&str) -> Result<T, String> + Send + 'static,
{
    if !path.is_file() {
        return Ok(Box::new(std::iter::empty()));
    }
    Ok(Box::new(parse_lines(path, encoding, counter, parse)?))
}

pub fn items(dir: &Path, counter: &ByteCounter) -> Result<Vec<Row<Item>>, ImportError> {
    Ok(parse_lines(&dir.join("u.item"), Encoding::Latin1, counter, item)?.collect())
}

fn item(line: &str) -> Result<Item, String> {
    let f = split_exact(line, "|", &ITEM_FIELDS)?;
    let mut item = Item::new(id("movie id", f[0])?);
    let title = f[1].trim();
    if !title.is_empty() {
        item.title = Some(title.to_string());
    }
    for (flag, genre) in f[5..].iter().zip(GENRES) {
        match flag.trim() {
            "1" => item.categories.push(genre.to_string()),
            "0" => {}
            other => {
                return Err(format!(
                    "genre flag `{genre}` is `{other}`; it must be 0 or 1"
                ))
            }
        }
    }
    let release = f[2].trim();
    if !release.is_empty() {
        item.properties
            .insert("release_date".into(), PropertyValue::String(release.into()));
    }
    let year = year_in_title(title).or_else(|| release.rsplit('-').next()?.parse().ok());
    if let Some(year) = year {
        item.properties
            .insert("year".into(), PropertyValue::Number(year));
    }
    let url = f[4].trim();
    if !url.is_empty() {
        item.properties
            .insert("imdb_url".into(), PropertyValue::String(url.into()));
    }
    validated("item", item)
}

pub fn users(dir: &Path, counter: &ByteCounter) -> Result<Rows<User>, ImportError> {
    parse_optional_file(&dir.join("u.user"), Encoding::Latin1, counter, user)
}

fn user(line: &str) -> Result<User, String> {
    let f = split_exact(
        line,
        "|",
        &["user id", "age", "gender", "occupation", "zip code"],
    )?;
    let mut user = User::new(id("user id", f[0])?);
    let age = crate::cells::number("age", f[1])?;
    user.properties
        .insert("age".into(), PropertyValue::Number(age));
    set_text_properties(
        &mut user.properties,
        [("gender", f[2]), ("occupation", f[3]), ("zip", f[4])],
    );
    validated("user", user)
}

pub fn events(dir: &Path, counter: &ByteCounter) -> Result<Rows<Event>, ImportError> {
    let rows = parse_lines(&dir.join("u.data"), Encoding::Utf8, counter, |line| {
        let f = split_exact(line, "\t", &["user id", "item id", "rating", "timestamp"])?;
        rating_row(MovieLensKind::Ml100k, "user id", "item id", &f)
    })?;
    Ok(Box::new(rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::movielens::fixtures::write;
    use crate::MovieLens;

    fn flags(on: &[usize]) -> String {
        (0..19)
            .map(|i| if on.contains(&i) { "1" } else { "0" })
            .collect::<Vec<_>>()
            .join("|")
    }

    #[test]
    fn reads_latin1_items_users_and_ratings() {
        let dir = tempfile::tempdir().unwrap();
        let mut u_item = format!(
            "1|Toy Story (1995)|01-Jan-1995||http://x/toy|{}\n",
            flags(&[3, 4, 5])
        )
        .into_bytes();
        u_item.extend_from_slice(b"2|Caf\xe9 Society (1995)|01-Jan-1995|||");
        u_item.extend_from_slice(flags(&[8]).as_bytes());
        u_item.extend_from_slice(b"\n3|Broken|01-Jan-1995\n");
        u_item.extend_from_slice(
            format!("4|Odd flags|||x|{}\n", flags(&[]).replacen('0', "7", 1)).as_bytes(),
        );
        write(dir.path(), "u.item", &u_item);
        write(
            dir.path(),
            "u.user",
            b"1|24|M|technician|85711\n2|x|F|other|00501\n3|53|F|other|T8H1N\n",
        );
        write(
            dir.path(),
            "u.data",
            b"1\t1\t5\t881250949\n1\t2\t3\t881250950\n1\t2\n2\t1\tfive\t881250949\n",
        );
        let ml = MovieLens::detect(dir.path()).unwrap();
        let counter = ByteCounter::new();

        let items = ml.items(&counter).unwrap();
        assert_eq!(items.len(), 4);
        let toy = items[0].1.as_ref().unwrap();
        assert_eq!(toy.categories, ["Animation", "Children's", "Comedy"]);
        assert_eq!(toy.properties["year"], PropertyValue::Number(1995.0));
        assert_eq!(toy.properties["imdb_url"].as_str(), Some("http://x/toy"));
        let cafe = items[1].1.as_ref().unwrap();
        assert_eq!(cafe.title.as_deref(), Some("Café Society (1995)"));
        assert_eq!(cafe.categories, ["Drama"]);
        let broken = items[2].1.as_ref().unwrap_err();
        assert_eq!(broken.line, 3);
        assert!(
            broken.message.contains("expected 24 `|`-separated fields"),
            "{broken}"
        );
        assert!(broken.to_string().contains("u.item:3: "), "{broken}");
        let odd = items[3].1.as_ref().unwrap_err();
        assert!(odd.message.contains("must be 0 or 1"), "{odd}");

        let users: Vec<_> = ml.users(&counter).unwrap().collect();
        let first = users[0].1.as_ref().unwrap();
        assert_eq!(first.properties["age"], PropertyValue::Number(24.0));
        assert_eq!(first.properties["zip"].as_str(), Some("85711"));
        assert_eq!(users[1].1.as_ref().unwrap_err().line, 2);
        assert_eq!(
            users[2].1.as_ref().unwrap().properties["zip"].as_str(),
            Some("T8H1N")
        );

        let events: Vec<_> = ml.events(&counter).unwrap().collect();
        assert_eq!(events.len(), 4);
        let e = events[0].1.as_ref().unwrap();
        assert_eq!(
            (
                e.user_id.as_str(),
                e.item_id.as_str(),
                e.event_type.as_str()
            ),
            ("1", "1", "rating")
        );
        assert_eq!((e.value, e.timestamp.unwrap().0), (Some(5.0), 881_250_949));
        assert_eq!(e.event_id.as_deref(), Some("ml-100k:1:1"));
        assert_eq!(events[2].1.as_ref().unwrap_err().line, 3);
        assert!(events[3]
            .1
            .as_ref()
            .unwrap_err()
            .message
            .contains("`five` is not a number"));
        let total: u64 = ml.total_bytes().unwrap();
        assert_eq!(counter.get(), total);
    }
}
