//! The guard's decisions: when to look (at start, every `verify_every`, on nftables changes,
//! a burst folded into one look), what a look means (`portwarden_firewall::assess` against the
//! policy and the baseline; zero-config's "nothing to guard yet"), what to do about a violation
//! ([`choose_repair`], then the pause file and the hourly limit), and what to report: a
//! standing problem once, a repair with the verification after it, a recovery.
//!
//! The firewall itself is the [`Firewall`] trait (inspect, enable, restore): the daemon gives
//! it the real one ([`super::world`]), the tests a fake.

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use portwarden_firewall::{assess, Assessment, BackendKind, Baseline, State};
use tokio_util::sync::CancellationToken;

use super::status::set;
use super::{
    read_baseline, unix_ms, unix_secs, watchable, GuardMode, GuardState, Pause, SharedStatus,
    ABSENT_WARNING,
};
use crate::config::{FirewallSettings, OnViolation};
use crate::events::{EventBus, EventKind, FirewallReport};

/// What the guard needs of a firewall: look at it, and the two ways to repair it.
pub trait Firewall: Send + Sync + 'static {
    /// The backend (fixed for the guard's life).
    fn kind(&self) -> BackendKind;
    /// Manage only these nftables tables from now on (a baseline picked up while running).
    fn set_tables(&mut self, tables: Option<Vec<String>>);
    /// Reads the current state. Read-only.
    fn inspect(&self) -> impl Future<Output = Result<State, portwarden_firewall::Error>> + Send;
    /// Switches the firewall on with the backend's own means.
    fn enable(&self) -> impl Future<Output = Result<(), portwarden_firewall::Error>> + Send;
    /// Puts the baseline back, atomically where the backend can.
    fn restore(
        &self,
        baseline: &Baseline,
    ) -> impl Future<Output = Result<(), portwarden_firewall::Error>> + Send;
}

/// Wait before restarting a change watcher that ended or could not start; doubled after each
/// failure up to [`WATCH_MAX_BACKOFF`].
const WATCH_RESTART: Duration = Duration::from_secs(5);
const WATCH_MAX_BACKOFF: Duration = Duration::from_secs(300);
/// At most one change-triggered verification per this gap: a stream of changes costs a
/// bounded amount of `nft` work, and a single change after a quiet spell waits nothing.
const MIN_CHANGE_GAP: Duration = Duration::from_millis(100);
/// Repairs are counted over this window for `max_repairs_per_hour`.
const REPAIR_WINDOW: Duration = Duration::from_secs(3600);

/// What triggered a verification.
pub(super) enum Trigger {
    Start,
    Periodic,
    Change {
        culprit: Option<String>,
        seen: Instant,
    },
}

/// The guard over one firewall: its settings, what it last saw and reported, its repairs.
pub(super) struct Guard<F> {
    settings: FirewallSettings,
    pause_file: PathBuf,
    bus: EventBus,
    status: SharedStatus,
    firewall: F,
    baseline: Option<Baseline>,
    baseline_mtime: Option<SystemTime>,
    /// The violations last reported, so a standing problem is reported once, not every 30 s.
    reported: Option<Vec<String>>,
    repairs: VecDeque<Instant>,
    /// The last unreadable-state error, reported once.
    unreadable: Option<String>,
    mode: GuardMode,
    /// The firewall was seen switched on since the guard started: from then on, off is a
    /// violation even in zero-config.
    seen_enabled: bool,
    /// [`ABSENT_WARNING`] was logged.
    said_absent: bool,
    /// The start-up line, while it waits for the first look (zero-config).
    intro: Option<Intro>,
}

/// The guard's start-up line: with the detection's reasons, and without them.
pub(super) struct Intro {
    pub(super) full: String,
    pub(super) short: String,
}

/// `on_violation`, or its default: restore when there is a baseline, else alert.
pub(super) fn effective_mode(
    settings: &FirewallSettings,
    baseline: Option<&Baseline>,
) -> OnViolation {
    settings.on_violation.unwrap_or(if baseline.is_some() {
        OnViolation::Restore
    } else {
        OnViolation::Alert
    })
}

