//! `GET /probe?target=HOST:PORT&module=NAME[&debug=true]`: blackbox_exporter's `/probe`
//! contract for its `tcp` prober, answered by the probe engine directly (not the scheduler).
//!
//! Modules: the built-in `tcp_connect`, plus the `tcp` modules of a real `blackbox.yml` named
//! by `[daemon] blackbox_config` ([`load`], at start and on reload). Each is translated once
//! into a [`ProbeSpec`] template and, with TLS, a [`TlsClient`] (CA and client certificate
//! files read at load, not per request); a request picks the address as blackbox's
//! `chooseProtocol` does (preferred family, optional fallback), runs the engine against that
//! address and answers with the same metric names, meanings and text format. Requests,
//! status codes and messages follow blackbox 0.23 (`Unknown module "x"`, `Target parameter
//! is missing`), and the probe timeout is `min(module timeout,
//! X-Prometheus-Scrape-Timeout-Seconds − 0.5 s)`, 120 s with neither.
//!
//! Translated as blackbox 0.23 runs them: `query_response` `expect` (a regex tested line by
//! line, lines without their `\n` or `\r\n`, each entry starting after the line the entry
//! before matched: [`Matcher::Line`]),
//! `send` (with the expect's capture groups expanded into it: [`Step::SendExpanded`]),
//! `starttls` (the connection is upgraded in place after that entry's expect and send:
//! [`Step::Tls`]), `tls`, and `tls_config` `ca_file`, `cert_file` + `key_file`,
//! `server_name`, `insecure_skip_verify`, `min_version` / `max_version` (TLS12, TLS13).
//! Relative file names are resolved against the working directory, as blackbox opens them.
//! With TLS the gauges include `probe_ssl_last_chain_info` (leaf SHA-256, subject and issuer
//! as Go writes them, DNS names) and the last chain expiry over the verified chains.
//!
//! Refused at load, one warning per problem naming the module, the key and its line, the
//! module then answering 400 while the others run: keys 0.23 does not know (it refuses the
//! whole file), keys of later versions (`expect_bytes`, `labels`, inline `ca` / `cert` /
//! `key`), TLS 1.0 / 1.1 (rustls speaks 1.2 and 1.3). Settings with which blackbox loads the
//! module but fails every probe (`cert_file` without `key_file`, `max_version` below
//! `min_version`, an unreadable file, `starttls` twice or after `tls: true`) are translated
//! to fail the same way, with a warning at load.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use probe::{
    ClientCert, DialogEvent, ExpectEnd, Expectation, Family, Host, Matcher, Probe, ProbeSpec, Step,
    Target, TlsClient, TlsSpec, TlsVersion, Verify,
};
use serde::Deserialize;

use crate::api::ApiState;
use crate::config::ProbeModule;

/// blackbox_exporter's `--timeout-offset` default.
const TIMEOUT_OFFSET: f64 = 0.5;
/// The probe timeout with neither a module timeout nor the scrape-timeout header.
const DEFAULT_TIMEOUT: f64 = 120.0;
/// The longest a probe runs, whatever the scrape-timeout header says: a header of `inf` or
/// `1e20` (which Go's ParseFloat, and so blackbox, accept) must neither overflow a duration
/// nor the engine's deadline; no scrape waits an hour.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// blackbox's module name when the request names none.
const DEFAULT_MODULE: &str = "http_2xx";
/// The Prometheus text format, as blackbox answers.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Go's zero time in Unix seconds: blackbox's last-chain expiry when nothing was verified.
const GO_ZERO_TIME: f64 = -62_135_596_800.0;

/// The modules `/probe` serves.
#[derive(Debug, Default)]
pub struct Modules {
    modules: BTreeMap<String, Module>,
    /// The names of the config's `[[probe_module]]`s among them.
    native: BTreeSet<String>,
}

#[derive(Debug, Clone)]
enum Module {
    Tcp(Box<TcpModule>),
    /// A module this endpoint cannot run, with the reason given at probe time.
    Unsupported(String),
}

/// A `tcp` module, ready to run: a blackbox.yml module translated, or a `[[probe_module]]`
/// of portwarden's config as built there.
#[derive(Debug, Clone)]
struct TcpModule {
    /// The probe without its target: steps, TLS mode and server name, limits, source. Each
    /// request clones it, sets the address it chose and bounds the limits by its timeout.
    template: ProbeSpec,
    timeout: Option<Duration>,
    /// blackbox's address choice: the preferred family, and whether the other may serve.
    prefer_v6: bool,
    fallback: bool,
    /// The TLS client, prepared at load (files read once); the error fails every probe of
    /// the module, as blackbox's per-probe `NewTLSConfig` error does. `None` without TLS.
    tls_client: Option<Result<TlsClient, String>>,
    /// The module as written, for `debug=true`.
    yaml: String,
    /// The `query_response` entry each step of the template came from, for `debug=true`
    /// (empty for modules that are not a blackbox.yml's).
    entries: Vec<usize>,
}

/// The target of a module's template, replaced by every request's.
fn no_target() -> Target {
    Target {
        host: Host::Name("probe-module.invalid".into()),
        port: 1,
    }
}

/// A template bounded only by each request's timeout, as blackbox's probes are.
fn unbounded_template() -> ProbeSpec {
    let mut spec = ProbeSpec::connect(no_target());
    spec.limits.deadline = Duration::MAX;
    spec.limits.connect_timeout = Duration::MAX;
    spec.limits.idle_timeout = Duration::MAX;
    spec
}

impl TcpModule {
    fn connect() -> Self {
        Self {
            template: unbounded_template(),
            timeout: Some(Duration::from_secs(5)),
            prefer_v6: true,
            fallback: true,
            tls_client: None,
            yaml: "prober: tcp\ntimeout: 5s\n".into(),
            entries: Vec::new(),
        }
    }

    /// A `[[probe_module]]`: its spec decides everything but the address, which is chosen
    /// as blackbox does (`family = "v4"`/`"v6"`: that family only; `"any"`: IPv6 first).
    fn native(module: &ProbeModule) -> Self {
        let spec = &module.spec;
        let mut template = spec.clone();
        template.target = no_target();
        Self {
            timeout: Some(spec.limits.deadline),
            prefer_v6: spec.family != Family::V4,
            fallback: spec.family == Family::Any,
            tls_client: spec
                .uses_tls()
                .then(|| TlsClient::new(&spec.tls).map_err(|e| e.to_string())),
            yaml: format!(
                "[[probe_module]] {:?} of portwarden's config, as built:\n{spec:#?}\n",
                module.name
            ),
            template,
            entries: Vec::new(),
        }
    }

    /// Whether the probe reports the TLS gauges (`tls: true` or a `starttls` step).
    fn reports_tls(&self) -> bool {
        self.template.uses_tls()
    }
}

static MODULES: LazyLock<RwLock<Arc<Modules>>> =
    LazyLock::new(|| RwLock::new(Arc::new(Modules::builtin())));

impl Modules {
    fn builtin() -> Self {
        let mut modules = BTreeMap::new();
        modules.insert(
            "tcp_connect".to_string(),
            Module::Tcp(Box::new(TcpModule::connect())),
        );
        Self {
            modules,
            native: BTreeSet::new(),
        }
    }

