//! The verify / repair loop against a fake firewall: no processes, no real firewall. Each
//! test scripts what the firewall looks like, lets the guard look, and reads the events it
//! published and the status it left.

use std::future::Future;
use std::sync::{Arc, Mutex};

use portwarden_firewall::nftables::{Payload, SavedTable};
use portwarden_firewall::{BackendKind, Baseline, Restore, Rule, State};
use tokio::sync::broadcast;

use super::engine::{Firewall, Guard, Trigger};
use super::{GuardMode, GuardState, Pause, SharedStatus, PAUSE_FILE};
use crate::config::{FirewallSettings, OnViolation};
use crate::events::{Event, EventKind, FirewallReport};

/// What the fake firewall looks like now, and what was done to it.
#[derive(Debug)]
struct Host {
    state: Result<State, String>,
    enables: usize,
    restores: usize,
    /// `enable` switches the firewall on (else it reports success and changes nothing).
    enable_works: bool,
}

/// A firewall whose state the test sets; enable switches it on, restore puts the baseline's
/// rules back.
#[derive(Debug, Clone)]
struct FakeFirewall {
    kind: BackendKind,
    host: Arc<Mutex<Host>>,
}

impl FakeFirewall {
    fn new(kind: BackendKind, state: State) -> Self {
        Self {
            kind,
            host: Arc::new(Mutex::new(Host {
                state: Ok(state),
                enables: 0,
                restores: 0,
                enable_works: true,
            })),
        }
    }

    fn set(&self, state: Result<State, String>) {
        self.host.lock().unwrap().state = state;
    }

    fn repairs(&self) -> (usize, usize) {
        let h = self.host.lock().unwrap();
        (h.enables, h.restores)
    }
}

impl Firewall for FakeFirewall {
    fn kind(&self) -> BackendKind {
        self.kind
    }

    fn set_tables(&mut self, _tables: Option<Vec<String>>) {}

    fn inspect(&self) -> impl Future<Output = Result<State, portwarden_firewall::Error>> + Send {
        let state = self.host.lock().unwrap().state.clone();
        async move { state.map_err(|detail| portwarden_firewall::Error::malformed("nft", detail)) }
    }

    fn enable(&self) -> impl Future<Output = Result<(), portwarden_firewall::Error>> + Send {
        let mut h = self.host.lock().unwrap();
        h.enables += 1;
        let works = h.enable_works;
        if let Ok(s) = &mut h.state {
            s.enabled |= works;
        }
        async { Ok(()) }
    }

    fn restore(
        &self,
        baseline: &Baseline,
    ) -> impl Future<Output = Result<(), portwarden_firewall::Error>> + Send {
        let mut h = self.host.lock().unwrap();
        h.restores += 1;
        h.state = Ok(State {
            enabled: true,
            inbound: baseline.inbound.clone(),
            rules: baseline.rules.clone(),
            ..state(baseline.backend, true, &[])
        });
        async { Ok(()) }
    }
}

fn rule(text: &str) -> Rule {
    Rule {
        scope: "inet filter input".into(),
        text: text.into(),
        simple: None,
    }
}

fn state(backend: BackendKind, enabled: bool, rules: &[&str]) -> State {
    State {
        backend,
        enabled,
        inbound: Vec::new(),
        rules: rules.iter().map(|r| rule(r)).collect(),
        foreign_tables: Vec::new(),
        notes: Vec::new(),
    }
}

fn nft_baseline(rules: &[&str]) -> Baseline {
    Baseline {
        format: portwarden_firewall::baseline::FORMAT,
        backend: BackendKind::Nftables,
        saved_at: 0,
        host: "test".into(),
        inbound: Vec::new(),
        rules: rules.iter().map(|r| rule(r)).collect(),
        restore: Restore::Nftables(Payload {
            tables: vec![SavedTable {
                family: "inet".into(),
                name: "filter".into(),
                text: "table inet filter {\n}".into(),
            }],
        }),
    }
}

