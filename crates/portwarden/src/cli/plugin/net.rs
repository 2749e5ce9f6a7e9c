//! The plugins' side of a connection, as monitoring-plugins' netutils does it: connect to
//! each address in turn, one deadline for the whole run (their `alarm()`), blocking reads,
//! and an optional TLS upgrade in place.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;

/// Which addresses to try (`-4` / `-6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    Any,
    V4,
    V6,
}

/// Why a connection could not be made, worded as netutils prints it.
#[derive(Debug)]
pub(super) enum ConnectError {
    /// The name did not resolve (netutils prints the resolver's words; UNKNOWN).
    Resolve(String),
    /// No address accepted: `connect to address H and port P: <strerror>` (CRITICAL).
    Connect(String),
    /// The deadline passed (the plugins' alarm).
    Timeout,
}

/// The plugins' alarm message; their exit state is CRITICAL.
pub(super) fn timeout_line(seconds: u32) -> String {
    format!("CRITICAL - Socket timeout after {seconds} seconds")
}

/// The error's text without Rust's ` (os error N)` suffix: what C's strerror prints.
fn strerror(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// The resolver's words, as netutils prints `gai_strerror`: std wraps them in its own.
fn gai_strerror(e: &io::Error) -> String {
    let text = strerror(e);
    match text.strip_prefix("failed to lookup address information: ") {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

enum Transport {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

/// What went wrong on an open connection.
#[derive(Debug)]
pub(super) enum IoError {
    /// The deadline passed.
    Timeout,
    /// Reset, broken pipe, TLS alert: the plugins' `recv()`/`send()` returning -1.
    Failed,
}

impl From<io::Error> for IoError {
    fn from(e: io::Error) -> Self {
        if is_timeout(&e) {
            IoError::Timeout
        } else {
            IoError::Failed
        }
    }
}

/// An open connection with the run's deadline.
pub(super) struct Conn {
    transport: Transport,
    /// Bytes read past the last line handed out.
    pending: Vec<u8>,
    deadline: Instant,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("tls", &matches!(self.transport, Transport::Tls(_)))
            .field("pending", &self.pending.len())
            .finish()
    }
}

/// Connects to `host` (as written) on `port`, trying each address of `family` in turn.
pub(super) fn connect(
    host: &str,
    port: u16,
    family: Family,
    deadline: Instant,
) -> Result<Conn, ConnectError> {
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => (host, port)
            .to_socket_addrs()
            .map_err(|e| ConnectError::Resolve(gai_strerror(&e)))?
            .collect(),
    };
    let wanted = |a: &&SocketAddr| match family {
        Family::Any => true,
        Family::V4 => a.is_ipv4(),
        Family::V6 => a.is_ipv6(),
    };
    let addrs: Vec<&SocketAddr> = addrs.iter().filter(wanted).collect();
    if addrs.is_empty() {
        // getaddrinfo with the family set finds nothing: its EAI_NONAME.
        return Err(ConnectError::Resolve("Name or service not known".into()));
    }
    let mut last = io::Error::from(io::ErrorKind::AddrNotAvailable);
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ConnectError::Timeout);
        }
        match TcpStream::connect_timeout(addr, left) {
            Ok(stream) => {
                // The dialog writes line by line and waits for each answer.
                let _ = stream.set_nodelay(true);
                return Ok(Conn {
                    transport: Transport::Plain(stream),
                    pending: Vec::new(),
                    deadline,
                });
            }
            Err(e) if is_timeout(&e) => return Err(ConnectError::Timeout),
            Err(e) => last = e,
        }
    }
    Err(ConnectError::Connect(format!(
        "connect to address {host} and port {port}: {}",
        strerror(&last)
    )))
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match &self.transport {
            Transport::Plain(s) => s,
            Transport::Tls(s) => s.get_ref(),
        }
    }

    /// Lets the next blocking call run until the deadline at most.
    fn arm(&self) -> Result<(), IoError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(1) {
            return Err(IoError::Timeout);
        }
        self.tcp().set_read_timeout(Some(left))?;
        self.tcp().set_write_timeout(Some(left))?;
        Ok(())
    }

    /// Writes all of `data`.
    pub(super) fn send(&mut self, data: &[u8]) -> Result<(), IoError> {
        self.arm()?;
        match &mut self.transport {
            Transport::Plain(s) => s.write_all(data)?,
            Transport::Tls(s) => {
                s.write_all(data)?;
                s.flush()?;
            }
        }
        Ok(())
    }

    /// One read of whatever is there (up to `max` bytes); empty at end of stream.
    pub(super) fn recv_once(&mut self, max: usize) -> Result<Vec<u8>, IoError> {
        if !self.pending.is_empty() {
            let n = self.pending.len().min(max);
            return Ok(self.pending.drain(..n).collect());
        }
        self.read_socket(max)
    }

    /// One line, `\n` included; `None` when the stream ends first (or the line is longer
    /// than `max`, which netutils' fixed buffer cannot hold either).
    pub(super) fn recv_line(&mut self, max: usize) -> Result<Option<Vec<u8>>, IoError> {
        loop {
            if let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                return Ok(Some(self.pending.drain(..=i).collect()));
            }
            if self.pending.len() >= max {
                return Ok(None);
            }
            let chunk = self.read_socket(4096)?;
            if chunk.is_empty() {
                return Ok(None);
            }
            self.pending.extend_from_slice(&chunk);
        }
    }

    /// One read from the socket (or the TLS session), bypassing `pending`.
    fn read_socket(&mut self, max: usize) -> Result<Vec<u8>, IoError> {
        self.arm()?;
        let mut buf = vec![0u8; max];
        let n = loop {
            let got = match &mut self.transport {
                Transport::Plain(s) => s.read(&mut buf),
                Transport::Tls(s) => s.read(&mut buf),
            };
            match got {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A TLS peer that hangs up without close_notify: the end, as for OpenSSL.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break 0,
                Err(e) => return Err(e.into()),
            }
        };
        buf.truncate(n);
        Ok(buf)
    }

    /// Upgrades the connection to TLS in place (no certificate verification, no SNI, as
    /// the plugins' OpenSSL set-up); returns the server's certificate chain.
    pub(super) fn start_tls(self) -> Result<(Conn, Vec<CertificateDer<'static>>), IoError> {
        let Transport::Plain(mut tcp) = self.transport else {
            return Err(IoError::Failed);
        };
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(IoError::Timeout);
        }
        tcp.set_read_timeout(Some(left))?;
        tcp.set_write_timeout(Some(left))?;
        let mut tls = super::tls::client_connection().ok_or(IoError::Failed)?;
        while tls.is_handshaking() {
            tls.complete_io(&mut tcp)?;
        }
        let chain = tls
            .peer_certificates()
            .map(|c| c.iter().map(|d| d.clone().into_owned()).collect())
            .unwrap_or_default();
        Ok((
            Conn {
                transport: Transport::Tls(Box::new(rustls::StreamOwned::new(tls, tcp))),
                // Bytes the server sent before the handshake are not part of the session.
                pending: Vec::new(),
                deadline: self.deadline,
            },
            chain,
        ))
    }
}