    /// Reads a `blackbox.yml`: its modules replace nothing but add to `tcp_connect` (a module
    /// of that name in the file wins). Non-tcp and untranslatable modules are kept as
    /// unsupported; the warnings name each module, key and line. Relative TLS file paths
    /// are resolved against the working directory, as blackbox does (it reads them with a
    /// plain open, never joined with the config's directory).
    pub fn read(path: &Path) -> anyhow::Result<(Self, Vec<String>)> {
        let text = crate::config::files::read_bounded(path, crate::config::files::CONFIG_LIMIT)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let cwd = std::env::current_dir().unwrap_or_default();
        Self::parse(&text, &cwd)
    }

    /// Each module's name and, for one that cannot run, why not.
    pub(crate) fn summary(&self) -> Vec<(&str, Option<&str>)> {
        self.modules
            .iter()
            .map(|(name, m)| match m {
                Module::Tcp(_) => (name.as_str(), None),
                Module::Unsupported(why) => (name.as_str(), Some(why.as_str())),
            })
            .collect()
    }

    /// Parses a `blackbox.yml`'s text; relative file names are resolved against `base`.
    pub(crate) fn parse(text: &str, base: &Path) -> anyhow::Result<(Self, Vec<String>)> {
        let file: RawFile =
            serde_norway::from_str(text).map_err(|e| anyhow::anyhow!("blackbox config: {e}"))?;
        let mut out = Self::builtin();
        let mut warnings = Vec::new();
        for (name, raw) in file.modules {
            let mut refusals = unknown_keys(&raw);
            let mut failing = Vec::new();
            let translated = if refusals.is_empty() {
                translate(&raw, base, &mut failing)
                    .map_err(|r| refusals.push(r))
                    .ok()
            } else {
                None
            };
            let module = match translated {
                Some(m) => {
                    for f in &failing {
                        warnings.push(format!(
                            "module {name:?}: {} (every probe of it fails, as in blackbox)",
                            f.describe(text, &name)
                        ));
                    }
                    Module::Tcp(Box::new(m))
                }
                None => {
                    let why: Vec<String> =
                        refusals.iter().map(|r| r.describe(text, &name)).collect();
                    for w in &why {
                        warnings.push(format!("module {name:?}: {w} (/probe answers 400 for it)"));
                    }
                    Module::Unsupported(why.join("; "))
                }
            };
            out.modules.insert(name, module);
        }
        Ok((out, warnings))
    }
}

/// Loads the modules of `path` (or only the built-in ones for `None`) and the config's
/// `[[probe_module]]`s, which win over a `blackbox.yml` module of the same name. A
/// `blackbox.yml` that cannot be read keeps the running modules from it (logged).
pub fn load(path: Option<&Path>, native: &[ProbeModule]) {
    install(prepare(path, native));
}

/// The modules [`load`] would install, read (blocking) but not yet serving.
pub fn prepare(path: Option<&Path>, native: &[ProbeModule]) -> Modules {
    let mut modules = match path {
        None => Modules::builtin(),
        Some(p) => match Modules::read(p) {
            Ok((m, warnings)) => {
                for w in warnings {
                    tracing::warn!("{}: {w}", p.display());
                }
                m
            }
            Err(e) => {
                tracing::warn!("/probe keeps the modules it had from it: {e:#}");
                let running = MODULES.read().unwrap_or_else(|p| p.into_inner()).clone();
                let mut kept = Modules::default();
                for (name, m) in &running.modules {
                    if !running.native.contains(name) {
                        kept.modules.insert(name.clone(), m.clone());
                    }
                }
                kept
            }
        },
    };
    for m in native {
        if modules.modules.contains_key(&m.name) && m.name != "tcp_connect" {
            tracing::warn!(
                "/probe module {:?}: the [[probe_module]] of that name replaces the blackbox.yml one",
                m.name
            );
        }
        modules.native.insert(m.name.clone());
        modules
            .modules
            .insert(m.name.clone(), Module::Tcp(Box::new(TcpModule::native(m))));
    }
    modules
}

/// Serves `modules` from now on (what [`prepare`] made).
pub fn install(modules: Modules) {
    *MODULES.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(modules);
}

#[derive(Debug, Deserialize)]
struct RawFile {
    #[serde(default)]
    modules: BTreeMap<String, serde_norway::Value>,
}

// The keys blackbox_exporter 0.23 (Debian's build, prometheus/common's TLS config of its
// time) accepts; it refuses the whole file for any other. Checked by `unknown_keys` first,
// so the structs below can deny unknown fields without ever being the one to report them.
const MODULE_KEYS: &[&str] = &["prober", "timeout", "http", "tcp", "icmp", "dns", "grpc"];
const TCP_KEYS: &[&str] = &[
    "preferred_ip_protocol",
    "ip_protocol_fallback",
    "source_ip_address",
    "query_response",
    "tls",
    "tls_config",
];
const STEP_KEYS: &[&str] = &["expect", "send", "starttls"];
const TLS_KEYS: &[&str] = &[
    "ca_file",
    "cert_file",
    "key_file",
    "server_name",
    "insecure_skip_verify",
    "min_version",
    "max_version",
];
/// Keys later blackbox versions accept (0.24+: `expect_bytes`, `labels`; newer
/// prometheus/common: inline or referenced PEM), refused by 0.23.
const NEWER_STEP_KEYS: &[&str] = &["expect_bytes", "labels"];
const NEWER_TLS_KEYS: &[&str] = &["ca", "cert", "key", "ca_ref", "cert_ref", "key_ref"];

/// Not `deny_unknown_fields`: the other probers' sections (`http`, `dns`, …) are known keys
/// that are simply not read.
#[derive(Debug, Deserialize)]
struct RawModule {
    prober: String,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    tcp: RawTcp,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTcp {
    #[serde(default)]
    preferred_ip_protocol: Option<String>,
    #[serde(default)]
    ip_protocol_fallback: Option<bool>,
    #[serde(default)]
    source_ip_address: Option<String>,
    #[serde(default)]
    query_response: Vec<RawStep>,
    #[serde(default)]
    tls: bool,
    #[serde(default)]
    tls_config: RawTls,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[serde(default)]
    expect: Option<String>,
    #[serde(default)]
    send: Option<String>,
    #[serde(default)]
    starttls: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    #[serde(default)]
    insecure_skip_verify: bool,
    #[serde(default)]
    ca_file: Option<String>,
    #[serde(default)]
    server_name: Option<String>,
    #[serde(default)]
    cert_file: Option<String>,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
}

/// One step of a path inside a module.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Why a module is not translated, and where in it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    /// Inside the module: `tcp`, `query_response`, 1, `expect_bytes`. Empty: the module.
    at: Vec<Seg>,
    why: String,
}

impl Refusal {
    fn new(at: &[Seg], why: impl Into<String>) -> Self {
        Self {
            at: at.to_vec(),
            why: why.into(),
        }
    }

