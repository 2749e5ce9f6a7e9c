//! The event bus: state changes, listener changes and config reloads, broadcast to every
//! consumer (log, store, notifications, actions and the API). Two kinds of subscription, and
//! the producers never wait for either:
//! - [`EventBus::subscribe`]: bounded (a broadcast of [`BUS_CAPACITY`]); a consumer that falls
//!   behind loses the oldest events and is told how many. For views that may skip (the API's
//!   SSE stream, metrics, tests).
//! - [`EventBus::subscribe_lossless`]: an unbounded queue per consumer, for the consumers whose
//!   every event matters (notifications, self-healing): a storm of 100,000 monitors going down
//!   at once queues 100,000 small events (tens of MB at worst) rather than losing any.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};
use tokio::sync::{broadcast, mpsc};

use crate::state::{Status, Transition};

/// Events kept for slow consumers before the oldest are dropped for them.
pub const BUS_CAPACITY: usize = 4096;

/// Something that happened, with when.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    #[serde(serialize_with = "unix_ms")]
    pub at: SystemTime,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened. The `event` field in JSON names it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    MonitorDown(MonitorChange),
    MonitorUp(MonitorChange),
    MonitorWarning(MonitorChange),
    MonitorFlapping(MonitorChange),
    /// Any other change (unknown, paused, resumed).
    MonitorChanged(MonitorChange),
    ListenerAppeared(ListenerChange),
    ListenerVanished(ListenerChange),
    ListenerOwnerChanged(ListenerChange),
    ConfigReloaded {
        monitors: usize,
        added: usize,
        removed: usize,
        changed: usize,
    },
    ConfigRejected {
        error: String,
    },
    /// The firewall broke a requirement or drifted from its baseline.
    FirewallViolation(FirewallReport),
    /// The guard repaired the firewall, and a fresh verification passed.
    FirewallRepaired(FirewallReport),
    /// A repair failed, or the firewall still violates after it.
    FirewallRepairFailed(FirewallReport),
    /// The firewall is fine again without the guard acting (someone else fixed it).
    FirewallRecovered(FirewallReport),
    /// The firewall's state could not be read (tool missing, malformed output).
    FirewallUnreadable {
        backend: Option<String>,
        error: String,
    },
    /// A notification could not be delivered after several attempts (or can never be as
    /// things stand); it stays in the outbox and is still retried.
    NotificationFailing {
        notifier: String,
        id: String,
        error: String,
    },
    /// A self-healing action ran (fixed or not: `outcome` says).
    ActionTaken(ActionReport),
    /// A self-healing action itself failed (the unit's job failed, the program exited non-zero).
    ActionFailed(ActionReport),
    /// Self-healing stopped for this monitor: a person must look.
    GaveUp(ActionReport),
    /// A reboot follows after its hold-off unless `portwarden reboot cancel`.
    RebootPending(ActionReport),
}

/// What the healing engine did about a monitor, and what came of it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ActionReport {
    pub monitor: String,
    /// `host:port`.
    pub target: String,
    /// Ladder step, counted from 1 (0: no step, e.g. gave up before any).
    pub step: usize,
    /// Try of that step, counted from 1.
    pub attempt: u32,
    /// The action's `type`: `restart`, `exec`, `reboot`, …
    pub action: String,
    /// The action's own one-line summary (`restarted nginx.service (job done)`).
    pub summary: String,
    /// `fixed`, `not_fixed`, `failed`, `skipped`, `gave_up`, `pending`, `unverified`.
    pub outcome: String,
    /// One sentence for people: what was done and what came of it.
    pub message: String,
    /// Captured output, capped.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub output: String,
    /// Milliseconds from the DOWN event (or the end of the cooldown) to the action issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_ms: Option<u64>,
    /// How long the action itself ran, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub took_ms: Option<u64>,
    /// Milliseconds from the action issued to the first answering check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_after_ms: Option<u64>,
    /// Reboot hold-off, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_off_secs: Option<u64>,
    pub dry_run: bool,
}

/// What the firewall guard saw and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FirewallReport {
    pub backend: String,
    /// Broken requirements, one sentence each.
    pub violations: Vec<String>,
    /// Readable drift from the baseline: `- [inet filter input] tcp dport 22 accept` lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<String>,
    /// Who changed the ruleset, where the kernel says: `pid 4242 (nft)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub culprit: Option<String>,
    /// `restore` or `enable` when the guard acts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Why the guard does not act: alert-only, paused, repair limit reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    /// Milliseconds from noticing the change to the repaired ruleset verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub took_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A monitor's state change.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorChange {
    pub monitor: String,
    pub from: Status,
    pub to: Status,
    pub reason: Option<portwarden_probe::Reason>,
    pub message: String,
    /// On recovery: how long the outage lasted, in seconds.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_secs")]
    pub down_for: Option<Duration>,
}

