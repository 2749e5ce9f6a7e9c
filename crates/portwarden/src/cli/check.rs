//! `portwarden check PROTOCOL -H HOST …`: one probe, Nagios plugin output and exit code.
//!
//! Option letters and meanings follow Nagios' check_tcp so existing service definitions work
//! unchanged; portwarden's own options are long-only. Deliberate differences from check_tcp
//! are listed in `docs/check_tcp.md`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use portwarden_probe::escape::{parse_hex, unescape};
use portwarden_probe::presets::{self, Preset};
use portwarden_probe::{
    CertDays, ClientCert, Expectation, Family, Host, MatchMode, Matcher, Probe, ProbeSpec, Reason,
    State, Step, Target, Verify,
};

use portwarden_sockets::owner::{ExpectedOwner, OwnerVerdict};
use serde::Serialize;

use super::nagios;
use super::plugin::{TcpService, TCP_SERVICES};
use crate::ownership;

/// Run a check once and report like a Nagios plugin.
#[derive(Debug, Args)]
#[command(
    after_help = "PROTOCOL is `tcp` or a preset: smtp, submission, smtps, pop3, pop3s, imap, imaps, \
ftp, ssh, http, https, redis, memcached, postgres, mysql, nntp, nntps, ldap, ldaps, xmpp, clamd.\n\
Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for usage errors)."
)]
pub struct CheckCommand {
    /// `tcp`, or a protocol preset (default port, greeting, polite quit, TLS).
    #[arg(value_name = "PROTOCOL")]
    protocol: String,
    /// Host to check, if not given with -H (check_tcp accepts it as the first argument).
    #[arg(value_name = "HOST")]
    host: Option<String>,
    #[command(flatten)]
    opts: CheckOptions,
}

