//! Streaming ingestion: a consumer of a Redis stream that stores the events it reads through the
//! same engine path as `POST /v1/events` (`[stream]` in the configuration; docs/POSTGRES.md,
//! "Streaming ingestion").
//!
//! Delivery is at least once: entries are read with `XREADGROUP` in a consumer group and
//! acknowledged (`XACK`) only after the store acknowledged their events (one fsynced write per read
//! batch). An entry read but not acknowledged (the process died between the two) is read again: by
//! this consumer when it starts (its own pending entries, id `0`), or by another consumer of the
//! group that claims it (`XAUTOCLAIM`) once it has been idle `stream.claim_idle_ms`. Redelivery
//! stores nothing twice because every event has an id: the client's `event_id`, or one derived
//! from the stream entry (`<key>:<entry id>:<index>`), and the store skips ids it has seen.
//!
//! An entry that can never be stored (not JSON, not an event, an unknown event type or item) is not
//! retried: it is appended to the dead-letter stream `<key>:dead` with the reason, then
//! acknowledged. Only a store that refuses writes (a full or failing disk) leaves entries pending,
//! to be read again after a backoff.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_core::Event;
use cairn_engine::{Engine, EngineError, EventsOutcome, StreamConfig};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError, Value};
use tokio::task::JoinHandle;

use crate::dto::EventBatch;
use crate::error::ApiError;

/// The field of a stream entry that holds its JSON.
pub const DATA_FIELD: &str = "data";

/// The first wait after a failure; it doubles up to `stream.max_backoff_ms`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// How often the lag and pending counts are read from Redis at most.
const INFO_EVERY: Duration = Duration::from_millis(250);

/// Live figures of the consumer, published on `/metrics` as `cairn_stream_*`.
#[derive(Debug)]
pub struct StreamStats {
    connected: AtomicBool,
    /// Entries of the stream not yet delivered to the group; -1 while unknown.
    lag: AtomicI64,
    /// Entries delivered to the group's consumers and not yet acknowledged; -1 while unknown.
    pending: AtomicI64,
    entries: AtomicU64,
    events_stored: AtomicU64,
    events_duplicate: AtomicU64,
    dead_letters: AtomicU64,
    reconnects: AtomicU64,
    store_retries: AtomicU64,
}

impl Default for StreamStats {
    fn default() -> Self {
        StreamStats {
            connected: AtomicBool::new(false),
            lag: AtomicI64::new(-1),
            pending: AtomicI64::new(-1),
            entries: AtomicU64::new(0),
            events_stored: AtomicU64::new(0),
            events_duplicate: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            store_retries: AtomicU64::new(0),
        }
    }
}

impl StreamStats {
    /// The Prometheus text of these figures.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let mut write = |name: &str, kind: &str, help: &str, v: i64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed) as i64;
        write(
            "cairn_stream_connected",
            "gauge",
            "1 while the stream consumer is connected to Redis and reading, else 0.",
            i64::from(self.connected.load(Ordering::Relaxed)),
        );
        write(
            "cairn_stream_lag",
            "gauge",
            "Entries of the stream not yet delivered to the consumer group (-1: unknown).",
            self.lag.load(Ordering::Relaxed),
        );
        write(
            "cairn_stream_pending",
            "gauge",
            "Entries delivered to the group's consumers and not yet acknowledged (-1: unknown).",
            self.pending.load(Ordering::Relaxed),
        );
        write(
            "cairn_stream_entries_total",
            "counter",
            "Stream entries acknowledged after their events were stored (or dead-lettered).",
            get(&self.entries),
        );
        write(
            "cairn_stream_events_stored_total",
            "counter",
            "Events read from the stream and stored.",
            get(&self.events_stored),
        );
        write(
            "cairn_stream_events_duplicate_total",
            "counter",
            "Events read from the stream whose id was stored before (redeliveries, retries).",
            get(&self.events_duplicate),
        );
        write(
            "cairn_stream_dead_letters_total",
            "counter",
            "Stream entries that could not be stored, moved to the dead-letter stream.",
            get(&self.dead_letters),
        );
        write(
            "cairn_stream_reconnects_total",
            "counter",
            "Connections to Redis that failed or dropped and were tried again.",
            get(&self.reconnects),
        );
        write(
            "cairn_stream_store_retries_total",
            "counter",
            "Times the store refused a write of stream events (left pending, read again later).",
            get(&self.store_retries),
        );
        out
    }
}

