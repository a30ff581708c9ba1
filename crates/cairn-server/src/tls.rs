//! HTTPS from `server.tls_cert` and `server.tls_key` (PEM files), with rustls on the ring provider.
//!
//! The certificate is reloaded when either file changes: a task looks at both files' modification
//! times and sizes every [`RELOAD_EVERY`], and a change loads the pair anew and swaps it in for the
//! next handshakes. A pair that does not load (half-written, a key that does not match) keeps the
//! previous certificate and logs an error; it is tried again at the files' next change.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// The rustls crypto provider of Cairn's TLS, server and `cairn health` alike: ring, chosen so that
/// no C library (aws-lc-sys) enters the build. rustls 0.23.48 deprecates it for lacking
/// post-quantum key exchange; the classical suites it offers are those of rustls's defaults.
#[allow(deprecated)]
pub fn crypto_provider() -> rustls::crypto::CryptoProvider {
    ring::default_provider()
}

/// How often the certificate files are looked at.
pub(crate) const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// The TLS side of the server: the acceptor and the certificate it serves now.
pub(crate) struct Tls {
    acceptor: TlsAcceptor,
    resolver: Arc<Resolver>,
    cert: PathBuf,
    key: PathBuf,
}

impl Tls {
    /// Loads the pair; an error names the file and what is wrong with it.
    pub(crate) fn load(cert: &Path, key: &Path) -> io::Result<Arc<Tls>> {
        let certified = load_pair(cert, key).map_err(io::Error::other)?;
        let resolver = Arc::new(Resolver {
            current: ArcSwap::from_pointee(certified),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(crypto_provider()))
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&resolver) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            resolver,
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        }))
    }

    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// Watches the files every `every` and swaps in a changed pair; runs until aborted.
    pub(crate) fn spawn_reloader(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let tls = Arc::clone(self);
        tokio::spawn(async move {
            let mut seen = stamps(&tls.cert, &tls.key);
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let now = stamps(&tls.cert, &tls.key);
                if now == seen {
                    continue;
                }
                seen = now;
                tls.reload();
            }
        })
    }

    /// Loads the files again; on success the next handshakes get the new certificate, on failure
    /// the previous one stays.
    fn reload(&self) {
        match load_pair(&self.cert, &self.key) {
            Ok(certified) => {
                self.resolver.current.store(Arc::new(certified));
                tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
            }
            Err(e) => tracing::error!(
                error = %e,
                "the TLS certificate files changed but do not load; still serving the previous \
                 certificate"
            ),
        }
    }
}

/// Modification time and size of both files; `None` for one that cannot be read now.
type Stamp = Option<(SystemTime, u64)>;

fn stamps(cert: &Path, key: &Path) -> (Stamp, Stamp) {
    let stamp = |p: &Path| {
        let m = std::fs::metadata(p).ok()?;
        Some((m.modified().ok()?, m.len()))
    };
    (stamp(cert), stamp(key))
}

fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| format!("server.tls_cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "server.tls_cert {}: no PEM certificate in the file",
            cert.display()
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("server.tls_key {}: {e}", key.display()))?;
    let signing = crypto_provider()
        .key_provider
        .load_private_key(private)
        .map_err(|e| format!("server.tls_key {}: {e}", key.display()))?;
    let certified = CertifiedKey::new(certs, signing);
    certified.keys_match().map_err(|e| {
        format!(
            "server.tls_key {} does not belong to server.tls_cert {}: {e}",
            key.display(),
            cert.display()
        )
    })?;
    Ok(certified)
}

/// Serves whichever certificate is current, to every client.
struct Resolver {
    current: ArcSwap<CertifiedKey>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolver")
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
        let generated = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, generated.cert.pem()).unwrap();
        std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
        (cert, key, generated.cert.der().to_vec())
    }

    fn served(tls: &Tls) -> Vec<u8> {
        tls.resolver.current.load().cert[0].as_ref().to_vec()
    }

    #[test]
    fn a_bad_pair_is_refused_and_keeps_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, first) = write_pair(dir.path(), "localhost");
        let tls = Tls::load(&cert, &key).unwrap();
        assert_eq!(served(&tls), first);

        std::fs::write(&cert, "not a certificate").unwrap();
        let err = load_pair(&cert, &key).unwrap_err();
        assert!(err.contains("no PEM certificate"), "{err}");
        tls.reload();
        assert_eq!(served(&tls), first, "kept");

        // A certificate with another pair's key.
        let other = tempfile::tempdir().unwrap();
        let (other_cert, _, _) = write_pair(other.path(), "localhost");
        let err = load_pair(&other_cert, &key).unwrap_err();
        assert!(err.contains("does not belong"), "{err}");

        let (_, _, second) = write_pair(dir.path(), "localhost");
        tls.reload();
        assert_eq!(served(&tls), second);
        assert!(Tls::load(&dir.path().join("missing.pem"), &key).is_err());
    }
}
