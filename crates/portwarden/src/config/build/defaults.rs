//! `[defaults]` after checking, over the built-in defaults: what every monitor falls back
//! to for a key it does not set.

use std::collections::BTreeSet;
use std::time::Duration;

use portwarden_probe::{CertDays, Family, Thresholds};
use toml::Spanned;

use super::heal::heal_limits;
use super::notifiers::notify_list;
use super::probe_keys::{cert_days, thresholds};
use super::values::{check_window, count, count32, longer_than_interval, positive};
use super::{Issues, MAX_BYTES};
use crate::config::schema::*;
use crate::monitor::Heal;

/// `[defaults]` after checking, with the built-in defaults filled in. A bad value in
/// `[defaults]` is reported once, there; monitors then fall back to the built-in default.
#[derive(Debug, Clone)]
pub(super) struct Defaults {
    pub(super) interval: Duration,
    /// `None`: not set, so each monitor's timeout is the built-in default cut to its interval.
    pub(super) timeout: Option<Duration>,
    pub(super) connect_timeout: Option<Duration>,
    pub(super) idle_timeout: Duration,
    pub(super) max_bytes: usize,
    pub(super) family: Family,
    pub(super) fail_after: u32,
    pub(super) recover_after: u32,
    pub(super) window: Option<u32>,
    pub(super) flap_max_transitions: u32,
    pub(super) flap_window: Duration,
    pub(super) notify: Vec<String>,
    pub(super) response_time: Thresholds,
    pub(super) cert_days: Option<CertDays>,
    /// Self-healing limits (the ladder itself is per monitor).
    pub(super) heal: Heal,
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

pub(super) fn resolve_defaults(
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
