//! Fuzzing the filter language with arbitrary text and generated pathological expressions: deep
//! nesting of every construct, chains and lists that fill the whole source limit, escape-heavy
//! strings, sources just under and over [`MAX_SOURCE_BYTES`]. Whatever the input:
//!
//! - parsing never panics, and runs on a thread with a small stack (128 KiB), so a recursion that
//!   the depth limit does not bound would overflow it and abort the test;
//! - a source over [`MAX_SOURCE_BYTES`] is refused as `TooLong`, parentheses and `not`s nested
//!   deeper than [`MAX_DEPTH`] as `TooDeep`, and every error points inside the source;
//! - an expression that parses evaluates, without panicking, against items at the size limits of
//!   the catalog (100 categories, 1000 tags, a 4 KiB title, list properties) and users with history.
//!
//! The slowest parse and the slowest evaluation per item are printed (`--nocapture`), not asserted:
//! docs/RELIABILITY.md records them. Seeded; `CAIRN_FUZZ_CASES` sets the number of cases,
//! `CAIRN_FUZZ_SEED` the seed.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use cairn_core::{Item, PropertyValue, Scalar};
use cairn_expr::{parse_boost, parse_filter, ErrorKind, UserContext, MAX_DEPTH, MAX_SOURCE_BYTES};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

fn config(default: u32) -> Config {
    let cases = std::env::var("CAIRN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let seed = std::env::var("CAIRN_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0xf11_7e25);
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Words and symbols of the language, field names and near misses.
const TOKENS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "=",
    "===",
    "!",
    "&&",
    "||",
    "and",
    "or",
    "not",
    "in",
    "contains",
    "exists",
    "true",
    "false",
    "AND",
    "like",
    "price",
    "category",
    "categories",
    "tags",
    "title",
    "description",
    "id",
    "available_from",
    "seen",
    "user",
    "user.categories",
    "user.age",
    "item",
    "item.properties",
    "labels",
    "\"jazz\"",
    "'x'",
    "\"a\\\"b\"",
    "'\\u{1F600}'",
    "\"\\q\"",
    "\"",
    "'",
    "\\",
    "0",
    "1",
    "-2.5",
    "1e308",
    "1e999",
    "-0",
    "NaN",
    "1.2.3",
    "é",
    "item[\"a b\"]",
    "item[",
    "exists(",
    "-",
    "+",
    "\u{0}",
    "\t",
];

/// One construct repeated `n` times around or after a core condition.
fn pathological() -> BoxedStrategy<String> {
    let n = 0usize..400;
    prop_oneof![
        n.clone()
            .prop_map(|n| format!("{}price < 1{}", "(".repeat(n), ")".repeat(n))),
        n.clone().prop_map(|n| format!("{}seen", "not ".repeat(n))),
        n.clone()
            .prop_map(|n| format!("{}seen{}", "not (".repeat(n), ")".repeat(n))),
        n.clone()
            .prop_map(|n| format!("category in {}\"a\"{}", "[".repeat(n), "]".repeat(n))),
        n.clone().prop_map(|n| "exists(".repeat(n)),
        n.clone().prop_map(|n| "(".repeat(n)),
        n.clone()
            .prop_map(|n| format!("price < 1{}", ")".repeat(n))),
        n.clone().prop_map(|n| format!("a{}", ".b".repeat(n))),
        n.clone()
            .prop_map(|n| format!("item{}", "[\"x\"]".repeat(n))),
        n.clone().prop_map(|n| format!("price{}", " < 1".repeat(n))),
        n.clone().prop_map(|n| format!("\"{}\"", "\\\\".repeat(n))),
        n.clone()
            .prop_map(|n| format!("title contains \"{}\"", "\\u{41}".repeat(n))),
        // Chains and lists as long as the source allows, and a little longer.
        (1usize..400, proptest::sample::select(vec![" and ", " or "]))
            .prop_map(|(n, glue)| { vec!["tags == categories"; n].join(glue) }),
        (1usize..400, proptest::sample::select(vec![" and ", " or "]))
            .prop_map(|(n, glue)| { vec!["not (tags < user.categories)"; n].join(glue) }),
        (0usize..1200).prop_map(|n| {
            let list: Vec<String> = (0..n).map(|i| format!("\"c{i}\"")).collect();
            format!("category in [{}]", list.join(","))
        }),
        (0usize..1200).prop_map(|n| {
            let list: Vec<String> = (0..n).map(|i| i.to_string()).collect();
            format!(
                "price in [{}] or labels in [{}]",
                list.join(","),
                list.join(",")
            )
        }),
        (0usize..1200).prop_map(|n| format!("title contains \"{}\"", "ab".repeat(n))),
        // Sources right at the limit and just over it.
        (MAX_SOURCE_BYTES - 12..MAX_SOURCE_BYTES + 12)
            .prop_map(|len| format!("seen{}", " ".repeat(len - 4))),
        // Token soups.
        proptest::collection::vec(proptest::sample::select(TOKENS.to_vec()), 0..600)
            .prop_map(|t| t.join(" ")),
        proptest::collection::vec(proptest::sample::select(TOKENS.to_vec()), 0..600)
            .prop_map(|t| t.concat()),
        any::<String>(),
        proptest::collection::vec(any::<char>(), 0..5000).prop_map(|c| c.into_iter().collect()),
    ]
    .boxed()
}

