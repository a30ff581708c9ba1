//! Versioned migrations: the numbered SQL files of `migrations/`, compiled into the binary and
//! applied in order when a store connects. Each runs once, in its own transaction with the row
//! that records it in `cairn_migrations`, so a migration is applied whole or not at all; a
//! transaction-level advisory lock makes two processes that start together apply it once.
//! Connecting again applies nothing (idempotent). A database whose schema is newer than this
//! binary (a version it does not know) is refused rather than written to.

use postgres::Client;

use crate::Fail;

/// One schema version: its number and its SQL.
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. A new one is a new file and a new row here; released files never
/// change.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "initial",
    sql: include_str!("../migrations/0001_initial.sql"),
}];

/// The key of the advisory lock held while migrating (any fixed number; "cairn" in ASCII).
pub(crate) const LOCK_KEY: i64 = 0x63_61_69_72_6e;

/// Applies the migrations `client`'s schema lacks; returns the versions applied now.
pub(crate) fn apply(client: &mut Client) -> Result<Vec<i32>, Fail> {
    let mut applied = Vec::new();
    for m in MIGRATIONS {
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS cairn_migrations (\
                 version    INTEGER PRIMARY KEY, \
                 name       TEXT NOT NULL, \
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )?;
        let done = tx
            .query_opt(
                "SELECT 1 FROM cairn_migrations WHERE version = $1",
                &[&m.version],
            )?
            .is_some();
        if !done {
            tx.batch_execute(m.sql)?;
            tx.execute(
                "INSERT INTO cairn_migrations (version, name) VALUES ($1, $2)",
                &[&m.version, &m.name],
            )?;
            applied.push(m.version);
        }
        tx.commit()?;
    }
    let newest = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM cairn_migrations",
            &[],
        )?
        .get::<_, i32>(0);
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if newest > known {
        return Err(Fail::Store(cairn_store::StoreError::Backend(format!(
            "the database's schema is at version {newest}, newer than this binary knows \
             ({known}): run the newer Cairn, or restore a backup"
        ))));
    }
    Ok(applied)
}

/// The schema versions recorded as applied in `client`'s schema, in order.
pub(crate) fn applied_versions(client: &mut Client) -> Result<Vec<i32>, Fail> {
    let rows = client.query("SELECT version FROM cairn_migrations ORDER BY version", &[])?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
