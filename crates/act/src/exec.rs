//! `type = "exec"`: runs a program of yours, without a shell, once, bounded.
//!
//! | key | type | default | meaning |
//! |---|---|---|---|
//! | `command` | array of strings | required | program and arguments; the program is an absolute path or a bare name looked up on `PATH` when it runs (`./fix`, `bin/fix` are refused: they would depend on the daemon's working directory) |
//! | `cwd` | absolute path | the daemon's | working directory |
//! | `env` | table of strings | `{}` | extra environment, on top of the daemon's |
//! | `user` | name or uid | the daemon's | run as this user (unix; the daemon must run as root, unless it is that user already); its primary group unless `group` is set |
//! | `group` | name or gid | the user's primary group | run with this group (unix, root) |
//! | `timeout` | duration | `"60s"` | on expiry the program's whole process group is killed (SIGKILL) |
//!
//! The program also gets `PORTWARDEN_MONITOR`, `PORTWARDEN_TARGET` (`host:port`),
//! `PORTWARDEN_REASON` (`refused`, `timeout`, …), `PORTWARDEN_MESSAGE` and
//! `PORTWARDEN_DRY_RUN` (`0`; in a dry run the program is not run at all and the summary says
//! what would run). stdin is `/dev/null`; stdout and stderr are captured (16 KiB in all).
//! Exit 0 is success; otherwise the summary carries the exit code and the last stderr line.
//! Processes the program leaves running in the background are not killed when it exits (a
//! fix may start a daemon by hand); their output after that is not captured.
//!
//! Switching to `user`/`group` takes `setgroups`, `setgid` and `setuid` in the child, so a
//! daemon running as root still needs [`SWITCH_CAPABILITIES`] (a systemd unit's
//! `CapabilityBoundingSet` can take them away from root); without them the action fails
//! before starting anything, naming the missing capability.

/// The capabilities `user`/`group` need: `CAP_SETUID` for `setuid`, `CAP_SETGID` for
/// `setgid` and for `setgroups` (which drops root's supplementary groups before `setuid`).
/// `packaging/portwarden.service` grants them (a test keeps the two in step).
pub const SWITCH_CAPABILITIES: [&str; 2] = ["CAP_SETUID", "CAP_SETGID"];

/// Of `needed` (names as in [`SWITCH_CAPABILITIES`]), those missing from the effective set
/// in `status` (the text of `/proc/self/status`, its `CapEff:` line). An unreadable set
/// counts as complete: the kernel's own error then speaks.
pub fn missing_capabilities<'a>(status: &str, needed: &[&'a str]) -> Vec<&'a str> {
    let Some(effective) = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
    else {
        return Vec::new();
    };
    needed
        .iter()
        .filter(|name| {
            // Numbers from linux/capability.h.
            let bit = match **name {
                "CAP_SETGID" => 6,
                "CAP_SETUID" => 7,
                _ => return false,
            };
            effective & (1 << bit) == 0
        })
        .copied()
        .collect()
}

use std::time::Instant;

use crate::runner::{run_command, CommandPlan};
use crate::spec::{parse_duration, ExecAction};
use crate::{Context, Outcome};

/// Checks `exec` keys; `user`/`group` names are looked up in the local user database.
pub(crate) fn validate(a: &ExecAction, problems: &mut Vec<String>) {
    match a.command.first() {
        None => problems.push("command: must name a program".into()),
        Some(p) if p.is_empty() => problems.push("command: the program is empty".into()),
        Some(p) if !is_absolute(p) && p.contains(['/', '\\']) => problems.push(format!(
            "command: {p:?} is a relative path; give an absolute path or a bare name found on PATH"
        )),
        Some(_) => {}
    }
    if let Some(cwd) = &a.cwd {
        if !is_absolute(&cwd.to_string_lossy()) {
            problems.push(format!("cwd: {} must be an absolute path", cwd.display()));
        }
    }
    for k in a.env.keys() {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            problems.push(format!("env: {k:?} is not a variable name"));
        }
    }
    if let Some(t) = &a.timeout {
        if let Err(e) = parse_duration(t) {
            problems.push(format!("timeout: {e}"));
        }
    }
    if let Err(e) = ids::resolve(a.user.as_deref(), a.group.as_deref()) {
        problems.push(e);
    }
}

