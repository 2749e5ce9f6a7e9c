//! From typed sections to what the daemon runs: checks every value (all problems, each with
//! its place), applies `[defaults]` and the built-in defaults, and builds a prepared
//! [`probe::Probe`] and a [`Monitor`] for each `[[monitor]]`.
//!
//! Checking is pure; only the last step, [`Probe::new`], touches files (CA and client
//! certificates), and only for monitors that passed every other check.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use probe::escape::parse_hex;
use probe::presets::{self, Preset};
use probe::{
    CertDays, ClientCert, Expectation, Family, Host, MatchMode, Matcher, Probe, ProbeSpec,
    SpecError, StartTls, State, Step, Target, Thresholds, Verify,
};
use sockets::owner::ExpectedOwner;
use toml::Spanned;

use super::duration::HumanDuration;
use super::error::SourceFile;
use super::parse::{self, MonitorEntry, Parsed, Section};
use super::schema::{self, *};
use super::{
    ApiTokenSource, Config, DaemonSettings, FirewallSettings, NotifierConfig, OnViolation,
    ProbeModule, Problems, RunningCheck,
};
use crate::monitor::{self, Fingerprint, Heal, Monitor, Origin, Policy};

/// Upper bound for `fail_after`, `recover_after`, `window`, `flap_max_transitions`: the
/// state machine keeps `window` results per monitor.
const MAX_COUNT: i64 = 1000;
/// Upper bound for `max_bytes`: a port check has no business reading more.
const MAX_BYTES: i64 = 16 * 1024 * 1024;
/// Upper bound for `daemon.max_in_flight`.
const MAX_IN_FLIGHT: i64 = 1_000_000;
/// Upper bound for `daemon.http_max_connections`.
const MAX_HTTP_CONNECTIONS: i64 = 1_000_000;
/// Longest monitor name.
const MAX_NAME: usize = 128;

/// A problem inside one section, before it gets its file and context.
#[derive(Debug)]
struct Issue {
    span: Range<usize>,
    /// Key path inside the section: `target`, `tls.ca_file`, `dialog[2].expect`.
    path: String,
    message: String,
}

#[derive(Debug, Default)]
struct Issues(Vec<Issue>);

impl Issues {
    fn add(&mut self, span: Range<usize>, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Issue {
            span,
            path: path.into(),
            message: message.into(),
        });
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Hands the issues to `problems`, leaving out those about keys that were dropped for
    /// an earlier error (they would only repeat it).
    fn report<T>(self, section: &Section<T>, files: &[SourceFile], problems: &mut Problems) {
        let file = &files[section.file];
        for issue in self.0 {
            if section.dropped.iter().any(|d| related(&issue.path, d)) {
                continue;
            }
            let message = if issue.path.is_empty() {
                format!("{}: {}", section.context, issue.message)
            } else {
                format!("{}: {}: {}", section.context, issue.path, issue.message)
            };
            problems.push(section.file, file, &issue.span, message);
        }
    }
}

/// Whether one path is the other or lies inside it.
fn related(a: &str, b: &str) -> bool {
    let inside = |long: &str, short: &str| {
        long.strip_prefix(short)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
    };
    inside(a, b) || inside(b, a)
}

/// Builds the config from its sections; every problem goes to `problems`.
pub fn assemble(parsed: Parsed, problems: &mut Problems, running: &RunningCheck<'_>) -> Config {
    let Parsed {
        files,
        daemon,
        defaults,
        firewall,
        monitors,
        notifiers,
        probe_modules,
    } = parsed;

    let daemon_settings = match &daemon {
        Some(section) => {
            let mut issues = Issues::default();
            let settings = section
                .value
                .as_ref()
                .map(|d| daemon_settings(d, base_dir(&files[section.file]), &mut issues))
                .unwrap_or_default();
            issues.report(section, &files, problems);
            settings
        }
        None => DaemonSettings::default(),
    };

    let notifier_configs = check_notifiers(&notifiers, &files, problems);
    // Every named notifier counts as defined, even one with a mistake of its own: that
    // mistake is reported once, not again at every `notify` naming it.
    let known: BTreeSet<&str> = notifiers
        .iter()
        .filter_map(|s| s.value.as_ref()?.name.as_ref())
        .map(|n| n.get_ref().as_str())
        .filter(|n| !n.trim().is_empty())
        .collect();

    let resolved_defaults = match &defaults {
        Some(section) => {
            let mut issues = Issues::default();
            let d = section
                .value
                .as_ref()
                .map(|d| resolve_defaults(d, &known, &mut issues))
                .unwrap_or_default();
            issues.report(section, &files, problems);
            d
        }
        None => Defaults::default(),
    };

    let mut built = Vec::new();
    let mut unchanged = Vec::new();
    let mut seen: HashMap<String, (usize, Range<usize>)> = HashMap::new();
    // Deferred monitors are read here, one at a time, and dropped once built.
    for entry in monitors {
        let sections = match entry {
            MonitorEntry::Parsed(section) => vec![*section],
            MonitorEntry::Deferred {
                file,
                range,
                number,
            } => parse::deferred_monitor(&files, file, range, number, problems),
        };
        for section in &sections {
            let Some(m) = &section.value else { continue };
            let file = &files[section.file];
            if let Some(name) = &m.name {
                let key = name.get_ref().clone();
                match seen.get(&key) {
                    Some((first_file, first_span)) => problems.push(
                        section.file,
                        file,
                        &name.span(),
                        format!(
                            "{}: name: duplicate monitor name, first defined at {}",
                            section.context,
                            files[*first_file].place(first_span)
                        ),
                    ),
                    None => {
                        seen.insert(key, (section.file, name.span()));
                    }
                }
            }
            let mut issues = Issues::default();
            let monitor = build_monitor(
                m,
                &MonitorContext {
                    header: section.span.clone(),
                    base_dir: base_dir(file),
                    defaults: &resolved_defaults,
                    notifiers: &known,
                    clean: section.dropped.is_empty(),
                },
                &mut issues,
            );
            issues.report(section, &files, problems);
            match monitor {
                Some(m) if running(&m.name, m.definition) => unchanged.push(m.name),
                Some(m) => built.push(m),
                None => {}
            }
        }
    }

    let firewall_settings = match &firewall {
        Some(section) => {
            let mut issues = Issues::default();
            let settings = section
                .value
                .as_ref()
                .map(|f| {
                    firewall_settings(
                        f,
                        base_dir(&files[section.file]),
                        &known,
                        &resolved_defaults.notify,
                        &mut issues,
                    )
                })
                .unwrap_or_default();
            issues.report(section, &files, problems);
            settings
        }
        None => FirewallSettings {
            notify: resolved_defaults.notify.clone(),
            ..FirewallSettings::default()
        },
    };

    let probe_modules =
        build_probe_modules(probe_modules, &files, &resolved_defaults, &known, problems);

    Config {
        daemon: daemon_settings,
        monitors: built,
        unchanged,
        probe_modules,
        notifiers: notifier_configs,
        firewall: firewall_settings,
        files: files.iter().map(|f| f.path.clone()).collect(),
    }
}

/// Keys of a monitor that mean nothing to a `/probe` module: the request names the target,
/// and a module is neither scheduled nor notified nor healed.
const NOT_FOR_PROBE_MODULES: &str = "the target comes from the /probe request, and a module \
     is not scheduled, notified or healed";

