//! End-to-end tests of the public API: the documented examples, every operator, missing fields, list
//! semantics, user fields, and the message and position of every error kind.

use std::collections::{BTreeMap, HashSet};

use cairn_core::{Item, PropertyValue, Scalar, Timestamp};

use crate::{combined_factor, parse_boost, parse_filter, ErrorKind, UserContext, MAX_DEPTH};

fn record() -> Item {
    let mut item = Item::new("a1");
    item.categories = vec!["jazz".into(), "live".into()];
    item.tags = vec!["vinyl".into()];
    item.title = Some("Kind of Blue".into());
    item.available_from = Some(Timestamp(1_000));
    let props = [
        ("price", PropertyValue::Number(12.5)),
        ("new_release", PropertyValue::Bool(true)),
        ("stock", PropertyValue::Number(0.0)),
        ("format", PropertyValue::String("LP".into())),
        ("note", PropertyValue::String(String::new())),
        (
            "labels",
            PropertyValue::List(vec![
                Scalar::String("blue note".into()),
                Scalar::String("columbia".into()),
            ]),
        ),
        (
            "ratings",
            PropertyValue::List(vec![Scalar::Number(4.0), Scalar::Number(5.0)]),
        ),
        ("empty", PropertyValue::List(vec![])),
        ("odd name", PropertyValue::Number(3.0)),
        ("title", PropertyValue::String("property title".into())),
    ];
    item.properties = props.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    item
}

struct Fixture {
    properties: BTreeMap<String, PropertyValue>,
    seen: HashSet<&'static str>,
    categories: HashSet<&'static str>,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            properties: [
                ("country".to_string(), PropertyValue::String("DE".into())),
                ("age".to_string(), PropertyValue::Number(30.0)),
                (
                    "favourite".to_string(),
                    PropertyValue::String("jazz".into()),
                ),
            ]
            .into_iter()
            .collect(),
            seen: ["a1"].into_iter().collect(),
            categories: ["jazz", "rock"].into_iter().collect(),
        }
    }

    fn user(&self) -> UserContext<'_> {
        UserContext {
            properties: &self.properties,
            seen_items: &self.seen,
            categories: &self.categories,
        }
    }
}

