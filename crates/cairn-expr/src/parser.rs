//! Recursive descent over the grammar in the crate docs. Precedence, loosest first: `or`, `and`, `not`,
//! then one comparison. Recursion happens only through `(` and `not`, and both count against
//! [`MAX_DEPTH`], so no input can exhaust the stack.

use crate::ast::{builtin_item_field, Field, ListLiteral, Literal, Node, Operand};
use crate::error::{ErrorKind, ExprError};
use crate::lexer::{Lexer, Token, TokenKind};
use crate::types;

/// The longest accepted expression, in bytes.
pub const MAX_SOURCE_BYTES: usize = 4096;
/// The deepest accepted nesting of parentheses and `not`.
pub const MAX_DEPTH: usize = 32;

const KEYWORDS: [&str; 8] = [
    "and", "or", "not", "in", "contains", "true", "false", "exists",
];

/// The lowercase keyword `name` spells in other capitalisation (`AND`, `True`), if any.
fn keyword_in_other_case(name: &str) -> Option<&'static str> {
    KEYWORDS
        .iter()
        .find(|kw| name.eq_ignore_ascii_case(kw) && name != **kw)
        .copied()
}

/// A parsed operand before we know whether it is compared or used as a condition.
enum Term {
    Value(Operand),
    Condition(Node),
}

/// A term with its source span, for messages that quote it.
struct Spanned {
    term: Term,
    start: usize,
    end: usize,
}

pub(crate) fn parse(src: &str) -> Result<Node, ExprError> {
    if src.len() > MAX_SOURCE_BYTES {
        return Err(ExprError::new(
            ErrorKind::TooLong,
            MAX_SOURCE_BYTES,
            format!(
                "the expression is {} bytes long; at most {MAX_SOURCE_BYTES} are allowed",
                src.len()
            ),
        ));
    }
    if src.trim().is_empty() {
        return Err(ExprError::new(
            ErrorKind::Empty,
            0,
            "empty expression: write a condition such as price < 20, or leave the expression out",
        ));
    }
    let mut parser = Parser {
        src,
        lexer: Lexer::new(src),
        peeked: None,
        previous: None,
        depth: 0,
    };
    let node = parser.or()?;
    let next = parser.peek()?.clone();
    match next.kind {
        TokenKind::End => Ok(node),
        TokenKind::RParen => Err(ExprError::new(
            ErrorKind::Unbalanced,
            next.start,
            "unbalanced \")\": there is no \"(\" for it to close",
        )),
        _ => Err(parser.trailing(&next)),
    }
}

struct Parser<'s> {
    src: &'s str,
    lexer: Lexer<'s>,
    peeked: Option<Token<'s>>,
    previous: Option<Token<'s>>,
    depth: usize,
}