/// `[[probe_module]]`s: a monitor's probe keys (protocol, send/expect/dialog, TLS, limits,
/// family, source) built exactly as a monitor's, with the target left to each request.
fn build_probe_modules(
    sections: Vec<Section<MonitorSection>>,
    files: &[SourceFile],
    defaults: &Defaults,
    notifiers: &BTreeSet<&str>,
    problems: &mut Problems,
) -> Vec<ProbeModule> {
    let mut built = Vec::new();
    let mut seen: HashMap<String, Range<usize>> = HashMap::new();
    for mut section in sections {
        let file = &files[section.file];
        let header = section.span.clone();
        let Some(m) = section.value.as_mut() else {
            continue;
        };
        let mut issues = Issues::default();
        if let Some(name) = &m.name {
            match seen.get(name.get_ref()) {
                Some(first) => issues.add(
                    name.span(),
                    "name",
                    format!(
                        "duplicate probe_module name, first defined at {}",
                        file.place(first)
                    ),
                ),
                None => {
                    seen.insert(name.get_ref().clone(), name.span());
                }
            }
        }
        let span = |s: Option<Range<usize>>| s.unwrap_or_else(|| header.clone());
        let foreign: [(&str, Option<Range<usize>>); 15] = [
            ("target", m.target.as_ref().map(Spanned::span)),
            ("owner", m.owner.as_ref().map(Spanned::span)),
            ("interval", m.interval.as_ref().map(Spanned::span)),
            ("fail_after", m.fail_after.as_ref().map(Spanned::span)),
            ("recover_after", m.recover_after.as_ref().map(Spanned::span)),
            ("window", m.window.as_ref().map(Spanned::span)),
            (
                "flap_max_transitions",
                m.flap_max_transitions.as_ref().map(Spanned::span),
            ),
            ("flap_window", m.flap_window.as_ref().map(Spanned::span)),
            ("notify", m.notify.as_ref().map(Spanned::span)),
            ("on_down", m.on_down.as_ref().map(Spanned::span)),
            ("max_actions", m.max_actions.as_ref().map(Spanned::span)),
            ("action_window", m.action_window.as_ref().map(Spanned::span)),
            (
                "action_cooldown",
                m.action_cooldown.as_ref().map(Spanned::span),
            ),
            ("reset_after", m.reset_after.as_ref().map(Spanned::span)),
            (
                "tags",
                m.tags
                    .as_ref()
                    .map(|t| t.first().map_or(header.clone(), Spanned::span)),
            ),
        ];
        let mut clean = section.dropped.is_empty();
        for (key, at) in foreign {
            if let Some(at) = at {
                issues.add(
                    span(Some(at)),
                    key,
                    format!("not a probe_module key: {NOT_FOR_PROBE_MODULES}"),
                );
                clean = false;
            }
        }
        // Built as a monitor with a stand-in target that is never probed, and an interval
        // that no module timeout can exceed.
        m.target = Some(Spanned::new(
            header.clone(),
            "probe-module.invalid:1".into(),
        ));
        m.interval = Some(Spanned::new(
            header.clone(),
            HumanDuration(Duration::from_secs(365 * 86_400)),
        ));
        let monitor = build_monitor(
            m,
            &MonitorContext {
                header: header.clone(),
                base_dir: base_dir(file),
                defaults,
                notifiers,
                clean,
            },
            &mut issues,
        );
        issues.report(&section, files, problems);
        if let (Some(monitor), true) = (monitor, clean) {
            built.push(ProbeModule {
                name: monitor.name,
                spec: monitor.probe.spec().clone(),
            });
        }
    }
    built
}

/// Relative paths in a file are taken from the file's directory.
fn base_dir(file: &SourceFile) -> &Path {
    match file.path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn resolve_path(
    base: &Path,
    text: &Spanned<String>,
    path: &str,
    issues: &mut Issues,
) -> Option<PathBuf> {
    let t = text.get_ref();
    if t.trim().is_empty() {
        issues.add(text.span(), path, "must not be empty");
        return None;
    }
    Some(base.join(t))
}

fn daemon_settings(d: &DaemonSection, base: &Path, issues: &mut Issues) -> DaemonSettings {
    let mut settings = DaemonSettings::default();
    if let Some(listen) = &d.listen {
        match super::parse_listen(listen.get_ref()) {
            Ok(addr) => settings.listen = addr,
            Err(e) => issues.add(listen.span(), "listen", e),
        }
    }
    if let Some(dir) = &d.state_dir {
        settings.state_dir = resolve_path(base, dir, "state_dir", issues);
    }
    if let Some(file) = &d.blackbox_config {
        settings.blackbox_config = resolve_path(base, file, "blackbox_config", issues);
    }
    if let Some(n) = count(
        &d.max_concurrent_actions,
        "max_concurrent_actions",
        1,
        64,
        issues,
    ) {
        settings.max_concurrent_actions = usize::try_from(n).unwrap_or(4);
    }
    match (&d.api_token_env, &d.api_token_file) {
        (Some(env), Some(_)) => issues.add(
            env.span(),
            "api_token_env",
            "set api_token_env or api_token_file, not both",
        ),
        (Some(env), None) => {
            let name = env.get_ref().trim();
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                issues.add(
                    env.span(),
                    "api_token_env",
                    format!("not an environment variable name: {:?}", env.get_ref()),
                );
            } else {
                settings.api_token = Some(ApiTokenSource::Env(name.to_string()));
            }
        }
        (None, Some(file)) => {
            settings.api_token =
                resolve_path(base, file, "api_token_file", issues).map(ApiTokenSource::File);
        }
        (None, None) => {}
    }
    if let Some(read) = &d.read_token {
        settings.read_token = *read.get_ref();
        if settings.read_token && d.api_token_env.is_none() && d.api_token_file.is_none() {
            issues.add(
                read.span(),
                "read_token",
                "needs a token: set api_token_env or api_token_file",
            );
        }
    }
    match (&d.tls_cert, &d.tls_key) {
        (Some(cert), Some(key)) => {
            let cert = resolve_path(base, cert, "tls_cert", issues);
            let key = resolve_path(base, key, "tls_key", issues);
            settings.tls = cert.zip(key);
        }
        (Some(cert), None) => issues.add(cert.span(), "tls_cert", "needs tls_key too"),
        (None, Some(key)) => issues.add(key.span(), "tls_key", "needs tls_cert too"),
        (None, None) => {}
    }
    if let Some(n) = count(&d.max_in_flight, "max_in_flight", 1, MAX_IN_FLIGHT, issues) {
        settings.max_in_flight = usize::try_from(n).unwrap_or(schema::default_max_in_flight());
    }
    for (value, path, slot) in [
        (
            &d.http_header_timeout,
            "http_header_timeout",
            &mut settings.http.header_timeout,
        ),
        (
            &d.http_idle_timeout,
            "http_idle_timeout",
            &mut settings.http.idle_timeout,
        ),
    ] {
        if let Some(t) = positive(value, path, issues) {
            *slot = t;
        }
    }
    let max = &d.http_max_connections;
    if let Some(n) = count(max, "http_max_connections", 1, MAX_HTTP_CONNECTIONS, issues) {
        settings.http.max_connections =
            usize::try_from(n).unwrap_or(crate::api::server::default_http_max_connections());
    }
    settings
}

