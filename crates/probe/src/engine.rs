//! Runs one probe: resolve, connect (address after address), optional TLS, the dialog, the
//! verdict, the polite quit. Every await is bounded by the probe's deadline.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout, Instant};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::escape::escape_for_display;
use crate::expect::{Expectation, Verdict};
use crate::result::{Attempt, ProbeResult, Reason, State, Timings, TlsInfo};
use crate::spec::{ProbeSpec, Step, Verify};
use crate::starttls::StartTls;
use crate::target::resolve;
use crate::tls;

/// Longest excerpt of received data kept in a result.
const EXCERPT_BYTES: usize = 512;
/// How long to wait for the server to close after the quit string.
const QUIT_GRACE: Duration = Duration::from_millis(500);
/// Read chunk size.
const CHUNK: usize = 4096;

/// A connection, plain or TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf).await,
            Conn::Tls(s) => s.read(buf).await,
        }
    }

    async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(data).await,
            Conn::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
        }
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref().0,
        }
    }
}

/// Why the dialog stopped short of OK.
struct Failure {
    reason: Reason,
    message: String,
}

impl Failure {
    fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// A prepared probe's run: everything it records on the way.
pub(crate) struct Session<'a> {
    spec: &'a ProbeSpec,
    tls_config: Option<&'a Arc<rustls::ClientConfig>>,
    start: Instant,
    deadline: Instant,
    /// Every byte received so far, at most `max_bytes`.
    received: Vec<u8>,
    /// Where the current expect step's data begins in `received`.
    window: usize,
    truncated: bool,
    timings: Timings,
    tls: Option<TlsInfo>,
    peer: Option<SocketAddr>,
    failed_attempts: Vec<Attempt>,
}

