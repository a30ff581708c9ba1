//! Parse-time type checks. Only what is certain without an item is rejected: two literals, or a literal
//! and a built-in field of fixed type (`id == 5`). Properties can hold any type, so a comparison that
//! involves one is left to run time, where a mismatch is simply false.

use crate::ast::{CmpOp, ListLiteral, Literal, Operand, ScalarType, StaticType};
use crate::error::{ErrorKind, ExprError};

/// An operand with its source text, for messages.
pub(crate) type Quoted<'s> = (Operand, &'s str);

pub(crate) fn list_misplaced(position: usize) -> ExprError {
    ExprError::new(
        ErrorKind::InvalidList,
        position,
        "a list can only follow \"in\" or \"not in\", like category in [\"jazz\", \"blues\"]",
    )
}

fn is_list_literal(operand: &Operand) -> bool {
    matches!(operand, Operand::Literal(Literal::List(_)))
}

/// Byte offset of `part` inside `src`; `part` is always a slice of it.
fn offset_in(src: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(src.as_ptr() as usize)
}

fn mismatch(src: &str, left: &Quoted, lt: ScalarType, right: &Quoted, rt: ScalarType) -> ExprError {
    ExprError::new(
        ErrorKind::TypeMismatch,
        offset_in(src, right.1),
        format!(
            "type mismatch: {} is {} but {} is {}; this comparison can never hold",
            left.1,
            lt.name(),
            right.1,
            rt.name()
        ),
    )
}

/// Rejects element types that are both known and different.
fn check_elements(src: &str, left: &Quoted, right: &Quoted) -> Result<(), ExprError> {
    match (
        left.0.static_type().element(),
        right.0.static_type().element(),
    ) {
        (Some(lt), Some(rt)) if lt != rt => Err(mismatch(src, left, lt, right, rt)),
        _ => Ok(()),
    }
}

pub(crate) fn check_compare(
    src: &str,
    op: CmpOp,
    left: &Quoted,
    right: &Quoted,
    op_position: usize,
) -> Result<(), ExprError> {
    for side in [left, right] {
        if is_list_literal(&side.0) {
            return Err(list_misplaced(offset_in(src, side.1)));
        }
    }
    if op.is_ordering() {
        let is_bool = |q: &Quoted| q.0.static_type().element() == Some(ScalarType::Bool);
        if is_bool(left) || is_bool(right) {
            return Err(ExprError::new(
                ErrorKind::TypeMismatch,
                op_position,
                format!(
                    "\"{}\" orders numbers or strings, not true/false",
                    op.symbol()
                ),
            ));
        }
    }
    check_elements(src, left, right)
}

pub(crate) fn check_in(
    src: &str,
    left: &Quoted,
    right: &Quoted,
    negated: bool,
) -> Result<(), ExprError> {
    if is_list_literal(&left.0) {
        return Err(list_misplaced(offset_in(src, left.1)));
    }
    if let Operand::Literal(Literal::Bool(_) | Literal::Number(_) | Literal::Str(_)) = right.0 {
        let operator = if negated { "not in" } else { "in" };
        let equality = if negated { "!=" } else { "==" };
        return Err(ExprError::new(
            ErrorKind::TypeMismatch,
            offset_in(src, right.1),
            format!(
                "\"{operator}\" needs a list on its right, like [{}]; to compare with one value use \"{equality}\"",
                right.1
            ),
        ));
    }
    check_elements(src, left, right)
}

pub(crate) fn check_contains(
    src: &str,
    left: &Quoted,
    right: &Quoted,
    op_position: usize,
) -> Result<(), ExprError> {
    for side in [left, right] {
        if is_list_literal(&side.0) {
            return Err(list_misplaced(offset_in(src, side.1)));
        }
    }
    match left.0.static_type() {
        StaticType::Scalar(t @ (ScalarType::Number | ScalarType::Bool)) => Err(ExprError::new(
            ErrorKind::TypeMismatch,
            op_position,
            format!(
                "\"contains\" needs a string or a list on its left, but {} is {}",
                left.1,
                t.name()
            ),
        )),
        _ => check_elements(src, left, right),
    }
}

/// Builds a list literal of one element type, or says which element breaks the rule.
pub(crate) fn typed_list(elements: Vec<(Literal, usize)>) -> Result<ListLiteral, ExprError> {
    let type_of = |l: &Literal| match l {
        Literal::Bool(_) => ScalarType::Bool,
        Literal::Number(_) => ScalarType::Number,
        _ => ScalarType::String,
    };
    let Some(first) = elements.first().map(|(l, _)| type_of(l)) else {
        return Ok(ListLiteral::Strings(Box::new([])));
    };
    if let Some((odd, position)) = elements.iter().find(|(l, _)| type_of(l) != first) {
        return Err(ExprError::new(
            ErrorKind::InvalidList,
            *position,
            format!(
                "this list mixes {} and {}; all elements of a list must have one type",
                first.name(),
                type_of(odd).name()
            ),
        ));
    }
    let values = elements.into_iter().map(|(l, _)| l);
    Ok(match first {
        ScalarType::String => {
            let mut strings: Vec<Box<str>> = values
                .filter_map(|l| match l {
                    Literal::Str(s) => Some(s),
                    _ => None,
                })
                .collect();
            strings.sort_unstable();
            strings.dedup();
            ListLiteral::Strings(strings.into())
        }
        ScalarType::Number => ListLiteral::Numbers(
            values
                .filter_map(|l| match l {
                    Literal::Number(n) => Some(n),
                    _ => None,
                })
                .collect(),
        ),
        ScalarType::Bool => ListLiteral::Bools(
            values
                .filter_map(|l| match l {
                    Literal::Bool(b) => Some(b),
                    _ => None,
                })
                .collect(),
        ),
    })
}