    /// `tcp.query_response[1].expect_bytes (line 14): why`, the line found in `text`.
    fn describe(&self, text: &str, module: &str) -> String {
        let mut path = String::new();
        for seg in &self.at {
            match seg {
                Seg::Key(k) if path.is_empty() => path.push_str(k),
                Seg::Key(k) => {
                    path.push('.');
                    path.push_str(k);
                }
                Seg::Index(i) => {
                    let _ = write!(path, "[{i}]");
                }
            }
        }
        let mut full = vec![Seg::Key("modules".into()), Seg::Key(module.into())];
        full.extend(self.at.iter().cloned());
        let line = locate::line(text, &full).map_or_else(String::new, |l| format!("line {l}"));
        match (path.is_empty(), line.is_empty()) {
            (true, true) => self.why.clone(),
            (true, false) => format!("({line}) {}", self.why),
            (false, true) => format!("{path}: {}", self.why),
            (false, false) => format!("{path} ({line}): {}", self.why),
        }
    }
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

/// Every key of `module` that blackbox 0.23 does not know, each with its path; keys of
/// later versions are named as such. Sections of other probers are checked at their top
/// level only (portwarden does not run them).
fn unknown_keys(module: &serde_norway::Value) -> Vec<Refusal> {
    let mut out = Vec::new();
    let Some(map) = module.as_mapping() else {
        out.push(Refusal::new(&[], "a module must be a mapping"));
        return out;
    };
    check_keys(map, &[], MODULE_KEYS, &[], &mut out);
    if let Some(tcp) = map.get("tcp").and_then(|t| t.as_mapping()) {
        let at = [key("tcp")];
        check_keys(tcp, &at, TCP_KEYS, &[], &mut out);
        if let Some(steps) = tcp.get("query_response").and_then(|q| q.as_sequence()) {
            for (i, step) in steps.iter().enumerate() {
                if let Some(step) = step.as_mapping() {
                    let at = [key("tcp"), key("query_response"), Seg::Index(i)];
                    check_keys(step, &at, STEP_KEYS, NEWER_STEP_KEYS, &mut out);
                }
            }
        }
        if let Some(tls) = tcp.get("tls_config").and_then(|t| t.as_mapping()) {
            let at = [key("tcp"), key("tls_config")];
            check_keys(tls, &at, TLS_KEYS, NEWER_TLS_KEYS, &mut out);
        }
    }
    out
}

fn check_keys(
    map: &serde_norway::Mapping,
    at: &[Seg],
    known: &[&str],
    newer: &[&str],
    out: &mut Vec<Refusal>,
) {
    for k in map.keys() {
        let name = match k.as_str() {
            Some(n) => n.to_string(),
            None => format!("{k:?}"),
        };
        if known.contains(&name.as_str()) {
            continue;
        }
        let mut path = at.to_vec();
        path.push(Seg::Key(name.clone()));
        let why = if newer.contains(&name.as_str()) {
            format!(
                "{name:?} is a key of later blackbox_exporter versions; 0.23 refuses it and \
                 portwarden does not translate it"
            )
        } else {
            format!("unknown key {name:?} (blackbox_exporter refuses it at load)")
        };
        out.push(Refusal { at: path, why });
    }
}

/// A TLS version name of prometheus/common's `TLSVersions`.
fn tls_version(at: &[Seg], name: &str) -> Result<TlsVersion, Refusal> {
    match name {
        "TLS12" => Ok(TlsVersion::Tls12),
        "TLS13" => Ok(TlsVersion::Tls13),
        "TLS10" | "TLS11" => Err(Refusal::new(
            at,
            format!("{name}: portwarden's TLS (rustls) speaks TLS 1.2 and 1.3 only"),
        )),
        other => Err(Refusal::new(
            at,
            format!("unknown TLS version: {other} (blackbox_exporter refuses it at load)"),
        )),
    }
}

/// Translates one module. `failing` gets what blackbox loads but fails every probe of (the
/// module is translated to fail the same way).
fn translate(
    value: &serde_norway::Value,
    base: &Path,
    failing: &mut Vec<Refusal>,
) -> Result<TcpModule, Refusal> {
    let raw: RawModule = serde_norway::from_value(value.clone())
        .map_err(|e| Refusal::new(&[], format!("cannot read: {e}")))?;
    if raw.prober != "tcp" {
        return Err(Refusal::new(
            &[key("prober")],
            format!(
                "prober {:?} is not supported (portwarden serves tcp modules only)",
                raw.prober
            ),
        ));
    }
    let timeout = match raw.timeout.as_deref() {
        None => None,
        Some(t) => Some(
            humantime::parse_duration(t)
                .map_err(|e| Refusal::new(&[key("timeout")], format!("{t:?}: {e}")))?,
        ),
    };
    let tcp = raw.tcp;
    let prefer_v6 = match tcp.preferred_ip_protocol.as_deref() {
        None | Some("") | Some("ip6") => true,
        Some("ip4") => false,
        Some(other) => {
            return Err(Refusal::new(
                &[key("tcp"), key("preferred_ip_protocol")],
                format!("{other:?} is not ip4 or ip6"),
            ))
        }
    };
    let source = match tcp.source_ip_address.as_deref() {
        None | Some("") => None,
        Some(a) => Some(a.parse::<IpAddr>().map_err(|_| {
            Refusal::new(
                &[key("tcp"), key("source_ip_address")],
                format!("{a:?} is not an address"),
            )
        })?),
    };
    let mut steps = Vec::new();
    let mut entries = Vec::new();
    let mut upgraded = tcp.tls;
    for (i, s) in tcp.query_response.iter().enumerate() {
        let at = |k: &str| [key("tcp"), key("query_response"), Seg::Index(i), key(k)];
        let expect = s.expect.as_deref().filter(|e| !e.is_empty());
        if let Some(expect) = expect {
            // blackbox matches line by line, lines without their `\n` or `\r\n`.
            let m = Matcher::line_regex(expect)
                .map_err(|e| Refusal::new(&at("expect"), e.to_string()))?;
            steps.push(Step::Expect(Expectation::one(m)));
        }
        if let Some(send) = s.send.as_deref().filter(|s| !s.is_empty()) {
            let line = format!("{send}\n").into_bytes();
            // After an expect blackbox expands the match's capture groups into send ($1,
            // ${name}, $$); without a `$` that is the text itself, so no work per probe.
            if expect.is_some() && send.contains('$') {
                steps.push(Step::SendExpanded(line));
            } else {
                steps.push(Step::Send(line));
            }
        }
        if s.starttls {
            // A handshake inside TLS fails (blackbox tries it and the server hangs up;
            // the engine refuses it at once); the first handshake's metrics stay.
            if upgraded {
                let why = if tcp.tls {
                    "starttls on a connection that tls: true already encrypts"
                } else {
                    "a second starttls on a connection already upgraded"
                };
                failing.push(Refusal::new(&at("starttls"), why));
            }
            upgraded = true;
            steps.push(Step::Tls);
        }
        entries.resize(steps.len(), i);
    }
    let tls = &tcp.tls_config;
    let tls_at = |k: &str| [key("tcp"), key("tls_config"), key(k)];
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    // Relative paths: against the working directory (`base`), as blackbox opens them.
    let file = |v: &Option<String>| nonempty(v).map(|f| base.join(f));
    // prometheus/common's NewTLSConfig errors, word for word: blackbox loads the module
    // and every probe that sets up TLS fails with them.
    let mut setup_error = None;
    let client_cert = match (file(&tls.cert_file), file(&tls.key_file)) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(ClientCert { cert, key }),
        (Some(_), None) => {
            let why = format!(
                "client cert file {:?} specified without client key file",
                tls.cert_file.as_deref().unwrap_or_default()
            );
            setup_error = Some((tls_at("cert_file"), why));
            None
        }
        (None, Some(_)) => {
            let why = format!(
                "client key file {:?} specified without client cert file",
                tls.key_file.as_deref().unwrap_or_default()
            );
            setup_error = Some((tls_at("key_file"), why));
            None
        }
    };
    let min_version = match nonempty(&tls.min_version) {
        None => None,
        Some(v) => Some(tls_version(&tls_at("min_version"), &v)?),
    };
    let max_version = match nonempty(&tls.max_version) {
        None => None,
        Some(v) => Some(tls_version(&tls_at("max_version"), &v)?),
    };
    if let (Some(min), Some(max)) = (min_version, max_version) {
        if max < min {
            let why = "tls_config.max_version must be greater than or equal to \
                       tls_config.min_version if both are specified";
            setup_error = Some((tls_at("max_version"), why.to_string()));
        }
    }
    let verify = if tls.insecure_skip_verify {
        Verify::Insecure
    } else if let Some(ca) = file(&tls.ca_file) {
        Verify::CaFile(ca)
    } else {
        Verify::SystemRoots
    };
    let tls_client = upgraded.then(|| {
        if let Some((at, why)) = setup_error {
            failing.push(Refusal::new(&at, why.clone()));
            return Err(why);
        }
        let spec = TlsSpec {
            verify,
            client_cert,
            min_version,
            max_version,
            ..TlsSpec::default()
        };
        TlsClient::new(&spec).map_err(|e| {
            failing.push(Refusal::new(
                &[key("tcp"), key("tls_config")],
                e.to_string(),
            ));
            e.to_string()
        })
    });
    let mut template = unbounded_template();
    template.source = source;
    template.implicit_tls = tcp.tls;
    template.steps = steps;
    template.tls.sni = nonempty(&tls.server_name);
    Ok(TcpModule {
        template,
        timeout: timeout.filter(|t| !t.is_zero()),
        prefer_v6,
        fallback: tcp.ip_protocol_fallback.unwrap_or(true),
        tls_client,
        yaml: serde_norway::to_string(value).unwrap_or_default(),
        entries,
    })
}

