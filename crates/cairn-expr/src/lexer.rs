//! Turns the source into tokens, one at a time, so that the first error by position is the one reported.
//! Keywords are not recognised here: `and`, `in` etc. come out as identifiers and the parser decides,
//! because after a `.` they are ordinary property names.

use crate::ast::CmpOp;
use crate::error::{ErrorKind, ExprError};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind<'s> {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Cmp(CmpOp),
    Str(String),
    Number(f64),
    Ident(&'s str),
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token<'s> {
    pub kind: TokenKind<'s>,
    pub start: usize,
    pub end: usize,
}

impl Token<'_> {
    /// How an error message names this token: its source text, quoted, with what it is when that helps.
    pub fn describe(&self, src: &str) -> String {
        let text = excerpt(&src[self.start..self.end]);
        match self.kind {
            TokenKind::End => "end of input".to_string(),
            TokenKind::Str(_) => format!("the string {text}"),
            TokenKind::Number(_) => format!("the number {text}"),
            _ => format!("\"{text}\""),
        }
    }
}

/// At most 32 characters of a token, so that a message about a 4 KiB string stays readable.
fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 32;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

pub(crate) struct Lexer<'s> {
    src: &'s str,
    pos: usize,
}

/// Characters that make up comparison operators and the common operators of other languages; a run of
/// them is lexed as one token so that `===` or `=>` is reported whole, with the right suggestion.
fn is_operator_char(c: u8) -> bool {
    matches!(c, b'=' | b'<' | b'>' | b'!' | b'&' | b'|' | b'~')
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_continue(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl<'s> Lexer<'s> {
    pub fn new(src: &'s str) -> Self {
        Lexer { src, pos: 0 }
    }

    fn peek_byte(&self, ahead: usize) -> Option<u8> {
        self.src.as_bytes().get(self.pos + ahead).copied()
    }

    pub fn next_token(&mut self) -> Result<Token<'s>, ExprError> {
        while self.peek_byte(0).is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(c) = self.peek_byte(0) else {
            return Ok(Token {
                kind: TokenKind::End,
                start,
                end: start,
            });
        };
        let single = |kind| Ok((kind, start + 1));
        let (kind, end) = match c {
            b'(' => single(TokenKind::LParen),
            b')' => single(TokenKind::RParen),
            b'[' => single(TokenKind::LBracket),
            b']' => single(TokenKind::RBracket),
            b',' => single(TokenKind::Comma),
            b'.' if self.peek_byte(1).is_some_and(|d| d.is_ascii_digit()) => Err(ExprError::new(
                ErrorKind::InvalidNumber,
                start,
                "a number must start with a digit: write 0.5, not .5",
            )),
            b'.' => single(TokenKind::Dot),
            b'"' | b'\'' => self.string(start, c),
            b'-' | b'0'..=b'9' => self.number(start),
            c if is_operator_char(c) => self.operator(start),
            c if is_ident_start(c) => {
                let mut end = start + 1;
                while self
                    .src
                    .as_bytes()
                    .get(end)
                    .is_some_and(|&c| is_ident_continue(c))
                {
                    end += 1;
                }
                Ok((TokenKind::Ident(&self.src[start..end]), end))
            }
            b'+' | b'*' | b'/' | b'%' => Err(ExprError::new(
                ErrorKind::UnknownOperator,
                start,
                format!(
                    "unknown operator \"{}\": filters have no arithmetic",
                    c as char
                ),
            )),
            _ => {
                let ch = self.src[start..].chars().next().unwrap_or('?');
                Err(ExprError::new(
                    ErrorKind::UnexpectedCharacter,
                    start,
                    format!(
                        "unexpected character {ch:?}; quote text values (\"...\") and write unusual \
                         property names as item[\"name\"]"
                    ),
                ))
            }
        }?;
        self.pos = end;
        Ok(Token { kind, start, end })
    }

    fn operator(&self, start: usize) -> Result<(TokenKind<'s>, usize), ExprError> {
        let bytes = self.src.as_bytes();
        let mut end = start;
        while end < bytes.len() && is_operator_char(bytes[end]) {
            end += 1;
        }
        let text = &self.src[start..end];
        let op = match text {
            "==" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            _ => {
                let hint = match text {
                    "=" | "===" => "use \"==\" to test equality",
                    "<>" | "!==" | "=!" => "use \"!=\" to test inequality",
                    "=<" => "use \"<=\"",
                    "=>" => "use \">=\"",
                    "&&" | "&" => "use \"and\"",
                    "||" | "|" => "use \"or\"",
                    "!" => "use \"not\"",
                    _ => "operators are ==, !=, <, <=, >, >=, in, not in, contains, and, or, not",
                };
                return Err(ExprError::new(
                    ErrorKind::UnknownOperator,
                    start,
                    format!("unknown operator \"{text}\": {hint}"),
                ));
            }
        };
        Ok((TokenKind::Cmp(op), end))
    }

    /// `-?digits(.digits)?([eE][+-]?digits)?`, not followed by an identifier character or another dot.
    fn number(&self, start: usize) -> Result<(TokenKind<'s>, usize), ExprError> {
        let bytes = self.src.as_bytes();
        let digits = |mut i: usize| {
            let from = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            (i, i > from)
        };
        let mut end = start;
        if bytes[end] == b'-' {
            end += 1;
        }
        let (after_int, has_int) = digits(end);
        if !has_int {
            return Err(ExprError::new(
                ErrorKind::UnknownOperator,
                start,
                "unknown operator \"-\": filters have no arithmetic; a negative number is written -5",
            ));
        }
        end = after_int;
        if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
            end = digits(end + 1).0;
        }
        if matches!(bytes.get(end), Some(b'e' | b'E')) {
            let mut exp = end + 1;
            if matches!(bytes.get(exp), Some(b'+' | b'-')) {
                exp += 1;
            }
            let (after_exp, has_exp) = digits(exp);
            if has_exp {
                end = after_exp;
            }
        }
        let malformed = bytes
            .get(end)
            .is_some_and(|&c| is_ident_continue(c) || c == b'.');
        if malformed {
            let mut bad_end = end;
            while bad_end < bytes.len()
                && (is_ident_continue(bytes[bad_end]) || bytes[bad_end] == b'.')
            {
                bad_end += 1;
            }
            return Err(ExprError::new(
                ErrorKind::InvalidNumber,
                start,
                format!(
                    "\"{}\" is not a number; quote it if it is text (\"...\")",
                    excerpt(&self.src[start..bad_end])
                ),
            ));
        }
        let text = &self.src[start..end];
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok((TokenKind::Number(n), end)),
            _ => Err(ExprError::new(
                ErrorKind::InvalidNumber,
                start,
                format!("the number {} is too large", excerpt(text)),
            )),
        }
    }

    fn string(&self, start: usize, quote: u8) -> Result<(TokenKind<'s>, usize), ExprError> {
        let mut value = String::new();
        let mut chars = self.src[start + 1..].char_indices();
        while let Some((offset, c)) = chars.next() {
            let at = start + 1 + offset;
            match c {
                c if c as u32 == quote as u32 => return Ok((TokenKind::Str(value), at + 1)),
                '\\' => {
                    let escaped = match chars.next() {
                        None => break,
                        Some((_, e)) => e,
                    };
                    match escaped {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        '\'' => value.push('\''),
                        'n' => value.push('\n'),
                        't' => value.push('\t'),
                        'r' => value.push('\r'),
                        'u' => value.push(unicode_escape(at, &mut chars)?),
                        other => {
                            return Err(ExprError::new(
                                ErrorKind::InvalidEscape,
                                at,
                                format!(
                                    "unknown escape \"\\{other}\"; valid escapes are \\\\ \\\" \\' \\n \\t \\r \\u{{...}}"
                                ),
                            ))
                        }
                    }
                }
                c => value.push(c),
            }
        }
        let q = quote as char;
        Err(ExprError::new(
            ErrorKind::UnterminatedString,
            start,
            format!("unterminated string: add a closing {q} (write \\{q} for a quote inside it)"),
        ))
    }
}

