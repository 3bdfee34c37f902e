//! A small owned view of a parsed TOML document that keeps every key's and
//! value's byte span, so that later checks can name the line and column.

use std::ops::Range;

use toml_edit::{Item, Value};

pub type Span = Option<Range<usize>>;

#[derive(Clone, Debug)]
pub enum Node {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    /// Datetimes and anything else no parameter accepts.
    Other(&'static str),
    Array(Vec<Spanned>),
    Table(Vec<Entry>),
}

#[derive(Clone, Debug)]
pub struct Spanned {
    pub node: Node,
    pub span: Span,
    /// An inline table (`{ ... }`), as opposed to `[a]` or dotted keys (`a.b = 1`).
    pub inline: bool,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Spanned,
}

impl Node {
    /// The TOML type name, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::Int(_) => "an integer",
            Node::Float(_) => "a float",
            Node::Str(_) => "a string",
            Node::Bool(_) => "a boolean",
            Node::Other(t) => t,
            Node::Array(_) => "an array",
            Node::Table(_) => "a table",
        }
    }
}

pub fn from_table(t: &toml_edit::Table) -> Spanned {
    let entries =
        t.iter().map(|(k, item)| Entry { key: k.to_string(), key_span: t.key(k).and_then(|k| k.span()), value: from_item(item) }).collect();
    Spanned { node: Node::Table(entries), span: t.span(), inline: false }
}

fn from_item(item: &Item) -> Spanned {
    match item {
        Item::Value(v) => from_value(v),
        Item::Table(t) => from_table(t),
        Item::ArrayOfTables(a) => Spanned { node: Node::Array(a.iter().map(from_table).collect()), span: a.span(), inline: false },
        Item::None => Spanned { node: Node::Other("nothing"), span: None, inline: false },
    }
}

fn from_value(v: &Value) -> Spanned {
    let node = match v {
        Value::Integer(i) => Node::Int(*i.value()),
        Value::Float(f) => Node::Float(*f.value()),
        Value::String(s) => Node::Str(s.value().clone()),
        Value::Boolean(b) => Node::Bool(*b.value()),
        Value::Datetime(_) => Node::Other("a datetime"),
        Value::Array(a) => Node::Array(a.iter().map(from_value).collect()),
        Value::InlineTable(t) => Node::Table(
            t.iter().map(|(k, v)| Entry { key: k.to_string(), key_span: t.key(k).and_then(|k| k.span()), value: from_value(v) }).collect(),
        ),
    };
    let inline = matches!(v, Value::InlineTable(_));
    Spanned { node, span: v.span(), inline }
}