fn is_absolute(p: &str) -> bool {
    std::path::Path::new(p).is_absolute() || p.starts_with('/')
}

/// The environment every exec gets.
pub(crate) fn portwarden_env(cx: &Context) -> [(&'static str, String); 5] {
    [
        ("PORTWARDEN_MONITOR", cx.monitor.clone()),
        ("PORTWARDEN_TARGET", cx.target.clone()),
        ("PORTWARDEN_REASON", cx.reason.clone()),
        ("PORTWARDEN_MESSAGE", cx.message.clone()),
        (
            "PORTWARDEN_DRY_RUN",
            if cx.dry_run { "1" } else { "0" }.into(),
        ),
    ]
}

pub(crate) async fn run(a: &ExecAction, cx: &Context, timeout: std::time::Duration) -> Outcome {
    let start = Instant::now();
    let shown = shell_words(&a.command);
    let done = |ok: bool, summary: String, output: String| Outcome {
        ok,
        summary,
        output,
        took: start.elapsed(),
    };
    if a.command.is_empty() {
        return done(false, "exec: no command".into(), String::new());
    }
    if cx.dry_run {
        return done(true, format!("dry run: would exec {shown}"), String::new());
    }
    let (uid, gid) = match ids::resolve(a.user.as_deref(), a.group.as_deref()) {
        Ok(ids) => ids,
        Err(e) => return done(false, format!("exec {shown}: {e}"), String::new()),
    };
    if let Err(e) = ids::may_switch(uid, gid) {
        return done(false, format!("exec {shown}: {e}"), String::new());
    }
    let mut plan = CommandPlan {
        argv: a.command.clone(),
        cwd: a.cwd.clone(),
        uid,
        gid,
        ..CommandPlan::default()
    };
    for (k, v) in portwarden_env(cx) {
        plan.env.insert(k.into(), v);
    }
    plan.env
        .extend(a.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let f = run_command(&plan, timeout).await;
    let mut summary = format!("exec {}: {}", a.command[0], f.describe(timeout));
    if f.success() {
        summary = format!("exec {}: exit 0", a.command[0]);
    } else if let Some(h) = f.hint() {
        summary.push_str(": ");
        summary.push_str(&one_line(h, 200));
    }
    done(f.success(), summary, f.output())
}

/// Cuts a line for a summary.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let s = s.replace(['\r', '\n'], " ");
    if s.chars().count() <= max {
        return s;
    }
    let mut t: String = s.chars().take(max).collect();
    t.push('…');
    t
}

/// The argv as a person would type it, for messages.
pub(crate) fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(unix)]
mod ids {
    use nix::unistd::{Gid, Group, Uid, User};

    /// Names or numbers to ids; `user` alone brings its primary group.
    pub fn resolve(
        user: Option<&str>,
        group: Option<&str>,
    ) -> Result<(Option<u32>, Option<u32>), String> {
        let mut uid = None;
        let mut gid = None;
        if let Some(u) = user {
            let found = match u.parse::<u32>() {
                Ok(n) => User::from_uid(Uid::from_raw(n)),
                Err(_) => User::from_name(u),
            };
            match found {
                Ok(Some(pw)) => {
                    uid = Some(pw.uid.as_raw());
                    gid = Some(pw.gid.as_raw());
                }
                Ok(None) if u.parse::<u32>().is_ok() => uid = u.parse::<u32>().ok(),
                Ok(None) => return Err(format!("user: no user named {u:?}")),
                Err(e) => return Err(format!("user: cannot look up {u:?}: {e}")),
            }
        }
        if let Some(g) = group {
            let found = match g.parse::<u32>() {
                Ok(n) => Group::from_gid(Gid::from_raw(n)),
                Err(_) => Group::from_name(g),
            };
            match found {
                Ok(Some(gr)) => gid = Some(gr.gid.as_raw()),
                Ok(None) if g.parse::<u32>().is_ok() => gid = g.parse::<u32>().ok(),
                Ok(None) => return Err(format!("group: no group named {g:?}")),
                Err(e) => return Err(format!("group: cannot look up {g:?}: {e}")),
            }
        }
        Ok((uid, gid))
    }