/// Starts the consumer of `engine.config().stream` on the current runtime, or nothing (`None`)
/// when `stream.redis_url` is unset. It runs until the handle is aborted, reconnecting with
/// backoff whenever Redis is unreachable.
pub fn spawn(engine: Arc<Engine>) -> Option<(JoinHandle<()>, Arc<StreamStats>)> {
    let config = engine.config().stream.clone();
    let url = config.redis_url.clone()?;
    let stats = Arc::new(StreamStats::default());
    let consumer = config.consumer.clone().unwrap_or_else(host_name);
    let task = Consumer {
        engine,
        config,
        url,
        consumer,
        stats: Arc::clone(&stats),
    };
    Some((tokio::spawn(task.run()), stats))
}

/// This machine's host name, the default consumer name.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "cairn".to_string())
}

/// Why a session of the consumer ended.
#[derive(Debug)]
enum Failure {
    /// Redis could not be reached, dropped the connection, or refused a command.
    Redis(RedisError),
    /// The store refused the write (full or failing disk): the entries stay pending.
    Store(ApiError),
}

impl From<RedisError> for Failure {
    fn from(e: RedisError) -> Self {
        Failure::Redis(e)
    }
}

/// One entry read from the stream.
#[derive(Debug)]
struct Entry {
    id: String,
    /// `None` when the entry was deleted from the stream after it was delivered.
    fields: Option<Vec<(String, Vec<u8>)>>,
}

/// What to do with an entry's events.
#[derive(Debug)]
enum Parsed {
    Events(Vec<Event>),
    /// Never storable: goes to the dead-letter stream with this reason.
    Dead(String),
    /// Deleted from the stream: acknowledged, nothing stored.
    Gone,
}

struct Consumer {
    engine: Arc<Engine>,
    config: StreamConfig,
    url: String,
    consumer: String,
    stats: Arc<StreamStats>,
}

impl Consumer {
    fn dead_key(&self) -> String {
        format!("{}:dead", self.config.key)
    }

    async fn run(self) {
        let max_backoff = Duration::from_millis(self.config.max_backoff_ms);
        let mut backoff = FIRST_BACKOFF;
        loop {
            let failure = self.session(&mut backoff).await;
            self.stats.connected.store(false, Ordering::Relaxed);
            match failure {
                Failure::Redis(e) => {
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        error = %e,
                        key = %self.config.key,
                        retry_ms = backoff.as_millis() as u64,
                        "stream consumer: Redis is unreachable or refused a command; reconnecting"
                    );
                }
                Failure::Store(e) => {
                    self.stats.store_retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        code = e.code,
                        error = %e.message,
                        retry_ms = backoff.as_millis() as u64,
                        "stream consumer: the store refused the events; they stay pending and are read again"
                    );
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(max_backoff);
        }
    }

    /// Connects, reads this consumer's pending entries, then new ones (and stale ones of other
    /// consumers) until something fails.
    async fn session(&self, backoff: &mut Duration) -> Failure {
        let mut con = match self.connect().await {
            Ok(con) => con,
            Err(e) => return e.into(),
        };
        match self.consume(&mut con, backoff).await {
            Ok(never) => match never {},
            Err(e) => e,
        }
    }

