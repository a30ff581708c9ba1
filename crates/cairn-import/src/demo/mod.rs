//! A generated demo shop: a catalog, users with tastes, and two months of browsing and buying.
//!
//! The data has the structure real shops have, so that recommendations visibly make sense:
//! - items belong to one of 12 categories and to a product line (brand + line name); items of one
//!   line are bought together (co-purchase clusters);
//! - each user has one to three favourite categories and a few favourite lines in them, and most
//!   sessions stay there;
//! - item popularity is skewed (a few hits, a long tail), user activity too;
//! - the funnel narrows: views > clicks > add-to-cart > purchases, and some purchases are rated,
//!   higher in the user's favourite categories.
//!
//! Everything is drawn from one seeded generator: the same options give the same data.

mod words;

use std::collections::BTreeMap;

use cairn_core::{Event, Item, PropertyValue, Timestamp, User};
use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use words::CATEGORIES;
use words::{CategoryWords, ADJECTIVES, BRANDS, COUNTRIES, LINES};

#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    pub users: usize,
    pub items: usize,
    pub events: usize,
    pub seed: u64,
    /// Events fall in the `days` days before `now` (unix seconds).
    pub now: i64,
    pub days: u32,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            users: 1000,
            items: 2000,
            events: 50_000,
            seed: 42,
            now: cairn_core::now_unix(),
            days: 60,
        }
    }
}

/// Items in one product line.
const LINE_SIZE: usize = 8;