fn firewall_settings(
    f: &FirewallSection,
    base: &Path,
    notifiers: &BTreeSet<&str>,
    default_notify: &[String],
    issues: &mut Issues,
) -> FirewallSettings {
    let mut out = FirewallSettings {
        notify: default_notify.to_vec(),
        ..FirewallSettings::default()
    };
    if let Some(guard) = f.guard {
        out.guard = guard;
    }
    if let Some(watch) = f.watch {
        out.watch = watch;
    }
    if let Some(name) = &f.backend {
        match name.get_ref().as_str() {
            "auto" => {}
            other => match firewall::BackendKind::from_name(other) {
                Some(kind) => out.backend = Some(kind),
                None => {
                    let names = firewall::BackendKind::ALL.map(|k| k.name());
                    let hint = super::parse::suggest(other, names.iter().copied())
                        .map(|s| format!("did you mean {s:?}? "))
                        .unwrap_or_default();
                    issues.add(
                        name.span(),
                        "backend",
                        format!(
                            "unknown backend {other:?}; {hint}expected \"auto\" or one of {}",
                            names.join(", ")
                        ),
                    );
                }
            },
        }
    }
    if let Some(list) = &f.require {
        out.policy.require.clear();
        for (i, item) in list.get_ref().iter().enumerate() {
            match item.get_ref().parse::<firewall::Requirement>() {
                Ok(r) if !out.policy.require.contains(&r) => out.policy.require.push(r),
                Ok(_) => {}
                Err(e) => issues.add(item.span(), format!("require[{i}]"), e),
            }
        }
    }
    if let Some(list) = &f.rules {
        for (i, item) in list.get_ref().iter().enumerate() {
            match item.get_ref().parse::<firewall::RequiredRule>() {
                Ok(r) => out.policy.rules.push(r),
                Err(e) => issues.add(item.span(), format!("rules[{i}]"), e),
            }
        }
    }
    if let Some(list) = &f.tables {
        let mut tables = Vec::new();
        for (i, item) in list.get_ref().iter().enumerate() {
            let words: Vec<&str> = item.get_ref().split_whitespace().collect();
            match words.as_slice() {
                [family @ ("ip" | "ip6" | "inet" | "arp" | "bridge" | "netdev"), name] => {
                    tables.push(format!("{family} {name}"))
                }
                _ => issues.add(
                    item.span(),
                    format!("tables[{i}]"),
                    format!(
                        "{:?} is not a table; write \"FAMILY NAME\", e.g. \"inet filter\" \
                         (families: ip, ip6, inet, arp, bridge, netdev)",
                        item.get_ref()
                    ),
                ),
            }
        }
        out.tables = Some(tables);
    }
    if let Some(path) = &f.baseline {
        if let Some(p) = resolve_path(base, path, "baseline", issues) {
            out.baseline = p;
        }
    }
    if let Some(mode) = &f.on_violation {
        out.on_violation = match mode.get_ref().as_str() {
            "alert" => Some(OnViolation::Alert),
            "enable" => Some(OnViolation::Enable),
            "restore" => Some(OnViolation::Restore),
            other => {
                issues.add(
                    mode.span(),
                    "on_violation",
                    format!(
                        "unknown mode {other:?}; expected \"alert\", \"enable\" or \"restore\""
                    ),
                );
                None
            }
        };
    }
    if let Some(d) = positive(&f.verify_every, "verify_every", issues) {
        out.verify_every = d;
    }
    if let Some(n) = count32(&f.max_repairs_per_hour, "max_repairs_per_hour", 0, issues) {
        out.max_repairs_per_hour = n;
    }
    if let Some(list) = &f.notify {
        out.notify = notify_list(list, notifiers, issues);
    }
    out
}

fn check_notifiers(
    notifiers: &[Section<super::parse::NotifierEntry>],
    files: &[SourceFile],
    problems: &mut Problems,
) -> Vec<NotifierConfig> {
    let mut out = Vec::new();
    let mut seen: HashMap<String, (usize, Range<usize>)> = HashMap::new();
    for section in notifiers {
        let Some(n) = &section.value else { continue };
        let mut issues = Issues::default();
        let name = match &n.name {
            None => {
                issues.add(
                    section.span.clone(),
                    "name",
                    "missing; every notifier needs a name",
                );
                None
            }
            Some(name) if name.get_ref().trim().is_empty() => {
                issues.add(name.span(), "name", "must not be empty");
                None
            }
            Some(name) => Some(name),
        };
        let kind = match &n.kind {
            None => {
                issues.add(
                    section.span.clone(),
                    "type",
                    "missing; say which kind of notifier this is, e.g. type = \"smtp\"",
                );
                None
            }
            Some(kind) if kind.get_ref().trim().is_empty() => {
                issues.add(kind.span(), "type", "must not be empty");
                None
            }
            Some(kind) => Some(kind),
        };
        if let Some(name) = name {
            if let Some((first_file, first_span)) = seen.get(name.get_ref()) {
                issues.add(
                    name.span(),
                    "name",
                    format!(
                        "duplicate notifier name, first defined at {}",
                        files[*first_file].place(first_span)
                    ),
                );
            } else {
                seen.insert(name.get_ref().clone(), (section.file, name.span()));
                if let Some(kind) = kind {
                    if let Some(config) = notifier_config(name.get_ref(), kind, n, &mut issues) {
                        out.push(config);
                    }
                }
            }
        }
        issues.report(section, files, problems);
    }
    out
}

/// The notifier's own keys into the `notify` crate's types; the dispatcher's keys
/// (`remind_every`, `group_window`, `group_wait`) are taken out first.
fn notifier_config(
    name: &str,
    kind: &Spanned<String>,
    entry: &super::parse::NotifierEntry,
    issues: &mut Issues,
) -> Option<NotifierConfig> {
    let mut table = entry.settings.clone();
    let mut duration = |key: &str| -> Result<Option<Duration>, ()> {
        match table.remove(key) {
            None => Ok(None),
            Some(toml::Value::String(text)) => match super::duration::parse(&text) {
                Ok(d) => Ok(Some(d)),
                Err(e) => {
                    issues.add(kind.span(), key, e);
                    Err(())
                }
            },
            Some(other) => {
                issues.add(
                    kind.span(),
                    key,
                    format!("must be a duration string like \"30s\", got {other}"),
                );
                Err(())
            }
        }
    };
    let remind_every = duration("remind_every");
    let group_window = duration("group_window");
    let group_wait = duration("group_wait");
    table.insert("type".into(), toml::Value::String(kind.get_ref().clone()));
    let spec = match <notify::NotifierSpec as serde::Deserialize>::deserialize(toml::Value::Table(
        table,
    )) {
        Ok(spec) => spec,
        Err(e) => {
            // serde's own words name the key and list the valid ones ("unknown field `colour`,
            // expected one of `url`, …"); only the type gets its key in front.
            let message = e.message();
            let path = if message.starts_with("unknown variant") {
                "type"
            } else {
                ""
            };
            issues.add(
                kind.span(),
                path,
                message.replace("unknown variant", "unknown type"),
            );
            return None;
        }
    };
    if let Err(e) = notify::Notifier::new(name, spec.clone()) {
        issues.add(kind.span(), "", e);
        return None;
    }
    let (Ok(remind_every), Ok(group_window), Ok(group_wait)) =
        (remind_every, group_window, group_wait)
    else {
        return None;
    };
    if remind_every.is_some_and(|d| d.is_zero()) {
        issues.add(kind.span(), "remind_every", "must be greater than 0");
        return None;
    }
    Some(NotifierConfig {
        name: name.to_string(),
        remind_every: remind_every.or_else(|| super::default_remind_every(&spec)),
        group_window: group_window.unwrap_or_else(|| super::default_group_window(&spec)),
        group_wait: group_wait.unwrap_or(super::DEFAULT_GROUP_WAIT),
        spec,
    })
}

