//! Evaluation against one item. Values are borrowed views of the item, the user context or the
//! compiled literals; nothing is allocated, but for one case: `==`/`in` between two long list
//! fields, where a set of one side keeps the cost linear (see [`any_equal`]). Every value is
//! treated as a sequence of scalars (a scalar is a sequence of one), which gives list fields their
//! "any element" meaning in one place.

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use cairn_core::{Item, PropertyValue, Scalar};

use crate::ast::{CmpOp, Field, ListLiteral, Literal, Node, Operand};

/// What a request knows about the user it serves. The engine fills it once per request; filters read
/// it for every candidate. Borrowed sets keep that fill free of copies.
#[derive(Debug, Clone, Copy)]
pub struct UserContext<'a> {
    /// The user's properties (`user.<name>`).
    pub properties: &'a BTreeMap<String, PropertyValue>,
    /// Ids of the items the user interacted with (`seen`).
    pub seen_items: &'a HashSet<&'a str>,
    /// Categories of the items the user interacted with (`user.categories`).
    pub categories: &'a HashSet<&'a str>,
}

static NO_PROPERTIES: BTreeMap<String, PropertyValue> = BTreeMap::new();
static NO_STRINGS: LazyLock<HashSet<&'static str>> = LazyLock::new(HashSet::new);

impl UserContext<'static> {
    /// A user with no properties and no history: every `user.*` field is missing, `seen` is false.
    pub fn anonymous() -> Self {
        UserContext {
            properties: &NO_PROPERTIES,
            seen_items: &NO_STRINGS,
            categories: &NO_STRINGS,
        }
    }
}

impl Default for UserContext<'static> {
    fn default() -> Self {
        UserContext::anonymous()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ScalarRef<'a> {
    Bool(bool),
    Number(f64),
    Str(&'a str),
}

impl<'a> ScalarRef<'a> {
    fn of(scalar: &'a Scalar) -> Self {
        match scalar {
            Scalar::Bool(b) => ScalarRef::Bool(*b),
            Scalar::Number(n) => ScalarRef::Number(*n),
            Scalar::String(s) => ScalarRef::Str(s),
        }
    }

    fn truthy(self) -> bool {
        match self {
            ScalarRef::Bool(b) => b,
            ScalarRef::Number(n) => n != 0.0,
            ScalarRef::Str(s) => !s.is_empty(),
        }
    }
}

/// A value as the evaluator sees it. Empty lists of fields are `Missing`, so that "missing" means
/// "the item has no value here" whichever way the item was written.
#[derive(Clone, Copy)]
enum Value<'a> {
    Missing,
    Scalar(ScalarRef<'a>),
    Labels(&'a [String]),
    Scalars(&'a [Scalar]),
    Set(&'a HashSet<&'a str>),
    List(&'a ListLiteral),
}

impl<'a> Value<'a> {
    fn any(self, mut f: impl FnMut(ScalarRef<'a>) -> bool) -> bool {
        match self {
            Value::Missing => false,
            Value::Scalar(s) => f(s),
            Value::Labels(v) => v.iter().any(|s| f(ScalarRef::Str(s))),
            Value::Scalars(v) => v.iter().any(|s| f(ScalarRef::of(s))),
            Value::Set(set) => set.iter().any(|s| f(ScalarRef::Str(s))),
            Value::List(ListLiteral::Strings(v)) => v.iter().any(|s| f(ScalarRef::Str(s))),
            Value::List(ListLiteral::Numbers(v)) => v.iter().any(|&n| f(ScalarRef::Number(n))),
            Value::List(ListLiteral::Bools(v)) => v.iter().any(|&b| f(ScalarRef::Bool(b))),
        }
    }

    /// Whether some element equals `x`; uses the set's or the sorted literal's lookup when it can.
    fn has(self, x: ScalarRef<'_>) -> bool {
        match (self, x) {
            (Value::Set(set), ScalarRef::Str(s)) => set.contains(s),
            (Value::Set(_), _) => false,
            // A linear scan with `==` rejects on length before touching bytes, which beats binary
            // search's full comparisons on the short lists requests carry.
            (Value::List(ListLiteral::Strings(v)), ScalarRef::Str(s)) if v.len() <= 16 => {
                v.iter().any(|e| **e == *s)
            }
            (Value::List(ListLiteral::Strings(v)), ScalarRef::Str(s)) => {
                v.binary_search_by(|e| (**e).cmp(s)).is_ok()
            }
            _ => self.any(|e| e == x),
        }
    }

    /// How many scalars the value holds.
    fn len(self) -> usize {
        match self {
            Value::Missing => 0,
            Value::Scalar(_) => 1,
            Value::Labels(v) => v.len(),
            Value::Scalars(v) => v.len(),
            Value::Set(set) => set.len(),
            Value::List(list) => list.len(),
        }
    }

    fn is_missing(self) -> bool {
        matches!(self, Value::Missing)
    }

    fn truthy(self) -> bool {
        match self {
            Value::Scalar(s) => s.truthy(),
            // Empty field lists are already `Missing`; an empty literal list is not truthy.
            Value::List(list) => list.len() > 0,
            Value::Missing => false,
            Value::Labels(_) | Value::Scalars(_) | Value::Set(_) => true,
        }
    }
}

fn labels(v: &[String]) -> Value<'_> {
    if v.is_empty() {
        Value::Missing
    } else {
        Value::Labels(v)
    }
}

#[inline]
fn property(value: Option<&PropertyValue>) -> Value<'_> {
    match value {
        None => Value::Missing,
        Some(PropertyValue::Bool(b)) => Value::Scalar(ScalarRef::Bool(*b)),
        Some(PropertyValue::Number(n)) => Value::Scalar(ScalarRef::Number(*n)),
        Some(PropertyValue::String(s)) => Value::Scalar(ScalarRef::Str(s)),
        Some(PropertyValue::List(v)) if v.is_empty() => Value::Missing,
        Some(PropertyValue::List(v)) => Value::Scalars(v),
    }
}

fn optional_text(text: &Option<String>) -> Value<'_> {
    match text {
        Some(s) => Value::Scalar(ScalarRef::Str(s)),
        None => Value::Missing,
    }
}

fn timestamp(t: Option<cairn_core::Timestamp>) -> Value<'static> {
    match t {
        Some(t) => Value::Scalar(ScalarRef::Number(t.0 as f64)),
        None => Value::Missing,
    }
}

#[inline]
fn field<'a>(field: &'a Field, item: &'a Item, user: &UserContext<'a>) -> Value<'a> {
    match field {
        Field::Id => Value::Scalar(ScalarRef::Str(&item.id)),
        Field::Categories => labels(&item.categories),
        Field::Tags => labels(&item.tags),
        Field::Title => optional_text(&item.title),
        Field::Description => optional_text(&item.description),
        Field::AvailableFrom => timestamp(item.available_from),
        Field::AvailableUntil => timestamp(item.available_until),
        Field::Property(name) => property(item.properties.get(&**name)),
        Field::UserProperty(name) => property(user.properties.get(&**name)),
        Field::UserCategories if user.categories.is_empty() => Value::Missing,
        Field::UserCategories => Value::Set(user.categories),
        Field::Seen => Value::Scalar(ScalarRef::Bool(user.seen_items.contains(item.id.as_str()))),
    }
}