/// check_tcp's options (same letters, same meaning) plus portwarden's long options.
#[derive(Debug, Args)]
struct CheckOptions {
    /// Host name, IPv4 or IPv6 address.
    #[arg(short = 'H', long = "hostname", value_name = "ADDRESS")]
    hostname: Option<String>,
    /// Port number (default: the preset's port; required for tcp).
    #[arg(short = 'p', long, value_parser = parse_port)]
    port: Option<u16>,
    /// Use IPv4 only.
    #[arg(short = '4', long = "use-ipv4", conflicts_with = "use_ipv6")]
    use_ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6', long = "use-ipv6")]
    use_ipv6: bool,
    /// Interpret \r \n \t \\ \0 \xHH in the send and quit strings (no \r\n added to quit).
    #[arg(short = 'E', long)]
    escape: bool,
    /// String to send to the server.
    #[arg(short = 's', long)]
    send: Option<String>,
    /// String to expect anywhere in the server's response (may be repeated).
    #[arg(short = 'e', long, value_name = "STRING")]
    expect: Vec<String>,
    /// The response must start with this string (may be repeated).
    #[arg(long, value_name = "STRING")]
    expect_prefix: Vec<String>,
    /// The response must match this regular expression (may be repeated).
    #[arg(long, value_name = "REGEX")]
    expect_regex: Vec<String>,
    /// The response must start with these bytes, in hex (may be repeated).
    #[arg(long, value_name = "HEX")]
    expect_hex: Vec<String>,
    /// All expect strings must occur in the response (default: any).
    #[arg(short = 'A', long)]
    all: bool,
    /// String to send to close the connection politely (\r\n is appended unless -E).
    #[arg(short = 'q', long)]
    quit: Option<String>,
    /// State when the connection is refused: ok, warn, crit (default: crit).
    #[arg(short = 'r', long, value_parser = parse_state, value_name = "ok|warn|crit")]
    refuse: Option<State>,
    /// State when the response does not match: ok, warn, crit (default: warn).
    #[arg(short = 'M', long, value_parser = parse_state, value_name = "ok|warn|crit")]
    mismatch: Option<State>,
    /// Hide the server's response in the output.
    #[arg(short = 'j', long)]
    jail: bool,
    /// Stop reading after this many bytes (the match is still decided on them).
    #[arg(short = 'm', long, value_parser = parse_positive_usize)]
    maxbytes: Option<usize>,
    /// Seconds to wait after sending before reading the response.
    #[arg(short = 'd', long, value_parser = parse_positive_secs, value_name = "SECONDS")]
    delay: Option<Duration>,
    /// Minimum days the certificate must stay valid: WARN[,CRIT] (implies -S).
    #[arg(short = 'D', long = "certificate", value_parser = parse_cert_days, value_name = "WARN[,CRIT]")]
    certificate: Option<CertDays>,
    /// Use TLS from the first byte.
    #[arg(short = 'S', long)]
    ssl: bool,
    /// TLS server name to send (implies -S for tcp).
    #[arg(long)]
    sni: Option<String>,
    /// Response time that results in WARNING (seconds).
    #[arg(short = 'w', long, value_parser = parse_threshold_secs, value_name = "SECONDS")]
    warning: Option<Duration>,
    /// Response time that results in CRITICAL (seconds).
    #[arg(short = 'c', long, value_parser = parse_threshold_secs, value_name = "SECONDS")]
    critical: Option<Duration>,
    /// Seconds before the whole check times out.
    #[arg(short = 't', long, value_parser = parse_positive_secs, default_value = "10", value_name = "SECONDS")]
    timeout: Duration,
    /// Print details after the status line (repeat for more).
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Upgrade with STARTTLS (smtp, submission, imap, pop3, ftp, nntp, postgres presets).
    #[arg(long)]
    starttls: bool,
    /// Verify the certificate against the system's trusted roots (check_tcp never verifies).
    #[arg(long)]
    verify: bool,
    /// Verify the certificate against the CAs in this PEM file.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Client certificate (PEM) to present; needs --client-key.
    #[arg(long, value_name = "FILE", requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// Private key (PEM) of the client certificate.
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// Seconds allowed for each address's TCP handshake (default: the -t timeout).
    #[arg(long, value_parser = parse_positive_secs, value_name = "SECONDS")]
    connect_timeout: Option<Duration>,
    /// Once data has arrived, seconds of silence that end an undecided read.
    #[arg(long, value_parser = parse_positive_secs, default_value = "2", value_name = "SECONDS")]
    idle_timeout: Duration,
    /// Local address to connect from.
    #[arg(long, value_name = "ADDRESS")]
    source: Option<IpAddr>,
    /// The local socket on the port must belong to this program: a process name, an
    /// executable path, or unit:NAME (systemd). CRITICAL names the program holding it.
    #[arg(long, value_parser = ExpectedOwner::parse, value_name = "NAME")]
    owner: Option<ExpectedOwner>,
    /// The port must be closed: OK when every address refuses, CRITICAL when one accepts.
    #[arg(long)]
    must_be_closed: bool,
    /// Invoked as this check_tcp service's link (`check_pop`): its port, send, expect and
    /// quit strings and TLS are the defaults. Set by the plugin-name invocation.
    #[arg(long, hide = true, value_name = "SERVICE")]
    plugin_service: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Nagios)]
    format: Format,
    /// Same as --format json.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// check_tcp's single status line with performance data.
    Nagios,
    /// The structured probe result.
    Json,
}

/// What the output needs besides the result.
#[derive(Debug)]
pub(super) struct Report {
    /// Upper-case service name: `TCP`, `SMTP`, …
    pub service: String,
    /// The host as the user gave it with -H (check_tcp omits it otherwise).
    pub host_label: Option<String>,
    pub port: u16,
    pub jail: bool,
    pub shows_response: bool,
    pub warning: Option<Duration>,
    pub critical: Option<Duration>,
    pub timeout: Duration,
    pub verbose: u8,
    pub owner: Option<ExpectedOwner>,
}

/// The JSON output: the probe result plus, when asked, the owner verdict.
#[derive(Serialize)]
struct CheckOutput<'a> {
    #[serde(flatten)]
    result: &'a portwarden_probe::ProbeResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<OwnerVerdict>,
}

impl CheckCommand {
    /// Whether the check loads the system's trusted roots (`--verify` without a CA file).
    pub fn loads_system_roots(&self) -> bool {
        self.opts.verify && self.opts.ca_file.is_none()
    }
}

