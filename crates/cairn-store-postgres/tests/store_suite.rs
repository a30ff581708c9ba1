//! The store test suite of `cairn-store` (`crates/cairn-store/tests/suite`), run on PostgreSQL
//! when `CAIRN_TEST_POSTGRES_URL` names a database (scripts/with-postgres.sh starts a throwaway
//! one; `.ci/run` does). Each test works in a schema of its own, dropped at the end, so the tests
//! run in parallel. Without the variable every test says why it skips and passes.

#[path = "../../cairn-store/tests/suite/mod.rs"]
#[macro_use]
mod suite;

mod common;

store_suite!(common::fresh);
