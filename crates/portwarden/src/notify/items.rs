//! Events into notification items, and who gets them. Pure: the dispatcher hands in the
//! event, the host name, a monitor lookup and the firewall's notifier list.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use portwarden_notify::{Item, Kind, Notification};

use crate::events::{humanize, ActionReport, Event, EventKind, FirewallReport, MonitorChange};

/// What the dispatcher needs to know about a monitor, looked up at event time (so a reload's
/// new `notify` list applies to the next event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorInfo {
    /// `host:port`.
    pub target: String,
    pub tags: Vec<String>,
    /// Notifier names (the monitor's own list, else `[defaults] notify`).
    pub notify: Vec<String>,
}

/// Finds a running monitor by name.
pub type Lookup = Arc<dyn Fn(&str) -> Option<MonitorInfo> + Send + Sync>;

/// An event as a notification, and the notifiers it goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    pub notification: Notification,
    pub notifiers: Vec<String>,
}

/// Unix milliseconds of `t` (0 before 1970).
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// This machine's host name, for `host` and incident keys.
pub fn host_name() -> String {
    let name = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// The notification of `item` alone; its id is `<subject>:<kind>:<at_ms>`, stable for the
/// event and unique per subject (two events of one monitor never share a millisecond and a
/// kind).
pub fn single(host: &str, item: Item, at_ms: i64) -> Notification {
    Notification {
        id: format!(
            "{}:{}:{at_ms}",
            item.subject,
            crate::store::kind_name(item.kind)
        ),
        kind: item.kind,
        host: host.to_string(),
        at_ms: u64::try_from(at_ms).unwrap_or(0),
        items: vec![item],
    }
}

/// The notification an event makes, if it makes one, and where it goes. Monitor events go to
/// the monitor's notifiers, firewall events to `[firewall] notify`.
pub fn route(
    event: &Event,
    host: &str,
    lookup: &dyn Fn(&str) -> Option<MonitorInfo>,
    firewall_notify: &[String],
) -> Option<Routed> {
    let at_ms = unix_ms(event.at);
    let (item, notifiers) = match &event.kind {
        EventKind::MonitorDown(c) => monitor_item(Kind::Down, c, host, at_ms, lookup)?,
        EventKind::MonitorUp(c) => monitor_item(Kind::Up, c, host, at_ms, lookup)?,
        EventKind::MonitorWarning(c) => monitor_item(Kind::Warning, c, host, at_ms, lookup)?,
        EventKind::MonitorFlapping(c) => monitor_item(Kind::Flapping, c, host, at_ms, lookup)?,
        EventKind::FirewallViolation(r) => (
            firewall_item(Kind::FirewallViolation, r, host, at_ms),
            firewall_notify.to_vec(),
        ),
        EventKind::FirewallRepaired(r) | EventKind::FirewallRecovered(r) => (
            firewall_item(Kind::FirewallRepaired, r, host, at_ms),
            firewall_notify.to_vec(),
        ),
        EventKind::FirewallRepairFailed(r) => (
            firewall_item(Kind::FirewallRepairFailed, r, host, at_ms),
            firewall_notify.to_vec(),
        ),
        EventKind::ActionTaken(a) => action_item(Kind::ActionTaken, a, host, at_ms, lookup)?,
        EventKind::ActionFailed(a) => action_item(Kind::ActionFailed, a, host, at_ms, lookup)?,
        EventKind::GaveUp(a) => action_item(Kind::GaveUp, a, host, at_ms, lookup)?,
        // A reboot on its way is a warning: there is still time to cancel it.
        EventKind::RebootPending(a) => action_item(Kind::Warning, a, host, at_ms, lookup)?,
        _ => return None,
    };
    Some(Routed {
        notification: single(host, item, at_ms),
        notifiers,
    })
}

fn monitor_item(
    kind: Kind,
    c: &MonitorChange,
    host: &str,
    at_ms: i64,
    lookup: &dyn Fn(&str) -> Option<MonitorInfo>,
) -> Option<(Item, Vec<String>)> {
    // A monitor removed by a reload between its event and now has nobody to tell.
    let info = lookup(&c.monitor)?;
    let down_for = c.down_for.filter(|_| kind == Kind::Up);
    let message = match kind {
        Kind::Up => match down_for {
            Some(d) => format!("up again after {}", humanize(d)),
            None => "up again".to_string(),
        },
        Kind::Flapping => format!("changing state too often; last: {}", c.message),
        _ => c.message.clone(),
    };
    let since_ms = match down_for {
        Some(d) => at_ms - i64::try_from(d.as_millis()).unwrap_or(0),
        None => at_ms,
    };
    let item = Item {
        kind,
        subject: c.monitor.clone(),
        target: Some(info.target),
        status: c.to.as_str().to_string(),
        reason: c.reason.map(|r| r.as_str().to_string()),
        message,
        received: None,
        detail: None,
        action: None,
        down_for_secs: down_for.map(|d| d.as_secs()),
        since_ms: u64::try_from(since_ms).ok(),
        tags: info.tags,
        incident: format!("{host}/{}", c.monitor),
    };
    Some((item, info.notify))
}

/// A healing action's item, to the monitor's notifiers.
fn action_item(
    kind: Kind,
    a: &ActionReport,
    host: &str,
    at_ms: i64,
    lookup: &dyn Fn(&str) -> Option<MonitorInfo>,
) -> Option<(Item, Vec<String>)> {
    let info = lookup(&a.monitor)?;
    let status = if kind == Kind::Warning {
        "reboot_pending".to_string()
    } else {
        a.outcome.clone()
    };
    let item = Item {
        kind,
        subject: a.monitor.clone(),
        target: Some(info.target),
        status,
        reason: None,
        message: a.message.clone(),
        received: None,
        detail: (!a.output.is_empty()).then(|| a.output.clone()),
        action: (!a.summary.is_empty()).then(|| a.summary.clone()),
        down_for_secs: None,
        since_ms: u64::try_from(at_ms).ok(),
        tags: info.tags,
        incident: format!("{host}/{}", a.monitor),
    };
    Some((item, info.notify))
}

fn firewall_item(kind: Kind, r: &FirewallReport, host: &str, at_ms: i64) -> Item {
    let what = if r.violations.is_empty() {
        "the ruleset changed".to_string()
    } else {
        r.violations.join("; ")
    };
    let (status, message, action) = match kind {
        Kind::FirewallViolation => {
            let culprit = r
                .culprit
                .as_deref()
                .map(|c| format!(" (changed by {c})"))
                .unwrap_or_default();
            let action = match (&r.action, &r.held) {
                (Some(a), _) => Some(format!("{a} follows")),
                (None, Some(h)) => Some(format!("not repairing: {h}")),
                _ => None,
            };
            ("violated", format!("{what}{culprit}"), action)
        }
        Kind::FirewallRepairFailed => (
            "repair_failed",
            format!(
                "{} failed: {}",
                r.action.as_deref().unwrap_or("repair"),
                r.error.clone().unwrap_or(what)
            ),
            r.action.clone(),
        ),
        // Repaired by the guard, or recovered without it (no action).
        _ => match &r.action {
            Some(a) => (
                "ok",
                format!(
                    "repaired by {a} and verified{}",
                    r.took_ms
                        .map(|ms| format!(" in {ms} ms"))
                        .unwrap_or_default()
                ),
                Some(a.clone()),
            ),
            None => ("ok", "as required again".to_string(), None),
        },
    };
    Item {
        kind,
        subject: "firewall".into(),
        target: Some(r.backend.clone()),
        status: status.into(),
        reason: None,
        message,
        received: None,
        detail: r.drift.clone(),
        action,
        down_for_secs: None,
        since_ms: u64::try_from(at_ms).ok(),
        tags: Vec::new(),
        incident: format!("{host}/firewall"),
    }
}

/// The reminder for a monitor still down: its DOWN item, restated.
pub fn reminder(down: &Item, now_ms: i64) -> Item {
    let down_for = down.since_ms.map(|s| {
        std::time::Duration::from_millis(u64::try_from(now_ms).unwrap_or(0).saturating_sub(s))
    });
    Item {
        kind: Kind::Reminder,
        message: format!(
            "still down after {}: {}",
            down_for.map(humanize).unwrap_or_default(),
            down.message
        ),
        down_for_secs: down_for.map(|d| d.as_secs()),
        ..down.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Status;
    use std::time::Duration;

    fn lookup(name: &str) -> Option<MonitorInfo> {
        (name != "gone").then(|| MonitorInfo {
            target: "127.0.0.1:25".into(),
            tags: vec!["mail".into()],
            notify: vec!["ops".into()],
        })
    }

    fn event(kind: EventKind, ms: u64) -> Event {
        Event {
            at: UNIX_EPOCH + Duration::from_millis(ms),
            kind,
        }
    }

    fn change(name: &str, from: Status, to: Status, down_for: Option<u64>) -> MonitorChange {
        MonitorChange {
            monitor: name.into(),
            from,
            to,
            reason: Some(portwarden_probe::Reason::Refused),
            message: "connection refused".into(),
            down_for: down_for.map(Duration::from_secs),
        }
    }

    #[test]
    fn down_and_up_carry_the_incident_and_the_outage() {
        let down = route(
            &event(
                change("mail", Status::Ok, Status::Down, None).into_event(),
                5_000,
            ),
            "h",
            &lookup,
            &[],
        )
        .unwrap();
        assert_eq!(down.notifiers, ["ops"]);
        let n = &down.notification;
        assert_eq!(n.id, "mail:down:5000");
        assert_eq!(n.kind, Kind::Down);
        let i = &n.items[0];
        assert_eq!(i.reason.as_deref(), Some("refused"));
        assert_eq!(i.status, "down");
        assert_eq!(i.incident, "h/mail");
        assert_eq!(i.target.as_deref(), Some("127.0.0.1:25"));
        assert_eq!(i.tags, ["mail"]);
        assert_eq!(i.since_ms, Some(5_000));

        let up = route(
            &event(
                change("mail", Status::Down, Status::Ok, Some(3)).into_event(),
                8_000,
            ),
            "h",
            &lookup,
            &[],
        )
        .unwrap();
        let i = &up.notification.items[0];
        assert_eq!(up.notification.id, "mail:up:8000");
        assert_eq!(i.down_for_secs, Some(3));
        assert_eq!(i.since_ms, Some(5_000));
        assert_eq!(i.message, "up again after 3s");
        assert_eq!(i.incident, "h/mail");
    }

    #[test]
    fn firewall_events_go_to_the_firewall_notifiers_and_others_nowhere() {
        let report = FirewallReport {
            backend: "nftables".into(),
            violations: vec!["firewall disabled".into()],
            drift: Some("- [inet filter input] tcp dport 22 accept".into()),
            action: Some("restore".into()),
            ..Default::default()
        };
        let fw = vec!["pager".to_string()];
        let r = route(
            &event(EventKind::FirewallViolation(report.clone()), 1),
            "h",
            &lookup,
            &fw,
        )
        .unwrap();
        assert_eq!(r.notifiers, fw);
        let i = &r.notification.items[0];
        assert_eq!(i.kind, Kind::FirewallViolation);
        assert_eq!(i.subject, "firewall");
        assert_eq!(i.incident, "h/firewall");
        assert_eq!(i.action.as_deref(), Some("restore follows"));
        assert!(i.detail.as_deref().unwrap().contains("dport 22"));
        let r = route(
            &event(EventKind::FirewallRepaired(report), 2),
            "h",
            &lookup,
            &fw,
        )
        .unwrap();
        assert_eq!(r.notification.kind, Kind::FirewallRepaired);
        assert!(route(
            &event(EventKind::ConfigRejected { error: "x".into() }, 3),
            "h",
            &lookup,
            &fw
        )
        .is_none());
        // A monitor removed meanwhile has nobody to tell.
        assert!(route(
            &event(
                change("gone", Status::Ok, Status::Down, None).into_event(),
                4
            ),
            "h",
            &lookup,
            &fw
        )
        .is_none());
    }

    #[test]
    fn healing_events_go_to_the_monitor_notifiers_and_a_pending_reboot_is_a_warning() {
        let report = ActionReport {
            monitor: "mail".into(),
            action: "restart".into(),
            summary: "restarted postfix.service (job done)".into(),
            outcome: "fixed".into(),
            message:
                "restarted postfix.service (job done); 127.0.0.1:25 answering again after 1.8 s"
                    .into(),
            ..Default::default()
        };
        let r = route(
            &event(EventKind::ActionTaken(report.clone()), 7),
            "h",
            &lookup,
            &[],
        )
        .unwrap();
        assert_eq!(r.notifiers, ["ops"]);
        let i = &r.notification.items[0];
        assert_eq!(i.kind, Kind::ActionTaken);
        assert_eq!(i.status, "fixed");
        assert!(i.message.ends_with("answering again after 1.8 s"));
        assert_eq!(
            i.action.as_deref(),
            Some("restarted postfix.service (job done)")
        );
        assert_eq!(i.incident, "h/mail");
        for (kind, want) in [
            (EventKind::ActionFailed(report.clone()), Kind::ActionFailed),
            (EventKind::GaveUp(report.clone()), Kind::GaveUp),
            (EventKind::RebootPending(report.clone()), Kind::Warning),
        ] {
            let r = route(&event(kind, 8), "h", &lookup, &[]).unwrap();
            assert_eq!(r.notification.kind, want);
        }
        let pending = route(
            &event(EventKind::RebootPending(report), 9),
            "h",
            &lookup,
            &[],
        )
        .unwrap();
        assert_eq!(pending.notification.items[0].status, "reboot_pending");
    }

    #[test]
    fn a_reminder_restates_the_down_item() {
        let down = route(
            &event(
                change("mail", Status::Ok, Status::Down, None).into_event(),
                1_000,
            ),
            "h",
            &lookup,
            &[],
        )
        .unwrap();
        let r = reminder(&down.notification.items[0], 3_601_000);
        assert_eq!(r.kind, Kind::Reminder);
        assert_eq!(r.message, "still down after 1h 0m: connection refused");
        assert_eq!(r.incident, "h/mail");
        assert_eq!(r.down_for_secs, Some(3600));
    }
}