impl<'s> Parser<'s> {
    fn peek(&mut self) -> Result<&Token<'s>, ExprError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_token()?);
        }
        Ok(self.peeked.as_ref().expect("filled just above"))
    }

    fn bump(&mut self) -> Result<Token<'s>, ExprError> {
        self.peek()?;
        let token = self.peeked.take().expect("peek filled it");
        self.previous = Some(token.clone());
        Ok(token)
    }

    fn peek_is_ident(&mut self, word: &str) -> Result<bool, ExprError> {
        Ok(matches!(self.peek()?.kind, TokenKind::Ident(w) if w == word))
    }

    fn enter(&mut self, position: usize) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExprError::new(
                ErrorKind::TooDeep,
                position,
                format!(
                    "more than {MAX_DEPTH} nested parentheses and \"not\"s; simplify the expression"
                ),
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Node, ExprError> {
        let mut nodes = vec![self.and()?];
        while self.peek_is_ident("or")? {
            self.bump()?;
            nodes.push(self.and()?);
        }
        Ok(if nodes.len() == 1 {
            nodes.pop().expect("one node")
        } else {
            Node::Or(nodes)
        })
    }

    fn and(&mut self) -> Result<Node, ExprError> {
        let mut nodes = vec![self.unary()?];
        while self.peek_is_ident("and")? {
            self.bump()?;
            nodes.push(self.unary()?);
        }
        Ok(if nodes.len() == 1 {
            nodes.pop().expect("one node")
        } else {
            Node::And(nodes)
        })
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        if self.peek_is_ident("not")? {
            let not = self.bump()?;
            self.enter(not.start)?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Node::Not(Box::new(inner)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Node, ExprError> {
        let left = self.term()?;
        let next = self.peek()?.clone();
        let node = match next.kind {
            TokenKind::Cmp(op) => {
                self.bump()?;
                let right = self.value_operand(&next)?;
                let (left, right) = (self.operand_of(left, &next)?, right);
                types::check_compare(self.src, op, &left, &right, next.start)?;
                Node::Compare {
                    op,
                    left: left.0,
                    right: right.0,
                }
            }
            TokenKind::Ident("in") => {
                self.bump()?;
                self.membership(left, &next, false)?
            }
            TokenKind::Ident("not") => {
                self.bump()?;
                let after_not = self.peek()?.clone();
                if !matches!(after_not.kind, TokenKind::Ident("in")) {
                    return Err(ExprError::new(
                        ErrorKind::Unexpected,
                        after_not.start,
                        format!(
                            "expected \"in\" after \"not\", found {}; to negate a condition, put \
                             \"not\" before it: not (a contains b)",
                            after_not.describe(self.src)
                        ),
                    ));
                }
                let in_token = self.bump()?;
                self.membership(left, &in_token, true)?
            }
            TokenKind::Ident("contains") => {
                self.bump()?;
                let right = self.value_operand(&next)?;
                let left = self.operand_of(left, &next)?;
                types::check_contains(self.src, &left, &right, next.start)?;
                Node::Contains {
                    left: left.0,
                    right: right.0,
                }
            }
            TokenKind::Ident(word)
                if word != "and" && word != "or" && matches!(left.term, Term::Value(_)) =>
            {
                return Err(unknown_word_operator(word, next.start));
            }
            _ => return self.condition_of(left),
        };
        let after = self.peek()?.clone();
        if matches!(
            after.kind,
            TokenKind::Cmp(_) | TokenKind::Ident("in" | "contains")
        ) {
            return Err(ExprError::new(
                ErrorKind::ChainedComparison,
                after.start,
                "comparisons do not chain: write a < b and b < c, or use parentheses",
            ));
        }
        Ok(node)
    }

    fn membership(
        &mut self,
        left: Spanned,
        operator: &Token<'s>,
        negated: bool,
    ) -> Result<Node, ExprError> {
        let right = self.value_operand(operator)?;
        let left = self.operand_of(left, operator)?;
        types::check_in(self.src, &left, &right, negated)?;
        Ok(Node::In {
            negated,
            left: left.0,
            right: right.0,
        })
    }

    /// A term in boolean position: conditions stay, values are tested for truthiness.
    fn condition_of(&self, spanned: Spanned) -> Result<Node, ExprError> {
        match spanned.term {
            Term::Condition(node) => Ok(node),
            Term::Value(Operand::Literal(Literal::List(_))) => {
                Err(types::list_misplaced(spanned.start))
            }
            Term::Value(operand) => Ok(Node::Truthy(operand)),
        }
    }

    /// The left side of an operator, which must be a value rather than a condition.
    fn operand_of(
        &self,
        spanned: Spanned,
        operator: &Token<'s>,
    ) -> Result<(Operand, &'s str), ExprError> {
        match spanned.term {
            Term::Value(operand) => Ok((operand, &self.src[spanned.start..spanned.end])),
            Term::Condition(_) => Err(ExprError::new(
                ErrorKind::Unexpected,
                spanned.start,
                format!(
                    "the left side of {} is a condition; compare a field or a value, and join \
                     conditions with \"and\" or \"or\"",
                    operator.describe(self.src)
                ),
            )),
        }
    }

    /// The right side of an operator.
    fn value_operand(&mut self, operator: &Token<'s>) -> Result<(Operand, &'s str), ExprError> {
        let spanned = self.term()?;
        match spanned.term {
            Term::Value(operand) => Ok((operand, &self.src[spanned.start..spanned.end])),
            Term::Condition(_) => Err(ExprError::new(
                ErrorKind::Unexpected,
                spanned.start,
                format!(
                    "the right side of {} is a condition; compare with a field or a value",
                    operator.describe(self.src)
                ),
            )),
        }
    }

    fn term(&mut self) -> Result<Spanned, ExprError> {
        let token = self.peek()?.clone();
        let start = token.start;
        let value = |term, end| Ok(Spanned { term, start, end });
        match token.kind {
            TokenKind::Number(n) => {
                self.bump()?;
                value(Term::Value(Operand::Literal(Literal::Number(n))), token.end)
            }
            TokenKind::Str(s) => {
                self.bump()?;
                value(
                    Term::Value(Operand::Literal(Literal::Str(s.into_boxed_str()))),
                    token.end,
                )
            }
            TokenKind::Ident(b @ ("true" | "false")) => {
                self.bump()?;
                value(
                    Term::Value(Operand::Literal(Literal::Bool(b == "true"))),
                    token.end,
                )
            }
            TokenKind::LBracket => {
                let list = self.list()?;
                let end = self.previous_end();
                value(Term::Value(Operand::Literal(Literal::List(list))), end)
            }
            TokenKind::LParen => {
                self.bump()?;
                self.enter(start)?;
                let inner = self.or()?;
                self.close_paren(start)?;
                self.depth -= 1;
                let end = self.previous_end();
                match inner {
                    // `(price) < 20` is harmless; keep the parenthesised value usable as an operand.
                    Node::Truthy(operand) => value(Term::Value(operand), end),
                    node => value(Term::Condition(node), end),
                }
            }
            TokenKind::Ident("exists") => {
                self.bump()?;
                let field = self.exists_argument()?;
                value(Term::Condition(Node::Exists(field)), self.previous_end())
            }
            TokenKind::Ident(word) if !KEYWORDS.contains(&word) => {
                self.bump()?;
                let field = self.field_path(word, start)?;
                value(Term::Value(Operand::Field(field)), self.previous_end())
            }
            _ => Err(self.expected_value(&token)),
        }
    }

    fn previous_end(&self) -> usize {
        self.previous.as_ref().map_or(0, |t| t.end)
    }

    fn expected_value(&self, found: &Token<'s>) -> ExprError {
        let found_text = found.describe(self.src);
        let message = match &self.previous {
            Some(prev) => format!(
                "expected a value after {}, found {found_text}",
                prev.describe(self.src)
            ),
            None => format!("expected a value, found {found_text}"),
        };
        ExprError::new(ErrorKind::ExpectedValue, found.start, message)
    }

    fn close_paren(&mut self, open: usize) -> Result<(), ExprError> {
        let next = self.peek()?.clone();
        match next.kind {
            TokenKind::RParen => {
                self.bump()?;
                Ok(())
            }
            TokenKind::End => Err(ExprError::new(
                ErrorKind::Unbalanced,
                open,
                "this \"(\" is never closed: add a \")\"",
            )),
            _ => Err(self.trailing(&next)),
        }
    }

    /// The error for a token left over after a complete condition.
    fn trailing(&self, token: &Token<'s>) -> ExprError {
        if let TokenKind::Ident(word) = token.kind {
            if let Some(keyword) = keyword_in_other_case(word) {
                return ExprError::new(
                    ErrorKind::TrailingInput,
                    token.start,
                    format!("keywords are lowercase: write \"{keyword}\""),
                );
            }
        }
        ExprError::new(
            ErrorKind::TrailingInput,
            token.start,
            format!(
                "unexpected {} after a complete condition; join conditions with \"and\" or \"or\"",
                token.describe(self.src)
            ),
        )
    }

    fn exists_argument(&mut self) -> Result<Field, ExprError> {
        let open = self.peek()?.clone();
        if open.kind != TokenKind::LParen {
            return Err(ExprError::new(
                ErrorKind::Unexpected,
                open.start,
                format!(
                    "\"exists\" takes a field in parentheses, like exists(price); found {}",
                    open.describe(self.src)
                ),
            ));
        }
        self.bump()?;
        let name = self.peek()?.clone();
        let field = match name.kind {
            TokenKind::Ident(word) if !KEYWORDS.contains(&word) => {
                self.bump()?;
                self.field_path(word, name.start)?
            }
            _ => {
                return Err(ExprError::new(
                    ErrorKind::Unexpected,
                    name.start,
                    format!(
                        "\"exists\" takes a field name, like exists(price) or exists(item[\"odd name\"]); found {}",
                        name.describe(self.src)
                    ),
                ))
            }
        };
        let close = self.peek()?.clone();
        match close.kind {
            TokenKind::RParen => {
                self.bump()?;
                Ok(field)
            }
            TokenKind::End => Err(ExprError::new(
                ErrorKind::Unbalanced,
                open.start,
                "this \"(\" is never closed: add a \")\"",
            )),
            _ => Err(ExprError::new(
                ErrorKind::Unexpected,
                close.start,
                format!(
                    "\"exists\" takes one field name; expected \")\", found {}",
                    close.describe(self.src)
                ),
            )),
        }
    }

    /// `name`, `a.b`, `item["odd name"]`, resolved to a [`Field`]. The first segment is consumed.
    fn field_path(&mut self, first: &'s str, start: usize) -> Result<Field, ExprError> {
        let mut segments: Vec<(String, usize)> = vec![(first.to_string(), start)];
        loop {
            let next = self.peek()?.clone();
            match next.kind {
                TokenKind::Dot => {
                    self.bump()?;
                    let name = self.peek()?.clone();
                    match name.kind {
                        TokenKind::Ident(word) => {
                            self.bump()?;
                            segments.push((word.to_string(), name.start));
                        }
                        _ => {
                            return Err(ExprError::new(
                                ErrorKind::InvalidField,
                                name.start,
                                format!(
                                    "expected a name after \".\", found {}; write item[\"odd name\"] for names that are not plain words",
                                    name.describe(self.src)
                                ),
                            ))
                        }
                    }
                }
                TokenKind::LBracket => {
                    self.bump()?;
                    let name = self.peek()?.clone();
                    let TokenKind::Str(word) = name.kind else {
                        return Err(ExprError::new(
                            ErrorKind::InvalidField,
                            name.start,
                            format!(
                                "expected a quoted name inside [...], like item[\"odd name\"], found {}",
                                name.describe(self.src)
                            ),
                        ));
                    };
                    self.bump()?;
                    let close = self.peek()?.clone();
                    if close.kind != TokenKind::RBracket {
                        return Err(ExprError::new(
                            if close.kind == TokenKind::End {
                                ErrorKind::Unbalanced
                            } else {
                                ErrorKind::InvalidField
                            },
                            close.start,
                            format!(
                                "expected \"]\" after the name, found {}",
                                close.describe(self.src)
                            ),
                        ));
                    }
                    self.bump()?;
                    segments.push((word, name.start));
                }
                _ => break,
            }
        }
        resolve(&segments)
    }

    fn list(&mut self) -> Result<ListLiteral, ExprError> {
        let open = self.bump()?;
        let mut elements: Vec<(Literal, usize)> = Vec::new();
        loop {
            let token = self.peek()?.clone();
            let literal = match token.kind {
                TokenKind::RBracket => {
                    self.bump()?;
                    break;
                }
                TokenKind::End => return Err(unclosed_bracket(open.start)),
                TokenKind::Number(n) => Literal::Number(n),
                TokenKind::Str(ref s) => Literal::Str(s.clone().into_boxed_str()),
                TokenKind::Ident(b @ ("true" | "false")) => Literal::Bool(b == "true"),
                TokenKind::LBracket => {
                    return Err(ExprError::new(
                        ErrorKind::InvalidList,
                        token.start,
                        "lists cannot contain lists",
                    ))
                }
                TokenKind::Ident(word) if !KEYWORDS.contains(&word) => {
                    return Err(ExprError::new(
                        ErrorKind::InvalidList,
                        token.start,
                        format!(
                            "list elements must be literal values (numbers, \"strings\", true, false), \
                             not fields like {}",
                            token.describe(self.src)
                        ),
                    ))
                }
                _ => return Err(self.expected_value(&token)),
            };
            self.bump()?;
            elements.push((literal, token.start));
            let separator = self.peek()?.clone();
            match separator.kind {
                TokenKind::Comma => {
                    self.bump()?;
                }
                TokenKind::RBracket => {}
                TokenKind::End => return Err(unclosed_bracket(open.start)),
                _ => {
                    return Err(ExprError::new(
                        ErrorKind::Unexpected,
                        separator.start,
                        format!(
                            "expected \",\" or \"]\" in the list, found {}",
                            separator.describe(self.src)
                        ),
                    ))
                }
            }
        }
        types::typed_list(elements)
    }
}

fn unclosed_bracket(open: usize) -> ExprError {
    ExprError::new(
        ErrorKind::Unbalanced,
        open,
        "this \"[\" is never closed: add a \"]\"",
    )
}

fn unknown_word_operator(word: &str, position: usize) -> ExprError {
    if let Some(keyword) = keyword_in_other_case(word) {
        return ExprError::new(
            ErrorKind::UnknownOperator,
            position,
            format!("keywords are lowercase: write \"{keyword}\""),
        );
    }
    ExprError::new(
        ErrorKind::UnknownOperator,
        position,
        format!(
            "unknown operator \"{word}\": operators are ==, !=, <, <=, >, >=, in, not in, contains; \
             join conditions with \"and\" or \"or\""
        ),
    )
}

fn no_subfields(owner: &str, position: usize) -> ExprError {
    ExprError::new(
        ErrorKind::InvalidField,
        position,
        format!("\"{owner}\" has no sub-fields"),
    )
}

/// Maps a path to the field it names. See the crate docs for the naming rules.
fn resolve(segments: &[(String, usize)]) -> Result<Field, ExprError> {
    let (first, first_pos) = (&segments[0].0, segments[0].1);
    let rest = &segments[1..];
    let name = |i: usize| rest[i].0.as_str().into();
    match first.as_str() {
        "item" => match rest.len() {
            0 => Err(ExprError::new(
                ErrorKind::InvalidField,
                first_pos,
                "\"item\" alone is not a field: write item.price or item[\"odd name\"]",
            )),
            1 if rest[0].0 == "properties" => Err(ExprError::new(
                ErrorKind::InvalidField,
                first_pos,
                "name one property: item.properties.price or item.properties[\"odd name\"]",
            )),
            1 => Ok(builtin_item_field(&rest[0].0).unwrap_or_else(|| Field::Property(name(0)))),
            2 if rest[0].0 == "properties" => Ok(Field::Property(name(1))),
            2 => Err(no_subfields(&rest[0].0, rest[1].1)),
            _ => Err(no_subfields(&rest[1].0, rest[2].1)),
        },
        "user" => match rest.len() {
            0 => Err(ExprError::new(
                ErrorKind::InvalidField,
                first_pos,
                "\"user\" alone is not a field: write user.country, user.categories or user[\"odd name\"]",
            )),
            1 if rest[0].0 == "properties" => Err(ExprError::new(
                ErrorKind::InvalidField,
                first_pos,
                "name one property: user.properties.country or user.properties[\"odd name\"]",
            )),
            1 if rest[0].0 == "categories" => Ok(Field::UserCategories),
            1 => Ok(Field::UserProperty(name(0))),
            2 if rest[0].0 == "properties" => Ok(Field::UserProperty(name(1))),
            2 => Err(no_subfields(&rest[0].0, rest[1].1)),
            _ => Err(no_subfields(&rest[1].0, rest[2].1)),
        },
        bare => {
            if let Some((_, pos)) = rest.first() {
                return Err(no_subfields(bare, *pos));
            }
            if let Some(keyword) = keyword_in_other_case(bare) {
                return Err(ExprError::new(
                    ErrorKind::InvalidField,
                    first_pos,
                    format!(
                        "keywords are lowercase: write \"{keyword}\" (for a property named \
                         \"{bare}\", write item[\"{bare}\"])"
                    ),
                ));
            }
            if bare == "seen" {
                return Ok(Field::Seen);
            }
            Ok(builtin_item_field(bare).unwrap_or_else(|| Field::Property(bare.into())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(src: &str) -> Field {
        match parse(src).unwrap() {
            Node::Truthy(Operand::Field(f)) => f,
            other => panic!("{src} parsed to {other:?}"),
        }
    }

    #[test]
    fn field_names_resolve() {
        assert_eq!(field("id"), Field::Id);
        assert_eq!(field("category"), Field::Categories);
        assert_eq!(field("categories"), Field::Categories);
        assert_eq!(field("item.tags"), Field::Tags);
        assert_eq!(field("item[\"title\"]"), Field::Title);
        assert_eq!(field("price"), Field::Property("price".into()));
        assert_eq!(field("item.price"), Field::Property("price".into()));
        assert_eq!(
            field("item[\"odd name\"]"),
            Field::Property("odd name".into())
        );
        assert_eq!(
            field("item.properties.title"),
            Field::Property("title".into())
        );
        assert_eq!(field("item.seen"), Field::Property("seen".into()));
        assert_eq!(field("item.and"), Field::Property("and".into()));
        assert_eq!(field("seen"), Field::Seen);
        assert_eq!(field("user.country"), Field::UserProperty("country".into()));
        assert_eq!(field("user.categories"), Field::UserCategories);
        assert_eq!(
            field("user.properties.categories"),
            Field::UserProperty("categories".into())
        );
        assert_eq!(field("(price)"), Field::Property("price".into()));
    }

    #[test]
    fn precedence_is_or_then_and_then_not() {
        let node = parse("a or b and not c").unwrap();
        let Node::Or(parts) = node else {
            panic!("{node:?}")
        };
        assert_eq!(parts.len(), 2);
        assert!(matches!(&parts[1], Node::And(inner) if matches!(inner[1], Node::Not(_))));
    }

    #[test]
    fn chains_are_flat() {
        let src = vec!["a"; 500].join(" and ");
        assert!(matches!(parse(&src).unwrap(), Node::And(v) if v.len() == 500));
    }

    #[test]
    fn string_lists_are_sorted_and_deduplicated() {
        let node = parse(r#"x in ["b", "a", "b"]"#).unwrap();
        let Node::In { right, .. } = node else {
            panic!()
        };
        assert_eq!(
            right,
            Operand::Literal(Literal::List(ListLiteral::Strings(
                vec!["a".into(), "b".into()].into()
            )))
        );
    }
}
