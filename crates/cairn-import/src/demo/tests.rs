use std::collections::{HashMap, HashSet};

use cairn_core::Validate;

use super::*;

fn small() -> DemoOptions {
    DemoOptions {
        users: 300,
        items: 600,
        events: 20_000,
        seed: 7,
        now: 1_750_000_000,
        days: 60,
    }
}

fn category_of(data: &DemoData) -> HashMap<&str, usize> {
    data.items
        .iter()
        .map(|i| {
            let name = i.categories[0].as_str();
            let c = CATEGORIES.iter().position(|w| w.name == name).unwrap();
            (i.id.as_str(), c)
        })
        .collect()
}

#[test]
fn same_seed_same_data_and_counts_as_asked() {
    let a = generate(&small());
    assert_eq!(a, generate(&small()));
    let b = generate(&DemoOptions { seed: 8, ..small() });
    assert_ne!(a.events, b.events);
    assert_eq!(
        (a.items.len(), a.users.len(), a.events.len()),
        (600, 300, 20_000)
    );
    let categories: HashSet<&str> = a.items.iter().map(|i| i.categories[0].as_str()).collect();
    assert_eq!(categories.len(), 12);
}

#[test]
fn every_record_is_valid_and_in_the_window() {
    let opts = small();
    let data = generate(&opts);
    let types = cairn_core::EventTypes::default();
    let ids: HashSet<&str> = data.items.iter().map(|i| i.id.as_str()).collect();
    for item in &data.items {
        item.validate().unwrap();
        assert!(item.properties["price"].as_f64().unwrap() > 0.0);
        assert!(item.title.is_some() && item.description.is_some());
    }
    assert!(data.items.iter().any(|i| i.hidden));
    assert!(data.items.iter().filter(|i| i.hidden).count() < data.items.len() / 20);
    data.users.iter().for_each(|u| u.validate().unwrap());
    let mut last = 0;
    for e in &data.events {
        e.validate().unwrap();
        types.check(&e.event_type, e.value).unwrap();
        assert!(ids.contains(e.item_id.as_str()));
        let t = e.timestamp.unwrap().0;
        assert!(t >= opts.now - 60 * DAY && t <= opts.now, "{t}");
        assert!(t >= last, "events are in time order");
        last = t;
    }
    let event_ids: HashSet<_> = data.events.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(event_ids.len(), data.events.len());
}

#[test]
fn the_funnel_narrows() {
    let data = generate(&small());
    let count = |t: &str| data.events.iter().filter(|e| e.event_type == t).count();
    let (views, clicks, carts, purchases, ratings) = (
        count("view"),
        count("click"),
        count("add-to-cart"),
        count("purchase"),
        count("rating"),
    );
    assert!(views > clicks && clicks > carts && carts > purchases && purchases > ratings);
    assert!(ratings > 0 && count("dislike") > 0);
}

#[test]
fn users_mostly_stay_in_their_favourite_categories() {
    let data = generate(&small());
    let category = category_of(&data);
    let user_index: HashMap<&str, usize> = data
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.id.as_str(), i))
        .collect();
    let in_favourites = data
        .events
        .iter()
        .filter(|e| {
            let taste = &data.tastes[user_index[e.user_id.as_str()]];
            taste.favourites.contains(&category[e.item_id.as_str()])
        })
        .count();
    let share = in_favourites as f64 / data.events.len() as f64;
    println!("share of events in favourite categories: {share:.3}");
    // Users have 2 favourites of 12 on average: without taste the share would be about 1/6.
    assert!(share > 0.7, "share in favourite categories {share}");
}

#[test]
fn items_of_a_line_are_bought_together() {
    let data = generate(&small());
    let line: HashMap<&str, &str> = data
        .items
        .iter()
        .map(|i| (i.id.as_str(), i.properties["line"].as_str().unwrap()))
        .collect();
    let category = category_of(&data);
    let mut baskets: HashMap<&str, Vec<&str>> = HashMap::new();
    for e in data.events.iter().filter(|e| e.event_type == "purchase") {
        baskets.entry(&e.user_id).or_default().push(&e.item_id);
    }
    // Among pairs of different items one user bought in the same category, how many share a line,
    // against how many of all same-category item pairs do.
    let (mut same, mut pairs) = (0usize, 0usize);
    for items in baskets.values() {
        for (i, a) in items.iter().enumerate() {
            for b in &items[i + 1..] {
                if a != b && category[a] == category[b] {
                    pairs += 1;
                    same += usize::from(line[a] == line[b]);
                }
            }
        }
    }
    let bought_together = same as f64 / pairs as f64;
    println!("same-line share of same-category co-purchases: {bought_together:.3}");
    let per_category = data.items.len() / CATEGORIES.len();
    let chance = (LINE_SIZE - 1) as f64 / (per_category - 1) as f64;
    assert!(
        bought_together > 2.0 * chance,
        "same-line share of co-purchases {bought_together}, chance {chance}"
    );
}

/// The point of the demo: a collaborative model must beat popularity on it. Leave out each user's
/// last purchase; score items by how often they were bought or carted together with the user's
/// other items (a tiny item-to-item model), and compare hit rates at 10 with the most popular items.
#[test]
fn co_occurrence_beats_popularity_on_held_out_purchases() {
    let data = generate(&small());
    let mut histories: HashMap<&str, Vec<&str>> = HashMap::new();
    for e in &data.events {
        if matches!(e.event_type.as_str(), "purchase" | "add-to-cart" | "click") {
            let h = histories.entry(&e.user_id).or_default();
            if !h.contains(&e.item_id.as_str()) {
                h.push(&e.item_id);
            }
        }
    }
    let cases: Vec<(Vec<&str>, &str)> = histories
        .values()
        .filter(|h| h.len() >= 3)
        .map(|h| (h[..h.len() - 1].to_vec(), h[h.len() - 1]))
        .collect();
    assert!(
        cases.len() > 100,
        "{} users with enough history",
        cases.len()
    );
    let mut co: HashMap<(&str, &str), f64> = HashMap::new();
    let mut popularity: HashMap<&str, f64> = HashMap::new();
    for (train, _) in &cases {
        for a in train {
            *popularity.entry(a).or_default() += 1.0;
            for b in train {
                if a != b {
                    *co.entry((a, b)).or_default() += 1.0;
                }
            }
        }
    }
    let top = |scores: HashMap<&str, f64>, seen: &[&str]| -> Vec<String> {
        let mut ranked: Vec<(&str, f64)> = scores
            .into_iter()
            .filter(|(i, _)| !seen.contains(i))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        ranked
            .into_iter()
            .take(10)
            .map(|(i, _)| i.to_string())
            .collect()
    };
    let (mut hits_co, mut hits_pop) = (0, 0);
    for (train, target) in &cases {
        let mut scores: HashMap<&str, f64> = HashMap::new();
        for ((a, b), n) in &co {
            if train.contains(a) {
                *scores.entry(b).or_default() += n;
            }
        }
        hits_co += usize::from(top(scores, train).iter().any(|i| i == target));
        hits_pop += usize::from(top(popularity.clone(), train).iter().any(|i| i == target));
    }
    println!(
        "hit rate at 10: co-occurrence {hits_co}, popularity {hits_pop}, of {} users",
        cases.len()
    );
    assert!(
        hits_co as f64 > 1.5 * hits_pop as f64,
        "co-occurrence hits {hits_co}, popularity hits {hits_pop} of {}",
        cases.len()
    );
}
