//! One `[[monitor]]` into a [`Monitor`]: [`build_monitor`] reads as the list of its steps,
//! each a function that decides one thing (name, protocol, target, address family, probe
//! dialog, TLS, timing, verdicts, owner, policy, notify, tags, heal ladder), then prepares
//! the probe once nothing was reported.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use portwarden_probe::presets::{self, Preset};
use portwarden_probe::{Family, Host, Probe, ProbeSpec, SpecError, State, Step, Target};
use portwarden_sockets::owner::ExpectedOwner;
use toml::Spanned;

use super::defaults::Defaults;
use super::heal::{heal_limits, heal_steps};
use super::notifiers::notify_list;
use super::probe_keys::{
    dialog_steps, expectation, hex_bytes, probe_state, starttls_presets, thresholds, tls_settings,
};
use super::values::{check_window, count, count32, longer_than_interval, positive};
use super::{Issues, MAX_BYTES};
use crate::config::duration::HumanDuration;
use crate::config::schema::*;
use crate::monitor::{Fingerprint, Heal, Monitor, Origin, Policy};

/// Longest monitor name.
const MAX_NAME: usize = 128;

/// What building one monitor needs besides its section.
pub(super) struct MonitorContext<'a> {
    /// The `[[monitor]]` header, for problems about missing keys.
    pub(super) header: Range<usize>,
    pub(super) base_dir: &'a Path,
    pub(super) defaults: &'a Defaults,
    pub(super) notifiers: &'a BTreeSet<&'a str>,
    /// No key was dropped for a type error: the monitor may be built.
    pub(super) clean: bool,
}

/// Checks one monitor and, when it has no problem, builds it.
///
/// The steps run in this order, which is the order their problems are reported in.
pub(super) fn build_monitor(
    m: &MonitorSection,
    cx: &MonitorContext<'_>,
    issues: &mut Issues,
) -> Option<Monitor> {
    let d = cx.defaults;
    let name = monitor_name(m, cx, issues);
    let protocol = protocol(m, issues);
    let target = target_address(m, cx, &protocol, issues);
    let mut spec = ProbeSpec::connect(target.clone().unwrap_or(Target {
        host: Host::Name("invalid".into()),
        port: 1,
    }));
    address_family(m, cx, target.as_ref(), &mut spec, issues);
    let starttls = preset_dialog(m, cx, &protocol, &mut spec, issues);
    probe_dialog(m, protocol.preset, starttls, &mut spec, issues);
    tls_mode(m, cx, &mut spec, issues);
    let timing = timing(m, d, &mut spec, issues);
    verdicts(m, d, &mut spec, issues);
    let owner = expected_owner(m, issues);
    let policy = policy(m, cx, &timing, issues);
    let notify = match &m.notify {
        Some(list) => notify_list(list, cx.notifiers, issues),
        None => d.notify.clone(),
    };
    let tags = tags(m, issues);
    let heal = heal_ladder(m, d, issues);

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
            interval: timing.interval,
            policy: &policy,
            notify: &notify,
            tags: &tags,
            heal: &heal,
        }
    ));
    let probe = prepared_probe(m, cx, spec, issues)?;
    Some(Monitor {
        name,
        probe,
        owner,
        owner_unknown: None,
        interval: timing.interval,
        policy,
        notify,
        tags,
        heal,
        origin: Origin::Config,
        definition,
    })
}

/// The monitor's name: present and well-formed.
fn monitor_name(
    m: &MonitorSection,
    cx: &MonitorContext<'_>,
    issues: &mut Issues,
) -> Option<String> {
    match &m.name {
        None => {
            issues.add(
                cx.header.clone(),
                "name",
                "missing; every monitor needs a unique name",
            );
            None
        }
        Some(n) => check_name(n, issues),
    }
}

/// The `protocol` key: a preset, plain TCP, or unknown (reported).
struct Protocol {
    /// `None` for plain TCP or an unknown protocol.
    preset: Option<&'static Preset>,
    /// False when the protocol is unknown: its default port is missing, not the user's.
    known: bool,
}

/// Which protocol preset applies, with "did you mean" for an unknown one.
fn protocol(m: &MonitorSection, issues: &mut Issues) -> Protocol {
    let preset: Result<Option<&'static Preset>, ()> = match &m.protocol {
        None => Ok(None),
        Some(p) if p.get_ref().eq_ignore_ascii_case("tcp") => Ok(None),
        Some(p) => presets::find(p.get_ref()).map(Some).ok_or_else(|| {
            let known: Vec<&str> = presets::ALL.iter().map(|p| p.name).collect();
            let hint = crate::config::parse::suggest(p.get_ref(), known.iter().copied())
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
    Protocol {
        known: preset.is_ok(),
        preset: preset.ok().flatten(),
    }
}

/// Where to connect: `target`, with the preset's default port when it has none.
fn target_address(
    m: &MonitorSection,
    cx: &MonitorContext<'_>,
    protocol: &Protocol,
    issues: &mut Issues,
) -> Option<Target> {
    match &m.target {
        None => {
            issues.add(
                cx.header.clone(),
                "target",
                "missing; write target = \"host:port\"",
            );
            None
        }
        Some(t) => target(t, protocol.preset, protocol.known, issues),
    }
}

/// The address family and source address, and whether the target's address fits them.
fn address_family(
    m: &MonitorSection,
    cx: &MonitorContext<'_>,
    target: Option<&Target>,
    spec: &mut ProbeSpec,
    issues: &mut Issues,
) {
    let family = m.family.unwrap_or(cx.defaults.family);
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
    }) = target
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
    spec.family = family;
    spec.source = source;
}

