//! The one error type of the crate. A client typed the expression, so every message says what to change,
//! and the byte offset lets an API response or a CLI point at the spot.

use thiserror::Error;

/// What went wrong, for callers that react to the kind rather than show the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Nothing but whitespace.
    Empty,
    /// Longer than [`crate::MAX_SOURCE_BYTES`].
    TooLong,
    /// Parentheses and `not` nested deeper than [`crate::MAX_DEPTH`].
    TooDeep,
    /// A string without its closing quote.
    UnterminatedString,
    /// A backslash escape the language does not know.
    InvalidEscape,
    /// A number that does not parse or does not fit in a finite f64.
    InvalidNumber,
    /// A character that starts no token.
    UnexpectedCharacter,
    /// `=`, `&&`, `like` and friends where an operator belongs.
    UnknownOperator,
    /// A `(` or `[` never closed, or a `)` with nothing to close.
    Unbalanced,
    /// An operator, `(` or the start of input not followed by a value.
    ExpectedValue,
    /// Tokens left after a complete expression.
    TrailingInput,
    /// A token that does not fit where it stands (covers the cases without a more specific kind).
    Unexpected,
    /// A list literal whose elements are not all of one type, nested, or not literals.
    InvalidList,
    /// Two values whose types can never satisfy the operator, known without looking at any item.
    TypeMismatch,
    /// A field path that names nothing: `user` alone, `id.x`, a keyword in capitals.
    InvalidField,
    /// `a < b < c`.
    ChainedComparison,
    /// A boost factor that is not finite or not above zero.
    InvalidFactor,
}

/// A parse error, with the byte offset into the expression where it was found.
///
/// Displays as `at 17: expected a value after "<", found end of input`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("at {position}: {message}")]
pub struct ExprError {
    pub message: String,
    /// Byte offset into the source; the source length for "end of input".
    pub position: usize,
    pub kind: ErrorKind,
}

impl ExprError {
    pub(crate) fn new(kind: ErrorKind, position: usize, message: impl Into<String>) -> Self {
        ExprError {
            message: message.into(),
            position,
            kind,
        }
    }
}