/// Runs the check; returns the Nagios exit code.
pub fn run(cmd: CheckCommand) -> i32 {
    let format = if cmd.opts.json {
        Format::Json
    } else {
        cmd.opts.format
    };
    let service = cmd.protocol.to_ascii_uppercase();
    let (spec, report) = match build(cmd) {
        Ok(built) => built,
        Err(Invalid::Usage(msg)) => {
            eprintln!("portwarden check: {msg}");
            eprintln!("Try 'portwarden check --help' for more information.");
            return State::Unknown.exit_code();
        }
        Err(Invalid::Critical(msg)) => {
            println!("{service} CRITICAL - {msg}");
            return State::Critical.exit_code();
        }
    };
    let probe = match Probe::new(spec) {
        Ok(p) => p,
        Err(e) => {
            println!("{service} UNKNOWN - {e}");
            return State::Unknown.exit_code();
        }
    };
    execute(&probe, &report, format)
}

/// Runs a prepared probe (and the owner check), prints the result, returns the exit code.
fn execute(probe: &Probe, report: &Report, format: Format) -> i32 {
    let service = &report.service;
    if let Err(e) = crate::daemon::files_for_runtime() {
        println!("{service} UNKNOWN - {e} (a local limit, says nothing about the target)");
        return State::Unknown.exit_code();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            println!("{service} UNKNOWN - cannot start the async runtime: {e}");
            return State::Unknown.exit_code();
        }
    };
    let mut result = runtime.block_on(probe.run());
    // check_tcp decides the response time first and applies the mismatch state only to a
    // result that is not CRITICAL already: a slow wrong answer stays CRITICAL.
    if result.reason == Some(Reason::UnexpectedResponse)
        && report.critical.is_some_and(|c| result.timings.total > c)
    {
        result.state = State::Critical;
    }
    let owner = report
        .owner
        .as_ref()
        .and_then(|expected| ownership::apply(&mut result, expected));
    match format {
        Format::Nagios => print!("{}", nagios::render(report, &result)),
        Format::Json => match serde_json::to_string_pretty(&CheckOutput {
            result: &result,
            owner,
        }) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                println!("{service} UNKNOWN - cannot encode the result: {e}");
                return State::Unknown.exit_code();
            }
        },
    }
    result.state.exit_code()
}

/// `portwarden check -c FILE MONITOR [--json] [-v]`: one configured monitor, once.
pub fn run_configured(args: &[String]) -> i32 {
    let usage = || {
        eprintln!("usage: portwarden check -c FILE MONITOR [--json|--format json] [-v]");
        State::Unknown.exit_code()
    };
    let (Some(file), Some(name)) = (args.first(), args.get(1)) else {
        return usage();
    };
    let mut format = Format::Nagios;
    let mut verbose = 0;
    let mut rest = args[2..].iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--json" => format = Format::Json,
            "--format" => match rest.next().map(String::as_str) {
                Some("json") => format = Format::Json,
                Some("nagios") => format = Format::Nagios,
                _ => return usage(),
            },
            "-v" | "--verbose" => verbose += 1,
            _ => return usage(),
        }
    }
    let config = match crate::config::load(std::path::Path::new(file)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return State::Unknown.exit_code();
        }
    };
    let Some(monitor) = config.monitors.into_iter().find(|m| m.name == *name) else {
        eprintln!("portwarden check: no monitor named {name:?} in {file}");
        return State::Unknown.exit_code();
    };
    let spec = monitor.probe.spec();
    let report = Report {
        service: monitor.name.to_ascii_uppercase(),
        host_label: Some(spec.target.host.to_string()),
        port: spec.target.port,
        jail: false,
        shows_response: spec.steps.iter().any(|s| matches!(s, Step::Expect(_))),
        warning: spec.response_time.warning,
        critical: spec.response_time.critical,
        timeout: spec.limits.deadline,
        verbose,
        owner: monitor.owner.clone(),
    };
    execute(&monitor.probe, &report, format)
}

/// Why the command line cannot become a probe.
#[derive(Debug)]
pub(super) enum Invalid {
    /// A usage error: UNKNOWN, message on stderr.
    Usage(String),
    /// check_tcp reports an unusable host as CRITICAL on stdout; so do we.
    Critical(String),
}

