//! The compiled form of an expression. Field names are resolved to [`Field`] at parse time, list
//! literals are typed and (for strings) sorted, and `and`/`or` chains are flat, so evaluation walks a
//! shallow tree and never allocates.

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    pub fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

/// Where a value comes from: the item, the user context, or the request's history.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field {
    Id,
    Categories,
    Tags,
    Title,
    Description,
    AvailableFrom,
    AvailableUntil,
    Property(Box<str>),
    UserProperty(Box<str>),
    UserCategories,
    Seen,
}

/// The item fields that are not properties, by every name they answer to.
pub(crate) fn builtin_item_field(name: &str) -> Option<Field> {
    Some(match name {
        "id" => Field::Id,
        "category" | "categories" => Field::Categories,
        "tags" => Field::Tags,
        "title" => Field::Title,
        "description" => Field::Description,
        "available_from" => Field::AvailableFrom,
        "available_until" => Field::AvailableUntil,
        _ => return None,
    })
}

/// A list literal. Mixed types are rejected by the parser, so one variant per element type suffices.
/// Strings are sorted and deduplicated for binary search.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ListLiteral {
    Strings(Box<[Box<str>]>),
    Numbers(Box<[f64]>),
    Bools(Box<[bool]>),
}

impl ListLiteral {
    pub fn len(&self) -> usize {
        match self {
            ListLiteral::Strings(v) => v.len(),
            ListLiteral::Numbers(v) => v.len(),
            ListLiteral::Bools(v) => v.len(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Bool(bool),
    Number(f64),
    Str(Box<str>),
    List(ListLiteral),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Field(Field),
    Literal(Literal),
}

/// A boolean expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    /// A value in boolean position: `new_release`.
    Truthy(Operand),
    Exists(Field),
    Compare {
        op: CmpOp,
        left: Operand,
        right: Operand,
    },
    /// `left in right`, or `left not in right` when `negated`.
    In {
        negated: bool,
        left: Operand,
        right: Operand,
    },
    Contains {
        left: Operand,
        right: Operand,
    },
}

/// The type of a scalar, or of a list's elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarType {
    Bool,
    Number,
    String,
}

impl ScalarType {
    pub fn name(self) -> &'static str {
        match self {
            ScalarType::Bool => "true/false",
            ScalarType::Number => "a number",
            ScalarType::String => "a string",
        }
    }
}

/// What the parser knows about an operand's type without seeing an item. Properties can hold anything,
/// so they are `Unknown`; built-in fields and literals are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StaticType {
    Scalar(ScalarType),
    /// A list whose elements are of this type (`None`: unknown, or an empty literal).
    List(Option<ScalarType>),
    Unknown,
}

impl StaticType {
    /// The type of the scalars the operand contributes to a comparison: itself, or its elements.
    pub fn element(self) -> Option<ScalarType> {
        match self {
            StaticType::Scalar(t) => Some(t),
            StaticType::List(t) => t,
            StaticType::Unknown => None,
        }
    }
}

impl Operand {
    pub fn static_type(&self) -> StaticType {
        use ScalarType as S;
        use StaticType as T;
        match self {
            Operand::Literal(Literal::Bool(_)) => T::Scalar(S::Bool),
            Operand::Literal(Literal::Number(_)) => T::Scalar(S::Number),
            Operand::Literal(Literal::Str(_)) => T::Scalar(S::String),
            Operand::Literal(Literal::List(list)) => T::List(match list {
                _ if list.len() == 0 => None,
                ListLiteral::Strings(_) => Some(S::String),
                ListLiteral::Numbers(_) => Some(S::Number),
                ListLiteral::Bools(_) => Some(S::Bool),
            }),
            Operand::Field(field) => match field {
                Field::Id | Field::Title | Field::Description => T::Scalar(S::String),
                Field::Categories | Field::Tags | Field::UserCategories => T::List(Some(S::String)),
                Field::AvailableFrom | Field::AvailableUntil => T::Scalar(S::Number),
                Field::Seen => T::Scalar(S::Bool),
                Field::Property(_) | Field::UserProperty(_) => T::Unknown,
            },
        }
    }
}

/// The names of the item properties `node` reads, each once, in the order they first appear.
pub(crate) fn item_properties(node: &Node) -> Vec<&str> {
    fn field<'a>(f: &'a Field, out: &mut Vec<&'a str>) {
        if let Field::Property(name) = f {
            if !out.contains(&&**name) {
                out.push(name);
            }
        }
    }
    fn operand<'a>(o: &'a Operand, out: &mut Vec<&'a str>) {
        if let Operand::Field(f) = o {
            field(f, out);
        }
    }
    fn walk<'a>(node: &'a Node, out: &mut Vec<&'a str>) {
        match node {
            Node::And(nodes) | Node::Or(nodes) => nodes.iter().for_each(|n| walk(n, out)),
            Node::Not(inner) => walk(inner, out),
            Node::Truthy(o) => operand(o, out),
            Node::Exists(f) => field(f, out),
            Node::Compare { left, right, .. }
            | Node::In { left, right, .. }
            | Node::Contains { left, right } => {
                operand(left, out);
                operand(right, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(node, &mut out);
    out
}

/// Which parts of the user context a filter reads, so the engine can skip computing the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Uses {
    /// `seen`: the engine must fill [`crate::UserContext::seen_items`].
    pub seen: bool,
    /// `user.categories`: the engine must fill [`crate::UserContext::categories`].
    pub user_categories: bool,
    /// `user.<property>`: the engine must fill [`crate::UserContext::properties`].
    pub user_properties: bool,
}

impl Uses {
    fn add_field(&mut self, field: &Field) {
        match field {
            Field::Seen => self.seen = true,
            Field::UserCategories => self.user_categories = true,
            Field::UserProperty(_) => self.user_properties = true,
            _ => {}
        }
    }

    fn add_operand(&mut self, operand: &Operand) {
        if let Operand::Field(f) = operand {
            self.add_field(f);
        }
    }

    pub(crate) fn of(node: &Node) -> Uses {
        let mut uses = Uses::default();
        uses.add_node(node);
        uses
    }

    fn add_node(&mut self, node: &Node) {
        match node {
            Node::And(nodes) | Node::Or(nodes) => nodes.iter().for_each(|n| self.add_node(n)),
            Node::Not(inner) => self.add_node(inner),
            Node::Truthy(o) => self.add_operand(o),
            Node::Exists(f) => self.add_field(f),
            Node::Compare { left, right, .. }
            | Node::In { left, right, .. }
            | Node::Contains { left, right } => {
                self.add_operand(left);
                self.add_operand(right);
            }
        }
    }
}
