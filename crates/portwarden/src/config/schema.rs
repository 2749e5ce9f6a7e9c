//! The config as written: one serde struct per table, `deny_unknown_fields` everywhere, values
//! that are checked later wrapped in [`Spanned`] so every problem can point at its line and
//! column. Nothing here is checked beyond its TOML type; [`super::build`] validates and
//! resolves defaults. `docs/config.md` is the reference for every field below.

use std::fmt;

use serde::de::{self, value::MapAccessDeserializer, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::duration::HumanDuration;

/// Default for `daemon.listen`: the API on loopback only.
pub fn default_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 9898))
}
/// Default for `daemon.max_in_flight`.
pub fn default_max_in_flight() -> usize {
    1024
}
/// Default for `interval`.
pub fn default_interval() -> std::time::Duration {
    std::time::Duration::from_secs(30)
}
/// Default for `timeout`.
pub fn default_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(5)
}
/// Default for `idle_timeout` (the probe engine's).
pub fn default_idle_timeout() -> std::time::Duration {
    portwarden_probe::Limits::default().idle_timeout
}
/// Default for `max_bytes` (the probe engine's, 64 KiB).
pub fn default_max_bytes() -> usize {
    portwarden_probe::Limits::default().max_bytes
}
/// Default for `fail_after` (the state machine's).
pub fn default_fail_after() -> u32 {
    crate::monitor::Policy::default().fail_after
}
/// Default for `recover_after` (the state machine's).
pub fn default_recover_after() -> u32 {
    crate::monitor::Policy::default().recover_after
}
/// Default for `flap_max_transitions` (the state machine's).
pub fn default_flap_max_transitions() -> u32 {
    crate::monitor::Policy::default().flap_max_transitions
}
/// Default for `flap_window` (the state machine's).
pub fn default_flap_window() -> std::time::Duration {
    crate::monitor::Policy::default().flap_window
}
/// Default for `cert_days.warning`.
pub fn default_cert_warning_days() -> i64 {
    30
}
/// Default for `cert_days.critical`.
pub fn default_cert_critical_days() -> i64 {
    7
}

/// `[daemon]`: the process itself.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSection {
    /// Address of the HTTP API, dashboard, `/metrics` and `/probe`, as `IP:PORT`.
    /// Default: `127.0.0.1:9898`.
    pub listen: Option<Spanned<String>>,
    /// Directory for the SQLite history and the notification outbox; relative paths are
    /// taken from the config file's directory. Default: none (the daemon chooses).
    pub state_dir: Option<Spanned<String>>,
    /// Most checks running at the same moment, over all monitors. Default: 1024.
    pub max_in_flight: Option<Spanned<i64>>,
    /// Most self-healing actions running at the same moment. Default: 4.
    pub max_concurrent_actions: Option<Spanned<i64>>,
    /// Environment variable holding the API's bearer token (needed by mutating endpoints).
    /// Default: none (mutations answer 403).
    pub api_token_env: Option<Spanned<String>>,
    /// File holding the API's bearer token (surrounding whitespace ignored); relative paths are
    /// taken from the config file's directory. Default: none.
    pub api_token_file: Option<Spanned<String>>,
    /// Require the token for reads too (everything but `/healthz`). Default: false.
    pub read_token: Option<Spanned<bool>>,
    /// PEM certificate chain: the API speaks HTTPS (with `tls_key`). Default: none (HTTP).
    pub tls_cert: Option<Spanned<String>>,
    /// PEM private key of `tls_cert`. Default: none.
    pub tls_key: Option<Spanned<String>>,
    /// A blackbox_exporter `blackbox.yml` whose `tcp` modules `/probe` serves; relative paths
    /// are taken from the config file's directory. Default: none (only `tcp_connect`).
    pub blackbox_config: Option<Spanned<String>>,
    /// Time allowed for an API client's TLS handshake and for each request head (also bounds a
    /// keep-alive connection idle between requests). Default: `"10s"`.
    pub http_header_timeout: Option<Spanned<HumanDuration>>,
    /// An API connection whose client sends and takes nothing this long while the daemon waits
    /// on it is closed. Default: `"60s"`.
    pub http_idle_timeout: Option<Spanned<HumanDuration>>,
    /// Most API connections served at once; more wait in the listen backlog. Default: 1024.
    pub http_max_connections: Option<Spanned<i64>>,
}

