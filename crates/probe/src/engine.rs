//! Runs one probe: resolve, connect (address after address), optional TLS, the dialog, the
//! verdict, the polite quit. Every await is bounded by the probe's deadline.
//!
//! Every connection gets `SO_LINGER 0` as soon as it is established, so whichever way the
//! probe ends (verdict, error, timeout, a dropped future) the socket is reset on close and
//! the prober keeps no `TIME_WAIT` entry: at tens of thousands of checks a minute those
//! would exhaust the ephemeral ports.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout, Instant};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::escape::escape_for_display;
use crate::expect::{matching_line, Consumed, Expectation, Matcher, Verdict};
use crate::result::{
    Attempt, DialogEvent, ExpectEnd, ProbeResult, Reason, State, Timings, TlsInfo,
};
use crate::spec::{ProbeSpec, Step};
use crate::starttls::StartTls;
use crate::target::{resolve, Family, Host};
use crate::tls;
use crate::Probe;

/// Longest excerpt of received data kept in a result.
const EXCERPT_BYTES: usize = 512;
/// How long to wait for the server to close after the quit string.
const QUIT_GRACE: Duration = Duration::from_millis(500);
/// First allocation of the receive buffer: a banner fits, and it stays in malloc's fast path.
const FIRST_READ: usize = 1024;
/// Below this much free room in the receive buffer, grow it before the next read.
const MIN_SPARE: usize = 256;
/// Most bytes read (and thrown away) while waiting for the server to close after the quit.
const QUIT_DRAIN_BYTES: usize = 4096;

