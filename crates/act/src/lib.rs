//! portwarden's self-healing actions. An [`ActionSpec`] (one entry of a monitor's `on_down`
//! list, `type` selecting the variant) runs through [`run`] as one bounded attempt and says what
//! happened in an [`Outcome`]. When to act, how often, verifying the fix and giving up belong to
//! the daemon's healing engine.
//!
//! Layout, one module per action type:
//!
//! - [`spec`]: the keys as written ([`ActionSpec`] and one struct per type), durations.
//! - [`unit`]: `restart` / `start` / `stop` — names, command plans (`systemctl`, `service`,
//!   PowerShell), the dispatch between managers; `systemd` (unix) speaks D-Bus to the manager.
//! - [`exec`]: `exec`, a program without a shell.
//! - [`reboot`]: `reboot`, its guard ([`reboot_allowed`], [`record_reboot`]) and cancel file.
//! - `runner`: the one way programs are run (argv, process group, deadline, capped output).
//!
//! Every attempt is bounded by the entry's `timeout` (default 60 s), its `summary` is one line
//! and its `output` at most 16 KiB. In a dry run ([`Context::dry_run`]) nothing is changed and
//! the summary says what would be done.
//!
//! Its log lines keep the targets they had before the package was renamed `portwarden-act`
//! (`act::systemd`, `act::reboot`), so log text and `PORTWARDEN_LOG` filters are as before.

pub mod exec;
pub mod reboot;
mod runner;
pub mod spec;
#[cfg(unix)]
mod systemd;
pub mod unit;

use std::path::PathBuf;
use std::time::Duration;

pub use reboot::{
    cancel_file, cancelled, clear_cancel, clear_pending, mark_pending, pending, pending_file,
    reboot_allowed, record_reboot, PendingReboot,
};
pub use runner::OUTPUT_CAP;
pub use spec::{
    parse_duration, ActionSpec, BusKind, ExecAction, ManagerKind, RebootAction, RebootMethod,
    UnitAction, DEFAULT_TIMEOUT,
};
pub use unit::Verb;

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
/// names every problem, `key: message`, joined with `; `. Pure but for looking up `user` and
/// `group` names of `exec` in the local user database.
pub fn validate(spec: &ActionSpec) -> Result<(), String> {
    let problems = problems(spec);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Every problem of `spec`, one `key: message` each.
pub fn problems(spec: &ActionSpec) -> Vec<String> {
    let mut p = Vec::new();
    match spec {
        ActionSpec::Restart(u) => unit::validate(u, Verb::Restart, &mut p),
        ActionSpec::Start(u) => unit::validate(u, Verb::Start, &mut p),
        ActionSpec::Stop(u) => unit::validate(u, Verb::Stop, &mut p),
        ActionSpec::Exec(e) => exec::validate(e, &mut p),
        ActionSpec::Reboot(r) => reboot::validate(r, &mut p),
    }
    p
}

/// One attempt of `spec`, bounded by its timeout; never panics.
pub async fn run(spec: &ActionSpec, cx: &Context) -> Outcome {
    let timeout = spec.timeout();
    let mut out = match spec {
        ActionSpec::Restart(u) => unit::run(u, Verb::Restart, cx.dry_run, timeout).await,
        ActionSpec::Start(u) => unit::run(u, Verb::Start, cx.dry_run, timeout).await,
        ActionSpec::Stop(u) => unit::run(u, Verb::Stop, cx.dry_run, timeout).await,
        ActionSpec::Exec(e) => exec::run(e, cx, timeout).await,
        ActionSpec::Reboot(r) => reboot::run(r, cx, timeout).await,
    };
    out.summary = exec::one_line(&out.summary, 400);
    out.output = runner::cap(out.output, OUTPUT_CAP);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_joins_every_problem() {
        let spec: ActionSpec =
            serde_json::from_str(r#"{"type":"exec","command":["./fix"],"timeout":"later"}"#)
                .unwrap();
        let e = validate(&spec).unwrap_err();
        assert!(
            e.starts_with("command: \"./fix\" is a relative path"),
            "{e}"
        );
        assert!(e.contains("; timeout: cannot read \"later\""), "{e}");
        let ok: ActionSpec = serde_json::from_str(r#"{"type":"restart","unit":"nginx"}"#).unwrap();
        assert_eq!(validate(&ok), Ok(()));
    }
}
