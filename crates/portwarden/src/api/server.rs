//! The API's connection handling: accept, limit, time out, serve with hyper's HTTP/1.1, shut
//! down gracefully. Three limits keep slow or silent clients from holding resources forever
//! (`[daemon] http_header_timeout`, `http_idle_timeout`, `http_max_connections`):
//!
//! - the TLS handshake (HTTPS) and then each request head must arrive within the header
//!   timeout, counted from the accept (or the end of the previous response on a keep-alive
//!   connection, so it also closes keep-alive connections idle between requests);
//! - once a request is under way, a connection on which the client makes no progress (sends
//!   no byte, takes no byte of the response) for the idle timeout while the daemon waits on it
//!   is closed (a stalled body, a reader that stopped reading; a handler slower than the
//!   timeout too, as hyper watches the socket meanwhile). An event stream writes a keep-alive
//!   comment well within the idle timeout, so it stays open;
//! - at most `max_connections` are served at once. Beyond that the daemon stops accepting:
//!   new connections wait in the kernel's listen backlog and are accepted, oldest first, as
//!   soon as a slot frees (the timeouts above guarantee one does).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Longest the server waits, at shutdown, for open connections to finish.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Least time between two warnings that every connection slot is taken.
const FULL_WARNING: Duration = Duration::from_secs(60);

/// The connection limits (`[daemon] http_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time allowed for the TLS handshake and for each request head.
    pub header_timeout: Duration,
    /// A connection whose client makes no progress this long is closed.
    pub idle_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

/// Default for `daemon.http_header_timeout`.
pub fn default_http_header_timeout() -> Duration {
    Duration::from_secs(10)
}
/// Default for `daemon.http_idle_timeout`.
pub fn default_http_idle_timeout() -> Duration {
    Duration::from_secs(60)
}
/// Default for `daemon.http_max_connections`.
pub fn default_http_max_connections() -> usize {
    1024
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: default_http_header_timeout(),
            idle_timeout: default_http_idle_timeout(),
            max_connections: default_http_max_connections(),
        }
    }
}

/// Serves `app` on `listener` (HTTPS when `tls` is given) within `limits` until `shutdown`;
/// then lets open connections finish their request (at most [`SHUTDOWN_WAIT`]).
pub async fn run(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: axum::Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let tracker = TaskTracker::new();
    let mut warned: Option<Instant> = None;
    loop {
        if slots.available_permits() == 0 && warned.is_none_or(|t| t.elapsed() >= FULL_WARNING) {
            tracing::warn!(
                "API: {} connections open (http_max_connections): new ones wait",
                limits.max_connections
            );
            warned = Some(Instant::now());
        }
        // A slot first, then the accept: over the cap, clients wait in the backlog.
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("API: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let acceptor = acceptor.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _permit = permit;
            match acceptor {
                None => serve_connection(stream, app, limits, shutdown).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.header_timeout, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls)) => serve_connection(tls, app, limits, shutdown).await,
                        Ok(Err(e)) => tracing::debug!("API: TLS handshake with {peer}: {e}"),
                        Err(_) => tracing::debug!("API: TLS handshake with {peer} timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_WAIT, tracker.wait())
        .await
        .is_err()
    {
        tracing::debug!("API: connections still open at shutdown were dropped");
    }
    Ok(())
}

/// One connection: HTTP/1.1 with the header timeout, over [`IdleIo`].
async fn serve_connection<T>(
    io: T,
    app: axum::Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(IdleIo::new(io, limits.idle_timeout));
    let service = TowerToHyperService::new(app);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder.serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!("API: connection ended: {e}");
    }
}

/// An I/O stream that fails with `TimedOut` when the peer makes no progress — no byte read,
/// none written — for `timeout` while the server waits on it. Time the server spends on its
/// own (a handler computing, an event stream between events) does not count: only reads and
/// writes that would block start the clock, and any byte either way stops it.
struct IdleIo<T> {
    io: T,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
    /// The clock runs: a read or write is waiting on the peer.
    waiting: bool,
}

impl<T> IdleIo<T> {
    fn new(io: T, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            waiting: false,
        }
    }

    /// Applies the clock to a poll's outcome; `progress` says whether bytes moved.
    fn check<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
        progress: bool,
    ) -> Poll<io::Result<R>> {
        match polled {
            Poll::Pending => {
                if !self.waiting {
                    self.waiting = true;
                    self.deadline.as_mut().reset(Instant::now() + self.timeout);
                }
                if self.deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client idle too long",
                    )));
                }
                Poll::Pending
            }
            ready => {
                if progress {
                    self.waiting = false;
                }
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        let progress = buf.filled().len() > before;
        this.check(cx, polled, progress)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        let progress = matches!(polled, Poll::Ready(Ok(n)) if n > 0);
        this.check(cx, polled, progress)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        let progress = matches!(polled, Poll::Ready(Ok(n)) if n > 0);
        this.check(cx, polled, progress)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // A flush moves no new bytes (hyper flushes on every turn): it may start the clock
        // but never stops it.
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        this.check(cx, polled, false)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_shutdown(cx);
        this.check(cx, polled, false)
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn idle_io_times_out_only_without_progress() {
        let (server, mut client) = tokio::io::duplex(64);
        let mut io = IdleIo::new(server, Duration::from_secs(10));
        let mut buf = [0u8; 16];
        // Bytes every 6 s: never idle for 10 s.
        for _ in 0..3 {
            let read = io.read(&mut buf);
            let send = async {
                tokio::time::sleep(Duration::from_secs(6)).await;
                client.write_all(b"x").await.unwrap();
            };
            let (n, ()) = tokio::join!(read, send);
            assert_eq!(n.unwrap(), 1);
        }
        // Then silence: timed out after 10 s, not before.
        let start = Instant::now();
        let e = io.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_io_counts_writes_as_progress_and_flushes_not() {
        let (server, mut client) = tokio::io::duplex(64);
        let mut io = IdleIo::new(server, Duration::from_secs(10));
        let mut buf = [0u8; 16];
        // A read waits on the client while writes go out every 6 s (an event stream).
        let drain = tokio::spawn(async move {
            let mut sink = [0u8; 64];
            for _ in 0..3 {
                let _ = client.read(&mut sink).await.unwrap();
            }
            client
        });
        for _ in 0..3 {
            tokio::select! {
                r = io.read(&mut buf) => panic!("read ended: {r:?}"),
                () = tokio::time::sleep(Duration::from_secs(6)) => {}
            }
            io.write_all(b"keep-alive").await.unwrap();
            io.flush().await.unwrap();
        }
        let _client = drain.await.unwrap();
        // Flushing alone (hyper flushes on every turn) is no progress: the read times out.
        let start = Instant::now();
        let mut timed_out = None;
        for _ in 0..30 {
            tokio::select! {
                r = io.read(&mut buf) => {
                    timed_out = Some(r.unwrap_err());
                    break;
                }
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            io.flush().await.unwrap();
        }
        assert_eq!(timed_out.unwrap().kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() <= Duration::from_secs(10));
    }
}
