//! MovieLens 1M: `::`-separated `.dat` files (ISO-8859-1), the OMDb extras (UTF-8), and the implicit
//! `user_movie_pairs.csv` that stands in for the ratings of users the partial ratings file lacks.

use std::collections::HashSet;
use std::path::Path;

use cairn_core::{Event, Item, PropertyValue, Scalar, User};

use super::ml100k::{parse_lines, parse_optional_file};
use super::{
    csv_rows, find_movie, id, movie_index, rating_row, set_text_properties, set_title_and_year,
    split_exact, validated, with_side_errors, MovieLensKind,
};
use crate::cells::list;
use crate::error::{ImportError, RowError};
use crate::source::{ByteCounter, Encoding};
use crate::{Row, Rows};

pub const PARTIAL_RATINGS: &str = "ratings_users_1-2999.dat";
pub const PAIRS: &str = "user_movie_pairs.csv";
pub const EXTRAS: &str = "movies_extrainfos.dat";

/// The event type of a pair without a rating: the user chose to watch and rate the movie, which is
/// stronger than a view but says nothing of how they liked it.
pub const PAIR_EVENT_TYPE: &str = "like";

/// Occupation codes of `users.dat`, as documented in the dataset's README.
const OCCUPATIONS: [&str; 21] = [
    "other",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
];

const EXTRA_FIELDS: [&str; 11] = [
    "movie id", "title", "year", "rated", "released", "genre", "director", "writer", "actors",
    "plot", "poster",
];

pub fn items(dir: &Path, counter: &ByteCounter) -> Result<Vec<Row<Item>>, ImportError> {
    let movies_path = dir.join("movies.dat");
    let mut rows: Vec<Row<Item>> =
        parse_lines(&movies_path, Encoding::Latin1, counter, movie)?.collect();
    let index = movie_index(&rows);
    let mut side_errors = Vec::new();
    let extras_path = dir.join(EXTRAS);
    if extras_path.is_file() {
        let extras = parse_lines(&extras_path, Encoding::Utf8, counter, |line| {
            let f = split_exact(line, "::", &EXTRA_FIELDS)?;
            Ok(f.iter()
                .map(|s| s.trim().to_string())
                .collect::<Vec<String>>())
        })?;
        for (line, fields) in extras {
            let result = fields.and_then(|f| {
                let item = find_movie(&mut rows, &index, &f[0], "movies.dat")
                    .map_err(|m| RowError::new(&extras_path, line, m))?;
                add_extras(item, &f);
                Ok(())
            });
            if let Err(e) = result {
                side_errors.push((line, Err(e)));
            }
        }
    }
    Ok(with_side_errors(rows, &movies_path, side_errors))
}

fn movie(line: &str) -> Result<Item, String> {
    let f = split_exact(line, "::", &["movie id", "title", "genres"])?;
    let mut item = Item::new(id("movie id", f[0])?);
    set_title_and_year(&mut item, f[1].trim());
    item.categories = list(f[2]);
    Ok(item)
}

/// OMDb writes `N/A` for unknown values.
fn known(value: &str) -> Option<&str> {
    (!value.is_empty() && value != "N/A").then_some(value)
}

fn add_extras(item: &mut Item, f: &[String]) {
    if let Some(plot) = known(&f[9]) {
        item.description = Some(plot.to_string());
    }
    for (key, i) in [
        ("rated", 3),
        ("released", 4),
        ("director", 6),
        ("writer", 7),
        ("poster_url", 10),
    ] {
        if let Some(value) = known(&f[i]) {
            item.properties
                .insert(key.into(), PropertyValue::String(value.to_string()));
        }
    }
    if let Some(actors) = known(&f[8]) {
        let names = actors
            .split(", ")
            .filter(|a| !a.is_empty())
            .map(|a| Scalar::String(a.to_string()))
            .collect();
        item.properties
            .insert("actors".into(), PropertyValue::List(names));
    }
    if let Some(genres) = known(&f[5]) {
        for genre in genres.split(", ").filter(|g| !g.is_empty()) {
            if !item.tags.iter().any(|t| t == genre) {
                item.tags.push(genre.to_string());
            }
        }
    }
}

pub fn users(dir: &Path, counter: &ByteCounter) -> Result<Rows<User>, ImportError> {
    parse_optional_file(&dir.join("users.dat"), Encoding::Latin1, counter, user)
}

