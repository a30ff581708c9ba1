//! The in-memory view of the item catalog that serving filters against on every request. The store is
//! the source of truth; this cache is loaded at start and updated after each committed write.

use std::collections::HashMap;
use std::sync::Arc;

use cairn_core::Item;

#[derive(Default)]
pub struct Catalog {
    items: HashMap<String, Arc<Item>>,
}

impl Catalog {
    pub fn get(&self, id: &str) -> Option<&Arc<Item>> {
        self.items.get(id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.items.contains_key(id)
    }

    pub fn upsert(&mut self, item: Item) {
        self.items.insert(item.id.clone(), Arc::new(item));
    }

    pub fn remove(&mut self, id: &str) {
        self.items.remove(id);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Item>> {
        self.items.values()
    }
}
