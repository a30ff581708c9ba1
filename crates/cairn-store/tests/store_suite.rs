//! The store test suite (`tests/suite`) on the embedded backend, each test in its own data
//! directory. The PostgreSQL backend runs the same suite in `cairn-store-postgres`.

#[macro_use]
mod suite;

use cairn_store::EmbeddedStore;
use suite::Fresh;

fn fresh(_test: &str) -> Option<Fresh> {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    Some(Fresh {
        store: Box::new(store),
        guard: Box::new(dir),
    })
}

store_suite!(fresh);
