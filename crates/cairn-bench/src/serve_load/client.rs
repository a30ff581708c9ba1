//! The load generator: N keep-alive connections on a tokio runtime, each either closed-loop (the next
//! request leaves as soon as the previous response arrives) or open-loop (requests leave on a fixed
//! schedule, and a late response delays the next one, whose latency then counts from when it should
//! have left, so that a stalled server cannot hide its queue: no coordinated omission).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::http::{get_request, parse_response, ParseError};

/// Where requests go: `{}` in the path template is replaced by a uniform random id below `ids`.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub path_template: String,
    pub ids: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("only http:// URLs are supported, not `{0}`")]
    Scheme(String),
    #[error("cannot resolve `{0}`: {1}")]
    Resolve(String, std::io::Error),
    #[error("`{0}` resolves to no address")]
    NoAddress(String),
}

impl Target {
    /// `url` is `http://host:port` (a path after it is prefixed to the template).
    pub fn new(url: &str, path_template: &str, ids: u64) -> Result<Target, UrlError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| UrlError::Scheme(url.to_string()))?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let with_port = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&with_port)
            .map_err(|e| UrlError::Resolve(authority.to_string(), e))?
            .next()
            .ok_or_else(|| UrlError::NoAddress(authority.to_string()))?;
        Ok(Target {
            addr,
            host: authority.to_string(),
            path_template: format!("{prefix}{path_template}"),
            ids: ids.max(1),
        })
    }

    fn request(&self, rng: &mut ChaCha8Rng) -> Vec<u8> {
        let path = if self.path_template.contains("{}") {
            let id = rng.random_range(0..self.ids);
            self.path_template.replacen("{}", &id.to_string(), 1)
        } else {
            self.path_template.clone()
        };
        get_request(&self.host, &path)
    }
}

/// When a run measures: requests that start before `measure_from` (warm-up) or finish after `until`
/// are sent but not counted.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub measure_from: Instant,
    pub until: Instant,
}

/// Closed-loop, or open-loop at this many requests per second over all connections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    Closed,
    Open { rate: f64 },
}

/// One connection's results inside the window.
#[derive(Debug, Default)]
pub struct ConnectionResult {
    pub latencies_us: Vec<u32>,
    /// Non-200 responses plus failed requests (connection refused or reset, unparseable response).
    pub errors: u64,
    /// The first few distinct failure messages, for the report.
    pub error_samples: Vec<String>,
}

