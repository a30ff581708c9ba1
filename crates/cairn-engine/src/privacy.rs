//! Personal data: erasure's compaction of the store file, retention of events, and pseudonymised
//! user ids. What is erased where, and the tests that prove it, is docs/reliability/privacy.md.

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use cairn_core::{StoredEvent, Timestamp, User};
use cairn_store::CompactReport;
use sha2::{Digest, Sha256};

use crate::config::PrivacyConfig;
use crate::{Engine, EngineError, RecommendRequest, Recommendations};

/// What every pseudonym starts with: `ps_` and 32 hex digits (the first 128 bits of the HMAC).
pub const PSEUDONYM_PREFIX: &str = "ps_";
const PSEUDONYM_HEX: usize = 32;
/// Shortest key accepted.
const MIN_KEY_BYTES: usize = 16;

/// Maps raw user ids to keyed pseudonyms: `ps_` + hex(HMAC-SHA256(key, id))[..32].
pub struct Pseudonymizer {
    /// The key, padded to SHA-256's block, xored with the inner and outer pads.
    inner_pad: [u8; 64],
    outer_pad: [u8; 64],
}

impl Pseudonymizer {
    /// The pseudonymizer of `config`, `None` when pseudonymisation is off; an error when it is on
    /// and the key is missing, unreadable or short.
    pub fn from_config(config: &PrivacyConfig) -> Result<Option<Self>, EngineError> {
        if !config.pseudonymize_user_ids {
            return Ok(None);
        }
        let key: Vec<u8> = match (&config.hmac_key_file, &config.hmac_key) {
            (Some(path), _) => {
                let mut bytes = std::fs::read(path).map_err(|e| {
                    EngineError::Unprocessable(format!(
                        "privacy.hmac_key_file {}: {e}",
                        path.display()
                    ))
                })?;
                while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    bytes.pop();
                }
                bytes
            }
            (None, Some(key)) => key.trim_end().as_bytes().to_vec(),
            (None, None) => {
                return Err(EngineError::Unprocessable(
                    "privacy.pseudonymize_user_ids is on but no key is configured \
                     (privacy.hmac_key_file or CAIRN_PRIVACY__HMAC_KEY)"
                        .into(),
                ))
            }
        };
        if key.len() < MIN_KEY_BYTES {
            return Err(EngineError::Unprocessable(format!(
                "the privacy HMAC key has {} bytes; use at least {MIN_KEY_BYTES} random bytes \
                 (e.g. `openssl rand -hex 32 > key`)",
                key.len()
            )));
        }
        Ok(Some(Self::new(&key)))
    }

    /// HMAC (RFC 2104) over SHA-256 with `key`.
    pub fn new(key: &[u8]) -> Self {
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        Pseudonymizer {
            inner_pad: block.map(|b| b ^ 0x36),
            outer_pad: block.map(|b| b ^ 0x5c),
        }
    }

    fn hmac(&self, message: &[u8]) -> [u8; 32] {
        let inner = Sha256::new()
            .chain_update(self.inner_pad)
            .chain_update(message)
            .finalize();
        Sha256::new()
            .chain_update(self.outer_pad)
            .chain_update(inner)
            .finalize()
            .into()
    }

    /// The pseudonym of `raw`. An id that already is a pseudonym (read back from a listing or an
    /// export) is left as it is, so exports import back unchanged.
    pub fn pseudonym<'a>(&self, raw: &'a str) -> Cow<'a, str> {
        if is_pseudonym(raw) {
            return Cow::Borrowed(raw);
        }
        let mac = self.hmac(raw.as_bytes());
        let mut out = String::with_capacity(PSEUDONYM_PREFIX.len() + PSEUDONYM_HEX);
        out.push_str(PSEUDONYM_PREFIX);
        for b in &mac[..PSEUDONYM_HEX / 2] {
            out.push_str(&format!("{b:02x}"));
        }
        Cow::Owned(out)
    }
}