pub(super) fn build(cmd: CheckCommand) -> Result<(ProbeSpec, Report), Invalid> {
    let mut o = cmd.opts;
    let preset = lookup_preset(&cmd.protocol)?;
    let service = plugin_service(&mut o)?;
    let host_label = o.hostname.clone();
    // As check_tcp: no host means this one (and the output says only `on port N`).
    let host_text = o
        .hostname
        .clone()
        .or(cmd.host)
        .unwrap_or_else(|| "127.0.0.1".into());
    let port = match (o.port, preset, service) {
        (Some(p), _, _) => p,
        (None, Some(p), _) => p.default_port,
        (None, None, Some(s)) => s.port,
        (None, None, None) => return Err(Invalid::Usage("a port is required for tcp (-p)".into())),
    };
    let host = Host::parse(&host_text).map_err(|_| {
        Invalid::Critical(format!("Invalid hostname, address or socket: {host_text}"))
    })?;
    let mut spec = ProbeSpec::connect(Target { host, port });
    spec.family = match (o.use_ipv4, o.use_ipv6) {
        (true, _) => Family::V4,
        (_, true) => Family::V6,
        _ => Family::Any,
    };
    spec.source = o.source;

    if let Some(preset) = preset {
        preset
            .apply(&mut spec, o.starttls)
            .map_err(Invalid::Usage)?;
    } else if o.starttls {
        return Err(Invalid::Usage(
            "--starttls needs a protocol preset, e.g. `portwarden check smtp --starttls`".into(),
        ));
    }

    let expectation = user_expectation(&o)?;
    let send = o
        .send
        .as_deref()
        .map(|s| {
            if o.escape {
                unescape(s)
            } else {
                Ok(s.as_bytes().to_vec())
            }
        })
        .transpose()
        .map_err(|e| Invalid::Usage(format!("-s: {e}")))?
        // The service's own send string is sent as it is, -E or not.
        .or_else(|| service.and_then(|s| s.send).map(|s| s.as_bytes().to_vec()));
    // A send or expect from the user replaces the preset's dialog (as in check_tcp).
    if send.is_some() || expectation.is_some() {
        // With STARTTLS the preset's greeting and upgrade run first, the user's exchange
        // after them, inside TLS.
        let mut steps: Vec<Step> = match spec
            .steps
            .iter()
            .position(|s| matches!(s, Step::StartTls(_)))
        {
            Some(upgrade) => spec.steps[..=upgrade].to_vec(),
            None => Vec::new(),
        };
        steps.extend(send.map(Step::Send));
        steps.extend(expectation.map(Step::Expect));
        spec.steps = steps;
    }
    if let Some(q) = &o.quit {
        spec.quit = Some(if o.escape {
            unescape(q).map_err(|e| Invalid::Usage(format!("-q: {e}")))?
        } else {
            format!("{q}\r\n").into_bytes()
        });
    } else if let Some(q) = service.and_then(|s| s.quit) {
        spec.quit = Some(q.as_bytes().to_vec());
    }

    spec.implicit_tls |= o.ssl || o.certificate.is_some() || (o.sni.is_some() && !o.starttls);
    spec.tls.sni = o.sni;
    spec.tls.cert_days = o.certificate;
    spec.tls.verify = match (o.ca_file, o.verify) {
        (Some(file), _) => Verify::CaFile(file),
        (None, true) => Verify::SystemRoots,
        (None, false) => Verify::Insecure,
    };
    spec.tls.client_cert = match (o.client_cert, o.client_key) {
        (Some(cert), Some(key)) => Some(ClientCert { cert, key }),
        _ => None,
    };

    spec.limits.deadline = o.timeout;
    spec.limits.connect_timeout = o.connect_timeout.unwrap_or(o.timeout);
    spec.limits.idle_timeout = o.idle_timeout;
    if let Some(max) = o.maxbytes {
        spec.limits.max_bytes = max;
    }
    spec.send_delay = o.delay.unwrap_or_default();
    spec.response_time.warning = o.warning;
    spec.response_time.critical = o.critical;
    spec.states.refused = o.refuse.unwrap_or(State::Critical);
    spec.states.mismatch = o.mismatch.unwrap_or(State::Warning);
    spec.must_be_closed = o.must_be_closed;

    let shows_response = spec.steps.iter().any(|s| matches!(s, Step::Expect(_)));
    let report = Report {
        service: service
            .map_or(cmd.protocol.as_str(), |s| s.name)
            .to_ascii_uppercase(),
        host_label,
        port,
        jail: o.jail,
        shows_response,
        warning: o.warning,
        critical: o.critical,
        timeout: o.timeout,
        verbose: o.verbose,
        owner: o.owner,
    };
    Ok((spec, report))
}