/// A connection, plain or TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl Conn {
    /// Reads at most `room` bytes, appended to `buf` without an intermediate copy.
    async fn read_into(&mut self, buf: &mut Vec<u8>, room: usize) -> io::Result<usize> {
        if buf.capacity() - buf.len() < room.min(MIN_SPARE) {
            // Doubling growth, starting small: most probes read one short banner.
            buf.reserve(room.min(buf.len().max(FIRST_READ)));
        }
        let tls = matches!(self, Conn::Tls(_));
        match self.take(room as u64).read_buf(buf).await {
            // rustls reports a TCP close without close_notify as UnexpectedEof; for a probe
            // that is simply the server hanging up, as it would on a plain connection.
            Err(e) if tls && e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            other => other,
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

/// The addresses to try: a literal needs no list (and no allocation).
enum Addrs {
    One([SocketAddr; 1]),
    Many(Vec<SocketAddr>),
}

impl Addrs {
    fn as_slice(&self) -> &[SocketAddr] {
        match self {
            Addrs::One(a) => a,
            Addrs::Many(v) => v,
        }
    }
}

/// A prepared probe's run: everything it records on the way.
pub(crate) struct Session<'a> {
    probe: &'a Probe,
    spec: &'a ProbeSpec,
    start: Instant,
    deadline: Instant,
    /// Every byte received so far, at most `max_bytes`.
    received: Vec<u8>,
    /// Where the data not yet used up by an expect step begins in `received`.
    window: usize,
    /// The last match ended inside a text line: the rest of that line, up to its `\n`, is
    /// skipped before the next expect step looks at the data.
    skip_rest_of_line: bool,
    /// The data the last expect step used up, as a range of `received`.
    matched: (usize, usize),
    /// How the expect step that failed ended.
    expect_end: Option<ExpectEnd>,
    /// The dialog as it happened, when traced.
    transcript: Option<Vec<DialogEvent>>,
    /// The step of `spec.steps` being run, for the transcript.
    step: usize,
    truncated: bool,
    /// An expectation matched: the peer speaks the protocol and deserves its quit string.
    identified: bool,
    timings: Timings,
    tls: Option<TlsInfo>,
    peer: Option<SocketAddr>,
    failed_attempts: Vec<Attempt>,
}

impl<'a> Session<'a> {
    pub(crate) fn new(probe: &'a Probe, traced: bool) -> Self {
        let start = Instant::now();
        Self {
            probe,
            spec: &probe.spec,
            start,
            deadline: start + probe.spec.limits.deadline,
            received: Vec::new(),
            window: 0,
            skip_rest_of_line: false,
            matched: (0, 0),
            expect_end: None,
            transcript: traced.then(Vec::new),
            step: 0,
            truncated: false,
            identified: false,
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
        let outcome = match self.resolve().await {
            Ok(addrs) => self.connect_and_talk(addrs.as_slice()).await,
            Err(f) => Err(f),
        };
        if self.timings.total.is_zero() {
            self.timings.total = self.start.elapsed();
        }
        self.finish(outcome)
    }

    /// Tries each address; on the one that answers, runs the dialog.
    async fn connect_and_talk(&mut self, addrs: &[SocketAddr]) -> Result<String, Failure> {
        if self.spec.must_be_closed {
            return self.check_closed(addrs).await;
        }
        let conn = self.connect_any(addrs).await?;
        let (conn, outcome) = self.talk(conn).await;
        // The verdict is in: the quit and close are not part of the measured time.
        self.timings.total = self.start.elapsed();
        // A peer that never matched an expectation has not shown it speaks the protocol: no
        // quit string for it, the connection is reset at once (linger 0 is already set).
        let polite = outcome.is_ok() || self.identified;
        if let (Some(conn), true) = (conn, polite) {
            self.close(conn).await;
        }
        outcome
    }

    /// The addresses of the target that the family and the source address allow.
    async fn resolve(&mut self) -> Result<Addrs, Failure> {
        let spec = self.spec;
        let target = &spec.target;
        let source = spec.source;
        // A socket bound to an IPv4 source cannot reach an IPv6 address and vice versa:
        // trying would only add a confusing failed attempt.
        let reachable = |a: &SocketAddr| source.is_none_or(|s| s.is_ipv4() == a.is_ipv4());
        if let Host::Ip(ip) = target.host {
            self.timings.resolve = Some(Duration::ZERO);
            let addr = SocketAddr::new(ip, target.port);
            if !spec.family.admits(&ip) {
                return Err(no_address(target, spec.family));
            }
            if !reachable(&addr) {
                return Err(no_address_for_source(target, source));
            }
            return Ok(Addrs::One([addr]));
        }
        let began = Instant::now();
        let resolved = timeout(self.remaining(), resolve(target, spec.family)).await;
        self.timings.resolve = Some(began.elapsed());
        let mut addrs = match resolved {
            Err(_) => {
                return Err(Failure::new(
                    Reason::ResolutionFailed,
                    format!("resolving {} timed out", target.host),
                ))
            }
            Ok(Err(e)) if is_local_exhaustion(&e) => {
                return Err(Failure::new(
                    Reason::LocalResources,
                    format!(
                        "portwarden's host is out of resources while resolving {}: {e} \
                         (a local limit, says nothing about the target)",
                        target.host
                    ),
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
            return Err(no_address(target, spec.family));
        }
        addrs.retain(reachable);
        if addrs.is_empty() {
            return Err(no_address_for_source(target, source));
        }
        Ok(Addrs::Many(addrs))
    }

    async fn connect_one(&self, addr: SocketAddr) -> Result<TcpStream, Failure> {
        let limit = self.spec.limits.connect_timeout.min(self.remaining());
        // The socket is made and bound apart from the connect so that a failure there is
        // never taken for the target's: no descriptor, no port, no memory is our side's.
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| local_failure(&e, addr, "creating a socket"))?;
        if let Some(source) = self.spec.source {
            socket.bind(SocketAddr::new(source, 0)).map_err(|e| {
                // Port 0 taken means no ephemeral port was left; an address that is not
                // ours (EADDRNOTAVAIL here) is a wrong source, reported as before.
                let exhausted = e.kind() == io::ErrorKind::AddrInUse
                    || (e.kind() != io::ErrorKind::AddrNotAvailable && is_local_exhaustion(&e));
                if exhausted {
                    local_failure(&e, addr, "binding the source address")
                } else {
                    Failure::new(
                        Reason::ConnectFailed,
                        format!("cannot connect to {addr}: {e}"),
                    )
                }
            })?;
        }
        match timeout(limit, socket.connect(addr)).await {
            Err(_) => Err(Failure::new(
                Reason::ConnectTimeout,
                format!("no answer from {addr} within {:.3} s", limit.as_secs_f64()),
            )),
            Ok(Err(e)) if is_local_exhaustion(&e) => Err(local_failure(&e, addr, "connecting")),
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
            Ok(Ok(stream)) => {
                // From here on every way out closes with a reset (see the module docs).
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                Ok(stream)
            }
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
                    if self.probe.nodelay {
                        // Several writes in a row would otherwise wait for the peer's
                        // delayed ACK (Nagle): up to 40 ms added to the response time.
                        let _ = stream.set_nodelay(true);
                    }
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
                Ok(_stream) => {
                    // Dropped at once: linger 0 resets it, the service sees no session.
                    self.peer = Some(addr);
                    return Err(Failure::new(
                        Reason::MustBeClosedButOpen,
                        format!("{addr} accepted a connection but must be closed"),
                    ));
                }
                // Refused or unanswered proves the port closed (or filtered) from here;
                // any other error (an unusable source address, say) proves nothing.
                Err(f) if matches!(f.reason, Reason::ConnectFailed | Reason::LocalResources) => {
                    return Err(f)
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
        let Some(prepared) = &self.probe.tls else {
            return Err(Failure::new(Reason::InvalidSetup, "TLS was not prepared"));
        };
        let began = Instant::now();
        let connector = TlsConnector::from(prepared.config.clone());
        let result = timeout(
            self.remaining(),
            connector.connect(prepared.server_name.clone(), stream),
        )
        .await;
        let spent = began.elapsed();
        self.timings.tls = Some(self.timings.tls.unwrap_or_default() + spent);
        match result {
            Err(_) => Err(Failure::new(
                Reason::TlsFailure,
                format!(
                    "TLS handshake with {} timed out after {:.3} s",
                    self.peer_text(),
                    spent.as_secs_f64()
                ),
            )),
            Ok(Err(e)) => Err(Failure::new(
                Reason::TlsFailure,
                format!(
                    "TLS handshake failed: {}",
                    tls::describe_handshake_error(&e)
                ),
            )),
            Ok(Ok(stream)) => {
                // A TLS 1.3 server sends its session tickets right after the handshake and
                // its first words in a second write; with Nagle on (most servers) that
                // write waits for our ACK of the tickets, which Linux would delay by up to
                // 40 ms. Quick ACKs keep that wait out of the measured response time.
                #[cfg(target_os = "linux")]
                let _ = socket2::SockRef::from(stream.get_ref().0).set_quickack(true);
                let verified = prepared.verifies;
                let info = tls::session_info(
                    stream.get_ref().1,
                    &prepared.server_name,
                    verified,
                    &prepared.anchors,
                );
                let step = self.step;
                let version = info.version.clone();
                self.record(|| DialogEvent::TlsStarted { step, version });
                self.tls = Some(info);
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
        for (i, step) in spec.steps.iter().enumerate() {
            self.step = i;
            let done = match step {
                Step::Send(bytes) => self.send(&mut conn, bytes).await,
                Step::SendExpanded(template) => {
                    let bytes = self.expand(capture_matcher(&spec.steps[..i]), template);
                    self.send(&mut conn, &bytes).await
                }
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
                // The earlier steps did the asking; plain bytes read past the last match
                // are not TLS and stay behind (as a fresh reader after an upgrade would).
                Step::Tls => match self.handshake(conn).await {
                    Ok(upgraded) => {
                        conn = upgraded;
                        self.window = self.received.len();
                        self.skip_rest_of_line = false;
                        Ok(())
                    }
                    Err(f) => return (None, Err(f)),
                },
            };
            if let Err(f) = done {
                return (Some(conn), Err(f));
            }
        }
        (Some(conn), Ok(String::new()))
    }

    /// The plain-text exchange that asks for TLS; a refusal gets its own reason.
    async fn negotiate_starttls(
        &mut self,
        conn: &mut Conn,
        protocol: StartTls,
    ) -> Result<(), Failure> {
        for step in protocol.negotiation() {
            let done = match &step {
                Step::Send(bytes) => self.send(conn, bytes).await,
                Step::Expect(expectation) => self.expect(conn, expectation).await,
                Step::StartTls(_) | Step::Tls | Step::SendExpanded(_) => Ok(()),
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

    /// Writes `bytes`. A send starts a new exchange: what the server said before it and no
    /// expect step used (the rest of a multi-line reply an expect matched a line of) is
    /// dropped, so the answer is read from its start. Line-by-line dialogs keep it, as
    /// blackbox's line reader does (their expects skip lines that do not match).
    async fn send(&mut self, conn: &mut Conn, bytes: &[u8]) -> Result<(), Failure> {
        if !self.probe.keeps_unused_data {
            // A line still being skipped stays skipped when its end arrives.
            self.skip_to_next_line();
            self.window = self.received.len();
        }
        let step = self.step;
        self.record(|| DialogEvent::Sent {
            step,
            data: excerpt(bytes),
        });
        match timeout(self.remaining(), conn.write_all(bytes)).await {
            Err(_) => Err(Failure::new(
                Reason::ReadTimeout,
                "sending timed out (server not reading)",
            )),
            Ok(Err(e)) => Err(io_failure(&e, "sending")),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Reads until `expectation` is decided, the data stops, or a limit is reached. The
    /// data already received and not used up by earlier steps is tested first: replies that
    /// arrived together are decided without waiting for more.
    async fn expect(&mut self, conn: &mut Conn, expectation: &Expectation) -> Result<(), Failure> {
        let max_bytes = self.spec.limits.max_bytes;
        let idle = self.spec.limits.idle_timeout;
        loop {
            self.skip_to_next_line();
            match expectation.evaluate(&self.received[self.window..]) {
                Verdict::Matched => {
                    self.use_up(expectation, false);
                    return Ok(());
                }
                Verdict::Mismatch => {
                    return Err(self.unmatched(expectation, ExpectEnd::Mismatch, None))
                }
                Verdict::Undecided => {}
            }
            if self.received.len() >= max_bytes {
                self.truncated = true;
                return Err(self.unmatched(
                    expectation,
                    ExpectEnd::MaxBytes,
                    Some(format!("no match within max_bytes ({max_bytes} bytes)")),
                ));
            }
            let has_data = self.received.len() > self.window;
            let remaining = self.remaining();
            // Checked here too, not only by the read's timer: a server that keeps data
            // coming could otherwise keep every read ready and the loop past the deadline.
            if remaining.is_zero() {
                return Err(self.read_timed_out(expectation, has_data, true));
            }
            let (wait, by_deadline) = if has_data && idle < remaining {
                (idle, false)
            } else {
                (remaining, true)
            };
            let room = max_bytes - self.received.len();
            match timeout(wait, conn.read_into(&mut self.received, room)).await {
                Err(_) => return Err(self.read_timed_out(expectation, has_data, by_deadline)),
                Ok(Ok(0)) => {
                    // Nothing more will come: an unterminated last line is a line now.
                    let rest = &self.received[self.window..];
                    if !self.skip_rest_of_line
                        && expectation.evaluate_at_close(rest) == Verdict::Matched
                    {
                        self.use_up(expectation, true);
                        return Ok(());
                    }
                    if has_data {
                        return Err(self.unmatched(
                            expectation,
                            ExpectEnd::Closed,
                            Some("server closed the connection".into()),
                        ));
                    }
                    self.expect_end = Some(ExpectEnd::Closed);
                    self.record_unmatched(expectation, ExpectEnd::Closed);
                    return Err(Failure::new(
                        Reason::NoData,
                        format!(
                            "{} closed the connection without sending data",
                            self.peer_text()
                        ),
                    ));
                }
                Ok(Ok(_)) => {
                    if self.timings.first_byte.is_none() {
                        self.timings.first_byte = Some(self.start.elapsed());
                    }
                }
                Ok(Err(e)) => {
                    self.expect_end = Some(ExpectEnd::ReadError);
                    self.record_unmatched(expectation, ExpectEnd::ReadError);
                    let mut f = io_failure(&e, "reading");
                    if has_data {
                        let got = excerpt(&self.received[self.window..]);
                        f.message.push_str(&format!(" after receiving \"{got}\""));
                    }
                    return Err(f);
                }
            }
        }
    }

    /// Skips what is left of a line an earlier match ended inside, as far as it has arrived.
    fn skip_to_next_line(&mut self) {
        if !self.skip_rest_of_line {
            return;
        }
        match self.received[self.window..]
            .iter()
            .position(|&b| b == b'\n')
        {
            Some(nl) => {
                self.window += nl + 1;
                self.skip_rest_of_line = false;
            }
            None => self.window = self.received.len(),
        }
    }

    /// Marks what a matched expectation used up; the next step starts after it.
    fn use_up(&mut self, expectation: &Expectation, at_close: bool) {
        let rest = &self.received[self.window..];
        let used = expectation.consumed(rest, at_close).unwrap_or(Consumed {
            end: rest.len(),
            rest_of_line: false,
        });
        self.matched = (self.window, self.window + used.end);
        self.window += used.end;
        self.skip_rest_of_line = used.rest_of_line;
        self.identified = true;
        if let Some(t) = &mut self.transcript {
            let (from, to) = self.matched;
            t.push(DialogEvent::Matched {
                step: self.step,
                expectation: expectation.to_string(),
                used: excerpt(&self.received[from..to]),
            });
        }
    }

    /// The failure of an expect step that ended without a match, recorded as such.
    fn unmatched(
        &mut self,
        expectation: &Expectation,
        end: ExpectEnd,
        why: Option<String>,
    ) -> Failure {
        self.expect_end = Some(end);
        self.record_unmatched(expectation, end);
        self.mismatch(expectation, why)
    }

    fn record_unmatched(&mut self, expectation: &Expectation, end: ExpectEnd) {
        let step = self.step;
        let received = &self.received[self.window..];
        if let Some(t) = &mut self.transcript {
            t.push(DialogEvent::Unmatched {
                step,
                expectation: expectation.to_string(),
                received: excerpt(received),
                end,
            });
        }
    }

    /// Adds an event to the transcript; the event is not even made when untraced.
    fn record(&mut self, event: impl FnOnce() -> DialogEvent) {
        if let Some(t) = &mut self.transcript {
            t.push(event());
        }
    }

    /// `template` with the capture groups of `matcher`'s regex on the data the last expect
    /// used up (a line regex: on the line it matched); as written if the regex does not
    /// match there (an "any" expectation matched by another of its matchers).
    fn expand(&self, matcher: Option<&Matcher>, template: &[u8]) -> Vec<u8> {
        let (from, to) = self.matched;
        let used = &self.received[from..to];
        let captures = matcher.and_then(|m| match m {
            Matcher::Line(re) => {
                let line = matching_line(re, used, true)?;
                re.captures(&used[line.text.0..line.text.1])
            }
            other => other.capture_regex()?.captures(used),
        });
        let Some(captures) = captures else {
            return template.to_vec();
        };
        let mut out = Vec::with_capacity(template.len() + 32);
        captures.expand(template, &mut out);
        out
    }

    /// The failure when a read waited in vain: silence before any data is a read timeout;
    /// after some data it is a wrong answer (the data is there, just not what was expected).
    fn read_timed_out(
        &mut self,
        expectation: &Expectation,
        has_data: bool,
        by_deadline: bool,
    ) -> Failure {
        let end = if by_deadline {
            ExpectEnd::Deadline
        } else {
            ExpectEnd::Idle
        };
        if !has_data {
            self.expect_end = Some(end);
            self.record_unmatched(expectation, end);
            return Failure::new(
                Reason::ReadTimeout,
                format!(
                    "no data from {} within {:.3} s",
                    self.peer_text(),
                    self.spec.limits.deadline.as_secs_f64()
                ),
            );
        }
        let why = if by_deadline {
            format!(
                "deadline of {:.3} s reached",
                self.spec.limits.deadline.as_secs_f64()
            )
        } else {
            format!(
                "server went quiet for {:.3} s",
                self.spec.limits.idle_timeout.as_secs_f64()
            )
        };
        self.unmatched(expectation, end, Some(why))
    }

    fn peer_text(&self) -> String {
        self.peer
            .map_or_else(|| self.probe.target_text.clone(), |p| p.to_string())
    }

    fn mismatch(&self, expectation: &Expectation, why: Option<String>) -> Failure {
        let got = excerpt(&self.received[self.window..]);
        let mut message = format!("expected {expectation}, got \"{got}\"");
        if let Some(why) = why {
            message.push_str(&format!(" ({why})"));
        }
        Failure::new(Reason::UnexpectedResponse, message)
    }

    /// Sends the quit string and gives the server a bounded chance to read it and hang up.
    /// Either way the socket is then dropped, which resets it (linger 0): no TIME_WAIT here.
    async fn close(&mut self, mut conn: Conn) {
        let Some(quit) = self.spec.quit.as_deref() else {
            return;
        };
        let grace = QUIT_GRACE.min(self.remaining());
        let polite = async {
            conn.write_all(quit).await?;
            // The answer to the quit (`221 bye`) is read and discarded, but bounded like
            // everything else: a server that keeps talking is not waited for.
            let mut sink = [0u8; 512];
            let mut budget = QUIT_DRAIN_BYTES;
            while budget > 0 {
                let want = budget.min(sink.len());
                match conn.read(&mut sink[..want]).await {
                    Ok(0) => break,
                    Ok(n) => budget -= n,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
            }
            io::Result::Ok(())
        };
        let _ = timeout(grace, polite).await;
    }

    fn finish(self, outcome: Result<String, Failure>) -> ProbeResult {
        let spec = self.spec;
        let (mut state, mut reason, mut message) = match outcome {
            Ok(matched) => (State::Ok, None, matched),
            Err(f) => {
                let state = match f.reason {
                    Reason::Refused => spec.states.refused,
                    Reason::UnexpectedResponse => spec.states.mismatch,
                    Reason::InvalidSetup | Reason::LocalResources => State::Unknown,
                    _ => State::Critical,
                };
                (state, Some(f.reason), f.message)
            }
        };
        if state == State::Ok && reason.is_none() {
            if message.is_empty() {
                message = match self.peer {
                    Some(peer) => format!("{peer} answered"),
                    None => format!("{} answered", self.probe.target_text),
                };
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
                    // The chain's earliest expiry decides, which may not be the leaf's.
                    let when = tls::rfc3339(info.earliest_expiry_unix);
                    message = match left {
                        // `days_left` rounds down: -1 means "within the last day".
                        -1 => format!("certificate expired less than a day ago ({when})"),
                        l if l < 0 => format!("certificate expired {} days ago ({when})", -l - 1),
                        l => format!("certificate expires in {l} days ({when})"),
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
        ProbeResult {
            state,
            reason,
            message,
            target: self.probe.target_text.clone(),
            peer: self.peer,
            failed_attempts: self.failed_attempts,
            timings: self.timings,
            received: excerpt(&self.received),
            bytes_received: self.received.len(),
            truncated: self.truncated,
            tls: self.tls,
            expect_end: self.expect_end,
            transcript: self.transcript.unwrap_or_default(),
        }
    }
}

/// The matcher whose capture groups a `SendExpanded` after `before` uses: the first regex
/// (plain or by line) of the expect step right before it.
pub(crate) fn capture_matcher(before: &[Step]) -> Option<&Matcher> {
    match before.last() {
        Some(Step::Expect(e)) => e.matchers.iter().find(|m| m.capture_regex().is_some()),
        _ => None,
    }
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::Any => "",
        Family::V4 => "IPv4 ",
        Family::V6 => "IPv6 ",
    }
}

fn no_address(target: &crate::Target, family: Family) -> Failure {
    Failure::new(
        Reason::ResolutionFailed,
        format!("{} has no {}address", target.host, family_name(family)),
    )
}

fn no_address_for_source(target: &crate::Target, source: Option<IpAddr>) -> Failure {
    let source = source.map_or_else(String::new, |s| s.to_string());
    Failure::new(
        Reason::ResolutionFailed,
        format!(
            "{} has no address of the source address's family ({source})",
            target.host
        ),
    )
}

/// Whether an error is portwarden's own host running out of something (descriptors, buffers,
/// ephemeral ports, memory) rather than anything the target did.
fn is_local_exhaustion(e: &io::Error) -> bool {
    if matches!(
        e.kind(),
        io::ErrorKind::AddrNotAvailable | io::ErrorKind::OutOfMemory
    ) {
        return true;
    }
    // EMFILE, ENFILE and ENOBUFS have no stable io::ErrorKind yet.
    #[cfg(unix)]
    const CODES: &[i32] = &[libc::EMFILE, libc::ENFILE, libc::ENOBUFS];
    // WSAEMFILE, WSAENOBUFS.
    #[cfg(windows)]
    const CODES: &[i32] = &[10024, 10055];
    #[cfg(not(any(unix, windows)))]
    const CODES: &[i32] = &[];
    e.raw_os_error().is_some_and(|c| CODES.contains(&c))
}

/// A local resource failure, worded so that nobody blames the target for it.
fn local_failure(e: &io::Error, addr: SocketAddr, doing: &str) -> Failure {
    Failure::new(
        Reason::LocalResources,
        format!(
            "portwarden's host is out of resources while {doing} for {addr}: {e} \
             (a local limit, says nothing about the target)"
        ),
    )
}

/// Classifies a failed read or write by its kind (and, on TLS, by the rustls error inside).
fn io_failure(e: &io::Error, doing: &str) -> Failure {
    if let Some(detail) = tls::describe_tls_error(e) {
        return Failure::new(
            Reason::TlsFailure,
            format!("TLS error while {doing}: {detail}"),
        );
    }
    if is_local_exhaustion(e) {
        return Failure::new(
            Reason::LocalResources,
            format!(
                "portwarden's host is out of resources while {doing}: {e} \
                 (a local limit, says nothing about the target)"
            ),
        );
    }
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => Failure::new(
            Reason::Reset,
            format!("connection reset by the server while {doing}"),
        ),
        io::ErrorKind::TimedOut => Failure::new(
            Reason::ReadTimeout,
            format!("connection timed out while {doing}"),
        ),
        _ => Failure::new(
            Reason::ConnectFailed,
            format!("connection failed while {doing}: {e}"),
        ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Matcher;
    use crate::target::Target;
    use tokio::io::AsyncWriteExt;

    /// Issue 14: "Too many open files" was a CRITICAL about the target.
    #[cfg(unix)]
    #[test]
    fn local_exhaustion_errors_are_ours_and_others_are_not() {
        for code in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::EADDRNOTAVAIL,
            libc::ENOMEM,
        ] {
            let e = io::Error::from_raw_os_error(code);
            assert!(is_local_exhaustion(&e), "{e}");
        }
        for code in [
            libc::ECONNREFUSED,
            libc::ENETUNREACH,
            libc::EHOSTUNREACH,
            libc::ECONNRESET,
        ] {
            let e = io::Error::from_raw_os_error(code);
            assert!(!is_local_exhaustion(&e), "{e}");
        }
    }

    /// No host name here resolves to a refusing address followed by a listening one
    /// (/etc/hosts has `localhost` as 127.0.0.1 only), so the list is handed over directly.
    #[tokio::test]
    async fn falls_back_to_the_next_address_after_a_refusal() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = s.write_all(b"220 here\r\n").await;
                    tokio::time::sleep(Duration::from_secs(2)).await;
                });
            }
        });
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut spec = ProbeSpec::connect(Target {
            host: Host::Name("dual.test".into()),
            port: open.port(),
        });
        spec.steps
            .push(Step::Expect(Expectation::one(Matcher::Prefix(
                b"220".to_vec(),
            ))));
        let probe = Probe::new(spec).unwrap();
        let mut session = Session::new(&probe, false);
        let outcome = session.connect_and_talk(&[closed, open]).await;
        let r = session.finish(outcome);
        assert_eq!((r.state, r.reason), (State::Ok, None), "{}", r.message);
        assert_eq!(r.peer, Some(open));
        assert_eq!(r.failed_attempts.len(), 1);
        assert_eq!(r.failed_attempts[0].addr, closed);
        assert_eq!(r.failed_attempts[0].reason, Reason::Refused);
        assert_eq!(r.received, r"220 here\r\n");
    }

    #[tokio::test]
    async fn refusal_on_every_address_lists_each_attempt() {
        let closed: Vec<SocketAddr> = (0..2)
            .map(|_| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
            })
            .collect();
        let spec = ProbeSpec::connect(Target {
            host: Host::Name("dual.test".into()),
            port: closed[0].port(),
        });
        let probe = Probe::new(spec).unwrap();
        let mut session = Session::new(&probe, false);
        let outcome = session.connect_and_talk(&closed).await;
        let r = session.finish(outcome);
        assert_eq!(r.reason, Some(Reason::Refused));
        assert_eq!(r.peer, None);
        let tried: Vec<SocketAddr> = r.failed_attempts.iter().map(|a| a.addr).collect();
        assert_eq!(tried, closed);
    }

    #[test]
    fn excerpt_escapes_and_cuts() {
        assert_eq!(excerpt(b"220 ok\r\n"), r"220 ok\r\n");
        let long = vec![b'a'; EXCERPT_BYTES + 1];
        let text = excerpt(&long);
        assert!(text.ends_with("..."));
        assert_eq!(text.len(), EXCERPT_BYTES + 3);
    }
}