/// What the generator decided about a user; not stored, but it lets tests check the structure.
#[derive(Debug, Clone, PartialEq)]
pub struct Taste {
    /// Favourite categories, most liked first, as indices into [`CATEGORIES`].
    pub favourites: Vec<usize>,
    /// Weight of each category in the user's sessions (sums to 1).
    pub category_weights: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DemoData {
    pub items: Vec<Item>,
    pub users: Vec<User>,
    /// In time order.
    pub events: Vec<Event>,
    /// One per user, in the order of `users`.
    pub tastes: Vec<Taste>,
}

/// An item as the generator sees it.
struct Product {
    category: usize,
    /// Index into the category's lines.
    line: usize,
    popularity: f64,
}

/// Products of one category, grouped by line, with samplers for popularity-weighted draws.
struct CategoryIndex {
    /// Item indices per line.
    lines: Vec<Vec<usize>>,
    line_sampler: Option<WeightedIndex<f64>>,
    item_samplers: Vec<Option<WeightedIndex<f64>>>,
    all_items: Vec<usize>,
    all_sampler: Option<WeightedIndex<f64>>,
}

pub fn generate(opts: &DemoOptions) -> DemoData {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let (items, products) = catalog(&mut rng, opts.items);
    let index = index_categories(&products);
    let (users, tastes) = users(&mut rng, opts.users);
    let events = events(&mut rng, opts, &items, &products, &index, &users, &tastes);
    DemoData {
        items,
        users,
        events,
        tastes,
    }
}

fn catalog(rng: &mut ChaCha8Rng, n: usize) -> (Vec<Item>, Vec<Product>) {
    let mut items = Vec::with_capacity(n);
    let mut products = Vec::with_capacity(n);
    let mut per_category = vec![0usize; CATEGORIES.len()];
    // Brand and line name of each (category, line), fixed on first use.
    let mut line_names: BTreeMap<(usize, usize), (&str, String)> = BTreeMap::new();
    for i in 0..n {
        let category = i % CATEGORIES.len();
        let words = &CATEGORIES[category];
        let position = per_category[category];
        per_category[category] += 1;
        let line = position / LINE_SIZE;
        let (brand, line_name) = line_names.entry((category, line)).or_insert_with(|| {
            (
                *BRANDS.choose(rng).unwrap_or(&"Cairn"),
                line_name(category, line),
            )
        });
        let (brand, line_name) = (*brand, line_name.clone());
        let line_name = line_name.as_str();
        let noun = words.nouns[position % words.nouns.len()];
        let adjective = *ADJECTIVES.choose(rng).unwrap_or(&"Classic");
        let title = format!("{brand} {line_name} {adjective} {noun}");
        let price = price(rng, words);
        let mut item = Item::new(format!("sku-{:05}", i + 1));
        item.categories = vec![words.name.to_string()];
        item.tags = pick_tags(rng, words);
        item.description = Some(describe(rng, words, &title, brand, line_name, noun));
        item.title = Some(title);
        item.properties
            .insert("price".into(), PropertyValue::Number(price));
        item.properties
            .insert("brand".into(), PropertyValue::String(brand.into()));
        item.properties
            .insert("line".into(), PropertyValue::String(line_name.into()));
        item.properties.insert(
            "in_stock".into(),
            PropertyValue::Bool(rng.random_bool(0.93)),
        );
        // About one item in a hundred is discontinued: it keeps its history but is never recommended.
        item.hidden = rng.random_bool(0.01);
        // Popularity follows a power law; a random rank keeps hits spread over lines.
        let rank = rng.random_range(1..=n.max(1)) as f64;
        let popularity = rank.powf(-0.9);
        items.push(item);
        products.push(Product {
            category,
            line,
            popularity,
        });
    }
    (items, products)
}

/// A name unique within the category: the word list, then numbered rounds of it.
fn line_name(category: usize, line: usize) -> String {
    let word = LINES[(line + category * 7) % LINES.len()];
    match line / LINES.len() {
        0 => word.to_string(),
        round => format!("{word} {}", round + 1),
    }
}

fn price(rng: &mut ChaCha8Rng, words: &CategoryWords) -> f64 {
    let (low, high) = words.price;
    let raw = (low.ln() + rng.random::<f64>() * (high.ln() - low.ln())).exp();
    (raw.floor() + 0.99).min(high)
}

fn pick_tags(rng: &mut ChaCha8Rng, words: &CategoryWords) -> Vec<String> {
    let count = rng.random_range(2..=3);
    words
        .tags
        .choose_multiple(rng, count)
        .map(|t| t.to_string())
        .collect()
}

fn describe(
    rng: &mut ChaCha8Rng,
    words: &CategoryWords,
    title: &str,
    brand: &str,
    line: &str,
    noun: &str,
) -> String {
    let mut features: Vec<&str> = words.features.choose_multiple(rng, 2).copied().collect();
    features.sort_unstable();
    format!(
        "The {title} is part of {brand}'s {line} collection of {category} essentials. {}. {}. \
         Pair it with the rest of the {line} range for a matching set; this {} ships within two days.",
        features.first().unwrap_or(&"Made with care"),
        features.get(1).unwrap_or(&"Backed by a two-year warranty"),
        noun.to_lowercase(),
        category = words.name,
    )
}

fn index_categories(products: &[Product]) -> Vec<CategoryIndex> {
    (0..CATEGORIES.len())
        .map(|c| {
            let all_items: Vec<usize> = (0..products.len())
                .filter(|&i| products[i].category == c)
                .collect();
            let n_lines = all_items
                .iter()
                .map(|&i| products[i].line + 1)
                .max()
                .unwrap_or(0);
            let mut lines = vec![Vec::new(); n_lines];
            for &i in &all_items {
                lines[products[i].line].push(i);
            }
            let weight = |members: &[usize]| -> Option<WeightedIndex<f64>> {
                WeightedIndex::new(members.iter().map(|&i| products[i].popularity)).ok()
            };
            let line_sampler = WeightedIndex::new(
                lines
                    .iter()
                    .map(|members| members.iter().map(|&i| products[i].popularity).sum::<f64>()),
            )
            .ok();
            CategoryIndex {
                item_samplers: lines.iter().map(|m| weight(m)).collect(),
                all_sampler: weight(&all_items),
                lines,
                line_sampler,
                all_items,
            }
        })
        .collect()
}

fn users(rng: &mut ChaCha8Rng, n: usize) -> (Vec<User>, Vec<Taste>) {
    let country_sampler =
        WeightedIndex::new(COUNTRIES.iter().map(|c| c.1)).expect("country weights are positive");
    let mut users = Vec::with_capacity(n);
    let mut tastes = Vec::with_capacity(n);
    for i in 0..n {
        let mut user = User::new(format!("user-{:04}", i + 1));
        user.properties.insert(
            "country".into(),
            PropertyValue::String(COUNTRIES[country_sampler.sample(rng)].0.into()),
        );
        user.properties.insert(
            "age".into(),
            PropertyValue::Number(rng.random_range(18..=75) as f64),
        );
        user.properties.insert(
            "newsletter".into(),
            PropertyValue::Bool(rng.random_bool(0.4)),
        );
        users.push(user);
        tastes.push(taste(rng));
    }
    (users, tastes)
}

fn taste(rng: &mut ChaCha8Rng) -> Taste {
    let n_favourites = rng.random_range(1..=3);
    let all: Vec<usize> = (0..CATEGORIES.len()).collect();
    let favourites: Vec<usize> = all.choose_multiple(rng, n_favourites).copied().collect();
    // Favourites take 85% of the sessions, halving from one to the next; the rest is spread evenly.
    let shares = [0.5, 0.25, 0.125];
    let favourite_total: f64 = shares[..n_favourites].iter().sum();
    let mut weights = vec![0.15 / CATEGORIES.len() as f64; CATEGORIES.len()];
    for (rank, &c) in favourites.iter().enumerate() {
        weights[c] += 0.85 * shares[rank] / favourite_total;
    }
    Taste {
        favourites,
        category_weights: weights,
    }
}

/// A user's favourite product lines, per category, drawn once so that users come back to them.
fn favourite_lines(
    rng: &mut ChaCha8Rng,
    index: &[CategoryIndex],
    taste: &Taste,
) -> Vec<Vec<usize>> {
    (0..CATEGORIES.len())
        .map(|c| {
            let Some(sampler) = &index[c].line_sampler else {
                return Vec::new();
            };
            let count = if taste.favourites.contains(&c) { 2 } else { 0 };
            (0..count).map(|_| sampler.sample(rng)).collect()
        })
        .collect()
}

const DAY: i64 = 86_400;

#[allow(clippy::too_many_arguments)]
fn events(
    rng: &mut ChaCha8Rng,
    opts: &DemoOptions,
    items: &[Item],
    products: &[Product],
    index: &[CategoryIndex],
    users: &[User],
    tastes: &[Taste],
) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::with_capacity(opts.events + 64);
    if users.is_empty() || items.is_empty() {
        return out;
    }
    let lines: Vec<Vec<Vec<usize>>> = tastes
        .iter()
        .map(|t| favourite_lines(rng, index, t))
        .collect();
    // Heavy-tailed activity: a few users come back often, most rarely.
    let activity = WeightedIndex::new(
        (0..users.len()).map(|_| (1.0 - rng.random::<f64>()).powf(-1.0 / 1.3).min(40.0)),
    )
    .expect("activity weights are positive");
    let start = opts.now - i64::from(opts.days) * DAY;
    // A session lasts at most 72 events of under two minutes each: well under four hours.
    let latest_session = opts.now - 4 * 3600;
    while out.len() < opts.events {
        let u = activity.sample(rng);
        let taste = &tastes[u];
        let Ok(category_sampler) = WeightedIndex::new(&taste.category_weights) else {
            continue;
        };
        let category = category_sampler.sample(rng);
        let cat = &index[category];
        let Some(line_sampler) = &cat.line_sampler else {
            continue;
        };
        let favourite = taste.favourites.contains(&category);
        let line = match lines[u][category].choose(rng) {
            Some(&l) if rng.random_bool(0.6) => l,
            _ => line_sampler.sample(rng),
        };
        let mut session = Session {
            user: &users[u].id,
            t: rng.random_range(start..latest_session.max(start + 1)),
            out: &mut out,
        };
        let views = 1 + geometric(rng, 0.4).min(7);
        for _ in 0..views {
            let item = if rng.random_bool(0.8) {
                pick(rng, &cat.lines[line], cat.item_samplers[line].as_ref())
            } else {
                pick(rng, &cat.all_items, cat.all_sampler.as_ref())
            };
            let Some(item) = item else { continue };
            session.interact(rng, &items[item].id, favourite);
            if session.bought() && rng.random_bool(0.4) {
                // Bought together: another item of the same line.
                if let Some(other) = pick(rng, &cat.lines[products[item].line], None) {
                    if other != item {
                        session.buy_also(rng, &items[other].id, favourite);
                    }
                }
            }
        }
    }
    out.truncate(opts.events);
    out.sort_by_key(|e| e.timestamp);
    for (n, event) in out.iter_mut().enumerate() {
        event.event_id = Some(format!("demo:{}:{n}", opts.seed));
    }
    out
}

