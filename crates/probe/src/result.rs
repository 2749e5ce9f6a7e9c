//! What a probe found: a [`ProbeResult`] with a state, a reason from a closed set, timings,
//! the peer that answered, an excerpt of what it said and its TLS details.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Serialize, Serializer};

/// The verdict, ordered from best to worst except `Unknown` (Nagios' order of exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Ok,
    Warning,
    Critical,
    /// The probe could not decide (bad setup or exhausted resources on our side, not the
    /// server's fault).
    Unknown,
}

impl State {
    /// The Nagios plugin exit code: 0, 1, 2, 3.
    pub fn exit_code(self) -> i32 {
        match self {
            State::Ok => 0,
            State::Warning => 1,
            State::Critical => 2,
            State::Unknown => 3,
        }
    }

    /// The worse of two states; critical outranks unknown, as Nagios' own plugins combine them.
    pub fn worst(self, other: State) -> State {
        fn rank(s: State) -> u8 {
            match s {
                State::Ok => 0,
                State::Warning => 1,
                State::Unknown => 2,
                State::Critical => 3,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        })
    }
}

/// Why a probe is not simply OK. A closed set: scripts and the daemon match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The name did not resolve, or not to an address of the chosen family.
    ResolutionFailed,
    /// Every address refused the connection.
    Refused,
    /// No address completed the TCP handshake in time.
    ConnectTimeout,
    /// The connection failed for another reason (unreachable, source address unusable, an
    /// unexpected socket error mid-dialog).
    ConnectFailed,
    /// The server said nothing before the deadline.
    ReadTimeout,
    /// The connection was reset (also after part of an answer: the server did not finish).
    Reset,
    /// The server closed the connection without sending anything.
    NoData,
    /// The server answered, but not what was expected.
    UnexpectedResponse,
    /// The TLS handshake failed (protocol, certificate verification, name mismatch), or the
    /// TLS session failed later (a fatal alert, e.g. the client certificate was rejected).
    TlsFailure,
    /// The STARTTLS negotiation was refused or not offered.
    StarttlsRefused,
    /// A certificate of the chain expires within the thresholds, or has expired.
    CertificateExpiring,
    /// The port must be closed, but it accepted a connection.
    MustBeClosedButOpen,
    /// The whole probe took longer than a response-time threshold.
    SlowResponse,
    /// The local socket on the port belongs to another program than expected (or nothing
    /// local listens there). Set by the owner check, not by the probe itself.
    WrongOwner,
    /// The local socket's owner could not be read (missing rights). Set by the owner check.
    OwnerUnknown,
    /// The probe could not be set up (unreadable CA file, bad key); not the server's fault.
    InvalidSetup,
    /// portwarden's own host ran out of sockets, ports, buffers or memory (EMFILE, ENFILE,
    /// ENOBUFS, EADDRNOTAVAIL, ENOMEM); says nothing about the target. State unknown.
    LocalResources,
}

impl Reason {
    /// The snake_case name used in JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ResolutionFailed => "resolution_failed",
            Reason::Refused => "refused",
            Reason::ConnectTimeout => "connect_timeout",
            Reason::ConnectFailed => "connect_failed",
            Reason::ReadTimeout => "read_timeout",
            Reason::Reset => "reset",
            Reason::NoData => "no_data",
            Reason::UnexpectedResponse => "unexpected_response",
            Reason::TlsFailure => "tls_failure",
            Reason::StarttlsRefused => "starttls_refused",
            Reason::CertificateExpiring => "certificate_expiring",
            Reason::MustBeClosedButOpen => "must_be_closed_but_open",
            Reason::SlowResponse => "slow_response",
            Reason::WrongOwner => "wrong_owner",
            Reason::OwnerUnknown => "owner_unknown",
            Reason::InvalidSetup => "invalid_setup",
            Reason::LocalResources => "local_resources",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long each phase took; a phase that did not happen is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Name resolution; zero for a literal address.
    #[serde(serialize_with = "secs_opt")]
    pub resolve: Option<Duration>,
    /// TCP handshake of the address that answered (or the last one tried).
    #[serde(serialize_with = "secs_opt")]
    pub connect: Option<Duration>,
    /// All TLS handshakes, implicit or STARTTLS.
    #[serde(serialize_with = "secs_opt")]
    pub tls: Option<Duration>,
    /// From the start of the probe to the first byte received.
    #[serde(serialize_with = "secs_opt")]
    pub first_byte: Option<Duration>,
    /// From the start of the probe to the verdict (the polite quit is not counted).
    #[serde(serialize_with = "secs")]
    pub total: Duration,
}

/// One address that was tried and failed before the verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub addr: SocketAddr,
    pub reason: Reason,
    pub error: String,
}