/// Items at the size limits of the catalog, and an empty one.
fn items() -> Vec<Item> {
    let mut big = Item::new("big");
    big.categories = (0..100).map(|i| format!("cat-{i}")).collect();
    big.tags = (0..1000).map(|i| format!("tag-{i}")).collect();
    big.title = Some("ab".repeat(2048));
    big.description = Some("ba".repeat(50_000));
    big.properties
        .insert("price".into(), PropertyValue::Number(12.5));
    big.properties.insert(
        "labels".into(),
        PropertyValue::List((0..1000).map(|i| Scalar::Number(f64::from(i))).collect()),
    );
    big.properties
        .insert("b".into(), PropertyValue::String("x".repeat(4096)));
    let mut small = Item::new("small");
    small.categories = vec!["c1".into()];
    small
        .properties
        .insert("price".into(), PropertyValue::Bool(true));
    vec![big, small, Item::new("empty")]
}

/// Largest elapsed times seen, for the summary.
#[derive(Default)]
struct Slowest {
    parse: Duration,
    parse_src: String,
    eval_per_item: Duration,
    eval_src: String,
    parsed: u64,
    refused: BTreeMap<String, u64>,
}

fn excerpt(src: &str) -> String {
    let short: String = src.chars().take(60).collect();
    format!("{short:?} ({} bytes)", src.len())
}

/// Parses `src` on a thread with a small stack and checks the outcome; evaluates it when it parses.
fn check(src: String, slowest: &mut Slowest) -> Result<(), TestCaseError> {
    let probe = src.clone();
    let outcome = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(
            move || -> Result<(Duration, Option<Duration>, Option<ErrorKind>), String> {
                let started = Instant::now();
                let parsed = parse_filter(&probe);
                let parse_time = started.elapsed();
                // A boost parses the same expression; its factor is checked on its own.
                let boost = parse_boost(&probe, 1.5);
                if parsed.is_ok() != boost.is_ok() {
                    return Err("the filter and the boost of one expression disagree".into());
                }
                match parsed {
                    Err(e) => {
                        let limit = if e.kind == ErrorKind::TooLong {
                            MAX_SOURCE_BYTES
                        } else {
                            probe.len()
                        };
                        if e.position > limit || e.message.trim().is_empty() {
                            return Err(format!("error outside the source or empty: {e:?}"));
                        }
                        Ok((parse_time, None, Some(e.kind)))
                    }
                    Ok(filter) => {
                        let items = items();
                        let props: BTreeMap<String, PropertyValue> = [
                            ("age".to_string(), PropertyValue::Number(30.0)),
                            ("categories".to_string(), PropertyValue::String("x".into())),
                        ]
                        .into();
                        let seen: HashSet<&str> = ["big"].into();
                        let names: Vec<String> = (0..100).map(|i| format!("ucat-{i}")).collect();
                        let cats: HashSet<&str> = names.iter().map(String::as_str).collect();
                        let users = [
                            UserContext::anonymous(),
                            UserContext {
                                properties: &props,
                                seen_items: &seen,
                                categories: &cats,
                            },
                        ];
                        let started = Instant::now();
                        let mut evaluations = 0u32;
                        for item in &items {
                            for user in &users {
                                let _ = filter.matches(item, user);
                                evaluations += 1;
                            }
                        }
                        Ok((parse_time, Some(started.elapsed() / evaluations), None))
                    }
                }
            },
        )
        .expect("thread starts")
        .join()
        .map_err(|_| TestCaseError::fail(format!("panicked on {}", excerpt(&src))))?;
    let (parse_time, eval_time, refused) = outcome.map_err(TestCaseError::fail)?;
    if src.len() > MAX_SOURCE_BYTES {
        prop_assert_eq!(refused, Some(ErrorKind::TooLong), "{}", excerpt(&src));
    }
    if parse_time > slowest.parse {
        slowest.parse = parse_time;
        slowest.parse_src = excerpt(&src);
    }
    match (eval_time, refused) {
        (Some(t), _) => {
            slowest.parsed += 1;
            if t > slowest.eval_per_item {
                slowest.eval_per_item = t;
                slowest.eval_src = excerpt(&src);
            }
        }
        (None, Some(kind)) => *slowest.refused.entry(format!("{kind:?}")).or_default() += 1,
        (None, None) => {}
    }
    Ok(())
}

#[test]
fn pathological_filters_never_panic_and_stay_bounded() {
    let config = config(400);
    let cases = config.cases;
    let mut runner = TestRunner::new(config);
    let slowest = std::cell::RefCell::new(Slowest::default());
    runner
        .run(&pathological(), |src| check(src, &mut slowest.borrow_mut()))
        .unwrap();
    let s = slowest.into_inner();
    println!(
        "filter fuzz: {cases} cases, {} parsed, refused by kind {:?}; slowest parse {:?} on {}; \
         slowest evaluation per (item, user) {:?} on {}",
        s.parsed, s.refused, s.parse, s.parse_src, s.eval_per_item, s.eval_src
    );
}

#[test]
fn nesting_beyond_the_limit_is_refused_by_name() {
    for depth in [MAX_DEPTH, MAX_DEPTH + 1, 10_000] {
        let src = format!("{}price < 1{}", "(".repeat(depth), ")".repeat(depth));
        let nots = format!("{}seen", "not ".repeat(depth));
        for src in [src, nots] {
            let outcome = std::thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || {
                    parse_filter(&src)
                        .map(|_| ())
                        .map_err(|e| (e.kind, e.message))
                })
                .unwrap()
                .join()
                .expect("no stack overflow");
            match outcome {
                Ok(()) => assert!(depth <= MAX_DEPTH, "depth {depth} parsed"),
                Err((kind, message)) if depth > MAX_DEPTH && kind == ErrorKind::TooLong => {
                    assert!(message.contains("at most"), "{message}");
                }
                Err((kind, message)) => {
                    assert!(depth > MAX_DEPTH, "depth {depth}: {message}");
                    assert_eq!(kind, ErrorKind::TooDeep, "{message}");
                    assert!(message.contains(&MAX_DEPTH.to_string()), "{message}");
                }
            }
        }
    }
}
