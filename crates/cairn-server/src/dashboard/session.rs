//! Dashboard sessions: the login with an admin key, the session cookie and the CSRF token every
//! form carries.
//!
//! A session is a random token (two v4 UUIDs from the OS generator: 244 random bits) kept in memory,
//! bounded in number ([`MAX_SESSIONS`]) and in age ([`SESSION_SECS`]). It remembers the API key it
//! was opened with, and is valid only while that key exists, so revoking the key ends its sessions.
//! While no key exists and the server runs open (loopback, or `auth.insecure`), a visitor gets an
//! anonymous session at once, which stops being valid as soon as a key is created.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "cairn_session";
/// The cookie that carries the login form's CSRF token before a session exists.
pub const LOGIN_COOKIE: &str = "cairn_login";
/// How long a session lasts after login.
pub const SESSION_SECS: u64 = 12 * 3600;
/// How long the login form's token is accepted.
pub const LOGIN_SECS: u64 = 600;
/// Most sessions kept; the oldest gives way to a new one.
pub const MAX_SESSIONS: usize = 1024;

/// One logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The API key it logged in with; `None` for an anonymous session (no keys, open mode).
    pub key_id: Option<String>,
    /// Who, as the model history and the audit log record it.
    pub who: String,
    /// The token every form of this session must carry.
    pub csrf: String,
    created: Instant,
}

impl Session {
    /// Whether `token` is this session's CSRF token (compared in constant time).
    pub fn csrf_ok(&self, token: &str) -> bool {
        constant_time_eq(self.csrf.as_bytes(), token.as_bytes())
    }
}

/// The sessions of one server.
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    max: usize,
    ttl: Duration,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(MAX_SESSIONS, Duration::from_secs(SESSION_SECS))
    }
}

impl Sessions {
    pub fn new(max: usize, ttl: Duration) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            max: max.max(1),
            ttl,
        }
    }

    /// Opens a session; returns its token (the cookie's value) and the session.
    pub fn open(&self, key_id: Option<String>, who: String) -> (String, Session) {
        let token = random_token();
        let session = Session {
            key_id,
            who,
            csrf: random_token(),
            created: Instant::now(),
        };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let ttl = self.ttl;
        map.retain(|_, s| s.created.elapsed() < ttl);
        if map.len() >= self.max {
            let oldest = map
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
        map.insert(token.clone(), session.clone());
        (token, session)
    }

    /// The live session of `token`, if any (an expired one is removed).
    pub fn get(&self, token: &str) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(token) {
            Some(s) if s.created.elapsed() < self.ttl => Some(s.clone()),
            Some(_) => {
                map.remove(token);
                None
            }
            None => None,
        }
    }

    pub fn close(&self, token: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }

    #[cfg(test)]
    pub fn count(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// 64 hex characters from two v4 UUIDs (the OS random generator).
pub fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Byte-wise comparison whose time does not depend on where the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A `Set-Cookie` value: HTTP-only, `SameSite=Strict`, path `/`, `Secure` when served over TLS;
/// `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}");
    // Names and values are ours (hex tokens), never user input, so this cannot fail.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_http_only_strict_and_secure_under_tls() {
        let plain = set_cookie(SESSION_COOKIE, "abc", 60, false);
        let plain = plain.to_str().unwrap();
        assert!(plain.contains("HttpOnly"), "{plain}");
        assert!(plain.contains("SameSite=Strict"), "{plain}");
        assert!(!plain.contains("Secure"), "{plain}");
        let tls = set_cookie(SESSION_COOKIE, "abc", 60, true);
        assert!(tls.to_str().unwrap().ends_with("; Secure"));
    }

    #[test]
    fn reads_a_cookie_among_several() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; cairn_session=xyz"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "cairn"), None);
    }

    #[test]
    fn sessions_are_bounded_expire_and_close() {
        let s = Sessions::new(2, Duration::from_secs(3600));
        let (a, sa) = s.open(Some("k1".into()), "ops (k1)".into());
        let (b, _) = s.open(None, "anonymous".into());
        let (c, _) = s.open(None, "anonymous".into());
        assert_eq!(s.count(), 2);
        assert!(s.get(&a).is_none(), "the oldest gave way");
        assert!(s.get(&b).is_some() && s.get(&c).is_some());
        assert!(sa.csrf_ok(&sa.csrf) && !sa.csrf_ok("") && !sa.csrf_ok(&a));
        s.close(&b);
        assert!(s.get(&b).is_none());
        let expired = Sessions::new(4, Duration::ZERO);
        let (t, _) = expired.open(None, "x".into());
        assert!(expired.get(&t).is_none());
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 64);
    }
}
