//! MovieLens "latest" (and 20M/25M, which share the layout): UTF-8 CSV files with headers.

use std::path::Path;

use cairn_core::{Event, Item, PropertyValue};

use super::{
    csv_rows, find_movie, id, movie_index, rating_row, set_title_and_year, with_side_errors,
    MovieLensKind,
};
use crate::error::{ImportError, RowError};
use crate::source::ByteCounter;
use crate::{Row, Rows};

pub fn items(dir: &Path, counter: &ByteCounter) -> Result<Vec<Row<Item>>, ImportError> {
    let movies_path = dir.join("movies.csv");
    let mut rows: Vec<Row<Item>> =
        csv_rows(&movies_path, &["movieId", "title", "genres"], counter)?
            .map(|(line, fields)| (line, located(fields, &movies_path, line, |f| movie(&f))))
            .collect();
    let index = movie_index(&rows);
    let mut side_errors = Vec::new();

    let tags_path = dir.join("tags.csv");
    if tags_path.is_file() {
        for (line, fields) in csv_rows(
            &tags_path,
            &["userId", "movieId", "tag", "timestamp"],
            counter,
        )? {
            let result = located(fields, &tags_path, line, |f| {
                let item = find_movie(&mut rows, &index, f[1].trim(), "movies.csv")?;
                add_tag(item, f[2].trim())
            });
            if let Err(e) = result {
                side_errors.push((line, Err(e)));
            }
        }
    }

    let links_path = dir.join("links.csv");
    if links_path.is_file() {
        for (line, fields) in csv_rows(&links_path, &["movieId", "imdbId", "tmdbId"], counter)? {
            let result = located(fields, &links_path, line, |f| {
                let item = find_movie(&mut rows, &index, f[0].trim(), "movies.csv")?;
                // Ids stay strings: IMDb ids have meaningful leading zeros.
                for (key, value) in [("imdb_id", f[1].trim()), ("tmdb_id", f[2].trim())] {
                    if !value.is_empty() {
                        item.properties
                            .insert(key.into(), PropertyValue::String(value.into()));
                    }
                }
                Ok(())
            });
            if let Err(e) = result {
                side_errors.push((line, Err(e)));
            }
        }
    }

    Ok(with_side_errors(rows, &movies_path, side_errors))
}

/// Applies `parse` to a row's fields, attaching the file and line to its error.
fn located<T>(
    fields: Result<Vec<String>, RowError>,
    path: &Path,
    line: u64,
    parse: impl FnOnce(Vec<String>) -> Result<T, String>,
) -> Result<T, RowError> {
    parse(fields?).map_err(|m| RowError::new(path, line, m))
}

fn add_tag(item: &mut Item, tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("the tag is empty".into());
    }
    if !item.tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
        item.tags.push(tag.to_string());
    }
    Ok(())
}

fn movie(f: &[String]) -> Result<Item, String> {
    let mut item = Item::new(id("movieId", &f[0])?);
    set_title_and_year(&mut item, f[1].trim());
    item.categories = crate::cells::list(&f[2])
        .into_iter()
        .filter(|g| g != "(no genres listed)")
        .collect();
    Ok(item)
}

pub fn events(dir: &Path, counter: &ByteCounter) -> Result<Rows<Event>, ImportError> {
    let path = dir.join("ratings.csv");
    let rows = csv_rows(
        &path,
        &["userId", "movieId", "rating", "timestamp"],
        counter,
    )?;
    Ok(Box::new(rows.map(move |(line, fields)| {
        let event = located(fields, &path, line, |f| {
            rating_row(MovieLensKind::Latest, "userId", "movieId", &f)
        });
        (line, event)
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::movielens::fixtures::write;
    use crate::MovieLens;

    #[test]
    fn joins_movies_tags_and_links_and_reads_half_star_ratings() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "movies.csv",
            "movieId,title,genres\n\
             1,Toy Story (1995),Adventure|Animation\n\
             29,\"City of Lost Children, The (Cité des enfants perdus, La) (1995)\",Drama|Sci-Fi\n\
             30,Nothing,(no genres listed)\n\
             ,Missing id,Drama\n"
                .as_bytes(),
        );
        write(
            dir.path(),
            "tags.csv",
            b"userId,movieId,tag,timestamp\n2,1,funny,1\n3,1,Funny,2\n3,1,pixar,2\n4,999,lost,3\n",
        );
        write(
            dir.path(),
            "links.csv",
            b"movieId,imdbId,tmdbId\n1,0114709,862\n29,0112682,\n",
        );
        write(
            dir.path(),
            "ratings.csv",
            b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,29,0.5,964982704\n1,30,,1\n",
        );
        let ml = MovieLens::detect(dir.path()).unwrap();
        let counter = ByteCounter::new();
        let items = ml.items(&counter).unwrap();
        let ok: Vec<&Item> = items.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
        assert_eq!(ok.len(), 3);
        assert_eq!(ok[0].tags, ["funny", "pixar"]);
        assert_eq!(ok[0].properties["imdb_id"].as_str(), Some("0114709"));
        assert_eq!(ok[0].properties["year"], PropertyValue::Number(1995.0));
        assert_eq!(
            ok[1].title.as_deref(),
            Some("City of Lost Children, The (Cité des enfants perdus, La) (1995)")
        );
        assert_eq!(ok[1].categories, ["Drama", "Sci-Fi"]);
        assert!(!ok[1].properties.contains_key("tmdb_id"));
        assert!(ok[2].categories.is_empty());
        let errors: Vec<String> = items
            .iter()
            .filter_map(|(_, r)| r.as_ref().err())
            .map(|e| e.to_string())
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].contains("movies.csv:5: movieId is empty"),
            "{errors:?}"
        );
        assert!(
            errors[1].contains("tags.csv:5: movie `999` is not in movies.csv"),
            "{errors:?}"
        );

        let events: Vec<_> = ml.events(&counter).unwrap().collect();
        assert_eq!(events[1].1.as_ref().unwrap().value, Some(0.5));
        assert_eq!(
            events[0].1.as_ref().unwrap().event_id.as_deref(),
            Some("ml-latest:1:1")
        );
        let bad = events[2].1.as_ref().unwrap_err();
        assert_eq!(bad.line, 4);
        assert!(bad.message.contains("rating"), "{bad}");
        assert!(ml.users(&counter).unwrap().next().is_none());
    }
}
