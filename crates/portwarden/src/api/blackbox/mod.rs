//! `GET /probe?target=HOST:PORT&module=NAME[&debug=true]`: blackbox_exporter's `/probe`
//! contract for its `tcp` prober, answered by the probe engine directly (not the scheduler).
//!
//! Modules: the built-in `tcp_connect`, plus the `tcp` modules of a real `blackbox.yml` named
//! by `[daemon] blackbox_config` ([`load`] at start, [`prepare`] on reload), held in a
//! [`ModuleTable`] that the router is given (no process-wide table: two routers built with
//! different tables answer each from its own). Each is translated once into a [`ProbeSpec`]
//! template and, with TLS, a [`TlsClient`] (CA and client certificate files read at load,
//! not per request); a request picks the address as blackbox's
//! `chooseProtocol` does (preferred family, optional fallback), runs the engine against that
//! address and answers with the same metric names, meanings and text format. Requests,
//! status codes and messages follow blackbox 0.23 (`Unknown module "x"`, `Target parameter
//! is missing`), and the probe timeout is `min(module timeout,
//! X-Prometheus-Scrape-Timeout-Seconds − 0.5 s)`, 120 s with neither.
//!
//! Translated as blackbox 0.23 runs them: `query_response` `expect` (a regex tested line by
//! line, lines without their `\n` or `\r\n`, each entry starting after the line the entry
//! before matched: [`portwarden_probe::Matcher::Line`]),
//! `send` (with the expect's capture groups expanded into it:
//! [`portwarden_probe::Step::SendExpanded`]), `starttls` (the connection is upgraded in place
//! after that entry's expect and send: [`portwarden_probe::Step::Tls`]), `tls`, and `tls_config`
//! `ca_file`, `cert_file` + `key_file`, `server_name`, `insecure_skip_verify`, `min_version` /
//! `max_version` (TLS12, TLS13). Relative file names are resolved against the working directory,
//! as blackbox opens them. With TLS the gauges include `probe_ssl_last_chain_info` (leaf SHA-256,
//! subject and issuer as Go writes them, DNS names) and the last chain expiry over the verified
//! chains.
//!
//! Refused at load, one warning per problem naming the module, the key and its line, the
//! module then answering 400 while the others run: keys 0.23 does not know (it refuses the
//! whole file), keys of later versions (`expect_bytes`, `labels`, inline `ca` / `cert` /
//! `key`), TLS 1.0 / 1.1 (rustls speaks 1.2 and 1.3). Settings with which blackbox loads the
//! module but fails every probe (`cert_file` without `key_file`, `max_version` below
//! `min_version`, an unreadable file, `starttls` twice or after `tls: true`) are translated
//! to fail the same way, with a warning at load.
//!
//! The files follow blackbox_exporter's own: `config.rs` translates a `blackbox.yml`
//! (`config/config.go`), with `locate.rs` finding the line of a refused key; `handler.rs`
//! reads a request and answers it (`prober/handler.go`); `tcp.rs` runs the probe
//! (`prober/tcp.go`, with `chooseProtocol` and `ipHash` of `prober/utils.go`);
//! `exposition.rs` writes the gauges as text. This file holds the modules themselves.

mod config;
mod exposition;
mod handler;
mod locate;
mod tcp;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use portwarden_probe::{Family, Host, ProbeSpec, Target, TlsClient};

use crate::config::ProbeModule;

pub(crate) use handler::{read_request, routes};

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

/// The modules `/probe` serves, shared by the router that answers with them and the daemon
/// that replaces them on SIGHUP: a request takes the table as it is when the request
/// arrives, a reload swaps it whole. Clones share one table.
#[derive(Debug, Clone)]
pub struct ModuleTable(Arc<RwLock<Arc<Modules>>>);

impl ModuleTable {
    /// A table serving `modules`.
    pub fn new(modules: Modules) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(modules))))
    }

    /// The modules serving now.
    pub fn current(&self) -> Arc<Modules> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Serves `modules` from now on (what [`prepare`] made).
    pub fn replace(&self, modules: Modules) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(modules);
    }
}

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
}

/// Loads the modules of `path` (or only the built-in ones for `None`) and the config's
/// `[[probe_module]]`s, which win over a `blackbox.yml` module of the same name. A
/// `blackbox.yml` that cannot be read at start leaves the built-in ones (logged).
pub fn load(path: Option<&Path>, native: &[ProbeModule]) -> ModuleTable {
    ModuleTable::new(prepare(path, native, &Modules::builtin()))
}

/// The modules to serve instead of `running` (the table's current ones), read (blocking)
/// but not yet serving: a `blackbox.yml` that cannot be read keeps the running modules
/// from it (logged).
pub fn prepare(path: Option<&Path>, native: &[ProbeModule], running: &Modules) -> Modules {
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