/// `\u{1F600}`: one to six hex digits naming a Unicode scalar value. `at` is the backslash's offset.
fn unicode_escape(at: usize, chars: &mut std::str::CharIndices<'_>) -> Result<char, ExprError> {
    let bad = || {
        ExprError::new(
            ErrorKind::InvalidEscape,
            at,
            "a \\u escape is written \\u{...} with 1 to 6 hex digits of a Unicode code point, like \\u{e9}",
        )
    };
    if chars.next().map(|(_, c)| c) != Some('{') {
        return Err(bad());
    }
    let mut code: u32 = 0;
    let mut digits = 0;
    for (_, c) in chars.by_ref() {
        if c == '}' {
            if digits == 0 {
                return Err(bad());
            }
            return char::from_u32(code).ok_or_else(|| {
                ExprError::new(
                    ErrorKind::InvalidEscape,
                    at,
                    format!("\\u{{{code:x}}} is not a Unicode character"),
                )
            });
        }
        let d = c.to_digit(16).ok_or_else(bad)?;
        digits += 1;
        if digits > 6 {
            return Err(bad());
        }
        code = code * 16 + d;
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Result<Vec<TokenKind<'_>>, ExprError> {
        let mut lexer = Lexer::new(src);
        let mut out = Vec::new();
        loop {
            let t = lexer.next_token()?;
            if t.kind == TokenKind::End {
                return Ok(out);
            }
            out.push(t.kind);
        }
    }

    #[test]
    fn tokens_of_a_typical_filter() {
        let got = kinds(r#"category in ["jazz",'blues'] and price<=-2.5e1"#).unwrap();
        assert_eq!(
            got,
            vec![
                TokenKind::Ident("category"),
                TokenKind::Ident("in"),
                TokenKind::LBracket,
                TokenKind::Str("jazz".into()),
                TokenKind::Comma,
                TokenKind::Str("blues".into()),
                TokenKind::RBracket,
                TokenKind::Ident("and"),
                TokenKind::Ident("price"),
                TokenKind::Cmp(CmpOp::Le),
                TokenKind::Number(-25.0),
            ]
        );
    }

    #[test]
    fn string_escapes() {
        let got = kinds(r#""a\"b\\c\n\u{e9}" 'it\'s'"#).unwrap();
        assert_eq!(
            got,
            vec![
                TokenKind::Str("a\"b\\c\né".into()),
                TokenKind::Str("it's".into())
            ]
        );
    }

    #[test]
    fn bad_escapes_point_at_the_backslash() {
        let err = kinds(r#"x == "ab\q""#).unwrap_err();
        assert_eq!((err.kind, err.position), (ErrorKind::InvalidEscape, 8));
        for src in [
            r#""\u{}""#,
            r#""\u{110000}""#,
            r#""\u12""#,
            r#""\u{1234567}""#,
        ] {
            assert_eq!(
                kinds(src).unwrap_err().kind,
                ErrorKind::InvalidEscape,
                "{src}"
            );
        }
    }

    #[test]
    fn unterminated_string_points_at_the_opening_quote() {
        let err = kinds(r#"title == "abc"#).unwrap_err();
        assert_eq!((err.kind, err.position), (ErrorKind::UnterminatedString, 9));
        assert!(err.message.contains("closing \""), "{}", err.message);
        let err = kinds(r#"x == "ab\"#).unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnterminatedString);
    }

    #[test]
    fn unknown_operators_get_a_suggestion() {
        for (src, hint) in [
            ("a = 1", "\"==\""),
            ("a === 1", "\"==\""),
            ("a <> 1", "\"!=\""),
            ("a => 1", "\">=\""),
            ("a && b", "\"and\""),
            ("a || b", "\"or\""),
            ("!a", "\"not\""),
            ("a + 1", "arithmetic"),
            ("a - 1", "arithmetic"),
        ] {
            let err = kinds(src).unwrap_err();
            assert_eq!(err.kind, ErrorKind::UnknownOperator, "{src}");
            assert!(err.message.contains(hint), "{src}: {}", err.message);
        }
    }

    #[test]
    fn malformed_numbers() {
        for src in ["1.2.3", "20abc", ".5", "1e999", "-"] {
            let err = kinds(src).unwrap_err();
            assert!(
                matches!(
                    err.kind,
                    ErrorKind::InvalidNumber | ErrorKind::UnknownOperator
                ),
                "{src}: {err}"
            );
        }
        assert_eq!(kinds("1e3").unwrap(), vec![TokenKind::Number(1000.0)]);
    }

    #[test]
    fn non_ascii_outside_strings_is_an_unexpected_character() {
        let err = kinds("prix == 5 é").unwrap_err();
        assert_eq!(
            (err.kind, err.position),
            (ErrorKind::UnexpectedCharacter, 10)
        );
    }

    #[test]
    fn long_tokens_are_shortened_in_messages() {
        let src = format!("\"{}\"", "x".repeat(100));
        let token = Lexer::new(&src).next_token().unwrap();
        assert!(token.describe(&src).chars().count() < 50);
    }
}