fn user(line: &str) -> Result<User, String> {
    let f = split_exact(
        line,
        "::",
        &["user id", "gender", "age", "occupation", "zip code"],
    )?;
    let mut user = User::new(id("user id", f[0])?);
    let age_group = crate::cells::number("age", f[2])?;
    user.properties
        .insert("age_group".into(), PropertyValue::Number(age_group));
    let occupation = f[3]
        .trim()
        .parse::<usize>()
        .ok()
        .and_then(|code| OCCUPATIONS.get(code))
        .ok_or_else(|| format!("occupation `{}` is not a code from 0 to 20", f[3].trim()))?;
    user.properties.insert(
        "occupation".into(),
        PropertyValue::String((*occupation).into()),
    );
    set_text_properties(&mut user.properties, [("gender", f[1]), ("zip", f[4])]);
    validated("user", user)
}

fn rating_line(line: &str) -> Result<Event, String> {
    let f = split_exact(line, "::", &["user id", "movie id", "rating", "timestamp"])?;
    rating_row(MovieLensKind::Ml1m, "user id", "movie id", &f)
}

pub fn events(dir: &Path, counter: &ByteCounter) -> Result<Rows<Event>, ImportError> {
    let full = dir.join("ratings.dat");
    if full.is_file() {
        return Ok(Box::new(parse_lines(
            &full,
            Encoding::Latin1,
            counter,
            rating_line,
        )?));
    }
    let partial = dir.join(PARTIAL_RATINGS);
    let ratings: Option<Rows<Event>> = if partial.is_file() {
        Some(Box::new(parse_lines(
            &partial,
            Encoding::Latin1,
            counter,
            rating_line,
        )?))
    } else {
        None
    };
    let pairs_path = dir.join(PAIRS);
    let pairs: Option<Rows<Vec<String>>> = if pairs_path.is_file() {
        Some(pair_rows(&pairs_path, counter)?)
    } else {
        None
    };
    Ok(Box::new(RatingsThenPairs {
        ratings,
        pairs,
        pairs_path: pairs_path.clone(),
        rated: HashSet::new(),
    }))
}

/// Every pair of `user_movie_pairs.csv` as an implicit event, in file order.
pub fn pairs(dir: &Path, counter: &ByteCounter) -> Result<Rows<Event>, ImportError> {
    let pairs_path = dir.join(PAIRS);
    Ok(Box::new(RatingsThenPairs {
        ratings: None,
        pairs: Some(pair_rows(&pairs_path, counter)?),
        pairs_path,
        rated: HashSet::new(),
    }))
}

fn pair_rows(path: &Path, counter: &ByteCounter) -> Result<Rows<Vec<String>>, ImportError> {
    Ok(Box::new(csv_rows(path, &["userId", "movieId"], counter)?))
}

/// Ratings first, remembering which (user, movie) pairs they cover; then the pairs they do not cover,
/// as implicit events. Each pair of the dataset thus becomes exactly one event.
struct RatingsThenPairs {
    ratings: Option<Rows<Event>>,
    pairs: Option<Rows<Vec<String>>>,
    pairs_path: std::path::PathBuf,
    rated: HashSet<(u32, u32)>,
}

fn numeric_pair(user: &str, movie: &str) -> Option<(u32, u32)> {
    Some((user.trim().parse().ok()?, movie.trim().parse().ok()?))
}

impl Iterator for RatingsThenPairs {
    type Item = Row<Event>;

