//! A fitted feature space: maps documents (items or users) to sparse, L2-normalised feature rows.
//!
//! Fitting looks at the whole catalog once and fixes everything a row depends on: the label and text
//! vocabularies (bounded by document frequency and size), the inverse document frequencies, the
//! bucket edges of every numeric property and the embedding dimension. Transforming an entity the
//! fit never saw (a new item) uses those fixed choices, so it lands in the same space; tokens outside
//! the vocabulary are dropped. Every choice is made in a deterministic order.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use cairn_core::{CsrMatrix, Item, User};
use serde::{Deserialize, Serialize};

use crate::document::{Document, Group};
use crate::error::ContentError;
use crate::text::tokenize_into;

/// How term frequency counts in a text feature's weight (both multiply by the IDF).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum TextWeighting {
    /// `1 + ln(tf)`.
    TfIdf,
    /// Okapi BM25 saturation: `tf (k1 + 1) / (tf + k1 (1 - b + b len / avg_len))`.
    Bm25 { k1: f32, b: f32 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FeatureConfig {
    /// A text token must appear in at least this many documents to be a feature.
    pub text_min_df: u32,
    /// Tokens in more than this share of documents are dropped (too common to discriminate).
    pub text_max_df_ratio: f32,
    /// At most this many text tokens (the most frequent are kept).
    pub text_max_vocab: usize,
    pub text_weighting: TextWeighting,
    /// Label features (categories, tags, string/bool properties) seen in fewer documents are dropped.
    pub label_min_df: u32,
    /// At most this many label features (the most frequent are kept).
    pub label_max_vocab: usize,
    /// Buckets per numeric property (quantiles of the fitted values).
    pub number_buckets: usize,
    /// Weight a label by its IDF, so that rare tags count more than ubiquitous categories.
    pub label_idf: bool,
    /// Relative weight of each group in a row, indexed by [`Group::index`]; a group's sub-vector is
    /// normalised, multiplied by the square root of its weight, and the whole row normalised again.
    pub group_weights: [f32; 5],
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            text_min_df: 2,
            text_max_df_ratio: 0.5,
            text_max_vocab: 20_000,
            text_weighting: TextWeighting::Bm25 { k1: 1.2, b: 0.75 },
            label_min_df: 1,
            label_max_vocab: 100_000,
            number_buckets: 8,
            label_idf: true,
            group_weights: [1.0; 5],
        }
    }
}

impl FeatureConfig {
    pub fn validate(&self) -> Result<(), ContentError> {
        let bad = |m: &str| Err(ContentError::InvalidConfig(m.to_string()));
        if !(self.text_max_df_ratio > 0.0 && self.text_max_df_ratio <= 1.0) {
            return bad("text_max_df_ratio must be in (0, 1]");
        }
        if self.number_buckets == 0 || self.number_buckets > 1000 {
            return bad("number_buckets must be 1 to 1000");
        }
        if self
            .group_weights
            .iter()
            .any(|w| !w.is_finite() || *w < 0.0)
        {
            return bad("group weights must be finite and non-negative");
        }
        if let TextWeighting::Bm25 { k1, b } = self.text_weighting {
            if !(k1 >= 0.0 && k1.is_finite() && (0.0..=1.0).contains(&b)) {
                return bad("BM25 needs k1 >= 0 and b in [0, 1]");
            }
        }
        Ok(())
    }
}