/// Finds where a node is in the YAML text: serde_norway gives an error the position of the
/// node it was deserializing, so the document is walked along the path and a deliberate
/// error raised at the last key (or element). Used at load only, for warnings.
mod locate {
    use std::fmt;

    use serde::de::{
        DeserializeSeed, Deserializer, Error, IgnoredAny, MapAccess, SeqAccess, Visitor,
    };

    use super::Seg;

    const HERE: &str = "portwarden-locate-here";

    /// The 1-based line of the node at `path`, if it is there.
    pub(super) fn line(text: &str, path: &[Seg]) -> Option<usize> {
        let de = serde_norway::Deserializer::from_str(text);
        match Walk(path).deserialize(de) {
            Err(e) if e.to_string().contains(HERE) => e.location().map(|l| l.line()),
            _ => None,
        }
    }

    struct Walk<'p>(&'p [Seg]);

    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            if self.0.is_empty() {
                d.deserialize_any(Here)
            } else {
                d.deserialize_any(self)
            }
        }
    }

    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping or a sequence")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let Some((Seg::Key(want), rest)) = self.0.split_first() else {
                return Ok(());
            };
            let seed = || KeySeed {
                want,
                last: rest.is_empty(),
            };
            while let Some(found) = map.next_key_seed(seed())? {
                if found {
                    return map.next_value_seed(Walk(rest));
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let Some((Seg::Index(want), rest)) = self.0.split_first() else {
                return Ok(());
            };
            for _ in 0..*want {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    return Ok(());
                }
            }
            seq.next_element_seed(Walk(rest)).map(|_| ())
        }
    }

    /// A map key: whether it is the wanted one; the error when it is the last of the path.
    struct KeySeed<'p> {
        want: &'p str,
        last: bool,
    }

    impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_str(self)
        }
    }

    impl<'de> Visitor<'de> for KeySeed<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a key")
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<bool, E> {
            match (v == self.want, self.last) {
                (true, true) => Err(E::custom(HERE)),
                (found, _) => Ok(found),
            }
        }
        fn visit_bool<E: Error>(self, _: bool) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_i64<E: Error>(self, _: i64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_u64<E: Error>(self, _: u64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_f64<E: Error>(self, _: f64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_unit<E: Error>(self) -> Result<bool, E> {
            Ok(false)
        }
    }

    /// Fails on whatever node it is given (a whole sequence element).
    struct Here;

    impl<'de> Visitor<'de> for Here {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(HERE)
        }
        fn visit_bool<E: Error>(self, _: bool) -> Result<(), E> {
            Err(E::custom(HERE))
        }
        fn visit_i64<E: Error>(self, _: i64) -> Result<(), E> {
            Err(E::custom(HERE))
        }
        fn visit_u64<E: Error>(self, _: u64) -> Result<(), E> {
            Err(E::custom(HERE))
        }
        fn visit_f64<E: Error>(self, _: f64) -> Result<(), E> {
            Err(E::custom(HERE))
        }
        fn visit_str<E: Error>(self, _: &str) -> Result<(), E> {
            Err(E::custom(HERE))
        }
        fn visit_unit<E: Error>(self) -> Result<(), E> {
            Err(E::custom(HERE))
        }
        fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
            Err(A::Error::custom(HERE))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
            Err(A::Error::custom(HERE))
        }
    }
}

/// The `/probe` route, merged into the API's router outside its middleware.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/probe", get(probe_handler))
}

#[derive(Debug, Deserialize)]
struct ProbeQuery {
    target: Option<String>,
    module: Option<String>,
    debug: Option<String>,
    hostname: Option<String>,
}

fn plain(status: StatusCode, text: String) -> Response {
    (
        status,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{text}\n"),
    )
        .into_response()
}

async fn probe_handler(State(s): State<ApiState>, request: Request) -> Response {
    // `/probe` connects wherever the request says: with `read_token` it is not open to
    // anyone who reaches the port (Prometheus sends the token from the scrape job).
    if s.auth.read_token {
        if let Err(e) = s.auth.check(request.headers()) {
            return e.into_response();
        }
    }
    let modules = MODULES.read().unwrap_or_else(|p| p.into_inner()).clone();
    let asked = match read_request(request.uri(), request.headers(), &modules) {
        Ok(asked) => asked,
        Err((status, text)) => return plain(status, text),
    };
    let ProbeRequest {
        module,
        target,
        hostname,
        timeout,
        debug,
    } = asked;
    let outcome = run(module, &target, hostname.as_deref(), timeout, debug).await;
    let text = outcome.exposition();
    if debug {
        let body = format!(
            "Logs for the probe:\n{}\n\n\nMetrics that would have been returned:\n{text}\n\n\nModule configuration:\n{}\n",
            outcome.log.join("\n"),
            module.yaml
        );
        return ([(CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
    }
    ([(CONTENT_TYPE, TEXT_FORMAT)], text).into_response()
}

/// What a `/probe` request asks for, read from its query and headers before anything runs.
#[derive(Debug)]
pub(crate) struct ProbeRequest<'m> {
    module: &'m TcpModule,
    pub target: String,
    pub hostname: Option<String>,
    /// The probe's time budget.
    pub timeout: Duration,
    pub debug: bool,
}

/// Reads a request as blackbox 0.23 does: the status and text of its answer when the
/// request cannot run (unknown or unsupported module, bad timeout header, no target).
pub(crate) fn read_request<'m>(
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    modules: &'m Modules,
) -> Result<ProbeRequest<'m>, (StatusCode, String)> {
    let q = match Query::<ProbeQuery>::try_from_uri(uri) {
        Ok(Query(q)) => q,
        Err(e) => return Err((StatusCode::BAD_REQUEST, e.body_text())),
    };
    let name = q
        .module
        .as_deref()
        .filter(|m| !m.is_empty())
        .unwrap_or(DEFAULT_MODULE);
    let Some(module) = modules.modules.get(name) else {
        return Err((StatusCode::BAD_REQUEST, format!("Unknown module {name:?}")));
    };
    let timeout = match timeout_secs(headers, module) {
        Ok(t) => t,
        Err(e) => {
            return Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Failed to parse timeout from Prometheus header: {e}"),
            ))
        }
    };
    let Some(target) = q.target.filter(|t| !t.is_empty()) else {
        return Err((
            StatusCode::BAD_REQUEST,
            "Target parameter is missing".into(),
        ));
    };
    let module = match module {
        Module::Tcp(m) => m,
        Module::Unsupported(why) => {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("Unsupported module {name:?}: {why}"),
            ))
        }
    };
    Ok(ProbeRequest {
        module,
        target,
        hostname: q.hostname,
        // `max` also turns NaN into the floor.
        timeout: Duration::from_secs_f64(timeout.max(0.001).min(MAX_TIMEOUT.as_secs_f64())),
        debug: q.debug.as_deref() == Some("true"),
    })
}