    fn next(&mut self) -> Option<Row<Event>> {
        if let Some(ratings) = &mut self.ratings {
            match ratings.next() {
                Some((line, Ok(event))) => {
                    if let Some(key) = numeric_pair(&event.user_id, &event.item_id) {
                        self.rated.insert(key);
                    }
                    return Some((line, Ok(event)));
                }
                Some(bad) => return Some(bad),
                None => self.ratings = None,
            }
        }
        let pairs = self.pairs.as_mut()?;
        loop {
            let (line, fields) = pairs.next()?;
            let fields = match fields {
                Ok(f) => f,
                Err(e) => return Some((line, Err(e))),
            };
            let Some(key) = numeric_pair(&fields[0], &fields[1]) else {
                let message = format!(
                    "user id `{}` and movie id `{}` must be whole numbers",
                    fields[0], fields[1]
                );
                return Some((line, Err(RowError::new(&self.pairs_path, line, message))));
            };
            if self.rated.contains(&key) {
                continue;
            }
            let mut event = Event::new(key.0.to_string(), key.1.to_string(), PAIR_EVENT_TYPE);
            event.event_id = Some(format!(
                "{}:{}:{}",
                MovieLensKind::Ml1m.id_prefix(),
                key.0,
                key.1
            ));
            return Some((line, Ok(event)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::movielens::fixtures::write;
    use crate::MovieLens;

    #[test]
    fn reads_movies_extras_users_and_merges_ratings_with_pairs() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "movies.dat",
            b"1::Toy Story (1995)::Animation|Children's|Comedy\n2::Caf\xe9 au lait (1993)::Comedy\n3::Broken\n",
        );
        write(
            dir.path(),
            EXTRAS,
            "1::Toy Story::1995::G::22 Nov 1995::Animation, Adventure::John Lasseter::N/A::Tom Hanks, Tim Allen::A boy's toys come alive.::http://p/1.jpg\r\n\
             9::Ghost::1990::N/A::N/A::N/A::N/A::N/A::N/A::N/A::N/A\r\n"
                .as_bytes(),
        );
        write(
            dir.path(),
            "users.dat",
            b"1::F::1::10::48067\n2::M::56::99::70072\n",
        );
        write(
            dir.path(),
            PARTIAL_RATINGS,
            b"1::1::5::978300760\n1::2::2::978300761\n",
        );
        write(
            dir.path(),
            PAIRS,
            b"userId,movieId\n1,1\n1,2\n2,1\n3000,2\nx,1\n",
        );
        let ml = MovieLens::detect(dir.path()).unwrap();
        assert_eq!(ml.kind(), MovieLensKind::Ml1m);
        let counter = ByteCounter::new();

        let items = ml.items(&counter).unwrap();
        let toy = items[0].1.as_ref().unwrap();
        assert_eq!(toy.categories, ["Animation", "Children's", "Comedy"]);
        assert_eq!(toy.description.as_deref(), Some("A boy's toys come alive."));
        assert_eq!(toy.properties["director"].as_str(), Some("John Lasseter"));
        assert!(!toy.properties.contains_key("writer"));
        assert_eq!(
            toy.properties["actors"],
            PropertyValue::List(vec![
                Scalar::String("Tom Hanks".into()),
                Scalar::String("Tim Allen".into())
            ])
        );
        assert_eq!(toy.tags, ["Animation", "Adventure"]);
        assert_eq!(
            items[1].1.as_ref().unwrap().title.as_deref(),
            Some("Café au lait (1993)")
        );
        assert_eq!(items[2].1.as_ref().unwrap_err().line, 3);
        let ghost = items[3].1.as_ref().unwrap_err();
        assert!(
            ghost
                .to_string()
                .contains("movies_extrainfos.dat:2: movie `9`"),
            "{ghost}"
        );

        let users: Vec<_> = ml.users(&counter).unwrap().collect();
        let first = users[0].1.as_ref().unwrap();
        assert_eq!(
            first.properties["occupation"].as_str(),
            Some("K-12 student")
        );
        assert_eq!(first.properties["age_group"], PropertyValue::Number(1.0));
        assert!(users[1].1.as_ref().unwrap_err().message.contains("0 to 20"));

        let events: Vec<_> = ml.events(&counter).unwrap().collect();
        let summary: Vec<(u64, String)> = events
            .iter()
            .map(|(line, r)| match r {
                Ok(e) => (
                    *line,
                    format!("{}:{}:{}", e.user_id, e.item_id, e.event_type),
                ),
                Err(e) => (*line, format!("error {}", e.file.display())),
            })
            .collect();
        assert_eq!(
            summary,
            [
                (1, "1:1:rating".to_string()),
                (2, "1:2:rating".to_string()),
                (4, "2:1:like".to_string()),
                (5, "3000:2:like".to_string()),
                (6, format!("error {}", dir.path().join(PAIRS).display())),
            ]
        );
        let like = events[2].1.as_ref().unwrap();
        assert_eq!((like.timestamp, like.value), (None, None));
        assert_eq!(like.event_id.as_deref(), Some("ml-1m:2:1"));
    }
}
