//! `type = "restart"`, `"start"`, `"stop"`: a service, through its manager.
//!
//! | key | type | default | meaning |
//! |---|---|---|---|
//! | `unit` | string | required | `nginx.service`; a name without a dot gets `.service`. For `sysv` and `windows` the `.service` suffix is dropped (`W3SVC`) |
//! | `manager` | `auto` \| `systemd` \| `sysv` \| `windows` | `auto` | `auto`: Windows services on Windows; elsewhere systemd over D-Bus, then `systemctl`, then `service` |
//! | `bus` | `system` \| `user` | `system` | the system manager (`DBUS_SYSTEM_BUS_ADDRESS` honoured) or the user manager on the session bus (`DBUS_SESSION_BUS_ADDRESS`; `systemctl --user`) |
//! | `bus_address` | D-Bus address | none | connect here instead (`unix:path=/tmp/x/bus`); with it there is no `systemctl` fallback |
//! | `with_dependencies` | bool | `false` | `restart` only: first try-restart each `.service` unit in the unit's `Requires=` and `BindsTo=` (running ones restart, stopped ones stay stopped — the unit's own restart pulls them in), one job at a time, then restart the unit |
//! | `timeout` | duration | `"60s"` | bound of the whole attempt, all jobs included |
//!
//! How it runs (systemd): connect, `Subscribe`, then `RestartUnit`/`StartUnit`/`StopUnit`
//! (name, `"replace"`) → a job; wait for the `JobRemoved` signal of that job (the signal stream
//! is opened before the call, so it cannot be missed). Job result `done` is success;
//! `failed`, `timeout`, `canceled`, `dependency`, `skipped` are not, and the summary adds the
//! unit's `ActiveState/SubState` and, on the default buses, the last journal line. Errors from
//! the manager are shown as D-Bus names them (`org.freedesktop.systemd1.NoSuchUnit: Unit
//! nope.service not found.`). When no bus can be reached: `systemctl [--user] VERB UNIT`, and
//! with `manager = "auto"` and no `systemctl`: `service NAME VERB`. On timeout the job is left
//! to systemd (not cancelled). Windows: PowerShell `Restart-Service -Name NAME -Force` (and
//! `Start-Service`, `Stop-Service -Force`), which wait for the service, unlike `sc.exe`.

use std::time::{Duration, Instant};

use crate::exec::one_line;
use crate::runner::{run_command, CommandPlan, Finished};
use crate::spec::{parse_duration, BusKind, ManagerKind, UnitAction};
use crate::Outcome;

/// What to do with the unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Restart,
    Start,
    Stop,
}

impl Verb {
    /// The word systemctl, service and this crate's `type` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Restart => "restart",
            Verb::Start => "start",
            Verb::Stop => "stop",
        }
    }

    /// For summaries: `restarted`, `started`, `stopped`.
    pub fn past(self) -> &'static str {
        match self {
            Verb::Restart => "restarted",
            Verb::Start => "started",
            Verb::Stop => "stopped",
        }
    }
}

/// A systemd unit name: `nginx` becomes `nginx.service`.
pub fn unit_name(unit: &str) -> String {
    if unit.contains('.') {
        unit.to_string()
    } else {
        format!("{unit}.service")
    }
}

/// The name for `service` and Windows: without a `.service` suffix.
pub fn service_name(unit: &str) -> &str {
    unit.strip_suffix(".service").unwrap_or(unit)
}

const UNIT_SUFFIXES: &[&str] = &[
    "service",
    "socket",
    "target",
    "mount",
    "automount",
    "swap",
    "path",
    "timer",
    "slice",
    "scope",
    "device",
];