/// The firewall cannot be read: said in the status, and on the bus once per error.
pub(super) fn unreadable(
    status: &SharedStatus,
    bus: &EventBus,
    backend: Option<BackendKind>,
    error: String,
) {
    let repeat = status
        .lock()
        .map(|s| s.error.as_deref() == Some(error.as_str()))
        .unwrap_or(false);
    set(status, |s| {
        s.state = GuardState::Unreadable;
        s.backend = backend;
        s.error = Some(error.clone());
        s.checked_at = Some(unix_ms());
    });
    if !repeat {
        bus.publish(EventKind::FirewallUnreadable {
            backend: backend.map(|b| b.to_string()),
            error,
        });
    }
}

impl<F: Firewall> Guard<F> {
    pub(super) fn new(
        firewall: F,
        settings: FirewallSettings,
        mode: GuardMode,
        pause_file: PathBuf,
        bus: EventBus,
        status: SharedStatus,
    ) -> Self {
        Self {
            intro: None,
            pause_file,
            bus,
            status,
            firewall,
            baseline: None,
            baseline_mtime: None,
            reported: None,
            repairs: VecDeque::new(),
            unreadable: None,
            mode,
            seen_enabled: false,
            said_absent: false,
            settings,
        }
    }

    /// The baseline read at start, and its file's modification time (a newer file is read
    /// again at the next periodic look).
    pub(super) fn with_baseline(
        mut self,
        baseline: Option<Baseline>,
        mtime: Option<SystemTime>,
    ) -> Self {
        self.baseline = baseline;
        self.baseline_mtime = mtime;
        self
    }

    /// The start-up line to log after the first look (zero-config), if any.
    pub(super) fn with_intro(mut self, intro: Option<Intro>) -> Self {
        self.intro = intro;
        self
    }