/// `--plugin-service NAME`: the check_tcp service. Its expect strings go before the user's
/// (an `-e` replaces them, or adds to them where check_tcp does that), its TLS and hidden
/// output into the options; its port, send and quit strings apply where the user gave none.
fn plugin_service(o: &mut CheckOptions) -> Result<Option<&'static TcpService>, Invalid> {
    let Some(name) = o.plugin_service.as_deref() else {
        return Ok(None);
    };
    let service = TCP_SERVICES
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| Invalid::Usage(format!("unknown plugin service {name:?}")))?;
    if o.expect.is_empty() || service.expect_appends {
        let mut expect: Vec<String> = service.expect.iter().map(|e| e.to_string()).collect();
        expect.append(&mut o.expect);
        o.expect = expect;
    }
    o.ssl |= service.ssl;
    o.jail |= service.hide_output;
    Ok(Some(service))
}

fn lookup_preset(protocol: &str) -> Result<Option<&'static Preset>, Invalid> {
    if protocol.eq_ignore_ascii_case("tcp") {
        return Ok(None);
    }
    presets::find(protocol).map(Some).ok_or_else(|| {
        let known: Vec<&str> = presets::ALL.iter().map(|p| p.name).collect();
        Invalid::Usage(format!(
            "unknown protocol {protocol:?}; use tcp or one of: {}",
            known.join(", ")
        ))
    })
}

/// The user's expect options as one expectation, or `None` when there are none.
fn user_expectation(o: &CheckOptions) -> Result<Option<Expectation>, Invalid> {
    let mut matchers = Vec::new();
    matchers.extend(
        o.expect
            .iter()
            .map(|e| Matcher::Contains(e.as_bytes().to_vec())),
    );
    matchers.extend(
        o.expect_prefix
            .iter()
            .map(|e| Matcher::Prefix(e.as_bytes().to_vec())),
    );
    for re in &o.expect_regex {
        matchers
            .push(Matcher::regex(re).map_err(|e| Invalid::Usage(format!("--expect-regex: {e}")))?);
    }
    for hex in &o.expect_hex {
        let bytes =
            parse_hex(hex).map_err(|e| Invalid::Usage(format!("--expect-hex {hex:?}: {e}")))?;
        matchers.push(Matcher::Prefix(bytes));
    }
    if matchers.is_empty() {
        return Ok(None);
    }
    let mode = if o.all {
        MatchMode::All
    } else {
        MatchMode::Any
    };
    Ok(Some(Expectation { matchers, mode }))
}

fn parse_port(text: &str) -> Result<u16, String> {
    portwarden_probe::target::parse_port(text).map_err(|e| e.to_string())
}

fn parse_state(text: &str) -> Result<State, String> {
    match text {
        "ok" => Ok(State::Ok),
        "warn" | "warning" => Ok(State::Warning),
        "crit" | "critical" => Ok(State::Critical),
        _ => Err(format!("must be one of ok, warn, crit, got {text:?}")),
    }
}

fn parse_positive_usize(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("must be a positive integer, got {text:?}")),
    }
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("must be a number of seconds, got {text:?}"))?;
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("must be a number of seconds, got {text:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_positive_secs(text: &str) -> Result<Duration, String> {
    let d = parse_seconds(text)?;
    if d.is_zero() {
        return Err(format!("must be greater than 0, got {text:?}"));
    }
    Ok(d)
}

/// -w / -c: check_tcp reads `abc` as 0 (every check CRITICAL); we refuse it.
fn parse_threshold_secs(text: &str) -> Result<Duration, String> {
    parse_seconds(text)
}

