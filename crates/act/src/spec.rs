//! One `on_down` entry as written. The daemon removes the keys its engine handles itself
//! (`attempts`, `grace`) and deserializes the rest, `type` included; unknown keys are errors.
//!
//! Durations stay text here (`"90s"`, `"1h"`) so [`crate::validate`] can name a bad one with
//! its key; [`parse_duration`] is the one parser.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The default bound of one attempt when the entry has no `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// One self-healing action; `type` selects the variant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ActionSpec {
    /// Restart a service (systemd unit, SysV script or Windows service).
    Restart(UnitAction),
    /// Start a service.
    Start(UnitAction),
    /// Stop a service.
    Stop(UnitAction),
    /// Run a program (no shell).
    Exec(ExecAction),
    /// Reboot the machine, behind its guard.
    Reboot(RebootAction),
}

impl ActionSpec {
    /// The `type` value.
    pub fn kind(&self) -> &'static str {
        match self {
            ActionSpec::Restart(_) => "restart",
            ActionSpec::Start(_) => "start",
            ActionSpec::Stop(_) => "stop",
            ActionSpec::Exec(_) => "exec",
            ActionSpec::Reboot(_) => "reboot",
        }
    }

    /// The entry's `timeout` text, if it has one.
    pub fn timeout_text(&self) -> Option<&str> {
        match self {
            ActionSpec::Restart(u) | ActionSpec::Start(u) | ActionSpec::Stop(u) => {
                u.timeout.as_deref()
            }
            ActionSpec::Exec(e) => e.timeout.as_deref(),
            ActionSpec::Reboot(r) => r.timeout.as_deref(),
        }
    }

    /// The bound of one attempt: `timeout`, else [`DEFAULT_TIMEOUT`] (also when unparseable;
    /// [`crate::validate`] reports that).
    pub fn timeout(&self) -> Duration {
        self.timeout_text()
            .and_then(|t| parse_duration(t).ok())
            .unwrap_or(DEFAULT_TIMEOUT)
    }
}

/// `restart`, `start`, `stop`: a service.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitAction {
    /// The unit (`nginx.service`; a name without a dot gets `.service`), SysV script or
    /// Windows service name (`.service` is dropped for those).
    pub unit: String,
    /// Which service manager. Default `auto`.
    #[serde(default)]
    pub manager: ManagerKind,
    /// systemd's system bus (default) or the user manager's bus.
    #[serde(default)]
    pub bus: BusKind,
    /// A D-Bus address (`unix:path=/run/…/bus`) instead of the standard one; for tests and
    /// unusual setups.
    #[serde(default)]
    pub bus_address: Option<String>,
    /// `restart` only: also try-restart the `.service` units this one `Requires=`/`BindsTo=`.
    /// Default false.
    #[serde(default)]
    pub with_dependencies: bool,
    /// Bound of the attempt (`"90s"`). Default 60 s.
    #[serde(default)]
    pub timeout: Option<String>,
}

/// The service manager a unit action talks to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ManagerKind {
    /// Windows services on Windows; elsewhere systemd over D-Bus, then `systemctl`, then
    /// `service`.
    #[default]
    Auto,
    /// systemd over D-Bus, then `systemctl`.
    Systemd,
    /// `service NAME ACTION`.
    Sysv,
    /// PowerShell's `Restart-Service` and friends.
    Windows,
}

impl ManagerKind {
    /// The `manager` value.
    pub fn name(self) -> &'static str {
        match self {
            ManagerKind::Auto => "auto",
            ManagerKind::Systemd => "systemd",
            ManagerKind::Sysv => "sysv",
            ManagerKind::Windows => "windows",
        }
    }
}

/// Which systemd manager.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// The system manager (PID 1) on the system bus.
    #[default]
    System,
    /// The calling user's manager on the session bus (`systemctl --user`).
    User,
}