/// Checks a `unit` value the way systemd does (characters, length, suffix).
pub fn check_unit_name(unit: &str) -> Result<(), String> {
    if unit.is_empty() {
        return Err("unit: must name a unit".into());
    }
    let full = unit_name(unit);
    if full.len() > 255 {
        return Err(format!("unit: {unit:?} is longer than 255 characters"));
    }
    if let Some(c) = full
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\@".contains(*c)))
    {
        return Err(format!(
            "unit: {unit:?} has {c:?}; a unit name has letters, digits and :-_.\\@"
        ));
    }
    let (stem, suffix) = full.rsplit_once('.').unwrap_or((&full, ""));
    if stem.is_empty() {
        return Err(format!("unit: {unit:?} has no name before the suffix"));
    }
    if !UNIT_SUFFIXES.contains(&suffix) {
        return Err(format!(
            "unit: {unit:?} ends in .{suffix}; use a unit type ({}) or a name without a dot",
            UNIT_SUFFIXES.join(", ")
        ));
    }
    Ok(())
}

pub(crate) fn validate(a: &UnitAction, verb: Verb, problems: &mut Vec<String>) {
    match a.manager {
        ManagerKind::Windows => {
            if a.unit.trim().is_empty() {
                problems.push("unit: must name a service".into());
            } else if a.unit.contains(['\'', '"', '\n', '\r', '\0']) {
                problems.push(format!("unit: {:?} has a quote or line break", a.unit));
            }
        }
        _ => {
            if let Err(e) = check_unit_name(&a.unit) {
                problems.push(e);
            }
        }
    }
    if a.with_dependencies && verb != Verb::Restart {
        problems.push(format!(
            "with_dependencies: only for type = \"restart\", not \"{}\"",
            verb.as_str()
        ));
    }
    if a.with_dependencies && matches!(a.manager, ManagerKind::Sysv | ManagerKind::Windows) {
        problems.push(format!(
            "with_dependencies: needs systemd, not manager = \"{}\"",
            a.manager.name()
        ));
    }
    if a.bus_address.is_some() && matches!(a.manager, ManagerKind::Sysv | ManagerKind::Windows) {
        problems.push(format!(
            "bus_address: only for systemd, not manager = \"{}\"",
            a.manager.name()
        ));
    }
    if let Some(t) = &a.timeout {
        if let Err(e) = parse_duration(t) {
            problems.push(format!("timeout: {e}"));
        }
    }
}

/// `systemctl [--user] VERB UNIT`.
pub fn systemctl_plan(a: &UnitAction, verb: Verb) -> Vec<String> {
    let mut argv = vec!["systemctl".to_string()];
    if a.bus == BusKind::User {
        argv.push("--user".into());
    }
    argv.push(verb.as_str().into());
    argv.push(unit_name(&a.unit));
    argv
}

/// `service NAME VERB` (SysV init scripts).
pub fn sysv_plan(a: &UnitAction, verb: Verb) -> Vec<String> {
    vec![
        "service".into(),
        service_name(&a.unit).into(),
        verb.as_str().into(),
    ]
}

/// PowerShell's service cmdlets, which wait until the service reached the state (`sc.exe stop`
/// returns while the service is still stopping, so `sc.exe start` right after fails).
pub fn windows_plan(a: &UnitAction, verb: Verb) -> Vec<String> {
    let name = service_name(&a.unit).replace('\'', "''");
    let script = match verb {
        Verb::Restart => format!("Restart-Service -Name '{name}' -Force -ErrorAction Stop"),
        Verb::Start => format!("Start-Service -Name '{name}' -ErrorAction Stop"),
        Verb::Stop => format!("Stop-Service -Name '{name}' -Force -ErrorAction Stop"),
    };
    vec![
        "powershell.exe".into(),
        "-NoProfile".into(),
        "-NonInteractive".into(),
        "-Command".into(),
        script,
    ]
}

