//! A seeded synthetic shop: items with categories, tags and a price; popularity long-tailed (Zipf over
//! a random ranking of the items); users who mostly shop in one or two favourite categories, so that a
//! collaborative model has signal to find. Each user's events depend only on (seed, user), so users can
//! be generated in any order.

use std::collections::BTreeMap;

use cairn_core::{Event, Item, PropertyValue, Timestamp};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TAGS_PER_CATEGORY: usize = 20;
const SHARED_TAGS: usize = 100;
const ZIPF_EXPONENT: f64 = 1.0;
/// Share of a user's events in their favourite categories; the rest follow global popularity.
const IN_FAVOURITES: f64 = 0.8;
const HISTORY_SPAN_SECS: i64 = 180 * 86_400;

const ADJECTIVES: [&str; 12] = [
    "classic", "compact", "deluxe", "eco", "light", "modern", "portable", "pro", "rugged", "smart",
    "soft", "vintage",
];
const NOUNS: [&str; 12] = [
    "bag", "bottle", "chair", "gadget", "jacket", "kettle", "lamp", "mug", "shoe", "speaker",
    "tablet", "watch",
];

pub fn user_id(u: u64) -> String {
    format!("user-{u}")
}

pub fn item_id(i: u32) -> String {
    format!("item-{i}")
}

/// Cumulative weights for sampling by binary search.
struct Sampler {
    members: Vec<u32>,
    cumulative: Vec<f64>,
}

impl Sampler {
    fn new(members: Vec<u32>, weight: impl Fn(u32) -> f64) -> Sampler {
        let mut total = 0.0;
        let cumulative = members
            .iter()
            .map(|&m| {
                total += weight(m);
                total
            })
            .collect();
        Sampler {
            members,
            cumulative,
        }
    }

    fn sample(&self, rng: &mut impl Rng) -> u32 {
        let total = *self.cumulative.last().expect("samplers are never empty");
        let x = rng.random::<f64>() * total;
        let i = self.cumulative.partition_point(|&c| c <= x);
        self.members[i.min(self.members.len() - 1)]
    }
}

pub struct Shop {
    seed: u64,
    n_items: u32,
    /// Category of each item.
    category: Vec<u16>,
    global: Sampler,
    /// Non-empty categories' samplers, indexed by category.
    by_category: Vec<Option<Sampler>>,
    non_empty_categories: Vec<u16>,
    /// Every event's time is before this.
    now: i64,
}

impl Shop {
    pub fn new(n_items: u32, n_categories: u16, seed: u64, now: i64) -> Shop {
        let n_categories = n_categories.max(1);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut rank: Vec<u32> = (0..n_items).collect();
        rank.shuffle(&mut rng);
        // rank[i] is item i's popularity rank; weight 1 / (rank + 1)^s.
        let weight = |i: u32| 1.0 / (f64::from(rank[i as usize]) + 1.0).powf(ZIPF_EXPONENT);
        let category: Vec<u16> = (0..n_items)
            .map(|_| rng.random_range(0..n_categories))
            .collect();
        let mut members = vec![Vec::new(); usize::from(n_categories)];
        for (i, &c) in category.iter().enumerate() {
            members[usize::from(c)].push(i as u32);
        }
        let by_category: Vec<Option<Sampler>> = members
            .into_iter()
            .map(|m| (!m.is_empty()).then(|| Sampler::new(m, weight)))
            .collect();
        let non_empty_categories = (0..n_categories)
            .filter(|&c| by_category[usize::from(c)].is_some())
            .collect();
        Shop {
            seed,
            n_items,
            global: Sampler::new((0..n_items).collect(), weight),
            category,
            by_category,
            non_empty_categories,
            now,
        }
    }