impl MonitorChange {
    /// The event a transition makes.
    pub fn into_event(self) -> EventKind {
        match (self.from, self.to) {
            (_, Status::Down) => EventKind::MonitorDown(self),
            (_, Status::Flapping) => EventKind::MonitorFlapping(self),
            (Status::Down | Status::Flapping, Status::Ok | Status::Warning) => {
                EventKind::MonitorUp(self)
            }
            (_, Status::Warning) => EventKind::MonitorWarning(self),
            _ => EventKind::MonitorChanged(self),
        }
    }

    pub fn from_transition(monitor: &str, t: &Transition) -> Self {
        Self {
            monitor: monitor.to_string(),
            from: t.from,
            to: t.to,
            reason: t.reason,
            message: t.message.clone(),
            down_for: t.down_for,
        }
    }
}

/// A listening socket that appeared, vanished or changed hands.
#[derive(Debug, Clone, Serialize)]
pub struct ListenerChange {
    pub protocol: portwarden_sockets::Protocol,
    pub local: SocketAddr,
    /// Process names before (vanished, owner changed).
    pub before: Vec<String>,
    /// Process names now (appeared, owner changed).
    pub after: Vec<String>,
    /// The zero-config monitor that watches this listener (appeared, vanished); null with a
    /// config file, where only the config's monitors are watched.
    pub monitor: Option<String>,
}

/// The bus: cheap to clone, publish never blocks.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<Event>>,
    /// The lossless subscribers' queues; a queue whose receiver is gone is dropped at the
    /// next publish.
    lossless: Arc<Mutex<Vec<mpsc::UnboundedSender<Arc<Event>>>>>,
}

/// A lossless subscription: every event published after [`EventBus::subscribe_lossless`], in
/// order. Ends (`None`) when every handle of the bus is gone.
pub type LosslessReceiver = mpsc::UnboundedReceiver<Arc<Event>>;

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(BUS_CAPACITY);
        Self {
            sender,
            lossless: Arc::default(),
        }
    }

    /// Publishes an event stamped now; also writes it to the log as a structured line.
    pub fn publish(&self, kind: EventKind) {
        let event = Event {
            at: SystemTime::now(),
            kind,
        };
        log(&event);
        let event = Arc::new(event);
        {
            let mut lossless = self.lossless.lock().unwrap_or_else(|p| p.into_inner());
            lossless.retain(|queue| queue.send(event.clone()).is_ok());
        }
        // No subscriber is fine: the log line above is the record.
        let _ = self.sender.send(event);
    }

    /// A bounded subscription that may lag (see the module docs).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }

    /// A subscription that never loses an event (see the module docs).
    pub fn subscribe_lossless(&self) -> LosslessReceiver {
        let (queue, receiver) = mpsc::unbounded_channel();
        self.lossless
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(queue);
        receiver
    }
}