    async fn connect(&self) -> Result<MultiplexedConnection, RedisError> {
        let client = redis::Client::open(self.url.as_str())?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            // A blocking read answers after `block_ms` at the latest.
            .set_response_timeout(Some(
                Duration::from_millis(self.config.block_ms) + Duration::from_secs(10),
            ));
        let mut con = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        // The group starts at the stream's beginning, so entries added before the first start
        // are read too. MKSTREAM: the stream need not exist yet.
        let created: Result<Value, RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.config.key)
            .arg(&self.config.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut con)
            .await;
        match created {
            Ok(_) => tracing::info!(
                key = %self.config.key,
                group = %self.config.group,
                "stream consumer: created the consumer group"
            ),
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(e),
        }
        Ok(con)
    }

    async fn consume(
        &self,
        con: &mut MultiplexedConnection,
        backoff: &mut Duration,
    ) -> Result<std::convert::Infallible, Failure> {
        self.stats.connected.store(true, Ordering::Relaxed);
        tracing::info!(
            key = %self.config.key,
            group = %self.config.group,
            consumer = %self.consumer,
            "stream consumer: reading"
        );
        // First what this consumer read before and did not acknowledge (it stopped or died
        // between the two).
        let mut after = "0-0".to_string();
        loop {
            let entries = self.read(con, &after, None).await?;
            let Some(last) = entries.last() else { break };
            after = last.id.clone();
            self.handle(con, entries).await?;
        }
        self.refresh_info(con).await?;
        *backoff = FIRST_BACKOFF;
        let claim_every = Duration::from_millis(self.config.claim_idle_ms / 2)
            .clamp(Duration::from_millis(100), Duration::from_secs(30));
        let mut last_claim: Option<Instant> = None;
        let mut last_info = Instant::now();
        loop {
            if self.config.claim_idle_ms > 0
                && last_claim.is_none_or(|t| t.elapsed() >= claim_every)
            {
                self.claim(con).await?;
                last_claim = Some(Instant::now());
            }
            let entries = self.read(con, ">", Some(self.config.block_ms)).await?;
            let read_some = !entries.is_empty();
            if read_some {
                self.handle(con, entries).await?;
            }
            if !read_some || last_info.elapsed() >= INFO_EVERY {
                self.refresh_info(con).await?;
                last_info = Instant::now();
            }
        }
    }

    /// `XREADGROUP` from `from` (`>`: entries never delivered; an id: this consumer's pending
    /// entries after it).
    async fn read(
        &self,
        con: &mut MultiplexedConnection,
        from: &str,
        block_ms: Option<u64>,
    ) -> Result<Vec<Entry>, RedisError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.config.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(self.config.batch);
        if let Some(ms) = block_ms {
            cmd.arg("BLOCK").arg(ms);
        }
        cmd.arg("STREAMS").arg(&self.config.key).arg(from);
        let reply: Value = cmd.query_async(con).await?;
        Ok(parse_read_reply(reply))
    }

    /// Claims and stores the entries other consumers of the group read and left unacknowledged
    /// for `claim_idle_ms` (they died), a batch at a time.
    async fn claim(&self, con: &mut MultiplexedConnection) -> Result<(), Failure> {
        let mut start = "0-0".to_string();
        // Bounded, so that a huge backlog of another consumer's entries does not starve new ones.
        for _ in 0..100 {
            let reply: Value = redis::cmd("XAUTOCLAIM")
                .arg(&self.config.key)
                .arg(&self.config.group)
                .arg(&self.consumer)
                .arg(self.config.claim_idle_ms)
                .arg(&start)
                .arg("COUNT")
                .arg(self.config.batch)
                .query_async(con)
                .await?;
            let (next, entries) = parse_autoclaim_reply(reply);
            if !entries.is_empty() {
                tracing::info!(
                    entries = entries.len(),
                    "stream consumer: claimed entries another consumer left unacknowledged"
                );
                self.handle(con, entries).await?;
            }
            match next {
                Some(next) if next != "0-0" => start = next,
                _ => break,
            }
        }
        Ok(())
    }

    /// Stores the events of `entries`, dead-letters the ones that can never be stored, and
    /// acknowledges both; returns early, acknowledging nothing more, when the store refuses.
    async fn handle(
        &self,
        con: &mut MultiplexedConnection,
        entries: Vec<Entry>,
    ) -> Result<(), Failure> {
        let max_bytes = self.engine.config().server.max_body_bytes;
        let mut done: Vec<String> = Vec::new();
        let mut good: Vec<(Entry, Vec<Event>)> = Vec::new();
        for entry in entries {
            let parsed = parse_entry(&self.config.key, &entry, max_bytes);
            match parsed {
                Parsed::Events(events) => good.push((entry, events)),
                Parsed::Dead(reason) => {
                    self.dead_letter(con, &entry, &reason).await?;
                    done.push(entry.id);
                }
                Parsed::Gone => done.push(entry.id),
            }
        }
        // All the batch's events in one write (one fsync); when one of them is refused, each
        // entry alone, so that only the bad ones go to the dead letters.
        let all: Vec<Event> = good.iter().flat_map(|(_, e)| e.iter().cloned()).collect();
        match self.store(all).await {
            Ok(()) => done.extend(good.into_iter().map(|(entry, _)| entry.id)),
            Err(e) if is_transient(&e) => {
                self.ack(con, &done).await?;
                return Err(Failure::Store(e));
            }
            Err(_) => {
                for (entry, events) in good {
                    match self.store(events).await {
                        Ok(()) => done.push(entry.id),
                        Err(e) if is_transient(&e) => {
                            self.ack(con, &done).await?;
                            return Err(Failure::Store(e));
                        }
                        Err(e) => {
                            let reason = format!("{}: {}", e.code, e.message);
                            self.dead_letter(con, &entry, &reason).await?;
                            done.push(entry.id);
                        }
                    }
                }
            }
        }
        self.ack(con, &done).await?;
        Ok(())
    }

    /// Stores events through the engine, as `POST /v1/events` does, on the blocking pool.
    async fn store(&self, events: Vec<Event>) -> Result<(), ApiError> {
        if events.is_empty() {
            return Ok(());
        }
        let engine = Arc::clone(&self.engine);
        let outcome: Result<EventsOutcome, EngineError> =
            match tokio::task::spawn_blocking(move || engine.add_events(events)).await {
                Ok(result) => result,
                Err(join) => {
                    return Err(ApiError::internal(format!(
                        "storing the events did not complete ({join})"
                    )))
                }
            };
        let outcome = outcome.map_err(ApiError::from)?;
        let add = |a: &AtomicU64, n: usize| a.fetch_add(n as u64, Ordering::Relaxed);
        add(&self.stats.events_stored, outcome.stored);
        add(&self.stats.events_duplicate, outcome.duplicates);
        Ok(())
    }

    /// Appends `entry` to the dead-letter stream with `reason`.
    async fn dead_letter(
        &self,
        con: &mut MultiplexedConnection,
        entry: &Entry,
        reason: &str,
    ) -> Result<(), Failure> {
        tracing::warn!(
            id = %entry.id,
            reason,
            dead_letters = %self.dead_key(),
            "stream consumer: an entry cannot be stored; moved to the dead letters"
        );
        let mut cmd = redis::cmd("XADD");
        cmd.arg(self.dead_key())
            .arg("*")
            .arg("id")
            .arg(&entry.id)
            .arg("reason")
            .arg(reason);
        for (name, value) in entry.fields.iter().flatten() {
            // The entry's own fields after ours, so that `data` can be XADDed back once fixed.
            if name != "id" && name != "reason" {
                cmd.arg(name.as_str()).arg(value.as_slice());
            }
        }
        let _: Value = cmd.query_async(con).await?;
        self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn ack(&self, con: &mut MultiplexedConnection, ids: &[String]) -> Result<(), Failure> {
        if ids.is_empty() {
            return Ok(());
        }
        let _: Value = redis::cmd("XACK")
            .arg(&self.config.key)
            .arg(&self.config.group)
            .arg(ids)
            .query_async(con)
            .await?;
        self.stats
            .entries
            .fetch_add(ids.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Reads the group's lag and pending count (`XINFO GROUPS`; Redis 7 reports the lag, and
    /// when it cannot, it is counted from the entries after the last delivered id).
    async fn refresh_info(&self, con: &mut MultiplexedConnection) -> Result<(), RedisError> {
        let reply: Value = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&self.config.key)
            .query_async(con)
            .await?;
        let group = items(reply)
            .into_iter()
            .map(fields)
            .find(|f| field_text(f, "name").as_deref() == Some(self.config.group.as_str()));
        let Some(group) = group else {
            return Ok(());
        };
        let pending = field_int(&group, "pending").unwrap_or(-1);
        let lag = match field_int(&group, "lag") {
            Some(lag) => lag,
            None => match field_text(&group, "last-delivered-id") {
                Some(last) => self.count_after(con, &last).await?,
                None => -1,
            },
        };
        self.stats.pending.store(pending, Ordering::Relaxed);
        self.stats.lag.store(lag, Ordering::Relaxed);
        Ok(())
    }

    /// Entries after `last` (up to 10,000, so a huge backlog costs one bounded read).
    async fn count_after(
        &self,
        con: &mut MultiplexedConnection,
        last: &str,
    ) -> Result<i64, RedisError> {
        let reply: Value = redis::cmd("XRANGE")
            .arg(&self.config.key)
            .arg(format!("({last}"))
            .arg("+")
            .arg("COUNT")
            .arg(10_000)
            .query_async(con)
            .await?;
        Ok(items(reply).len() as i64)
    }
}

/// Whether the store refused for a reason of its own (a full or failing disk, another process),
/// not because of the events: the same events are tried again later.
fn is_transient(e: &ApiError) -> bool {
    matches!(
        e.code,
        "storage_full" | "storage_unavailable" | "store_in_use"
    )
}

/// The events of an entry: its `data` field holds the body of `POST /v1/events`
/// (`{"events": [...]}`) or one event object. Events without an `event_id` get
/// `<key>:<entry id>:<index>`, so a redelivered entry stores nothing twice.
fn parse_entry(key: &str, entry: &Entry, max_bytes: usize) -> Parsed {
    let Some(fields) = &entry.fields else {
        return Parsed::Gone;
    };
    let Some((_, data)) = fields.iter().find(|(name, _)| name == DATA_FIELD) else {
        return Parsed::Dead(format!(
            "invalid_argument: the entry has no `{DATA_FIELD}` field (the JSON of one event, or \
             the body of POST /v1/events)"
        ));
    };
    if data.len() > max_bytes {
        return Parsed::Dead(format!(
            "payload_too_large: `{DATA_FIELD}` is {} bytes; server.max_body_bytes is {max_bytes}",
            data.len()
        ));
    }
    let value: serde_json::Value = match serde_json::from_slice(data) {
        Ok(v) => v,
        Err(e) => {
            return Parsed::Dead(format!(
                "malformed_json: `{DATA_FIELD}` is not valid JSON: {e}"
            ))
        }
    };
    let is_batch = value.as_object().is_some_and(|o| o.contains_key("events"));
    let events = if is_batch {
        serde_json::from_value::<EventBatch>(value).map(|b| b.events)
    } else {
        serde_json::from_value::<Event>(value).map(|e| vec![e])
    };
    let mut events = match events {
        Ok(events) => events,
        Err(e) => {
            return Parsed::Dead(format!(
                "invalid_argument: `{DATA_FIELD}` does not match the schema of {}: {e}",
                if is_batch {
                    "POST /v1/events"
                } else {
                    "an event"
                }
            ))
        }
    };
    for (i, event) in events.iter_mut().enumerate() {
        if event.event_id.is_none() {
            event.event_id = Some(format!("{key}:{}:{i}", entry.id));
        }
    }
    Parsed::Events(events)
}

/// The elements of an array (or the keys and values of a map, in order); nothing for another value.
fn items(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) | Value::Set(items) => items,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Okay => Some("OK".into()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A reply of name/value pairs (a flat array in RESP2, a map in RESP3).
fn fields(v: Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut it = items(v).into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        if let Some(k) = text(&k) {
            out.push((k, v));
        }
    }
    out
}

fn field<'a>(f: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn field_text(f: &[(String, Value)], name: &str) -> Option<String> {
    field(f, name).and_then(text)
}

