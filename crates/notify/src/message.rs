//! What a notification says, independent of the channel: the event kind, the host, and one item
//! per monitor (several when the dispatcher groups a storm into one message).

use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A monitor is DOWN (its failure threshold was reached).
    Down,
    /// A monitor recovered; the item carries how long the outage lasted.
    Up,
    Warning,
    Flapping,
    /// Still down after `remind_every`.
    Reminder,
    FirewallViolation,
    FirewallRepaired,
    FirewallRepairFailed,
    /// A self-healing action ran (issue 7): restarted, command run.
    ActionTaken,
    ActionFailed,
    /// Self-healing gave up: a person must look.
    GaveUp,
    /// `portwarden notify test`.
    Test,
    /// Several notifications in one message; each item has its own kind.
    Grouped,
}

impl Kind {
    /// True for kinds that report a problem (an incident opens or stays open); false for
    /// recoveries and repairs (the incident resolves). Alertmanager and PagerDuty use this.
    pub fn is_problem(self) -> bool {
        !matches!(
            self,
            Kind::Up | Kind::FirewallRepaired | Kind::Test | Kind::ActionTaken
        )
    }

    /// True for kinds that end an incident (PagerDuty `resolve`, Alertmanager `endsAt`).
    pub fn is_recovery(self) -> bool {
        matches!(self, Kind::Up | Kind::FirewallRepaired)
    }

    /// The snake_case name used in the config, JSON and `PORTWARDEN_KIND`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Down => "down",
            Kind::Up => "up",
            Kind::Warning => "warning",
            Kind::Flapping => "flapping",
            Kind::Reminder => "reminder",
            Kind::FirewallViolation => "firewall_violation",
            Kind::FirewallRepaired => "firewall_repaired",
            Kind::FirewallRepairFailed => "firewall_repair_failed",
            Kind::ActionTaken => "action_taken",
            Kind::ActionFailed => "action_failed",
            Kind::GaveUp => "gave_up",
            Kind::Test => "test",
            Kind::Grouped => "grouped",
        }
    }

    /// A short upper-case word for people, used in subjects and group counts.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Down => "DOWN",
            Kind::Up => "UP",
            Kind::Warning => "WARNING",
            Kind::Flapping => "FLAPPING",
            Kind::Reminder => "STILL DOWN",
            Kind::FirewallViolation => "FIREWALL VIOLATED",
            Kind::FirewallRepaired => "FIREWALL REPAIRED",
            Kind::FirewallRepairFailed => "FIREWALL REPAIR FAILED",
            Kind::ActionTaken => "ACTION TAKEN",
            Kind::ActionFailed => "ACTION FAILED",
            Kind::GaveUp => "GAVE UP",
            Kind::Test => "TEST",
            Kind::Grouped => "GROUPED",
        }
    }
}

/// One event in a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub kind: Kind,
    /// The monitor's name, or `firewall`.
    pub subject: String,
    /// `host:port` of a monitor, or the firewall backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The state now: `down`, `ok`, `warning`, `violated`, …
    pub status: String,
    /// The closed-set reason (`refused`, `timeout`, `banner_mismatch`, …), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// One line for people: what is wrong or what changed.
    pub message: String,
    /// What the server sent, escaped and capped, when it matters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<String>,
    /// Longer detail: a firewall drift listing, an action's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// What portwarden did about it ("restored the firewall baseline").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// On recovery: how long the outage lasted, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_for_secs: Option<u64>,
    /// Unix milliseconds when the problem began (Alertmanager `startsAt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Shared by a problem's notifications and its recovery (`host/monitor`): PagerDuty's
    /// `dedup_key`, Alertmanager's identifying labels, so the incident resolves there too.
    pub incident: String,
}

/// A notification: one event, or a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Stable for the same event: the outbox key, the webhook `Idempotency-Key` header.
    pub id: String,
    /// The item's kind, or [`Kind::Grouped`] for several items.
    pub kind: Kind,
    /// The host portwarden runs on.
    pub host: String,
    /// Unix milliseconds of the (first) event.
    pub at_ms: u64,
    pub items: Vec<Item>,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_match_serde() {
        for kind in [
            Kind::Down,
            Kind::Up,
            Kind::Warning,
            Kind::Flapping,
            Kind::Reminder,
            Kind::FirewallViolation,
            Kind::FirewallRepaired,
            Kind::FirewallRepairFailed,
            Kind::ActionTaken,
            Kind::ActionFailed,
            Kind::GaveUp,
            Kind::Test,
            Kind::Grouped,
        ] {
            assert_eq!(
                serde_json::to_value(kind).expect("serializes"),
                serde_json::Value::String(kind.as_str().to_string())
            );
            assert!(!(kind.is_recovery() && kind.is_problem()), "{kind}");
        }
    }
}