    /// Item `i` of the catalog, with its features drawn from (seed, i).
    pub fn item(&self, i: u32) -> Item {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x1_0000_0000 ^ u64::from(i));
        let c = usize::from(self.category[i as usize]);
        let mut item = Item::new(item_id(i));
        item.categories = vec![format!("cat-{c}")];
        let mut tags: Vec<String> = (0..3)
            .map(|_| {
                let t = c * TAGS_PER_CATEGORY + rng.random_range(0..TAGS_PER_CATEGORY);
                format!("tag-{t}")
            })
            .collect();
        tags.push(format!("shared-{}", rng.random_range(0..SHARED_TAGS)));
        tags.sort();
        tags.dedup();
        item.tags = tags;
        let adjective = ADJECTIVES[rng.random_range(0..ADJECTIVES.len())];
        let noun = NOUNS[(c + rng.random_range(0..3)) % NOUNS.len()];
        item.title = Some(format!("{adjective} {noun} {i}"));
        // Long-tailed prices between 2 and about 500, in cents.
        let price = 2.0 + 500.0 * rng.random::<f64>().powi(3);
        item.properties = BTreeMap::from([(
            "price".to_string(),
            PropertyValue::Number((price * 100.0).round() / 100.0),
        )]);
        item
    }

    pub fn n_items(&self) -> u32 {
        self.n_items
    }

    /// User `u`'s events, oldest first: about `mean_events` of them (at least one).
    pub fn user_events(&self, u: u64, mean_events: f64) -> Vec<Event> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed.wrapping_mul(31) ^ u.rotate_left(20));
        // 1 + exponential(mean - 1), rounded: a long tail of heavy users around the mean.
        let extra = -(1.0 - rng.random::<f64>()).ln() * (mean_events - 1.0).max(0.0);
        let n = 1 + extra.round() as usize;
        let favourites = [
            self.non_empty_categories[rng.random_range(0..self.non_empty_categories.len())],
            self.non_empty_categories[rng.random_range(0..self.non_empty_categories.len())],
        ];
        let mut t = self.now - rng.random_range(HISTORY_SPAN_SECS / 2..HISTORY_SPAN_SECS);
        let gap = (self.now - t) / (n as i64 + 1);
        (0..n)
            .map(|_| {
                let item = if rng.random::<f64>() < IN_FAVOURITES {
                    let c = favourites[usize::from(rng.random::<f64>() >= 0.7)];
                    self.by_category[usize::from(c)]
                        .as_ref()
                        .expect("favourites are non-empty categories")
                        .sample(&mut rng)
                } else {
                    self.global.sample(&mut rng)
                };
                let kind = match rng.random::<f64>() {
                    x if x < 0.70 => "view",
                    x if x < 0.90 => "click",
                    x if x < 0.96 => "add-to-cart",
                    _ => "purchase",
                };
                t += rng.random_range(1..=gap.max(1));
                let mut e = Event::new(user_id(u), item_id(item), kind);
                e.timestamp = Some(Timestamp(t.min(self.now - 1)));
                e
            })
            .collect()
    }
}

/// `0..n` in the byte order of the user ids, so that a store keyed by user id is written in order
/// (sequential B-tree inserts instead of one page rewritten per event).
pub fn users_in_id_order(n: u64) -> Vec<u64> {
    let mut users: Vec<u64> = (0..n).collect();
    users.sort_by_cached_key(|&u| user_id(u));
    users
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::Validate;

    fn shop() -> Shop {
        Shop::new(2000, 20, 7, 1_700_000_000)
    }

    #[test]
    fn same_seed_same_shop_and_users() {
        let (a, b) = (shop(), shop());
        assert_eq!(a.item(5), b.item(5));
        assert_eq!(a.user_events(9, 8.0), b.user_events(9, 8.0));
        assert_ne!(a.user_events(9, 8.0), a.user_events(10, 8.0));
    }

    #[test]
    fn items_and_events_are_valid_and_events_are_ordered_in_the_past() {
        let s = shop();
        for i in 0..50 {
            s.item(i).validate().unwrap();
        }
        for u in 0..200 {
            let events = s.user_events(u, 8.0);
            assert!(!events.is_empty());
            let times: Vec<i64> = events.iter().map(|e| e.timestamp.unwrap().0).collect();
            assert!(times.windows(2).all(|w| w[0] <= w[1]));
            assert!(times.iter().all(|&t| t < 1_700_000_000));
            for e in &events {
                e.validate().unwrap();
            }
        }
    }

    #[test]
    fn popularity_is_long_tailed_and_users_stick_to_favourite_categories() {
        let s = shop();
        let mut counts = vec![0usize; 2000];
        let mut in_top_two_categories = 0;
        let mut total = 0;
        for u in 0..3000 {
            let events = s.user_events(u, 8.0);
            let mut per_cat: BTreeMap<u16, usize> = BTreeMap::new();
            for e in &events {
                let i: u32 = e.item_id[5..].parse().unwrap();
                counts[i as usize] += 1;
                *per_cat.entry(s.category[i as usize]).or_default() += 1;
            }
            let mut c: Vec<usize> = per_cat.into_values().collect();
            c.sort_unstable_by(|a, b| b.cmp(a));
            in_top_two_categories += c.iter().take(2).sum::<usize>();
            total += events.len();
        }
        let mean = total as f64 / 3000.0;
        assert!((7.0..9.0).contains(&mean), "mean events per user {mean}");
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top_1_percent: usize = counts[..20].iter().sum();
        assert!(
            top_1_percent * 5 > total,
            "top 1% of items get over 20% of events"
        );
        assert!(
            in_top_two_categories * 10 > total * 7,
            "users follow their favourites"
        );
    }

    #[test]
    fn id_order_is_byte_order() {
        let order = users_in_id_order(12);
        let ids: Vec<String> = order.iter().map(|&u| user_id(u)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert_eq!(order.len(), 12);
    }
}