/// blackbox's `getTimeout`.
fn timeout_secs(headers: &HeaderMap, module: &Module) -> Result<f64, String> {
    let mut secs = 0.0;
    if let Some(v) = headers.get("X-Prometheus-Scrape-Timeout-Seconds") {
        let text = v.to_str().map_err(|e| e.to_string())?;
        secs = text
            .trim()
            .parse::<f64>()
            .map_err(|e| format!("strconv.ParseFloat: parsing {text:?}: {e}"))?;
    }
    if secs == 0.0 {
        secs = DEFAULT_TIMEOUT;
    }
    let max = secs - TIMEOUT_OFFSET;
    let module_secs = match module {
        Module::Tcp(m) => m.timeout.map_or(0.0, |t| t.as_secs_f64()),
        Module::Unsupported(_) => 0.0,
    };
    Ok(if (module_secs < max && module_secs > 0.0) || max < 0.0 {
        module_secs
    } else {
        max
    })
}

/// What one probe found, as blackbox's gauges.
#[derive(Debug, Default)]
struct Outcome {
    success: bool,
    duration: f64,
    dns_lookup: f64,
    ip_protocol: f64,
    ip_hash: f64,
    failed_due_to_regex: bool,
    tls: Option<TlsGauges>,
    /// Whether the request asked for `debug=true`: only then is `log` written.
    debug: bool,
    log: Vec<String>,
}

#[derive(Debug)]
struct TlsGauges {
    earliest_expiry: f64,
    last_chain_expiry: f64,
    version: &'static str,
    /// `probe_ssl_last_chain_info`'s labels: the leaf's SHA-256, subject and issuer as Go
    /// writes them, its DNS names joined by `,`.
    fingerprint: String,
    subject: String,
    issuer: String,
    dns_names: String,
}

async fn run(
    module: &TcpModule,
    target: &str,
    hostname: Option<&str>,
    budget: Duration,
    debug: bool,
) -> Outcome {
    let start = Instant::now();
    let mut out = Outcome {
        debug,
        ..Outcome::default()
    };
    let finish = |mut out: Outcome| {
        out.duration = start.elapsed().as_secs_f64();
        out
    };
    let parsed = match Target::parse_with_default(target, None) {
        Ok(t) => t,
        Err(e) => {
            out.note(|| format!("Error splitting target address and port: {e}"));
            return finish(out);
        }
    };
    // An address needs no lookup, so no timer either (this runs per request).
    let resolved = match parsed.host {
        Host::Ip(_) => Ok(choose_address(module, &parsed, &mut out).await),
        _ => tokio::time::timeout(budget, choose_address(module, &parsed, &mut out)).await,
    };
    let Ok(Some(ip)) = resolved else {
        if resolved.is_err() {
            out.note(|| "Error resolving address: timed out".into());
        }
        return finish(out);
    };
    out.note(|| format!("Resolved target address ip={ip}"));
    let address = Target {
        host: Host::Ip(ip),
        port: parsed.port,
    };
    let remaining = budget
        .saturating_sub(start.elapsed())
        .max(Duration::from_millis(1));
    // The module's own limits (a blackbox module has none), within what the scrape leaves.
    let mut spec = module.template.clone();
    spec.target = address;
    spec.family = Family::Any;
    spec.limits.deadline = remaining;
    spec.limits.connect_timeout = spec.limits.connect_timeout.min(remaining);
    spec.limits.idle_timeout = spec.limits.idle_timeout.min(remaining);
    if module.reports_tls() {
        // tls_config.server_name, else the hostname parameter (as later blackbox versions
        // do; 0.23 ignores it for tcp), else the target's host name (an address sends none
        // and is verified against the certificate's IP entries, as Go does).
        spec.tls.sni = spec
            .tls
            .sni
            .take()
            .or_else(|| hostname.map(str::to_string))
            .or_else(|| match &parsed.host {
                Host::Name(_) => Some(parsed.host.to_string()),
                Host::Ip(_) => None,
            });
    }
    let probe = match &module.tls_client {
        None => Probe::new(spec),
        Some(Ok(client)) => Probe::with_tls_client(spec, client),
        Some(Err(e)) => {
            out.note(|| format!("Error creating TLS configuration: {e}"));
            return finish(out);
        }
    };
    let probe = match probe {
        Ok(p) => p,
        Err(e) => {
            out.note(|| format!("Error setting up the probe: {e}"));
            return finish(out);
        }
    };
    let mut result = if debug {
        probe.run_traced().await
    } else {
        probe.run().await
    };
    for event in &result.transcript {
        out.note(|| dialog_line(module, event));
    }
    let message = std::mem::take(&mut result.message);
    out.note(|| message);
    // A warning (a native module's response-time or certificate-age threshold) still
    // answered correctly: blackbox has no warning state, so it counts as success.
    out.success = matches!(result.state, probe::State::Ok | probe::State::Warning);
    // Set only when the answer itself proved an expectation wrong: blackbox's line reader
    // reached the end of the connection without a matching line (or a native module's
    // matcher decided the data can no longer match); a deadline, a reset or a TLS failure
    // while waiting leave it 0, as in blackbox.
    out.failed_due_to_regex = result.expect_end.is_some_and(ExpectEnd::answer_was_wrong);
    if module.reports_tls() {
        // Set once the handshake succeeded (at connect or at the starttls step), as
        // blackbox registers them then; a later failure keeps them.
        if let Some(t) = result.tls {
            out.tls = Some(TlsGauges {
                earliest_expiry: t.earliest_expiry_unix as f64,
                last_chain_expiry: t
                    .verified_chain_expiry_unix
                    .map_or(GO_ZERO_TIME, |e| e as f64),
                version: tls_version_name(&t.version),
                fingerprint: t.leaf_sha256,
                subject: t.leaf_subject_rfc2253,
                issuer: t.leaf_issuer_rfc2253,
                dns_names: t.leaf_dns_names.join(","),
            });
        }
    }
    finish(out)
}