/// `[defaults]` after checking, with the built-in defaults filled in. A bad value in
/// `[defaults]` is reported once, there; monitors then fall back to the built-in default.
#[derive(Debug, Clone)]
struct Defaults {
    interval: Duration,
    /// `None`: not set, so each monitor's timeout is the built-in default cut to its interval.
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    idle_timeout: Duration,
    max_bytes: usize,
    family: Family,
    fail_after: u32,
    recover_after: u32,
    window: Option<u32>,
    flap_max_transitions: u32,
    flap_window: Duration,
    notify: Vec<String>,
    response_time: Thresholds,
    cert_days: Option<CertDays>,
    /// Self-healing limits (the ladder itself is per monitor).
    heal: Heal,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            interval: default_interval(),
            timeout: None,
            connect_timeout: None,
            idle_timeout: default_idle_timeout(),
            max_bytes: default_max_bytes(),
            family: Family::Any,
            fail_after: default_fail_after(),
            recover_after: default_recover_after(),
            window: None,
            flap_max_transitions: default_flap_max_transitions(),
            flap_window: default_flap_window(),
            notify: Vec::new(),
            response_time: Thresholds::default(),
            cert_days: None,
            heal: Heal::default(),
        }
    }
}

/// The self-healing limits of `[defaults]` or a monitor, over `base`.
fn heal_limits(
    max_actions: &Option<Spanned<i64>>,
    window: &Option<Spanned<HumanDuration>>,
    cooldown: &Option<Spanned<HumanDuration>>,
    reset_after: &Option<Spanned<HumanDuration>>,
    base: &Heal,
    issues: &mut Issues,
) -> Heal {
    Heal {
        steps: Vec::new(),
        max_actions: count32(max_actions, "max_actions", 1, issues).unwrap_or(base.max_actions),
        window: positive(window, "action_window", issues).unwrap_or(base.window),
        cooldown: cooldown
            .as_ref()
            .map_or(base.cooldown, |c| c.get_ref().get()),
        reset_after: positive(reset_after, "reset_after", issues).unwrap_or(base.reset_after),
    }
}

/// `on_down` into ladder steps: the engine's keys (`attempts`, `grace`,
/// `after_failed_restarts`) are taken out, the rest is the `act` crate's action, checked by it.
fn heal_steps(list: &Spanned<Vec<toml::Table>>, issues: &mut Issues) -> Vec<monitor::Step> {
    let mut steps: Vec<monitor::Step> = Vec::new();
    for (i, table) in list.get_ref().iter().enumerate() {
        let path = format!("on_down[{}]", i + 1);
        let mut table = table.clone();
        let attempts = match table.remove("attempts") {
            None => Some(1),
            Some(toml::Value::Integer(n)) if (1..=MAX_COUNT).contains(&n) => u32::try_from(n).ok(),
            Some(other) => {
                issues.add(
                    list.span(),
                    format!("{path}.attempts"),
                    format!("must be an integer 1-{MAX_COUNT}, got {other}"),
                );
                None
            }
        };
        // The step before is tried this many times before this one runs (the design's
        // `{ type = "reboot", after_failed_restarts = 3 }`): the same as its `attempts`.
        match table.remove("after_failed_restarts") {
            None => {}
            Some(toml::Value::Integer(n)) if (1..=MAX_COUNT).contains(&n) && i > 0 => {
                if let Some(before) = steps.last_mut() {
                    before.attempts = u32::try_from(n).unwrap_or(1);
                }
            }
            Some(_) if i == 0 => issues.add(
                list.span(),
                format!("{path}.after_failed_restarts"),
                "the first step has no step before it; use `attempts` on it instead",
            ),
            Some(other) => issues.add(
                list.span(),
                format!("{path}.after_failed_restarts"),
                format!("must be an integer 1-{MAX_COUNT}, got {other}"),
            ),
        }
        let grace = match table.remove("grace") {
            None => Some(Duration::from_secs(10)),
            Some(toml::Value::String(text)) => match super::duration::parse(&text) {
                Ok(d) => Some(d),
                Err(e) => {
                    issues.add(list.span(), format!("{path}.grace"), e);
                    None
                }
            },
            Some(other) => {
                issues.add(
                    list.span(),
                    format!("{path}.grace"),
                    format!("must be a duration string like \"10s\", got {other}"),
                );
                None
            }
        };
        if !table.contains_key("type") {
            issues.add(
                list.span(),
                format!("{path}.type"),
                "missing; say which action, e.g. type = \"restart\"",
            );
            continue;
        }
        let action =
            match <act::ActionSpec as serde::Deserialize>::deserialize(toml::Value::Table(table)) {
                Ok(a) => a,
                Err(e) => {
                    issues.add(
                        list.span(),
                        path.clone(),
                        e.message()
                            .replace("unknown variant", "unknown action type"),
                    );
                    continue;
                }
            };
        if let Err(e) = act::validate(&action) {
            issues.add(list.span(), path.clone(), e);
            continue;
        }
        if let (Some(attempts), Some(grace)) = (attempts, grace) {
            steps.push(monitor::Step {
                action,
                attempts,
                grace,
            });
        }
    }
    steps
}

fn resolve_defaults(
    d: &DefaultsSection,
    notifiers: &BTreeSet<&str>,
    issues: &mut Issues,
) -> Defaults {
    let mut out = Defaults::default();
    if let Some(v) = positive(&d.interval, "interval", issues) {
        out.interval = v;
    }
    out.timeout = positive(&d.timeout, "timeout", issues);
    out.connect_timeout = positive(&d.connect_timeout, "connect_timeout", issues);
    if let Some(v) = positive(&d.idle_timeout, "idle_timeout", issues) {
        out.idle_timeout = v;
    }
    if let Some(v) = count(&d.max_bytes, "max_bytes", 1, MAX_BYTES, issues) {
        out.max_bytes = usize::try_from(v).unwrap_or(out.max_bytes);
    }
    if let Some(f) = d.family {
        out.family = f;
    }
    if let Some(v) = count32(&d.fail_after, "fail_after", 1, issues) {
        out.fail_after = v;
    }
    if let Some(v) = count32(&d.recover_after, "recover_after", 1, issues) {
        out.recover_after = v;
    }
    out.window = count32(&d.window, "window", 1, issues);
    if let Some(v) = count32(&d.flap_max_transitions, "flap_max_transitions", 1, issues) {
        out.flap_max_transitions = v;
    }
    if let Some(v) = positive(&d.flap_window, "flap_window", issues) {
        out.flap_window = v;
    }
    out.heal = heal_limits(
        &d.max_actions,
        &d.action_window,
        &d.action_cooldown,
        &d.reset_after,
        &Heal::default(),
        issues,
    );
    if let (Some(window), Some(span)) = (out.window, d.window.as_ref().map(Spanned::span)) {
        check_window(window, out.fail_after, out.recover_after, span, issues);
    }
    if let (Some(t), Some(i)) = (&d.timeout, &d.interval) {
        if t.get_ref().get() > i.get_ref().get() {
            issues.add(
                t.span(),
                "timeout",
                longer_than_interval(t.get_ref().get(), i.get_ref().get()),
            );
        }
    }
    if let Some(list) = &d.notify {
        out.notify = notify_list(list, notifiers, issues);
    }
    if let Some(rt) = &d.response_time {
        out.response_time = thresholds(rt, "response_time", issues);
    }
    if let Some(cd) = &d.cert_days {
        out.cert_days = cert_days(cd, "cert_days", issues);
    }
    out
}

