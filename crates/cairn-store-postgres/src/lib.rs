//! The PostgreSQL backend of Cairn's [`Store`] trait, chosen by configuration
//! (`store.url = "postgres://…"`); the embedded store stays the default.
//!
//! - **Schema**: versioned SQL files in `migrations/`, applied when the store connects, each once
//!   and in its own transaction, under an advisory lock so that two processes starting together
//!   apply them once ([`migrate`]).
//! - **Writes**: every write method is one transaction, so a batch is applied whole or not at all,
//!   and it returns once PostgreSQL has committed it (durable under the server's `fsync` and
//!   `synchronous_commit` settings). A batch of events first locks the `last_seq` counter row,
//!   which hands out log positions in commit order: a reader that has seen position `N` never
//!   misses a later commit below it.
//! - **Idempotent event ids**: a unique index on `events.event_id`; an id stored before, or
//!   earlier in the same batch, is acknowledged as a duplicate, never stored twice.
//! - **Erasure**: deleting a user removes the user row, every event of the user (their event ids
//!   with them), the user's `user_items` pairs, and the id in the audit log (the same rule as the
//!   embedded store, [`cairn_store::scrub_audit_record`]), in one transaction; `compact` runs
//!   `VACUUM FULL` so that no deleted row survives in the tables' files.
//! - **Streaming reads**: scans (training's read of the log, the catalog at start) go through a
//!   portal fetched [`FETCH_ROWS`] rows at a time inside one read-only transaction: one consistent
//!   moment, never the whole log in memory.
//!
//! The trait is synchronous, so this crate uses the synchronous `postgres` client (it drives
//! `tokio-postgres` on a runtime of its own). Connections are kept in a small pool; a call made
//! on a worker thread of a multi-threaded tokio runtime runs in `block_in_place`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use cairn_core::{Event, Item, PropertyValue, StoredEvent, Timestamp, User};
use cairn_store::{
    AppendOutcome, AuditRecord, BackupReport, CompactReport, DeletedUser, EmbeddedStore,
    ExpiredEvents, IoKind, KeyRecord, Store, StoreError, StoreStats,
};
use postgres::error::SqlState;
use postgres::{Client, NoTls, Row, Transaction};

pub mod migrate;

/// The first half of the trainer lease's advisory lock key (`pg_try_advisory_lock(int, int)`; the
/// second half is a hash of the schema, so stores in different schemas of one database elect their
/// trainers apart). The two-number keys are apart from the migrations' one-number key.
pub const TRAINER_LOCK: i32 = 0x7472_6e72; // "trnr"

/// Rows fetched per round trip by the streaming scans.
pub const FETCH_ROWS: i32 = 2_000;
/// Idle connections kept for the next call.
const MAX_IDLE: usize = 16;

/// The columns of an event row, in the order [`event_from_row`] reads them.
const EVENT_COLUMNS: &str =
    "seq, user_id, item_id, event_type, value, ts, event_id, recommendation_id, context";

pub struct PostgresStore {
    config: postgres::Config,
    /// The schema every connection works in (`search_path`); `None`: the server's default.
    schema: Option<String>,
    idle: Mutex<Vec<Client>>,
    /// The session that asks for the trainer lease (an advisory lock, see [`TRAINER_LOCK`]), and
    /// whether it holds it; never returned to the pool.
    lease: Mutex<Option<(Client, bool)>>,
    /// Where the store is, without the password, for messages.
    target: String,
}