/// The preset's dialog, upgraded with STARTTLS when `starttls = true` and the protocol has
/// it. Returns whether `starttls = true` was asked for.
fn preset_dialog(
    m: &MonitorSection,
    cx: &MonitorContext<'_>,
    protocol: &Protocol,
    spec: &mut ProbeSpec,
    issues: &mut Issues,
) -> bool {
    let starttls = m.starttls.as_ref().is_some_and(|s| *s.get_ref());
    if let Some(p) = protocol.preset {
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
        } else if let Err(e) = p.apply(spec, starttls) {
            issues.add(cx.header.clone(), "protocol", e);
        }
    } else if starttls && protocol.known {
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
    starttls
}

/// What to say and expect: `send`/`send_hex`/`expect` after the preset's STARTTLS, or a
/// `dialog` instead of them; and `quit`.
fn probe_dialog(
    m: &MonitorSection,
    preset: Option<&Preset>,
    starttls: bool,
    spec: &mut ProbeSpec,
    issues: &mut Issues,
) {
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
}

/// TLS from the first byte, after STARTTLS, or none; its settings; and the certificate days
/// of `[defaults]` for a TLS probe that sets none.
fn tls_mode(
    m: &MonitorSection,
    cx: &MonitorContext<'_>,
    spec: &mut ProbeSpec,
    issues: &mut Issues,
) {
    let uses_starttls = spec.steps.iter().any(|s| matches!(s, Step::StartTls(_)));
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
            tls_settings(t, spec, cx.base_dir, issues);
        }
    }
    if spec.uses_tls() && spec.tls.cert_days.is_none() {
        spec.tls.cert_days = cx.defaults.cert_days;
    }
}

/// How often a check runs and how long it may take.
struct Timing {
    interval: Duration,
    timeout: Duration,
    /// The monitor sets `timeout` itself (not `[defaults]` or the built-in default).
    explicit_timeout: bool,
}

/// Interval, timeouts, the read limit and the send delay. A timeout set nowhere fits the
/// interval: `interval = "2s"` alone is valid.
fn timing(m: &MonitorSection, d: &Defaults, spec: &mut ProbeSpec, issues: &mut Issues) -> Timing {
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
    spec.limits = portwarden_probe::Limits {
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
    Timing {
        interval,
        timeout,
        explicit_timeout: explicit_timeout.is_some(),
    }
}

/// What a result means: response-time thresholds, the state of a refusal or a mismatch,
/// and `must_be_closed`.
fn verdicts(m: &MonitorSection, d: &Defaults, spec: &mut ProbeSpec, issues: &mut Issues) {
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
}

/// The process expected to own the port (`owner`), when given.
fn expected_owner(m: &MonitorSection, issues: &mut Issues) -> Option<ExpectedOwner> {
    m.owner
        .as_ref()
        .and_then(|o| match ExpectedOwner::parse(o.get_ref()) {
            Ok(owner) => Some(owner),
            Err(e) => {
                let e = e.strip_prefix("owner ").unwrap_or(&e).to_string();
                issues.add(o.span(), "owner", e);
                None
            }
        })
}

/// Schedule and policy: the timeout fits the interval; how many results flip the state,
/// over which window; when it counts as flapping.
fn policy(
    m: &MonitorSection,
    cx: &MonitorContext<'_>,
    timing: &Timing,
    issues: &mut Issues,
) -> Policy {
    let d = cx.defaults;
    let Timing {
        interval, timeout, ..
    } = *timing;
    if timeout > interval {
        let span = m
            .timeout
            .as_ref()
            .or(m.interval.as_ref())
            .map_or(cx.header.clone(), Spanned::span);
        let mut message = longer_than_interval(timeout, interval);
        if !timing.explicit_timeout {
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
    Policy {
        fail_after,
        recover_after,
        window,
        flap_max_transitions: count32(&m.flap_max_transitions, "flap_max_transitions", 1, issues)
            .unwrap_or(d.flap_max_transitions),
        flap_window: positive(&m.flap_window, "flap_window", issues).unwrap_or(d.flap_window),
    }
}

/// The tags, in order, each once; a set keeps 100,000 tags linear.
fn tags(m: &MonitorSection, issues: &mut Issues) -> Vec<String> {
    let mut tags = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for t in m.tags.iter().flatten() {
        if t.get_ref().trim().is_empty() {
            issues.add(t.span(), "tags", "a tag must not be empty");
        } else if seen.insert(t.get_ref().as_str()) {
            tags.push(t.get_ref().clone());
        }
    }
    tags
}

/// The heal ladder (`on_down`) and its limits over `[defaults]`.
fn heal_ladder(m: &MonitorSection, d: &Defaults, issues: &mut Issues) -> Heal {
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
    heal
}

/// The prepared probe: the one step that reads files (CA and client certificates); its
/// problem is reported at `tls`, else at `protocol`, else at the header.
fn prepared_probe(
    m: &MonitorSection,
    cx: &MonitorContext<'_>,
    spec: ProbeSpec,
    issues: &mut Issues,
) -> Option<Probe> {
    match Probe::new(spec) {
        Ok(p) => Some(p),
        Err(e) => {
            let (span, path) = match (&e, &m.tls, &m.protocol) {
                (SpecError::Tls(_), Some(t), _) => (t.span(), "tls"),
                (SpecError::Tls(_), None, Some(p)) => (p.span(), "protocol"),
                _ => (cx.header.clone(), ""),
            };
            issues.add(span, path, e.to_string());
            None
        }
    }
}

/// The canonical rendering of a monitor: everything that decides what it does, after
/// defaults and presets were applied.
#[derive(Debug)]
#[expect(dead_code, reason = "read through Debug only")]
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
        .any(|c| c.is_control() || c == '/' || crate::config::error::is_bidi_control(c))
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
    use portwarden_probe::target::TargetError;
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