/// The journal / log line of an event: a readable message plus fields.
fn log(event: &Event) {
    match &event.kind {
        EventKind::MonitorDown(c) => tracing::warn!(
            event = "monitor_down", monitor = %c.monitor, reason = c.reason.map(tracing::field::display),
            "{} is DOWN: {}", c.monitor, c.message
        ),
        EventKind::MonitorUp(c) => tracing::info!(
            event = "monitor_up", monitor = %c.monitor, down_for_s = c.down_for.map(|d| d.as_secs_f64()),
            "{} is up again{}", c.monitor,
            c.down_for.map(|d| format!(" after {}", humanize(d))).unwrap_or_default()
        ),
        EventKind::MonitorWarning(c) => tracing::warn!(
            event = "monitor_warning", monitor = %c.monitor, reason = c.reason.map(tracing::field::display),
            "{} warning: {}", c.monitor, c.message
        ),
        EventKind::MonitorFlapping(c) => tracing::warn!(
            event = "monitor_flapping", monitor = %c.monitor,
            "{} is flapping (changing state too often)", c.monitor
        ),
        // A monitor's first verdict (unknown → ok) is routine: 100,000 monitors would log
        // 100,000 lines at every start. Every other change stays visible.
        EventKind::MonitorChanged(c) if c.from == Status::Unknown && c.to == Status::Ok => {
            tracing::debug!(
                event = "monitor_changed", monitor = %c.monitor, from = %c.from, to = %c.to,
                "{} is now {}", c.monitor, c.to
            )
        }
        EventKind::MonitorChanged(c) => tracing::info!(
            event = "monitor_changed", monitor = %c.monitor, from = %c.from, to = %c.to,
            "{} is now {}", c.monitor, c.to
        ),
        // Zero-config watches it: the watcher said so already, with the owner.
        EventKind::ListenerAppeared(l) if l.monitor.is_some() => tracing::debug!(
            event = "listener_appeared", local = %l.local, owners = %names(&l.after),
            monitor = l.monitor.as_deref(),
            "new listener {} {} ({})", l.protocol, l.local, names(&l.after)
        ),
        EventKind::ListenerAppeared(l) => tracing::warn!(
            event = "listener_appeared", local = %l.local, owners = %names(&l.after),
            "new listener {} {} ({}): not watched — with a config file only its monitors are; \
             to watch it add a [[monitor]] with target = \"{}\"",
            l.protocol, l.local, names(&l.after), crate::discover::reachable(l.local)
        ),
        EventKind::ListenerVanished(l) => match &l.monitor {
            Some(m) => tracing::warn!(
                event = "listener_vanished", local = %l.local, owners = %names(&l.before),
                monitor = %m,
                "listener {} {} ({}) went away: its monitor {m} goes on checking and goes DOWN \
                 unless it comes back", l.protocol, l.local, names(&l.before)
            ),
            None => tracing::warn!(
                event = "listener_vanished", local = %l.local, owners = %names(&l.before),
                "listener {} {} ({}) went away", l.protocol, l.local, names(&l.before)
            ),
        },
        EventKind::ListenerOwnerChanged(l) => tracing::warn!(
            event = "listener_owner_changed", local = %l.local,
            "listener {} {} changed hands: {} -> {}", l.protocol, l.local, names(&l.before), names(&l.after)
        ),
        EventKind::ConfigReloaded { monitors, added, removed, changed } => tracing::info!(
            event = "config_reloaded",
            "config reloaded: {monitors} monitors ({added} added, {removed} removed, {changed} changed)"
        ),
        EventKind::ConfigRejected { error } => tracing::error!(
            event = "config_rejected",
            "new config rejected, the running one stays: {error}"
        ),
        EventKind::FirewallViolation(r) => tracing::error!(
            event = "firewall_violation", backend = %r.backend, culprit = r.culprit.as_deref(),
            action = r.action.as_deref(), held = r.held.as_deref(),
            "firewall ({}): {}{}{}{}", r.backend, r.violations.join("; "),
            r.culprit.as_deref().map(|c| format!(" — changed by {c}")).unwrap_or_default(),
            match (&r.action, &r.held) {
                (Some(a), _) => format!("; {a} follows"),
                (None, Some(h)) => format!("; not repairing: {h}"),
                _ => String::new(),
            },
            r.drift.as_deref().map(|d| format!("\n{}", d.trim_end())).unwrap_or_default()
        ),
        EventKind::FirewallRepaired(r) => tracing::warn!(
            event = "firewall_repaired", backend = %r.backend, action = r.action.as_deref(),
            took_ms = r.took_ms,
            "firewall ({}) repaired by {} and verified{}{}", r.backend,
            r.action.as_deref().unwrap_or("repair"),
            r.took_ms.map(|ms| format!(" in {ms} ms")).unwrap_or_default(),
            if r.violations.is_empty() { String::new() } else { format!(" (it was: {})", r.violations.join("; ")) }
        ),
        EventKind::FirewallRepairFailed(r) => tracing::error!(
            event = "firewall_repair_failed", backend = %r.backend, action = r.action.as_deref(),
            "firewall ({}) {} failed: {}", r.backend, r.action.as_deref().unwrap_or("repair"),
            r.error.clone().unwrap_or_else(|| r.violations.join("; "))
        ),
        EventKind::FirewallRecovered(r) => tracing::info!(
            event = "firewall_recovered", backend = %r.backend,
            "firewall ({}) is as required again", r.backend
        ),
        EventKind::FirewallUnreadable { backend, error } => tracing::error!(
            event = "firewall_unreadable", backend = backend.as_deref(),
            "cannot read the firewall's state: {error}"
        ),
        EventKind::NotificationFailing { notifier, id, error } => tracing::error!(
            event = "notification_failing", notifier = %notifier, id = %id,
            "notification {id} cannot be delivered by {notifier}: {error}; kept in the outbox and retried"
        ),
        EventKind::ActionTaken(a) if a.outcome == "fixed" => tracing::info!(
            event = "action_taken", monitor = %a.monitor, action = %a.action, step = a.step,
            attempt = a.attempt, outcome = %a.outcome, issued_ms = a.issued_ms,
            took_ms = a.took_ms, fixed_after_ms = a.fixed_after_ms,
            "{}: {}", a.monitor, a.message
        ),
        EventKind::ActionTaken(a) => tracing::warn!(
            event = "action_taken", monitor = %a.monitor, action = %a.action, step = a.step,
            attempt = a.attempt, outcome = %a.outcome, issued_ms = a.issued_ms,
            took_ms = a.took_ms,
            "{}: {}", a.monitor, a.message
        ),
        EventKind::ActionFailed(a) => tracing::error!(
            event = "action_failed", monitor = %a.monitor, action = %a.action, step = a.step,
            attempt = a.attempt, issued_ms = a.issued_ms, took_ms = a.took_ms,
            "{}: {}{}", a.monitor, a.message,
            if a.output.is_empty() { String::new() } else { format!("\n{}", a.output.trim_end()) }
        ),
        EventKind::GaveUp(a) => tracing::error!(
            event = "gave_up", monitor = %a.monitor,
            "{}: {}", a.monitor, a.message
        ),
        EventKind::RebootPending(a) => tracing::warn!(
            event = "reboot_pending", monitor = %a.monitor, hold_off_s = a.hold_off_secs,
            dry_run = a.dry_run,
            "{}: {}", a.monitor, a.message
        ),
    }
}