fn parse_cert_days(text: &str) -> Result<CertDays, String> {
    let days = |t: &str| {
        t.trim()
            .parse::<u32>()
            .map_err(|_| format!("invalid certificate expiration period {t:?}"))
    };
    match text.split_once(',') {
        Some((w, c)) => Ok(CertDays {
            warning: days(w)?,
            critical: days(c)?,
        }),
        None => Ok(CertDays {
            warning: days(text)?,
            critical: 0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        cmd: CheckCommand,
    }

    fn build_from(args: &[&str]) -> Result<(ProbeSpec, Report), Invalid> {
        let mut argv = vec!["check"];
        argv.extend_from_slice(args);
        let w = Wrapper::try_parse_from(argv).expect("arguments parse");
        build(w.cmd)
    }

    fn parse_err(args: &[&str]) -> String {
        let mut argv = vec!["check"];
        argv.extend_from_slice(args);
        Wrapper::try_parse_from(argv).unwrap_err().to_string()
    }

    #[test]
    fn maps_check_tcp_options_onto_the_spec() {
        let (spec, report) = build_from(&[
            "tcp",
            "-H",
            "127.0.0.1",
            "-p",
            "25",
            "-E",
            "-s",
            "EHLO x\\r\\n",
            "-e",
            "250",
            "-e",
            "220",
            "-A",
            "-q",
            "QUIT\\r\\n",
            "-m",
            "100",
            "-t",
            "3",
            "-w",
            "0.5",
            "-c",
            "1",
            "-r",
            "ok",
            "-M",
            "crit",
        ])
        .unwrap();
        assert_eq!(spec.target.to_string(), "127.0.0.1:25");
        assert_eq!(spec.limits.deadline, Duration::from_secs(3));
        assert_eq!(spec.limits.max_bytes, 100);
        assert_eq!(spec.quit.as_deref(), Some(&b"QUIT\r\n"[..]));
        assert_eq!(spec.states.refused, State::Ok);
        assert_eq!(spec.states.mismatch, State::Critical);
        assert_eq!(spec.response_time.warning, Some(Duration::from_millis(500)));
        match &spec.steps[..] {
            [Step::Send(s), Step::Expect(e)] => {
                assert_eq!(s, b"EHLO x\r\n");
                assert_eq!(e.mode, MatchMode::All);
                assert_eq!(e.matchers.len(), 2);
            }
            other => panic!("unexpected steps {other:?}"),
        }
        assert_eq!(report.host_label.as_deref(), Some("127.0.0.1"));
    }

    #[test]
    fn quit_gets_crlf_without_escape_mode() {
        let (spec, _) = build_from(&["tcp", "-H", "h", "-p", "1", "-q", "bye"]).unwrap();
        assert_eq!(spec.quit.as_deref(), Some(&b"bye\r\n"[..]));
    }

    #[test]
    fn presets_supply_port_dialog_and_tls() {
        let (spec, report) = build_from(&["smtps", "-H", "mail.example.org"]).unwrap();
        assert_eq!(spec.target.port, 465);
        assert!(spec.implicit_tls);
        assert_eq!(report.service, "SMTPS");
        let (spec, _) = build_from(&["smtp", "-H", "m", "--starttls"]).unwrap();
        assert!(spec.steps.iter().any(|s| matches!(s, Step::StartTls(_))));
        // The user's exchange runs after the greeting and the upgrade, not instead of them.
        let (spec, _) = build_from(&[
            "smtp",
            "-H",
            "m",
            "--starttls",
            "-s",
            "NOOP\r\n",
            "-E",
            "-e",
            "250",
        ])
        .unwrap();
        assert!(matches!(
            &spec.steps[..],
            [
                Step::Expect(_),
                Step::StartTls(_),
                Step::Send(_),
                Step::Expect(_)
            ]
        ));
    }

    #[test]
    fn rejects_bad_values_check_tcp_would_swallow() {
        assert!(parse_err(&["tcp", "-H", "h", "-p", "1", "-c", "abc"]).contains("abc"));
        assert!(parse_err(&["tcp", "-H", "h", "-p", "1", "-w", "0.5x"]).contains("0.5x"));
        assert!(parse_err(&["tcp", "-H", "h", "-p", "0"]).contains("port must be 1-65535"));
        assert!(parse_err(&["tcp", "-H", "h", "-p", "1", "-t", "0"]).contains("greater than 0"));
        assert!(parse_err(&["tcp", "-H", "h", "-p", "1", "-M", "bogus"]).contains("ok, warn, crit"));
        assert!(parse_err(&["tcp", "-H", "h", "-p", "1", "-D", "x"]).contains("expiration"));
    }

    #[test]
    fn usage_errors_name_the_problem() {
        let msg = |r: Result<(ProbeSpec, Report), Invalid>| match r {
            Err(Invalid::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        };
        assert!(msg(build_from(&["tcp", "-H", "h"])).contains("port is required"));
        let (spec, report) = build_from(&["tcp", "-p", "1"]).unwrap();
        assert_eq!(
            spec.target.to_string(),
            "127.0.0.1:1",
            "check_tcp's default host"
        );
        assert_eq!(report.host_label, None, "the output says only `port 1`");
        assert!(msg(build_from(&["gopher", "-H", "h"])).contains("unknown protocol"));
        assert!(msg(build_from(&["tcp", "-H", "h", "-p", "1", "--starttls"])).contains("preset"));
        assert!(msg(build_from(&[
            "tcp", "-H", "h", "-p", "1", "-E", "-s", "\\q"
        ]))
        .contains("-s"));
        assert!(msg(build_from(&[
            "tcp",
            "-H",
            "h",
            "-p",
            "1",
            "--expect-regex",
            "("
        ]))
        .contains("regex"));
        assert!(matches!(
            build_from(&["tcp", "-H", "bad..host", "-p", "1"]),
            Err(Invalid::Critical(m)) if m.contains("bad..host")
        ));
    }

    #[test]
    fn plugin_services_bring_check_tcp_defaults() {
        let expect_texts = |spec: &ProbeSpec| match &spec.steps[..] {
            [.., Step::Expect(e)] => e
                .matchers
                .iter()
                .map(|m| match m {
                    Matcher::Contains(b) => String::from_utf8_lossy(b).into_owned(),
                    other => panic!("unexpected matcher {other:?}"),
                })
                .collect::<Vec<_>>(),
            other => panic!("no expect step: {other:?}"),
        };
        let (spec, report) = build_from(&["tcp", "--plugin-service", "pop"]).unwrap();
        assert_eq!(spec.target.to_string(), "127.0.0.1:110");
        assert_eq!(report.service, "POP");
        assert_eq!(expect_texts(&spec), ["+OK"]);
        assert_eq!(spec.quit.as_deref(), Some(&b"QUIT\r\n"[..]));
        // The user's -e replaces the default; for NNTP it adds to the two defaults.
        let (spec, _) = build_from(&["tcp", "--plugin-service", "pop", "-e", "x"]).unwrap();
        assert_eq!(expect_texts(&spec), ["x"]);
        let (spec, _) = build_from(&["tcp", "--plugin-service", "nntp", "-e", "x"]).unwrap();
        assert_eq!(expect_texts(&spec), ["200", "201", "x"]);
        // Defaults are sent as they are, -E or not; the user's strings follow -E.
        let (spec, report) = build_from(&["tcp", "--plugin-service", "jabber", "-E"]).unwrap();
        assert!(matches!(&spec.steps[0], Step::Send(s) if s.ends_with(b"streams'>\n")));
        assert!(report.jail, "check_jabber hides the answer");
        let (spec, _) = build_from(&["tcp", "--plugin-service", "clamd", "-q", "bye"]).unwrap();
        assert_eq!(spec.quit.as_deref(), Some(&b"bye\r\n"[..]));
        let (spec, _) = build_from(&["tcp", "--plugin-service", "ssmtp", "-p", "2465"]).unwrap();
        assert!(spec.implicit_tls);
        assert_eq!(spec.target.port, 2465);
    }

    #[test]
    fn cert_days_take_an_optional_critical() {
        assert_eq!(
            parse_cert_days("30,10").unwrap(),
            CertDays {
                warning: 30,
                critical: 10
            }
        );
        assert_eq!(
            parse_cert_days("30").unwrap(),
            CertDays {
                warning: 30,
                critical: 0
            }
        );
    }
}
