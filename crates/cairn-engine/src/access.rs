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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last request made with the key in this process, if any (kept in memory,
    /// not written to the store on every request).
    pub last_used_at: Option<i64>,
}

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
            ring.insert(
                ApiKey {
                    id: record.id,
                    name: record.name,
                    scope,
                    created_at: record.created_at,
                    last_used_at: record.last_used_at,
                },
                digest,
            );
        }
        Ok(ring)
    }

    fn insert(&mut self, key: ApiKey, digest: [u8; 32]) {
        let last_used = AtomicI64::new(key.last_used_at.unwrap_or(UNUSED));
        self.by_digest.insert(
            digest,
            Arc::new(Entry {
                key,
                digest,
                last_used,
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
        };
        store.put_key(&KeyRecord {
            id: key.id.clone(),
            name: key.name.clone(),
            scope: scope.as_str().to_string(),
            digest: hex(&digest),
            created_at: now,
            last_used_at: None,
        })?;
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

    /// The key this token belongs to, marking it used at `now`.
    pub fn authenticate(&self, token: &str, now: i64) -> Option<ApiKey> {
        let presented = sha256(token);
        let entry = self.by_digest.get(&presented)?;
        // The map found the entry by digest; confirm it without an early exit, so a timing
        // difference can never tell an attacker how much of a digest they guessed.
        if !constant_time_eq(&entry.digest, &presented) {
            return None;
        }
        entry.last_used.store(now, Ordering::Relaxed);
        Some(entry.snapshot())
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
        let a = ring.create(&store, "backend", Scope::Ingest, 100).unwrap();
        let b = ring.create(&store, "ops", Scope::Admin, 101).unwrap();
        assert!(a.token.starts_with(TOKEN_PREFIX));
        assert_eq!(a.token.len(), TOKEN_PREFIX.len() + 64);
        assert_ne!(a.token, b.token);
        assert_ne!(a.key.id, b.key.id);
        let found = ring.authenticate(&a.token, 200).unwrap();
        assert_eq!(
            (found.id.as_str(), found.scope),
            (a.key.id.as_str(), Scope::Ingest)
        );
        assert_eq!(ring.list()[0].last_used_at, Some(200));
        assert_eq!(ring.authenticate("cairn_nope", 200), None);
        let mut wrong = a.token.clone();
        wrong.pop();
        wrong.push('x');
        assert_eq!(ring.authenticate(&wrong, 200), None);

        let reloaded = KeyRing::load(&store).unwrap();
        assert_eq!(reloaded.authenticate(&b.token, 300).unwrap().name, "ops");
        let stored = store.list_keys().unwrap();
        assert!(stored
            .iter()
            .all(|k| k.digest.len() == 64 && !k.digest.contains(&a.token)));

        assert_eq!(
            ring.revoke(&store, &a.key.id).unwrap().unwrap().name,
            "backend"
        );
        assert_eq!(ring.revoke(&store, &a.key.id).unwrap(), None);
        assert_eq!(ring.authenticate(&a.token, 300), None);
        assert_eq!(KeyRing::load(&store).unwrap().list().len(), 1);
    }

    #[test]
    fn names_must_be_short_and_present() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let mut ring = KeyRing::default();
        for bad in ["", "   ", &"x".repeat(MAX_KEY_NAME + 1)] {
            let err = ring.create(&store, bad, Scope::Read, 1).unwrap_err();
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