/// An error inside an operation: the store's, or the client's (turned into the store's by
/// [`pg_error`] at the end).
enum Fail {
    Store(StoreError),
    Pg(postgres::Error),
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Self {
        Fail::Pg(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl Fail {
    fn into_store(self, target: &str) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Pg(e) => pg_error(&e, target),
        }
    }
}

/// The store's error for a client error: a lost or refused connection is an I/O failure (the
/// server answers 503 and the next call connects again), a full disk on the database server is
/// [`IoKind::NoSpace`], anything else the database refused is a backend error with its words.
fn pg_error(e: &postgres::Error, target: &str) -> StoreError {
    if let Some(db) = e.as_db_error() {
        if *db.code() == SqlState::DISK_FULL {
            return StoreError::Io {
                kind: IoKind::NoSpace,
                message: format!("PostgreSQL at {target}: {}", db.message()),
            };
        }
        return StoreError::Backend(format!(
            "PostgreSQL at {target}: {} ({})",
            db.message(),
            db.code().code()
        ));
    }
    if e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()) {
        return StoreError::Io {
            kind: IoKind::Failed,
            message: format!("the connection to PostgreSQL at {target} failed: {e}"),
        };
    }
    StoreError::Backend(format!("PostgreSQL at {target}: {e}"))
}

/// Runs blocking client work from any thread: on a worker of a multi-threaded tokio runtime it
/// runs in `block_in_place` (the client drives a runtime of its own, which cannot start inside
/// another's worker).
fn outside_runtime<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A `u64` position or count as PostgreSQL's `BIGINT`.
fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A limit as `BIGINT` (`usize::MAX` means none).
fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, doc: &str) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("catalog rows serialize")
}

fn event_from_row(row: &Row) -> Result<StoredEvent, StoreError> {
    let seq: i64 = row.get(0);
    let context: Option<String> = row.get(8);
    let context: BTreeMap<String, PropertyValue> = match context {
        Some(json) => decode(&format!("event {seq} context"), &json)?,
        None => BTreeMap::new(),
    };
    Ok(StoredEvent {
        seq: seq as u64,
        user_id: row.get(1),
        item_id: row.get(2),
        event_type: row.get(3),
        value: row.get(4),
        timestamp: Timestamp(row.get(5)),
        event_id: row.get(6),
        recommendation_id: row.get(7),
        context,
    })
}

fn audit_from_row(row: &Row) -> AuditRecord {
    AuditRecord {
        seq: row.get::<_, i64>(0) as u64,
        at: row.get(1),
        key_id: row.get(2),
        key_name: row.get(3),
        action: row.get(4),
        target: row.get(5),
        status: u16::try_from(row.get::<_, i32>(6)).unwrap_or(0),
    }
}

const AUDIT_COLUMNS: &str = "seq, at, key_id, key_name, action, target, status";

/// Columns of events to insert, one array per column (one `INSERT … SELECT FROM UNNEST` per batch).
#[derive(Default)]
struct EventColumns {
    seq: Vec<i64>,
    user: Vec<String>,
    item: Vec<String>,
    event_type: Vec<String>,
    value: Vec<Option<f64>>,
    ts: Vec<i64>,
    event_id: Vec<Option<String>>,
    recommendation_id: Vec<Option<String>>,
    context: Vec<Option<String>>,
}

impl EventColumns {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        seq: u64,
        user: &str,
        item: &str,
        event_type: &str,
        value: Option<f64>,
        ts: i64,
        event_id: Option<&str>,
        recommendation_id: Option<&str>,
        context: &BTreeMap<String, PropertyValue>,
    ) {
        self.seq.push(big(seq));
        self.user.push(user.to_string());
        self.item.push(item.to_string());
        self.event_type.push(event_type.to_string());
        self.value.push(value);
        self.ts.push(ts);
        self.event_id.push(event_id.map(str::to_string));
        self.recommendation_id
            .push(recommendation_id.map(str::to_string));
        self.context
            .push((!context.is_empty()).then(|| encode(context)));
    }

    /// Inserts the rows and their `(user, item)` pairs.
    fn insert(&self, tx: &mut Transaction<'_>) -> Result<(), postgres::Error> {
        if self.seq.is_empty() {
            return Ok(());
        }
        tx.execute(
            "INSERT INTO events (seq, user_id, item_id, event_type, value, ts, event_id, \
             recommendation_id, context) \
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], \
             $5::float8[], $6::bigint[], $7::text[], $8::text[], $9::text[])",
            &[
                &self.seq,
                &self.user,
                &self.item,
                &self.event_type,
                &self.value,
                &self.ts,
                &self.event_id,
                &self.recommendation_id,
                &self.context,
            ],
        )?;
        tx.execute(
            "INSERT INTO user_items (user_id, item_id) \
             SELECT DISTINCT * FROM UNNEST($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
            &[&self.user, &self.item],
        )?;
        Ok(())
    }
}

