//! A `blackbox.yml` translated (blackbox's `config/config.go`): the keys 0.23 knows are
//! checked, each `tcp` module becomes a [`TcpModule`]; what cannot be translated is refused
//! with its key and line ([`Refusal`]), the module then kept as unsupported.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use portwarden_probe::{
    ClientCert, Expectation, Matcher, Step, TlsClient, TlsSpec, TlsVersion, Verify,
};
use serde::Deserialize;

use super::locate::{self, Seg};
use super::{unbounded_template, Module, Modules, TcpModule};

impl Modules {
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

#[cfg(test)]
mod tests {
    use super::super::*;
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
}