/// `[firewall]`: the firewall guard.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallSection {
    /// Run the guard at all. Default: true.
    pub guard: Option<bool>,
    /// `"auto"` or one of nftables, iptables-nft, iptables-legacy, ufw, firewalld, windows,
    /// pf, mac-app-firewall. Default: `"auto"` (or the baseline's backend).
    pub backend: Option<Spanned<String>>,
    /// Checks: `"enabled"`, `"inbound-default-deny"`. Default: `["enabled"]`.
    pub require: Option<Spanned<Vec<Spanned<String>>>>,
    /// Rules that must be present, e.g. `"tcp/22 from 10.0.0.0/8"`. Default: none.
    pub rules: Option<Spanned<Vec<Spanned<String>>>>,
    /// nftables tables portwarden manages, e.g. `["inet filter"]`. Default: the baseline's,
    /// else every native table.
    pub tables: Option<Spanned<Vec<Spanned<String>>>>,
    /// The baseline file. Default: `/etc/portwarden/firewall.baseline`.
    pub baseline: Option<Spanned<String>>,
    /// `"alert"`, `"enable"` or `"restore"`. Default: restore when a baseline was saved,
    /// else alert.
    pub on_violation: Option<Spanned<String>>,
    /// Full verification period, besides change events. Default: `"30s"`.
    pub verify_every: Option<Spanned<HumanDuration>>,
    /// React to nftables change notifications within milliseconds. Default: true.
    pub watch: Option<bool>,
    /// Repairs allowed per hour before the guard only alerts. Default: 6.
    pub max_repairs_per_hour: Option<Spanned<i64>>,
    /// Notifiers told about violations and repairs. Default: `[defaults] notify`.
    pub notify: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[defaults]`: values for every monitor that does not set its own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsSection {
    /// Time between two checks of a monitor. Default: `"30s"`.
    pub interval: Option<Spanned<HumanDuration>>,
    /// Time allowed for one whole check, connect to verdict. Default: `"5s"`.
    pub timeout: Option<Spanned<HumanDuration>>,
    /// Time allowed for each address's TCP handshake. Default: the timeout.
    pub connect_timeout: Option<Spanned<HumanDuration>>,
    /// Once data has arrived, a silence this long ends an undecided read. Default: `"2s"`.
    pub idle_timeout: Option<Spanned<HumanDuration>>,
    /// Most bytes read from a server in one check. Default: 65536.
    pub max_bytes: Option<Spanned<i64>>,
    /// Address family to connect over: `"any"`, `"v4"`, `"v6"`. Default: `"any"`.
    pub family: Option<portwarden_probe::Family>,
    /// Failed checks (in a row, or within `window`) before a monitor is DOWN. Default: 3.
    pub fail_after: Option<Spanned<i64>>,
    /// Self-healing limits for every monitor (see `[[monitor]]`). Defaults: 3, "10m", "30s", "10m".
    pub max_actions: Option<Spanned<i64>>,
    pub action_window: Option<Spanned<HumanDuration>>,
    pub action_cooldown: Option<Spanned<HumanDuration>>,
    pub reset_after: Option<Spanned<HumanDuration>>,
    /// Good checks (in a row, or within `window`) before a DOWN monitor is UP. Default: 2.
    pub recover_after: Option<Spanned<i64>>,
    /// Count `fail_after` / `recover_after` among the last `window` results instead of in a
    /// row. Default: none (in a row).
    pub window: Option<Spanned<i64>>,
    /// More state changes than this within `flap_window` is flapping. Default: 6.
    pub flap_max_transitions: Option<Spanned<i64>>,
    /// The window for flapping detection. Default: `"10m"`.
    pub flap_window: Option<Spanned<HumanDuration>>,
    /// Notifiers told about every monitor that sets no `notify`. Default: none.
    pub notify: Option<Spanned<Vec<Spanned<String>>>>,
    /// Response-time thresholds. Default: none.
    pub response_time: Option<Spanned<ResponseTimeSection>>,
    /// Certificate expiry thresholds for every monitor that speaks TLS. Default: none.
    pub cert_days: Option<Spanned<CertDaysSection>>,
}

/// `[[monitor]]`: one port to watch.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorSection {
    /// Unique name, used in notifications, the API and metrics. Required.
    pub name: Option<Spanned<String>>,
    /// `"host:port"`, `"192.0.2.1:25"`, `"[::1]:22"`; a bare host takes the protocol's
    /// default port. Required.
    pub target: Option<Spanned<String>>,
    /// A protocol preset (`smtp`, `imap`, `ssh`, `https`, …; `tcp` for none): default port,
    /// greeting check, polite quit, TLS mode. Default: `"tcp"`.
    pub protocol: Option<Spanned<String>>,
    /// Upgrade with the preset's STARTTLS. Default: false.
    pub starttls: Option<Spanned<bool>>,
    /// TLS from the first byte: `true`, or a table of TLS settings (which also apply to
    /// STARTTLS). Default: the preset's TLS mode.
    pub tls: Option<Spanned<TlsOption>>,
    /// Text to send after connecting (TOML escapes like `\r\n` apply). Default: none.
    pub send: Option<Spanned<String>>,
    /// Bytes to send after connecting, in hex (`"16 03 01"`). Default: none.
    pub send_hex: Option<Spanned<String>>,
    /// What the answer must contain: a string (substring), a table
    /// (`contains` / `prefix` / `regex` / `hex`), or an array of those. Default: none.
    pub expect: Option<Spanned<ExpectOption>>,
    /// Whether `"any"` or `"all"` expectations must match. Default: `"any"`.
    pub expect_mode: Option<Spanned<ExpectMode>>,
    /// A multi-step conversation instead of `send` / `expect`. Default: none.
    pub dialog: Option<Spanned<Vec<Spanned<StepSection>>>>,
    /// Sent after the verdict to close politely; `""` sends nothing. Default: the preset's.
    pub quit: Option<Spanned<String>>,
    /// Wait this long after connecting before the dialog starts. Default: `"0s"`.
    pub send_delay: Option<Spanned<HumanDuration>>,
    /// Address family: `"any"`, `"v4"`, `"v6"`. Default: `[defaults]`, else `"any"`.
    pub family: Option<portwarden_probe::Family>,
    /// Local address to connect from. Default: chosen by the system.
    pub source: Option<Spanned<String>>,
    /// Time allowed for one check. Default: `[defaults]`, else `"5s"`.
    pub timeout: Option<Spanned<HumanDuration>>,
    /// Time allowed for each address's TCP handshake. Default: the timeout.
    pub connect_timeout: Option<Spanned<HumanDuration>>,
    /// Silence that ends an undecided read. Default: `[defaults]`, else `"2s"`.
    pub idle_timeout: Option<Spanned<HumanDuration>>,
    /// Most bytes read. Default: `[defaults]`, else 65536.
    pub max_bytes: Option<Spanned<i64>>,
    /// The port must refuse connections. Default: false.
    pub must_be_closed: Option<Spanned<bool>>,
    /// Response-time thresholds. Default: `[defaults]`, else none.
    pub response_time: Option<Spanned<ResponseTimeSection>>,
    /// State of a check whose connection was refused. Default: `"critical"`.
    pub state_on_refused: Option<ProbeState>,
    /// State of a check whose answer did not match. Default: `"critical"`.
    pub state_on_mismatch: Option<ProbeState>,
    /// The local socket on the port must belong to this program: a process name, an
    /// executable path, or `unit:NAME`. Default: not checked.
    pub owner: Option<Spanned<String>>,
    /// Time between checks. Default: `[defaults]`, else `"30s"`.
    pub interval: Option<Spanned<HumanDuration>>,
    /// Failed checks before DOWN. Default: `[defaults]`, else 3.
    pub fail_after: Option<Spanned<i64>>,
    /// Good checks before UP again. Default: `[defaults]`, else 2.
    pub recover_after: Option<Spanned<i64>>,
    /// Count within the last `window` results. Default: `[defaults]`, else in a row.
    pub window: Option<Spanned<i64>>,
    /// Flapping threshold. Default: `[defaults]`, else 6.
    pub flap_max_transitions: Option<Spanned<i64>>,
    /// Flapping window. Default: `[defaults]`, else `"10m"`.
    pub flap_window: Option<Spanned<HumanDuration>>,
    /// Notifier names; `[]` for none. Default: `[defaults]`, else none.
    pub notify: Option<Spanned<Vec<Spanned<String>>>>,
    /// Self-healing ladder: actions when the monitor goes DOWN, in order. Default: none.
    pub on_down: Option<Spanned<Vec<toml::Table>>>,
    /// At most this many actions within `action_window`, then give up. Default: `[defaults]`, else 3.
    pub max_actions: Option<Spanned<i64>>,
    /// The window of `max_actions`. Default: `[defaults]`, else `"10m"`.
    pub action_window: Option<Spanned<HumanDuration>>,
    /// Least time between two actions. Default: `[defaults]`, else `"30s"`.
    pub action_cooldown: Option<Spanned<HumanDuration>>,
    /// Healthy this long and the action counters start again. Default: `[defaults]`, else `"10m"`.
    pub reset_after: Option<Spanned<HumanDuration>>,
    /// Free-form labels for the API and dashboard. Default: none.
    pub tags: Option<Vec<Spanned<String>>>,
}

/// `response_time = { warning = "200ms", critical = "1s" }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseTimeSection {
    /// Slower than this is WARNING. Default: none.
    pub warning: Option<Spanned<HumanDuration>>,
    /// Slower than this is CRITICAL. Default: none.
    pub critical: Option<Spanned<HumanDuration>>,
}

