//! API keys and the audit log, over the store.
//!
//! A key is a high-entropy token (`cairn_` and 64 hex digits: 32 bytes from the operating system's
//! CSPRNG through `rand`'s thread generator) shown once, at creation. The store keeps only its
//! SHA-256 digest. A presented token is hashed and looked up by digest; the digest found is then
//! compared with the presented one in constant time, so the comparison never reveals how many
//! leading bytes matched.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use cairn_store::{KeyRecord, Store, StoreError};
use rand::Rng;
use sha2::{Digest, Sha256};

/// What a key may do. Each scope includes the ones before it: `read` < `ingest` < `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Recommendations, similar items, popular, trending, item reads, the model summary, metrics.
    Read,
    /// `read`, and writes of events, items and users.
    Ingest,
    /// Everything: training, deletion, user data reads, keys, the audit log.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Ingest, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Ingest => "ingest",
            Scope::Admin => "admin",
        }
    }

    /// Whether a key of this scope may do what `needed` guards.
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a scope name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope `{0}`; use read, ingest or admin")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_string()))
    }
}

/// A key as callers see it: never the token, never the digest.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last request made with the key, if any: kept in memory on every
    /// request, written to the store at most once a minute per key ([`KEY_USE_WRITE_SECS`]).
    pub last_used_at: Option<i64>,
    /// The key's own rate limit; `None` uses the configured default (`auth.rate_limit_per_sec`).
    pub rate_limit: Option<RateLimit>,
}

/// A key's own request limit, a token bucket: `burst` requests at once, refilled at `per_sec`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second on average; 0 means this key is not limited.
    pub per_sec: f64,
    /// Requests at once (at least 1).
    pub burst: u32,
}

/// Highest per-key rate accepted, in requests per second.
pub const MAX_RATE_LIMIT: f64 = 1_000_000.0;

impl RateLimit {
    /// A limit from its two request fields: `burst` defaults to one second's worth of the rate
    /// (at least 1); a burst without a rate is refused.
    pub fn from_request(
        per_sec: Option<f64>,
        burst: Option<u32>,
    ) -> Result<Option<RateLimit>, crate::EngineError> {
        let Some(per_sec) = per_sec else {
            return match burst {
                None => Ok(None),
                Some(_) => Err(crate::EngineError::invalid(
                    "rate_limit_burst",
                    "needs rate_limit_per_sec: give both, or neither to use the configured default",
                )),
            };
        };
        if !(per_sec.is_finite() && (0.0..=MAX_RATE_LIMIT).contains(&per_sec)) {
            return Err(crate::EngineError::invalid(
                "rate_limit_per_sec",
                format!(
                    "{per_sec} must be a number from 0 (no limit for this key) to {MAX_RATE_LIMIT}"
                ),
            ));
        }
        let burst = burst.unwrap_or_else(|| per_sec.ceil().clamp(1.0, f64::from(u32::MAX)) as u32);
        if burst == 0 {
            return Err(crate::EngineError::invalid(
                "rate_limit_burst",
                "must be at least 1 (requests at once)",
            ));
        }
        Ok(Some(RateLimit { per_sec, burst }))
    }
}

/// A key's last use is written to the store at most once in this many seconds.
pub const KEY_USE_WRITE_SECS: i64 = 60;

/// A key just created, with its token: the only time the token is available.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub key: ApiKey,
    pub token: String,
}

/// Longest key name accepted.
pub const MAX_KEY_NAME: usize = 100;
/// Every token starts with this, so leaked tokens are easy to recognise (and to scan for).
pub const TOKEN_PREFIX: &str = "cairn_";

struct Entry {
    key: ApiKey,
    digest: [u8; 32],
    last_used: AtomicI64,
    /// The last use written to the store (or claimed for writing), [`UNUSED`] when none.
    last_written: AtomicI64,
}

/// The keys in memory, by digest. Written through to the store by [`KeyRing::create`] and
/// [`KeyRing::revoke`].
#[derive(Default)]
pub(crate) struct KeyRing {
    by_digest: HashMap<[u8; 32], Arc<Entry>>,
}