pub(crate) async fn run(a: &UnitAction, verb: Verb, dry_run: bool, timeout: Duration) -> Outcome {
    let start = Instant::now();
    let unit = unit_name(&a.unit);
    let windows =
        a.manager == ManagerKind::Windows || (a.manager == ManagerKind::Auto && cfg!(windows));
    if windows {
        let plan = windows_plan(a, verb);
        if dry_run {
            return plan_outcome(start, "dry run: would run", &plan);
        }
        if !cfg!(windows) {
            return Outcome {
                ok: false,
                summary: format!(
                    "{} {}: manager \"windows\" is not available on this platform",
                    verb.as_str(),
                    a.unit
                ),
                output: String::new(),
                took: start.elapsed(),
            };
        }
        let f = run_command(&CommandPlan::argv(plan), timeout).await;
        return command_outcome(
            start,
            verb,
            service_name(&a.unit),
            "powershell",
            &f,
            timeout,
        );
    }
    if a.manager == ManagerKind::Sysv {
        let plan = sysv_plan(a, verb);
        if dry_run {
            return plan_outcome(start, "dry run: would run", &plan);
        }
        let f = run_command(&CommandPlan::argv(plan), timeout).await;
        return command_outcome(start, verb, service_name(&a.unit), "service", &f, timeout);
    }
    if dry_run {
        let with = if a.with_dependencies {
            " with its Requires=/BindsTo= services"
        } else {
            ""
        };
        let bus = match a.bus {
            BusKind::System => "system",
            BusKind::User => "user",
        };
        return Outcome {
            ok: true,
            summary: format!(
                "dry run: would {} {unit}{with} (systemd, {bus} bus)",
                verb.as_str()
            ),
            output: String::new(),
            took: start.elapsed(),
        };
    }
    #[cfg(unix)]
    let no_bus = match crate::systemd::run(a, verb, timeout).await {
        Ok(mut out) => {
            out.took = start.elapsed();
            return out;
        }
        Err(e) => e,
    };
    #[cfg(not(unix))]
    let no_bus = String::from("D-Bus is not available on this platform");
    if a.bus_address.is_some() {
        return Outcome {
            ok: false,
            summary: format!("{} {unit}: {no_bus}", verb.as_str()),
            output: String::new(),
            took: start.elapsed(),
        };
    }
    let left = timeout.saturating_sub(start.elapsed());
    let f = run_command(&CommandPlan::argv(systemctl_plan(a, verb)), left).await;
    if f.not_found() && a.manager == ManagerKind::Auto {
        let f = run_command(&CommandPlan::argv(sysv_plan(a, verb)), left).await;
        let mut out = command_outcome(start, verb, service_name(&a.unit), "service", &f, timeout);
        out.summary.push_str(&format!(
            " (no D-Bus: {}; no systemctl)",
            one_line(&no_bus, 120)
        ));
        return out;
    }
    let mut out = command_outcome(start, verb, &unit, "systemctl", &f, timeout);
    out.summary
        .push_str(&format!(" (no D-Bus: {})", one_line(&no_bus, 120)));
    out
}

fn plan_outcome(start: Instant, what: &str, plan: &[String]) -> Outcome {
    Outcome {
        ok: true,
        summary: format!("{what} {}", crate::exec::shell_words(plan)),
        output: String::new(),
        took: start.elapsed(),
    }
}