/// `cert_days = { warning = 30, critical = 7 }`: days before the certificate expires.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertDaysSection {
    /// Fewer days left than this is WARNING. Default: 30.
    pub warning: Option<Spanned<i64>>,
    /// Fewer days left than this is CRITICAL. Default: 7.
    pub critical: Option<Spanned<i64>>,
}

/// `tls = true` or `tls = { … }`.
#[derive(Debug)]
pub enum TlsOption {
    /// `true`: TLS from the first byte with default settings; `false`: no implicit TLS.
    Flag(bool),
    /// TLS settings; implicit TLS unless the monitor uses STARTTLS.
    Table(Box<TlsSection>),
}

/// The TLS settings table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// Server name to send and verify. Default: the target's host name (none for addresses).
    pub sni: Option<Spanned<String>>,
    /// `"system"` (the system's trusted roots) or `"none"` (no verification). Default:
    /// `"system"`, or the `ca_file` when one is given.
    pub verify: Option<Spanned<VerifyMode>>,
    /// Verify against the CA certificates in this PEM file only. Default: none.
    pub ca_file: Option<Spanned<String>>,
    /// Client certificate to present (PEM); needs `client_key`. Default: none.
    pub client_cert: Option<Spanned<String>>,
    /// Private key of the client certificate (PEM). Default: none.
    pub client_key: Option<Spanned<String>>,
    /// Certificate expiry thresholds. Default: `[defaults]`, else not checked.
    pub cert_days: Option<Spanned<CertDaysSection>>,
}