/// The TLS session and the certificate chain the server presented.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsInfo {
    /// `"TLSv1.3"` or `"TLSv1.2"`.
    pub version: String,
    pub cipher: String,
    /// The server name sent in SNI, if any.
    pub sni: Option<String>,
    /// Whether the chain was verified (false with `Verify::Insecure`).
    pub verified: bool,
    /// Subject of the leaf certificate, RFC 4514 style.
    pub subject: String,
    /// Issuer of the leaf certificate.
    pub issuer: String,
    /// The leaf's notAfter, RFC 3339.
    pub not_after: String,
    /// The earliest notAfter of the whole chain, Unix seconds.
    pub earliest_expiry_unix: i64,
    /// The latest notAfter of the presented chain, Unix seconds.
    pub last_expiry_unix: i64,
    /// Whole days until the earliest expiry (negative once expired).
    pub days_left: i64,
    /// Number of certificates presented.
    pub chain_len: usize,
    /// SHA-256 of the leaf certificate's DER, lowercase hex.
    pub leaf_sha256: String,
    /// The leaf's subject as Go's `pkix.Name.String()` writes it (RFC 2253: most specific
    /// attribute first, `,` between, `+` inside a multi-valued RDN), as blackbox_exporter
    /// labels `probe_ssl_last_chain_info`.
    pub leaf_subject_rfc2253: String,
    /// The leaf's issuer, written the same way.
    pub leaf_issuer_rfc2253: String,
    /// The leaf's DNS subject alternative names, in certificate order.
    pub leaf_dns_names: Vec<String>,
    /// When the verified chain stops being valid, as Go's verified chains give it: over every
    /// path from the leaf to a trusted root valid now, the earliest notAfter (the root's
    /// included); the latest of those. `None` when the chain was not verified. blackbox's
    /// `probe_ssl_last_chain_expiry_timestamp_seconds`.
    pub verified_chain_expiry_unix: Option<i64>,
}

/// How an expect step that never matched ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectEnd {
    /// The data received can no longer match (a prefix or a reply parser decided).
    Mismatch,
    /// The server closed the connection before the expectation matched.
    Closed,
    /// The probe's deadline came first.
    Deadline,
    /// The server fell silent for the idle timeout.
    Idle,
    /// `max_bytes` were read without a match.
    MaxBytes,
    /// Reading failed: a reset or a TLS error.
    ReadError,
}

impl ExpectEnd {
    /// Whether the server's own answer proved the expectation wrong, rather than a limit or
    /// an error ending the wait (blackbox_exporter's `probe_failed_due_to_regex`).
    pub fn answer_was_wrong(self) -> bool {
        matches!(self, ExpectEnd::Mismatch | ExpectEnd::Closed)
    }
}

/// One step of the dialog as it happened, recorded by [`crate::Probe::run_traced`] (the
/// `/probe?debug=true` log). `step` is the index in [`crate::ProbeSpec::steps`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DialogEvent {
    /// A send step wrote these bytes (escaped for display).
    Sent { step: usize, data: String },
    /// An expect step matched; `used` is the data it used up (skipped lines included),
    /// escaped for display.
    Matched {
        step: usize,
        expectation: String,
        used: String,
    },
    /// An expect step ended without a match: what it was waiting for, what it had
    /// received since the step before, and how it ended.
    Unmatched {
        step: usize,
        expectation: String,
        received: String,
        end: ExpectEnd,
    },
    /// The TLS handshake of this step succeeded.
    TlsStarted { step: usize, version: String },
}

/// Everything a probe found.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub state: State,
    /// `None` when everything is as expected.
    pub reason: Option<Reason>,
    /// One line for people: what happened, naming the address and what was received.
    pub message: String,
    /// The target as given (`host:port`).
    pub target: String,
    /// The address that answered.
    pub peer: Option<SocketAddr>,
    /// Addresses tried before `peer` (or all of them, when none answered).
    pub failed_attempts: Vec<Attempt>,
    pub timings: Timings,
    /// What the server sent, escaped for display and cut to a readable length.
    pub received: String,
    /// How many bytes were read in all.
    pub bytes_received: usize,
    /// Whether reading stopped because `max_bytes` was reached.
    pub truncated: bool,
    pub tls: Option<TlsInfo>,
    /// How the expect step that failed the probe ended, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect_end: Option<ExpectEnd>,
    /// The dialog step by step; only filled by [`crate::Probe::run_traced`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transcript: Vec<DialogEvent>,
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn secs_opt<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_prefers_critical_then_unknown_then_warning() {
        assert_eq!(State::Ok.worst(State::Warning), State::Warning);
        assert_eq!(State::Warning.worst(State::Unknown), State::Unknown);
        assert_eq!(State::Critical.worst(State::Unknown), State::Critical);
        assert_eq!(State::Critical.worst(State::Ok), State::Critical);
    }

    #[test]
    fn reason_names_match_their_json() {
        for r in [Reason::Refused, Reason::MustBeClosedButOpen, Reason::NoData] {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
        }
    }
}
