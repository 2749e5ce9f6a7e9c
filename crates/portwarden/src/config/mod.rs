//! The config file: TOML in, ready-to-run [`Monitor`]s and daemon settings out.
//!
//! Data flow: [`load`] reads a file or a directory of `*.toml` ([`parse`]), parses each file
//! into a spanned tree and deserializes every section on its own into the structs of
//! [`schema`] (`deny_unknown_fields` everywhere), then [`build`] checks every value, applies
//! `[defaults]` and builds a prepared probe per monitor. Every problem on the way is
//! collected, never just the first, and names its file, line, column and key path:
//!
//! ```text
//! portwarden.toml:12:10: monitor "mail": target: port must be 1-65535, got 0
//! ```
//!
//! Layout: [`error`] (problems and positions), [`duration`] (`"30s"`), [`files`] (bounded
//! reading of every file the config is or names), [`schema`] (the config as written),
//! [`parse`] (files to sections), [`build`] (sections to monitors).
//! `docs/config.md` is the reference; `examples/portwarden.toml` shows every option.

mod build;
mod chunks;
mod duration;
mod error;
pub mod files;
mod parse;
mod schema;

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub use error::{ConfigErrors, Problem};
pub use parse::suggest;

use crate::monitor::Monitor;
use error::SourceFile;

/// Where the daemon and `config check` look without `-c`.
pub const DEFAULT_PATH: &str = "/etc/portwarden/portwarden.toml";

/// A checked config, ready to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub daemon: DaemonSettings,
    /// In file order (directory: file-name order, then order within each file); without
    /// those in `unchanged`.
    pub monitors: Vec<Monitor>,
    /// Monitors the caller of [`load_beside`] already runs with this very definition: only
    /// their names are kept, so a reload of 100,000 monitors does not hold a second copy of
    /// each beside the running ones (issue 14.8). Empty from [`load`].
    pub unchanged: Vec<String>,
    /// `[[probe_module]]`s, served by `/probe?module=NAME`.
    pub probe_modules: Vec<ProbeModule>,
    pub notifiers: Vec<NotifierConfig>,
    /// `[firewall]`, or its defaults when absent.
    pub firewall: FirewallSettings,
    /// The files that were read, in order.
    pub files: Vec<PathBuf>,
}

/// `[[probe_module]]`: a probe for `/probe?module=NAME&target=HOST:PORT`, built from a
/// monitor's probe keys; the request supplies the target.
#[derive(Debug, Clone)]
pub struct ProbeModule {
    pub name: String,
    /// The probe as built; its target is a stand-in replaced by each request's.
    pub spec: portwarden_probe::ProbeSpec,
}

/// `[daemon]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSettings {
    /// Address of the HTTP API, dashboard and metrics.
    pub listen: SocketAddr,
    /// Directory for the SQLite store; `None`: the daemon's own default.
    pub state_dir: Option<PathBuf>,
    /// Most checks in flight at once, over all monitors.
    pub max_in_flight: usize,
    /// Most self-healing actions running at once.
    pub max_concurrent_actions: usize,
    /// Where the API's bearer token comes from; `None`: mutations are refused.
    pub api_token: Option<ApiTokenSource>,
    /// Reads need the token too.
    pub read_token: bool,
    /// HTTPS for the API: (certificate chain, key), PEM files.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `blackbox.yml` whose `tcp` modules `/probe` serves; `None`: only `tcp_connect`.
    pub blackbox_config: Option<PathBuf>,
    /// The API's connection limits.
    pub http: crate::api::server::HttpLimits,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        Self {
            listen: schema::default_listen(),
            state_dir: None,
            max_in_flight: schema::default_max_in_flight(),
            max_concurrent_actions: 4,
            api_token: None,
            read_token: false,
            tls: None,
            blackbox_config: None,
            http: crate::api::server::HttpLimits::default(),
        }
    }
}

/// `[daemon] api_token_env` or `api_token_file`: read when the daemon starts (a reload never
/// changes it: the API keeps the token it started with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiTokenSource {
    /// The name of an environment variable.
    Env(String),
    /// A file holding the token.
    File(PathBuf),
}

/// Default place of the firewall baseline (`portwarden firewall baseline save`).
pub const DEFAULT_BASELINE: &str = "/etc/portwarden/firewall.baseline";

/// `[firewall]`: what the firewall guard checks and how it repairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallSettings {
    pub guard: bool,
    /// `None`: auto-detect (or the baseline's backend).
    pub backend: Option<portwarden_firewall::BackendKind>,
    pub policy: portwarden_firewall::Policy,
    /// nftables tables to manage; `None`: the baseline's, else every native table.
    pub tables: Option<Vec<String>>,
    pub baseline: PathBuf,
    /// `None`: restore when a baseline exists, else alert.
    pub on_violation: Option<OnViolation>,
    pub verify_every: std::time::Duration,
    pub watch: bool,
    pub max_repairs_per_hour: u32,
    pub notify: Vec<String>,
}

impl Default for FirewallSettings {
    fn default() -> Self {
        Self {
            guard: true,
            backend: None,
            policy: portwarden_firewall::Policy::default(),
            tables: None,
            baseline: PathBuf::from(DEFAULT_BASELINE),
            on_violation: None,
            verify_every: std::time::Duration::from_secs(30),
            watch: true,
            max_repairs_per_hour: 6,
            notify: Vec::new(),
        }
    }
}