fn names(list: &[String]) -> String {
    if list.is_empty() {
        "unknown owner".into()
    } else {
        list.join(", ")
    }
}

/// `1h 2m 3s`, for people.
pub fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

fn unix_ms<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    s.serialize_u64(u64::try_from(ms).unwrap_or(u64::MAX))
}

fn opt_secs<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(from: Status, to: Status) -> MonitorChange {
        MonitorChange {
            monitor: "mail".into(),
            from,
            to,
            reason: None,
            message: String::new(),
            down_for: None,
        }
    }

    #[test]
    fn transitions_name_their_event() {
        let name = |k: EventKind| {
            serde_json::to_value(Event {
                at: UNIX_EPOCH,
                kind: k,
            })
            .unwrap()["event"]
                .clone()
        };
        assert_eq!(
            name(change(Status::Ok, Status::Down).into_event()),
            "monitor_down"
        );
        assert_eq!(
            name(change(Status::Down, Status::Ok).into_event()),
            "monitor_up"
        );
        assert_eq!(
            name(change(Status::Flapping, Status::Warning).into_event()),
            "monitor_up"
        );
        assert_eq!(
            name(change(Status::Ok, Status::Warning).into_event()),
            "monitor_warning"
        );
        assert_eq!(
            name(change(Status::Ok, Status::Flapping).into_event()),
            "monitor_flapping"
        );
        assert_eq!(
            name(change(Status::Unknown, Status::Ok).into_event()),
            "monitor_changed"
        );
    }

    #[tokio::test]
    async fn subscribers_receive_and_a_slow_one_is_told_what_it_missed() {
        let bus = EventBus::new();
        let mut rx = bus.subscribe();
        for _ in 0..BUS_CAPACITY + 10 {
            bus.publish(EventKind::ConfigRejected { error: "x".into() });
        }
        match rx.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert_eq!(n, 10),
            other => panic!("expected a lag report, got {other:?}"),
        }
        assert!(rx.recv().await.is_ok());
    }

    #[tokio::test]
    async fn a_lossless_subscriber_gets_every_event_in_order_however_far_behind() {
        let bus = EventBus::new();
        let mut rx = bus.subscribe_lossless();
        let n = BUS_CAPACITY * 3;
        for i in 0..n {
            bus.publish(EventKind::ConfigRejected {
                error: i.to_string(),
            });
        }
        let mut got = Vec::new();
        while let Ok(e) = rx.try_recv() {
            if let EventKind::ConfigRejected { error } = &e.kind {
                got.push(error.parse::<usize>().unwrap());
            }
        }
        assert_eq!(got, (0..n).collect::<Vec<_>>());
        // A subscriber that went away stops costing anything.
        drop(rx);
        bus.publish(EventKind::ConfigRejected { error: "x".into() });
        assert!(bus.lossless.lock().unwrap().is_empty());
    }

    #[test]
    fn humanizes_durations() {
        assert_eq!(humanize(Duration::from_secs(42)), "42s");
        assert_eq!(humanize(Duration::from_secs(125)), "2m 5s");
        assert_eq!(humanize(Duration::from_secs(7300)), "2h 1m");
    }
}
