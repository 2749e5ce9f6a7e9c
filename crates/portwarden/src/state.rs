//! The monitor state machine: results in, states and transitions out.

use serde::{Deserialize, Serialize};

/// A monitor's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No verdict yet, or the probe itself could not decide.
    Unknown,
    Ok,
    /// Answering, but slow or with a certificate about to expire.
    Warning,
    Down,
    /// Changing state too often; one event instead of many.
    Flapping,
    /// Checks stopped by an operator.
    Paused,
}

impl Status {
    /// The lowercase name used in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Down => "down",
            Status::Flapping => "flapping",
            Status::Paused => "paused",
        }
    }
}