/// What the guard does about a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnViolation {
    /// Tell, change nothing.
    Alert,
    /// Switch the firewall back on with its own means (ufw, firewalld, pf, Windows).
    Enable,
    /// Put the baseline back atomically.
    Restore,
}

/// A `[[notifier]]`: its name, the dispatcher's settings, and the notifier's own (checked by
/// the `portwarden-notify` crate's types).
#[derive(Debug, Clone, PartialEq)]
pub struct NotifierConfig {
    pub name: String,
    pub spec: portwarden_notify::NotifierSpec,
    /// Repeat a problem while it lasts; `None`: never.
    pub remind_every: Option<std::time::Duration>,
    /// After a message, later ones within this window go out together as one grouped message
    /// at its end (alert-storm control and rate limit). Zero: each at once.
    pub group_window: std::time::Duration,
    /// A quiet notifier waits this long after the first event for others to send with it, so
    /// a storm's first burst is one message too. Ignored when `group_window` is zero.
    pub group_wait: std::time::Duration,
}

/// Default `group_wait`: long enough to catch a burst, short enough to stay well under a
/// second from DOWN to the message.
pub const DEFAULT_GROUP_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Default `group_window`: Alertmanager groups itself, so its notifiers send at once.
pub fn default_group_window(spec: &portwarden_notify::NotifierSpec) -> std::time::Duration {
    match spec.kind() {
        "alertmanager" | "log" => std::time::Duration::ZERO,
        _ => std::time::Duration::from_secs(30),
    }
}

/// Default `remind_every`: Alertmanager forgets an alert that is not re-sent (its
/// `resolve_timeout`), so active alerts are repeated every minute; others never by default.
pub fn default_remind_every(spec: &portwarden_notify::NotifierSpec) -> Option<std::time::Duration> {
    match spec.kind() {
        "alertmanager" => Some(std::time::Duration::from_secs(60)),
        _ => None,
    }
}

/// `[daemon] listen` and `--listen`: an IP address and port, or `localhost:PORT` (taken as
/// 127.0.0.1 without a lookup). Other host names are refused with what to write instead:
/// the daemon binds an address, and reading a config never asks DNS.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let expected = "write an IP address and port: \"127.0.0.1:9898\" (this host only), \
                    \"0.0.0.0:9898\" (every interface), \"[::1]:9898\" or \"localhost:9898\"";
    match t.rsplit_once(':') {
        Some((host, port)) if host.eq_ignore_ascii_case("localhost") => port
            .parse::<u16>()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .map_err(|_| format!("not a port: {port:?} in {text:?} (a number 0-65535)")),
        Some((host, port))
            if !host.is_empty() && !host.contains(':') && port.parse::<u16>().is_ok() =>
        {
            Err(format!(
                "{text:?}: the host name {host:?} is not looked up; {expected}"
            ))
        }
        _ => Err(format!("not an address and port: {text:?}; {expected}")),
    }
}

/// Reads, checks and builds the config at `path` (a file, or a directory whose `*.toml`
/// files are merged in file-name order). Every problem is reported, each with its place.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_beside(path, &|_, _| false)
}

/// [`load`] for a reload: a monitor for which `running(name, definition)` says the same
/// monitor already runs is checked as every other, then kept by name only (in
/// [`Config::unchanged`]).
pub fn load_beside(path: &Path, running: &RunningCheck<'_>) -> Result<Config, ConfigErrors> {
    let files = parse::read(path)?;
    load_files(files, running)
}

/// Whether a monitor of this name and definition already runs.
pub type RunningCheck<'a> = dyn Fn(&str, crate::monitor::Fingerprint) -> bool + 'a;

/// The commented example config, which covers every option.
pub fn example() -> &'static str {
    include_str!("../../../../examples/portwarden.toml")
}

/// Checks and builds one config file given as text, named `path` in problems.
pub(crate) fn load_text(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    load_files(
        vec![SourceFile::new(path.to_path_buf(), text.to_string())],
        &|_, _| false,
    )
}

fn load_files(files: Vec<SourceFile>, running: &RunningCheck<'_>) -> Result<Config, ConfigErrors> {
    let mut problems = Problems::default();
    let parsed = parse::parse(files, &mut problems);
    let config = build::assemble(parsed, &mut problems, running);
    if problems.items.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors::new(problems.into_sorted()))
    }
}

/// Problems as they are found, sorted into reading order at the end.
#[derive(Debug, Default)]
struct Problems {
    /// (file index, byte offset, problem).
    items: Vec<(usize, usize, Problem)>,
}

impl Problems {
    fn push(&mut self, index: usize, file: &SourceFile, span: &Range<usize>, message: String) {
        self.items
            .push((index, span.start, file.problem(span, message)));
    }

    fn into_sorted(mut self) -> Vec<Problem> {
        self.items.sort_by_key(|(file, offset, _)| (*file, *offset));
        self.items.into_iter().map(|(_, _, p)| p).collect()
    }
}

#[cfg(test)]
mod tests;