/// One guard over a fake firewall, with its bus and status.
struct Rig {
    guard: Guard<FakeFirewall>,
    fake: FakeFirewall,
    events: broadcast::Receiver<Arc<Event>>,
    status: SharedStatus,
    dir: tempfile::TempDir,
}

fn rig(
    fake: FakeFirewall,
    mode: GuardMode,
    baseline: Option<Baseline>,
    tune: impl FnOnce(&mut FirewallSettings),
) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    // No baseline file: the one given is what the guard read at start, and stays.
    let mut settings = FirewallSettings {
        baseline: dir.path().join("firewall.baseline"),
        watch: false,
        ..FirewallSettings::default()
    };
    tune(&mut settings);
    let bus = crate::events::EventBus::new();
    let events = bus.subscribe();
    let status = SharedStatus::default();
    let guard = Guard::new(
        fake.clone(),
        settings,
        mode,
        dir.path().join(PAUSE_FILE),
        bus,
        status.clone(),
    )
    .with_baseline(baseline, None);
    Rig {
        guard,
        fake,
        events,
        status,
        dir,
    }
}

/// An event as the tests compare it: its name and the guard's report, if it has one.
type Seen = (&'static str, Option<FirewallReport>);

impl Rig {
    /// One periodic look; the events it published.
    async fn look(&mut self) -> Vec<Seen> {
        self.guard.verify(Trigger::Periodic).await;
        let mut seen = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            seen.push(match &e.kind {
                EventKind::FirewallViolation(r) => ("violation", Some(r.clone())),
                EventKind::FirewallRepaired(r) => ("repaired", Some(r.clone())),
                EventKind::FirewallRepairFailed(r) => ("repair_failed", Some(r.clone())),
                EventKind::FirewallRecovered(r) => ("recovered", Some(r.clone())),
                EventKind::FirewallUnreadable { .. } => ("unreadable", None),
                other => panic!("not a guard event: {other:?}"),
            });
        }
        seen
    }

    fn state(&self) -> GuardState {
        self.status.lock().unwrap().state
    }

    fn pause(&self, reason: &str) -> Pause {
        let p = Pause {
            until: super::unix_secs() + 600,
            reason: reason.into(),
        };
        p.save(&self.dir.path().join(PAUSE_FILE)).unwrap();
        p
    }
}

fn names(seen: &[Seen]) -> Vec<&'static str> {
    seen.iter().map(|(n, _)| *n).collect()
}

