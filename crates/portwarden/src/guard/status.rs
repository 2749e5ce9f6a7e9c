//! What the guard shows of itself: `GET /api/v1/firewall`, the dashboard, the metrics and
//! `portwarden status` read [`GuardStatus`]; the guard writes it after every look.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use portwarden_firewall::BackendKind;
use serde::Serialize;

use crate::config::OnViolation;
use crate::events::FirewallReport;

/// The guard's verdict, `state` in `GET /api/v1/firewall` (the API, the dashboard, the metrics
/// and `portwarden status` read these words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GuardState {
    /// Not looked yet.
    Starting,
    /// The last look met the policy and the baseline.
    Ok,
    /// The last look found violations.
    Violated,
    /// The firewall (or the tool to read it) could not be read: reported, never acted on.
    Unreadable,
    /// `[firewall] guard = false`.
    Off,
    /// Zero-config on a host with no firewall rules loaded: nothing to guard yet.
    Absent,
}

/// What `GET /api/v1/firewall` and the logs show of the guard.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GuardStatus {
    /// `starting`, `ok`, `violated`, `unreadable`, `off`, or `absent`: zero-config on a host
    /// with no firewall rules loaded (nothing to guard yet; not a violation — once rules are
    /// loaded the state is `ok`, and switching them off or flushing them is a violation).
    #[schema(value_type = String)]
    pub state: GuardState,
    #[schema(value_type = Option<String>)]
    pub backend: Option<BackendKind>,
    /// Unix milliseconds of the last verification.
    pub checked_at: Option<u64>,
    /// Verifications since the guard started (periodic, on change, after repairs).
    pub verifications: u64,
    #[schema(value_type = Vec<Object>)]
    pub violations: Vec<portwarden_firewall::Violation>,
    #[schema(value_type = Option<Object>)]
    pub drift: Option<portwarden_firewall::Drift>,
    #[schema(value_type = Option<String>)]
    pub baseline: Option<PathBuf>,
    #[schema(value_type = Option<String>)]
    pub on_violation: Option<OnViolation>,
    /// True while nftables change notifications are being watched.
    pub watching: bool,
    pub repairs_last_hour: usize,
    #[schema(value_type = Option<Object>)]
    pub last_repair: Option<FirewallReport>,
    /// Unix seconds until which repairs are paused.
    pub paused_until: Option<u64>,
    /// The backend's remarks, e.g. "ufw reports deny but the kernel's INPUT policy is ACCEPT".
    pub notes: Vec<String>,
    /// Other tools' tables, never restored or counted as drift.
    pub foreign_tables: Vec<String>,
    pub error: Option<String>,
}

impl Default for GuardStatus {
    fn default() -> Self {
        Self {
            state: GuardState::Starting,
            backend: None,
            checked_at: None,
            verifications: 0,
            violations: Vec::new(),
            drift: None,
            baseline: None,
            on_violation: None,
            watching: false,
            repairs_last_hour: 0,
            last_repair: None,
            paused_until: None,
            notes: Vec::new(),
            foreign_tables: Vec::new(),
            error: None,
        }
    }
}

pub type SharedStatus = Arc<Mutex<GuardStatus>>;

/// Changes the status in place (a poisoned lock leaves it as it was).
pub(super) fn set(status: &SharedStatus, f: impl FnOnce(&mut GuardStatus)) {
    if let Ok(mut s) = status.lock() {
        f(&mut s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_serialize_to_the_words_the_api_has_always_used() {
        use GuardState::*;
        let words: Vec<String> = [Starting, Ok, Violated, Unreadable, Off, Absent]
            .iter()
            .map(|s| serde_json::to_string(s).unwrap())
            .collect();
        assert_eq!(
            words,
            [
                "\"starting\"",
                "\"ok\"",
                "\"violated\"",
                "\"unreadable\"",
                "\"off\"",
                "\"absent\""
            ]
        );
        let status = serde_json::to_value(GuardStatus::default()).unwrap();
        assert_eq!(status["state"], "starting");
    }
}