/// A feature column's meaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureInfo {
    pub group: Group,
    /// Readable name for explanations, e.g. `category:shoes`, `text:trail`, `price#3`, `embedding[7]`.
    pub name: String,
    pub idf: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpace {
    pub config: FeatureConfig,
    pub features: Vec<FeatureInfo>,
    /// Label and text tokens (keyed `group:token`) to their column.
    lookup: HashMap<String, u32>,
    /// Per numeric property: the upper bucket edges and the column of bucket 0.
    numbers: BTreeMap<String, NumberBuckets>,
    /// Dimension and first column of the embedding block, when items carry embeddings.
    embedding: Option<(usize, u32)>,
    /// Mean text length in tokens, for BM25.
    avg_text_len: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct NumberBuckets {
    edges: Vec<f64>,
    first_column: u32,
}

impl NumberBuckets {
    fn bucket(&self, x: f64) -> usize {
        self.edges.partition_point(|&e| e < x)
    }
}

fn key(group: Group, token: &str) -> String {
    let prefix = match group {
        Group::Category => "category",
        Group::Tag => "tag",
        Group::Property => "property",
        Group::Text => "text",
        Group::Embedding => "embedding",
    };
    format!("{prefix}:{token}")
}

fn idf(n_docs: usize, df: u32) -> f32 {
    ((1.0 + n_docs as f32) / (1.0 + df as f32)).ln() + 1.0
}

/// Keeps the tokens with `min_df <= df <= max_df`, at most `max` of them (highest df first, ties by
/// token), returned in token order.
fn bounded_vocabulary(
    df: &BTreeMap<String, u32>,
    min_df: u32,
    max_df: u32,
    max: usize,
) -> Vec<(String, u32)> {
    let mut kept: Vec<(&String, u32)> = df
        .iter()
        .filter(|(_, &d)| d >= min_df && d <= max_df)
        .map(|(t, &d)| (t, d))
        .collect();
    kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    kept.truncate(max);
    kept.sort_by(|a, b| a.0.cmp(b.0));
    kept.into_iter().map(|(t, d)| (t.clone(), d)).collect()
}

/// Bucket edges at the quantiles of `values` (sorted), distinct.
fn quantile_edges(values: &mut [f64], buckets: usize) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = (1..buckets)
        .map(|b| values[(b * values.len() / buckets).min(values.len() - 1)])
        .collect();
    edges.dedup();
    edges
}

impl FeatureSpace {
    pub fn fit_items(items: &[Item], config: &FeatureConfig) -> Result<Self, ContentError> {
        let docs: Vec<Document> = items.iter().map(Document::from_item).collect();
        Self::fit(&docs, config)
    }

    pub fn fit_users(users: &[User], config: &FeatureConfig) -> Result<Self, ContentError> {
        let docs: Vec<Document> = users.iter().map(Document::from_user).collect();
        Self::fit(&docs, config)
    }