fn held(seen: &Seen) -> String {
    seen.1
        .as_ref()
        .and_then(|r| r.held.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_violation_under_alert_changes_nothing_and_is_reported_once() {
    let fake = FakeFirewall::new(BackendKind::Ufw, state(BackendKind::Ufw, false, &[]));
    let mut rig = rig(fake, GuardMode::Configured, None, |s| {
        s.on_violation = Some(OnViolation::Alert);
    });
    let first = rig.look().await;
    assert_eq!(names(&first), ["violation"]);
    let report = first[0].1.as_ref().unwrap();
    assert_eq!(report.action, None);
    assert_eq!(held(&first[0]), "on_violation is \"alert\"");
    assert_eq!(report.violations, ["the ufw firewall is switched off"]);
    assert_eq!(rig.state(), GuardState::Violated);
    // The same problem at the next looks: nothing new to say, still nothing done.
    assert!(rig.look().await.is_empty());
    assert!(rig.look().await.is_empty());
    assert_eq!(rig.fake.repairs(), (0, 0));
    assert_eq!(rig.status.lock().unwrap().verifications, 3);
    // Fixed by someone else: said once.
    rig.fake.set(Ok(state(BackendKind::Ufw, true, &[])));
    assert_eq!(names(&rig.look().await), ["recovered"]);
    assert_eq!(rig.state(), GuardState::Ok);
}

#[tokio::test]
async fn restore_repairs_drift_and_verifies() {
    let baseline = nft_baseline(&["tcp dport 22 accept", "tcp dport 443 accept"]);
    let fake = FakeFirewall::new(
        BackendKind::Nftables,
        state(BackendKind::Nftables, true, &["tcp dport 22 accept"]),
    );
    // No on_violation: with a baseline, the default is to restore it.
    let mut rig = rig(fake, GuardMode::Configured, Some(baseline), |_| {});
    let seen = rig.look().await;
    assert_eq!(names(&seen), ["violation", "repaired"]);
    let violation = seen[0].1.as_ref().unwrap();
    assert_eq!(violation.action.as_deref(), Some("restore"));
    assert_eq!(violation.held, None);
    assert!(
        violation.drift.as_deref().unwrap_or("").contains("443"),
        "{violation:?}"
    );
    let repaired = seen[1].1.as_ref().unwrap();
    assert!(repaired.took_ms.is_some());
    assert_eq!(repaired.error, None);
    assert_eq!(rig.fake.repairs(), (0, 1));
    {
        let s = rig.status.lock().unwrap();
        assert_eq!(s.state, GuardState::Ok);
        // The look that found the drift, and the one that verified the repair.
        assert_eq!(s.verifications, 2);
        assert_eq!(s.repairs_last_hour, 1);
        assert_eq!(s.on_violation, Some(OnViolation::Restore));
        assert!(s.last_repair.is_some());
        assert!(s.drift.as_ref().is_some_and(|d| d.is_empty()));
    }
    // Holding: nothing more to say.
    assert!(rig.look().await.is_empty());
}

#[tokio::test]
async fn a_repair_that_does_not_hold_is_a_failed_repair() {
    let fake = FakeFirewall::new(BackendKind::Ufw, state(BackendKind::Ufw, false, &[]));
    fake.host.lock().unwrap().enable_works = false;
    let mut rig = rig(fake, GuardMode::Configured, None, |s| {
        s.on_violation = Some(OnViolation::Enable);
    });
    let seen = rig.look().await;
    assert_eq!(names(&seen), ["violation", "repair_failed"]);
    let failed = seen[1].1.as_ref().unwrap();
    assert_eq!(
        failed.error.as_deref(),
        Some("still violated after enable: the ufw firewall is switched off")
    );
    assert_eq!(rig.fake.repairs(), (1, 0));
    let s = rig.status.lock().unwrap();
    assert_eq!(s.state, GuardState::Violated);
    assert_eq!(s.repairs_last_hour, 1);
}

#[tokio::test]
async fn the_repair_limit_per_hour_holds() {
    let fake = FakeFirewall::new(BackendKind::Ufw, state(BackendKind::Ufw, false, &[]));
    let mut rig = rig(fake, GuardMode::Configured, None, |s| {
        s.on_violation = Some(OnViolation::Enable);
        s.max_repairs_per_hour = 2;
    });
    for _ in 0..2 {
        assert_eq!(names(&rig.look().await), ["violation", "repaired"]);
        rig.fake.set(Ok(state(BackendKind::Ufw, false, &[])));
    }
    let seen = rig.look().await;
    assert_eq!(names(&seen), ["violation"]);
    assert_eq!(
        held(&seen[0]),
        "2 repairs in the last hour reached max_repairs_per_hour = 2; alerting only"
    );
    assert_eq!(seen[0].1.as_ref().unwrap().action, None);
    assert_eq!(rig.fake.repairs(), (2, 0));
    assert_eq!(rig.state(), GuardState::Violated);
    // Still over the limit: reported once, not at every look.
    assert!(rig.look().await.is_empty());
    assert_eq!(rig.fake.repairs(), (2, 0));
}

#[tokio::test]
async fn a_pause_holds_repairs_and_says_so() {
    let fake = FakeFirewall::new(BackendKind::Ufw, state(BackendKind::Ufw, false, &[]));
    let mut rig = rig(fake, GuardMode::Configured, None, |s| {
        s.on_violation = Some(OnViolation::Enable);
    });
    let pause = rig.pause("kernel upgrade");
    let seen = rig.look().await;
    assert_eq!(names(&seen), ["violation"]);
    let why = held(&seen[0]);
    assert!(
        why.starts_with("paused for ") && why.ends_with("s more: kernel upgrade"),
        "{why}"
    );
    assert_eq!(rig.fake.repairs(), (0, 0));
    assert_eq!(rig.status.lock().unwrap().paused_until, Some(pause.until));
    // Resumed (the file removed): the next look repairs.
    std::fs::remove_file(rig.dir.path().join(PAUSE_FILE)).unwrap();
    assert_eq!(names(&rig.look().await), ["violation", "repaired"]);
    assert_eq!(rig.fake.repairs(), (1, 0));
    assert_eq!(rig.status.lock().unwrap().paused_until, None);
}

#[tokio::test]
async fn zero_config_absent_then_rules_loaded_then_flushed_is_a_violation() {
    let fake = FakeFirewall::new(
        BackendKind::Nftables,
        state(BackendKind::Nftables, false, &[]),
    );
    let mut rig = rig(fake, GuardMode::ZeroConfig, None, |_| {});
    // Nothing to guard: not a violation, and no event.
    assert!(rig.look().await.is_empty());
    assert_eq!(rig.state(), GuardState::Absent);
    assert!(rig.look().await.is_empty());
    assert_eq!(rig.state(), GuardState::Absent);
    // Rules loaded: guarded from now on.
    rig.fake.set(Ok(state(
        BackendKind::Nftables,
        true,
        &["tcp dport 22 accept"],
    )));
    assert!(rig.look().await.is_empty());
    assert_eq!(rig.state(), GuardState::Ok);
    // Flushed: a violation, not "absent" again. No baseline: alert only.
    rig.fake.set(Ok(state(BackendKind::Nftables, false, &[])));
    let seen = rig.look().await;
    assert_eq!(names(&seen), ["violation"]);
    assert_eq!(
        seen[0].1.as_ref().unwrap().violations,
        ["the nftables firewall is switched off"]
    );
    assert_eq!(held(&seen[0]), "on_violation is \"alert\"");
    assert_eq!(rig.state(), GuardState::Violated);
    assert_eq!(rig.fake.repairs(), (0, 0));
}

#[tokio::test]
async fn an_unreadable_firewall_is_reported_once_and_never_repaired() {
    let fake = FakeFirewall::new(BackendKind::Ufw, state(BackendKind::Ufw, false, &[]));
    let mut rig = rig(fake, GuardMode::Configured, None, |s| {
        s.on_violation = Some(OnViolation::Enable);
    });
    rig.fake.set(Err("garbage".into()));
    assert_eq!(names(&rig.look().await), ["unreadable"]);
    assert!(rig.look().await.is_empty());
    assert_eq!(rig.state(), GuardState::Unreadable);
    assert_eq!(
        rig.status.lock().unwrap().error.as_deref(),
        Some("nft could not be read: garbage")
    );
    assert_eq!(rig.fake.repairs(), (0, 0));
}

#[test]
fn an_expired_or_malformed_pause_is_no_pause() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(PAUSE_FILE);
    assert_eq!(Pause::active(&path), None);
    Pause {
        until: 1,
        reason: String::new(),
    }
    .save(&path)
    .unwrap();
    assert_eq!(Pause::active(&path), None);
    std::fs::write(&path, "{not json").unwrap();
    assert_eq!(Pause::active(&path), None);
    let p = Pause {
        until: super::unix_secs() + 60,
        reason: "x".into(),
    };
    p.save(&path).unwrap();
    assert_eq!(Pause::active(&path), Some(p));
}