#[inline]
fn operand<'a>(operand: &'a Operand, item: &'a Item, user: &UserContext<'a>) -> Value<'a> {
    match operand {
        Operand::Field(f) => field(f, item, user),
        Operand::Literal(Literal::Bool(b)) => Value::Scalar(ScalarRef::Bool(*b)),
        Operand::Literal(Literal::Number(n)) => Value::Scalar(ScalarRef::Number(*n)),
        Operand::Literal(Literal::Str(s)) => Value::Scalar(ScalarRef::Str(s)),
        Operand::Literal(Literal::List(l)) => Value::List(l),
    }
}

/// Some element of `left` equals some element of `right`.
#[inline]
fn any_equal(left: Value<'_>, right: Value<'_>) -> bool {
    match (left, right) {
        // A set looks up in O(1): scan the other side.
        (Value::Set(_), _) => right.any(|b| left.has(b)),
        // Two list fields of an item (`tags == categories`): pairwise, an item with 1,000 tags and
        // 100 categories costs 100,000 comparisons per comparison in the filter, and a 4 KiB
        // filter holds ~180 of them. Past a small size, a set of one side keeps it linear.
        (Value::Labels(_) | Value::Scalars(_), Value::Labels(_) | Value::Scalars(_))
            if left.len().saturating_mul(right.len()) > PAIRWISE_LIMIT =>
        {
            let (small, large) = if left.len() <= right.len() {
                (left, right)
            } else {
                (right, left)
            };
            let mut keys = HashSet::with_capacity(small.len());
            small.any(|a| {
                if let Some(k) = EqKey::of(a) {
                    keys.insert(k);
                }
                false
            });
            large.any(|b| EqKey::of(b).is_some_and(|k| keys.contains(&k)))
        }
        _ => left.any(|a| right.has(a)),
    }
}

