//! `GET /probe?target=HOST:PORT&module=NAME[&debug=true]`: blackbox_exporter's `/probe`
//! contract for its `tcp` prober, answered by the probe engine directly (not the scheduler).
//!
//! Modules: the built-in `tcp_connect`, plus the `tcp` modules of a real `blackbox.yml` named
//! by `[daemon] blackbox_config` ([`load`], at start and on reload). Each is translated once
//! into a [`ProbeSpec`] template; a request picks the address as blackbox's `chooseProtocol`
//! does (preferred family, optional fallback), runs the engine against that address and
//! answers with the same metric names, meanings and text format. Requests, status codes and
//! messages follow blackbox 0.23 (`Unknown module "x"`, `Target parameter is missing`), and
//! the probe timeout is `min(module timeout, X-Prometheus-Scrape-Timeout-Seconds − 0.5 s)`,
//! 120 s with neither.
//!
//! Not translated yet: `query_response` steps with `starttls: true` (blackbox upgrades the
//! connection in place; the engine only knows protocol-specific STARTTLS), `expect_bytes`
//! and `labels`; a module using them is reported at load and answers 400.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::{Duration, Instant};

use axum::extract::Query;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use probe::{Expectation, Family, Host, Matcher, Probe, ProbeSpec, Reason, Step, Target, Verify};
use serde::Deserialize;

/// blackbox_exporter's `--timeout-offset` default.
const TIMEOUT_OFFSET: f64 = 0.5;
/// The probe timeout with neither a module timeout nor the scrape-timeout header.
const DEFAULT_TIMEOUT: f64 = 120.0;
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
}

#[derive(Debug, Clone)]
enum Module {
    Tcp(Box<TcpModule>),
    /// A module this endpoint cannot run, with the reason given at probe time.
    Unsupported(String),
}

/// A `tcp` module, translated.
#[derive(Debug, Clone)]
struct TcpModule {
    timeout: Option<Duration>,
    prefer_v6: bool,
    fallback: bool,
    source: Option<IpAddr>,
    tls: bool,
    verify: Verify,
    server_name: Option<String>,
    steps: Vec<Step>,
    /// Whether a step reads with a regex (so a mismatch sets `probe_failed_due_to_regex`).
    has_expect: bool,
    /// The module as written, for `debug=true`.
    yaml: String,
}

impl TcpModule {
    fn connect() -> Self {
        Self {
            timeout: Some(Duration::from_secs(5)),
            prefer_v6: true,
            fallback: true,
            source: None,
            tls: false,
            verify: Verify::SystemRoots,
            server_name: None,
            steps: Vec::new(),
            has_expect: false,
            yaml: "prober: tcp\ntimeout: 5s\n".into(),
        }
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
        Self { modules }
    }

    /// Reads a `blackbox.yml`: its modules replace nothing but add to `tcp_connect` (a module
    /// of that name in the file wins). Non-tcp and untranslatable modules are kept as
    /// unsupported and listed in the warnings.
    pub fn read(path: &Path) -> anyhow::Result<(Self, Vec<String>)> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base)
    }

    fn parse(text: &str, base: &Path) -> anyhow::Result<(Self, Vec<String>)> {
        let file: RawFile =
            serde_norway::from_str(text).map_err(|e| anyhow::anyhow!("blackbox config: {e}"))?;
        let mut out = Self::builtin();
        let mut warnings = Vec::new();
        for (name, raw) in file.modules {
            let module = match translate(&raw, base) {
                Ok(m) => Module::Tcp(Box::new(m)),
                Err(why) => {
                    warnings.push(format!("module {name:?}: {why}"));
                    Module::Unsupported(why)
                }
            };
            out.modules.insert(name, module);
        }
        Ok((out, warnings))
    }
}