/// No key, or no key of this id.
const UNUSED: i64 = i64::MIN;

impl KeyRing {
    pub fn load(store: &dyn Store) -> Result<KeyRing, StoreError> {
        let mut ring = KeyRing::default();
        for record in store.list_keys()? {
            let scope = record
                .scope
                .parse::<Scope>()
                .map_err(|e| StoreError::Corrupt(format!("key {}: {e}", record.id)))?;
            let digest = parse_digest(&record.digest).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "key {}: the digest is not 64 hex digits",
                    record.id
                ))
            })?;
            let rate_limit = record.rate_limit_per_sec.map(|per_sec| RateLimit {
                per_sec,
                burst: record.rate_limit_burst.unwrap_or(1).max(1),
            });
            ring.insert(
                ApiKey {
                    id: record.id,
                    name: record.name,
                    scope,
                    created_at: record.created_at,
                    last_used_at: record.last_used_at,
                    rate_limit,
                },
                digest,
            );
        }
        Ok(ring)
    }

    fn insert(&mut self, key: ApiKey, digest: [u8; 32]) {
        let last_used = key.last_used_at.unwrap_or(UNUSED);
        self.by_digest.insert(
            digest,
            Arc::new(Entry {
                key,
                digest,
                last_used: AtomicI64::new(last_used),
                last_written: AtomicI64::new(last_used),
            }),
        );
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// Makes a key, stores its digest, and returns it with its token.
    pub fn create(
        &mut self,
        store: &dyn Store,
        name: &str,
        scope: Scope,
        rate_limit: Option<RateLimit>,
        now: i64,
    ) -> Result<CreatedKey, crate::EngineError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_KEY_NAME {
            return Err(crate::EngineError::invalid(
                "name",
                format!("must be 1 to {MAX_KEY_NAME} characters, e.g. \"backend\""),
            ));
        }
        let mut rng = rand::rng();
        let token = format!("{TOKEN_PREFIX}{}", hex(&rng.random::<[u8; 32]>()));
        let id = format!("key_{}", hex(&rng.random::<[u8; 8]>()));
        let digest = sha256(&token);
        let key = ApiKey {
            id,
            name: name.to_string(),
            scope,
            created_at: now,
            last_used_at: None,
            rate_limit,
        };
        store.put_key(&record(&key, &digest))?;
        self.insert(key.clone(), digest);
        Ok(CreatedKey { key, token })
    }

    /// Deletes the key from the store and memory; `None` when no key has this id.
    pub fn revoke(&mut self, store: &dyn Store, id: &str) -> Result<Option<ApiKey>, StoreError> {
        let Some(digest) = self
            .by_digest
            .iter()
            .find(|(_, e)| e.key.id == id)
            .map(|(d, _)| *d)
        else {
            return Ok(None);
        };
        store.delete_key(id)?;
        Ok(self.by_digest.remove(&digest).map(|e| e.snapshot()))
    }

    /// The key this token belongs to, marking it used at `now`, and whether this use is the one
    /// to write to the store: the first one [`KEY_USE_WRITE_SECS`] or more after the last written
    /// (claimed here when `claim`, so that concurrent requests write it once).
    pub fn authenticate(&self, token: &str, now: i64, claim: bool) -> Option<(ApiKey, bool)> {
        let presented = sha256(token);
        let entry = self.by_digest.get(&presented)?;
        // The map found the entry by digest; confirm it without an early exit, so a timing
        // difference can never tell an attacker how much of a digest they guessed.
        if !constant_time_eq(&entry.digest, &presented) {
            return None;
        }
        entry.last_used.store(now, Ordering::Relaxed);
        let written = entry.last_written.load(Ordering::Relaxed);
        let due = claim
            && (written == UNUSED || now.saturating_sub(written) >= KEY_USE_WRITE_SECS)
            && entry
                .last_written
                .compare_exchange(written, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        Some((entry.snapshot(), due))
    }

    /// Writes key `id`'s last use, `at`, to the store (a no-op for a key revoked meanwhile).
    pub fn write_use(&self, store: &dyn Store, id: &str, at: i64) -> Result<(), StoreError> {
        let Some(entry) = self.by_digest.values().find(|e| e.key.id == id) else {
            return Ok(());
        };
        let mut key = entry.snapshot();
        key.last_used_at = Some(at.max(key.last_used_at.unwrap_or(at)));
        store.put_key(&record(&key, &entry.digest))
    }

    /// Every key, in creation order (then id).
    pub fn list(&self) -> Vec<ApiKey> {
        let mut keys: Vec<ApiKey> = self.by_digest.values().map(|e| e.snapshot()).collect();
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        keys
    }
}

