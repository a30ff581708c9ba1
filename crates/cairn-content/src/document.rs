//! The neutral form that items and users take before feature building: labelled tokens, numbers,
//! free text and an optional dense vector. Items and users differ only in which fields they fill.

use std::collections::BTreeMap;

use cairn_core::{Item, PropertyValue, Scalar, User};
use serde::{Deserialize, Serialize};

/// Which part of an entity a feature comes from. Each group is normalised on its own and then
/// weighted, so that a long description cannot drown the categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Group {
    Category,
    Tag,
    Property,
    Text,
    Embedding,
}

impl Group {
    pub const ALL: [Group; 5] = [
        Group::Category,
        Group::Tag,
        Group::Property,
        Group::Text,
        Group::Embedding,
    ];

    pub fn index(self) -> usize {
        self as usize
    }
}

/// One entity's raw content.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document<'a> {
    /// (group, token) pairs: categories, tags, string and bool properties. Repeats are ignored.
    pub labels: Vec<(Group, String)>,
    /// Numeric properties by key.
    pub numbers: Vec<(&'a str, f64)>,
    /// Free-text fields (title, description).
    pub texts: Vec<&'a str>,
    pub embedding: Option<&'a [f32]>,
}

impl<'a> Document<'a> {
    pub fn from_item(item: &'a Item) -> Self {
        let mut doc = Document::default();
        for c in &item.categories {
            doc.labels.push((Group::Category, c.trim().to_lowercase()));
        }
        for t in &item.tags {
            doc.labels.push((Group::Tag, t.trim().to_lowercase()));
        }
        doc.add_properties(&item.properties);
        doc.texts.extend(item.title.as_deref());
        doc.texts.extend(item.description.as_deref());
        doc.embedding = item.embedding.as_deref();
        doc
    }

    pub fn from_user(user: &'a User) -> Self {
        let mut doc = Document::default();
        doc.add_properties(&user.properties);
        doc
    }

    fn add_properties(&mut self, properties: &'a BTreeMap<String, PropertyValue>) {
        for (key, value) in properties {
            match value {
                PropertyValue::Number(n) => self.numbers.push((key, *n)),
                PropertyValue::Bool(b) => self.labels.push((Group::Property, format!("{key}={b}"))),
                PropertyValue::String(s) => {
                    self.labels.push((Group::Property, string_label(key, s)))
                }
                PropertyValue::List(values) => {
                    for v in values {
                        match v {
                            Scalar::Number(n) => self.numbers.push((key, *n)),
                            Scalar::Bool(b) => {
                                self.labels.push((Group::Property, format!("{key}={b}")))
                            }
                            Scalar::String(s) => {
                                self.labels.push((Group::Property, string_label(key, s)))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn string_label(key: &str, value: &str) -> String {
    format!("{key}={}", value.trim().to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_fields_land_in_their_groups() {
        let mut item = Item::new("a");
        item.categories = vec!["Shoes".into()];
        item.tags = vec![" Red ".into()];
        item.title = Some("Trail runner".into());
        item.properties
            .insert("price".into(), PropertyValue::Number(30.0));
        item.properties
            .insert("brand".into(), PropertyValue::String("ACME".into()));
        item.properties
            .insert("sale".into(), PropertyValue::Bool(true));
        let doc = Document::from_item(&item);
        assert_eq!(
            doc.labels,
            vec![
                (Group::Category, "shoes".to_string()),
                (Group::Tag, "red".to_string()),
                (Group::Property, "brand=acme".to_string()),
                (Group::Property, "sale=true".to_string()),
            ]
        );
        assert_eq!(doc.numbers, vec![("price", 30.0)]);
        assert_eq!(doc.texts, vec!["Trail runner"]);
    }
}