/// Loads the modules of `path` (or only the built-in ones for `None`); on error the running
/// modules stay and the error is logged.
pub fn load(path: Option<&Path>) {
    let modules = match path {
        None => Modules::builtin(),
        Some(p) => match Modules::read(p) {
            Ok((m, warnings)) => {
                for w in warnings {
                    tracing::warn!("{}: {w} (/probe answers 400 for it)", p.display());
                }
                m
            }
            Err(e) => {
                tracing::warn!("/probe keeps its modules: {e:#}");
                return;
            }
        },
    };
    *MODULES.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(modules);
}

#[derive(Debug, Deserialize)]
struct RawFile {
    #[serde(default)]
    modules: BTreeMap<String, serde_norway::Value>,
}

#[derive(Debug, Deserialize)]
struct RawModule {
    prober: String,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    tcp: RawTcp,
}

#[derive(Debug, Default, Deserialize)]
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
struct RawStep {
    #[serde(default)]
    expect: Option<String>,
    #[serde(default)]
    send: Option<String>,
    #[serde(default)]
    starttls: bool,
    #[serde(default)]
    expect_bytes: Option<String>,
    #[serde(default)]
    labels: Option<serde_norway::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct RawTls {
    #[serde(default)]
    insecure_skip_verify: bool,
    #[serde(default)]
    ca_file: Option<String>,
    #[serde(default)]
    server_name: Option<String>,
    #[serde(default)]
    cert_file: Option<String>,
}

fn translate(value: &serde_norway::Value, base: &Path) -> Result<TcpModule, String> {
    let raw: RawModule =
        serde_norway::from_value(value.clone()).map_err(|e| format!("cannot read: {e}"))?;
    if raw.prober != "tcp" {
        return Err(format!(
            "prober {:?} is not supported (portwarden serves tcp modules only)",
            raw.prober
        ));
    }
    let timeout = match raw.timeout.as_deref() {
        None => None,
        Some(t) => Some(humantime::parse_duration(t).map_err(|e| format!("timeout {t:?}: {e}"))?),
    };
    let tcp = raw.tcp;
    let prefer_v6 = match tcp.preferred_ip_protocol.as_deref() {
        None | Some("") | Some("ip6") => true,
        Some("ip4") => false,
        Some(other) => return Err(format!("preferred_ip_protocol {other:?} is not ip4 or ip6")),
    };
    let source = match tcp.source_ip_address.as_deref() {
        None | Some("") => None,
        Some(a) => Some(
            a.parse::<IpAddr>()
                .map_err(|_| format!("source_ip_address {a:?} is not an address"))?,
        ),
    };
    let mut steps = Vec::new();
    let mut has_expect = false;
    for (i, s) in tcp.query_response.iter().enumerate() {
        if s.starttls {
            return Err(format!(
                "query_response[{i}]: starttls is not supported yet"
            ));
        }
        if s.expect_bytes.is_some() || s.labels.is_some() {
            return Err(format!(
                "query_response[{i}]: expect_bytes and labels are not supported"
            ));
        }
        if let Some(expect) = s.expect.as_deref().filter(|e| !e.is_empty()) {
            // blackbox matches line by line: ^ and $ anchor at every line.
            let m = Matcher::regex(&format!("(?m){expect}"))
                .map_err(|e| format!("query_response[{i}].expect: {e}"))?;
            steps.push(Step::Expect(Expectation::one(m)));
            has_expect = true;
        }
        if let Some(send) = s.send.as_deref().filter(|s| !s.is_empty()) {
            steps.push(Step::Send(format!("{send}\n").into_bytes()));
        }
    }
    let tls = &tcp.tls_config;
    if tls.cert_file.is_some() {
        return Err("tls_config.cert_file (client certificates) is not supported".into());
    }
    let verify = if tls.insecure_skip_verify {
        Verify::Insecure
    } else if let Some(ca) = tls.ca_file.as_deref().filter(|c| !c.is_empty()) {
        Verify::CaFile(base.join(ca))
    } else {
        Verify::SystemRoots
    };
    Ok(TcpModule {
        timeout: timeout.filter(|t| !t.is_zero()),
        prefer_v6,
        fallback: tcp.ip_protocol_fallback.unwrap_or(true),
        source,
        tls: tcp.tls,
        verify,
        server_name: tls.server_name.clone().filter(|s| !s.is_empty()),
        steps,
        has_expect,
        yaml: serde_norway::to_string(value).unwrap_or_default(),
    })
}

/// The `/probe` route, merged into the API's router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
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

async fn probe_handler(Query(q): Query<ProbeQuery>, headers: HeaderMap) -> Response {
    let name = q
        .module
        .as_deref()
        .filter(|m| !m.is_empty())
        .unwrap_or(DEFAULT_MODULE);
    let modules = MODULES.read().unwrap_or_else(|p| p.into_inner()).clone();
    let Some(module) = modules.modules.get(name) else {
        return plain(StatusCode::BAD_REQUEST, format!("Unknown module {name:?}"));
    };
    let timeout = match timeout_secs(&headers, module) {
        Ok(t) => t,
        Err(e) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Failed to parse timeout from Prometheus header: {e}"),
            )
        }
    };
    let Some(target) = q.target.as_deref().filter(|t| !t.is_empty()) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "Target parameter is missing".into(),
        );
    };
    let module = match module {
        Module::Tcp(m) => m,
        Module::Unsupported(why) => {
            return plain(
                StatusCode::BAD_REQUEST,
                format!("Unsupported module {name:?}: {why}"),
            )
        }
    };
    let outcome = run(module, target, q.hostname.as_deref(), timeout).await;
    let text = outcome.exposition();
    if q.debug.as_deref() == Some("true") {
        let body = format!(
            "Logs for the probe:\n{}\n\n\nMetrics that would have been returned:\n{text}\n\n\nModule configuration:\n{}\n",
            outcome.log.join("\n"),
            module.yaml
        );
        return ([(CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
    }
    ([(CONTENT_TYPE, TEXT_FORMAT)], text).into_response()
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
    log: Vec<String>,
}

#[derive(Debug)]
struct TlsGauges {
    earliest_expiry: f64,
    last_chain_expiry: f64,
    version: String,
}

async fn run(module: &TcpModule, target: &str, hostname: Option<&str>, timeout: f64) -> Outcome {
    let start = Instant::now();
    let budget = Duration::from_secs_f64(timeout.max(0.001));
    let mut out = Outcome::default();
    let finish = |mut out: Outcome| {
        out.duration = start.elapsed().as_secs_f64();
        out
    };
    let parsed = match Target::parse_with_default(target, None) {
        Ok(t) => t,
        Err(e) => {
            out.log
                .push(format!("Error splitting target address and port: {e}"));
            return finish(out);
        }
    };
    let host_text = match &parsed.host {
        Host::Ip(ip) => ip.to_string(),
        other => other.to_string(),
    };
    let resolved = tokio::time::timeout(budget, choose_address(module, &parsed, &mut out)).await;
    let Ok(Some(ip)) = resolved else {
        if resolved.is_err() {
            out.log.push("Error resolving address: timed out".into());
        }
        return finish(out);
    };
    out.log.push(format!("Resolved target address ip={ip}"));
    let mut spec = ProbeSpec::connect(Target {
        host: Host::Ip(ip),
        port: parsed.port,
    });
    spec.family = Family::Any;
    spec.source = module.source;
    let remaining = budget
        .saturating_sub(start.elapsed())
        .max(Duration::from_millis(1));
    spec.limits.deadline = remaining;
    spec.limits.connect_timeout = remaining;
    spec.limits.idle_timeout = remaining;
    spec.steps = module.steps.clone();
    spec.implicit_tls = module.tls;
    spec.tls.verify = module.verify.clone();
    if module.tls {
        // blackbox: tls_config.server_name, else the hostname parameter, else the target host.
        spec.tls.sni = module
            .server_name
            .clone()
            .or_else(|| hostname.map(str::to_string))
            .or_else(|| matches!(parsed.host, Host::Name(_)).then(|| host_text.clone()));
    }
    let probe = match Probe::new(spec) {
        Ok(p) => p,
        Err(e) => {
            out.log.push(format!("Error setting up the probe: {e}"));
            return finish(out);
        }
    };
    let result = probe.run().await;
    out.log.push(result.message.clone());
    out.success = result.state == probe::State::Ok;
    out.failed_due_to_regex = module.has_expect
        && matches!(
            result.reason,
            Some(Reason::UnexpectedResponse | Reason::NoData)
        );
    if module.tls {
        if let Some(t) = &result.tls {
            out.tls = Some(TlsGauges {
                earliest_expiry: t.earliest_expiry_unix as f64,
                last_chain_expiry: if t.verified {
                    t.earliest_expiry_unix as f64
                } else {
                    GO_ZERO_TIME
                },
                version: tls_version_name(&t.version).to_string(),
            });
        }
    }
    finish(out)
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
                out.log.push(format!("Error resolving address: {e}"));
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
        out.log
            .push("Error resolving address: no suitable address found".into());
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
    /// The Prometheus text format, metric families sorted by name as Go's registry does.
    fn exposition(&self) -> String {
        let mut families: Vec<(&str, &str, String)> = vec![
            (
                "probe_dns_lookup_time_seconds",
                "Returns the time taken for probe dns lookup in seconds",
                sample("", self.dns_lookup),
            ),
            (
                "probe_duration_seconds",
                "Returns how long the probe took to complete in seconds",
                sample("", self.duration),
            ),
            (
                "probe_failed_due_to_regex",
                "Indicates if probe failed due to regex",
                sample("", f64::from(u8::from(self.failed_due_to_regex))),
            ),
            (
                "probe_ip_addr_hash",
                "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
                sample("", self.ip_hash),
            ),
            (
                "probe_ip_protocol",
                "Specifies whether probe ip protocol is IP4 or IP6",
                sample("", self.ip_protocol),
            ),
            (
                "probe_success",
                "Displays whether or not the probe was a success",
                sample("", f64::from(u8::from(self.success))),
            ),
        ];
        if let Some(t) = &self.tls {
            families.push((
                "probe_ssl_earliest_cert_expiry",
                "Returns earliest SSL cert expiry date",
                sample("", t.earliest_expiry),
            ));
            families.push((
                "probe_ssl_last_chain_expiry_timestamp_seconds",
                "Returns last SSL chain expiry in unixtime",
                sample("", t.last_chain_expiry),
            ));
            families.push((
                "probe_tls_version_info",
                "Returns the TLS version used or NaN when unknown",
                sample(&format!("{{version=\"{}\"}}", t.version), 1.0),
            ));
        }
        families.sort_by(|a, b| a.0.cmp(b.0));
        let mut text = String::with_capacity(1024);
        for (name, help, value) in families {
            let _ = write!(
                text,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{value}\n"
            );
        }
        text
    }
}

fn sample(labels: &str, v: f64) -> String {
    format!("{labels} {}", go_float(v))
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`, the text format's number style.
fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return "0".into();
    }
    let e = format!("{v:e}");
    let Some((mantissa, exp)) = e.split_once('e') else {
        return format!("{v}");
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
  smtp_starttls:
    prober: tcp
    tcp:
      query_response:
        - expect: "^220"
        - starttls: true
"#;
        let (m, warnings) = Modules::parse(yml, Path::new(".")).unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        let Some(Module::Tcp(b)) = m.modules.get("tcp_banner") else {
            panic!("tcp_banner")
        };
        assert_eq!(b.timeout, Some(Duration::from_secs(2)));
        assert!(!b.prefer_v6 && b.fallback && b.has_expect);
        assert_eq!(b.steps.len(), 2);
        assert!(matches!(
            m.modules.get("http_2xx"),
            Some(Module::Unsupported(_))
        ));
        assert!(matches!(m.modules.get("tcp_connect"), Some(Module::Tcp(_))));
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
}