/// One dialog event of a traced probe as a `debug=true` log line, in blackbox's words where
/// it has them, naming the `query_response` entry (or, for a native module, the step).
fn dialog_line(module: &TcpModule, event: &DialogEvent) -> String {
    let step = match event {
        DialogEvent::Sent { step, .. }
        | DialogEvent::Matched { step, .. }
        | DialogEvent::Unmatched { step, .. }
        | DialogEvent::TlsStarted { step, .. } => *step,
    };
    let place = match module.entries.get(step) {
        Some(entry) => format!("entry_number={entry}"),
        None => format!("step={}", step + 1),
    };
    match event {
        DialogEvent::Sent { data, .. } => format!("Sending line {place} line=\"{data}\""),
        DialogEvent::Matched {
            expectation, used, ..
        } => format!("Regexp matched {place} expect=\"{expectation}\" read=\"{used}\""),
        DialogEvent::Unmatched {
            expectation,
            received,
            end,
            ..
        } => {
            let why = match end {
                ExpectEnd::Closed => "Regexp did not match before the connection closed",
                ExpectEnd::Mismatch => "Regexp did not match",
                ExpectEnd::Deadline | ExpectEnd::Idle => {
                    "Error reading from connection: timed out still waiting"
                }
                ExpectEnd::MaxBytes => "Error reading from connection: too much data",
                ExpectEnd::ReadError => "Error reading from connection",
            };
            format!("{why} {place} expect=\"{expectation}\" received=\"{received}\"")
        }
        DialogEvent::TlsStarted { version, .. } => {
            format!("TLS Handshake (client) succeeded {place} version={version}")
        }
    }
}

/// blackbox's `chooseProtocol`: the first address of the preferred family, else (with
/// fallback) the first of the other; sets the DNS time, protocol and address hash.
async fn choose_address(module: &TcpModule, target: &Target, out: &mut Outcome) -> Option<IpAddr> {
    let started = Instant::now();
    let addrs: Vec<IpAddr> = match &target.host {
        Host::Ip(ip) => vec![*ip],
        other => match tokio::net::lookup_host(format!("{other}:0")).await {
            Ok(a) => a.map(|s: SocketAddr| s.ip()).collect(),
            Err(e) => {
                out.dns_lookup = started.elapsed().as_secs_f64();
                out.note(|| format!("Error resolving address: {e}"));
                return None;
            }
        },
    };
    out.dns_lookup = started.elapsed().as_secs_f64();
    let preferred = addrs.iter().find(|a| a.is_ipv6() == module.prefer_v6);
    let chosen = match preferred {
        Some(a) => Some(*a),
        None if module.fallback => addrs.first().copied(),
        None => None,
    };
    let Some(ip) = chosen else {
        out.note(|| "Error resolving address: no suitable address found".into());
        return None;
    };
    out.ip_protocol = if ip.is_ipv6() { 6.0 } else { 4.0 };
    out.ip_hash = f64::from(ip_hash(ip));
    Some(ip)
}

/// FNV-1a (32 bit) of the address's bytes (4 for IPv4), as blackbox's `ipHash`.
fn ip_hash(ip: IpAddr) -> u32 {
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets().to_vec(),
        },
    };
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Go's `tls.VersionName` style, as blackbox labels it.
fn tls_version_name(engine: &str) -> &'static str {
    match engine {
        "TLSv1.3" => "TLS 1.3",
        "TLSv1.2" => "TLS 1.2",
        "TLSv1.1" => "TLS 1.1",
        "TLSv1.0" => "TLS 1.0",
        _ => "unknown",
    }
}

impl Outcome {
    /// Adds a line to the debug log; the line is not even made without `debug=true`.
    fn note(&mut self, line: impl FnOnce() -> String) {
        if self.debug {
            self.log.push(line());
        }
    }

    /// The Prometheus text format, metric families in name order as Go's registry writes
    /// them. Written straight into one buffer: this runs for every request.
    fn exposition(&self) -> String {
        let mut text = String::with_capacity(1536);
        let flag = |b: bool| f64::from(u8::from(b));
        gauge(
            &mut text,
            "probe_dns_lookup_time_seconds",
            "Returns the time taken for probe dns lookup in seconds",
            &[],
            self.dns_lookup,
        );
        gauge(
            &mut text,
            "probe_duration_seconds",
            "Returns how long the probe took to complete in seconds",
            &[],
            self.duration,
        );
        gauge(
            &mut text,
            "probe_failed_due_to_regex",
            "Indicates if probe failed due to regex",
            &[],
            flag(self.failed_due_to_regex),
        );
        gauge(
            &mut text,
            "probe_ip_addr_hash",
            "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
            &[],
            self.ip_hash,
        );
        gauge(
            &mut text,
            "probe_ip_protocol",
            "Specifies whether probe ip protocol is IP4 or IP6",
            &[],
            self.ip_protocol,
        );
        if let Some(t) = &self.tls {
            // 0.23's texts, word for word (its constants swapped the meanings).
            gauge(
                &mut text,
                "probe_ssl_earliest_cert_expiry",
                "Returns last SSL chain expiry in unixtime",
                &[],
                t.earliest_expiry,
            );
            gauge(
                &mut text,
                "probe_ssl_last_chain_expiry_timestamp_seconds",
                "Returns last SSL chain expiry in timestamp",
                &[],
                t.last_chain_expiry,
            );
            gauge(
                &mut text,
                "probe_ssl_last_chain_info",
                "Contains SSL leaf certificate information",
                &[
                    ("fingerprint_sha256", &t.fingerprint),
                    ("issuer", &t.issuer),
                    ("subject", &t.subject),
                    ("subjectalternative", &t.dns_names),
                ],
                1.0,
            );
        }
        gauge(
            &mut text,
            "probe_success",
            "Displays whether or not the probe was a success",
            &[],
            flag(self.success),
        );
        if let Some(t) = &self.tls {
            gauge(
                &mut text,
                "probe_tls_version_info",
                "Returns the TLS version used or NaN when unknown",
                &[("version", t.version)],
                1.0,
            );
        }
        text
    }
}

