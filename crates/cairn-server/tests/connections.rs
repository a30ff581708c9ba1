//! The network edge over raw sockets: clients that send nothing, half a header, a body that never
//! comes or one that is too large, kept-alive connections left idle, and the connection limit.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[allow(dead_code)] // The shared client is for the JSON API tests.
mod common;

use common::Running;

fn addr(server: &Running) -> String {
    server.base.trim_start_matches("http://").to_string()
}

fn connect(server: &Running) -> TcpStream {
    let stream = TcpStream::connect(addr(server)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Waits for the server to close `stream` (a read of 0 bytes, or a reset); the time it took.
fn closed_after(stream: &mut TcpStream, since: Instant) -> Duration {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return since.elapsed(),
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return since.elapsed(),
            Err(e) => panic!("the connection was not closed: {e}"),
        }
    }
}

/// Reads one response: status, and the body by its Content-Length.
fn response(stream: &mut TcpStream) -> (u16, serde_json::Value) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_string();
            let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .unwrap_or(0);
            while data.len() < end + 4 + length {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "closed inside the body");
                data.extend_from_slice(&buf[..n]);
            }
            let body = &data[end + 4..end + 4 + length];
            let json = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
            return (status, json);
        }
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed before a response");
        data.extend_from_slice(&buf[..n]);
    }
}

fn start(configure: impl FnOnce(&mut cairn_engine::Config)) -> Running {
    Running::start(configure, |_| {})
}

#[test]
fn a_silent_client_and_a_half_header_are_dropped_after_the_header_timeout() {
    let server = start(|c| c.server.header_timeout_ms = 300);
    let opened = Instant::now();
    let mut silent = connect(&server);
    let mut half = connect(&server);
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let waited = closed_after(&mut silent, opened);
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    let waited = closed_after(&mut half, opened);
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    // Served as before by a client that sends its request.
    let mut ok = connect(&server);
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(response(&mut ok).0, 200);
}

#[test]
fn a_kept_alive_connection_is_closed_after_the_idle_timeout_not_the_header_timeout() {
    let server = start(|c| {
        c.server.header_timeout_ms = 200;
        c.server.idle_timeout_secs = 1;
    });
    let mut stream = connect(&server);
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(response(&mut stream).0, 200);
    // Longer than the header timeout: still open for the next request.
    std::thread::sleep(Duration::from_millis(500));
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(response(&mut stream).0, 200);
    let answered = Instant::now();
    let waited = closed_after(&mut stream, answered);
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
}

#[test]
fn a_body_declared_as_100_mb_and_never_sent_is_413_at_once() {
    // The defaults: 16 MiB bodies, 30 s for a body. Before, this connection was held for the
    // 30 s request timeout and answered 503.
    let server = start(|_| {});
    let mut stream = connect(&server);
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100000000\r\n\r\n",
        )
        .unwrap();
    let (status, body) = response(&mut stream);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("100000000"),
        "{body}"
    );
}

#[test]
fn a_body_that_does_not_arrive_in_time_is_408() {
    let server = start(|c| c.server.body_timeout_ms = 300);
    let mut stream = connect(&server);
    stream
        .write_all(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 1000\r\n\r\n{\"events\":[",
        )
        .unwrap();
    let sent = Instant::now();
    let (status, body) = response(&mut stream);
    assert_eq!(status, 408, "{body}");
    assert_eq!(body["error"]["code"], "body_timeout");
    assert!(sent.elapsed() >= Duration::from_millis(300));
    // A chunked body that grows past the limit is 413 too.
    let server = start(|c| c.server.max_body_bytes = 100);
    let mut stream = connect(&server);
    let chunk = "x".repeat(200);
    write!(
        stream,
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    )
    .unwrap();
    let (status, body) = response(&mut stream);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
}

#[test]
fn connections_beyond_the_limit_wait_until_one_closes() {
    let server = start(|c| c.server.max_connections = 1);
    let holder = connect(&server);
    // Let the server accept the first connection before the second arrives.
    std::thread::sleep(Duration::from_millis(200));
    let mut waiting = connect(&server);
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 16];
    let err = waiting.read(&mut buf).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    drop(holder);
    waiting
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    assert_eq!(response(&mut waiting).0, 200);
}