fn pick(
    rng: &mut ChaCha8Rng,
    members: &[usize],
    sampler: Option<&WeightedIndex<f64>>,
) -> Option<usize> {
    match sampler {
        Some(s) => members.get(s.sample(rng)).copied(),
        None => members.choose(rng).copied(),
    }
}

/// Failures before the first success, with success probability `p`.
fn geometric(rng: &mut ChaCha8Rng, p: f64) -> usize {
    let mut n = 0;
    while n < 64 && !rng.random_bool(p) {
        n += 1;
    }
    n
}

/// One visit: events of one user, a little apart in time.
struct Session<'a> {
    user: &'a str,
    t: i64,
    out: &'a mut Vec<Event>,
}

impl Session<'_> {
    fn emit(&mut self, rng: &mut ChaCha8Rng, item: &str, event_type: &str, value: Option<f64>) {
        self.t += rng.random_range(5..120);
        let mut event = Event::new(self.user, item, event_type);
        event.timestamp = Some(Timestamp(self.t));
        event.value = value;
        self.out.push(event);
    }

    fn bought(&self) -> bool {
        self.out
            .last()
            .is_some_and(|e| e.event_type == "purchase" || e.event_type == "rating")
    }

    /// A product page visit and what may follow it.
    fn interact(&mut self, rng: &mut ChaCha8Rng, item: &str, favourite: bool) {
        self.emit(rng, item, "view", None);
        if rng.random_bool(0.35) {
            self.emit(rng, item, "click", None);
        }
        let cart = if favourite { 0.2 } else { 0.08 };
        if rng.random_bool(cart) {
            self.emit(rng, item, "add-to-cart", None);
            if rng.random_bool(0.55) {
                self.purchase(rng, item, favourite);
            }
        } else if !favourite && rng.random_bool(0.02) {
            self.emit(rng, item, "dislike", None);
        }
    }

    fn buy_also(&mut self, rng: &mut ChaCha8Rng, item: &str, favourite: bool) {
        self.emit(rng, item, "view", None);
        self.emit(rng, item, "add-to-cart", None);
        self.purchase(rng, item, favourite);
    }

    fn purchase(&mut self, rng: &mut ChaCha8Rng, item: &str, favourite: bool) {
        self.emit(rng, item, "purchase", None);
        if rng.random_bool(0.25) {
            let mean = if favourite { 4.3 } else { 3.2 };
            let stars = (mean + rng.random_range(-1.5..1.5_f64))
                .round()
                .clamp(1.0, 5.0);
            self.emit(rng, item, "rating", Some(stars));
        }
    }
}

#[cfg(test)]
mod tests;