/// Pairs of elements compared one by one before two list fields are compared through a set (for
/// `==`) or through their extremes (for `<`, `<=`, `>`, `>=`).
const PAIRWISE_LIMIT: usize = 256;

/// A scalar as a hash key with `==`'s meaning: numbers by value (`-0 == 0`), NaN equal to nothing.
#[derive(PartialEq, Eq, Hash)]
enum EqKey<'a> {
    Bool(bool),
    Number(u64),
    Str(&'a str),
}

impl<'a> EqKey<'a> {
    fn of(x: ScalarRef<'a>) -> Option<Self> {
        Some(match x {
            ScalarRef::Bool(b) => EqKey::Bool(b),
            ScalarRef::Number(n) if n.is_nan() => return None,
            ScalarRef::Number(0.0) => EqKey::Number(0),
            ScalarRef::Number(n) => EqKey::Number(n.to_bits()),
            ScalarRef::Str(s) => EqKey::Str(s),
        })
    }
}

/// The smallest and largest number and string of a value (NaN left out): "some `a` of the left
/// side is below some `b` of the right side" holds exactly when the left's smallest is below the
/// right's largest, so ordered comparisons of long lists cost one pass over each side.
#[derive(Default)]
struct Extremes<'a> {
    numbers: Option<(f64, f64)>,
    strings: Option<(&'a str, &'a str)>,
}

impl<'a> Extremes<'a> {
    fn of(v: Value<'a>) -> Self {
        let mut e = Extremes::default();
        v.any(|x| {
            match x {
                ScalarRef::Number(n) if !n.is_nan() => {
                    let (lo, hi) = e.numbers.get_or_insert((n, n));
                    *lo = lo.min(n);
                    *hi = hi.max(n);
                }
                ScalarRef::Str(s) => {
                    let (lo, hi) = e.strings.get_or_insert((s, s));
                    *lo = (*lo).min(s);
                    *hi = (*hi).max(s);
                }
                _ => {}
            }
            false
        });
        e
    }
}

/// Whether some element of `left` stands in `op` (an ordering) to some element of `right`.
fn any_ordered(op: CmpOp, left: Value<'_>, right: Value<'_>) -> bool {
    if left.len().saturating_mul(right.len()) <= PAIRWISE_LIMIT {
        return left.any(|a| right.any(|b| ordered(op, a, b)));
    }
    let (l, r) = (Extremes::of(left), Extremes::of(right));
    // Lt/Le need the left's smallest against the right's largest; Gt/Ge the left's largest
    // against the right's smallest.
    let numbers = match (l.numbers, r.numbers) {
        (Some((l_lo, l_hi)), Some((r_lo, r_hi))) => match op {
            CmpOp::Lt => l_lo < r_hi,
            CmpOp::Le => l_lo <= r_hi,
            CmpOp::Gt => l_hi > r_lo,
            CmpOp::Ge => l_hi >= r_lo,
            CmpOp::Eq | CmpOp::Ne => false,
        },
        _ => false,
    };
    let strings = match (l.strings, r.strings) {
        (Some((l_lo, l_hi)), Some((r_lo, r_hi))) => match op {
            CmpOp::Lt => l_lo < r_hi,
            CmpOp::Le => l_lo <= r_hi,
            CmpOp::Gt => l_hi > r_lo,
            CmpOp::Ge => l_hi >= r_lo,
            CmpOp::Eq | CmpOp::Ne => false,
        },
        _ => false,
    };
    numbers || strings
}

/// Ordering holds only between two numbers or two strings; anything else is a type mismatch: false.
#[inline]
fn ordered(op: CmpOp, a: ScalarRef<'_>, b: ScalarRef<'_>) -> bool {
    let ordering = match (a, b) {
        (ScalarRef::Number(x), ScalarRef::Number(y)) => x.partial_cmp(&y),
        (ScalarRef::Str(x), ScalarRef::Str(y)) => Some(x.cmp(y)),
        _ => None,
    };
    let Some(ordering) = ordering else {
        return false;
    };
    match op {
        CmpOp::Lt => ordering.is_lt(),
        CmpOp::Le => ordering.is_le(),
        CmpOp::Gt => ordering.is_gt(),
        CmpOp::Ge => ordering.is_ge(),
        CmpOp::Eq => ordering.is_eq(),
        CmpOp::Ne => ordering.is_ne(),
    }
}

