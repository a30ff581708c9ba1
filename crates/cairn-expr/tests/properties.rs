//! Invariants over generated inputs: the parser never panics, whatever it is fed; and on generated
//! expressions the compiled filter agrees with a small reference interpreter, `not` is the complement,
//! `a and b` implies `a`, and `a or b` is the union. Seeded, so every run tests the same cases.

use std::collections::{BTreeMap, HashSet};

use cairn_core::{Item, PropertyValue, Scalar};
use cairn_expr::{parse_filter, UserContext};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x5eed_ca12),
        failure_persistence: None,
        ..Config::default()
    }
}

const CATEGORIES: [&str; 4] = ["jazz", "rock", "pop", "blues"];
const FORMATS: [&str; 3] = ["LP", "CD", "MC"];
const TITLES: [&str; 3] = ["Kind of Blue", "Blue Train", "Giant Steps"];

/// Everything an item can vary in, for both the `Item` and the reference interpreter.
#[derive(Debug, Clone)]
struct Record {
    id: u8,
    price: Option<f64>,
    format: Option<&'static str>,
    categories: Vec<&'static str>,
    tags: Vec<&'static str>,
    new_release: Option<bool>,
    title: Option<&'static str>,
}

impl Record {
    fn item(&self) -> Item {
        let mut item = Item::new(format!("i{}", self.id));
        item.categories = self.categories.iter().map(|s| s.to_string()).collect();
        item.tags = self.tags.iter().map(|s| s.to_string()).collect();
        item.title = self.title.map(str::to_string);
        let mut props = BTreeMap::new();
        if let Some(p) = self.price {
            props.insert("price".to_string(), PropertyValue::Number(p));
        }
        if let Some(f) = self.format {
            props.insert("format".to_string(), PropertyValue::String(f.into()));
        }
        if let Some(b) = self.new_release {
            props.insert("new_release".to_string(), PropertyValue::Bool(b));
        }
        props.insert(
            "labels".to_string(),
            PropertyValue::List(
                self.tags
                    .iter()
                    .map(|t| Scalar::String(t.to_string()))
                    .collect(),
            ),
        );
        item.properties = props;
        item
    }
}

fn subset(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(pool.to_vec(), 0..=pool.len())
}

/// Items with every field the generated expressions read present and non-empty.
fn complete_record() -> impl Strategy<Value = Record> {
    (
        any::<u8>(),
        (0u32..40).prop_map(|p| f64::from(p) / 2.0),
        proptest::sample::select(FORMATS.to_vec()),
        proptest::sample::subsequence(CATEGORIES.to_vec(), 1..=CATEGORIES.len()),
        proptest::sample::subsequence(CATEGORIES.to_vec(), 1..=CATEGORIES.len()),
        any::<bool>(),
        proptest::sample::select(TITLES.to_vec()),
    )
        .prop_map(
            |(id, price, format, categories, tags, new_release, title)| Record {
                id,
                price: Some(price),
                format: Some(format),
                categories,
                tags,
                new_release: Some(new_release),
                title: Some(title),
            },
        )
}

/// Items where any field may be missing.
fn partial_record() -> impl Strategy<Value = Record> {
    (
        any::<u8>(),
        proptest::option::of((0u32..40).prop_map(|p| f64::from(p) / 2.0)),
        proptest::option::of(proptest::sample::select(FORMATS.to_vec())),
        subset(&CATEGORIES),
        subset(&CATEGORIES),
        proptest::option::of(any::<bool>()),
        proptest::option::of(proptest::sample::select(TITLES.to_vec())),
    )
        .prop_map(
            |(id, price, format, categories, tags, new_release, title)| Record {
                id,
                price,
                format,
                categories,
                tags,
                new_release,
                title,
            },
        )
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    fn holds<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        }
    }
}

