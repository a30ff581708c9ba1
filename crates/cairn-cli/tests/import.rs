//! `cairn import` and `cairn demo`, run as the real binary on a temporary data directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cairn_engine::{Config, Engine};

mod common;

fn cairn(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("CAIRN_LOG", "warn")
        .output()
        .expect("cairn runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs cairn and insists that it succeeded; returns stdout.
fn ok(data_dir: &Path, args: &[&str]) -> String {
    let out = cairn(data_dir, args);
    assert!(
        out.status.success(),
        "cairn {args:?} failed\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The number on the summary line `label:` of `stdout`, e.g. `count(out, "events stored")`.
fn count(stdout: &str, label: &str) -> usize {
    let prefix = format!("{label}:");
    let line = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `{label}` line in the summary:\n{stdout}"));
    line[prefix.len()..]
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("`{line}`: {e}"))
}

/// The exit status of a finished cairn.
fn status(out: &Output) -> i32 {
    out.status.code().expect("cairn exited, not killed")
}

/// (items, users, events) in the store, read by opening it after cairn exited.
fn stored(data_dir: &Path) -> (u64, u64, u64) {
    let engine = Engine::open(Config {
        data_dir: data_dir.to_path_buf(),
        ..Config::default()
    })
    .expect("the store opens");
    let s = engine.stats().expect("stats");
    (s.items, s.users, s.events)
}

struct Fixture {
    _dir: tempfile::TempDir,
    data: PathBuf,
    files: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(
        files.join("items.csv"),
        "id,title,categories,tags,price\n\
         a,Caf\u{e9} chair,furniture,oak|chair,79.5\n\
         b,Lamp,lighting,,19\n\
         c,\"Desk, large\",furniture|office,,249\n",
    )
    .unwrap();
    std::fs::write(
        files.join("users.jsonl"),
        "{\"id\":\"u1\",\"properties\":{\"country\":\"FR\"}}\n{\"id\":\"u2\"}\n",
    )
    .unwrap();
    Fixture {
        _dir: dir,
        data,
        files,
    }
}

fn write_events(f: &Fixture, name: &str, rows: &[&str]) -> String {
    let mut content = String::from("user_id,item_id,type,value,timestamp,event_id\n");
    for row in rows {
        content.push_str(row);
        content.push('\n');
    }
    let path = f.files.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_string()
}

fn path(f: &Fixture, name: &str) -> String {
    f.files.join(name).to_str().unwrap().to_string()
}

const GOOD_EVENTS: &[&str] = &[
    "u1,a,view,,1700000000,e1",
    "u1,b,click,,1700000100,e2",
    "u2,a,rating,4.5,1700000200,e3",
    "u2,c,purchase,,2023-11-15T10:00:00Z,e4",
];

#[test]
fn csv_and_jsonl_files_import_with_counts_and_reimport_is_idempotent() {
    let f = fixture();
    let out = ok(&f.data, &["import", "items", &path(&f, "items.csv")]);
    assert_eq!(
        (count(&out, "rows read"), count(&out, "items stored")),
        (3, 3)
    );
    let out = ok(&f.data, &["import", "users", &path(&f, "users.jsonl")]);
    assert_eq!(count(&out, "users stored"), 2, "{out}");
    let events = write_events(&f, "events.csv", GOOD_EVENTS);
    let out = ok(&f.data, &["import", "events", &events, "--train"]);
    assert_eq!(count(&out, "events stored"), 4, "{out}");
    assert_eq!(count(&out, "duplicates skipped"), 0, "{out}");
    assert_eq!(count(&out, "bad rows skipped"), 0, "{out}");
    assert!(out.contains("trained model"), "{out}");
    assert_eq!(stored(&f.data), (3, 2, 4));

    let out = ok(&f.data, &["import", "events", &events]);
    assert_eq!(count(&out, "events stored"), 0, "{out}");
    assert_eq!(count(&out, "duplicates skipped"), 4, "{out}");
    assert_eq!(stored(&f.data), (3, 2, 4));

    let engine = Engine::open(Config {
        data_dir: f.data.clone(),
        ..Config::default()
    })
    .unwrap();
    let chair = engine.get_item("a").unwrap();
    assert_eq!(chair.title.as_deref(), Some("Café chair"));
    assert_eq!(chair.properties["price"].as_f64(), Some(79.5));
    assert_eq!(
        engine.get_user("u1").unwrap().properties["country"].as_str(),
        Some("FR")
    );
}

#[test]
fn skip_reports_each_bad_row_with_file_and_line_and_imports_the_rest() {
    let f = fixture();
    ok(&f.data, &["import", "items", &path(&f, "items.csv")]);
    let events = write_events(
        &f,
        "events.csv",
        &[
            GOOD_EVENTS[0],
            "u1,zzz,view,,1700000000,e5",
            GOOD_EVENTS[1],
            "u2,a,rating,9,1700000200,e6",
            "u2,a,teleport,,1700000200,e7",
            GOOD_EVENTS[2],
        ],
    );
    let out = cairn(
        &f.data,
        &["import", "events", &events, "--on-error", "skip"],
    );
    // Stored with bad rows skipped: its own exit status, neither success nor failure (1).
    assert_eq!(status(&out), 3, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{events}:3: event item_id: item `zzz` does not exist"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{events}:5: event value: 9 is outside")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{events}:6: event type: unknown event type `teleport`"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("3 bad row(s) skipped"), "{stderr}");
    let stdout = text(&out.stdout);
    assert_eq!(count(&stdout, "rows read"), 6, "{stdout}");
    assert_eq!(count(&stdout, "events stored"), 3, "{stdout}");
    assert_eq!(count(&stdout, "bad rows skipped"), 3, "{stdout}");
    // The summary repeats the bad rows, each with its file and line.
    for line in [3, 5, 6] {
        assert!(
            stdout.contains(&format!("    {events}:{line}: event ")),
            "{stdout}"
        );
    }
    assert_eq!(stored(&f.data).2, 3);
}

#[test]
fn reject_imports_nothing_when_any_row_is_bad() {
    let f = fixture();
    ok(&f.data, &["import", "items", &path(&f, "items.csv")]);
    let mut rows = GOOD_EVENTS.to_vec();
    rows.push("u1,a,view,,not-a-time,e9");
    let events = write_events(&f, "events.csv", &rows);
    let out = cairn(
        &f.data,
        &["import", "events", &events, "--on-error", "reject"],
    );
    assert_eq!(status(&out), 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{events}:6: column `timestamp`")),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert_eq!(stored(&f.data), (3, 0, 0));

    // A bad item row rejects the items file as a whole too.
    std::fs::write(f.files.join("more.csv"), "id,hidden\nd,false\ne,perhaps\n").unwrap();
    let out = cairn(
        &f.data,
        &[
            "import",
            "items",
            &path(&f, "more.csv"),
            "--on-error",
            "reject",
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("more.csv:3: column `hidden`"));
    assert_eq!(stored(&f.data), (3, 0, 0));

    // The same file goes in whole once it is fixed.
    let events = write_events(&f, "events.csv", GOOD_EVENTS);
    ok(
        &f.data,
        &["import", "events", &events, "--on-error", "reject"],
    );
    assert_eq!(stored(&f.data), (3, 0, 4));
}

/// Issue 12: events without ids, imported twice.
#[test]
fn reimporting_events_without_ids_adds_nothing_unless_dedupe_is_none() {
    let f = fixture();
    ok(&f.data, &["import", "items", &path(&f, "items.csv")]);
    let mut content = String::from("user_id,item_id,type,value,timestamp\n");
    for row in [
        "u1,a,view,,1700000000",
        "u1,b,click,,1700000100",
        "u2,a,rating,4.5,1700000200",
        "u2,c,purchase,,",
    ] {
        content.push_str(row);
        content.push('\n');
    }
    let events = f.files.join("no-ids.csv");
    std::fs::write(&events, content).unwrap();
    let events = events.to_str().unwrap();

    let out = ok(&f.data, &["import", "events", events]);
    assert_eq!(count(&out, "events stored"), 4, "{out}");
    assert!(out.contains("dedupe: content"), "{out}");
    assert_eq!(stored(&f.data).2, 4);
    // The same file again, the row without a timestamp included: nothing new.
    let out = ok(&f.data, &["import", "events", events]);
    assert_eq!(count(&out, "events stored"), 0, "{out}");
    assert_eq!(count(&out, "duplicates skipped"), 4, "{out}");
    assert_eq!(stored(&f.data).2, 4);
    // `--dedupe none` stores every row again.
    let out = ok(&f.data, &["import", "events", events, "--dedupe", "none"]);
    assert_eq!(count(&out, "events stored"), 4, "{out}");
    assert_eq!(stored(&f.data).2, 8);

    // Two identical events in the same second are one event under `content`, two under `none`.
    let twice = write_events(
        &f,
        "twice.csv",
        &["u1,b,view,,1700000500,", "u1,b,view,,1700000500,"],
    );
    let out = ok(&f.data, &["import", "events", &twice]);
    assert_eq!(
        (
            count(&out, "events stored"),
            count(&out, "duplicates skipped")
        ),
        (1, 1),
        "{out}"
    );
    let out = ok(&f.data, &["import", "events", &twice, "--dedupe", "none"]);
    assert_eq!(count(&out, "events stored"), 2, "{out}");
    assert_eq!(stored(&f.data).2, 11);

    // JSONL events without ids are deduplicated the same way.
    let jsonl = f.files.join("no-ids.jsonl");
    std::fs::write(
        &jsonl,
        "{\"user_id\":\"u1\",\"item_id\":\"c\",\"type\":\"view\",\"timestamp\":1700000900}\n\
         {\"user_id\":\"u2\",\"item_id\":\"b\",\"type\":\"view\"}\n",
    )
    .unwrap();
    let jsonl = jsonl.to_str().unwrap();
    let out = ok(&f.data, &["import", "events", jsonl]);
    assert_eq!(count(&out, "events stored"), 2, "{out}");
    let out = ok(&f.data, &["import", "events", jsonl]);
    assert_eq!(count(&out, "duplicates skipped"), 2, "{out}");
    assert_eq!(stored(&f.data).2, 13);

    // The derived id is what the event log holds.
    let engine = Engine::open(Config {
        data_dir: f.data.clone(),
        ..Config::default()
    })
    .unwrap();
    let history = engine.user_events("u2", 10).unwrap();
    let rating = history.iter().find(|e| e.event_type == "rating").unwrap();
    let expected = cairn_core::Event::new("u2", "a", "rating")
        .with_value(4.5)
        .at(1_700_000_200)
        .content_id();
    assert_eq!(rating.event_id.as_deref(), Some(expected.as_str()));
}

/// Issue 14: an items file whose title opens a quote that never closes.
#[test]
fn an_unterminated_quote_in_a_title_costs_its_row_only() {
    let f = fixture();
    let items = f.files.join("quote.csv");
    std::fs::write(
        &items,
        "id,title,description,price\n\
         a,\"Unterminated title,,19\n\
         b,Lamp,\"Bright.\n\nWarm light.\",5\n\
         c,Chair,,7\n\
         d,\"Desk, large\",,9\n\
         e,Shelf,,11\n",
    )
    .unwrap();
    let items = items.to_str().unwrap();

    let out = cairn(&f.data, &["import", "items", items, "--on-error", "reject"]);
    assert_eq!(status(&out), 1, "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{items}:2: the quoted cell of column `title`")),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert_eq!(count(&text(&out.stdout), "bad rows"), 1);
    assert_eq!(stored(&f.data), (0, 0, 0));

    let out = cairn(&f.data, &["import", "items", items]);
    assert_eq!(status(&out), 3, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(count(&stdout, "rows read"), 5, "{stdout}");
    assert_eq!(count(&stdout, "items stored"), 4, "{stdout}");
    assert_eq!(count(&stdout, "bad rows skipped"), 1, "{stdout}");
    assert!(stdout.contains(&format!("{items}:2: ")), "{stdout}");
    assert_eq!(stored(&f.data), (4, 0, 0));
    let engine = Engine::open(Config {
        data_dir: f.data.clone(),
        ..Config::default()
    })
    .unwrap();
    assert!(engine.get_item("a").is_err());
    // A quoted description that closes keeps its line breaks; the desk keeps its comma.
    let lamp = engine.get_item("b").unwrap();
    assert_eq!(lamp.description.as_deref(), Some("Bright.\n\nWarm light."));
    assert_eq!(
        engine.get_item("d").unwrap().title.as_deref(),
        Some("Desk, large")
    );
    drop(engine);

    // With `--max-record-lines 1` no cell may span lines: the lamp's first line is a bad row, and the
    // lines after it are read as rows of their own.
    let out = cairn(
        &f.data,
        &["import", "items", items, "--max-record-lines", "1"],
    );
    assert_eq!(status(&out), 3);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "{items}:3: the quoted cell of column `description`"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("still open after 1 lines"), "{stdout}");
}

/// Issue 14: an events file with a quote left open, imported with `skip`: every row after it is read,
/// and the one bad row is the one reported.
#[test]
fn an_unterminated_quote_in_events_drops_no_row_unreported() {
    let f = fixture();
    ok(&f.data, &["import", "items", &path(&f, "items.csv")]);
    let mut rows = vec!["u1,\"a,view,,1700000000,e0"];
    let good: Vec<String> = (1..=7)
        .map(|i| format!("u{i},b,view,,{},e{i}", 1_700_000_000 + i))
        .collect();
    rows.extend(good.iter().map(String::as_str));
    let events = write_events(&f, "events.csv", &rows);

    let out = cairn(
        &f.data,
        &["import", "events", &events, "--on-error", "skip"],
    );
    assert_eq!(status(&out), 3, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{events}:2: the quoted cell of column `item_id` that opens on this line is not closed on it"
        )),
        "{stderr}"
    );
    let stdout = text(&out.stdout);
    assert_eq!(count(&stdout, "rows read"), 8, "{stdout}");
    assert_eq!(count(&stdout, "events stored"), 7, "{stdout}");
    assert_eq!(count(&stdout, "bad rows skipped"), 1, "{stdout}");
    assert_eq!(stored(&f.data).2, 7);

    let out = cairn(
        &f.data,
        &["import", "events", &events, "--on-error", "reject"],
    );
    assert_eq!(status(&out), 1);
    assert_eq!(stored(&f.data).2, 7);
}

#[test]
fn a_wrong_flag_value_is_a_usage_error() {
    let f = fixture();
    let out = cairn(
        &f.data,
        &[
            "import",
            "items",
            &path(&f, "items.csv"),
            "--dedupe",
            "maybe",
        ],
    );
    assert_eq!(status(&out), 2);
    assert!(
        text(&out.stderr).contains("content"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_data_directory_in_use_is_reported_as_such() {
    let f = fixture();
    let engine = Engine::open(Config {
        data_dir: f.data.clone(),
        ..Config::default()
    })
    .unwrap();
    let out = cairn(&f.data, &["import", "items", &path(&f, "items.csv")]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("in use by another Cairn process"),
        "{stderr}"
    );
    drop(engine);
}

#[test]
fn layout_and_format_errors_stop_before_anything_is_stored() {
    let f = fixture();
    std::fs::write(f.files.join("wrong.csv"), "user,item\nu1,a\n").unwrap();
    let out = cairn(&f.data, &["import", "events", &path(&f, "wrong.csv")]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no `user_id` column"),
        "{}",
        text(&out.stderr)
    );
    let out = cairn(&f.data, &["import", "items", &path(&f, "items.txt")]);
    assert!(
        text(&out.stderr).contains("--format"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn demo_fills_an_empty_directory_trains_and_refuses_a_full_one() {
    let f = fixture();
    let args = [
        "demo", "--users", "60", "--items", "150", "--events", "3000", "--seed", "3",
    ];
    let out = ok(&f.data, &args);
    assert!(out.contains("150 items, 60 users, 3000 events"), "{out}");
    assert!(out.contains("trained model"), "{out}");
    assert_eq!(stored(&f.data), (150, 60, 3000));

    let again = cairn(&f.data, &args);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already holds 3000 events"));

    let mut forced = args.to_vec();
    forced.push("--force");
    let out = ok(&f.data, &forced);
    assert!(out.contains("0 events (3000 duplicates)"), "{out}");
}

/// The shared MovieLens folder, when this checkout has it.
fn shared_dataset(name: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name);
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipped: {} is not here", dir.display());
        None
    }
}

#[test]
fn movielens_latest_small_imports_every_rating_and_movie() {
    let Some(dir) = shared_dataset("ml-latest-small") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let out = ok(
        data.path(),
        &[
            "import",
            "movielens",
            dir.to_str().unwrap(),
            "--on-error",
            "reject",
        ],
    );
    assert_eq!(count(&out, "items stored"), 9742, "{out}");
    assert_eq!(count(&out, "events stored"), 100_836, "{out}");
    assert_eq!(count(&out, "duplicates skipped"), 0, "{out}");
    assert_eq!(stored(data.path()), (9742, 0, 100_836));
}

#[test]
fn movielens_100k_imports_ratings_items_and_users() {
    let Some(dir) = shared_dataset("ml-100k") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let out = ok(data.path(), &["import", "movielens", dir.to_str().unwrap()]);
    assert_eq!(count(&out, "bad rows skipped"), 0, "{out}");
    assert_eq!(stored(data.path()), (1682, 943, 100_000));
    let engine = Engine::open(Config {
        data_dir: data.path().to_path_buf(),
        ..Config::default()
    })
    .unwrap();
    let toy_story = engine.get_item("1").unwrap();
    assert_eq!(toy_story.title.as_deref(), Some("Toy Story (1995)"));
    assert_eq!(toy_story.categories, ["Animation", "Children's", "Comedy"]);
    assert_eq!(
        engine.get_user("1").unwrap().properties["occupation"].as_str(),
        Some("technician")
    );
}

/// The demo exists to show recommendations that make sense: the engine trained on it must find
/// held-out purchases clearly more often than the popular list does.
#[test]
fn on_demo_data_the_engine_beats_popularity_on_held_out_purchases() {
    use std::collections::{HashMap, HashSet};

    use cairn_engine::RecommendRequest;
    use cairn_import::demo::{generate, DemoOptions};

    let data = generate(&DemoOptions {
        users: 300,
        items: 600,
        events: 20_000,
        seed: 11,
        now: cairn_core::now_unix(),
        days: 60,
    });
    let hidden: HashSet<&str> = data
        .items
        .iter()
        .filter(|i| i.hidden)
        .map(|i| i.id.as_str())
        .collect();
    // Each user's last purchase of a visible item is held out, with all their events on that item.
    let mut held_out: HashMap<&str, &str> = HashMap::new();
    for e in &data.events {
        if e.event_type == "purchase" && !hidden.contains(e.item_id.as_str()) {
            held_out.insert(&e.user_id, &e.item_id);
        }
    }
    let train: Vec<_> = data
        .events
        .iter()
        .filter(|e| held_out.get(e.user_id.as_str()) != Some(&e.item_id.as_str()))
        .cloned()
        .collect();
    let mut seen: HashMap<&str, HashSet<&str>> = HashMap::new();
    for e in &train {
        seen.entry(&e.user_id).or_default().insert(&e.item_id);
    }
    held_out.retain(|user, _| seen.get(user).is_some_and(|s| s.len() >= 3));
    assert!(held_out.len() > 100, "{} users to test", held_out.len());

    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    })
    .unwrap();
    engine.put_items(data.items.clone()).unwrap();
    engine.add_events(train.clone()).unwrap();
    engine.train().unwrap();

    let popular: Vec<String> = engine
        .popular(1000, None)
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.item_id)
        .collect();
    let (mut engine_hits, mut popular_hits) = (0, 0);
    for (user, target) in &held_out {
        let recs = engine
            .recommend(&RecommendRequest {
                user_id: user.to_string(),
                k: 10,
                exclude_seen: true,
                ..RecommendRequest::default()
            })
            .unwrap();
        engine_hits += usize::from(recs.items.iter().any(|r| r.item_id == *target));
        let user_seen = &seen[user];
        popular_hits += usize::from(
            popular
                .iter()
                .filter(|i| !user_seen.contains(i.as_str()))
                .take(10)
                .any(|i| i == target),
        );
    }
    println!(
        "held-out purchases found in the top 10: engine {engine_hits}, popular {popular_hits}, of {}",
        held_out.len()
    );
    assert!(
        engine_hits as f64 > 1.5 * popular_hits as f64 && engine_hits >= popular_hits + 10,
        "engine {engine_hits}, popular {popular_hits}"
    );
}

#[test]
fn logs_to_a_file_or_pipe_have_no_colour_codes() {
    let f = fixture();
    ok(&f.data, &["import", "items", &path(&f, "items.csv")]);
    let events = write_events(&f, "events.csv", GOOD_EVENTS);
    // stderr is a pipe here, as it is for a log file or a supervisor.
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--data-dir")
        .arg(&f.data)
        .args(["import", "events", &events, "--train"])
        .env("CAIRN_LOG", "info")
        .output()
        .expect("cairn runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = text(&out.stderr);
    assert!(
        log.contains("INFO"),
        "expected info lines in the log:\n{log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a piped log:\n{log:?}"
    );
}

#[test]
fn rejected_rows_and_batches_are_listed_on_the_dashboards_data_quality_page() {
    let f = fixture();
    ok(&f.data, &["import", "items", &path(&f, "items.csv")]);
    let events = write_events(
        &f,
        "events.csv",
        &[
            GOOD_EVENTS[0],
            "u1,zzz,view,,1700000000,e5",
            "u2,a,teleport,,1700000200,e7",
        ],
    );
    let out = cairn(&f.data, &["import", "events", &events]);
    assert_eq!(status(&out), 3, "{}", text(&out.stderr));

    let (mut server, base) = common::serve(&f.data);
    let http = reqwest::blocking::Client::new();
    // A batch the API refuses is recorded too, with its route and the index the error names.
    let refused = http
        .post(format!("{base}/v1/events"))
        .json(&serde_json::json!({"events": [
            {"user_id": "u1", "item_id": "a", "type": "view"},
            {"user_id": "u1", "item_id": "nope", "type": "view"}
        ]}))
        .send()
        .unwrap();
    assert_eq!(refused.status(), 400);
    let page = http.get(format!("{base}/drift")).send().unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        html.contains("id=\"import-error-count\">3</strong>"),
        "{html}"
    );
    assert!(html.contains(&format!("{events}:3")), "{html}");
    assert!(html.contains("item `zzz` does not exist"), "{html}");
    assert!(html.contains(&format!("{events}:4")), "{html}");
    assert!(html.contains("unknown event type `teleport`"), "{html}");
    assert!(html.contains("POST /v1/events [1]"), "{html}");
    assert!(html.contains("events[1].item_id"), "{html}");
    // Newest first: the refused batch, then the file's rows from the last.
    let at = |s: &str| html.find(s).unwrap();
    assert!(at("POST /v1/events") < at(&format!("{events}:4")));
    assert!(at(&format!("{events}:4")) < at(&format!("{events}:3")));
}