impl<'a> Session<'a> {
    pub(crate) fn new(
        spec: &'a ProbeSpec,
        tls_config: Option<&'a Arc<rustls::ClientConfig>>,
    ) -> Self {
        let start = Instant::now();
        Self {
            spec,
            tls_config,
            start,
            deadline: start + spec.limits.deadline,
            received: Vec::new(),
            window: 0,
            truncated: false,
            timings: Timings::default(),
            tls: None,
            peer: None,
            failed_attempts: Vec::new(),
        }
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    pub(crate) async fn run(mut self) -> ProbeResult {
        let outcome = self.connect_and_talk().await;
        if self.timings.total.is_zero() {
            self.timings.total = self.start.elapsed();
        }
        self.finish(outcome)
    }

    /// Resolves and tries each address; on the one that answers, runs the dialog.
    async fn connect_and_talk(&mut self) -> Result<String, Failure> {
        let addrs = self.resolve().await?;
        if self.spec.must_be_closed {
            return self.check_closed(&addrs).await;
        }
        let conn = self.connect_any(&addrs).await?;
        let (conn, outcome) = self.talk(conn).await;
        // The verdict is in: the quit and close are not part of the measured time.
        self.timings.total = self.start.elapsed();
        if let Some(conn) = conn {
            self.close(conn, outcome.is_ok()).await;
        }
        outcome
    }

    async fn resolve(&mut self) -> Result<Vec<SocketAddr>, Failure> {
        let began = Instant::now();
        let target = &self.spec.target;
        let resolved = timeout(self.remaining(), resolve(target, self.spec.family)).await;
        self.timings.resolve = Some(began.elapsed());
        let addrs = match resolved {
            Err(_) => {
                return Err(Failure::new(
                    Reason::ResolutionFailed,
                    format!("resolving {} timed out", target.host),
                ))
            }
            Ok(Err(e)) => {
                return Err(Failure::new(
                    Reason::ResolutionFailed,
                    format!("cannot resolve {}: {e}", target.host),
                ))
            }
            Ok(Ok(addrs)) => addrs,
        };
        if addrs.is_empty() {
            return Err(Failure::new(
                Reason::ResolutionFailed,
                format!("{} has no {:?} address", target.host, self.spec.family),
            ));
        }
        Ok(addrs)
    }

    async fn connect_one(&self, addr: SocketAddr) -> Result<TcpStream, Failure> {
        let limit = self.spec.limits.connect_timeout.min(self.remaining());
        let connecting = async {
            match self.spec.source {
                None => TcpStream::connect(addr).await,
                Some(source) => {
                    let socket = if addr.is_ipv4() {
                        TcpSocket::new_v4()?
                    } else {
                        TcpSocket::new_v6()?
                    };
                    socket.bind(SocketAddr::new(source, 0))?;
                    socket.connect(addr).await
                }
            }
        };
        match timeout(limit, connecting).await {
            Err(_) => Err(Failure::new(
                Reason::ConnectTimeout,
                format!("no answer from {addr} within {:.3} s", limit.as_secs_f64()),
            )),
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => Err(Failure::new(
                Reason::Refused,
                format!("connection refused by {addr}"),
            )),
            Ok(Err(e)) if e.kind() == io::ErrorKind::TimedOut => Err(Failure::new(
                Reason::ConnectTimeout,
                format!("connecting to {addr} timed out"),
            )),
            Ok(Err(e)) => Err(Failure::new(
                Reason::ConnectFailed,
                format!("cannot connect to {addr}: {e}"),
            )),
            Ok(Ok(stream)) => Ok(stream),
        }
    }

    /// Tries the addresses in order; the first that accepts wins.
    async fn connect_any(&mut self, addrs: &[SocketAddr]) -> Result<Conn, Failure> {
        let mut last = None;
        for &addr in addrs {
            let began = Instant::now();
            let attempt = self.connect_one(addr).await;
            self.timings.connect = Some(began.elapsed());
            match attempt {
                Ok(stream) => {
                    // Small writes (banners, commands) must leave at once.
                    let _ = stream.set_nodelay(true);
                    self.peer = Some(addr);
                    return self.start_session(stream).await;
                }
                Err(f) => {
                    self.failed_attempts.push(Attempt {
                        addr,
                        reason: f.reason,
                        error: f.message.clone(),
                    });
                    last = Some(f);
                    if self.remaining().is_zero() {
                        break;
                    }
                }
            }
        }
        Err(last.unwrap_or_else(|| Failure::new(Reason::ResolutionFailed, "no address to try")))
    }

    async fn start_session(&mut self, stream: TcpStream) -> Result<Conn, Failure> {
        let conn = Conn::Plain(stream);
        if self.spec.implicit_tls {
            self.handshake(conn).await
        } else {
            Ok(conn)
        }
    }

    /// The negative check: OK only when no address accepts a connection.
    async fn check_closed(&mut self, addrs: &[SocketAddr]) -> Result<String, Failure> {
        let mut closed = Vec::with_capacity(addrs.len());
        for &addr in addrs {
            let began = Instant::now();
            let attempt = self.connect_one(addr).await;
            self.timings.connect = Some(began.elapsed());
            match attempt {
                Ok(stream) => {
                    self.peer = Some(addr);
                    reset_close(&stream);
                    return Err(Failure::new(
                        Reason::MustBeClosedButOpen,
                        format!("{addr} accepted a connection but must be closed"),
                    ));
                }
                Err(f) => closed.push(format!("{addr} {}", f.reason)),
            }
        }
        Ok(format!("port is closed: {}", closed.join(", ")))
    }

    /// Upgrades a plain connection with a TLS handshake and records the chain.
    async fn handshake(&mut self, conn: Conn) -> Result<Conn, Failure> {
        let Conn::Plain(stream) = conn else {
            return Err(Failure::new(Reason::TlsFailure, "TLS is already active"));
        };
        let Some(config) = self.tls_config else {
            return Err(Failure::new(Reason::InvalidSetup, "TLS was not prepared"));
        };
        let name = tls::server_name(&self.spec.tls, &self.spec.target.host)
            .map_err(|e| Failure::new(Reason::InvalidSetup, e))?;
        let began = Instant::now();
        let connector = TlsConnector::from(config.clone());
        let result = timeout(self.remaining(), connector.connect(name.clone(), stream)).await;
        let spent = began.elapsed();
        self.timings.tls = Some(self.timings.tls.unwrap_or_default() + spent);
        match result {
            Err(_) => Err(Failure::new(
                Reason::TlsFailure,
                "TLS handshake timed out".to_string(),
            )),
            Ok(Err(e)) => Err(Failure::new(
                Reason::TlsFailure,
                format!("TLS handshake failed: {}", tls::describe_handshake_error(&e)),
            )),
            Ok(Ok(stream)) => {
                let verified = !matches!(self.spec.tls.verify, Verify::Insecure);
                self.tls = Some(tls::session_info(stream.get_ref().1, &name, verified));
                Ok(Conn::Tls(Box::new(stream)))
            }
        }
    }

    /// Runs the dialog. Returns the connection (gone only if a STARTTLS handshake failed)
    /// and the outcome.
    async fn talk(&mut self, mut conn: Conn) -> (Option<Conn>, Result<String, Failure>) {
        if !self.spec.send_delay.is_zero() {
            tokio::time::sleep(self.spec.send_delay.min(self.remaining())).await;
        }
        let spec = self.spec;
        for step in &spec.steps {
            let done = match step {
                Step::Send(bytes) => self.send(&mut conn, bytes).await,
                Step::Expect(expectation) => self.expect(&mut conn, expectation).await,
                Step::StartTls(protocol) => {
                    if let Err(f) = self.negotiate_starttls(&mut conn, *protocol).await {
                        return (Some(conn), Err(f));
                    }
                    match self.handshake(conn).await {
                        Ok(upgraded) => {
                            conn = upgraded;
                            Ok(())
                        }
                        Err(f) => return (None, Err(f)),
                    }
                }
            };
            if let Err(f) = done {
                return (Some(conn), Err(f));
            }
        }
        (Some(conn), Ok(String::new()))
    }

    /// The plain-text exchange that asks for TLS; a refusal gets its own reason.
    async fn negotiate_starttls(&mut self, conn: &mut Conn, protocol: StartTls) -> Result<(), Failure> {
        for step in protocol.negotiation() {
            let done = match &step {
                Step::Send(bytes) => self.send(conn, bytes).await,
                Step::Expect(expectation) => self.expect(conn, expectation).await,
                Step::StartTls(_) => Ok(()),
            };
            if let Err(mut f) = done {
                if f.reason == Reason::UnexpectedResponse {
                    f.reason = Reason::StarttlsRefused;
                    f.message = format!("STARTTLS ({}) refused: {}", protocol.name(), f.message);
                }
                return Err(f);
            }
        }
        Ok(())
    }

    async fn send(&mut self, conn: &mut Conn, bytes: &[u8]) -> Result<(), Failure> {
        match timeout(self.remaining(), conn.write_all(bytes)).await {
            Err(_) => Err(Failure::new(
                Reason::ReadTimeout,
                "sending timed out (server not reading)",
            )),
            Ok(Err(e)) => Err(io_failure(&e, "sending")),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Reads until `expectation` is decided, the data stops, or a limit is reached.
    async fn expect(&mut self, conn: &mut Conn, expectation: &Expectation) -> Result<(), Failure> {
        let max_bytes = self.spec.limits.max_bytes;
        let mut chunk = [0u8; CHUNK];
        loop {
            let window = &self.received[self.window..];
            match expectation.evaluate(window) {
                Verdict::Matched => {
                    self.window = self.received.len();
                    return Ok(());
                }
                Verdict::Mismatch => return Err(self.mismatch(expectation, None)),
                Verdict::Undecided => {}
            }
            if self.received.len() >= max_bytes {
                self.truncated = true;
                return Err(self.mismatch(
                    expectation,
                    Some(format!("no match within max_bytes ({max_bytes} bytes)")),
                ));
            }
            let has_data = self.received.len() > self.window;
            let wait = if has_data {
                self.spec.limits.idle_timeout.min(self.remaining())
            } else {
                self.remaining()
            };
            let room = (max_bytes - self.received.len()).min(CHUNK);
            match timeout(wait, conn.read(&mut chunk[..room])).await {
                Err(_) if has_data => {
                    return Err(self.mismatch(
                        expectation,
                        Some(format!(
                            "server went quiet for {:.3} s",
                            wait.as_secs_f64()
                        )),
                    ))
                }
                Err(_) => {
                    return Err(Failure::new(
                        Reason::ReadTimeout,
                        format!(
                            "no data from {} within {:.3} s",
                            self.peer_text(),
                            self.spec.limits.deadline.as_secs_f64()
                        ),
                    ))
                }
                Ok(Ok(0)) if has_data => {
                    return Err(self.mismatch(
                        expectation,
                        Some("server closed the connection".into()),
                    ))
                }
                Ok(Ok(0)) => {
                    return Err(Failure::new(
                        Reason::NoData,
                        format!(
                            "{} closed the connection without sending data",
                            self.peer_text()
                        ),
                    ))
                }
                Ok(Ok(n)) => {
                    if self.timings.first_byte.is_none() {
                        self.timings.first_byte = Some(self.start.elapsed());
                    }
                    self.received.extend_from_slice(&chunk[..n]);
                }
                Ok(Err(e)) => return Err(io_failure(&e, "reading")),
            }
        }
    }

    fn peer_text(&self) -> String {
        self.peer.map_or_else(|| self.spec.target.to_string(), |p| p.to_string())
    }

    fn mismatch(&self, expectation: &Expectation, why: Option<String>) -> Failure {
        let got = excerpt(&self.received[self.window..]);
        let mut message = format!("expected {expectation}, got \"{got}\"");
        if let Some(why) = why {
            message.push_str(&format!(" ({why})"));
        }
        Failure::new(Reason::UnexpectedResponse, message)
    }

    /// Sends the quit string and lets the server close first, so no TIME_WAIT piles up
    /// here; without a quit string (or if the server lingers) the socket is reset.
    async fn close(&mut self, mut conn: Conn, dialog_ok: bool) {
        let Some(quit) = self.spec.quit.as_deref() else {
            reset_close(conn.tcp());
            return;
        };
        let grace = QUIT_GRACE.min(self.remaining());
        let polite = async {
            conn.write_all(quit).await?;
            let mut sink = [0u8; 512];
            while conn.read(&mut sink).await? > 0 {}
            io::Result::Ok(())
        };
        let closed_by_server = matches!(timeout(grace, polite).await, Ok(Ok(())));
        if !closed_by_server || !dialog_ok {
            reset_close(conn.tcp());
        }
    }

    fn finish(self, outcome: Result<String, Failure>) -> ProbeResult {
        let spec = self.spec;
        let (mut state, mut reason, mut message) = match outcome {
            Ok(matched) => (State::Ok, None, matched),
            Err(f) => {
                let state = match f.reason {
                    Reason::Refused => spec.states.refused,
                    Reason::UnexpectedResponse => spec.states.mismatch,
                    Reason::InvalidSetup => State::Unknown,
                    _ => State::Critical,
                };
                (state, Some(f.reason), f.message)
            }
        };
        if state == State::Ok && reason.is_none() {
            if message.is_empty() {
                message = format!("{} answered", self.peer_text());
            }
            if let (Some(info), Some(days)) = (&self.tls, spec.tls.cert_days) {
                let left = info.days_left;
                let verdict = if left < i64::from(days.critical) {
                    Some(State::Critical)
                } else if left < i64::from(days.warning) {
                    Some(State::Warning)
                } else {
                    None
                };
                if let Some(s) = verdict {
                    state = s;
                    reason = Some(Reason::CertificateExpiring);
                    message = if left < 0 {
                        format!("certificate expired {} days ago ({})", -left, info.not_after)
                    } else {
                        format!("certificate expires in {left} days ({})", info.not_after)
                    };
                }
            }
            let total = self.timings.total;
            let slow = match spec.response_time {
                t if t.critical.is_some_and(|c| total > c) => Some(State::Critical),
                t if t.warning.is_some_and(|w| total > w) => Some(State::Warning),
                _ => None,
            };
            if let Some(s) = slow {
                if s.worst(state) != state {
                    state = s;
                    reason = Some(Reason::SlowResponse);
                    message = format!("response took {:.3} s", total.as_secs_f64());
                }
            }
        }
        let peer = self.peer;
        ProbeResult {
            state,
            reason,
            message,
            target: spec.target.to_string(),
            peer,
            failed_attempts: self.failed_attempts,
            timings: self.timings,
            received: excerpt(&self.received),
            bytes_received: self.received.len(),
            truncated: self.truncated,
            tls: self.tls,
        }
    }
}

/// Closes with an RST (SO_LINGER 0) so the prober keeps no TIME_WAIT sockets.
fn reset_close(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

fn io_failure(e: &io::Error, doing: &str) -> Failure {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => Failure::new(
            Reason::Reset,
            format!("connection reset by the server while {doing}"),
        ),
        _ => Failure::new(Reason::Reset, format!("error while {doing}: {e}")),
    }
}

/// What was received, escaped and cut for display.
fn excerpt(data: &[u8]) -> String {
    let cut = &data[..data.len().min(EXCERPT_BYTES)];
    let mut text = escape_for_display(cut);
    if data.len() > EXCERPT_BYTES {
        text.push_str("...");
    }
    text
}