/// What building one monitor needs besides its section.
struct MonitorContext<'a> {
    /// The `[[monitor]]` header, for problems about missing keys.
    header: Range<usize>,
    base_dir: &'a Path,
    defaults: &'a Defaults,
    notifiers: &'a BTreeSet<&'a str>,
    /// No key was dropped for a type error: the monitor may be built.
    clean: bool,
}

/// Checks one monitor and, when it has no problem, builds it.
fn build_monitor(
    m: &MonitorSection,
    cx: &MonitorContext<'_>,
    issues: &mut Issues,
) -> Option<Monitor> {
    let d = cx.defaults;
    let name = match &m.name {
        None => {
            issues.add(
                cx.header.clone(),
                "name",
                "missing; every monitor needs a unique name",
            );
            None
        }
        Some(n) => check_name(n, issues),
    };

    // Protocol preset: Ok(None) for plain TCP, Err(()) when unknown (already reported).
    let preset: Result<Option<&'static Preset>, ()> = match &m.protocol {
        None => Ok(None),
        Some(p) if p.get_ref().eq_ignore_ascii_case("tcp") => Ok(None),
        Some(p) => presets::find(p.get_ref()).map(Some).ok_or_else(|| {
            let known: Vec<&str> = presets::ALL.iter().map(|p| p.name).collect();
            let hint = super::parse::suggest(p.get_ref(), known.iter().copied())
                .map(|s| format!("did you mean {s:?}? "))
                .unwrap_or_default();
            issues.add(
                p.span(),
                "protocol",
                format!(
                    "unknown protocol {:?}; {hint}use \"tcp\" or one of: {}",
                    p.get_ref(),
                    known.join(", ")
                ),
            );
        }),
    };
    let preset_known = preset.is_ok();
    let preset = preset.ok().flatten();

    let target = match &m.target {
        None => {
            issues.add(
                cx.header.clone(),
                "target",
                "missing; write target = \"host:port\"",
            );
            None
        }
        Some(t) => target(t, preset, preset_known, issues),
    };

    let family = m.family.unwrap_or(d.family);
    let source = m
        .source
        .as_ref()
        .and_then(|s| match s.get_ref().trim().parse::<IpAddr>() {
            Ok(ip) => {
                if !family.admits(&ip) {
                    issues.add(
                        s.span(),
                        "source",
                        format!("{ip} is not an address of family {}", family_name(family)),
                    );
                }
                Some(ip)
            }
            Err(_) => {
                issues.add(
                    s.span(),
                    "source",
                    format!("not an IP address: {:?}", s.get_ref()),
                );
                None
            }
        });
    if let Some(Target {
        host: Host::Ip(ip), ..
    }) = &target
    {
        if !family.admits(ip) {
            let span = m.target.as_ref().map_or(cx.header.clone(), Spanned::span);
            issues.add(
                span,
                "target",
                format!("{ip} is not an address of family {}", family_name(family)),
            );
        }
    }

    let mut spec = ProbeSpec::connect(target.clone().unwrap_or(Target {
        host: Host::Name("invalid".into()),
        port: 1,
    }));
    spec.family = family;
    spec.source = source;

    let starttls = m.starttls.as_ref().is_some_and(|s| *s.get_ref());
    if let Some(p) = preset {
        if starttls && p.starttls.is_none() {
            let span = m.starttls.as_ref().map_or(cx.header.clone(), Spanned::span);
            issues.add(
                span,
                "starttls",
                format!(
                    "protocol {:?} has no STARTTLS (protocols with STARTTLS: {})",
                    p.name,
                    starttls_presets()
                ),
            );
        } else if let Err(e) = p.apply(&mut spec, starttls) {
            issues.add(cx.header.clone(), "protocol", e);
        }
    } else if starttls && preset_known {
        let span = m.starttls.as_ref().map_or(cx.header.clone(), Spanned::span);
        issues.add(
            span,
            "starttls",
            format!(
                "needs a protocol with STARTTLS ({}); for a custom dialog add a step \
                 {{ starttls = \"smtp\" }}",
                starttls_presets()
            ),
        );
    }

    // What to say and expect.
    let send = match (&m.send, &m.send_hex) {
        (Some(_), Some(h)) => {
            issues.add(h.span(), "send_hex", "send and send_hex exclude each other");
            None
        }
        (Some(s), None) => {
            if s.get_ref().is_empty() {
                issues.add(s.span(), "send", "empty: remove it to send nothing");
            }
            Some(s.get_ref().as_bytes().to_vec())
        }
        (None, Some(h)) => hex_bytes(h, "send_hex", issues),
        (None, None) => None,
    };
    let expectation = m
        .expect
        .as_ref()
        .and_then(|e| expectation(e, m.expect_mode.as_ref(), "expect", issues));
    if m.expect.is_none() {
        if let Some(mode) = &m.expect_mode {
            issues.add(mode.span(), "expect_mode", "has no effect without expect");
        }
    }
    if let Some(dialog) = &m.dialog {
        if m.send.is_some() || m.send_hex.is_some() || m.expect.is_some() {
            issues.add(
                dialog.span(),
                "dialog",
                "a dialog replaces send, send_hex and expect: use one or the other",
            );
        }
        if starttls {
            if let Some(s) = &m.starttls {
                issues.add(
                    s.span(),
                    "starttls",
                    "with a dialog, put STARTTLS into it as a step: { starttls = true }",
                );
            }
        }
        if dialog.get_ref().is_empty() {
            issues.add(
                dialog.span(),
                "dialog",
                "empty: give at least one step, or remove it",
            );
        }
        spec.steps = dialog_steps(dialog.get_ref(), preset, issues);
    } else if send.is_some() || expectation.is_some() {
        // The user's exchange replaces the preset's, after its STARTTLS upgrade if any.
        let keep = spec
            .steps
            .iter()
            .rposition(|s| matches!(s, Step::StartTls(_)))
            .map_or(0, |i| i + 1);
        spec.steps.truncate(keep);
        spec.steps.extend(send.map(Step::Send));
        spec.steps.extend(expectation.map(Step::Expect));
    }
    if let Some(q) = &m.quit {
        spec.quit = (!q.get_ref().is_empty()).then(|| q.get_ref().as_bytes().to_vec());
    }
    let uses_starttls = spec.steps.iter().any(|s| matches!(s, Step::StartTls(_)));

    // TLS.
    match m.tls.as_ref().map(|t| (t.span(), t.get_ref())) {
        None => {}
        Some((span, TlsOption::Flag(true))) => {
            if uses_starttls {
                issues.add(
                    span,
                    "tls",
                    "tls = true means TLS from the first byte, which excludes STARTTLS; \
                     use a table (tls = { … }) for STARTTLS settings",
                );
            }
            spec.implicit_tls = true;
        }
        Some((_, TlsOption::Flag(false))) => spec.implicit_tls = false,
        Some((_, TlsOption::Table(t))) => {
            spec.implicit_tls = !uses_starttls;
            tls_settings(t, &mut spec, cx.base_dir, issues);
        }
    }
    if spec.uses_tls() && spec.tls.cert_days.is_none() {
        spec.tls.cert_days = d.cert_days;
    }

    // Limits. A timeout set nowhere fits the interval: `interval = "2s"` alone is valid.
    let interval = positive(&m.interval, "interval", issues).unwrap_or(d.interval);
    let explicit_timeout = positive(&m.timeout, "timeout", issues);
    let timeout = explicit_timeout
        .or(d.timeout)
        .unwrap_or_else(|| default_timeout().min(interval));
    let connect_timeout = positive(&m.connect_timeout, "connect_timeout", issues)
        .or(d.connect_timeout)
        .unwrap_or(timeout);
    let idle_timeout = positive(&m.idle_timeout, "idle_timeout", issues).unwrap_or(d.idle_timeout);
    let max_bytes = count(&m.max_bytes, "max_bytes", 1, MAX_BYTES, issues)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(d.max_bytes);
    spec.limits = probe::Limits {
        connect_timeout,
        deadline: timeout,
        idle_timeout,
        max_bytes,
    };
    if let Some(delay) = &m.send_delay {
        let v = delay.get_ref().get();
        if v >= timeout {
            issues.add(
                delay.span(),
                "send_delay",
                format!(
                    "{} is not shorter than the timeout ({}): every check would time out",
                    delay.get_ref(),
                    HumanDuration(timeout)
                ),
            );
        }
        spec.send_delay = v;
    }
    spec.response_time = match &m.response_time {
        Some(rt) => thresholds(rt, "response_time", issues),
        None => d.response_time,
    };
    spec.states.refused = m.state_on_refused.map_or(State::Critical, probe_state);
    spec.states.mismatch = m.state_on_mismatch.map_or(State::Critical, probe_state);
    if let Some(closed) = &m.must_be_closed {
        spec.must_be_closed = *closed.get_ref();
        if spec.must_be_closed && (!spec.steps.is_empty() || spec.implicit_tls) {
            issues.add(
                closed.span(),
                "must_be_closed",
                "checks only that the port refuses connections: remove protocol, send, \
                 expect, dialog and tls",
            );
        }
    }

    let owner = m
        .owner
        .as_ref()
        .and_then(|o| match ExpectedOwner::parse(o.get_ref()) {
            Ok(owner) => Some(owner),
            Err(e) => {
                let e = e.strip_prefix("owner ").unwrap_or(&e).to_string();
                issues.add(o.span(), "owner", e);
                None
            }
        });

    // Schedule and policy.
    if timeout > interval {
        let span = m
            .timeout
            .as_ref()
            .or(m.interval.as_ref())
            .map_or(cx.header.clone(), Spanned::span);
        let mut message = longer_than_interval(timeout, interval);
        if explicit_timeout.is_none() {
            message = format!(
                "{message} (the timeout comes from [defaults]: set a shorter timeout in this \
                 monitor or in [defaults])"
            );
        }
        issues.add(span, "timeout", message);
    }
    let fail_after = count32(&m.fail_after, "fail_after", 1, issues).unwrap_or(d.fail_after);
    let recover_after =
        count32(&m.recover_after, "recover_after", 1, issues).unwrap_or(d.recover_after);
    let window = count32(&m.window, "window", 1, issues).or(d.window);
    if let Some(w) = window {
        let span = m
            .window
            .as_ref()
            .or(m.fail_after.as_ref())
            .or(m.recover_after.as_ref())
            .map_or(cx.header.clone(), Spanned::span);
        check_window(w, fail_after, recover_after, span, issues);
    }
    let policy = Policy {
        fail_after,
        recover_after,
        window,
        flap_max_transitions: count32(&m.flap_max_transitions, "flap_max_transitions", 1, issues)
            .unwrap_or(d.flap_max_transitions),
        flap_window: positive(&m.flap_window, "flap_window", issues).unwrap_or(d.flap_window),
    };
    let notify = match &m.notify {
        Some(list) => notify_list(list, cx.notifiers, issues),
        None => d.notify.clone(),
    };
    // In order, each once; a set keeps 100,000 tags linear.
    let mut tags = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for t in m.tags.iter().flatten() {
        if t.get_ref().trim().is_empty() {
            issues.add(t.span(), "tags", "a tag must not be empty");
        } else if seen.insert(t.get_ref().as_str()) {
            tags.push(t.get_ref().clone());
        }
    }
    let mut heal = heal_limits(
        &m.max_actions,
        &m.action_window,
        &m.action_cooldown,
        &m.reset_after,
        &d.heal,
        issues,
    );
    if let Some(list) = &m.on_down {
        heal.steps = heal_steps(list, issues);
    }

    if !issues.is_empty() || !cx.clean {
        return None;
    }
    let (Some(name), Some(_)) = (name, target) else {
        return None;
    };
    let definition = Fingerprint::of(&format!(
        "{:?}",
        Definition {
            name: &name,
            spec: &spec,
            owner: &owner,
            interval,
            policy: &policy,
            notify: &notify,
            tags: &tags,
            heal: &heal,
        }
    ));
    let probe = match Probe::new(spec) {
        Ok(p) => p,
        Err(e) => {
            let (span, path) = match (&e, &m.tls, &m.protocol) {
                (SpecError::Tls(_), Some(t), _) => (t.span(), "tls"),
                (SpecError::Tls(_), None, Some(p)) => (p.span(), "protocol"),
                _ => (cx.header.clone(), ""),
            };
            issues.add(span, path, e.to_string());
            return None;
        }
    };
    Some(Monitor {
        name,
        probe,
        owner,
        owner_unknown: None,
        interval,
        policy,
        notify,
        tags,
        heal,
        origin: Origin::Config,
        definition,
    })
}

