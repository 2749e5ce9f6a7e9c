//! The probe keys a monitor and a probe module share: TLS settings, the dialog's steps,
//! expectations and their matchers, response-time thresholds and certificate days.

use std::ops::Range;
use std::path::Path;

use portwarden_probe::escape::parse_hex;
use portwarden_probe::presets::{self, Preset};
use portwarden_probe::{
    CertDays, ClientCert, Expectation, MatchMode, Matcher, ProbeSpec, StartTls, State, Step,
    Thresholds, Verify,
};
use toml::Spanned;

use super::values::{count, key_path, positive, resolve_path};
use super::Issues;
use crate::config::duration::HumanDuration;
use crate::config::schema::*;

pub(super) fn starttls_presets() -> String {
    presets::ALL
        .iter()
        .filter(|p| p.starttls.is_some())
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn probe_state(s: ProbeState) -> State {
    match s {
        ProbeState::Ok => State::Ok,
        ProbeState::Warning => State::Warning,
        ProbeState::Critical => State::Critical,
    }
}

pub(super) fn tls_settings(t: &TlsSection, spec: &mut ProbeSpec, base: &Path, issues: &mut Issues) {
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

pub(super) fn dialog_steps(
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

pub(super) fn expectation(
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

pub(super) fn hex_bytes(s: &Spanned<String>, path: &str, issues: &mut Issues) -> Option<Vec<u8>> {
    parse_hex(s.get_ref())
        .map_err(|e| issues.add(s.span(), path, e))
        .ok()
}

pub(super) fn thresholds(
    rt: &Spanned<ResponseTimeSection>,
    path: &str,
    issues: &mut Issues,
) -> Thresholds {
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

pub(super) fn cert_days(
    cd: &Spanned<CertDaysSection>,
    path: &str,
    issues: &mut Issues,
) -> Option<CertDays> {
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