/// `verify = "system" | "none"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    /// The operating system's trusted roots.
    System,
    /// No verification (expiry is still reported).
    None,
}

/// `expect_mode = "any" | "all"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpectMode {
    /// One expectation suffices.
    Any,
    /// Every expectation must match.
    All,
}

/// `state_on_refused` / `state_on_mismatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeState {
    /// Counts as a good check.
    Ok,
    /// Counts as good, but flagged.
    Warning,
    /// Counts as a failed check.
    Critical,
}

/// `expect = "…"`, `expect = { regex = "…" }` or `expect = [ … ]`.
#[derive(Debug)]
pub enum ExpectOption {
    One(MatcherOption),
    Many(Vec<Spanned<MatcherOption>>),
}

/// One expectation: a plain string (substring) or a table with exactly one key.
#[derive(Debug)]
pub enum MatcherOption {
    Text(String),
    Table(MatcherSection),
}

/// `{ contains = "…" }`, `{ prefix = "…" }`, `{ regex = "…" }` or `{ hex = "…" }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatcherSection {
    /// The text appears anywhere in the answer.
    pub contains: Option<Spanned<String>>,
    /// The answer starts with this text.
    pub prefix: Option<Spanned<String>>,
    /// A regular expression matches somewhere in the answer (over its raw bytes).
    pub regex: Option<Spanned<String>>,
    /// The answer starts with these bytes, written in hex.
    pub hex: Option<Spanned<String>>,
}