    /// Looks at start, then on every tick and nftables change, until `shutdown`.
    pub(super) async fn watch_loop(&mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.settings.verify_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate; the start verification covers it
        let want_watch = self.settings.watch && watchable(self.firewall.kind());
        let mut watch = None;
        let mut watch_retry = Instant::now();
        let mut watch_backoff = WATCH_RESTART;
        let mut last_change_verify = Instant::now()
            .checked_sub(MIN_CHANGE_GAP)
            .unwrap_or_else(Instant::now);
        self.verify(Trigger::Start).await;
        loop {
            if want_watch && watch.is_none() && Instant::now() >= watch_retry {
                match portwarden_firewall::nftables::Watch::start().await {
                    Ok(w) => {
                        tracing::info!("firewall guard: watching nftables changes");
                        watch = Some(w);
                        watch_backoff = WATCH_RESTART;
                        set(&self.status, |s| s.watching = true);
                    }
                    Err(e) => {
                        // Said once per streak of failures, retried ever more slowly.
                        if watch_backoff == WATCH_RESTART {
                            tracing::warn!(
                                "cannot watch nftables changes (verifying every {} only): {e}",
                                humantime::format_duration(self.settings.verify_every)
                            );
                        }
                        watch_retry = Instant::now() + watch_backoff;
                        watch_backoff = (watch_backoff * 2).min(WATCH_MAX_BACKOFF);
                    }
                }
            }
            let waiting_to_watch = want_watch && watch.is_none();
            let retry_watch = async {
                if waiting_to_watch {
                    tokio::time::sleep_until(watch_retry.into()).await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            let trigger = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = retry_watch => continue,
                _ = tick.tick() => Trigger::Periodic,
                change = next_change(&mut watch) => match change {
                    Some(c) => {
                        let seen = Instant::now();
                        let culprit = c.culprit.map(|c| format!("pid {} ({})", c.pid, c.comm));
                        if let Some(w) = watch.as_mut() {
                            coalesce(w, last_change_verify).await;
                        }
                        last_change_verify = Instant::now();
                        Trigger::Change { culprit, seen }
                    }
                    None => {
                        tracing::warn!("the nftables change watcher ended; restarting it in {}s", WATCH_RESTART.as_secs());
                        watch = None;
                        watch_retry = Instant::now() + WATCH_RESTART;
                        set(&self.status, |s| s.watching = false);
                        continue;
                    }
                },
            };
            self.verify(trigger).await;
        }
    }

    /// One verification, and the repair it calls for.
    pub(super) async fn verify(&mut self, trigger: Trigger) {
        let started = match &trigger {
            Trigger::Change { seen, .. } => *seen,
            _ => Instant::now(),
        };
        let culprit = match &trigger {
            Trigger::Change { culprit, .. } => culprit.clone(),
            _ => None,
        };
        if matches!(trigger, Trigger::Periodic | Trigger::Start) {
            self.refresh_baseline();
        }
        let inspected = self.inspect().await;
        if let Some(intro) = self.intro.take() {
            let kind = self.firewall.kind();
            match &inspected {
                Some((state, _)) if self.absent(state) => {
                    tracing::info!(backend = %kind, "{}", intro.short);
                }
                _ => tracing::info!(backend = %kind, "{}", intro.full),
            }
        }
        let Some((state, assessment)) = inspected else {
            return;
        };
        let mode = effective_mode(&self.settings, self.baseline.as_ref());
        if self.absent(&state) {
            let nothing = Assessment {
                violations: Vec::new(),
                drift: None,
            };
            self.record(&state, &nothing, mode);
            set(&self.status, |s| s.state = GuardState::Absent);
            if !self.said_absent {
                self.said_absent = true;
                tracing::warn!(backend = %self.firewall.kind(), "{ABSENT_WARNING}");
            }
            return;
        }
        if state.enabled && !self.seen_enabled {
            self.seen_enabled = true;
            if self.said_absent {
                tracing::info!(
                    backend = %self.firewall.kind(),
                    "firewall rules are loaded now ({}): guarding them; switching them off or \
                     flushing them will be reported",
                    self.firewall.kind()
                );
            }
        }
        self.record(&state, &assessment, mode);
        if assessment.ok() {
            if self.reported.take().is_some() {
                self.bus.publish(EventKind::FirewallRecovered(
                    self.report(&assessment, culprit),
                ));
            }
            return;
        }
        let (action, held) = self.plan(&assessment, mode);
        let messages: Vec<String> = assessment
            .violations
            .iter()
            .map(|v| v.message.clone())
            .collect();
        // A standing problem the guard does not act on is reported once.
        if action.is_none() && self.reported.as_ref() == Some(&messages) {
            return;
        }
        self.reported = Some(messages);
        let mut report = self.report(&assessment, culprit);
        report.action = action.map(|a| a.to_string());
        report.held = held;
        self.bus
            .publish(EventKind::FirewallViolation(report.clone()));
        let Some(action) = action else { return };

        self.repairs.push_back(Instant::now());
        let result = match (action, &self.baseline) {
            (Repair::Restore, Some(b)) => self.firewall.restore(b).await,
            _ => self.firewall.enable().await,
        };
        let after = self.inspect().await;
        report.took_ms = Some(started.elapsed().as_millis() as u64);
        report.held = None;
        match (result, after) {
            (Err(e), _) => {
                report.error = Some(e.to_string());
                self.bus
                    .publish(EventKind::FirewallRepairFailed(report.clone()));
            }
            (Ok(()), Some((state, a))) if a.ok() => {
                self.record(&state, &a, mode);
                // The report keeps what was wrong: that is what the repair fixed.
                self.reported = None;
                self.bus
                    .publish(EventKind::FirewallRepaired(report.clone()));
            }
            (Ok(()), Some((state, a))) => {
                self.record(&state, &a, mode);
                report.violations = a.violations.iter().map(|v| v.message.clone()).collect();
                report.error = Some(format!(
                    "still violated after {action}: {}",
                    report.violations.join("; ")
                ));
                self.bus
                    .publish(EventKind::FirewallRepairFailed(report.clone()));
            }
            (Ok(()), None) => {
                report.error = Some(format!(
                    "{action} ran, but the result could not be verified"
                ));
                self.bus
                    .publish(EventKind::FirewallRepairFailed(report.clone()));
            }
        }
        let repairs = self.repairs.len();
        set(&self.status, |s| {
            s.last_repair = Some(report);
            s.repairs_last_hour = repairs;
        });
    }

    /// Decides what to do about a violation: an action, or why none.
    fn plan(&mut self, a: &Assessment, mode: OnViolation) -> (Option<Repair>, Option<String>) {
        let now = Instant::now();
        while self
            .repairs
            .front()
            .is_some_and(|t| now.duration_since(*t) > REPAIR_WINDOW)
        {
            self.repairs.pop_front();
        }
        let action = match choose_repair(mode, self.firewall.kind(), self.baseline.is_some(), a) {
            Ok(action) => action,
            Err(why) => return (None, Some(why)),
        };
        if let Some(p) = Pause::active(&self.pause_file) {
            set(&self.status, |s| s.paused_until = Some(p.until));
            let reason = if p.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", p.reason)
            };
            return (
                None,
                Some(format!(
                    "paused for {}s more{reason}",
                    p.until.saturating_sub(unix_secs())
                )),
            );
        }
        set(&self.status, |s| s.paused_until = None);
        let limit = self.settings.max_repairs_per_hour as usize;
        if self.repairs.len() >= limit {
            return (
                None,
                Some(format!(
                    "{} repairs in the last hour reached max_repairs_per_hour = {limit}; alerting only",
                    self.repairs.len()
                )),
            );
        }
        (Some(action), None)
    }

