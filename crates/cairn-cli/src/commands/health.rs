//! `cairn health`: asks a running server whether it is up (`/healthz`) or ready (`/readyz`) and exits
//! 0 only on 200. For container health checks, where the runtime image has no curl: a plain HTTP/1.0
//! GET over a TCP socket, or over TLS (rustls) for `https://` URLs, trusting the certificate or CA
//! of `--ca-file`, or, on a loopback address only, any certificate (`--insecure-loopback`).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;

use super::Context;

#[derive(Args)]
pub struct HealthArgs {
    /// The URL to probe.
    #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
    url: String,
    /// Give up after this many seconds (connecting, and again reading the answer).
    #[arg(long, default_value_t = 5)]
    timeout_secs: u64,
    /// For an https:// URL: a PEM file with the server's certificate or the CA that signed it.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// For an https:// URL on a loopback address (127.0.0.1, ::1, localhost): accept any
    /// certificate. Refused for other hosts.
    #[arg(long)]
    insecure_loopback: bool,
}

pub fn run(_ctx: &Context, args: HealthArgs) -> anyhow::Result<()> {
    let target = Target::parse(&args.url)?;
    let timeout = Duration::from_secs(args.timeout_secs.max(1));
    let trust = if target.tls {
        Some(Trust::choose(
            &target,
            args.ca_file.as_deref(),
            args.insecure_loopback,
        )?)
    } else {
        None
    };
    let (status, body) = get(&target, timeout, trust.as_ref())?;
    if status != 200 {
        bail!("{} answered {status}: {}", args.url, body.trim());
    }
    println!("{} answered 200: {}", args.url, body.trim());
    Ok(())
}

/// Where an `http://host:port/path` or `https://...` URL points.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    host: String,
    port: u16,
    path: String,
    tls: bool,
}

impl Target {
    fn parse(url: &str) -> anyhow::Result<Target> {
        let (rest, tls) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (rest, false),
            (_, Some(rest)) => (rest, true),
            _ => bail!(
                "`{url}`: only http:// and https:// URLs can be probed, e.g. http://127.0.0.1:8080/healthz"
            ),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                let port = port.parse::<u16>().with_context(|| {
                    format!("`{url}`: the port `{port}` is not a number from 0 to 65535")
                })?;
                (host, port)
            }
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            bail!("`{url}` names no host; e.g. http://127.0.0.1:8080/healthz");
        }
        Ok(Target {
            host: host.to_string(),
            port,
            path: path.to_string(),
            tls,
        })
    }

    fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// How an https:// server's certificate is checked.
struct Trust(rustls::ClientConfig);

impl Trust {
    fn choose(
        target: &Target,
        ca_file: Option<&std::path::Path>,
        insecure_loopback: bool,
    ) -> anyhow::Result<Trust> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::CertificateDer;
        let provider = Arc::new(cairn_server::crypto_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let config = match (ca_file, insecure_loopback) {
            (Some(path), _) => {
                let mut roots = rustls::RootCertStore::empty();
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|c| c.collect::<Result<Vec<_>, _>>())
                    .with_context(|| format!("--ca-file {}", path.display()))?;
                if certs.is_empty() {
                    bail!(
                        "--ca-file {}: no PEM certificate in the file",
                        path.display()
                    );
                }
                for cert in certs {
                    roots
                        .add(cert)
                        .with_context(|| format!("--ca-file {}", path.display()))?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            (None, true) if target.is_loopback() => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth(),
            (None, true) => bail!(
                "--insecure-loopback is only for loopback addresses, not `{}`; give --ca-file",
                target.host
            ),
            (None, false) => bail!(
                "an https:// URL needs --ca-file PEM (the server's certificate or its CA), or \
                 --insecure-loopback for a server on this machine"
            ),
        };
        Ok(Trust(config))
    }
}

/// Accepts any certificate (still checking the handshake's signatures): `--insecure-loopback`.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One GET; the status code and the body.
fn get(target: &Target, timeout: Duration, trust: Option<&Trust>) -> anyhow::Result<(u16, String)> {
    let address = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {}", target.host))?
        .next()
        .with_context(|| format!("{} resolves to no address", target.host))?;
    let stream = TcpStream::connect_timeout(&address, timeout)
        .with_context(|| format!("cannot connect to {address}; is `cairn serve` running there?"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let answer = match trust {
        None => exchange(stream, target),
        Some(Trust(config)) => {
            let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                .with_context(|| format!("`{}` is not a TLS server name", target.host))?;
            let conn = rustls::ClientConnection::new(Arc::new(config.clone()), name)?;
            exchange(rustls::StreamOwned::new(conn, stream), target)
        }
    }
    .with_context(|| format!("talking to {address}"))?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .with_context(|| format!("{address} did not answer HTTP: {head:?}"))?;
    Ok((status, body.to_string()))
}

/// Sends the GET and reads the answer until the server closes. A TLS server that closes without
/// `close_notify` ends the answer too.
fn exchange(mut stream: impl Read + Write, target: &Target) -> std::io::Result<Vec<u8>> {
    write!(
        stream,
        "GET {} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.path, target.host
    )?;
    stream.flush()?;
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => Ok(answer),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => Ok(answer),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_into_host_port_and_path() {
        assert_eq!(
            Target::parse("http://127.0.0.1:8080/healthz").unwrap(),
            Target {
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/healthz".into(),
                tls: false,
            }
        );
        assert_eq!(
            Target::parse("http://localhost").unwrap(),
            Target {
                host: "localhost".into(),
                port: 80,
                path: "/".into(),
                tls: false,
            }
        );
        assert_eq!(Target::parse("http://[::1]:9/readyz").unwrap().host, "::1");
        let https = Target::parse("https://x/healthz").unwrap();
        assert_eq!((https.port, https.tls), (443, true));
        let err = Target::parse("ftp://x/healthz").unwrap_err().to_string();
        assert!(err.contains("only http:// and https://"), "{err}");
        let err = Target::parse("http://h:port/").unwrap_err().to_string();
        assert!(err.contains("`port` is not a number"), "{err}");
    }

    #[test]
    fn a_closed_port_is_an_error_that_says_so() {
        // Bind, learn the port, close: nothing listens there any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let target = Target::parse(&format!("http://127.0.0.1:{port}/healthz")).unwrap();
        let err = get(&target, Duration::from_secs(2), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot connect"), "{err}");
    }

    #[test]
    fn skipping_verification_is_for_loopback_only() {
        let remote = Target::parse("https://shop.example/healthz").unwrap();
        let err = Trust::choose(&remote, None, true)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("only for loopback"), "{err}");
        let err = Trust::choose(&remote, None, false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--ca-file"), "{err}");
        for local in [
            "https://127.0.0.1:8443/healthz",
            "https://localhost/",
            "https://[::1]:9/",
        ] {
            assert!(Trust::choose(&Target::parse(local).unwrap(), None, true).is_ok());
        }
    }
}
