//! A monitor as the daemon runs it: a prepared probe plus the policy around it. Built from the
//! config (or discovered at start-up in zero-config mode); shared read-only by the scheduler,
//! the state machine and the API.

use std::time::Duration;

use portwarden_sockets::owner::ExpectedOwner;
use serde::Serialize;

/// How results turn into states (see [`crate::state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// Failures in a row (or within `window`) before the monitor is down.
    pub fail_after: u32,
    /// Successes in a row (or within `window`) before a down monitor is up again.
    pub recover_after: u32,
    /// "N of the last M": count failures / successes among the last `window` results
    /// instead of in a row. `None`: in a row.
    pub window: Option<u32>,
    /// More than this many state changes within `flap_window` is flapping.
    pub flap_max_transitions: u32,
    /// The window for flapping detection.
    #[serde(with = "crate::monitor::secs")]
    pub flap_window: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            fail_after: 3,
            recover_after: 2,
            window: None,
            flap_max_transitions: 6,
            flap_window: Duration::from_secs(600),
        }
    }
}

/// Where a monitor comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A `[[monitor]]` of the config.
    Config,
    /// Zero-config mode: a listener found on this host.
    Discovered,
}

/// One monitor, ready to schedule.
#[derive(Debug, Clone)]
pub struct Monitor {
    /// Unique among monitors.
    pub name: String,
    pub probe: portwarden_probe::Probe,
    /// The local socket on the port must belong to this program.
    pub owner: Option<ExpectedOwner>,
    /// Why a discovered listener has no owner check: its holder could not be seen.
    pub owner_unknown: Option<String>,
    pub interval: Duration,
    pub policy: Policy,
    /// Notifier names (used by the notification issue).
    pub notify: Vec<String>,
    pub tags: Vec<String>,
    /// What to do when it goes DOWN (`on_down`), and the limits around it.
    pub heal: Heal,
    pub origin: Origin,
    /// A fingerprint of the monitor's canonical definition: two monitors with the same
    /// fingerprint are the same monitor across a reload, and keep their state. A hash, not the
    /// text, because 100,000 monitors would otherwise keep 100 MB of definitions around.
    pub definition: Fingerprint,
}

/// A monitor's self-healing: the ladder of `on_down` steps and the limits that keep it from
/// looping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heal {
    /// In ladder order: each step is tried `attempts` times before the next one.
    pub steps: Vec<Step>,
    /// At most this many actions within `window`; then the engine gives up.
    pub max_actions: u32,
    pub window: Duration,
    /// Least time between two actions of this monitor.
    pub cooldown: Duration,
    /// Healthy this long without a break: the counters start again.
    pub reset_after: Duration,
}

impl Default for Heal {
    fn default() -> Self {
        Self {
            steps: Vec::new(),
            max_actions: 3,
            window: Duration::from_secs(600),
            cooldown: Duration::from_secs(30),
            reset_after: Duration::from_secs(600),
        }
    }
}

/// One rung of the ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub action: portwarden_act::ActionSpec,
    /// Tries of this step before escalating to the next. Default 1.
    pub attempts: u32,
    /// After the action, the service has this long to answer again. Default 10 s.
    pub grace: Duration,
}

/// A hash of a canonical text; stable within one process (reloads compare within one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(u64);

impl Fingerprint {
    pub fn of(canonical: &str) -> Self {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        canonical.hash(&mut h);
        Self(h.finish())
    }
}

/// Serde helpers: durations as (fractional) seconds.
pub mod secs {
    use std::time::Duration;

    use serde::Serializer;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}
