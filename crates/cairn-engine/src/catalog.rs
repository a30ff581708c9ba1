//! The in-memory view of the item catalog that serving filters against on every request. The store is
//! the source of truth; this cache is loaded at start and updated after each committed write.
//!
//! Items live in slots: an id keeps its slot between model swaps (a deleted item leaves an empty
//! slot that a re-created item of the same id fills again). That makes the served model's item
//! table resolvable once, at model swap, into slot numbers ([`Catalog::bind`]), so that a request's
//! filter looks items up by table index instead of hashing and comparing id strings. A swap also
//! drops the empty slots once they outnumber the live items, so a catalog whose ids churn does not
//! grow for the life of the process.
//!
//! The catalog also counts the categories and property names its items carry ([`KnownNames`]),
//! so that a request naming a category or property no item has is told so at once, at the cost of
//! a hash look-up per name.

use std::collections::HashMap;
use std::sync::Arc;

use cairn_core::Item;

use cairn_pipeline::ModelSet;

/// Empty slots tolerated before a model swap compacts the catalog, whatever its size: compacting
/// costs a pass over the live items, not worth it for a few deletions.
const MIN_EMPTY_SLOTS_TO_COMPACT: usize = 1024;

#[derive(Default)]
pub struct Catalog {
    /// Slot of every id seen since the last compaction (items, and the bound model's table items).
    slots: HashMap<String, u32>,
    /// The item in each slot; `None` after deletion, or for a table item not in the catalog.
    items: Vec<Option<Arc<Item>>>,
    live: usize,
    bound: Option<Binding>,
    categories: KnownNames,
    properties: KnownNames,
}

/// Names (categories, property names) with the number of catalog items that carry each, kept by
/// every write, so that whether any item has a name is one look-up.
#[derive(Default)]
pub struct KnownNames {
    counts: HashMap<Box<str>, u32>,
}

/// Most names [`KnownNames::closest`] suggests.
const MAX_SUGGESTIONS: usize = 3;

impl KnownNames {
    /// Whether at least one catalog item (hidden and unavailable ones included) has `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.counts.contains_key(name)
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The known names nearest to `name` by edit distance (ignoring case, then with case as the
    /// tie-break, then alphabetical), at most three and only those within a third
    /// of the name's length (at least 2 edits): suggestions for a misspelt name. Reads every
    /// known name, so only error paths call it.
    pub fn closest(&self, name: &str) -> Vec<&str> {
        let lower = name.to_lowercase();
        let limit = (name.chars().count() / 3).max(2);
        let mut near: Vec<(usize, usize, &str)> = self
            .counts
            .keys()
            .filter_map(|known| {
                let d = strsim::levenshtein(&lower, &known.to_lowercase());
                (d <= limit).then(|| (d, strsim::levenshtein(name, known), &**known))
            })
            .collect();
        near.sort_unstable();
        near.into_iter()
            .take(MAX_SUGGESTIONS)
            .map(|(_, _, n)| n)
            .collect()
    }

    fn add<'a>(&mut self, names: impl Iterator<Item = &'a str>) {
        for name in names {
            match self.counts.get_mut(name) {
                Some(n) => *n += 1,
                None => {
                    self.counts.insert(name.into(), 1);
                }
            }
        }
    }

    fn remove<'a>(&mut self, names: impl Iterator<Item = &'a str>) {
        for name in names {
            if let Some(n) = self.counts.get_mut(name) {
                *n -= 1;
                if *n == 0 {
                    self.counts.remove(name);
                }
            }
        }
    }
}

/// Whether an item can be recommended, known without reading the item in the common cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Availability {
    /// Not in the catalog, or hidden.
    Never,
    /// Visible, with no availability window.
    Always,
    /// Visible within a window: ask the item.
    Window,
}

impl Availability {
    fn of(item: Option<&Item>) -> Availability {
        match item {
            None => Availability::Never,
            Some(i) if i.hidden => Availability::Never,
            Some(i) if i.available_from.is_none() && i.available_until.is_none() => {
                Availability::Always
            }
            Some(_) => Availability::Window,
        }
    }
}

