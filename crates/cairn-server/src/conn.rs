//! The network edge: the accept loop and each connection's life.
//!
//! hyper's own `header_read_timeout` starts whenever hyper waits for a request head, which on a
//! kept-alive connection is also the whole idle time between requests: it cannot give a short
//! limit for a header in progress and a longer one for idleness. So hyper's is turned off and each
//! connection keeps its own clock ([`Activity`]), fed by the socket (bytes read and written) and by
//! the service (a request begins, its handler answers):
//!
//! - no request in progress and nothing read since the last one: closed `idle_timeout_secs` after
//!   the last response was written, or `header_timeout_ms` after opening when it never sent one;
//! - bytes of a request header arrived but no whole header yet: closed `header_timeout_ms` after
//!   the first of them (a TLS handshake counts as part of the first request);
//! - a handler running: no connection limit; the request body's own limit
//!   (`server.body_timeout_ms`, in [`crate::middleware::read_body`]) and `request_timeout_ms` apply.
//!
//! `server.max_connections` bounds open connections with a semaphore taken before `accept`: while
//! all are taken, new connections wait in the kernel's listen backlog (their TCP handshake may
//! complete there) and are accepted as soon as one closes; none is refused by the server.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::tls::Tls;

/// The connection limits of `server.*`; `None` = no limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub header: Option<Duration>,
    pub idle: Option<Duration>,
    /// 0 = no limit.
    pub max_connections: usize,
}

impl Limits {
    pub(crate) fn from_config(server: &cairn_engine::ServerConfig) -> Limits {
        let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
        Limits {
            header: nonzero(Duration::from_millis(server.header_timeout_ms)),
            idle: nonzero(Duration::from_secs(server.idle_timeout_secs)),
            max_connections: server.max_connections,
        }
    }
}

/// Accepts connections until `shutdown` completes, then asks each open one to finish its request
/// in progress and close, and waits for them up to `grace`.
pub(crate) async fn run(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<Arc<Tls>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> io::Result<()> {
    let slots =
        (limits.max_connections > 0).then(|| Arc::new(Semaphore::new(limits.max_connections)));
    let (close_tx, close_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = match &slots {
            Some(slots) => tokio::select! {
                permit = Arc::clone(slots).acquire_owned() => match permit {
                    Ok(permit) => Some(permit),
                    Err(_) => break, // never closed
                },
                () = &mut shutdown => break,
            },
            None => None,
        };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, typically: wait instead of spinning.
                    tracing::error!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        tokio::spawn(connection(
            stream,
            app.clone(),
            limits,
            tls.clone(),
            close_rx.clone(),
            permit,
        ));
    }
    drop(listener);
    drop(close_rx);
    let _ = close_tx.send(true);
    // Graceful, but bounded: requests in flight (a forced training, a slow client) get `grace`
    // to finish, then the server stops without them.
    tokio::select! {
        () = close_tx.closed() => {}
        () = tokio::time::sleep(grace) => tracing::warn!(
            "requests still in flight {}s after the stop signal were abandoned \
             (server.shutdown_grace_secs)",
            grace.as_secs()
        ),
    }
    Ok(())
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

async fn connection(
    stream: TcpStream,
    app: Router,
    limits: Limits,
    tls: Option<Arc<Tls>>,
    close: watch::Receiver<bool>,
    _slot: Option<OwnedSemaphorePermit>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = Tracked {
        inner: stream,
        activity: Arc::clone(&activity),
    };
    match tls {
        None => serve_connection(io, app, limits, activity, close).await,
        Some(tls) => {
            let handshake = tls.acceptor().accept(io);
            let stream = match limits.header {
                Some(limit) => match tokio::time::timeout(limit, handshake).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::debug!("TLS handshake not done within server.header_timeout_ms");
                        return;
                    }
                },
                None => handshake.await,
            };
            match stream {
                Ok(stream) => serve_connection(stream, app, limits, activity, close).await,
                Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
            }
        }
    }
}

async fn serve_connection<I>(
    io: I,
    app: Router,
    limits: Limits,
    activity: Arc<Activity>,
    mut close: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service_activity = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let in_progress = InProgress::begin(Arc::clone(&service_activity));
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await;
            drop(in_progress);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Our clock replaces hyper's header timeout (see the module documentation).
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None::<Duration>);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut closing = *close.borrow();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let deadline = activity.deadline(&limits);
        let expiry = async {
            match deadline {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            changed = close.changed(), if !closing => {
                closing = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = activity.changed.notified() => {}
            () = expiry => {
                if let Some((at, why)) = activity.deadline(&limits) {
                    if at <= Instant::now() {
                        tracing::debug!(why, "closing a connection");
                        return;
                    }
                }
            }
        }
    }
}

