//! `cairn health`: asks a running server whether it is up (`/healthz`) or ready (`/readyz`) and exits
//! 0 only on 200. For container health checks, where the runtime image has no curl: a plain HTTP/1.0
//! GET over a TCP socket, `http://` URLs only.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
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
}

pub fn run(_ctx: &Context, args: HealthArgs) -> anyhow::Result<()> {
    let target = Target::parse(&args.url)?;
    let timeout = Duration::from_secs(args.timeout_secs.max(1));
    let (status, body) = get(&target, timeout)?;
    if status != 200 {
        bail!("{} answered {status}: {}", args.url, body.trim());
    }
    println!("{} answered 200: {}", args.url, body.trim());
    Ok(())
}

/// Where an `http://host:port/path` URL points.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    host: String,
    port: u16,
    path: String,
}

impl Target {
    fn parse(url: &str) -> anyhow::Result<Target> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("`{url}`: only http:// URLs can be probed, e.g. http://127.0.0.1:8080/healthz");
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
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            bail!("`{url}` names no host; e.g. http://127.0.0.1:8080/healthz");
        }
        Ok(Target {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

/// One GET; the status code and the body.
fn get(target: &Target, timeout: Duration) -> anyhow::Result<(u16, String)> {
    let address = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {}", target.host))?
        .next()
        .with_context(|| format!("{} resolves to no address", target.host))?;
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .with_context(|| format!("cannot connect to {address}; is `cairn serve` running there?"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.path, target.host
    )?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .with_context(|| format!("reading the answer from {address}"))?;
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
                path: "/healthz".into()
            }
        );
        assert_eq!(
            Target::parse("http://localhost").unwrap(),
            Target {
                host: "localhost".into(),
                port: 80,
                path: "/".into()
            }
        );
        assert_eq!(Target::parse("http://[::1]:9/readyz").unwrap().host, "::1");
        let err = Target::parse("https://x/healthz").unwrap_err().to_string();
        assert!(err.contains("only http://"), "{err}");
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
        let err = get(&target, Duration::from_secs(2))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot connect"), "{err}");
    }
}