/// The canonical rendering of a monitor: everything that decides what it does, after
/// defaults and presets were applied.
#[derive(Debug)]
#[allow(dead_code)] // read through Debug only
struct Definition<'a> {
    name: &'a str,
    spec: &'a ProbeSpec,
    owner: &'a Option<ExpectedOwner>,
    interval: Duration,
    policy: &'a Policy,
    notify: &'a [String],
    tags: &'a [String],
    /// The ladder as built (defaults applied) and its limits.
    heal: &'a Heal,
}

fn check_name(n: &Spanned<String>, issues: &mut Issues) -> Option<String> {
    let name = n.get_ref();
    let problem = if name.trim().is_empty() {
        Some("must not be empty".to_string())
    } else if name.chars().count() > MAX_NAME {
        Some(format!("at most {MAX_NAME} characters"))
    } else if name
        .chars()
        .any(|c| c.is_control() || c == '/' || super::error::is_bidi_control(c))
    {
        Some("must not contain control characters, bidi overrides or /".to_string())
    } else if name.trim() != name {
        Some("must not start or end with spaces".to_string())
    } else {
        None
    };
    match problem {
        Some(p) => {
            issues.add(n.span(), "name", p);
            None
        }
        None => Some(name.clone()),
    }
}

fn target(
    t: &Spanned<String>,
    preset: Option<&Preset>,
    preset_known: bool,
    issues: &mut Issues,
) -> Option<Target> {
    use probe::target::TargetError;
    match Target::parse_with_default(t.get_ref(), preset.map(|p| p.default_port)) {
        Ok(target) => Some(target),
        // An unknown protocol is reported already; its default port is what is missing.
        Err(TargetError::MissingPort(_)) if !preset_known => None,
        Err(e) => {
            let message = match e {
                TargetError::BadPort(p) => format!("port must be 1-65535, got {p}"),
                TargetError::MissingPort(text) => format!(
                    "no port in {text:?}: write \"{text}:PORT\", or set a protocol whose \
                     default port applies"
                ),
                other => other.to_string(),
            };
            issues.add(t.span(), "target", message);
            None
        }
    }
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::Any => "any",
        Family::V4 => "v4",
        Family::V6 => "v6",
    }
}