/// One step of `dialog`: exactly one of `send`, `send_hex`, `expect`, `starttls`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSection {
    /// Text to send.
    pub send: Option<Spanned<String>>,
    /// Bytes to send, in hex.
    pub send_hex: Option<Spanned<String>>,
    /// What to read before going on (same forms as the monitor's `expect`).
    pub expect: Option<Spanned<ExpectOption>>,
    /// `"any"` or `"all"` for this step's expectations. Default: `"any"`.
    pub expect_mode: Option<Spanned<ExpectMode>>,
    /// Upgrade to TLS here: `true` (the preset's STARTTLS) or a protocol name
    /// (`"smtp"`, `"imap"`, `"pop3"`, `"ftp"`, `"nntp"`, `"postgres"`).
    pub starttls: Option<Spanned<StarttlsOption>>,
}

/// `starttls = true` or `starttls = "smtp"` in a dialog step.
#[derive(Debug)]
pub enum StarttlsOption {
    Flag(bool),
    Protocol(String),
}

// Hand-written visitors instead of `#[serde(untagged)]`: untagged buffers the value, which
// loses both the span of each inner value and serde's precise messages.

impl<'de> Deserialize<'de> for TlsOption {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TlsOption;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or a table of TLS settings")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<TlsOption, E> {
                Ok(TlsOption::Flag(v))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<TlsOption, A::Error> {
                TlsSection::deserialize(MapAccessDeserializer::new(map))
                    .map(|t| TlsOption::Table(Box::new(t)))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for MatcherOption {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MatcherOption;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a table like { regex = \"…\" }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MatcherOption, E> {
                Ok(MatcherOption::Text(v.to_string()))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<MatcherOption, A::Error> {
                MatcherSection::deserialize(MapAccessDeserializer::new(map))
                    .map(MatcherOption::Table)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ExpectOption {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ExpectOption;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a table like { regex = \"…\" }, or an array of those")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ExpectOption, E> {
                Ok(ExpectOption::One(MatcherOption::Text(v.to_string())))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<ExpectOption, A::Error> {
                MatcherSection::deserialize(MapAccessDeserializer::new(map))
                    .map(|t| ExpectOption::One(MatcherOption::Table(t)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ExpectOption, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<MatcherOption>>()? {
                    items.push(item);
                }
                Ok(ExpectOption::Many(items))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for StarttlsOption {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StarttlsOption;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true or a protocol name like \"smtp\"")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<StarttlsOption, E> {
                Ok(StarttlsOption::Flag(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StarttlsOption, E> {
                Ok(StarttlsOption::Protocol(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}
