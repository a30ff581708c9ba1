//! The item table of a trained model set: one index space over every item the pipeline can
//! consider (the interaction matrix's items first, then catalog items nobody had touched), with
//! the per-item facts that retrievers and ranker features need.

use std::collections::HashMap;
use std::sync::OnceLock;

use cairn_core::{IdMap, Item};
use serde::{Deserialize, Serialize};

/// Popular items kept per category for the category retriever.
const PER_CATEGORY: usize = 500;
/// Newest items kept for the new-items retriever.
const NEWEST: usize = 5000;
/// A recent item with more interactions than this is no longer under-exposed, hence not new.
const UNDER_EXPOSED: u32 = 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemTable {
    /// Indices `0..n_cf` are the collaborative models' item indices; the rest are catalog items
    /// without interactions at training time.
    pub ids: IdMap,
    pub n_cf: usize,
    pub categories: IdMap,
    /// `cat_ids[cat_start[i]..cat_start[i + 1]]` are item i's categories (first = primary).
    cat_start: Vec<u32>,
    cat_ids: Vec<u32>,
    /// Time of the item's first interaction; `i64::MIN` when it has none.
    pub first_seen: Vec<i64>,
    pub interactions: Vec<u32>,
    /// Per category, its items by decreasing popularity.
    pub popular_by_category: Vec<Vec<u32>>,
    /// Items never interacted with, then items by decreasing first-interaction time.
    pub newest: Vec<u32>,
    /// Interaction counts sorted in decreasing order, with their running sums: computed on first
    /// use (by the popularity correction), not saved.
    #[serde(skip)]
    by_interactions: OnceLock<(Vec<u32>, Vec<u64>)>,
}

impl ItemTable {
    /// `cf_items` are the interaction matrix's item ids in index order; `first_seen`,
    /// `interactions` and `popularity` are indexed like them.
    pub fn build(
        cf_items: &IdMap,
        first_seen: &[i64],
        interactions: &[u32],
        popularity: &[f32],
        catalog: &[Item],
    ) -> ItemTable {
        let n_cf = cf_items.len();
        let mut ids: Vec<String> = (0..n_cf as u32)
            .map(|i| cf_items.id(i).to_string())
            .collect();
        let by_id: HashMap<&str, &Item> = catalog.iter().map(|i| (i.id.as_str(), i)).collect();
        let mut extra: Vec<&str> = catalog
            .iter()
            .map(|i| i.id.as_str())
            .filter(|id| cf_items.get(id).is_none())
            .collect();
        extra.sort_unstable();
        ids.extend(extra.iter().map(|s| s.to_string()));
        let ids = IdMap::from_ids(ids);
        let n = ids.len();

        let mut categories = IdMap::new();
        let mut cat_start = Vec::with_capacity(n + 1);
        let mut cat_ids = Vec::new();
        cat_start.push(0);
        for i in 0..n as u32 {
            if let Some(item) = by_id.get(ids.id(i)) {
                for c in &item.categories {
                    cat_ids.push(categories.intern(c));
                }
            }
            cat_start.push(cat_ids.len() as u32);
        }
        let mut first = vec![i64::MIN; n];
        first[..n_cf].copy_from_slice(&first_seen[..n_cf]);
        let mut counts = vec![0u32; n];
        counts[..n_cf].copy_from_slice(&interactions[..n_cf]);
        let pop = |i: u32| popularity.get(i as usize).copied().unwrap_or(0.0);

        let mut popular_by_category = vec![Vec::new(); categories.len()];
        for i in 0..n as u32 {
            for &c in &cat_ids[cat_start[i as usize] as usize..cat_start[i as usize + 1] as usize] {
                popular_by_category[c as usize].push(i);
            }
        }
        for list in &mut popular_by_category {
            list.sort_by(|&a, &b| pop(b).total_cmp(&pop(a)).then(a.cmp(&b)));
            list.truncate(PER_CATEGORY);
        }
        // Never-interacted items first (they are the newest of all), then by first interaction,
        // newest first.
        let mut newest: Vec<u32> = (0..n as u32).collect();
        newest.sort_by_key(|&i| {
            let t = first[i as usize];
            (t != i64::MIN, std::cmp::Reverse(t), i)
        });
        newest.truncate(NEWEST);
        ItemTable {
            ids,
            n_cf,
            categories,
            cat_start,
            cat_ids,
            first_seen: first,
            interactions: counts,
            popular_by_category,
            newest,
            by_interactions: OnceLock::new(),
        }
    }