fn starttls_presets() -> String {
    presets::ALL
        .iter()
        .filter(|p| p.starttls.is_some())
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn probe_state(s: ProbeState) -> State {
    match s {
        ProbeState::Ok => State::Ok,
        ProbeState::Warning => State::Warning,
        ProbeState::Critical => State::Critical,
    }
}

fn tls_settings(t: &TlsSection, spec: &mut ProbeSpec, base: &Path, issues: &mut Issues) {
    if let Some(sni) = &t.sni {
        if sni.get_ref().trim().is_empty() {
            issues.add(sni.span(), "tls.sni", "must not be empty");
        }
        spec.tls.sni = Some(sni.get_ref().clone());
    }
    let ca = t
        .ca_file
        .as_ref()
        .and_then(|f| resolve_path(base, f, "tls.ca_file", issues));
    spec.tls.verify = match (t.verify.as_ref().map(|v| (v.span(), *v.get_ref())), ca) {
        (Some((span, VerifyMode::System)), Some(_)) => {
            issues.add(
                span,
                "tls.verify",
                "verify = \"system\" and ca_file exclude each other: ca_file verifies \
                 against that file only",
            );
            Verify::SystemRoots
        }
        (Some((span, VerifyMode::None)), Some(_)) => {
            issues.add(
                span,
                "tls.verify",
                "verify = \"none\" and ca_file exclude each other",
            );
            Verify::Insecure
        }
        (_, Some(file)) => Verify::CaFile(file),
        (Some((_, VerifyMode::None)), None) => Verify::Insecure,
        (Some((_, VerifyMode::System)) | None, None) => Verify::SystemRoots,
    };
    let cert = t
        .client_cert
        .as_ref()
        .and_then(|f| resolve_path(base, f, "tls.client_cert", issues));
    let key = t
        .client_key
        .as_ref()
        .and_then(|f| resolve_path(base, f, "tls.client_key", issues));
    match (&t.client_cert, &t.client_key) {
        (Some(c), None) => issues.add(c.span(), "tls.client_cert", "needs client_key too"),
        (None, Some(k)) => issues.add(k.span(), "tls.client_key", "needs client_cert too"),
        _ => {}
    }
    if let (Some(cert), Some(key)) = (cert, key) {
        spec.tls.client_cert = Some(ClientCert { cert, key });
    }
    if let Some(cd) = &t.cert_days {
        spec.tls.cert_days = cert_days(cd, "tls.cert_days", issues);
    }
}

fn dialog_steps(
    steps: &[Spanned<StepSection>],
    preset: Option<&Preset>,
    issues: &mut Issues,
) -> Vec<Step> {
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let path = format!("dialog[{}]", i + 1);
        let s = step.get_ref();
        let actions = usize::from(s.send.is_some())
            + usize::from(s.send_hex.is_some())
            + usize::from(s.expect.is_some())
            + usize::from(s.starttls.is_some());
        if actions != 1 {
            issues.add(
                step.span(),
                &path,
                if actions == 0 {
                    "empty step: give one of send, send_hex, expect, starttls"
                } else {
                    "one action per step (send, send_hex, expect or starttls): split it into \
                     several steps"
                },
            );
            continue;
        }
        if s.expect.is_none() {
            if let Some(mode) = &s.expect_mode {
                issues.add(
                    mode.span(),
                    format!("{path}.expect_mode"),
                    "only applies to an expect step",
                );
            }
        }
        if let Some(send) = &s.send {
            if send.get_ref().is_empty() {
                issues.add(
                    send.span(),
                    format!("{path}.send"),
                    "empty: this step sends nothing",
                );
            }
            out.push(Step::Send(send.get_ref().as_bytes().to_vec()));
        } else if let Some(hex) = &s.send_hex {
            out.extend(hex_bytes(hex, &format!("{path}.send_hex"), issues).map(Step::Send));
        } else if let Some(e) = &s.expect {
            out.extend(
                expectation(e, s.expect_mode.as_ref(), &format!("{path}.expect"), issues)
                    .map(Step::Expect),
            );
        } else if let Some(st) = &s.starttls {
            let protocols: Vec<&str> = StartTls::ALL.iter().map(|p| p.name()).collect();
            let path = format!("{path}.starttls");
            match st.get_ref() {
                StarttlsOption::Flag(true) => match preset.and_then(|p| p.starttls) {
                    Some(p) => out.push(Step::StartTls(p)),
                    None => issues.add(
                        st.span(),
                        path,
                        format!(
                            "true needs a protocol with STARTTLS; name the STARTTLS protocol \
                             instead, one of: {}",
                            protocols.join(", ")
                        ),
                    ),
                },
                StarttlsOption::Flag(false) => {
                    issues.add(st.span(), path, "false is not a step: remove the step")
                }
                StarttlsOption::Protocol(name) => {
                    match StartTls::from_name(&name.to_ascii_lowercase()) {
                        Some(p) => out.push(Step::StartTls(p)),
                        None => issues.add(
                            st.span(),
                            path,
                            format!(
                                "unknown STARTTLS protocol {name:?}; one of: {}",
                                protocols.join(", ")
                            ),
                        ),
                    }
                }
            }
        }
    }
    out
}