/// The model set bound last, resolved into the catalog's slots.
struct Binding {
    models: Arc<ModelSet>,
    /// Slot of each table item.
    slots: Vec<u32>,
    /// Table index of each slot that existed at binding time (`u32::MAX`: not a table item);
    /// slots made later belong to no table item.
    table_of_slot: Vec<u32>,
    /// Availability of each table item, kept current by every catalog write; small enough
    /// (a byte per item) to stay in cache while a request filters hundreds of candidates.
    availability: Vec<Availability>,
}

impl Catalog {
    pub fn get(&self, id: &str) -> Option<&Arc<Item>> {
        self.at_slot(*self.slots.get(id)?)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    pub fn upsert(&mut self, item: Item) {
        let slot = self.slot_of(&item.id);
        self.note_availability(slot, Availability::of(Some(&item)));
        self.count_names(&item, true);
        match self.items[slot as usize].replace(Arc::new(item)) {
            Some(old) => self.count_names(&old, false),
            None => self.live += 1,
        }
    }

    pub fn remove(&mut self, id: &str) {
        if let Some(&slot) = self.slots.get(id) {
            if let Some(old) = self.items[slot as usize].take() {
                self.live -= 1;
                self.count_names(&old, false);
            }
            self.note_availability(slot, Availability::Never);
        }
    }

    /// The categories of the catalog's items.
    pub fn categories(&self) -> &KnownNames {
        &self.categories
    }

    /// The property names of the catalog's items.
    pub fn properties(&self) -> &KnownNames {
        &self.properties
    }

    /// Counts `item`'s categories and property names in (`add`) or out.
    fn count_names(&mut self, item: &Item, add: bool) {
        let categories = item.categories.iter().map(String::as_str);
        let properties = item.properties.keys().map(String::as_str);
        if add {
            self.categories.add(categories);
            self.properties.add(properties);
        } else {
            self.categories.remove(categories);
            self.properties.remove(properties);
        }
    }

    fn note_availability(&mut self, slot: u32, availability: Availability) {
        if let Some(b) = &mut self.bound {
            if let Some(&t) = b.table_of_slot.get(slot as usize) {
                if let Some(a) = b.availability.get_mut(t as usize) {
                    *a = availability;
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Item>> {
        self.items.iter().flatten()
    }

    /// Resolves `models`' item table into slots, reserving a slot for every table item the
    /// catalog lacks, so that later writes of those ids land where the binding looks.
    pub fn bind(&mut self, models: Arc<ModelSet>) {
        self.compact_if_sparse();
        let table = &models.table;
        let slots: Vec<u32> = (0..table.len() as u32)
            .map(|i| self.slot_of(table.ids.id(i)))
            .collect();
        let mut table_of_slot = vec![u32::MAX; self.items.len()];
        for (t, &slot) in slots.iter().enumerate() {
            table_of_slot[slot as usize] = t as u32;
        }
        let availability = slots
            .iter()
            .map(|&slot| Availability::of(self.at_slot(slot).map(|i| i.as_ref())))
            .collect();
        self.bound = Some(Binding {
            models,
            slots,
            table_of_slot,
            availability,
        });
    }

    /// Catalog items by index of `models`' item table: by slot when `models` is the bound set,
    /// else by id.
    pub fn for_table<'a>(&'a self, models: &'a ModelSet) -> TableItems<'a> {
        let binding = self.bound.as_ref().filter(|b| {
            std::ptr::eq(Arc::as_ptr(&b.models), models) && b.slots.len() == models.table.len()
        });
        TableItems {
            catalog: self,
            models,
            binding,
        }
    }

    /// Renumbers the slots of the live items and forgets every other id, when empty slots
    /// (deleted items, table items never written) outnumber the live ones. Only [`Catalog::bind`]
    /// calls it, just before resolving a new binding: requests still holding the previous model
    /// set then look items up by id ([`Catalog::for_table`] binds only the current set).
    fn compact_if_sparse(&mut self) {
        let empty = self.items.len() - self.live;
        if empty <= self.live.max(MIN_EMPTY_SLOTS_TO_COMPACT) {
            return;
        }
        self.bound = None;
        let live: Vec<Arc<Item>> = self.items.drain(..).flatten().collect();
        self.slots = live
            .iter()
            .enumerate()
            .map(|(slot, item)| (item.id.clone(), slot as u32))
            .collect();
        self.items = live.into_iter().map(Some).collect();
    }

    fn at_slot(&self, slot: u32) -> Option<&Arc<Item>> {
        self.items.get(slot as usize)?.as_ref()
    }

    fn slot_of(&mut self, id: &str) -> u32 {
        if let Some(&slot) = self.slots.get(id) {
            return slot;
        }
        let slot = self.items.len() as u32;
        self.slots.insert(id.to_string(), slot);
        self.items.push(None);
        slot
    }
}

/// The catalog seen through one model set's item table.
#[derive(Clone, Copy)]
pub struct TableItems<'a> {
    catalog: &'a Catalog,
    models: &'a ModelSet,
    binding: Option<&'a Binding>,
}

impl<'a> TableItems<'a> {
    /// The catalog's item at table index `i`, if it exists now.
    #[inline]
    pub fn get(&self, i: u32) -> Option<&'a Arc<Item>> {
        match self.binding {
            Some(b) => self.catalog.at_slot(*b.slots.get(i as usize)?),
            None => {
                let table = &self.models.table;
                if i as usize >= table.len() {
                    return None;
                }
                self.catalog.get(table.ids.id(i))
            }
        }
    }

    /// Whether table item `i` exists and may be recommended at `now`
    /// ([`Item::is_recommendable`]); reads the item only when it has an availability window.
    #[inline]
    pub fn recommendable(&self, i: u32, now: i64) -> bool {
        let known = self
            .binding
            .and_then(|b| b.availability.get(i as usize).copied());
        match known {
            Some(Availability::Never) => false,
            Some(Availability::Always) => true,
            Some(Availability::Window) | None => {
                self.get(i).is_some_and(|item| item.is_recommendable(now))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn titled(id: &str, title: &str) -> Item {
        let mut item = Item::new(id);
        item.title = Some(title.into());
        item
    }

    #[test]
    fn ids_keep_their_slot_through_deletion_and_recreation() {
        let mut c = Catalog::default();
        c.upsert(titled("a", "1"));
        c.upsert(titled("b", "1"));
        c.upsert(titled("a", "2"));
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("a").unwrap().title.as_deref(), Some("2"));
        let slot_of_a = c.slots["a"];
        c.remove("a");
        c.remove("a");
        c.remove("never");
        assert_eq!(c.len(), 1);
        assert!(!c.contains("a") && c.get("a").is_none());
        assert_eq!(
            c.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            vec!["b"]
        );
        c.upsert(titled("a", "3"));
        assert_eq!(c.slots["a"], slot_of_a, "a re-created item reuses its slot");
        assert_eq!(c.at_slot(slot_of_a).unwrap().title.as_deref(), Some("3"));
        assert_eq!(c.len(), 2);
        assert!(!c.is_empty());
        assert!(c.at_slot(99).is_none());
    }

    #[test]
    fn reserved_slots_hold_nothing_until_the_item_is_written() {
        let mut c = Catalog::default();
        let slot = c.slot_of("later");
        assert!(c.get("later").is_none());
        assert_eq!(c.len(), 0);
        assert!(c.is_empty());
        c.upsert(titled("later", "x"));
        assert_eq!(c.slots["later"], slot);
        assert_eq!(c.len(), 1);
    }

    fn with_names(id: &str, categories: &[&str], properties: &[&str]) -> Item {
        let mut item = Item::new(id);
        item.categories = categories.iter().map(|c| c.to_string()).collect();
        for p in properties {
            item.properties
                .insert(p.to_string(), cairn_core::PropertyValue::Bool(true));
        }
        item
    }

    #[test]
    fn known_names_are_those_of_the_items_in_the_catalog_now() {
        let mut c = Catalog::default();
        c.upsert(with_names("a", &["jazz", "blues"], &["price", "format"]));
        c.upsert(with_names("b", &["jazz"], &["price"]));
        let mut hidden = with_names("h", &["rock"], &["stock"]);
        hidden.hidden = true;
        c.upsert(hidden);
        for name in ["jazz", "blues", "rock"] {
            assert!(c.categories().contains(name), "{name}");
        }
        assert!(c.properties().contains("stock"), "hidden items count");
        assert_eq!((c.categories().len(), c.properties().len()), (3, 3));

        // Replacing an item forgets the names only it had; deleting one forgets the rest.
        c.upsert(with_names("a", &["jazz"], &["price"]));
        assert!(!c.categories().contains("blues") && !c.properties().contains("format"));
        assert!(c.categories().contains("jazz"));
        c.remove("a");
        assert!(c.categories().contains("jazz") && c.properties().contains("price"));
        c.remove("b");
        c.remove("b");
        assert!(!c.categories().contains("jazz") && !c.properties().contains("price"));
        c.remove("h");
        assert!(c.categories().is_empty() && c.properties().is_empty());
    }

    #[test]
    fn the_closest_known_names_are_suggested() {
        let mut c = Catalog::default();
        c.upsert(with_names(
            "a",
            &["jazz", "Jazz", "jazz-rock", "blues", "rock"],
            &["price", "prices", "format", "release_year"],
        ));
        let p = c.properties();
        assert_eq!(p.closest("prce"), ["price", "prices"]);
        assert_eq!(p.closest("Price"), ["price", "prices"]);
        assert_eq!(p.closest("releaseyear"), ["release_year"]);
        assert!(p.closest("colour").is_empty());
        // Case counts only as the tie-break: `jaz` is as near to `Jazz` as to `jazz`.
        assert_eq!(c.categories().closest("Jaz"), ["Jazz", "jazz"]);
        assert_eq!(c.categories().closest("jaz"), ["jazz", "Jazz"]);
        assert!(c.categories().closest("classical").is_empty());
    }

    /// A catalog of items `i0` … `i{n-1}`.
    fn numbered(n: usize) -> Catalog {
        let mut c = Catalog::default();
        for k in 0..n {
            c.upsert(titled(&format!("i{k}"), "x"));
        }
        c
    }

    #[test]
    fn a_sparse_catalog_is_compacted_and_keeps_every_live_item() {
        let mut c = numbered(3000);
        for n in (0..3000).filter(|n| n % 100 != 0) {
            c.remove(&format!("i{n}"));
        }
        c.compact_if_sparse();
        assert_eq!(c.items.len(), 30, "only live items keep a slot");
        assert_eq!(c.slots.len(), 30);
        assert_eq!(c.len(), 30);
        for n in 0..3000 {
            assert_eq!(c.contains(&format!("i{n}")), n % 100 == 0, "i{n}");
        }
        // A forgotten id comes back in a new slot; a live one keeps its slot.
        let kept = c.slots["i100"];
        c.upsert(titled("i1", "back"));
        assert_eq!(c.get("i1").unwrap().title.as_deref(), Some("back"));
        assert_eq!(c.slots["i100"], kept);
        assert_eq!(c.len(), 31);
    }

    #[test]
    fn a_few_deletions_leave_the_slots_alone() {
        let mut c = numbered(100);
        for n in 0..90 {
            c.remove(&format!("i{n}"));
        }
        let slot = c.slots["i95"];
        c.compact_if_sparse();
        assert_eq!(c.items.len(), 100, "below the minimum, nothing moves");
        assert_eq!(c.slots["i95"], slot);
    }
}