    pub fn fit(docs: &[Document], config: &FeatureConfig) -> Result<Self, ContentError> {
        config.validate()?;
        let n = docs.len();
        let mut label_df: BTreeMap<String, u32> = BTreeMap::new();
        let mut text_df: BTreeMap<String, u32> = BTreeMap::new();
        let mut numbers: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        let mut embedding_dims: BTreeMap<usize, usize> = BTreeMap::new();
        let mut total_text_len = 0usize;
        let mut tokens = Vec::new();
        for doc in docs {
            let labels: BTreeSet<String> = doc.labels.iter().map(|(g, t)| key(*g, t)).collect();
            for l in labels {
                *label_df.entry(l).or_default() += 1;
            }
            tokens.clear();
            for t in &doc.texts {
                tokenize_into(t, &mut tokens);
            }
            total_text_len += tokens.len();
            let distinct: BTreeSet<&String> = tokens.iter().collect();
            for t in distinct {
                *text_df.entry(t.clone()).or_default() += 1;
            }
            for (k, x) in &doc.numbers {
                numbers.entry(k).or_default().push(*x);
            }
            if let Some(e) = doc.embedding {
                *embedding_dims.entry(e.len()).or_default() += 1;
            }
        }

        let mut features = Vec::new();
        let mut lookup = HashMap::new();
        let labels = bounded_vocabulary(
            &label_df,
            config.label_min_df.max(1),
            u32::MAX,
            config.label_max_vocab,
        );
        for (name, df) in labels {
            let group = group_of_key(&name);
            lookup.insert(name.clone(), features.len() as u32);
            let weight = if config.label_idf { idf(n, df) } else { 1.0 };
            features.push(FeatureInfo {
                group,
                name,
                idf: weight,
            });
        }
        let max_df = ((config.text_max_df_ratio * n as f32).floor() as u32).max(1);
        for (token, df) in bounded_vocabulary(
            &text_df,
            config.text_min_df.max(1),
            max_df,
            config.text_max_vocab,
        ) {
            let name = key(Group::Text, &token);
            lookup.insert(name.clone(), features.len() as u32);
            features.push(FeatureInfo {
                group: Group::Text,
                name,
                idf: idf(n, df),
            });
        }
        let mut number_buckets = BTreeMap::new();
        for (k, mut values) in numbers {
            let edges = quantile_edges(&mut values, config.number_buckets);
            let first_column = features.len() as u32;
            for b in 0..=edges.len() {
                features.push(FeatureInfo {
                    group: Group::Property,
                    name: format!("{k}#{b}"),
                    idf: 1.0,
                });
            }
            number_buckets.insert(
                k.to_string(),
                NumberBuckets {
                    edges,
                    first_column,
                },
            );
        }
        // The most common dimension wins (ties: the smaller); vectors of another length are ignored.
        let embedding = embedding_dims
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(&dim, _)| {
                let first = features.len() as u32;
                for d in 0..dim {
                    features.push(FeatureInfo {
                        group: Group::Embedding,
                        name: format!("embedding[{d}]"),
                        idf: 1.0,
                    });
                }
                (dim, first)
            });
        Ok(FeatureSpace {
            config: config.clone(),
            features,
            lookup,
            numbers: number_buckets,
            embedding,
            avg_text_len: if n == 0 {
                0.0
            } else {
                total_text_len as f32 / n as f32
            },
        })
    }

    pub fn n_features(&self) -> usize {
        self.features.len()
    }

    pub fn feature(&self, column: u32) -> Option<&FeatureInfo> {
        self.features.get(column as usize)
    }

    /// A feature as a reader would name it, for reasons ("because you like …"): `the category
    /// kitchen`, `the tag whale`, `brand acme`, `in_stock: yes`, `price 20 to 35` (the bucket's
    /// range), `the word "kettle"`, `the year 1995` (a year in a title). `None` for an embedding
    /// dimension, which means nothing to a reader, and for an unknown column.
    pub fn describe(&self, column: u32) -> Option<String> {
        let f = self.feature(column)?;
        let (_, token) = f.name.split_once(':').unwrap_or(("", f.name.as_str()));
        Some(match f.group {
            Group::Category => format!("the category {token}"),
            Group::Tag => format!("the tag {token}"),
            Group::Text if is_year(token) => format!("the year {token}"),
            Group::Text => format!("the word \"{token}\""),
            Group::Embedding => return None,
            Group::Property => match f.name.rsplit_once('#') {
                Some((key, bucket)) if self.numbers.contains_key(key) => {
                    let edges = &self.numbers[key].edges;
                    let b: usize = bucket.parse().ok()?;
                    match (b.checked_sub(1).map(|p| edges[p]), edges.get(b)) {
                        (None, None) => key.to_string(),
                        (None, Some(&high)) => format!("{key} up to {}", number(high)),
                        (Some(low), None) => format!("{key} over {}", number(low)),
                        (Some(low), Some(&high)) => {
                            format!("{key} {} to {}", number(low), number(high))
                        }
                    }
                }
                _ => match token.split_once('=') {
                    Some((key, "true")) => format!("{key}: yes"),
                    Some((key, "false")) => format!("{key}: no"),
                    Some((key, value)) => format!("{key} {value}"),
                    None => token.to_string(),
                },
            },
        })
    }

    pub fn transform_item(&self, item: &Item) -> Vec<(u32, f32)> {
        self.transform(&Document::from_item(item))
    }

    pub fn transform_user(&self, user: &User) -> Vec<(u32, f32)> {
        self.transform(&Document::from_user(user))
    }

    /// The L2-normalised feature row of one document, sorted by column (empty when nothing matched).
    pub fn transform(&self, doc: &Document) -> Vec<(u32, f32)> {
        let mut row: BTreeMap<u32, f32> = BTreeMap::new();
        let mut seen_labels = BTreeSet::new();
        for (g, t) in &doc.labels {
            let name = key(*g, t);
            if let Some(&c) = self.lookup.get(&name) {
                if seen_labels.insert(c) {
                    row.insert(c, self.features[c as usize].idf);
                }
            }
        }
        let mut tokens = Vec::new();
        for t in &doc.texts {
            tokenize_into(t, &mut tokens);
        }
        let mut tf: BTreeMap<u32, u32> = BTreeMap::new();
        for t in &tokens {
            if let Some(&c) = self.lookup.get(&key(Group::Text, t)) {
                *tf.entry(c).or_default() += 1;
            }
        }
        for (c, count) in tf {
            let tf = count as f32;
            let weight = match self.config.text_weighting {
                TextWeighting::TfIdf => 1.0 + tf.ln(),
                TextWeighting::Bm25 { k1, b } => {
                    let len_ratio = if self.avg_text_len > 0.0 {
                        tokens.len() as f32 / self.avg_text_len
                    } else {
                        1.0
                    };
                    tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * len_ratio))
                }
            };
            row.insert(c, weight * self.features[c as usize].idf);
        }
        for (k, x) in &doc.numbers {
            if let Some(nb) = self.numbers.get(*k) {
                if x.is_finite() {
                    let c = nb.first_column + nb.bucket(*x) as u32;
                    *row.entry(c).or_default() += 1.0;
                }
            }
        }
        if let (Some((dim, first)), Some(e)) = (self.embedding, doc.embedding) {
            if e.len() == dim {
                for (d, &x) in e.iter().enumerate() {
                    if x != 0.0 && x.is_finite() {
                        row.insert(first + d as u32, x);
                    }
                }
            }
        }
        self.normalise_by_group(row.into_iter().collect())
    }

    /// Each group's part to unit length times sqrt(weight), then the whole row to unit length.
    fn normalise_by_group(&self, mut row: Vec<(u32, f32)>) -> Vec<(u32, f32)> {
        let mut norms = [0f32; 5];
        for &(c, v) in &row {
            norms[self.features[c as usize].group.index()] += v * v;
        }
        for (c, v) in row.iter_mut() {
            let g = self.features[*c as usize].group.index();
            *v *= self.config.group_weights[g].sqrt() / norms[g].sqrt();
        }
        row.retain(|&(_, v)| v != 0.0 && v.is_finite());
        let total: f32 = row.iter().map(|&(_, v)| v * v).sum::<f32>().sqrt();
        if total > 0.0 {
            for (_, v) in row.iter_mut() {
                *v /= total;
            }
        }
        row
    }

    /// The items × features matrix of `docs`, rows L2-normalised.
    pub fn matrix(&self, docs: &[Document]) -> CsrMatrix {
        rows_to_csr(
            docs.iter().map(|d| self.transform(d)).collect(),
            self.n_features(),
        )
    }

    pub fn item_matrix(&self, items: &[Item]) -> CsrMatrix {
        let docs: Vec<Document> = items.iter().map(Document::from_item).collect();
        self.matrix(&docs)
    }

    pub fn user_matrix(&self, users: &[User]) -> CsrMatrix {
        let docs: Vec<Document> = users.iter().map(Document::from_user).collect();
        self.matrix(&docs)
    }
}