#[derive(Debug, Clone)]
enum Expr {
    Price(Op, f64),
    Format(Op, &'static str),
    CategoryIn(Vec<&'static str>),
    CategoryNotIn(Vec<&'static str>),
    TagsContain(&'static str),
    LabelsContain(&'static str),
    TitleContains(&'static str),
    NewRelease,
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Eq),
        Just(Op::Ne),
        Just(Op::Lt),
        Just(Op::Le),
        Just(Op::Gt),
        Just(Op::Ge)
    ]
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        (op(), (0u32..40).prop_map(|p| f64::from(p) / 2.0)).prop_map(|(o, p)| Expr::Price(o, p)),
        (op(), proptest::sample::select(FORMATS.to_vec())).prop_map(|(o, f)| Expr::Format(o, f)),
        subset(&CATEGORIES).prop_map(Expr::CategoryIn),
        subset(&CATEGORIES).prop_map(Expr::CategoryNotIn),
        proptest::sample::select(CATEGORIES.to_vec()).prop_map(Expr::TagsContain),
        proptest::sample::select(CATEGORIES.to_vec()).prop_map(Expr::LabelsContain),
        proptest::sample::select(vec!["Blue", "blue", "Train", "of", ""])
            .prop_map(Expr::TitleContains),
        Just(Expr::NewRelease),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(5, 24, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
        ]
    })
}

fn list(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

impl Expr {
    fn source(&self) -> String {
        match self {
            Expr::Price(o, p) => format!("price {} {p}", o.symbol()),
            Expr::Format(o, f) => format!("format {} '{f}'", o.symbol()),
            Expr::CategoryIn(v) => format!("category in {}", list(v)),
            Expr::CategoryNotIn(v) => format!("categories not in {}", list(v)),
            Expr::TagsContain(t) => format!("tags contains \"{t}\""),
            Expr::LabelsContain(t) => format!("item.labels contains \"{t}\""),
            Expr::TitleContains(t) => format!("title contains \"{t}\""),
            Expr::NewRelease => "new_release".to_string(),
            Expr::Not(e) => format!("not ({})", e.source()),
            Expr::And(a, b) => format!("({}) and ({})", a.source(), b.source()),
            Expr::Or(a, b) => format!("({}) or ({})", a.source(), b.source()),
        }
    }

    /// The documented semantics, written out directly for records whose fields are all present.
    fn reference(&self, r: &Record) -> bool {
        match self {
            Expr::Price(o, p) => o.holds(r.price.expect("complete"), *p),
            Expr::Format(o, f) => o.holds(r.format.expect("complete"), *f),
            Expr::CategoryIn(v) => r.categories.iter().any(|c| v.contains(c)),
            Expr::CategoryNotIn(v) => !r.categories.iter().any(|c| v.contains(c)),
            Expr::TagsContain(t) | Expr::LabelsContain(t) => r.tags.contains(t),
            Expr::TitleContains(t) => r.title.expect("complete").contains(t),
            Expr::NewRelease => r.new_release.expect("complete"),
            Expr::Not(e) => !e.reference(r),
            Expr::And(a, b) => a.reference(r) && b.reference(r),
            Expr::Or(a, b) => a.reference(r) || b.reference(r),
        }
    }
}

fn matches(src: &str, record: &Record) -> bool {
    let filter = parse_filter(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    filter.matches(&record.item(), &UserContext::anonymous())
}

/// Tokens of the language and near misses, for sequences that stress the parser's error paths.
const VOCABULARY: &[&str] = &[
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
    "!",
    "&&",
    "and",
    "or",
    "not",
    "in",
    "contains",
    "exists",
    "true",
    "false",
    "AND",
    "price",
    "category",
    "user",
    "item",
    "seen",
    "categories",
    "\"jazz\"",
    "'x'",
    "\"",
    "'",
    "\\",
    "1",
    "-2.5",
    "1e3",
    "1.2.3",
    "é",
    "item[\"a b\"]",
    "user.categories",
    "exists(",
    "-",
    "+",
];

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn parsing_arbitrary_text_never_panics(src in any::<String>()) {
        let _ = parse_filter(&src);
    }

    #[test]
    fn parsing_syntax_heavy_text_never_panics(
        src in "[a-z0-9 ()\\[\\]\"'\\\\.,=<>!&|_-]{0,80}",
    ) {
        if let Ok(filter) = parse_filter(&src) {
            let item = Item::new("x");
            let _ = filter.matches(&item, &UserContext::anonymous());
        }
    }

    #[test]
    fn parsing_token_sequences_never_panics(
        tokens in proptest::collection::vec(proptest::sample::select(VOCABULARY.to_vec()), 0..40),
        glue in proptest::sample::select(vec![" ", ""]),
    ) {
        let src = tokens.join(glue);
        match parse_filter(&src) {
            Ok(filter) => {
                let record = Record {
                    id: 1, price: Some(3.0), format: None, categories: vec!["jazz"],
                    tags: vec![], new_release: Some(true), title: None,
                };
                let _ = filter.matches(&record.item(), &UserContext::anonymous());
            }
            Err(e) => prop_assert!(e.position <= src.len(), "{src:?}: {e}"),
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn compiled_filters_agree_with_the_reference(e in expr(), r in complete_record()) {
        prop_assert_eq!(matches(&e.source(), &r), e.reference(&r), "{}", e.source());
    }

    #[test]
    fn not_is_the_complement(e in expr(), r in complete_record()) {
        let src = e.source();
        prop_assert_eq!(matches(&format!("not ({src})"), &r), !matches(&src, &r));
    }

    #[test]
    fn not_is_the_complement_even_with_missing_fields(e in expr(), r in partial_record()) {
        let src = e.source();
        prop_assert_eq!(matches(&format!("not ({src})"), &r), !matches(&src, &r));
    }

    #[test]
    fn and_is_a_subset_and_or_a_union(a in expr(), b in expr(), r in partial_record()) {
        let (sa, sb) = (a.source(), b.source());
        let (ma, mb) = (matches(&sa, &r), matches(&sb, &r));
        let both = matches(&format!("({sa}) and ({sb})"), &r);
        prop_assert!(!both || ma, "`a and b` matched but `a` did not: {sa} / {sb}");
        prop_assert_eq!(both, ma && mb);
        prop_assert_eq!(matches(&format!("({sa}) or ({sb})"), &r), ma || mb);
    }

    #[test]
    fn missing_fields_fail_every_comparison(o in op(), p in 0u32..40) {
        let record = Record {
            id: 0, price: None, format: None, categories: vec![], tags: vec![],
            new_release: None, title: None,
        };
        let src = format!("price {} {p}", o.symbol());
        prop_assert!(!matches(&src, &record));
        let negated = format!("not ({src})");
        prop_assert!(matches(&negated, &record));
    }
}

#[test]
fn seen_follows_the_history_set() {
    let seen: HashSet<&str> = ["i1", "i3"].into_iter().collect();
    let none = HashSet::new();
    let props = BTreeMap::new();
    let user = UserContext {
        properties: &props,
        seen_items: &seen,
        categories: &none,
    };
    let filter = parse_filter("not seen").unwrap();
    let kept: Vec<u8> = (0..5)
        .filter(|&id| {
            let record = Record {
                id,
                price: None,
                format: None,
                categories: vec![],
                tags: vec![],
                new_release: None,
                title: None,
            };
            filter.matches(&record.item(), &user)
        })
        .collect();
    assert_eq!(kept, vec![0, 2, 4]);
}