fn field_int(f: &[(String, Value)], name: &str) -> Option<i64> {
    match field(f, name)? {
        Value::Int(i) => Some(*i),
        v => text(v)?.parse().ok(),
    }
}

/// `[id, [field, value, ...] | nil]`.
fn parse_entry_value(v: Value) -> Option<Entry> {
    let mut parts = items(v).into_iter();
    let id = text(&parts.next()?)?;
    let fields = match parts.next() {
        None | Some(Value::Nil) => None,
        Some(f) => {
            let raw = items(f);
            let mut out = Vec::with_capacity(raw.len() / 2);
            let mut it = raw.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                let value = match v {
                    Value::BulkString(b) => b,
                    other => text(&other).unwrap_or_default().into_bytes(),
                };
                out.push((text(&k).unwrap_or_default(), value));
            }
            Some(out)
        }
    };
    Some(Entry { id, fields })
}

/// `XREADGROUP`'s reply: nil (nothing within the block time) or `[[key, [entry, ...]], ...]`
/// (a map from key to entries in RESP3).
fn parse_read_reply(reply: Value) -> Vec<Entry> {
    let is_map = matches!(reply, Value::Map(_));
    let parts = items(reply);
    let lists: Vec<Value> = if is_map {
        parts.into_iter().skip(1).step_by(2).collect()
    } else {
        parts
            .into_iter()
            .filter_map(|stream| items(stream).into_iter().nth(1))
            .collect()
    };
    lists
        .into_iter()
        .flat_map(items)
        .filter_map(parse_entry_value)
        .collect()
}