/// A text token that reads as a year (as in "Toy Story (1995)").
fn is_year(token: &str) -> bool {
    token.len() == 4
        && token.bytes().all(|b| b.is_ascii_digit())
        && (1800..=2199).contains(&token.parse::<u32>().unwrap_or(0))
}

/// A bucket edge as a person writes it: whole numbers without decimals, others with at most two.
fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        let s = format!("{x:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn group_of_key(name: &str) -> Group {
    match name.split_once(':').map(|p| p.0) {
        Some("category") => Group::Category,
        Some("tag") => Group::Tag,
        _ => Group::Property,
    }
}

/// Stacks sorted sparse rows into a CSR matrix.
pub fn rows_to_csr(rows: Vec<Vec<(u32, f32)>>, n_cols: usize) -> CsrMatrix {
    let mut indptr = Vec::with_capacity(rows.len() + 1);
    indptr.push(0);
    let mut indices = Vec::new();
    let mut values = Vec::new();
    for row in &rows {
        for &(c, v) in row {
            indices.push(c);
            values.push(v);
        }
        indptr.push(indices.len());
    }
    CsrMatrix {
        n_rows: rows.len(),
        n_cols,
        indptr,
        indices,
        values,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::PropertyValue;
    use proptest::prelude::*;

    fn item(id: &str, cats: &[&str], title: &str, price: f64) -> Item {
        let mut it = Item::new(id);
        it.categories = cats.iter().map(|c| c.to_string()).collect();
        it.title = Some(title.to_string());
        it.properties
            .insert("price".into(), PropertyValue::Number(price));
        it
    }

    fn catalog() -> Vec<Item> {
        vec![
            item("a", &["shoes"], "red trail runner", 10.0),
            item("b", &["shoes", "sale"], "blue trail runner", 20.0),
            item("c", &["hats"], "red wool hat", 30.0),
            item("d", &["hats"], "green wool cap", 40.0),
        ]
    }

    #[test]
    fn vocabulary_respects_min_df_and_size() {
        let space = FeatureSpace::fit_items(&catalog(), &FeatureConfig::default()).unwrap();
        let names: Vec<&str> = space.features.iter().map(|f| f.name.as_str()).collect();
        // "runner", "trail", "red", "wool" appear twice; "blue", "green", "hat", "cap" once.
        for t in ["text:red", "text:runner", "text:trail", "text:wool"] {
            assert!(names.contains(&t), "{t} missing from {names:?}");
        }
        assert!(!names.contains(&"text:blue"));
        let small = FeatureConfig {
            text_max_vocab: 1,
            label_max_vocab: 2,
            ..FeatureConfig::default()
        };
        let space = FeatureSpace::fit_items(&catalog(), &small).unwrap();
        let text = space
            .features
            .iter()
            .filter(|f| f.group == Group::Text)
            .count();
        let labels = space
            .features
            .iter()
            .filter(|f| matches!(f.group, Group::Category | Group::Tag))
            .count();
        assert_eq!((text, labels), (1, 2));
    }

    #[test]
    fn numbers_fall_in_ordered_buckets() {
        let cfg = FeatureConfig {
            number_buckets: 2,
            ..FeatureConfig::default()
        };
        let space = FeatureSpace::fit_items(&catalog(), &cfg).unwrap();
        let bucket_of = |p: f64| {
            let row = space.transform_item(&item("x", &[], "", p));
            let (c, _) = row[0];
            space.features[c as usize].name.clone()
        };
        assert_eq!(bucket_of(5.0), "price#0");
        assert_eq!(bucket_of(100.0), "price#1");
    }

    #[test]
    fn every_feature_but_an_embedding_reads_as_a_phrase_not_a_token() {
        let mut items = catalog();
        items[0].tags = vec!["Whale".into()];
        items[1].tags = vec!["whale".into()];
        items[0].title = Some("Moby Dick (1956)".into());
        items[1].title = Some("Moby Dick (1956) remastered".into());
        items[2]
            .properties
            .insert("brand".into(), PropertyValue::String("Acme".into()));
        items[3]
            .properties
            .insert("sale".into(), PropertyValue::Bool(true));
        items[0].embedding = Some(vec![1.0, 0.5]);
        let cfg = FeatureConfig {
            number_buckets: 2,
            ..FeatureConfig::default()
        };
        let space = FeatureSpace::fit_items(&items, &cfg).unwrap();
        let described = |name: &str| {
            let c = space.features.iter().position(|f| f.name == name);
            space.describe(c.unwrap_or_else(|| panic!("no {name}")) as u32)
        };
        let said = |name: &str| described(name).unwrap();
        assert_eq!(said("category:hats"), "the category hats");
        assert_eq!(said("tag:whale"), "the tag whale");
        assert_eq!(said("text:1956"), "the year 1956");
        assert_eq!(said("text:moby"), "the word \"moby\"");
        assert_eq!(said("property:brand=acme"), "brand acme");
        assert_eq!(said("property:sale=true"), "sale: yes");
        // Prices 10, 20, 30, 40 in two buckets split at the median, 30.
        assert_eq!(said("price#0"), "price up to 30");
        assert_eq!(said("price#1"), "price over 30");
        assert_eq!(described("embedding[0]"), None);
        assert_eq!(space.describe(space.n_features() as u32), None);
        assert_eq!(number(24.5), "24.5");
        assert_eq!(number(1.0 / 3.0), "0.33");
        // No phrase is a bare token.
        for c in 0..space.n_features() as u32 {
            if let Some(phrase) = space.describe(c) {
                assert!(phrase.contains(' '), "{phrase}");
                assert!(
                    !phrase.contains(':') || phrase.ends_with(": yes"),
                    "{phrase}"
                );
            }
        }
    }

    #[test]
    fn unseen_tokens_are_dropped_and_empty_rows_stay_empty() {
        let space = FeatureSpace::fit_items(&catalog(), &FeatureConfig::default()).unwrap();
        let mut new = Item::new("z");
        new.categories = vec!["unknown".into()];
        assert!(space.transform_item(&new).is_empty());
    }

    #[test]
    fn embeddings_are_appended() {
        let mut items = catalog();
        items[0].embedding = Some(vec![1.0, 0.0, 2.0]);
        let space = FeatureSpace::fit_items(&items, &FeatureConfig::default()).unwrap();
        let row = space.transform_item(&items[0]);
        let emb: Vec<&str> = row
            .iter()
            .filter(|(c, _)| space.features[*c as usize].group == Group::Embedding)
            .map(|(c, _)| space.features[*c as usize].name.as_str())
            .collect();
        assert_eq!(emb, vec!["embedding[0]", "embedding[2]"]);
    }

    #[test]
    fn save_load_round_trip_transforms_identically() {
        let space = FeatureSpace::fit_items(&catalog(), &FeatureConfig::default()).unwrap();
        let json = serde_json::to_string(&space).unwrap();
        let back: FeatureSpace = serde_json::from_str(&json).unwrap();
        let new = item("n", &["hats", "shoes"], "red trail cap", 25.0);
        assert_eq!(space.transform_item(&new), back.transform_item(&new));
    }

    #[test]
    fn rejects_bad_config() {
        let cfg = FeatureConfig {
            number_buckets: 0,
            ..FeatureConfig::default()
        };
        assert!(FeatureSpace::fit_items(&catalog(), &cfg).is_err());
    }

    fn arb_item() -> impl Strategy<Value = Item> {
        (
            prop::collection::vec("[a-d]{1,2}", 0..4),
            prop::collection::vec("[a-f]{1,3}", 0..4),
            "[a-z ]{0,40}",
            prop::option::of(-1e6f64..1e6),
            prop::option::of(prop::collection::vec(-5f32..5.0, 3)),
        )
            .prop_map(|(cats, tags, title, price, emb)| {
                let mut it = Item::new("x");
                it.categories = cats;
                it.tags = tags;
                it.title = Some(title);
                if let Some(p) = price {
                    it.properties
                        .insert("price".into(), PropertyValue::Number(p));
                }
                it.embedding = emb;
                it
            })
    }

    proptest! {
        #[test]
        fn rows_are_bounded_sorted_and_unit_or_empty(
            items in prop::collection::vec(arb_item(), 1..30),
            max_vocab in 1usize..20,
        ) {
            let cfg = FeatureConfig { text_max_vocab: max_vocab, text_min_df: 1, ..FeatureConfig::default() };
            let space = FeatureSpace::fit_items(&items, &cfg).unwrap();
            let text = space.features.iter().filter(|f| f.group == Group::Text).count();
            prop_assert!(text <= max_vocab);
            let m = space.item_matrix(&items);
            prop_assert_eq!(m.n_rows, items.len());
            for r in 0..m.n_rows {
                let (cols, vals) = m.row(r);
                prop_assert!(cols.windows(2).all(|w| w[0] < w[1]));
                prop_assert!(cols.iter().all(|&c| (c as usize) < space.n_features()));
                let norm: f32 = vals.iter().map(|v| v * v).sum();
                prop_assert!(vals.is_empty() || (norm - 1.0).abs() < 1e-4, "norm {}", norm);
            }
            // Deterministic: fitting again gives the same matrix.
            let again = FeatureSpace::fit_items(&items, &cfg).unwrap().item_matrix(&items);
            prop_assert_eq!(m, again);
        }
    }
}
