//! A fresh PostgreSQL store per test: a schema of its own in the database that
//! `CAIRN_TEST_POSTGRES_URL` names, dropped when the test ends.
#![allow(dead_code)]

use cairn_store_postgres::PostgresStore;

pub use crate::suite::Fresh;

/// The variable that names the test database.
pub const URL_VAR: &str = "CAIRN_TEST_POSTGRES_URL";

/// The test database's URL, or `None` (saying why the test skips).
pub fn url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "skipped {test}: {URL_VAR} is not set (run `scripts/with-postgres.sh cargo test \
                 -p cairn-store-postgres` to start a throwaway PostgreSQL)"
            );
            None
        }
    }
}

/// Drops the schema when the test ends.
pub struct SchemaGuard {
    url: String,
    schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.url, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ));
        }
    }
}

/// A schema name unique to this test process and test.
pub fn schema_name(test: &str) -> String {
    format!("t{}_{}", std::process::id(), test)
        .chars()
        .take(60)
        .collect()
}

/// A new, migrated, empty store in a schema of its own (dropped first if a run left it).
pub fn store(test: &str) -> Option<(PostgresStore, SchemaGuard)> {
    let url = url(test)?;
    let schema = schema_name(test);
    let mut c =
        postgres::Client::connect(&url, postgres::NoTls).expect("connect to the test database");
    c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .unwrap();
    let store = PostgresStore::connect_in_schema(&url, Some(&schema)).expect("open the store");
    Some((store, SchemaGuard { url, schema }))
}

pub fn fresh(test: &str) -> Option<Fresh> {
    let (store, guard) = store(test)?;
    Some(Fresh {
        store: Box::new(store),
        guard: Box::new(guard),
    })
}