#[inline]
fn compare(op: CmpOp, left: Value<'_>, right: Value<'_>) -> bool {
    if let (Value::Scalar(a), Value::Scalar(b)) = (left, right) {
        // The common case (`price < 20`), without the per-element closures below.
        return match op {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            _ => ordered(op, a, b),
        };
    }
    match op {
        CmpOp::Eq => any_equal(left, right),
        CmpOp::Ne => !left.is_missing() && !right.is_missing() && !any_equal(left, right),
        _ => any_ordered(op, left, right),
    }
}

fn contains(left: Value<'_>, right: Value<'_>) -> bool {
    let Value::Scalar(needle) = right else {
        return false;
    };
    match (left, needle) {
        (Value::Scalar(ScalarRef::Str(hay)), ScalarRef::Str(needle)) => hay.contains(needle),
        (Value::Scalar(_) | Value::Missing, _) => false,
        (list, needle) => list.has(needle),
    }
}

pub(crate) fn matches(node: &Node, item: &Item, user: &UserContext<'_>) -> bool {
    match node {
        Node::And(nodes) => nodes.iter().all(|n| matches(n, item, user)),
        Node::Or(nodes) => nodes.iter().any(|n| matches(n, item, user)),
        Node::Not(inner) => !matches(inner, item, user),
        Node::Truthy(o) => operand(o, item, user).truthy(),
        Node::Exists(f) => !field(f, item, user).is_missing(),
        Node::Compare { op, left, right } => {
            compare(*op, operand(left, item, user), operand(right, item, user))
        }
        Node::In {
            negated,
            left,
            right,
        } => {
            let op = if *negated { CmpOp::Ne } else { CmpOp::Eq };
            compare(op, operand(left, item, user), operand(right, item, user))
        }
        Node::Contains { left, right } => {
            contains(operand(left, item, user), operand(right, item, user))
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn scalar() -> impl Strategy<Value = Scalar> {
        prop_oneof![
            any::<bool>().prop_map(Scalar::Bool),
            prop_oneof![
                Just(f64::NAN),
                Just(0.0),
                Just(-0.0),
                (-20i32..20).prop_map(f64::from)
            ]
            .prop_map(Scalar::Number),
            "[a-d]{0,2}".prop_map(Scalar::String),
        ]
    }

    /// The definition: some pair of elements satisfies the comparison.
    fn pairwise(op: CmpOp, left: Value<'_>, right: Value<'_>) -> bool {
        match op {
            CmpOp::Eq => left.any(|a| right.any(|b| a == b)),
            _ => left.any(|a| right.any(|b| ordered(op, a, b))),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, rng_seed: proptest::test_runner::RngSeed::Fixed(7), ..ProptestConfig::default() })]

        /// Long lists take the set and extremes shortcuts; they must mean what pairwise means.
        #[test]
        fn long_list_comparisons_agree_with_pairwise(
            left in prop::collection::vec(scalar(), 0..60),
            right in prop::collection::vec(scalar(), 0..60),
        ) {
            let labels_l: Vec<String> = left.iter().filter_map(|s| match s {
                Scalar::String(s) => Some(s.clone()),
                _ => None,
            }).collect();
            let pairs = [
                (Value::Scalars(&left), Value::Scalars(&right)),
                (Value::Labels(&labels_l), Value::Scalars(&right)),
            ];
            for (l, r) in pairs {
                prop_assert_eq!(any_equal(l, r), pairwise(CmpOp::Eq, l, r));
                for op in [CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge] {
                    prop_assert_eq!(any_ordered(op, l, r), pairwise(op, l, r), "{:?}", op);
                }
            }
        }
    }

    #[test]
    fn the_shortcuts_are_taken_past_the_pairwise_limit() {
        let a: Vec<String> = (0..1000).map(|i| format!("t{i}")).collect();
        let b: Vec<String> = (0..100).map(|i| format!("c{i}")).collect();
        assert!(Value::Labels(&a).len() * Value::Labels(&b).len() > PAIRWISE_LIMIT);
        assert!(!any_equal(Value::Labels(&a), Value::Labels(&b)));
        let mut c = b.clone();
        c.push("t999".into());
        assert!(any_equal(Value::Labels(&a), Value::Labels(&c)));
        assert!(any_ordered(CmpOp::Lt, Value::Labels(&b), Value::Labels(&a)));
        assert!(!any_ordered(
            CmpOp::Gt,
            Value::Labels(&b),
            Value::Labels(&a)
        ));
    }
}