/// `XAUTOCLAIM`'s reply: `[next start id, [entry, ...], [deleted id, ...]]`.
fn parse_autoclaim_reply(reply: Value) -> (Option<String>, Vec<Entry>) {
    let mut parts = items(reply).into_iter();
    let next = parts.next().as_ref().and_then(text);
    let entries = parts
        .next()
        .map(items)
        .unwrap_or_default()
        .into_iter()
        .filter_map(parse_entry_value)
        // Entries deleted from the stream come back as nil (Redis 6.2) and are left out.
        .filter(|e| e.fields.is_some())
        .collect();
    (next, entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(id: &str, data: Option<&str>) -> Entry {
        Entry {
            id: id.into(),
            fields: Some(
                data.map(|d| vec![(DATA_FIELD.to_string(), d.as_bytes().to_vec())])
                    .unwrap_or_else(|| vec![("other".to_string(), b"x".to_vec())]),
            ),
        }
    }

    #[test]
    fn an_entry_holds_one_event_or_a_batch_and_gets_ids_from_its_entry_id() {
        let one = r#"{"user_id":"u","item_id":"i","type":"view"}"#;
        let Parsed::Events(events) = parse_entry("k", &entry("5-1", Some(one)), 1000) else {
            panic!("one event parses");
        };
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_id.as_deref(), Some("k:5-1:0"));
        let batch = r#"{"events":[{"user_id":"u","item_id":"i","type":"view"},
            {"event_id":"mine","user_id":"u","item_id":"j","type":"view"}]}"#;
        let Parsed::Events(events) = parse_entry("k", &entry("7-0", Some(batch)), 1000) else {
            panic!("a batch parses");
        };
        let ids: Vec<_> = events.iter().map(|e| e.event_id.as_deref()).collect();
        assert_eq!(ids, [Some("k:7-0:0"), Some("mine")]);
    }

    #[test]
    fn bad_entries_are_dead_with_a_reason() {
        let reason =
            |data: Option<&str>, max: usize| match parse_entry("k", &entry("1-0", data), max) {
                Parsed::Dead(reason) => reason,
                other => panic!("{other:?} is not dead"),
            };
        assert!(reason(None, 1000).contains("no `data` field"));
        assert!(reason(Some("{not json"), 1000).starts_with("malformed_json"));
        let unknown_field = reason(
            Some(r#"{"user_id":"u","item_id":"i","type":"v","x":1}"#),
            1000,
        );
        assert!(
            unknown_field.starts_with("invalid_argument"),
            "{unknown_field}"
        );
        assert!(
            unknown_field.contains("unknown field `x`"),
            "{unknown_field}"
        );
        assert!(reason(Some(r#"{"events":[1]}"#), 1000).contains("POST /v1/events"));
        assert!(reason(Some(&"x".repeat(20)), 10).starts_with("payload_too_large"));
        let gone = Entry {
            id: "1-0".into(),
            fields: None,
        };
        assert!(matches!(parse_entry("k", &gone, 10), Parsed::Gone));
    }

    #[test]
    fn replies_parse_in_resp2_and_resp3_shapes() {
        let entries = Value::Array(vec![
            Value::Array(vec![
                bulk("1-0"),
                Value::Array(vec![bulk("data"), bulk("{}")]),
            ]),
            Value::Array(vec![bulk("2-0"), Value::Nil]),
        ]);
        let resp2 = Value::Array(vec![Value::Array(vec![bulk("k"), entries.clone()])]);
        let resp3 = Value::Map(vec![(bulk("k"), entries)]);
        for reply in [resp2, resp3] {
            let got = parse_read_reply(reply);
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].id, "1-0");
            assert_eq!(
                got[0].fields.as_deref(),
                Some(&[("data".to_string(), b"{}".to_vec())][..])
            );
            assert!(got[1].fields.is_none());
        }
        assert!(parse_read_reply(Value::Nil).is_empty());
        let claimed = Value::Array(vec![
            bulk("0-0"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("3-0"),
                    Value::Array(vec![bulk("data"), bulk("{}")]),
                ]),
                Value::Nil,
            ]),
            Value::Array(vec![]),
        ]);
        let (next, got) = parse_autoclaim_reply(claimed);
        assert_eq!(next.as_deref(), Some("0-0"));
        assert_eq!(got.len(), 1);
        let group = Value::Array(vec![
            bulk("name"),
            bulk("g"),
            bulk("pending"),
            Value::Int(3),
            bulk("lag"),
            Value::Nil,
        ]);
        let f = fields(group);
        assert_eq!(field_text(&f, "name").as_deref(), Some("g"));
        assert_eq!(field_int(&f, "pending"), Some(3));
        assert_eq!(field_int(&f, "lag"), None);
    }

    #[test]
    fn metrics_start_unknown_and_disconnected() {
        let text = StreamStats::default().prometheus();
        for line in [
            "cairn_stream_connected 0",
            "cairn_stream_lag -1",
            "cairn_stream_pending -1",
            "cairn_stream_dead_letters_total 0",
            "# TYPE cairn_stream_reconnects_total counter",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
