//! portwarden's probe engine: does the right service answer on a TCP port?
//!
//! Data enters as a [`ProbeSpec`] (plain data, filled by the CLI, the config or a
//! [`presets::Preset`]), becomes a [`Probe`] once checked and prepared (regexes compiled,
//! TLS configuration and CA files loaded), and every [`Probe::run`] returns a
//! [`ProbeResult`]. No daemon dependencies: the CLI, the scheduler and the `/probe`
//! endpoint all share this crate.
//!
//! Layout:
//! - [`target`]: `host:port` parsing, address families, resolution.
//! - [`escape`]: `\r \n \t \\ \0 \xHH` escapes and hex byte strings.
//! - [`expect`]: matchers (substring, prefix, regex, bytes, protocol parsers) and verdicts.
//! - [`reply`]: small parsers for line-based protocol replies (SMTP, FTP, POP3, IMAP).
//! - [`starttls`]: the per-protocol exchange before a STARTTLS handshake.
//! - [`presets`]: protocol presets, one module per protocol family.
//! - [`spec`] / [`result`]: what a probe does / what it found.
//! - `engine`: the connection itself; `tls`: rustls set-up and certificate details.
//!
//! Its log lines keep the targets they had before the package was renamed `portwarden-probe`
//! (`probe::tls`), so log text and `PORTWARDEN_LOG` filters are as before.

pub mod escape;
pub mod expect;
#[doc(hidden)]
pub mod fuzzing;
pub mod presets;
pub mod reply;
pub mod result;
pub mod spec;
pub mod starttls;
pub mod target;

mod engine;
mod tls;

pub use expect::{Expectation, MatchMode, Matcher, Verdict};
pub use result::{DialogEvent, ExpectEnd, ProbeResult, Reason, State, Timings, TlsInfo};
pub use spec::{
    CertDays, ClientCert, Limits, ProbeSpec, StateMap, Step, Thresholds, TlsSpec, TlsVersion,
    Verify,
};
pub use starttls::StartTls;
pub use target::{Family, Host, Target};
pub use tls::AcceptAnyCertificate;

/// A probe spec that was checked and prepared; cheap to run many times.
#[derive(Debug, Clone)]
pub struct Probe {
    spec: ProbeSpec,
    /// TLS configuration and server name, when any step speaks TLS.
    tls: Option<tls::PreparedTls>,
    /// `spec.target` as text, formatted once instead of on every result.
    target_text: String,
    /// Whether the dialog writes twice in a row (or speaks TLS), so Nagle must be off.
    nodelay: bool,
    /// Whether what the server said and no expect step used stays for the next expect step
    /// across a send (every expect reads line by line, as blackbox does: lines that do not
    /// match are skipped anyway); otherwise a send drops it (see the engine's `send`).
    keeps_unused_data: bool,
}

/// A probe that cannot be run as specified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A limit is zero or out of range.
    #[error("{0}")]
    BadLimit(String),
    /// TLS could not be set up (unreadable CA file, bad client key, invalid SNI name).
    #[error("{0}")]
    Tls(String),
    /// An expect step has no matcher: "any of nothing" and "all of nothing" mean nothing.
    #[error("expect step {step} has no matcher")]
    EmptyExpectation { step: usize },
    /// A send step expands capture groups but the step before it is no regex expect.
    #[error("send step {step} expands capture groups, but step {} is no regex expect", step - 1)]
    ExpansionWithoutRegex { step: usize },
}

/// A TLS client configuration prepared once (CA and client certificate files read, the
/// versions chosen) for many probes of the same settings, e.g. one `/probe` module.
#[derive(Debug, Clone)]
pub struct TlsClient {
    config: std::sync::Arc<rustls::ClientConfig>,
    anchors: std::sync::Arc<tls::Anchors>,
    verifies: bool,
}

impl TlsClient {
    /// Reads the files `spec` names. Errors name the file and the problem. `spec.sni` and
    /// `spec.cert_days` are not part of it (each probe's own spec carries them).
    pub fn new(spec: &TlsSpec) -> Result<Self, SpecError> {
        let (config, anchors) = tls::client_config(spec).map_err(SpecError::Tls)?;
        Ok(Self {
            config,
            anchors,
            verifies: !matches!(spec.verify, Verify::Insecure),
        })
    }
}

impl Probe {
    /// Checks `spec` and prepares what every run shares.
    pub fn new(spec: ProbeSpec) -> Result<Self, SpecError> {
        Self::build(spec, None)
    }

    /// As [`Probe::new`], with TLS from `client` instead of `spec.tls`'s verification,
    /// client certificate and versions (which are not read): no file is touched. The server
    /// name still comes from `spec.tls.sni` and the target.
    pub fn with_tls_client(spec: ProbeSpec, client: &TlsClient) -> Result<Self, SpecError> {
        Self::build(spec, Some(client))
    }

    fn build(spec: ProbeSpec, client: Option<&TlsClient>) -> Result<Self, SpecError> {
        let l = &spec.limits;
        if l.deadline.is_zero() {
            return Err(SpecError::BadLimit(
                "deadline must be greater than 0".into(),
            ));
        }
        if l.connect_timeout.is_zero() {
            return Err(SpecError::BadLimit(
                "connect timeout must be greater than 0".into(),
            ));
        }
        if l.idle_timeout.is_zero() {
            return Err(SpecError::BadLimit(
                "idle timeout must be greater than 0".into(),
            ));
        }
        if l.max_bytes == 0 {
            return Err(SpecError::BadLimit("max bytes must be at least 1".into()));
        }
        for (i, step) in spec.steps.iter().enumerate() {
            if matches!(step, Step::Expect(e) if e.matchers.is_empty()) {
                return Err(SpecError::EmptyExpectation { step: i + 1 });
            }
            if matches!(step, Step::SendExpanded(_))
                && engine::capture_matcher(&spec.steps[..i]).is_none()
            {
                return Err(SpecError::ExpansionWithoutRegex { step: i + 1 });
            }
        }
        let tls = if spec.uses_tls() {
            let prepared = match client {
                None => tls::PreparedTls::new(&spec.tls, &spec.target.host),
                Some(c) => tls::PreparedTls::with_config(
                    c.config.clone(),
                    c.anchors.clone(),
                    c.verifies,
                    &spec.tls,
                    &spec.target.host,
                ),
            };
            Some(prepared.map_err(SpecError::Tls)?)
        } else {
            None
        };
        // Nagle holds back a small write while an earlier one is unacknowledged; a single
        // write (one command, or just the quit) is never delayed, so the common banner
        // check saves the system call.
        let writes = spec
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Send(_) | Step::SendExpanded(_)))
            .count()
            + usize::from(spec.quit.is_some());
        let nodelay = spec.uses_tls() || writes > 1;
        let keeps_unused_data = spec.steps.iter().all(|s| match s {
            Step::Expect(e) => e.matchers.iter().all(|m| matches!(m, Matcher::Line(_))),
            _ => true,
        });
        Ok(Self {
            target_text: spec.target.to_string(),
            spec,
            tls,
            nodelay,
            keeps_unused_data,
        })
    }

    /// The spec this probe runs.
    pub fn spec(&self) -> &ProbeSpec {
        &self.spec
    }

    /// Runs the probe once. Never takes longer than the deadline, the polite quit included.
    pub async fn run(&self) -> ProbeResult {
        engine::Session::new(self, false).run().await
    }

    /// Runs the probe once and records its dialog step by step in
    /// [`ProbeResult::transcript`] (for debugging a check; `run` records nothing).
    pub async fn run_traced(&self) -> ProbeResult {
        engine::Session::new(self, true).run().await
    }
}