/// Evaluates `src` on the record for the fixture user; panics with the parse error when it fails.
fn eval(src: &str) -> bool {
    let fixture = Fixture::new();
    let filter = parse_filter(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    filter.matches(&record(), &fixture.user())
}

fn assert_all(cases: &[(&str, bool)]) {
    for &(src, expected) in cases {
        assert_eq!(eval(src), expected, "{src}");
    }
}

#[test]
fn the_request_examples() {
    let filter = parse_filter(r#"category in ["jazz","blues"] and price < 20"#).unwrap();
    let user = UserContext::anonymous();
    let mut item = record();
    assert!(filter.matches(&item, &user));
    item.properties
        .insert("price".into(), PropertyValue::Number(25.0));
    assert!(!filter.matches(&item, &user));
    item.categories = vec!["blues".into()];
    item.properties
        .insert("price".into(), PropertyValue::Number(5.0));
    assert!(filter.matches(&item, &user));
    item.categories = vec!["rock".into()];
    assert!(!filter.matches(&item, &user));

    let boost = parse_boost("new_release", 1.2).unwrap();
    assert_eq!(boost.factor_for(&record(), &user), 1.2);
    item.properties
        .insert("new_release".into(), PropertyValue::Bool(false));
    assert_eq!(boost.factor_for(&item, &user), 1.0);
}

#[test]
fn equality_and_ordering() {
    assert_all(&[
        ("price == 12.5", true),
        ("price != 12.5", false),
        ("price != 3", true),
        ("price < 20", true),
        ("price <= 12.5", true),
        ("price > 12.5", false),
        ("price >= 12.5", true),
        ("price < -1", false),
        ("format == 'LP'", true),
        ("format < 'M'", true),
        ("format > 'LA'", true),
        ("id == 'a1'", true),
        ("title == \"Kind of Blue\"", true),
        ("new_release == true", true),
        ("new_release != false", true),
        ("available_from == 1000", true),
        ("available_from < 999", false),
        ("12.5 == price", true),
        ("1 < 2", true),
        ("'b' < 'a'", false),
    ]);
}

#[test]
fn runtime_type_mismatches_are_false() {
    assert_all(&[
        ("price == '12.5'", false),
        ("price < 'z'", false),
        ("format > 1", false),
        ("new_release < 2", false),
        ("new_release == 1", false),
        // Different types are unequal, so `!=` holds between present values.
        ("price != '12.5'", true),
    ]);
}

#[test]
fn missing_fields_make_every_comparison_false() {
    assert_all(&[
        ("colour == 'red'", false),
        ("colour != 'red'", false),
        ("colour < 1", false),
        ("colour >= 1", false),
        ("colour in ['red']", false),
        ("colour not in ['red']", false),
        ("colour contains 'r'", false),
        ("colour", false),
        ("not (colour == 'red')", true),
        ("not (colour != 'red')", true),
        ("description == ''", false),
        ("description contains 'x'", false),
        ("available_until > 0", false),
        ("empty == 1", false),
        ("empty != 1", false),
        ("user.missing == 1", false),
        ("price == colour", false),
        ("price != colour", false),
    ]);
}

#[test]
fn exists_tests_presence() {
    assert_all(&[
        ("exists(price)", true),
        ("exists(colour)", false),
        ("exists(note)", true),
        ("exists(empty)", false),
        ("exists(description)", false),
        ("exists(title)", true),
        ("exists(tags)", true),
        ("exists(available_until)", false),
        ("exists(item[\"odd name\"])", true),
        ("exists(user.country)", true),
        ("exists(user.email)", false),
        ("exists(user.categories)", true),
        ("exists(seen)", true),
        ("not exists(colour)", true),
    ]);
    let mut bare = Item::new("b");
    bare.categories.clear();
    let f = parse_filter("exists(categories) or exists(tags)").unwrap();
    assert!(!f.matches(&bare, &UserContext::anonymous()));
}

#[test]
fn list_fields_match_when_any_element_does() {
    assert_all(&[
        ("category == 'jazz'", true),
        ("category == 'live'", true),
        ("category == 'rock'", false),
        ("category != 'rock'", true),
        ("category != 'live'", false),
        ("category in ['rock', 'live']", true),
        ("category in ['rock', 'pop']", false),
        ("category not in ['rock', 'pop']", true),
        ("category not in ['rock', 'jazz']", false),
        ("categories > 'k'", true),
        ("categories < 'a'", false),
        ("ratings >= 5", true),
        ("ratings > 5", false),
        ("ratings in [1, 4]", true),
        ("labels == 'columbia'", true),
        ("'jazz' in categories", true),
        ("tags in categories", false),
        ("category in user.categories", true),
        ("category in []", false),
        ("category not in []", true),
    ]);
}

#[test]
fn in_with_a_single_valued_field_on_the_right_is_equality() {
    assert_all(&[
        ("category in user.favourite", true),
        ("'LP' in format", true),
        ("'CD' in format", false),
        ("'CD' not in format", true),
    ]);
}

#[test]
fn contains_on_lists_and_strings() {
    assert_all(&[
        ("tags contains 'vinyl'", true),
        ("tags contains 'vin'", false),
        ("categories contains 'jazz'", true),
        ("labels contains 'blue note'", true),
        ("ratings contains 4", true),
        ("ratings contains '4'", false),
        ("title contains 'of Bl'", true),
        ("title contains 'blue'", false),
        ("title contains ''", true),
        ("format contains 1", false),
        ("price contains 1", false),
        ("user.categories contains 'rock'", true),
        ("user.categories contains 'pop'", false),
        ("tags contains categories", false),
    ]);
}

#[test]
fn boolean_operators_and_precedence() {
    assert_all(&[
        ("price < 20 and format == 'LP'", true),
        ("price < 20 and format == 'CD'", false),
        ("price > 20 or format == 'LP'", true),
        ("price > 20 or format == 'CD'", false),
        ("not price > 20", true),
        ("not not new_release", true),
        ("price > 20 and format == 'CD' or new_release", true),
        ("price > 20 and (format == 'CD' or new_release)", false),
        ("not new_release or stock", false),
        ("not (new_release or stock)", false),
        ("((((new_release))))", true),
    ]);
}

#[test]
fn bare_values_are_truthy() {
    assert_all(&[
        ("new_release", true),
        ("stock", false),
        ("price", true),
        ("format", true),
        ("note", false),
        ("labels", true),
        ("empty", false),
        ("categories", true),
        ("description", false),
        ("true", true),
        ("false", false),
        ("0", false),
        ("''", false),
        ("'x'", true),
        ("user.country", true),
        ("user.categories", true),
    ]);
}

#[test]
fn property_names_in_every_spelling() {
    assert_all(&[
        ("item.price == 12.5", true),
        ("item[\"price\"] == 12.5", true),
        ("item[\"odd name\"] == 3", true),
        ("item['odd name'] == 3", true),
        ("title == 'Kind of Blue'", true),
        ("item.title == 'Kind of Blue'", true),
        ("item.properties.title == 'property title'", true),
        ("item.properties[\"title\"] == 'property title'", true),
        ("item.seen", false),
    ]);
}

#[test]
fn user_fields_and_seen() {
    assert_all(&[
        ("user.country == 'DE'", true),
        ("user.country in ['FR', 'DE']", true),
        ("user.age >= 18", true),
        ("user['age'] < 18", false),
        ("user.properties.age == 30", true),
        ("user.categories == 'rock'", true),
        ("seen", true),
        ("not seen", false),
        ("seen == true", true),
    ]);
    let fixture = Fixture::new();
    let f = parse_filter("not seen and category in user.categories").unwrap();
    let mut unseen = record();
    unseen.id = "a2".into();
    assert!(f.matches(&unseen, &fixture.user()));
    assert!(!f.matches(&record(), &fixture.user()));
    let anon = UserContext::anonymous();
    assert!(
        !f.matches(&unseen, &anon),
        "no history: user.categories is missing"
    );
    assert!(!parse_filter("user.country")
        .unwrap()
        .matches(&unseen, &anon));
}

#[test]
fn uses_reports_what_the_filter_reads() {
    let uses = parse_filter("price < 3").unwrap().uses();
    assert!(!uses.seen && !uses.user_categories && !uses.user_properties);
    let uses = parse_filter("not seen and (category in user.categories or user.vip)")
        .unwrap()
        .uses();
    assert!(uses.seen && uses.user_categories && uses.user_properties);
    let uses = parse_filter("exists(user.categories)").unwrap().uses();
    assert!(uses.user_categories && !uses.seen);
}

#[test]
fn item_properties_are_the_property_names_the_filter_reads() {
    let props = |src: &str| -> Vec<String> {
        parse_filter(src)
            .unwrap()
            .item_properties()
            .into_iter()
            .map(String::from)
            .collect()
    };
    assert_eq!(
        props(r#"price < 3 and (format in ["LP"] or exists(price)) and item["release date"] > 1"#),
        ["price", "format", "release date"]
    );
    // Built-in fields, user fields, `seen` and literals are not item properties; `item.seen`
    // and `item.properties.title` are.
    assert!(
        props(r#"title contains "x" and category == 'jazz' and user.vip and not seen"#).is_empty()
    );
    assert_eq!(
        props("item.seen or item.properties.title == 'x' or tags contains owner"),
        ["seen", "title", "owner"]
    );
    assert_eq!(props("\"a\" in user.likes or new_release"), ["new_release"]);
}

#[test]
fn boost_factors() {
    let user = UserContext::anonymous();
    for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let err = parse_boost("new_release", bad).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidFactor, "{bad}");
    }
    let boosts = [
        parse_boost("new_release", 1.5).unwrap(),
        parse_boost("price < 20", 2.0).unwrap(),
        parse_boost("format == 'CD'", 3.0).unwrap(),
        parse_boost("stock", 0.5).unwrap(),
    ];
    assert_eq!(combined_factor(&boosts, &record(), &user), 3.0);
    assert!(parse_boost("price <", 1.2).is_err());
}

#[test]
fn filters_keep_their_source() {
    let f: crate::Filter = " price < 3 ".parse().unwrap();
    assert_eq!(f.source(), " price < 3 ");
    assert_eq!(f.to_string(), " price < 3 ");
}

/// (source, kind, position, a fragment the message must contain)
fn assert_error(src: &str, kind: ErrorKind, position: usize, fragment: &str) {
    let err = parse_filter(src).expect_err(src);
    assert_eq!((err.kind, err.position), (kind, position), "{src}: {err}");
    assert!(
        err.message.contains(fragment),
        "{src}: {:?} lacks {fragment:?}",
        err.message
    );
    assert_eq!(err.to_string(), format!("at {position}: {}", err.message));
}

#[test]
fn error_messages_and_positions() {
    use ErrorKind::*;
    assert_error(
        "category == 'jazz' and price < ",
        ExpectedValue,
        31,
        r#"expected a value after "<", found end of input"#,
    );
    assert_error("", Empty, 0, "empty expression");
    assert_error("   \n\t", Empty, 0, "empty expression");
    assert_error("price = 20", UnknownOperator, 6, "use \"==\"");
    assert_error("price <> 20", UnknownOperator, 6, "\"!=\"");
    assert_error("a && b", UnknownOperator, 2, "\"and\"");
    assert_error(
        "price like 20",
        UnknownOperator,
        6,
        "unknown operator \"like\"",
    );
    assert_error("a AND b", UnknownOperator, 2, "write \"and\"");
    assert_error("title == 'abc", UnterminatedString, 9, "closing '");
    assert_error("title == \"a\\x\"", InvalidEscape, 11, "unknown escape");
    assert_error("(price < 20", Unbalanced, 0, "never closed");
    assert_error("(a or (b and c)", Unbalanced, 0, "never closed");
    assert_error("price < 20)", Unbalanced, 10, "no \"(\"");
    assert_error("x in ['a', 'b'", Unbalanced, 5, "\"[\" is never closed");
    assert_error(
        "price < 20 new_release",
        TrailingInput,
        11,
        "\"and\" or \"or\"",
    );
    assert_error("price < 20 AND x", TrailingInput, 11, "write \"and\"");
    assert_error(
        "x in ['a', 1]",
        InvalidList,
        11,
        "mixes a string and a number",
    );
    assert_error("x in [1, [2]]", InvalidList, 9, "cannot contain lists");
    assert_error("x in [price]", InvalidList, 6, "literal values");
    assert_error("x == [1]", InvalidList, 5, "only follow \"in\"");
    assert_error("[1]", InvalidList, 0, "only follow \"in\"");
    assert_error("x in 5", TypeMismatch, 5, "needs a list");
    assert_error("'a' < 3", TypeMismatch, 6, "type mismatch");
    assert_error(
        "id == 5",
        TypeMismatch,
        6,
        "id is a string but 5 is a number",
    );
    assert_error("id in [1, 2]", TypeMismatch, 6, "type mismatch");
    assert_error("seen < true", TypeMismatch, 5, "not true/false");
    assert_error(
        "available_from contains 1",
        TypeMismatch,
        15,
        "string or a list",
    );
    assert_error("title contains 5", TypeMismatch, 15, "type mismatch");
    assert_error("a < b < c", ChainedComparison, 6, "do not chain");
    assert_error("a == 1 in [1]", ChainedComparison, 7, "do not chain");
    assert_error("user", InvalidField, 0, "\"user\" alone");
    assert_error("item == 1", InvalidField, 0, "\"item\" alone");
    assert_error("id.x == 1", InvalidField, 3, "\"id\" has no sub-fields");
    assert_error("price.currency", InvalidField, 6, "no sub-fields");
    assert_error("item.a.b", InvalidField, 7, "no sub-fields");
    assert_error("x == True", InvalidField, 5, "write \"true\"");
    assert_error("item[1]", InvalidField, 5, "quoted name");
    assert_error("item.", InvalidField, 5, "expected a name");
    assert_error("()", ExpectedValue, 1, "after \"(\", found \")\"");
    assert_error("price < and", ExpectedValue, 8, "found \"and\"");
    assert_error("and", ExpectedValue, 0, "expected a value, found \"and\"");
    assert_error("not in ['a']", ExpectedValue, 4, "after \"not\"");
    assert_error("a not b", Unexpected, 6, "expected \"in\" after \"not\"");
    assert_error("(a or b) < 3", Unexpected, 0, "is a condition");
    assert_error("a == (b or c)", Unexpected, 5, "is a condition");
    assert_error("exists price", Unexpected, 7, "in parentheses");
    assert_error("exists(5)", Unexpected, 7, "field name");
    assert_error("exists(a b)", Unexpected, 9, "one field name");
    assert_error("price < 1.2.3", InvalidNumber, 8, "not a number");
    assert_error("price < 1e400", InvalidNumber, 8, "too large");
    assert_error("price € 3", UnexpectedCharacter, 6, "unexpected character");
}

#[test]
fn the_brief_display_format() {
    let err = parse_filter("price > 3 and price <").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"at 21: expected a value after "<", found end of input"#
    );
}

#[test]
fn limits_on_length_and_depth() {
    let long = format!("x == '{}'", "a".repeat(5000));
    assert_error(&long, ErrorKind::TooLong, 4096, "at most 4096");

    let ok = format!("{}x{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(parse_filter(&ok).is_ok());
    let deep = format!(
        "{}x{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert_error(&deep, ErrorKind::TooDeep, MAX_DEPTH, "nested");
    let nots = format!("{}x", "not ".repeat(MAX_DEPTH + 1));
    assert_error(&nots, ErrorKind::TooDeep, MAX_DEPTH * 4, "nested");
    let mixed = "not (".repeat(MAX_DEPTH);
    assert_eq!(parse_filter(&mixed).unwrap_err().kind, ErrorKind::TooDeep);

    // The longest flat chain that fits in the byte limit parses and evaluates.
    let chain = vec!["new_release"; 4096 / 16].join(" and ");
    assert!(eval(&chain));
}

/// The messages quoted in docs/FILTERS.md, verbatim.
#[test]
fn documented_error_messages() {
    for (src, shown) in [
        (
            "category == 'jazz' and price < ",
            r#"at 31: expected a value after "<", found end of input"#,
        ),
        (
            "price = 20",
            r#"at 6: unknown operator "=": use "==" to test equality"#,
        ),
        (
            "title == 'abc",
            r#"at 9: unterminated string: add a closing ' (write \' for a quote inside it)"#,
        ),
        ("(price < 20", r#"at 0: this "(" is never closed: add a ")""#),
        (
            "price < 20 new_release",
            r#"at 11: unexpected "new_release" after a complete condition; join conditions with "and" or "or""#,
        ),
        (
            "x in ['a', 1]",
            "at 11: this list mixes a string and a number; all elements of a list must have one type",
        ),
        (
            "id == 5",
            "at 6: type mismatch: id is a string but 5 is a number; this comparison can never hold",
        ),
        (
            "a < b < c",
            "at 6: comparisons do not chain: write a < b and b < c, or use parentheses",
        ),
        ("a AND b", r#"at 2: keywords are lowercase: write "and""#),
    ] {
        assert_eq!(parse_filter(src).unwrap_err().to_string(), shown, "{src}");
    }
}
