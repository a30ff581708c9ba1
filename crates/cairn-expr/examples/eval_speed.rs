//! Times filter evaluation over 100k generated items and prints ns/item, next to a hand-written Rust
//! predicate with the same meaning measured in the same run (the floor an interpreter is judged by).
//!
//! ```text
//! cargo run --release -p cairn-expr --example eval_speed [-- ITEMS [ROUNDS]]
//! ```

use std::collections::{BTreeMap, HashSet};
use std::hint::black_box;
use std::time::Instant;

use cairn_core::{Item, PropertyValue, Scalar};
use cairn_expr::{combined_factor, parse_boost, parse_filter, Filter, UserContext};

const CATEGORIES: [&str; 8] = [
    "jazz",
    "blues",
    "rock",
    "pop",
    "classical",
    "folk",
    "soul",
    "electronic",
];
const TAGS: [&str; 6] = ["vinyl", "remaster", "live", "box-set", "import", "signed"];

/// SplitMix64: deterministic items without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Items shaped like a record shop's catalog: 1–2 categories, 0–2 tags, a title, a price, a
/// new-release flag on some, a format and a few more properties so that lookups are not trivial.
fn catalog(n: usize) -> Vec<Item> {
    let mut rng = Rng(42);
    (0..n)
        .map(|i| {
            let mut item = Item::new(format!("item-{i}"));
            for _ in 0..1 + rng.below(2) {
                item.categories
                    .push(CATEGORIES[rng.below(CATEGORIES.len())].to_string());
            }
            for _ in 0..rng.below(3) {
                item.tags.push(TAGS[rng.below(TAGS.len())].to_string());
            }
            item.title = Some(format!("Album {} Blue {}", rng.below(1000), i % 7));
            let props = &mut item.properties;
            props.insert(
                "price".into(),
                PropertyValue::Number((rng.below(6000) as f64) / 100.0),
            );
            if rng.below(5) == 0 {
                props.insert("new_release".into(), PropertyValue::Bool(true));
            }
            props.insert(
                "format".into(),
                PropertyValue::String(["LP", "CD", "MC"][rng.below(3)].into()),
            );
            props.insert(
                "year".into(),
                PropertyValue::Number(1950.0 + rng.below(75) as f64),
            );
            props.insert(
                "label".into(),
                PropertyValue::String(format!("label-{}", rng.below(50))),
            );
            props.insert(
                "artists".into(),
                PropertyValue::List(vec![Scalar::String(format!("artist-{}", rng.below(500)))]),
            );
            item
        })
        .collect()
}

/// Best-of-`rounds` nanoseconds per item of `f` over all items, and how many it kept.
fn time_per_item(items: &[Item], rounds: usize, f: impl Fn(&Item) -> bool) -> (f64, usize) {
    let mut best = f64::INFINITY;
    let mut kept = 0;
    for _ in 0..rounds {
        let start = Instant::now();
        kept = items.iter().filter(|item| f(black_box(item))).count();
        let ns = start.elapsed().as_nanos() as f64 / items.len() as f64;
        best = best.min(ns);
    }
    (best, kept)
}

fn report(name: &str, src: &str, expr: (f64, usize), hand: (f64, usize)) {
    assert_eq!(
        expr.1, hand.1,
        "{name}: the expression and the hand-written predicate disagree"
    );
    println!(
        "{name:<10} {:>7.1} ns/item  (hand-written {:>5.1} ns/item)  kept {:>6}  {src}",
        expr.0, hand.0, expr.1
    );
}

fn parse_time_us(src: &str) -> f64 {
    let reps = 10_000;
    let start = Instant::now();
    for _ in 0..reps {
        black_box(parse_filter(black_box(src)).expect("valid"));
    }
    start.elapsed().as_secs_f64() * 1e6 / reps as f64
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    let items = catalog(n);

    let seen: HashSet<&str> = items.iter().step_by(97).map(|i| i.id.as_str()).collect();
    let history_categories: HashSet<&str> = ["jazz", "soul"].into_iter().collect();
    let properties = BTreeMap::from([("country".to_string(), PropertyValue::String("DE".into()))]);
    let user = UserContext {
        properties: &properties,
        seen_items: &seen,
        categories: &history_categories,
    };
    let price = |item: &Item| item.properties.get("price").and_then(PropertyValue::as_f64);

    println!("{n} items, best of {rounds} rounds");

    let typical = r#"category in ["jazz","blues"] and price < 20"#;
    let f: Filter = parse_filter(typical).expect("valid");
    report(
        "typical",
        typical,
        time_per_item(&items, rounds, |i| f.matches(i, &user)),
        time_per_item(&items, rounds, |i| {
            i.categories.iter().any(|c| c == "jazz" || c == "blues")
                && price(i).is_some_and(|p| p < 20.0)
        }),
    );

    let personal = "not seen and category in user.categories and price < 30";
    let f = parse_filter(personal).expect("valid");
    report(
        "personal",
        personal,
        time_per_item(&items, rounds, |i| f.matches(i, &user)),
        time_per_item(&items, rounds, |i| {
            !seen.contains(i.id.as_str())
                && i.categories
                    .iter()
                    .any(|c| history_categories.contains(c.as_str()))
                && price(i).is_some_and(|p| p < 30.0)
        }),
    );

    let text =
        r#"(title contains "Blue 3" or tags contains "vinyl") and format != "MC" and year >= 1970"#;
    let f = parse_filter(text).expect("valid");
    report(
        "text",
        text,
        time_per_item(&items, rounds, |i| f.matches(i, &user)),
        time_per_item(&items, rounds, |i| {
            let prop = |k: &str| i.properties.get(k);
            (i.title.as_deref().is_some_and(|t| t.contains("Blue 3"))
                || i.tags.iter().any(|t| t == "vinyl"))
                && prop("format")
                    .and_then(PropertyValue::as_str)
                    .is_some_and(|f| f != "MC")
                && prop("year")
                    .and_then(PropertyValue::as_f64)
                    .is_some_and(|y| y >= 1970.0)
        }),
    );

    let boosts = [
        parse_boost("new_release", 1.2).expect("valid"),
        parse_boost(r#"category in user.categories"#, 1.5).expect("valid"),
        parse_boost(r#"format == "LP""#, 1.1).expect("valid"),
    ];
    let (ns, _) = time_per_item(&items, rounds, |i| combined_factor(&boosts, i, &user) > 1.3);
    let (hand_ns, _) = time_per_item(&items, rounds, |i| {
        let mut factor = 1.0f32;
        if i.properties
            .get("new_release")
            .and_then(PropertyValue::as_bool)
            == Some(true)
        {
            factor *= 1.2;
        }
        if i.categories
            .iter()
            .any(|c| history_categories.contains(c.as_str()))
        {
            factor *= 1.5;
        }
        if i.properties.get("format").and_then(PropertyValue::as_str) == Some("LP") {
            factor *= 1.1;
        }
        factor > 1.3
    });
    println!("3 boosts   {ns:>7.1} ns/item  (hand-written {hand_ns:>5.1} ns/item)");

    println!(
        "parse      {:>7.2} µs for the typical filter, {:.2} µs for the text filter",
        parse_time_us(typical),
        parse_time_us(text)
    );
}