    /// Zero-config on a host with no firewall switched on since the guard started, and no
    /// baseline to bring one back from: nothing to guard, not a violation.
    fn absent(&self, state: &State) -> bool {
        self.mode == GuardMode::ZeroConfig
            && !state.enabled
            && !self.seen_enabled
            && self.baseline.is_none()
    }

    async fn inspect(&mut self) -> Option<(State, Assessment)> {
        match self.firewall.inspect().await {
            Ok(state) => {
                self.unreadable = None;
                let a = assess(&state, &self.settings.policy, self.baseline.as_ref());
                Some((state, a))
            }
            Err(e) => {
                unreadable(
                    &self.status,
                    &self.bus,
                    Some(self.firewall.kind()),
                    e.to_string(),
                );
                None
            }
        }
    }

    fn record(&self, state: &State, a: &Assessment, mode: OnViolation) {
        let baseline = self
            .baseline
            .as_ref()
            .map(|_| self.settings.baseline.clone());
        set(&self.status, |s| {
            s.state = if a.ok() {
                GuardState::Ok
            } else {
                GuardState::Violated
            };
            s.backend = Some(self.firewall.kind());
            s.checked_at = Some(unix_ms());
            s.verifications += 1;
            s.violations = a.violations.clone();
            s.drift = a.drift.clone();
            s.baseline = baseline;
            s.on_violation = Some(mode);
            s.notes = state.notes.clone();
            s.foreign_tables = state.foreign_tables.clone();
            s.error = None;
        });
    }

    fn report(&self, a: &Assessment, culprit: Option<String>) -> FirewallReport {
        FirewallReport {
            backend: self.firewall.kind().to_string(),
            violations: a.violations.iter().map(|v| v.message.clone()).collect(),
            drift: a
                .drift
                .as_ref()
                .filter(|d| !d.is_empty())
                .map(|d| d.to_string()),
            culprit,
            ..FirewallReport::default()
        }
    }

    /// Picks up a baseline saved (or fixed) while the daemon runs.
    fn refresh_baseline(&mut self) {
        let path = &self.settings.baseline;
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if mtime == self.baseline_mtime {
            return;
        }
        let (baseline, mtime) = read_baseline(path, &self.bus);
        if let Some(b) = &baseline {
            if b.backend != self.firewall.kind() {
                self.bus.publish(EventKind::FirewallUnreadable {
                    backend: Some(self.firewall.kind().to_string()),
                    error: format!(
                        "the baseline {} was saved from {}, but the guard watches {}; ignoring it",
                        path.display(),
                        b.backend,
                        self.firewall.kind()
                    ),
                });
                self.baseline_mtime = mtime;
                return;
            }
            tracing::info!("firewall baseline {} loaded", path.display());
            if self.settings.tables.is_none() {
                self.firewall.set_tables(b.nft_tables());
            }
        }
        self.baseline = baseline;
        self.baseline_mtime = mtime;
    }
}

/// Folds a burst of changes into one verification: waits out the rest of the minimum gap
/// since the last change-triggered verification, then takes every change already queued (a
/// flush is one transaction, but fail2ban may add hundreds of set elements a second).
async fn coalesce(watch: &mut portwarden_firewall::nftables::Watch, last: Instant) {
    let ready = last + MIN_CHANGE_GAP;
    tokio::time::sleep_until(ready.into()).await;
    // Bounded in time too: a steady stream must not postpone the verification.
    let stop = Instant::now() + Duration::from_millis(20);
    while Instant::now() < stop {
        match tokio::time::timeout(Duration::from_millis(2), watch.next()).await {
            Ok(Some(_)) => {}
            // Ended (handled at the next wait) or quiet.
            Ok(None) | Err(_) => break,
        }
    }
}