fn expectation(
    e: &Spanned<ExpectOption>,
    mode: Option<&Spanned<ExpectMode>>,
    path: &str,
    issues: &mut Issues,
) -> Option<Expectation> {
    let matchers: Vec<Option<Matcher>> = match e.get_ref() {
        ExpectOption::One(m) => vec![matcher(m, e.span(), path, issues)],
        ExpectOption::Many(items) => {
            if items.is_empty() {
                issues.add(
                    e.span(),
                    path,
                    "empty: give at least one expectation, or remove it",
                );
            }
            items
                .iter()
                .enumerate()
                .map(|(i, m)| matcher(m.get_ref(), m.span(), &format!("{path}[{}]", i + 1), issues))
                .collect()
        }
    };
    let matchers: Option<Vec<Matcher>> = matchers.into_iter().collect();
    let matchers = matchers.filter(|m| !m.is_empty())?;
    let mode = match mode.map(|m| *m.get_ref()) {
        Some(ExpectMode::All) => MatchMode::All,
        Some(ExpectMode::Any) | None => MatchMode::Any,
    };
    Some(Expectation { matchers, mode })
}

fn matcher(
    m: &MatcherOption,
    span: Range<usize>,
    path: &str,
    issues: &mut Issues,
) -> Option<Matcher> {
    let text = |s: &Spanned<String>, key: &str, issues: &mut Issues| {
        if s.get_ref().is_empty() {
            issues.add(
                s.span(),
                key_path(path, key),
                "empty: an empty expectation matches anything",
            );
            None
        } else {
            Some(s.get_ref().as_bytes().to_vec())
        }
    };
    match m {
        MatcherOption::Text(t) => {
            if t.is_empty() {
                issues.add(span, path, "empty: an empty expectation matches anything");
                return None;
            }
            Some(Matcher::Contains(t.as_bytes().to_vec()))
        }
        MatcherOption::Table(t) => {
            let given = usize::from(t.contains.is_some())
                + usize::from(t.prefix.is_some())
                + usize::from(t.regex.is_some())
                + usize::from(t.hex.is_some());
            if given != 1 {
                issues.add(
                    span,
                    path,
                    if given == 0 {
                        "give one of contains, prefix, regex, hex"
                    } else {
                        "give only one of contains, prefix, regex, hex per table; for several, \
                         use an array of tables"
                    },
                );
                return None;
            }
            if let Some(s) = &t.contains {
                text(s, "contains", issues).map(Matcher::Contains)
            } else if let Some(s) = &t.prefix {
                text(s, "prefix", issues).map(Matcher::Prefix)
            } else if let Some(s) = &t.regex {
                match Matcher::regex(s.get_ref()) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        // The regex crate explains on several lines; its last one says it.
                        let why = e.rsplit_once("error: ").map_or(e.as_str(), |(_, w)| w);
                        issues.add(
                            s.span(),
                            key_path(path, "regex"),
                            format!("invalid regex {:?}: {}", s.get_ref(), why.trim()),
                        );
                        None
                    }
                }
            } else {
                let s = t.hex.as_ref()?;
                hex_bytes(s, &key_path(path, "hex"), issues).map(Matcher::Prefix)
            }
        }
    }
}

fn key_path(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

fn hex_bytes(s: &Spanned<String>, path: &str, issues: &mut Issues) -> Option<Vec<u8>> {
    parse_hex(s.get_ref())
        .map_err(|e| issues.add(s.span(), path, e))
        .ok()
}

fn thresholds(rt: &Spanned<ResponseTimeSection>, path: &str, issues: &mut Issues) -> Thresholds {
    let r = rt.get_ref();
    let warning = positive(&r.warning, &key_path(path, "warning"), issues);
    let critical = positive(&r.critical, &key_path(path, "critical"), issues);
    if let (Some(w), Some(c), Some(ws)) = (warning, critical, &r.warning) {
        if w > c {
            issues.add(
                ws.span(),
                key_path(path, "warning"),
                format!(
                    "{} is longer than critical ({}): warning must come first",
                    HumanDuration(w),
                    HumanDuration(c)
                ),
            );
        }
    }
    if r.warning.is_none() && r.critical.is_none() {
        issues.add(rt.span(), path, "give warning, critical or both");
    }
    Thresholds { warning, critical }
}

fn cert_days(cd: &Spanned<CertDaysSection>, path: &str, issues: &mut Issues) -> Option<CertDays> {
    let c = cd.get_ref();
    let warning = count(&c.warning, &key_path(path, "warning"), 0, 3650, issues);
    let critical = count(&c.critical, &key_path(path, "critical"), 0, 3650, issues);
    let warning = warning.unwrap_or(default_cert_warning_days());
    let critical = critical.unwrap_or(default_cert_critical_days());
    if critical > warning {
        let span = c
            .critical
            .as_ref()
            .or(c.warning.as_ref())
            .map_or(cd.span(), Spanned::span);
        issues.add(
            span,
            path,
            format!("critical ({critical} days) must not exceed warning ({warning} days)"),
        );
        return None;
    }
    Some(CertDays {
        warning: u32::try_from(warning).ok()?,
        critical: u32::try_from(critical).ok()?,
    })
}

fn notify_list(
    list: &Spanned<Vec<Spanned<String>>>,
    notifiers: &BTreeSet<&str>,
    issues: &mut Issues,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in list.get_ref() {
        if !notifiers.contains(n.get_ref().as_str()) {
            let hint = super::parse::suggest(n.get_ref(), notifiers.iter().copied())
                .map(|s| format!("did you mean {s:?}? "))
                .unwrap_or_default();
            issues.add(
                n.span(),
                "notify",
                format!(
                    "no notifier named {:?}; {hint}define it with [[notifier]]",
                    n.get_ref()
                ),
            );
        } else if !out.contains(n.get_ref()) {
            out.push(n.get_ref().clone());
        }
    }
    out
}

fn longer_than_interval(timeout: Duration, interval: Duration) -> String {
    format!(
        "{} is longer than the interval ({}): a check must end before the next one starts; \
         set timeout to {} or less, or a longer interval",
        HumanDuration(timeout),
        HumanDuration(interval),
        HumanDuration(interval)
    )
}

fn check_window(
    window: u32,
    fail_after: u32,
    recover_after: u32,
    span: Range<usize>,
    issues: &mut Issues,
) {
    let needed = fail_after.max(recover_after);
    if window < needed {
        issues.add(
            span,
            "window",
            format!(
                "{window} is smaller than fail_after ({fail_after}) or recover_after \
                 ({recover_after}): the last {window} results can never hold {needed}"
            ),
        );
    }
}

/// A duration that must be greater than zero; `None` when absent or zero (reported).
fn positive(
    v: &Option<Spanned<HumanDuration>>,
    path: &str,
    issues: &mut Issues,
) -> Option<Duration> {
    let v = v.as_ref()?;
    if v.get_ref().get().is_zero() {
        issues.add(v.span(), path, "must be greater than 0");
        return None;
    }
    Some(v.get_ref().get())
}

/// An integer in `min..=max`; `None` when absent or out of range (reported).
fn count(
    v: &Option<Spanned<i64>>,
    path: &str,
    min: i64,
    max: i64,
    issues: &mut Issues,
) -> Option<i64> {
    let v = v.as_ref()?;
    let n = *v.get_ref();
    if !(min..=max).contains(&n) {
        issues.add(v.span(), path, format!("must be {min}-{max}, got {n}"));
        return None;
    }
    Some(n)
}

fn count32(v: &Option<Spanned<i64>>, path: &str, min: i64, issues: &mut Issues) -> Option<u32> {
    count(v, path, min, MAX_COUNT, issues).and_then(|n| u32::try_from(n).ok())
}