    /// The fewest interactions an item of the short head has: the short head is the most popular
    /// items that together receive `share` of all interactions (ties at the boundary included).
    /// `u32::MAX` when there are no interactions (every item is in the long tail).
    pub fn short_head_threshold(&self, share: f32) -> u32 {
        let (sorted, running) = self.by_interactions.get_or_init(|| {
            let mut sorted = self.interactions.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            let mut total = 0u64;
            let running = sorted
                .iter()
                .map(|&c| {
                    total += u64::from(c);
                    total
                })
                .collect();
            (sorted, running)
        });
        let total = running.last().copied().unwrap_or(0);
        if total == 0 {
            return u32::MAX;
        }
        // The share to six decimals, so that 0.8f32 (0.800000012) means 80%.
        let share = (f64::from(share) * 1e6).round() / 1e6;
        let target = (share * total as f64).ceil() as u64;
        let at = running
            .partition_point(|&r| r < target)
            .min(sorted.len() - 1);
        sorted[at].max(1)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn categories_of(&self, item: u32) -> &[u32] {
        let i = item as usize;
        &self.cat_ids[self.cat_start[i] as usize..self.cat_start[i + 1] as usize]
    }

    pub fn primary_category(&self, item: u32) -> Option<u32> {
        self.categories_of(item).first().copied()
    }

    /// Whether the item counts as new at `now`: nobody has touched it, or it was first touched
    /// less than `days` ago and is still under-exposed (what exploration is for).
    pub fn is_new(&self, item: u32, now: i64, days: f64) -> bool {
        let first = self.first_seen[item as usize];
        first == i64::MIN
            || (((now - first) as f64) < days * 86_400.0
                && self.interactions[item as usize] <= UNDER_EXPOSED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, cats: &[&str]) -> Item {
        let mut i = Item::new(id);
        i.categories = cats.iter().map(|c| c.to_string()).collect();
        i
    }

    #[test]
    fn interacted_items_keep_their_indices_and_untouched_items_follow() {
        let cf = IdMap::from_ids(vec!["b".into(), "a".into()]);
        let catalog = vec![item("a", &["x"]), item("c", &["x", "y"]), item("b", &["y"])];
        let t = ItemTable::build(&cf, &[100, 200], &[3, 1], &[1.0, 5.0], &catalog);
        assert_eq!(t.len(), 3);
        assert_eq!(t.ids.id(0), "b");
        assert_eq!(t.ids.id(1), "a");
        assert_eq!(t.ids.id(2), "c");
        let x = t.categories.get("x").unwrap();
        assert_eq!(t.popular_by_category[x as usize], vec![1, 2]);
        assert_eq!(t.primary_category(2), Some(x));
        assert_eq!(t.newest, vec![2, 1, 0]);
        assert!(t.is_new(2, 10_000, 0.0));
        assert!(!t.is_new(0, 100 + 86_400 * 2, 1.0));
        assert!(t.is_new(0, 100 + 3_600, 1.0));
        let busy = ItemTable::build(&cf, &[100, 200], &[50, 1], &[1.0, 5.0], &catalog);
        assert!(
            !busy.is_new(0, 100 + 3_600, 1.0),
            "well exposed, so not new"
        );
    }

    #[test]
    fn the_short_head_takes_the_given_share_of_interactions() {
        let cf = IdMap::from_ids((0..5).map(|i| format!("i{i}")).collect());
        // 50 + 30 + 10 + 6 + 4 = 100 interactions.
        let t = ItemTable::build(&cf, &[1; 5], &[10, 50, 4, 30, 6], &[0.0; 5], &[]);
        assert_eq!(
            t.short_head_threshold(0.5),
            50,
            "the top item alone holds half"
        );
        assert_eq!(t.short_head_threshold(0.8), 30, "50 + 30");
        assert_eq!(t.short_head_threshold(0.85), 10, "50 + 30 + 10");
        assert_eq!(t.short_head_threshold(0.99), 4);
        let empty = ItemTable::build(&cf, &[1; 5], &[0; 5], &[0.0; 5], &[]);
        assert_eq!(empty.short_head_threshold(0.8), u32::MAX);
    }
}
