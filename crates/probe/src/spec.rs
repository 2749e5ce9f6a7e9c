//! What a probe does: the plain description ([`ProbeSpec`]) that the CLI, the config and
//! presets fill in. [`crate::Probe::new`] checks it and prepares the expensive parts once.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::expect::Expectation;
use crate::result::State;
use crate::starttls::StartTls;
use crate::target::{Family, Target};

/// One step of the dialog on the connection, run in order.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Write these bytes after expanding `$1`, `$name`, `${name}` (and `$$` for a dollar)
    /// with the capture groups of the first regex of the expect step right before it, on
    /// the data that step matched; a group that took no part expands to nothing (the regex
    /// crate's `Captures::expand`, the same syntax as Go's `Regexp.Expand`). Checked by
    /// [`crate::Probe::new`]: the step before must be an expect with a regex.
    /// blackbox_exporter's `send` after an `expect` in one `query_response` entry.
    SendExpanded(Vec<u8>),
    /// Read until the expectation is decided.
    Expect(Expectation),
    /// Negotiate STARTTLS for this protocol, then do the TLS handshake.
    StartTls(StartTls),
    /// Do the TLS handshake now, on the connection as it stands: no negotiation of its own
    /// (the steps before it asked the server, e.g. a `Send` of `STARTTLS` and an `Expect` of
    /// its go-ahead). blackbox_exporter's `query_response` `starttls: true`. The steps after
    /// it run inside TLS.
    Tls,
}

/// Every bound a probe respects; none of them can be switched off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time allowed for one address's TCP handshake.
    pub connect_timeout: Duration,
    /// Time allowed for the whole probe, resolution to verdict, the polite quit included.
    pub deadline: Duration,
    /// Once data has arrived, how long a silence ends the read of an undecided expectation.
    pub idle_timeout: Duration,
    /// Most bytes read from the server over the whole dialog.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(2),
            max_bytes: 64 * 1024,
        }
    }
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Verify {
    /// Against the operating system's trusted roots.
    #[default]
    SystemRoots,
    /// Against the CA certificates in this PEM file only.
    CaFile(PathBuf),
    /// Not at all (explicit opt-in); expiry is still reported.
    Insecure,
}

/// A client certificate and its private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Days-to-expiry thresholds for the earliest-expiring certificate of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertDays {
    /// Fewer days left than this is a warning.
    pub warning: u32,
    /// Fewer days left than this is critical.
    pub critical: u32,
}

/// A TLS protocol version the engine can speak (rustls: 1.2 and 1.3 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// TLS settings, used by implicit TLS and by every STARTTLS step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSpec {
    /// Server name to send and verify; default: the target's host name (none for addresses).
    /// Checked by [`crate::Probe::new`].
    pub sni: Option<String>,
    pub verify: Verify,
    pub client_cert: Option<ClientCert>,
    pub cert_days: Option<CertDays>,
    /// Oldest version offered; default: TLS 1.2.
    pub min_version: Option<TlsVersion>,
    /// Newest version offered; default: TLS 1.3. Below `min_version` is a setup error.
    pub max_version: Option<TlsVersion>,
}

/// Response-time thresholds on the total probe time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Thresholds {
    pub warning: Option<Duration>,
    pub critical: Option<Duration>,
}

/// The state given to outcomes that some users accept (check_tcp's `-r` and `-M`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateMap {
    /// State when every address refused the connection.
    pub refused: State,
    /// State when the server answered something unexpected.
    pub mismatch: State,
}

impl Default for StateMap {
    fn default() -> Self {
        Self {
            refused: State::Critical,
            mismatch: State::Critical,
        }
    }
}

/// Everything one probe does, as plain data.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    pub target: Target,
    pub family: Family,
    /// Local address to connect from; only target addresses of its family are tried.
    pub source: Option<IpAddr>,
    pub limits: Limits,
    /// Do the TLS handshake right after connecting.
    pub implicit_tls: bool,
    pub tls: TlsSpec,
    /// Wait this long after connecting before the dialog starts (check_tcp's `-d`).
    pub send_delay: Duration,
    pub steps: Vec<Step>,
    /// Sent after the verdict to close politely; not part of the measured time. The engine
    /// then waits (at most 500 ms, never past the deadline) for the server to hang up.
    pub quit: Option<Vec<u8>>,
    /// Negative check: the port must refuse (or drop) connections on every address.
    pub must_be_closed: bool,
    pub response_time: Thresholds,
    pub states: StateMap,
}

impl ProbeSpec {
    /// A plain connect check of `target` with default limits.
    pub fn connect(target: Target) -> Self {
        Self {
            target,
            family: Family::Any,
            source: None,
            limits: Limits::default(),
            implicit_tls: false,
            tls: TlsSpec::default(),
            send_delay: Duration::ZERO,
            steps: Vec::new(),
            quit: None,
            must_be_closed: false,
            response_time: Thresholds::default(),
            states: StateMap::default(),
        }
    }

    /// Whether any part of the probe speaks TLS.
    pub fn uses_tls(&self) -> bool {
        self.implicit_tls
            || self
                .steps
                .iter()
                .any(|s| matches!(s, Step::StartTls(_) | Step::Tls))
    }
}