impl ConnectionResult {
    fn error(&mut self, counted: bool, message: impl FnOnce() -> String) {
        if counted {
            self.errors += 1;
        }
        if self.error_samples.len() < 3 {
            let m = message();
            if !self.error_samples.contains(&m) {
                self.error_samples.push(m);
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(super) enum RequestError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("bad response: {0}")]
    Parse(#[from] ParseError),
    #[error("connection closed before the response ended")]
    Closed,
}

pub(super) struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    pub(super) async fn open(addr: SocketAddr) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends one request and reads its response: (status, whether the server will close).
    /// Uses readiness + `try_*` calls rather than tokio's io-util traits, whose feature the workspace
    /// does not enable (turning it on here would rebuild tokio for every crate).
    pub(super) async fn exchange(&mut self, request: &[u8]) -> Result<(u16, bool), RequestError> {
        let mut sent = 0;
        while sent < request.len() {
            self.stream.writable().await?;
            match self.stream.try_write(&request[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            self.stream.readable().await?;
            let n = match self.stream.try_read(&mut chunk) {
                Ok(0) => return Err(RequestError::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e.into()),
            };
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(r) = parse_response(&self.buf)? {
                return Ok((r.status, r.close));
            }
        }
    }
}

/// Runs one connection until `window.until`.
pub async fn run_connection(
    target: &Target,
    pace: Pace,
    connections: usize,
    index: usize,
    window: Window,
    seed: u64,
) -> ConnectionResult {
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut result = ConnectionResult::default();
    let mut connection: Option<Connection> = None;
    // Open loop: each connection carries rate/connections, the connections' schedules interleaved.
    let interval = match pace {
        Pace::Closed => None,
        Pace::Open { rate } => Some(Duration::from_secs_f64(connections as f64 / rate)),
    };
    let mut scheduled = interval
        .map(|every| Instant::now() + every.mul_f64(index as f64 / connections.max(1) as f64));
    loop {
        let started = match (scheduled, interval) {
            (Some(due), Some(every)) => {
                scheduled = Some(due + every);
                let ready = Instant::now();
                if ready >= due {
                    // Late because the previous response was: the wait counts against the server.
                    due
                } else {
                    // Early: sleep, and count from the actual send, since timer lateness is ours.
                    tokio::time::sleep_until(due).await;
                    Instant::now()
                }
            }
            _ => Instant::now(),
        };
        if started >= window.until {
            break;
        }
        let request = target.request(&mut rng);
        if connection.is_none() {
            match Connection::open(target.addr).await {
                Ok(c) => connection = Some(c),
                Err(e) => {
                    let counted = started >= window.measure_from;
                    result.error(counted, || format!("connect: {e}"));
                    // A refused connection returns at once; do not spin on it.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(conn) = connection.as_mut() else {
            continue;
        };
        let outcome = conn.exchange(&request).await;
        let finished = Instant::now();
        let counted = started >= window.measure_from && finished <= window.until;
        match outcome {
            Ok((status, close)) => {
                if status == 200 {
                    if counted {
                        let us = finished.duration_since(started).as_micros();
                        result
                            .latencies_us
                            .push(u32::try_from(us).unwrap_or(u32::MAX));
                    }
                } else {
                    result.error(counted, || format!("HTTP status {status}"));
                }
                if close {
                    connection = None;
                }
            }
            Err(e) => {
                result.error(counted, || e.to_string());
                connection = None;
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A blocking server that answers every request with a fixed response: 404 (chunked) when the
    /// path contains `missing`, else 200 with a content-length body. Returns its address.
    fn fixed_server() -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        let Ok(n) = stream.read(&mut chunk) else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let request: Vec<u8> = buf.drain(..end + 4).collect();
                            let response: &[u8] = if request.windows(7).any(|w| w == b"missing") {
                                b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n"
                            } else {
                                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
                            };
                            if stream.write_all(response).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    fn run(addr: SocketAddr, path: &str, pace: Pace, connections: usize) -> Vec<ConnectionResult> {
        let target = Target::new(&format!("http://{addr}"), path, 100).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let now = Instant::now();
            let window = Window {
                measure_from: now + Duration::from_millis(50),
                until: now + Duration::from_millis(550),
            };
            let mut out = Vec::new();
            let tasks: Vec<_> = (0..connections)
                .map(|i| {
                    let target = target.clone();
                    tokio::spawn(async move {
                        run_connection(&target, pace, connections, i, window, 1).await
                    })
                })
                .collect();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        })
    }

    #[test]
    fn closed_loop_counts_successes_and_errors() {
        let addr = fixed_server();
        let ok = run(addr, "/v1/users/user-{}/recommendations", Pace::Closed, 2);
        assert!(ok
            .iter()
            .all(|r| r.errors == 0 && r.latencies_us.len() > 10));
        let missing = run(addr, "/missing/{}", Pace::Closed, 1);
        assert!(missing[0].latencies_us.is_empty());
        assert!(missing[0].errors > 10);
        assert_eq!(
            missing[0].error_samples,
            vec!["HTTP status 404".to_string()]
        );
    }

    #[test]
    fn open_loop_sends_at_the_offered_rate() {
        let addr = fixed_server();
        let results = run(addr, "/x", Pace::Open { rate: 200.0 }, 4);
        let sent: usize = results.iter().map(|r| r.latencies_us.len()).sum();
        // 200/s over the 0.5 s window is 100 requests; allow for the window's edges.
        assert!((80..=104).contains(&sent), "{sent} requests");
    }

    #[test]
    fn refused_connections_are_errors_not_panics() {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let r = run(addr, "/", Pace::Closed, 1);
        assert!(r[0].errors > 0);
        assert!(r[0].error_samples[0].starts_with("connect"));
    }

    #[test]
    fn urls_and_templates() {
        let t = Target::new("http://127.0.0.1:9/api/", "/items/{}", 5).unwrap();
        assert_eq!(t.path_template, "/api/items/{}");
        assert_eq!(t.host, "127.0.0.1:9");
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let request = String::from_utf8(t.request(&mut rng)).unwrap();
        assert!(request.starts_with("GET /api/items/"));
        assert!(matches!(
            Target::new("https://x", "/", 1),
            Err(UrlError::Scheme(_))
        ));
    }
}