/// Locks the log's counter row for this transaction (every write that touches the log takes it
/// first, so they apply one after another, as the embedded store's writes do) and returns the
/// log's end.
fn lock_log(tx: &mut Transaction<'_>) -> Result<u64, postgres::Error> {
    let row = tx.query_one(
        "SELECT value FROM meta WHERE key = 'last_seq' FOR UPDATE",
        &[],
    )?;
    Ok(row.get::<_, i64>(0) as u64)
}

fn set_last_seq(tx: &mut Transaction<'_>, seq: u64) -> Result<(), postgres::Error> {
    tx.execute(
        "UPDATE meta SET value = $1 WHERE key = 'last_seq'",
        &[&big(seq)],
    )?;
    Ok(())
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`, or
    /// `host=/socket/dir port=… dbname=…`) and applies the migrations it lacks.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_in_schema(url, None)
    }

    /// [`PostgresStore::connect`], working in `schema` (created when missing) instead of the
    /// server's default: several stores in one database, as the tests run them in parallel.
    pub fn connect_in_schema(url: &str, schema: Option<&str>) -> Result<Self, StoreError> {
        let config: postgres::Config = url.parse().map_err(|e| {
            StoreError::Backend(format!(
                "store.url is not a PostgreSQL connection string: {e}"
            ))
        })?;
        let target = describe(&config);
        let store = PostgresStore {
            config,
            schema: schema.map(str::to_string),
            idle: Mutex::default(),
            lease: Mutex::default(),
            target,
        };
        outside_runtime(|| {
            let mut client = store.new_client(true)?;
            migrate::apply(&mut client).map_err(|e| e.into_store(&store.target))?;
            store.put_back(client);
            Ok(store)
        })
    }

    /// The schema versions applied to the database, in order (see [`migrate`]).
    pub fn schema_versions(&self) -> Result<Vec<i32>, StoreError> {
        self.with_client(migrate::applied_versions)
    }

    /// Applies the migrations the database lacks (done when connecting); returns those applied
    /// now, none when it is up to date.
    pub fn migrate(&self) -> Result<Vec<i32>, StoreError> {
        self.with_client(migrate::apply)
    }

    /// Where the store is (host, port, database; never the password).
    pub fn target(&self) -> &str {
        &self.target
    }

    fn new_client(&self, create_schema: bool) -> Result<Client, StoreError> {
        let mut client = self.config.connect(NoTls).map_err(|e| StoreError::Io {
            kind: IoKind::Failed,
            message: format!("cannot connect to PostgreSQL at {}: {e}", self.target),
        })?;
        if let Some(schema) = &self.schema {
            let quoted = quote_ident(schema);
            let mut sql = String::new();
            if create_schema {
                // CREATE SCHEMA IF NOT EXISTS is not safe against a concurrent twin: serialised
                // under the migrations' advisory lock, held until this implicit transaction
                // (one simple query) commits.
                let key = migrate::LOCK_KEY;
                sql.push_str(&format!(
                    "SELECT pg_advisory_xact_lock({key}); CREATE SCHEMA IF NOT EXISTS {quoted}; "
                ));
            }
            sql.push_str(&format!("SET search_path TO {quoted}"));
            client
                .batch_execute(&sql)
                .map_err(|e| pg_error(&e, &self.target))?;
        }
        Ok(client)
    }

    fn take(&self) -> Result<Client, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(c) if !c.is_closed() => Ok(c),
            _ => self.new_client(false),
        }
    }

    fn put_back(&self, client: Client) {
        if client.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(client);
        }
    }

    /// Runs `op` on a pooled connection.
    fn with_client<T>(
        &self,
        op: impl FnOnce(&mut Client) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        outside_runtime(|| {
            let mut client = self.take()?;
            let result = op(&mut client);
            self.put_back(client);
            result.map_err(|e| e.into_store(&self.target))
        })
    }

    /// Runs `op` in one transaction, committed when it returns `Ok` (rolled back otherwise).
    fn write<T>(
        &self,
        op: impl FnOnce(&mut Transaction<'_>) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        self.with_client(|client| {
            let mut tx = client.transaction()?;
            let out = op(&mut tx)?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// Runs `op` in one read-only transaction at one consistent moment (`REPEATABLE READ`).
    fn snapshot<T>(
        &self,
        op: impl FnOnce(&mut Transaction<'_>) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        self.with_client(|client| {
            let mut tx = client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let out = op(&mut tx)?;
            tx.commit()?;
            Ok(out)
        })
    }

    fn put_docs(&self, table: &str, rows: Vec<(String, String)>) -> Result<(), StoreError> {
        // The last row of an id wins, as in the embedded store (one INSERT … ON CONFLICT may
        // not touch a row twice).
        let rows: BTreeMap<String, String> = rows.into_iter().collect();
        let (ids, docs): (Vec<String>, Vec<String>) = rows.into_iter().unzip();
        let sql = format!(
            "INSERT INTO {table} (id, doc) SELECT * FROM UNNEST($1::text[], $2::text[]) \
             ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc"
        );
        self.write(|tx| {
            tx.execute(sql.as_str(), &[&ids, &docs])?;
            Ok(())
        })
    }

    fn get_doc<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let sql = format!("SELECT doc FROM {table} WHERE id = $1");
        self.with_client(|c| match c.query_opt(sql.as_str(), &[&id])? {
            Some(row) => Ok(Some(decode(table, row.get::<_, &str>(0))?)),
            None => Ok(None),
        })
    }

    fn list_docs<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        after: Option<&str>,
        n: usize,
    ) -> Result<Vec<T>, StoreError> {
        let sql = format!(
            "SELECT doc FROM {table} WHERE $1::text IS NULL OR id > $1 ORDER BY id LIMIT $2"
        );
        self.with_client(|c| {
            let rows = c.query(sql.as_str(), &[&after, &limit(n)])?;
            rows.iter()
                .map(|r| decode(table, r.get::<_, &str>(0)).map_err(Fail::from))
                .collect()
        })
    }

    fn delete_row(&self, table: &str, id: &str) -> Result<bool, StoreError> {
        let sql = format!("DELETE FROM {table} WHERE id = $1");
        self.write(|tx| Ok(tx.execute(sql.as_str(), &[&id])? > 0))
    }

    /// Visits the rows of `sql` through a portal, [`FETCH_ROWS`] at a time, until `visit` returns
    /// false.
    fn stream(
        tx: &mut Transaction<'_>,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
        visit: &mut dyn FnMut(&Row) -> Result<bool, Fail>,
    ) -> Result<(), Fail> {
        let portal = tx.bind(sql, params)?;
        loop {
            let rows = tx.query_portal(&portal, FETCH_ROWS)?;
            for row in &rows {
                if !visit(row)? {
                    return Ok(());
                }
            }
            if rows.len() < FETCH_ROWS as usize {
                return Ok(());
            }
        }
    }

    /// Bytes the store's tables (with their indexes) take on the database server.
    fn table_bytes(client: &mut Client) -> Result<u64, postgres::Error> {
        let row = client.query_one(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind = 'r'",
            &[],
        )?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}

/// `host:port/dbname` of a connection configuration.
fn describe(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

impl Store for PostgresStore {
    /// A session-level advisory lock on a connection of its own, kept while this process holds
    /// the lease: PostgreSQL releases it when that session ends (the process died, or the
    /// connection broke), and another replica takes it at its next try.
    fn trainer_lease(&self) -> Result<bool, StoreError> {
        outside_runtime(|| {
            let mut lease = self.lease.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((client, true)) = lease.as_mut() {
                // Held as long as the session lives: ask it whether it does.
                if !client.is_closed() && client.simple_query("SELECT 1").is_ok() {
                    return Ok(true);
                }
                // The session is gone, and the lock with it: try again on a new one.
                *lease = None;
            }
            let mut client = match lease.take() {
                Some((c, _)) if !c.is_closed() => c,
                _ => self.new_client(false)?,
            };
            let got: bool = client
                .query_one(
                    "SELECT pg_try_advisory_lock($1, hashtext(coalesce(current_schema(), '')))",
                    &[&TRAINER_LOCK],
                )
                .map_err(|e| pg_error(&e, &self.target))?
                .get(0);
            // Kept either way: the holder's session holds the lock, another's asks again on it.
            *lease = Some((client, got));
            Ok(got)
        })
    }

    fn put_items(&self, items: &[Item]) -> Result<(), StoreError> {
        let rows = items.iter().map(|i| (i.id.clone(), encode(i))).collect();
        self.put_docs("items", rows)
    }

    fn get_item(&self, id: &str) -> Result<Option<Item>, StoreError> {
        self.get_doc("items", id)
    }

    fn delete_item(&self, id: &str) -> Result<bool, StoreError> {
        self.delete_row("items", id)
    }

    fn list_items(&self, after: Option<&str>, limit: usize) -> Result<Vec<Item>, StoreError> {
        self.list_docs("items", after, limit)
    }

    fn scan_items(&self, visit: &mut dyn FnMut(Item)) -> Result<(), StoreError> {
        self.snapshot(|tx| {
            Self::stream(tx, "SELECT doc FROM items ORDER BY id", &[], &mut |row| {
                visit(decode("items", row.get::<_, &str>(0))?);
                Ok(true)
            })
        })
    }

    fn put_users(&self, users: &[User]) -> Result<(), StoreError> {
        let rows = users.iter().map(|u| (u.id.clone(), encode(u))).collect();
        self.put_docs("users", rows)
    }

    fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.get_doc("users", id)
    }

    fn delete_user(&self, id: &str) -> Result<DeletedUser, StoreError> {
        self.write(|tx| {
            lock_log(tx)?;
            let user_existed = tx.execute("DELETE FROM users WHERE id = $1", &[&id])? > 0;
            let events_removed = tx.execute("DELETE FROM events WHERE user_id = $1", &[&id])?;
            tx.execute("DELETE FROM user_items WHERE user_id = $1", &[&id])?;
            // Only entries of the user routes can name a user (see scrub_audit_record).
            let sql = format!(
                "SELECT {AUDIT_COLUMNS} FROM audit WHERE action LIKE '% /v1/users/%' \
                 ORDER BY seq FOR UPDATE"
            );
            let rows = tx.query(sql.as_str(), &[])?;
            let mut audit_scrubbed = 0;
            for row in &rows {
                let mut record = audit_from_row(row);
                if cairn_store::scrub_audit_record(&mut record, id) {
                    tx.execute(
                        "UPDATE audit SET action = $2, target = $3 WHERE seq = $1",
                        &[&big(record.seq), &record.action, &record.target],
                    )?;
                    audit_scrubbed += 1;
                }
            }
            Ok(DeletedUser {
                user_existed,
                events_removed: events_removed as usize,
                audit_scrubbed,
            })
        })
    }

    fn list_users(&self, after: Option<&str>, limit: usize) -> Result<Vec<User>, StoreError> {
        self.list_docs("users", after, limit)
    }

    fn append_events(&self, batch: &[Event], now: Timestamp) -> Result<AppendOutcome, StoreError> {
        let mut outcome = AppendOutcome::default();
        if batch.is_empty() {
            return Ok(outcome);
        }
        let ids: Vec<&str> = batch.iter().filter_map(|e| e.event_id.as_deref()).collect();
        self.write(|tx| {
            let mut seq = lock_log(tx)?;
            // Ids stored before; the lock above keeps another batch from storing one meanwhile.
            let mut seen: HashSet<String> = HashSet::new();
            if !ids.is_empty() {
                for row in tx.query(
                    "SELECT event_id FROM events WHERE event_id = ANY($1)",
                    &[&ids],
                )? {
                    seen.insert(row.get(0));
                }
            }
            let mut columns = EventColumns::default();
            for event in batch {
                if let Some(eid) = event.event_id.as_deref() {
                    if !seen.insert(eid.to_string()) {
                        outcome.duplicates += 1;
                        continue;
                    }
                }
                seq += 1;
                columns.push(
                    seq,
                    &event.user_id,
                    &event.item_id,
                    &event.event_type,
                    event.value,
                    event.timestamp.unwrap_or(now).0,
                    event.event_id.as_deref(),
                    event.recommendation_id.as_deref(),
                    &event.context,
                );
                outcome.stored.push(seq);
            }
            columns.insert(tx)?;
            set_last_seq(tx, seq)?;
            Ok(std::mem::take(&mut outcome))
        })
    }

    fn user_events(&self, user_id: &str, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = self.user_events_before(user_id, None, limit)?;
        out.reverse();
        Ok(out)
    }

    fn user_events_before(
        &self,
        user_id: &str,
        before_seq: Option<u64>,
        n: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let before = before_seq.map_or(i64::MAX, big);
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE user_id = $1 AND seq < $2 \
             ORDER BY seq DESC LIMIT $3"
        );
        self.with_client(|c| {
            let rows = c.query(sql.as_str(), &[&user_id, &before, &limit(n)])?;
            rows.iter()
                .map(|r| event_from_row(r).map_err(Fail::from))
                .collect()
        })
    }

    fn user_items(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        self.with_client(|c| {
            let rows = c.query(
                "SELECT item_id FROM user_items WHERE user_id = $1 ORDER BY item_id",
                &[&user_id],
            )?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn expire_events(&self, cutoff: Timestamp, n: usize) -> Result<ExpiredEvents, StoreError> {
        self.write(|tx| {
            lock_log(tx)?;
            let rows = tx.query(
                "WITH old AS (SELECT seq FROM events WHERE ts < $1 ORDER BY seq LIMIT $2) \
                 DELETE FROM events e USING old WHERE e.seq = old.seq \
                 RETURNING e.user_id, e.item_id",
                &[&cutoff.0, &limit(n)],
            )?;
            let mut out = ExpiredEvents {
                events: rows.len() as u64,
                pairs: 0,
            };
            let pairs: std::collections::BTreeSet<(String, String)> =
                rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            if !pairs.is_empty() {
                let (users, items): (Vec<String>, Vec<String>) = pairs.into_iter().unzip();
                // Pairs that still have an event of their user keep their row.
                out.pairs = tx.execute(
                    "DELETE FROM user_items ui USING UNNEST($1::text[], $2::text[]) AS t(u, i) \
                     WHERE ui.user_id = t.u AND ui.item_id = t.i AND NOT EXISTS \
                     (SELECT 1 FROM events e WHERE e.user_id = t.u AND e.item_id = t.i)",
                    &[&users, &items],
                )?;
            }
            Ok(out)
        })
    }

    fn scan_events(
        &self,
        after_seq: u64,
        visit: &mut dyn FnMut(StoredEvent) -> bool,
    ) -> Result<(), StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE seq > $1 ORDER BY seq");
        self.snapshot(|tx| {
            Self::stream(tx, &sql, &[&big(after_seq)], &mut |row| {
                Ok(visit(event_from_row(row)?))
            })
        })
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        self.snapshot(|tx| {
            let row = tx.query_one(
                "SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM users), \
                 (SELECT count(*) FROM events), \
                 (SELECT value FROM meta WHERE key = 'last_seq')",
                &[],
            )?;
            Ok(StoreStats {
                items: row.get::<_, i64>(0) as u64,
                users: row.get::<_, i64>(1) as u64,
                events: row.get::<_, i64>(2) as u64,
                last_seq: row.get::<_, i64>(3) as u64,
            })
        })
    }

    /// Writes an embedded store (a data directory's `cairn.redb`) holding one consistent moment
    /// of the database: `cairn backup` of a PostgreSQL deployment, and `cairn migrate` back to a
    /// data directory.
    fn backup(&self, dest_dir: &Path) -> Result<BackupReport, StoreError> {
        if dest_dir.join("cairn.redb").exists() {
            return Err(StoreError::Open {
                path: dest_dir.join("cairn.redb"),
                message: "a store file is already there; back up into an empty folder".into(),
            });
        }
        let dest = EmbeddedStore::open(dest_dir)?;
        self.snapshot(|tx| copy_snapshot(tx, &dest))
    }

    /// `VACUUM FULL` of every table: each is rewritten from its live rows, so nothing deleted
    /// survives in its files (PostgreSQL's write-ahead log and backups are the operator's).
    fn compact(&self) -> Result<CompactReport, StoreError> {
        self.with_client(|c| {
            let bytes_before = Self::table_bytes(c)?;
            c.batch_execute("VACUUM FULL items, users, events, user_items, api_keys, audit")?;
            let bytes_after = Self::table_bytes(c)?;
            let row = c.query_one(
                "SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM users), \
                 (SELECT count(*) FROM events)",
                &[],
            )?;
            Ok(CompactReport {
                bytes_before,
                bytes_after,
                items: row.get::<_, i64>(0) as u64,
                users: row.get::<_, i64>(1) as u64,
                events: row.get::<_, i64>(2) as u64,
            })
        })
    }

    fn import_events(&self, events: &[StoredEvent], last_seq: u64) -> Result<(), StoreError> {
        self.write(|tx| {
            let mut end = lock_log(tx)?;
            let mut columns = EventColumns::default();
            for e in events {
                cairn_store::check_import_order(e.seq, end)?;
                end = e.seq;
                columns.push(
                    e.seq,
                    &e.user_id,
                    &e.item_id,
                    &e.event_type,
                    e.value,
                    e.timestamp.0,
                    e.event_id.as_deref(),
                    e.recommendation_id.as_deref(),
                    &e.context,
                );
            }
            // A repeated event id breaks the unique index: the whole import is refused.
            columns.insert(tx)?;
            set_last_seq(tx, end.max(last_seq))?;
            Ok(())
        })
    }

    fn import_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        self.write(|tx| {
            let row = tx.query_one(
                "SELECT value FROM meta WHERE key = 'audit_seq' FOR UPDATE",
                &[],
            )?;
            let mut end = row.get::<_, i64>(0) as u64;
            for r in records {
                cairn_store::check_import_order(r.seq, end)?;
                end = r.seq;
                insert_audit(tx, r)?;
            }
            tx.execute(
                "UPDATE meta SET value = $1 WHERE key = 'audit_seq'",
                &[&big(end)],
            )?;
            Ok(())
        })
    }

    fn put_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        self.put_docs("api_keys", vec![(key.id.clone(), encode(key))])
    }

    fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.list_docs("api_keys", None, usize::MAX)
    }

    fn delete_key(&self, id: &str) -> Result<bool, StoreError> {
        self.delete_row("api_keys", id)
    }

    fn append_audit(&self, record: &AuditRecord) -> Result<u64, StoreError> {
        self.write(|tx| {
            let row = tx.query_one(
                "UPDATE meta SET value = value + 1 WHERE key = 'audit_seq' RETURNING value",
                &[],
            )?;
            let seq = row.get::<_, i64>(0) as u64;
            insert_audit(
                tx,
                &AuditRecord {
                    seq,
                    ..record.clone()
                },
            )?;
            Ok(seq)
        })
    }

    fn list_audit(&self, before: Option<u64>, n: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let before = before.map_or(i64::MAX, big);
        let sql =
            format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE seq < $1 ORDER BY seq DESC LIMIT $2");
        self.with_client(|c| {
            let rows = c.query(sql.as_str(), &[&before, &limit(n)])?;
            Ok(rows.iter().map(audit_from_row).collect())
        })
    }
}

fn insert_audit(tx: &mut Transaction<'_>, r: &AuditRecord) -> Result<(), postgres::Error> {
    tx.execute(
        "INSERT INTO audit (seq, at, key_id, key_name, action, target, status) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &big(r.seq),
            &r.at,
            &r.key_id,
            &r.key_name,
            &r.action,
            &r.target,
            &i32::from(r.status),
        ],
    )?;
    Ok(())
}

/// Rows per write into the copy.
const COPY_CHUNK: usize = 5_000;

/// Copies what `tx` sees into the empty embedded store `dest`, the log streamed chunk by chunk.
fn copy_snapshot(tx: &mut Transaction<'_>, dest: &EmbeddedStore) -> Result<BackupReport, Fail> {
    let mut report = BackupReport::default();
    let mut items: Vec<Item> = Vec::new();
    PostgresStore::stream(tx, "SELECT doc FROM items ORDER BY id", &[], &mut |row| {
        items.push(decode("items", row.get::<_, &str>(0))?);
        if items.len() == COPY_CHUNK {
            report.items += items.len() as u64;
            dest.put_items(&std::mem::take(&mut items))?;
        }
        Ok(true)
    })?;
    report.items += items.len() as u64;
    dest.put_items(&items)?;
    let mut users: Vec<User> = Vec::new();
    PostgresStore::stream(tx, "SELECT doc FROM users ORDER BY id", &[], &mut |row| {
        users.push(decode("users", row.get::<_, &str>(0))?);
        if users.len() == COPY_CHUNK {
            report.users += users.len() as u64;
            dest.put_users(&std::mem::take(&mut users))?;
        }
        Ok(true)
    })?;
    report.users += users.len() as u64;
    dest.put_users(&users)?;
    for row in tx.query("SELECT doc FROM api_keys ORDER BY id", &[])? {
        let key: KeyRecord = decode("api_keys", row.get::<_, &str>(0))?;
        dest.put_key(&key)?;
    }
    let mut audit: Vec<AuditRecord> = Vec::new();
    let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq");
    PostgresStore::stream(tx, &sql, &[], &mut |row| {
        audit.push(audit_from_row(row));
        if audit.len() == COPY_CHUNK {
            dest.import_audit(&std::mem::take(&mut audit))?;
        }
        Ok(true)
    })?;
    dest.import_audit(&audit)?;
    let mut events: Vec<StoredEvent> = Vec::new();
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY seq");
    PostgresStore::stream(tx, &sql, &[], &mut |row| {
        events.push(event_from_row(row)?);
        if events.len() == COPY_CHUNK {
            report.events += events.len() as u64;
            dest.import_events(&std::mem::take(&mut events), 0)?;
        }
        Ok(true)
    })?;
    report.events += events.len() as u64;
    let last_seq = tx
        .query_one("SELECT value FROM meta WHERE key = 'last_seq'", &[])?
        .get::<_, i64>(0) as u64;
    dest.import_events(&events, last_seq)?;
    report.last_seq = last_seq;
    Ok(report)
}