/// Whether `id` has the form of a pseudonym.
pub fn is_pseudonym(id: &str) -> bool {
    id.strip_prefix(PSEUDONYM_PREFIX).is_some_and(|hex| {
        hex.len() == PSEUDONYM_HEX
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// What one retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expiry {
    /// Events older than the cutoff, deleted.
    pub events: u64,
    /// `(user, item)` seen pairs left without any event, deleted with them.
    pub pairs: u64,
    /// The cutoff: events stamped before it were deleted (Unix seconds).
    pub cutoff: i64,
}

impl Engine {
    /// The id the store keys `raw` by: its pseudonym when `privacy.pseudonymize_user_ids` is on,
    /// else `raw` itself. Every engine operation that takes a user id goes through it.
    pub fn user_key<'a>(&self, raw: &'a str) -> Cow<'a, str> {
        match &self.pseudonymizer {
            Some(p) => p.pseudonym(raw),
            None => Cow::Borrowed(raw),
        }
    }

    /// `users` with their ids replaced by [`Engine::user_key`].
    pub(crate) fn key_users(&self, mut users: Vec<User>) -> Vec<User> {
        if self.pseudonymizer.is_some() {
            for user in &mut users {
                user.id = self.user_key(&user.id).into_owned();
            }
        }
        users
    }

    /// Events read under `key` as the caller named their user, `raw`.
    pub(crate) fn unkey_events(&self, raw: &str, mut events: Vec<StoredEvent>) -> Vec<StoredEvent> {
        if self.pseudonymizer.is_some() {
            for e in &mut events {
                e.user_id = raw.to_string();
            }
        }
        events
    }

    /// Personalised recommendations (see `recommend/`), for the user's stored id.
    pub fn recommend(&self, req: &RecommendRequest) -> Result<Recommendations, EngineError> {
        cairn_core::validate::check_id("user_id", &req.user_id)?;
        let list = match self.user_key(&req.user_id) {
            Cow::Borrowed(_) => self.recommend_stored(req),
            Cow::Owned(key) => self.recommend_stored(&RecommendRequest {
                user_id: key,
                ..req.clone()
            }),
        }?;
        self.record_drift_list(req.cursor.as_deref(), &list.items);
        Ok(list)
    }

    /// Rewrites the store file from its live rows, so that nothing erased or expired survives in
    /// it, not even in free pages; reads and writes wait meanwhile (see
    /// [`cairn_store::Store::compact`]).
    pub fn compact(&self) -> Result<CompactReport, EngineError> {
        let removals = self.removals.load(Ordering::Acquire);
        let report = self.store.compact()?;
        self.removals_compacted
            .fetch_max(removals, Ordering::AcqRel);
        tracing::info!(
            bytes_before = report.bytes_before,
            bytes_after = report.bytes_after,
            "store compacted"
        );
        Ok(report)
    }

    /// Deletes the events older than `privacy.retention_days` before `now` (Unix seconds), with
    /// their idempotency records and the seen pairs they leave without events; nothing when
    /// retention is off (0). The next training is then due, so the model forgets them too.
    pub fn expire_events(&self, now: i64) -> Result<Expiry, EngineError> {
        let days = self.config.privacy.retention_days;
        if days == 0 {
            return Ok(Expiry::default());
        }
        let cutoff = now.saturating_sub(i64::from(days) * 86_400);
        let mut total = Expiry {
            cutoff,
            ..Expiry::default()
        };
        // In bounded transactions, so a first pass over a long history does not hold one huge
        // write.
        loop {
            let pass = self.store.expire_events(Timestamp(cutoff), EXPIRE_BATCH)?;
            total.events += pass.events;
            total.pairs += pass.pairs;
            if pass.events < EXPIRE_BATCH as u64 {
                break;
            }
        }
        if total.events > 0 {
            self.removals.fetch_add(1, Ordering::AcqRel);
            self.events_expired
                .fetch_add(total.events, Ordering::AcqRel);
            tracing::info!(
                events = total.events,
                pairs = total.pairs,
                cutoff,
                "expired events older than privacy.retention_days"
            );
        }
        Ok(total)
    }

    /// Events deleted by retention since this engine opened.
    pub fn events_expired(&self) -> u64 {
        self.events_expired.load(Ordering::Acquire)
    }
}

/// Most events one retention transaction deletes.
const EXPIRE_BATCH: usize = 50_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 of RFC 4231.
        let p = Pseudonymizer::new(b"Jefe");
        assert_eq!(
            hex(&p.hmac(b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        let p = Pseudonymizer::new(&[0xaa; 131]);
        assert_eq!(
            hex(&p.hmac(b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn pseudonyms_are_stable_keyed_and_idempotent() {
        let a = Pseudonymizer::new(b"0123456789abcdef");
        let b = Pseudonymizer::new(b"0123456789abcdeF");
        let p = a.pseudonym("alice@example.com").into_owned();
        assert!(is_pseudonym(&p), "{p}");
        assert_eq!(p.len(), 35);
        assert_eq!(a.pseudonym("alice@example.com"), p);
        assert_ne!(b.pseudonym("alice@example.com"), p);
        assert_ne!(a.pseudonym("bob"), p);
        assert_eq!(a.pseudonym(&p), p, "a pseudonym maps to itself");
    }

    #[test]
    fn a_short_or_missing_key_is_refused() {
        let mut config = PrivacyConfig {
            pseudonymize_user_ids: true,
            ..PrivacyConfig::default()
        };
        assert!(config.validate().is_err());
        assert!(Pseudonymizer::from_config(&config).is_err());
        config.hmac_key = Some("short".into());
        assert!(Pseudonymizer::from_config(&config).is_err());
        config.hmac_key = Some("a key of enough bytes".into());
        assert!(Pseudonymizer::from_config(&config).unwrap().is_some());
        config.pseudonymize_user_ids = false;
        assert!(Pseudonymizer::from_config(&config).unwrap().is_none());
    }
}