impl Entry {
    fn snapshot(&self) -> ApiKey {
        let used = self.last_used.load(Ordering::Relaxed);
        ApiKey {
            last_used_at: (used != UNUSED).then_some(used),
            ..self.key.clone()
        }
    }
}

/// The stored form of a key.
fn record(key: &ApiKey, digest: &[u8; 32]) -> KeyRecord {
    KeyRecord {
        id: key.id.clone(),
        name: key.name.clone(),
        scope: key.scope.as_str().to_string(),
        digest: hex(digest),
        created_at: key.created_at,
        last_used_at: key.last_used_at,
        rate_limit_per_sec: key.rate_limit.map(|l| l.per_sec),
        rate_limit_burst: key.rate_limit.map(|l| l.burst),
    }
}

fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Equality whose running time does not depend on where the inputs differ: every byte is compared and
/// the differences are OR-ed together, with no branch on the data.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use cairn_store::EmbeddedStore;

    use super::*;

    #[test]
    fn scopes_parse_and_include_the_lower_ones() {
        assert_eq!("ingest".parse::<Scope>(), Ok(Scope::Ingest));
        assert!("root"
            .parse::<Scope>()
            .unwrap_err()
            .to_string()
            .contains("read, ingest or admin"));
        assert!(Scope::Admin.allows(Scope::Ingest));
        assert!(Scope::Ingest.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Ingest));
        assert!(!Scope::Ingest.allows(Scope::Admin));
    }

    #[test]
    fn tokens_authenticate_until_revoked_and_survive_reload() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let mut ring = KeyRing::load(&store).unwrap();
        assert!(ring.is_empty());
        let a = ring
            .create(&store, "backend", Scope::Ingest, None, 100)
            .unwrap();
        let b = ring.create(&store, "ops", Scope::Admin, None, 101).unwrap();
        assert!(a.token.starts_with(TOKEN_PREFIX));
        assert_eq!(a.token.len(), TOKEN_PREFIX.len() + 64);
        assert_ne!(a.token, b.token);
        assert_ne!(a.key.id, b.key.id);
        let (found, _) = ring.authenticate(&a.token, 200, true).unwrap();
        assert_eq!(
            (found.id.as_str(), found.scope),
            (a.key.id.as_str(), Scope::Ingest)
        );
        assert_eq!(ring.list()[0].last_used_at, Some(200));
        assert_eq!(
            ring.authenticate("cairn_nope", 200, true).map(|(k, _)| k),
            None
        );
        let mut wrong = a.token.clone();
        wrong.pop();
        wrong.push('x');
        assert_eq!(ring.authenticate(&wrong, 200, true).map(|(k, _)| k), None);

        let reloaded = KeyRing::load(&store).unwrap();
        assert_eq!(
            reloaded.authenticate(&b.token, 300, true).unwrap().0.name,
            "ops"
        );
        let stored = store.list_keys().unwrap();
        assert!(stored
            .iter()
            .all(|k| k.digest.len() == 64 && !k.digest.contains(&a.token)));

        assert_eq!(
            ring.revoke(&store, &a.key.id).unwrap().unwrap().name,
            "backend"
        );
        assert_eq!(ring.revoke(&store, &a.key.id).unwrap(), None);
        assert_eq!(ring.authenticate(&a.token, 300, true).map(|(k, _)| k), None);
        assert_eq!(KeyRing::load(&store).unwrap().list().len(), 1);
    }

    #[test]
    fn own_rate_limits_are_stored_and_last_use_is_written_once_a_minute() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let mut ring = KeyRing::default();
        let limit = RateLimit::from_request(Some(50.0), Some(100)).unwrap();
        let app = ring
            .create(&store, "app", Scope::Ingest, limit, 1_000)
            .unwrap();
        let plain = ring
            .create(&store, "plain", Scope::Read, None, 1_000)
            .unwrap();
        // Both were created in the same second: listed by (created_at, id), so find them by name.
        let by_name =
            |keys: Vec<ApiKey>, name: &str| keys.into_iter().find(|k| k.name == name).unwrap();
        let reloaded = KeyRing::load(&store).unwrap().list();
        assert_eq!(
            by_name(reloaded.clone(), "app").rate_limit,
            Some(RateLimit {
                per_sec: 50.0,
                burst: 100
            })
        );
        assert_eq!(by_name(reloaded, "plain").rate_limit, None);

        // The first use is due for writing; uses within the minute after it are not.
        let mut due = Vec::new();
        for t in [2_000, 2_001, 2_059, 2_060, 2_061] {
            let (key, write) = ring.authenticate(&app.token, t, true).unwrap();
            assert_eq!(key.last_used_at, Some(t));
            due.push(write);
            if write {
                ring.write_use(&store, &key.id, t).unwrap();
            }
        }
        assert_eq!(due, [true, false, false, true, false]);
        // In the store: the last written use, not the newest one in memory.
        let stored = KeyRing::load(&store).unwrap().list();
        let stored_app = by_name(stored.clone(), "app");
        assert_eq!(stored_app.last_used_at, Some(2_060));
        assert_eq!(stored_app.rate_limit, limit);
        assert_eq!(by_name(stored, "plain").last_used_at, None);
        // A reloaded ring counts the minute from the stored use.
        let ring2 = KeyRing::load(&store).unwrap();
        assert!(!ring2.authenticate(&app.token, 2_100, true).unwrap().1);
        assert!(ring2.authenticate(&app.token, 2_120, true).unwrap().1);
        assert!(ring2.authenticate(&plain.token, 2_120, true).unwrap().1);
        // A revoked key's use writes nothing back.
        ring.revoke(&store, &app.key.id).unwrap();
        ring.write_use(&store, &app.key.id, 3_000).unwrap();
        assert_eq!(store.list_keys().unwrap().len(), 1);
    }

    #[test]
    fn rate_limits_from_requests() {
        let limit = |r, b| RateLimit::from_request(r, b);
        assert_eq!(limit(None, None).unwrap(), None);
        assert_eq!(
            limit(Some(2.5), None).unwrap(),
            Some(RateLimit {
                per_sec: 2.5,
                burst: 3
            })
        );
        assert_eq!(limit(Some(0.0), None).unwrap().unwrap().burst, 1);
        for (r, b, field) in [
            (None, Some(5), "rate_limit_burst"),
            (Some(-1.0), None, "rate_limit_per_sec"),
            (Some(f64::NAN), None, "rate_limit_per_sec"),
            (Some(1e9), None, "rate_limit_per_sec"),
            (Some(5.0), Some(0), "rate_limit_burst"),
        ] {
            let err = limit(r, b).unwrap_err();
            assert_eq!(err.code(), "invalid_argument");
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn names_must_be_short_and_present() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let mut ring = KeyRing::default();
        for bad in ["", "   ", &"x".repeat(MAX_KEY_NAME + 1)] {
            let err = ring.create(&store, bad, Scope::Read, None, 1).unwrap_err();
            assert_eq!(err.code(), "invalid_argument");
        }
        assert!(ring.is_empty());
    }

    #[test]
    fn constant_time_eq_is_equality() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(constant_time_eq(&a, &b));
        b[31] ^= 1;
        assert!(!constant_time_eq(&a, &b));
        assert_eq!(parse_digest(&hex(&a)), Some(a));
        assert_eq!(parse_digest("zz"), None);
    }
}
