//! HTTPS from certificate files, and the certificate reloaded when the files change: a client
//! that trusts both of two self-signed certificates sees which one the server presents.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::RootCertStore;

#[allow(dead_code)] // The shared client is for the JSON API tests.
mod common;

use common::Running;

/// A self-signed certificate for 127.0.0.1 and localhost, written to `dir`; its DER bytes.
fn write_cert(dir: &Path) -> CertificateDer<'static> {
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    // Written beside and renamed, as a certificate manager does, so no half file is read.
    std::fs::write(dir.join("cert.tmp"), generated.cert.pem()).unwrap();
    std::fs::write(dir.join("key.tmp"), generated.key_pair.serialize_pem()).unwrap();
    std::fs::rename(dir.join("key.tmp"), dir.join("key.pem")).unwrap();
    std::fs::rename(dir.join("cert.tmp"), dir.join("cert.pem")).unwrap();
    generated.cert.der().clone()
}

/// GET /healthz over TLS, trusting `roots`; the status line and the certificate presented.
fn get(addr: &str, roots: &[&CertificateDer<'static>]) -> (String, CertificateDer<'static>) {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add((*root).clone()).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(cairn_server::crypto_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(store)
            .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    // A server may close without close_notify after `Connection: close`; what came counts.
    let _ = tls.read_to_end(&mut answer);
    let presented = tls.conn.peer_certificates().unwrap()[0]
        .clone()
        .into_owned();
    let answer = String::from_utf8_lossy(&answer).to_string();
    (answer.lines().next().unwrap_or("").to_string(), presented)
}

#[test]
fn https_serves_the_certificate_files_and_reloads_them_when_they_change() {
    let certs = tempfile::tempdir().unwrap();
    let first = write_cert(certs.path());
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    let server = Running::start(
        |c| {
            c.server.tls_cert = Some(cert.clone());
            c.server.tls_key = Some(key.clone());
        },
        |_| {},
    );
    let addr = server.base.trim_start_matches("http://").to_string();
    let (status, presented) = get(&addr, &[&first]);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(presented, first);

    // Plain HTTP on the TLS port gets no answer.
    let mut plain = TcpStream::connect(&addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/1.1 200"));

    // A broken certificate file: the previous certificate stays.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(get(&addr, &[&first]).1, first, "kept after a bad file");

    // A new pair: served from the next handshakes on.
    let second = write_cert(certs.path());
    assert_ne!(second, first);
    let began = Instant::now();
    loop {
        let (status, presented) = get(&addr, &[&first, &second]);
        if presented == second {
            assert_eq!(status, "HTTP/1.1 200 OK");
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the new certificate was not served"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