    /// Switching identity needs root, unless the ids are ours already.
    pub fn may_switch(uid: Option<u32>, gid: Option<u32>) -> Result<(), String> {
        let euid = Uid::effective().as_raw();
        let egid = Gid::effective().as_raw();
        let same = uid.is_none_or(|u| u == euid) && gid.is_none_or(|g| g == egid);
        if same {
            return Ok(());
        }
        if euid != 0 {
            return Err("user/group need the daemon to run as root".into());
        }
        // Root may still lack them: a unit's CapabilityBoundingSet, a container.
        let needed: &[&str] = if uid.is_some_and(|u| u != euid) {
            &super::SWITCH_CAPABILITIES
        } else {
            &["CAP_SETGID"]
        };
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let missing = super::missing_capabilities(&status, needed);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "user/group: the daemon runs as root without {} (needed to switch user and \
                 group; a systemd unit grants them in CapabilityBoundingSet=)",
                missing.join(" and ")
            ))
        }
    }
}

#[cfg(not(unix))]
mod ids {
    pub fn resolve(
        user: Option<&str>,
        group: Option<&str>,
    ) -> Result<(Option<u32>, Option<u32>), String> {
        if user.is_some() || group.is_some() {
            return Err("user/group: not available on this platform".into());
        }
        Ok((None, None))
    }

    pub fn may_switch(_: Option<u32>, _: Option<u32>) -> Result<(), String> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_capabilities_read_the_effective_set() {
        // Root with everything; root under the unit's set before issue 13
        // (DAC_READ_SEARCH, SYS_PTRACE, NET_ADMIN, NET_RAW, KILL); only SETGID.
        let status = |eff: &str| format!("Name:\tportwarden\nCapPrm:\t{eff}\nCapEff:\t{eff}\n");
        assert!(missing_capabilities(&status("000001ffffffffff"), &SWITCH_CAPABILITIES).is_empty());
        assert_eq!(
            missing_capabilities(&status("0000000000083024"), &SWITCH_CAPABILITIES),
            ["CAP_SETUID", "CAP_SETGID"]
        );
        assert_eq!(
            missing_capabilities(&status("0000000000000040"), &SWITCH_CAPABILITIES),
            ["CAP_SETUID"]
        );
        // No readable set: the kernel's own error will speak.
        assert!(missing_capabilities("", &SWITCH_CAPABILITIES).is_empty());
    }

    fn problems(a: &ExecAction) -> Vec<String> {
        let mut p = Vec::new();
        validate(a, &mut p);
        p
    }

    #[test]
    fn validation_names_each_problem() {
        assert_eq!(
            problems(&ExecAction::default()),
            ["command: must name a program"]
        );
        let a = ExecAction {
            command: vec!["bin/fix".into()],
            cwd: Some("rel".into()),
            timeout: Some("soon".into()),
            user: Some("pw-no-such-user".into()),
            ..ExecAction::default()
        };
        let p = problems(&a);
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p[0].contains("relative path"));
        assert_eq!(p[1], "cwd: rel must be an absolute path");
        assert!(p[2].starts_with("timeout: cannot read \"soon\""));
        #[cfg(unix)]
        assert_eq!(p[3], "user: no user named \"pw-no-such-user\"");
        assert!(problems(&ExecAction {
            command: vec!["systemctl".into(), "reload".into()],
            ..ExecAction::default()
        })
        .is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn users_and_groups_resolve_by_name_and_number() {
        assert_eq!(ids::resolve(Some("root"), None), Ok((Some(0), Some(0))));
        assert_eq!(ids::resolve(None, Some("0")), Ok((None, Some(0))));
        assert_eq!(
            ids::resolve(None, Some("pw-no-such-group")),
            Err("group: no group named \"pw-no-such-group\"".into())
        );
    }

    #[test]
    fn shell_words_quote_only_when_needed() {
        let argv: Vec<String> = ["/bin/fix", "a b", "it's", "--x=1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(shell_words(&argv), r"/bin/fix 'a b' 'it'\''s' --x=1");
    }
}