fn command_outcome(
    start: Instant,
    verb: Verb,
    name: &str,
    tool: &str,
    f: &Finished,
    timeout: Duration,
) -> Outcome {
    let summary = if f.success() {
        format!("{} {name} (via {tool})", verb.past())
    } else {
        let mut s = format!(
            "{} {name} via {tool}: {}",
            verb.as_str(),
            f.describe(timeout)
        );
        if let Some(h) = f.hint() {
            s.push_str(": ");
            s.push_str(&one_line(h, 200));
        }
        s
    };
    Outcome {
        ok: f.success(),
        summary,
        output: f.output(),
        took: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(unit: &str) -> UnitAction {
        UnitAction {
            unit: unit.into(),
            manager: ManagerKind::Auto,
            bus: BusKind::System,
            bus_address: None,
            with_dependencies: false,
            timeout: None,
        }
    }

    #[test]
    fn bare_names_become_services() {
        assert_eq!(unit_name("nginx"), "nginx.service");
        assert_eq!(unit_name("nginx.socket"), "nginx.socket");
        assert_eq!(service_name("nginx.service"), "nginx");
        assert_eq!(service_name("W3SVC"), "W3SVC");
    }

    #[test]
    fn unit_names_are_checked_like_systemd_does() {
        assert_eq!(check_unit_name("getty@tty1.service"), Ok(()));
        assert_eq!(check_unit_name("nginx"), Ok(()));
        assert_eq!(
            check_unit_name("ng inx"),
            Err("unit: \"ng inx\" has ' '; a unit name has letters, digits and :-_.\\@".into())
        );
        assert!(check_unit_name("nginx.conf")
            .unwrap_err()
            .contains("ends in .conf"));
        assert_eq!(check_unit_name(""), Err("unit: must name a unit".into()));
        assert!(check_unit_name(".service").unwrap_err().contains("no name"));
    }

    #[test]
    fn validation_of_keys_that_do_not_fit_the_verb_or_manager() {
        let mut a = action("nginx");
        a.with_dependencies = true;
        a.timeout = Some("eventually".into());
        let mut p = Vec::new();
        validate(&a, Verb::Stop, &mut p);
        assert_eq!(
            p[0],
            "with_dependencies: only for type = \"restart\", not \"stop\""
        );
        assert!(p[1].starts_with("timeout: "));
        let mut p = Vec::new();
        a.manager = ManagerKind::Sysv;
        a.timeout = None;
        validate(&a, Verb::Restart, &mut p);
        assert_eq!(
            p,
            ["with_dependencies: needs systemd, not manager = \"sysv\""]
        );
    }

    #[test]
    fn command_plans() {
        let mut a = action("nginx");
        assert_eq!(
            systemctl_plan(&a, Verb::Restart),
            ["systemctl", "restart", "nginx.service"]
        );
        assert_eq!(sysv_plan(&a, Verb::Stop), ["service", "nginx", "stop"]);
        a.bus = BusKind::User;
        assert_eq!(
            systemctl_plan(&a, Verb::Start),
            ["systemctl", "--user", "start", "nginx.service"]
        );
    }

    #[test]
    fn windows_plans_use_the_waiting_cmdlets() {
        let mut a = action("W3SVC");
        a.manager = ManagerKind::Windows;
        let head = [
            "powershell.exe",
            "-NoProfile",
            "-NonInteractive",
            "-Command",
        ];
        let plan = windows_plan(&a, Verb::Restart);
        assert_eq!(plan[..4], head);
        assert_eq!(
            plan[4],
            "Restart-Service -Name 'W3SVC' -Force -ErrorAction Stop"
        );
        assert_eq!(
            windows_plan(&a, Verb::Start)[4],
            "Start-Service -Name 'W3SVC' -ErrorAction Stop"
        );
        assert_eq!(
            windows_plan(&a, Verb::Stop)[4],
            "Stop-Service -Name 'W3SVC' -Force -ErrorAction Stop"
        );
        a.unit = "it's.service".into();
        assert_eq!(
            windows_plan(&a, Verb::Stop)[4],
            "Stop-Service -Name 'it''s' -Force -ErrorAction Stop"
        );
    }

    #[tokio::test]
    async fn dry_runs_say_what_they_would_do() {
        let mut a = action("nginx");
        let o = run(&a, Verb::Restart, true, Duration::from_secs(1)).await;
        assert!(o.ok);
        assert_eq!(
            o.summary,
            "dry run: would restart nginx.service (systemd, system bus)"
        );
        a.manager = ManagerKind::Windows;
        let o = run(&a, Verb::Restart, true, Duration::from_secs(1)).await;
        assert!(
            o.summary
                .starts_with("dry run: would run powershell.exe -NoProfile"),
            "{}",
            o.summary
        );
        a.manager = ManagerKind::Sysv;
        let o = run(&a, Verb::Stop, true, Duration::from_secs(1)).await;
        assert_eq!(o.summary, "dry run: would run service nginx stop");
    }

    #[cfg(not(windows))]
    #[tokio::test]
    async fn windows_manager_elsewhere_says_not_available() {
        let mut a = action("W3SVC");
        a.manager = ManagerKind::Windows;
        let o = run(&a, Verb::Restart, false, Duration::from_secs(1)).await;
        assert!(!o.ok);
        assert_eq!(
            o.summary,
            "restart W3SVC: manager \"windows\" is not available on this platform"
        );
    }
}