/// One gauge family with one sample: `# HELP`, `# TYPE` and the sample line.
fn gauge(out: &mut String, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
    for part in [
        "# HELP ",
        name,
        " ",
        help,
        "\n# TYPE ",
        name,
        " gauge\n",
        name,
    ] {
        out.push_str(part);
    }
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            push_label_value(out, v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    push_go_float(out, value);
    out.push('\n');
}

/// A label value escaped for the text format: `\`, `"` and newlines.
fn push_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`, the text format's number style.
fn push_go_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if v == 0.0 {
        out.push('0');
        return;
    }
    // Rust's shortest round-trip digits in Go's layout: plain for exponents -4 to 5 (Go's
    // 'g' with the shortest precision), else `d.ddde±XX`.
    let start = out.len();
    let _ = write!(out, "{v:e}");
    let Some(e_at) = out[start..].find('e').map(|i| start + i) else {
        return;
    };
    let exp: i32 = out[e_at + 1..].parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        out.truncate(start);
        let _ = write!(out, "{v}");
    } else {
        out.truncate(e_at + 1);
        out.push(if exp < 0 { '-' } else { '+' });
        let _ = write!(out, "{:02}", exp.abs());
    }
}

#[cfg(test)]
fn go_float(v: f64) -> String {
    let mut s = String::new();
    push_go_float(&mut s, v);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blackbox_config_that_is_a_device_is_refused_by_kind() {
        let e = Modules::read(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "cannot read /dev/zero: is a character device, not a regular file"
        );
    }

    #[test]
    fn ip_hash_matches_blackbox_for_loopback() {
        // blackbox 0.23 printed probe_ip_addr_hash 3.668918509e+09 for 127.0.0.1.
        assert_eq!(ip_hash("127.0.0.1".parse().unwrap()), 3_668_918_509);
    }

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_float(3_668_918_509.0), "3.668918509e+09");
        assert_eq!(go_float(1.9079e-05), "1.9079e-05");
        assert_eq!(go_float(0.00051675), "0.00051675");
        assert_eq!(go_float(4.0), "4");
        assert_eq!(go_float(GO_ZERO_TIME), "-6.21355968e+10");
    }

    #[test]
    fn blackbox_yml_tcp_modules_translate_and_others_are_unsupported() {
        let yml = r#"
modules:
  tcp_banner:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - expect: "^220"
        - send: "QUIT"
  http_2xx:
    prober: http
    http:
      method: GET
  smtp_starttls:
    prober: tcp
    tcp:
      query_response:
        - expect: "^220"
        - send: "STARTTLS"
        - expect: "^220"
        - starttls: true
        - send: "QUIT"
"#;
        let (m, warnings) = Modules::parse(yml, Path::new(".")).unwrap();
        assert_eq!(
            warnings,
            vec![
                "module \"http_2xx\": prober (line 12): prober \"http\" is not supported \
                 (portwarden serves tcp modules only) (/probe answers 400 for it)"
            ]
        );
        let Some(Module::Tcp(b)) = m.modules.get("tcp_banner") else {
            panic!("tcp_banner")
        };
        assert_eq!(b.timeout, Some(Duration::from_secs(2)));
        assert!(!b.prefer_v6 && b.fallback && !b.reports_tls());
        assert_eq!(b.template.steps.len(), 2);
        assert!(matches!(b.template.steps[0], Step::Expect(_)));
        assert_eq!(b.entries, vec![0, 1]);
        assert!(b.tls_client.is_none());
        assert!(matches!(
            m.modules.get("http_2xx"),
            Some(Module::Unsupported(_))
        ));
        assert!(matches!(m.modules.get("tcp_connect"), Some(Module::Tcp(_))));
        let Some(Module::Tcp(s)) = m.modules.get("smtp_starttls") else {
            panic!("smtp_starttls")
        };
        assert!(!s.template.implicit_tls && s.reports_tls());
        assert!(matches!(s.tls_client, Some(Ok(_))));
        assert!(matches!(
            &s.template.steps[..],
            [
                Step::Expect(_),
                Step::Send(ehlo),
                Step::Expect(_),
                Step::Tls,
                Step::Send(quit)
            ] if ehlo == b"STARTTLS\n" && quit == b"QUIT\n"
        ));
    }

    /// The module `m` of a file holding `body` (indented under it), translated.
    fn module(body: &str) -> (Result<TcpModule, String>, Vec<String>) {
        let yml = format!("modules:\n  m:\n{}", indent(body));
        let (mut m, warnings) = Modules::parse(&yml, Path::new("/etc/bb")).unwrap();
        let got = match m.modules.remove("m") {
            Some(Module::Tcp(t)) => Ok(*t),
            Some(Module::Unsupported(why)) => Err(why),
            None => panic!("no module m"),
        };
        (got, warnings)
    }

    fn indent(body: &str) -> String {
        body.lines().map(|l| format!("    {l}\n")).collect()
    }

    fn refusal(body: &str) -> String {
        match module(body).0 {
            Err(why) => why,
            Ok(_) => panic!("translated:\n{body}"),
        }
    }

    #[test]
    fn tls_config_translates_client_certificates_versions_and_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["prober".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(dir.path().join("client.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("client.key"), key.serialize_pem()).unwrap();
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).unwrap();
        let yml = "modules:\n  m:\n    prober: tcp\n    tcp:\n      tls: true\n      tls_config:\n        \
                   ca_file: ca.pem\n        cert_file: client.pem\n        key_file: client.key\n        \
                   server_name: mail.test\n        min_version: TLS12\n        max_version: TLS13\n";
        let (m, warnings) = Modules::parse(yml, dir.path()).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let Some(Module::Tcp(t)) = m.modules.get("m") else {
            panic!("m")
        };
        assert!(t.template.implicit_tls && t.reports_tls());
        assert_eq!(t.template.tls.sni.as_deref(), Some("mail.test"));
        assert!(matches!(t.tls_client, Some(Ok(_))), "{:?}", t.tls_client);

        // A file that is not there: loaded, warned about, and every probe fails.
        let (got, warnings) =
            module("prober: tcp\ntcp:\n  tls: true\n  tls_config:\n    ca_file: missing.pem\n");
        let t = got.unwrap();
        let Some(Err(e)) = &t.tls_client else {
            panic!("{:?}", t.tls_client)
        };
        assert!(e.contains("/etc/bb/missing.pem"), "{e}");
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0]
                .starts_with("module \"m\": tcp.tls_config (line 6): CA file /etc/bb/missing.pem"),
            "{warnings:?}"
        );
        assert!(warnings[0].ends_with("(every probe of it fails, as in blackbox)"));
    }

    #[test]
    fn settings_blackbox_fails_every_probe_of_load_and_fail_the_same_way() {
        let cases = [
            (
                "prober: tcp\ntcp:\n  tls: true\n  tls_config:\n    cert_file: c.pem\n",
                "tcp.tls_config.cert_file (line 7): client cert file \"c.pem\" specified without client key file",
            ),
            (
                "prober: tcp\ntcp:\n  tls: true\n  tls_config:\n    key_file: c.key\n",
                "tcp.tls_config.key_file (line 7): client key file \"c.key\" specified without client cert file",
            ),
            (
                "prober: tcp\ntcp:\n  tls: true\n  tls_config:\n    min_version: TLS13\n    max_version: TLS12\n",
                "tcp.tls_config.max_version (line 8): tls_config.max_version must be greater than or \
                 equal to tls_config.min_version if both are specified",
            ),
        ];
        for (body, want) in cases {
            let (got, warnings) = module(body);
            let m = got.unwrap();
            assert!(matches!(m.tls_client, Some(Err(_))), "{body}");
            assert_eq!(
                warnings,
                vec![format!(
                    "module \"m\": {want} (every probe of it fails, as in blackbox)"
                )]
            );
        }
        // Without TLS blackbox never builds the TLS configuration: nothing fails.
        let (got, warnings) = module("prober: tcp\ntcp:\n  tls_config:\n    cert_file: c.pem\n");
        assert!(got.unwrap().tls_client.is_none());
        assert!(warnings.is_empty());
        // A handshake inside TLS: the engine's Step::Tls fails on a TLS connection.
        for (body, want) in [
            (
                "prober: tcp\ntcp:\n  tls: true\n  query_response:\n    - starttls: true\n",
                "tcp.query_response[0].starttls (line 7): starttls on a connection that tls: true already encrypts",
            ),
            (
                "prober: tcp\ntcp:\n  query_response:\n    - starttls: true\n    - starttls: true\n",
                "tcp.query_response[1].starttls (line 7): a second starttls on a connection already upgraded",
            ),
        ] {
            let (got, warnings) = module(body);
            assert!(got.unwrap().reports_tls());
            assert_eq!(
                warnings,
                vec![format!("module \"m\": {want} (every probe of it fails, as in blackbox)")]
            );
        }
    }

    #[test]
    fn send_after_an_expect_expands_capture_groups_as_blackbox_does() {
        let (got, warnings) = module(
            "prober: tcp\ntcp:\n  query_response:\n    - expect: \"^220 (?P<host>\\\\S+)\"\n      \
             send: \"HELO ${host}\"\n    - send: \"COST $5\"\n    - expect: \"^250\"\n      send: \"QUIT\"\n",
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        let m = got.unwrap();
        assert!(
            matches!(
                &m.template.steps[..],
                [
                    Step::Expect(_),
                    Step::SendExpanded(helo),
                    Step::Send(cost),
                    Step::Expect(_),
                    Step::Send(quit),
                ] if helo == b"HELO ${host}\n" && cost == b"COST $5\n" && quit == b"QUIT\n"
            ),
            "{:?}",
            m.template.steps
        );
        let Step::Expect(e) = &m.template.steps[0] else {
            panic!("expect")
        };
        assert_eq!(e.to_string(), r"a line matching /^220 (?P<host>\S+)/");
    }

    #[test]
    fn refusals_name_the_key_and_its_line() {
        let cases = [
            (
                "prober: tcp\ntcp:\n  query_response:\n    - expect_bytes: \"\\x00\"\n",
                "tcp.query_response[0].expect_bytes (line 6): \"expect_bytes\" is a key of later \
                 blackbox_exporter versions; 0.23 refuses it and portwarden does not translate it",
            ),
            (
                "prober: tcp\ntcp:\n  query_response:\n    - expect: \"^220\"\n    - expect: \"(?P<v>.*)\"\n      labels:\n        - name: v\n          value: \"${v}\"\n",
                "tcp.query_response[1].labels (line 8): \"labels\" is a key of later \
                 blackbox_exporter versions; 0.23 refuses it and portwarden does not translate it",
            ),
            (
                "prober: tcp\ntimeout: 5s\nretries: 3\n",
                "retries (line 5): unknown key \"retries\" (blackbox_exporter refuses it at load)",
            ),
            (
                "prober: tcp\ntcp:\n  tls: true\n  tls_config:\n    ca: \"-----BEGIN\"\n",
                "tcp.tls_config.ca (line 7): \"ca\" is a key of later blackbox_exporter versions; \
                 0.23 refuses it and portwarden does not translate it",
            ),
            (
                "prober: tcp\ntcp:\n  tls: true\n  tls_config:\n    min_version: TLS10\n",
                "tcp.tls_config.min_version (line 7): TLS10: portwarden's TLS (rustls) speaks \
                 TLS 1.2 and 1.3 only",
            ),
            (
                "prober: tcp\ntcp:\n  tls: true\n  tls_config:\n    max_version: TLS14\n",
                "tcp.tls_config.max_version (line 7): unknown TLS version: TLS14 \
                 (blackbox_exporter refuses it at load)",
            ),
            (
                "prober: tcp\ntcp:\n  query_response:\n    - expect: \"(\"\n",
                "tcp.query_response[0].expect (line 6): ",
            ),
        ];
        for (body, want) in cases {
            let got = refusal(body);
            assert!(
                got.starts_with(want),
                "for:\n{body}\ngot:  {got}\nwant: {want}"
            );
        }
    }

    #[test]
    fn every_unknown_key_is_reported_and_other_modules_still_load() {
        let yml = "modules:\n  good:\n    prober: tcp\n  bad:\n    prober: tcp\n    tcp:\n      \
                   tsl: true\n      query_response:\n        - expect: x\n          sned: y\n";
        let (m, warnings) = Modules::parse(yml, Path::new(".")).unwrap();
        assert!(matches!(m.modules.get("good"), Some(Module::Tcp(_))));
        let Some(Module::Unsupported(why)) = m.modules.get("bad") else {
            panic!("bad")
        };
        assert_eq!(
            why,
            "tcp.tsl (line 7): unknown key \"tsl\" (blackbox_exporter refuses it at load); \
             tcp.query_response[0].sned (line 10): unknown key \"sned\" (blackbox_exporter refuses it at load)"
        );
        assert_eq!(warnings.len(), 2);
        assert!(
            warnings[0].starts_with("module \"bad\": tcp.tsl (line 7)"),
            "{warnings:?}"
        );
    }

    #[test]
    fn last_chain_info_labels_are_escaped_for_the_text_format() {
        let mut escaped = String::new();
        push_label_value(&mut escaped, r#"CN=a\,b "q""#);
        assert_eq!(escaped, r#"CN=a\\,b \"q\""#);
        let out = Outcome {
            tls: Some(TlsGauges {
                earliest_expiry: 1.0,
                last_chain_expiry: 1.0,
                version: "TLS 1.3",
                fingerprint: "ab".into(),
                subject: "CN=x".into(),
                issuer: "CN=ca".into(),
                dns_names: "x,y".into(),
            }),
            ..Outcome::default()
        };
        assert!(out.exposition().contains(
            "probe_ssl_last_chain_info{fingerprint_sha256=\"ab\",issuer=\"CN=ca\",subject=\"CN=x\",subjectalternative=\"x,y\"} 1\n"
        ));
    }

    #[test]
    fn timeout_is_the_scrape_timeout_minus_the_offset_unless_the_module_is_shorter() {
        let mut h = HeaderMap::new();
        let mut m = TcpModule::connect();
        m.timeout = Some(Duration::from_secs(5));
        let module = Module::Tcp(Box::new(m));
        assert_eq!(timeout_secs(&h, &module).unwrap(), 5.0);
        h.insert(
            "X-Prometheus-Scrape-Timeout-Seconds",
            "1.5".parse().unwrap(),
        );
        assert_eq!(timeout_secs(&h, &module).unwrap(), 1.0);
        let mut m = TcpModule::connect();
        m.timeout = None;
        assert_eq!(
            timeout_secs(&HeaderMap::new(), &Module::Tcp(Box::new(m))).unwrap(),
            119.5
        );
    }

    /// Found by the `probe_query` fuzz target: a module without a timeout took the header's
    /// `inf` (or `1e20`) as its budget, and converting it to a duration panicked the handler
    /// (`1e19` fit a duration but overflowed the engine's deadline).
    #[test]
    fn a_scrape_timeout_header_of_inf_or_beyond_any_clock_is_capped() {
        let (modules, _) = Modules::parse("modules:\n  m:\n    prober: tcp\n", Path::new("."))
            .expect("the module parses");
        let uri: axum::http::Uri = "/probe?target=127.0.0.1:1&module=m".parse().unwrap();
        let found = "91111111111111111111111.6";
        for header in [found, "inf", "1e20", "1e19", "NaN", "7200"] {
            let mut h = HeaderMap::new();
            h.insert(
                "X-Prometheus-Scrape-Timeout-Seconds",
                header.parse().unwrap(),
            );
            let request = read_request(&uri, &h, &modules).expect("the request can run");
            assert!(
                request.timeout > Duration::ZERO && request.timeout <= MAX_TIMEOUT,
                "{header}: {:?}",
                request.timeout
            );
        }
    }
}
