//! What the daemon hands the store: one [`CheckRecord`] per check, one [`TransitionRecord`]
//! per state change.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::state::Status;

/// One check result.
#[derive(Debug, Clone)]
pub struct CheckRecord {
    pub monitor: Arc<str>,
    /// When the check finished.
    pub at: SystemTime,
    /// The probe's verdict mapped to a state: `Ok`, `Warning`, `Down` (critical) or `Unknown`.
    pub status: Status,
    pub reason: Option<portwarden_probe::Reason>,
    pub duration: Duration,
}

/// One change of a monitor's state.
#[derive(Debug, Clone)]
pub struct TransitionRecord {
    pub monitor: Arc<str>,
    pub at: SystemTime,
    /// The state before; informational (the store knows it from the previous change).
    #[expect(
        dead_code,
        reason = "informational: the store knows it from the previous change"
    )]
    pub from: Status,
    pub to: Status,
    /// The reason of the result that caused the change.
    pub reason: Option<portwarden_probe::Reason>,
    /// What the result said; kept (shortened) as the message of an incident it opens.
    pub message: String,
}