/// How the guard repairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repair {
    /// Put the baseline back.
    Restore,
    /// Switch the firewall on with its own means.
    Enable,
}

impl std::fmt::Display for Repair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Repair::Restore => "restore",
            Repair::Enable => "enable",
        })
    }
}

/// What a violation calls for under `mode`, before the pause and the hourly limit; `Err` says
/// why the guard will not act.
fn choose_repair(
    mode: OnViolation,
    kind: BackendKind,
    has_baseline: bool,
    a: &Assessment,
) -> Result<Repair, String> {
    // ufw and firewalld re-apply their whole configuration: any violation is theirs to fix.
    let frontend = matches!(kind, BackendKind::Ufw | BackendKind::Firewalld);
    let has_switch = frontend
        || matches!(
            kind,
            BackendKind::Windows | BackendKind::Pf | BackendKind::MacAppFirewall
        );
    let drifted = a.drift.as_ref().is_some_and(|d| !d.is_empty());
    match mode {
        OnViolation::Alert => Err("on_violation is \"alert\"".into()),
        OnViolation::Restore if has_baseline => {
            if drifted || a.disabled() {
                Ok(Repair::Restore)
            } else {
                // Restoring an identical ruleset cannot fix a baseline that itself violates.
                Err("the baseline itself does not meet the requirements".into())
            }
        }
        _ if frontend => Ok(Repair::Enable),
        _ if has_switch && a.disabled() => Ok(Repair::Enable),
        _ if has_switch => {
            Err("switching it on cannot fix this; save a baseline to restore".into())
        }
        // nftables and iptables have no "on" switch: their baseline is how they come back.
        _ if has_baseline && (drifted || a.disabled()) => Ok(Repair::Restore),
        _ => Err(format!(
            "{kind} has no on switch; save a baseline (`portwarden firewall baseline save`) \
             so the guard can restore it"
        )),
    }
}

/// The next change from the watcher, or never when there is none.
async fn next_change(
    watch: &mut Option<portwarden_firewall::nftables::Watch>,
) -> Option<portwarden_firewall::nftables::Change> {
    match watch {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use portwarden_firewall::{Drift, Violation, ViolationKind};

    fn assessment(kind: ViolationKind, drifted: bool) -> Assessment {
        let rule = portwarden_firewall::Rule {
            scope: "inet filter input".into(),
            text: "tcp dport 22 accept".into(),
            simple: None,
        };
        Assessment {
            violations: vec![Violation {
                kind,
                message: "x".into(),
            }],
            drift: Some(Drift {
                vanished: if drifted { vec![rule] } else { Vec::new() },
                ..Drift::default()
            }),
        }
    }

    #[test]
    fn the_repair_fits_the_mode_the_backend_and_the_baseline() {
        use BackendKind::*;
        use OnViolation::*;
        use ViolationKind::*;
        let off = assessment(Disabled, true);
        let open = assessment(InboundOpen, false);
        // Alert never acts.
        assert!(choose_repair(Alert, Ufw, true, &off).is_err());
        // A baseline is restored when something drifted or the firewall is off...
        assert_eq!(
            choose_repair(Restore, Nftables, true, &off),
            Ok(Repair::Restore)
        );
        // ...but a baseline that itself leaves inbound open is not restored in a loop.
        let err = choose_repair(Restore, Nftables, true, &open).unwrap_err();
        assert!(err.contains("baseline itself"), "{err}");
        // Without a baseline: frontends reload, switches switch, nftables cannot.
        assert_eq!(
            choose_repair(Restore, Ufw, false, &open),
            Ok(Repair::Enable)
        );
        assert_eq!(
            choose_repair(Enable, Windows, false, &off),
            Ok(Repair::Enable)
        );
        assert!(choose_repair(Enable, Windows, false, &open).is_err());
        let err = choose_repair(Enable, Nftables, false, &off).unwrap_err();
        assert!(err.contains("no on switch"), "{err}");
        // "enable" on nftables with a baseline: the baseline is its on switch.
        assert_eq!(
            choose_repair(Enable, IptablesLegacy, true, &off),
            Ok(Repair::Restore)
        );
    }
}