/// `exec`: a program, run without a shell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecAction {
    /// Program and arguments. The program is an absolute path or a bare name looked up on
    /// `PATH` when it runs.
    pub command: Vec<String>,
    /// Working directory (absolute). Default: the daemon's.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Extra environment, on top of the daemon's and the `PORTWARDEN_*` variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Run as this user (name or numeric id); unix, daemon running as root.
    #[serde(default)]
    pub user: Option<String>,
    /// Run with this group (name or numeric id); default the user's primary group.
    #[serde(default)]
    pub group: Option<String>,
    /// Bound of the attempt; on expiry the program's process group is killed. Default 60 s.
    #[serde(default)]
    pub timeout: Option<String>,
}

/// `reboot`: the last resort, behind a guard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebootAction {
    /// Refuse while the machine has been up for less than this (`"1h"`). Default: no minimum.
    #[serde(default)]
    pub min_uptime: Option<String>,
    /// At most this many daemon-initiated reboots (distinct boots) in 24 h. Default: no limit.
    #[serde(default)]
    pub max_per_day: Option<u32>,
    /// The engine announces the reboot and waits this long, cancellable, before running it.
    /// Default 0 (the engine's business; this crate only parses it).
    #[serde(default)]
    pub hold_off: Option<String>,
    /// Check and say, never reboot. Default false.
    #[serde(default)]
    pub dry_run: bool,
    /// How to reboot. Default `auto`; a `command` implies `command`.
    #[serde(default)]
    pub method: Option<RebootMethod>,
    /// The program that reboots (argv, no shell).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Bound of the attempt. Default 60 s.
    #[serde(default)]
    pub timeout: Option<String>,
}

/// How a reboot is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RebootMethod {
    /// logind, else `systemctl reboot`, else `reboot` (Windows: `shutdown.exe /r /t 0`).
    Auto,
    /// `org.freedesktop.login1.Manager.Reboot(false)` on the system bus.
    Logind,
    /// The `command` argv.
    Command,
    /// `sync()` then `reboot(2)` (`RB_AUTOBOOT`): immediate, services are not stopped.
    Syscall,
}

impl RebootAction {
    /// The method in force: `method`, else `command` when a command is given, else `auto`.
    pub fn effective_method(&self) -> RebootMethod {
        match (self.method, &self.command) {
            (Some(m), _) => m,
            (None, Some(_)) => RebootMethod::Command,
            (None, None) => RebootMethod::Auto,
        }
    }
}

/// Parses `"90s"`, `"5m"`, `"1h 30m"`, `"250ms"`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(t).map_err(|e| format!("cannot read {text:?} as a duration: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ActionSpec, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn every_type_parses_with_its_keys() {
        let r =
            parse(r#"{"type":"restart","unit":"nginx","with_dependencies":true,"timeout":"90s"}"#)
                .unwrap();
        assert_eq!(r.kind(), "restart");
        assert_eq!(r.timeout(), Duration::from_secs(90));
        let s = parse(r#"{"type":"stop","unit":"x.service","bus":"user","manager":"systemd"}"#)
            .unwrap();
        assert_eq!(s.kind(), "stop");
        assert_eq!(
            parse(r#"{"type":"start","unit":"W3SVC","manager":"windows"}"#)
                .unwrap()
                .kind(),
            "start"
        );
        let e = parse(r#"{"type":"exec","command":["/bin/true"],"env":{"A":"1"}}"#).unwrap();
        assert_eq!(e.kind(), "exec");
        assert_eq!(e.timeout(), DEFAULT_TIMEOUT);
        let b = parse(r#"{"type":"reboot","min_uptime":"1h","max_per_day":1,"hold_off":"5m"}"#)
            .unwrap();
        let ActionSpec::Reboot(b) = b else { panic!() };
        assert_eq!(b.effective_method(), RebootMethod::Auto);
    }

    #[test]
    fn unknown_keys_and_types_are_refused() {
        assert!(parse(r#"{"type":"restart","unit":"a","nope":1}"#)
            .unwrap_err()
            .contains("unknown field `nope`"));
        assert!(parse(r#"{"type":"teleport"}"#)
            .unwrap_err()
            .contains("unknown variant"));
    }

    #[test]
    fn durations_read_like_the_rest_of_the_config() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("12"), Ok(Duration::from_secs(12)));
        assert!(parse_duration("soon").is_err());
    }
}