/// What a connection's clock needs: whether a request is in progress, and when it last read and
/// wrote.
pub(crate) struct Activity {
    state: Mutex<State>,
    /// Woken when the deadline may have moved earlier (a request ended, a new header began).
    changed: Notify,
}

struct State {
    /// Requests whose handler runs.
    in_flight: usize,
    /// Requests answered on this connection.
    served: u64,
    /// When the last request ended (or the connection opened).
    idle_since: Instant,
    /// When the last byte was written.
    last_write: Instant,
    /// When the first byte was read while no request was in progress: a header in progress.
    header_started: Option<Instant>,
}

impl Activity {
    fn new() -> Self {
        let now = Instant::now();
        Activity {
            state: Mutex::new(State {
                in_flight: 0,
                served: 0,
                idle_since: now,
                last_write: now,
                header_started: None,
            }),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When this connection is to be closed, and why; `None` while a handler runs or no limit
    /// applies.
    fn deadline(&self, limits: &Limits) -> Option<(Instant, &'static str)> {
        let s = self.state();
        if s.in_flight > 0 {
            return None;
        }
        if let Some(started) = s.header_started {
            return limits
                .header
                .map(|d| (started + d, "request header not complete in time"));
        }
        let since = s.idle_since.max(s.last_write);
        if s.served == 0 {
            limits.header.map(|d| (since + d, "no request in time"))
        } else {
            limits.idle.map(|d| (since + d, "idle"))
        }
    }

    fn read(&self) {
        let mut s = self.state();
        if s.in_flight == 0 && s.header_started.is_none() {
            s.header_started = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }

    fn wrote(&self) {
        self.state().last_write = Instant::now();
    }
}

/// A request whose handler runs; ends (and restarts the idle clock) when dropped.
struct InProgress(Arc<Activity>);

impl InProgress {
    fn begin(activity: Arc<Activity>) -> Self {
        {
            let mut s = activity.state();
            s.in_flight += 1;
            s.header_started = None;
        }
        InProgress(activity)
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        {
            let mut s = self.0.state();
            s.in_flight = s.in_flight.saturating_sub(1);
            s.served += 1;
            if s.in_flight == 0 {
                s.idle_since = Instant::now();
                s.header_started = None;
            }
        }
        self.0.changed.notify_one();
    }
}

/// A socket that tells its [`Activity`] when bytes go in or out.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        header: Some(Duration::from_secs(10)),
        idle: Some(Duration::from_secs(60)),
        max_connections: 0,
    };

    /// Sets the clock's inputs as if `ago` had passed since each.
    fn back(a: &Activity, idle: Duration, write: Duration) {
        let now = Instant::now();
        let mut s = a.state();
        s.idle_since = now - idle;
        s.last_write = now - write;
    }

    #[test]
    fn the_clock_follows_the_phases_of_a_connection() {
        let secs = Duration::from_secs;
        let a = Arc::new(Activity::new());
        // Nothing sent yet: the header limit from the opening.
        back(&a, secs(3), secs(3));
        let (at, why) = a.deadline(&LIMITS).unwrap();
        assert_eq!(why, "no request in time");
        assert!(at <= Instant::now() + secs(7));
        a.read();
        // A header in progress: from its first byte.
        let (at, why) = a.deadline(&LIMITS).unwrap();
        assert_eq!(why, "request header not complete in time");
        assert!(at > Instant::now() + secs(9));
        let request = InProgress::begin(Arc::clone(&a));
        assert_eq!(a.deadline(&LIMITS), None, "no limit while a handler runs");
        a.read(); // body bytes: not a new header
        assert_eq!(a.deadline(&LIMITS), None);
        drop(request);
        // Kept alive and idle: the idle limit from the last byte written or the last answer.
        back(&a, secs(30), secs(5));
        let (at, why) = a.deadline(&LIMITS).unwrap();
        assert_eq!(why, "idle");
        let left = at - Instant::now();
        assert!(left > secs(50) && left <= secs(55), "{left:?}");
        // The next request's first byte: the header limit from it.
        a.read();
        let (at, why) = a.deadline(&LIMITS).unwrap();
        assert_eq!(why, "request header not complete in time");
        assert!(at - Instant::now() <= secs(10));
        let none = Limits {
            header: None,
            idle: None,
            max_connections: 0,
        };
        assert_eq!(a.deadline(&none), None);
    }
}
