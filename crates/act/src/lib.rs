//! portwarden's self-healing actions. An [`ActionSpec`] (one entry of a monitor's `on_down`
//! list, `type` selecting the variant) runs through [`run`] as one bounded attempt and says what
//! happened in an [`Outcome`]. When to act, how often, verifying the fix and giving up belong to
//! the daemon's healing engine.

pub mod spec;

use std::path::PathBuf;
use std::time::Duration;

pub use spec::ActionSpec;

/// What an action is about, for its environment (`PORTWARDEN_MONITOR`, …) and its messages.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub monitor: String,
    /// `host:port`.
    pub target: String,
    /// The closed-set reason of the failure (`refused`, `timeout`, …).
    pub reason: String,
    /// The failed check's message.
    pub message: String,
    /// Say what would be done, do nothing.
    pub dry_run: bool,
    /// The daemon's state directory (the reboot guard keeps its counts there).
    pub state_dir: PathBuf,
}

/// What one attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The action itself succeeded (the unit's job finished `done`, the program exited 0, the
    /// reboot was issued). Whether the service answers again is the engine's re-check.
    pub ok: bool,
    /// One line for people: `restarted nginx.service (job done)`, `exec /usr/local/bin/fix: exit 1`.
    pub summary: String,
    /// Captured output or the manager's error text, capped.
    pub output: String,
    pub took: Duration,
}

/// Checks a spec beyond its syntax (an empty argv, a unit name without a suffix, …); the error
/// names the problem.
pub fn validate(spec: &ActionSpec) -> Result<(), String> {
    let _ = spec;
    Ok(())
}

/// One attempt of `spec`, bounded by its timeout; never panics.
pub async fn run(spec: &ActionSpec, cx: &Context) -> Outcome {
    let _ = cx;
    Outcome {
        ok: false,
        summary: format!("{} actions are not built yet", spec.kind()),
        output: String::new(),
        took: Duration::ZERO,
    }
}
