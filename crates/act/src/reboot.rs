//! `type = "reboot"`: the last resort, behind a guard that is opt-in key by key.
//!
//! | key | type | default | meaning |
//! |---|---|---|---|
//! | `min_uptime` | duration | none | refuse while the machine has been up less than this (`/proc/uptime`); a platform without it refuses when this is set |
//! | `max_per_day` | integer ≥ 1 | no limit | at most this many daemon-initiated reboots in 24 h, counted as distinct boots (`/proc/sys/kernel/random/boot_id`) in `STATE_DIR/reboots.json`, so the count survives the reboots it counts |
//! | `hold_off` | duration | `0` | for the engine: announce, wait this long, reboot unless [`cancelled`]; this crate only parses it |
//! | `dry_run` | bool | `false` | check the guard and say what would happen; nothing is issued or recorded |
//! | `method` | `auto` \| `logind` \| `command` \| `syscall` | `auto` (`command` when `command` is given) | `auto`: logind's `Reboot(false)` on the system bus (orderly, honours inhibitors), else `systemctl reboot`, else `reboot` (Windows: `shutdown.exe /r /t 0`); `syscall`: `sync()` + `reboot(2)` at once, services are not stopped |
//! | `command` | array of strings | none | the program that reboots (argv, no shell) |
//! | `timeout` | duration | `"60s"` | bound of the attempt |
//!
//! One attempt ([`crate::run`]): a dry run (the context's or the key) only evaluates the guard
//! and says `dry run: would reboot via …` or why it would refuse. Otherwise it refuses when the
//! cancel file exists, when the test safety net below trips, or when [`reboot_allowed`] says
//! no; then it records the reboot ([`record_reboot`], *before* issuing it, so a machine that
//! goes down at once is still counted; a failed record means no reboot), then issues it.
//! `ok` means the reboot was issued.
//!
//! The history file keeps `{boot_id, at}` entries; entries older than 24 h are dropped when it
//! is written, a boot id already in it is not added again (a retry within the same boot does
//! not count twice), and a file that cannot be read makes the guard refuse (delete it to
//! reset).
//!
//! Test safety net: with `PORTWARDEN_TEST_NO_HOST_REBOOT=1` in the environment, a real reboot
//! is refused unless `/proc/self/ns/pid` differs from `PORTWARDEN_HOST_PIDNS` (`pid:[N]` or
//! `N`, read on the host, e.g. `readlink /proc/self/ns/pid`); when that variable is missing or
//! unreadable it refuses too.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::exec::shell_words;
use crate::runner::{run_command, CommandPlan};
use crate::spec::{parse_duration, RebootAction, RebootMethod};
use crate::{Context, Outcome};

const DAY: Duration = Duration::from_secs(24 * 3600);
const HISTORY_FILE: &str = "reboots.json";

/// The file whose existence cancels a pending reboot (`portwarden reboot cancel` creates it;
/// the engine removes it with [`clear_cancel`] once the incident is over).
pub fn cancel_file(state_dir: &Path) -> PathBuf {
    state_dir.join("reboot.cancel")
}

/// Whether a pending reboot was cancelled.
pub fn cancelled(state_dir: &Path) -> bool {
    cancel_file(state_dir).exists()
}

/// Removes the cancel file, if any.
pub fn clear_cancel(state_dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(cancel_file(state_dir)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// The file that says a reboot is announced and held off (the engine writes it for the
/// hold-off and removes it after), so `portwarden reboot cancel` can tell "nothing to cancel".
pub fn pending_file(state_dir: &Path) -> PathBuf {
    state_dir.join("reboot.pending")
}

/// A reboot announced and held off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReboot {
    /// The monitor whose healing announced it.
    pub monitor: String,
    /// Unix seconds when the hold-off ends.
    pub until: u64,
}

/// Writes [`pending_file`].
pub fn mark_pending(state_dir: &Path, pending: &PendingReboot) -> std::io::Result<()> {
    let text = serde_json::to_string(pending).map_err(std::io::Error::other)?;
    std::fs::write(pending_file(state_dir), text)
}

/// Removes [`pending_file`], if any.
pub fn clear_pending(state_dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(pending_file(state_dir)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// The reboot pending at `now`: the file's, unless its hold-off ended more than a minute ago
/// (a daemon killed during a hold-off leaves the file behind; its reboot is not pending).
pub fn pending(state_dir: &Path, now: SystemTime) -> Option<PendingReboot> {
    let text = std::fs::read_to_string(pending_file(state_dir)).ok()?;
    let p: PendingReboot = serde_json::from_str(&text).ok()?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    (p.until.saturating_add(60) >= now).then_some(p)
}

/// One daemon-initiated reboot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebootRecord {
    /// `/proc/sys/kernel/random/boot_id` of the boot that was ended.
    pub boot_id: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct History {
    reboots: Vec<RebootRecord>,
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn history_path(state_dir: &Path) -> PathBuf {
    state_dir.join(HISTORY_FILE)
}

fn load(state_dir: &Path) -> Result<History, String> {
    let path = history_path(state_dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "cannot read the reboot history {}: {e} (delete it to reset)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(History::default()),
        Err(e) => Err(format!(
            "cannot read the reboot history {}: {e}",
            path.display()
        )),
    }
}

/// The recorded reboots within 24 h of `now` (entries in the future count too: the clock
/// may have been set back).
pub fn recent_reboots(state_dir: &Path, now: SystemTime) -> Result<Vec<RebootRecord>, String> {
    let cutoff = secs(now).saturating_sub(DAY.as_secs());
    Ok(load(state_dir)?
        .reboots
        .into_iter()
        .filter(|r| r.at > cutoff)
        .collect())
}

/// The guard, pure but for reading the history file: `min_uptime` and `max_per_day`.
pub fn reboot_allowed(
    spec: &RebootAction,
    state_dir: &Path,
    now: SystemTime,
    uptime: Duration,
    boot_id: &str,
) -> Result<(), String> {
    if let Some(t) = &spec.min_uptime {
        let min = parse_duration(t).map_err(|e| format!("min_uptime: {e}"))?;
        if uptime < min {
            return Err(format!(
                "up for {}, less than min_uptime {}",
                humantime::format_duration(Duration::from_secs(uptime.as_secs())),
                humantime::format_duration(min)
            ));
        }
    }
    if let Some(max) = spec.max_per_day {
        let recent = recent_reboots(state_dir, now)?;
        let mut boots: Vec<&str> = recent.iter().map(|r| r.boot_id.as_str()).collect();
        boots.sort_unstable();
        boots.dedup();
        let n = boots.len();
        if n >= max as usize {
            let again = if boots.contains(&boot_id) {
                " (one of them from this boot)"
            } else {
                ""
            };
            return Err(format!(
                "{n} reboot{} in the last 24 h{again}, max_per_day is {max}",
                if n == 1 { "" } else { "s" }
            ));
        }
    }
    Ok(())
}

/// Records a reboot of boot `boot_id` at `now`; call it before issuing the reboot. Drops
/// entries older than 24 h; a boot id already recorded is not added again. Written to a
/// temporary file and renamed, so a crash leaves the old or the new history.
pub fn record_reboot(state_dir: &Path, now: SystemTime, boot_id: &str) -> Result<(), String> {
    let mut h = load(state_dir)?;
    let cutoff = secs(now).saturating_sub(DAY.as_secs());
    h.reboots.retain(|r| r.at > cutoff);
    if !h.reboots.iter().any(|r| r.boot_id == boot_id) {
        h.reboots.push(RebootRecord {
            boot_id: boot_id.to_string(),
            at: secs(now),
        });
    }
    let path = history_path(state_dir);
    let tmp = state_dir.join(format!(".{HISTORY_FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(state_dir)?;
        let bytes = serde_json::to_vec_pretty(&h).map_err(std::io::Error::other)?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| format!("cannot record the reboot in {}: {e}", path.display()))
}

/// Seconds since boot from `/proc/uptime`.
pub fn current_uptime() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    let first = text.split_whitespace().next()?;
    first.parse::<f64>().ok().map(Duration::from_secs_f64)
}

/// `/proc/sys/kernel/random/boot_id`, or `unknown`.
pub fn current_boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The test safety net, decided from its inputs: the flag (`PORTWARDEN_TEST_NO_HOST_REBOOT`),
/// the host's PID namespace (`PORTWARDEN_HOST_PIDNS`) and ours (`readlink /proc/self/ns/pid`).
/// `Some(reason)` means refuse.
pub fn host_reboot_refusal(
    flag: Option<&str>,
    host: Option<&str>,
    own: Option<&str>,
) -> Option<String> {
    if flag.map(str::trim) != Some("1") {
        return None;
    }
    let inode = |s: &str| -> Option<u64> {
        let s = s.trim();
        let s = s
            .strip_prefix("pid:[")
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(s);
        s.parse().ok()
    };
    let Some(host) = host.and_then(inode) else {
        return Some(
            "PORTWARDEN_TEST_NO_HOST_REBOOT=1 and PORTWARDEN_HOST_PIDNS is missing or unreadable"
                .into(),
        );
    };
    match own.and_then(inode) {
        None => Some("PORTWARDEN_TEST_NO_HOST_REBOOT=1 and /proc/self/ns/pid is unreadable".into()),
        Some(own) if own == host => Some(format!(
            "PORTWARDEN_TEST_NO_HOST_REBOOT=1 and this is the host's PID namespace (pid:[{own}])"
        )),
        Some(_) => None,
    }
}

fn env_refusal() -> Option<String> {
    let flag = std::env::var("PORTWARDEN_TEST_NO_HOST_REBOOT").ok();
    let host = std::env::var("PORTWARDEN_HOST_PIDNS").ok();
    let own = std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    host_reboot_refusal(flag.as_deref(), host.as_deref(), own.as_deref())
}

/// How the reboot would be issued, for messages.
pub fn describe_method(spec: &RebootAction) -> String {
    match spec.effective_method() {
        RebootMethod::Auto if cfg!(windows) => "shutdown.exe /r /t 0".into(),
        RebootMethod::Auto => "logind Reboot(false), else systemctl reboot, else reboot".into(),
        RebootMethod::Logind => "logind Reboot(false)".into(),
        RebootMethod::Command => shell_words(spec.command.as_deref().unwrap_or_default()),
        RebootMethod::Syscall => "sync + reboot(2)".into(),
    }
}

pub(crate) fn validate(a: &RebootAction, problems: &mut Vec<String>) {
    for (key, v) in [
        ("min_uptime", &a.min_uptime),
        ("hold_off", &a.hold_off),
        ("timeout", &a.timeout),
    ] {
        if let Some(t) = v {
            if let Err(e) = parse_duration(t) {
                problems.push(format!("{key}: {e}"));
            }
        }
    }
    if a.max_per_day == Some(0) {
        problems
            .push("max_per_day: 0 would never allow a reboot; remove the action instead".into());
    }
    match (a.effective_method(), &a.command) {
        (RebootMethod::Command, None) => {
            problems.push("command: method = \"command\" needs a command".into())
        }
        (RebootMethod::Command, Some(c)) if c.first().is_none_or(|p| p.is_empty()) => {
            problems.push("command: must name a program".into())
        }
        (RebootMethod::Command, Some(_)) => {}
        (m, Some(_)) => problems.push(format!(
            "command: only with method = \"command\", not {:?}",
            format!("{m:?}").to_lowercase()
        )),
        (_, None) => {}
    }
}

pub(crate) async fn run(a: &RebootAction, cx: &Context, timeout: Duration) -> Outcome {
    let start = Instant::now();
    let done = |ok: bool, summary: String, output: String| Outcome {
        ok,
        summary,
        output,
        took: start.elapsed(),
    };
    let how = describe_method(a);
    let uptime = current_uptime();
    let guard = match (uptime, &a.min_uptime) {
        (None, Some(_)) => {
            Err("min_uptime is set and the uptime is unknown on this platform".into())
        }
        (u, _) => reboot_allowed(
            a,
            &cx.state_dir,
            SystemTime::now(),
            u.unwrap_or_default(),
            &current_boot_id(),
        ),
    };
    if cx.dry_run || a.dry_run {
        return match guard {
            Ok(()) => done(
                true,
                format!("dry run: would reboot via {how}"),
                String::new(),
            ),
            Err(e) => done(
                false,
                format!("dry run: reboot would be refused: {e}"),
                String::new(),
            ),
        };
    }
    if cancelled(&cx.state_dir) {
        return done(
            false,
            format!(
                "reboot refused: cancelled ({} exists)",
                cancel_file(&cx.state_dir).display()
            ),
            String::new(),
        );
    }
    if let Some(why) = env_refusal() {
        return done(false, format!("reboot refused: {why}"), String::new());
    }
    if let Err(e) = guard {
        return done(false, format!("reboot refused: {e}"), String::new());
    }
    if let Err(e) = record_reboot(&cx.state_dir, SystemTime::now(), &current_boot_id()) {
        return done(false, format!("reboot refused: {e}"), String::new());
    }
    tracing::warn!(target: "act::reboot", monitor = %cx.monitor, "rebooting via {how}");
    let (ok, summary, output) = issue(a, timeout).await;
    done(ok, summary, output)
}

async fn issue(a: &RebootAction, timeout: Duration) -> (bool, String, String) {
    match a.effective_method() {
        RebootMethod::Command => {
            let argv = a.command.clone().unwrap_or_default();
            by_command(argv, timeout).await
        }
        RebootMethod::Syscall => syscall(),
        RebootMethod::Logind => match logind().await {
            Ok(()) => (true, "reboot issued via logind".into(), String::new()),
            Err(e) => (
                false,
                format!("reboot via logind failed: {e}"),
                String::new(),
            ),
        },
        RebootMethod::Auto => {
            if cfg!(windows) {
                return by_command(
                    ["shutdown.exe", "/r", "/t", "0"].map(String::from).to_vec(),
                    timeout,
                )
                .await;
            }
            let why = match logind().await {
                Ok(()) => return (true, "reboot issued via logind".into(), String::new()),
                Err(e) => e,
            };
            let f = run_command(&CommandPlan::argv(["systemctl", "reboot"]), timeout).await;
            if f.success() {
                return (
                    true,
                    format!("reboot issued via systemctl reboot (logind: {why})"),
                    f.output(),
                );
            }
            if !f.not_found() {
                return (
                    false,
                    format!("systemctl reboot: {} (logind: {why})", f.describe(timeout)),
                    f.output(),
                );
            }
            let (ok, s, o) = by_command(vec!["reboot".into()], timeout).await;
            (ok, format!("{s} (logind: {why}; no systemctl)"), o)
        }
    }
}

async fn by_command(argv: Vec<String>, timeout: Duration) -> (bool, String, String) {
    let shown = shell_words(&argv);
    let f = run_command(&CommandPlan::argv(argv), timeout).await;
    if f.success() {
        (true, format!("reboot issued via {shown}"), f.output())
    } else {
        let mut s = format!("reboot via {shown}: {}", f.describe(timeout));
        if let Some(h) = f.hint() {
            s.push_str(": ");
            s.push_str(&crate::exec::one_line(h, 200));
        }
        (false, s, f.output())
    }
}

#[cfg(unix)]
async fn logind() -> Result<(), String> {
    let conn = crate::systemd::connect(crate::spec::BusKind::System, None).await?;
    conn.call_method(
        Some("org.freedesktop.login1"),
        "/org/freedesktop/login1",
        Some("org.freedesktop.login1.Manager"),
        "Reboot",
        &(false,),
    )
    .await
    .map(|_| ())
    .map_err(|e| crate::systemd::dbus_error(&e))
}

#[cfg(not(unix))]
async fn logind() -> Result<(), String> {
    Err("logind is not available on this platform".into())
}

#[cfg(target_os = "linux")]
fn syscall() -> (bool, String, String) {
    use nix::sys::reboot::{reboot, RebootMode};
    nix::unistd::sync();
    match reboot(RebootMode::RB_AUTOBOOT) {
        Ok(never) => match never {},
        Err(e) => (false, format!("reboot(2) failed: {e}"), String::new()),
    }
}

#[cfg(not(target_os = "linux"))]
fn syscall() -> (bool, String, String) {
    (
        false,
        "method \"syscall\" is only available on Linux".into(),
        String::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + h * 3600)
    }

    fn spec(min_uptime: Option<&str>, max: Option<u32>) -> RebootAction {
        RebootAction {
            min_uptime: min_uptime.map(String::from),
            max_per_day: max,
            ..RebootAction::default()
        }
    }

    #[test]
    fn min_uptime_refuses_a_young_machine() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(Some("1h"), None);
        let e = reboot_allowed(&s, dir.path(), at(0), Duration::from_secs(600), "a").unwrap_err();
        assert_eq!(e, "up for 10m, less than min_uptime 1h");
        assert_eq!(
            reboot_allowed(&s, dir.path(), at(0), Duration::from_secs(3600), "a"),
            Ok(())
        );
    }

    #[test]
    fn max_per_day_counts_boots_across_a_simulated_reboot() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(None, Some(2));
        let up = Duration::from_secs(7200);
        assert_eq!(reboot_allowed(&s, dir.path(), at(0), up, "boot-a"), Ok(()));
        record_reboot(dir.path(), at(0), "boot-a").unwrap();
        // Retried within the same boot: not counted twice.
        record_reboot(dir.path(), at(1), "boot-a").unwrap();
        assert_eq!(recent_reboots(dir.path(), at(1)).unwrap().len(), 1);
        assert_eq!(reboot_allowed(&s, dir.path(), at(1), up, "boot-a"), Ok(()));
        // The machine came back with a new boot id and fails again.
        record_reboot(dir.path(), at(2), "boot-b").unwrap();
        let e = reboot_allowed(&s, dir.path(), at(3), up, "boot-c").unwrap_err();
        assert_eq!(e, "2 reboots in the last 24 h, max_per_day is 2");
        let e = reboot_allowed(&s, dir.path(), at(3), up, "boot-b").unwrap_err();
        assert!(
            e.ends_with("(one of them from this boot), max_per_day is 2"),
            "{e}"
        );
        // 24 h after the first, one is left in the window.
        assert_eq!(reboot_allowed(&s, dir.path(), at(24), up, "boot-c"), Ok(()));
        assert_eq!(recent_reboots(dir.path(), at(24)).unwrap().len(), 1);
    }

    #[test]
    fn old_entries_drop_when_written() {
        let dir = tempfile::tempdir().unwrap();
        record_reboot(dir.path(), at(0), "old").unwrap();
        record_reboot(dir.path(), at(30), "new").unwrap();
        let text = std::fs::read_to_string(dir.path().join(HISTORY_FILE)).unwrap();
        assert!(!text.contains("old"), "{text}");
        assert!(text.contains("new"));
    }

    #[test]
    fn a_garbled_history_refuses() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(HISTORY_FILE), "{nope").unwrap();
        let e = reboot_allowed(&spec(None, Some(1)), dir.path(), at(0), DAY, "a").unwrap_err();
        assert!(e.contains("delete it to reset"), "{e}");
        assert!(record_reboot(dir.path(), at(0), "a").is_err());
    }

    #[test]
    fn cancel_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!cancelled(dir.path()));
        std::fs::write(cancel_file(dir.path()), "").unwrap();
        assert!(cancelled(dir.path()));
        clear_cancel(dir.path()).unwrap();
        clear_cancel(dir.path()).unwrap();
        assert!(!cancelled(dir.path()));
    }

    #[test]
    fn a_pending_reboot_is_pending_until_its_hold_off_is_well_over() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(pending(dir.path(), at(0)), None);
        let p = PendingReboot {
            monitor: "web".into(),
            until: 1_700_000_000 + 300,
        };
        mark_pending(dir.path(), &p).unwrap();
        assert_eq!(pending(dir.path(), at(0)), Some(p.clone()));
        // Left behind by a daemon killed during the hold-off: stale after a minute.
        let later = UNIX_EPOCH + Duration::from_secs(p.until + 61);
        assert_eq!(pending(dir.path(), later), None);
        clear_pending(dir.path()).unwrap();
        clear_pending(dir.path()).unwrap();
        assert!(!pending_file(dir.path()).exists());
    }

    #[test]
    fn the_test_safety_net() {
        assert_eq!(host_reboot_refusal(None, None, Some("pid:[1]")), None);
        assert_eq!(host_reboot_refusal(Some("0"), None, Some("pid:[1]")), None);
        assert!(host_reboot_refusal(Some("1"), None, Some("pid:[1]"))
            .unwrap()
            .contains("missing"));
        assert!(host_reboot_refusal(Some("1"), Some("garbage"), Some("pid:[1]")).is_some());
        assert!(host_reboot_refusal(
            Some("1"),
            Some("pid:[4026531836]"),
            Some("pid:[4026531836]")
        )
        .unwrap()
        .contains("host's PID namespace"));
        assert!(
            host_reboot_refusal(Some("1"), Some("4026531836"), Some("pid:[4026531836]")).is_some()
        );
        assert!(host_reboot_refusal(Some("1"), Some("4026531836"), None).is_some());
        assert_eq!(
            host_reboot_refusal(Some("1"), Some("4026531836"), Some("pid:[4026532999]")),
            None
        );
    }

    #[test]
    fn validation() {
        let mut p = Vec::new();
        let a = RebootAction {
            max_per_day: Some(0),
            hold_off: Some("a while".into()),
            method: Some(RebootMethod::Syscall),
            command: Some(vec!["/sbin/reboot".into()]),
            ..RebootAction::default()
        };
        validate(&a, &mut p);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("hold_off: cannot read \"a while\""));
        assert_eq!(
            p[1],
            "max_per_day: 0 would never allow a reboot; remove the action instead"
        );
        assert_eq!(
            p[2],
            "command: only with method = \"command\", not \"syscall\""
        );
    }

    #[tokio::test]
    async fn dry_run_checks_the_guard_and_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cx = Context {
            dry_run: true,
            state_dir: dir.path().into(),
            ..Context::default()
        };
        let a = spec(None, Some(1));
        let o = run(&a, &cx, Duration::from_secs(1)).await;
        assert!(o.ok);
        assert_eq!(
            o.summary,
            "dry run: would reboot via logind Reboot(false), else systemctl reboot, else reboot"
        );
        assert!(!dir.path().join(HISTORY_FILE).exists());
        record_reboot(dir.path(), SystemTime::now(), "x").unwrap();
        let o = run(&a, &cx, Duration::from_secs(1)).await;
        assert!(!o.ok);
        assert_eq!(
            o.summary,
            "dry run: reboot would be refused: 1 reboot in the last 24 h, max_per_day is 1"
        );
        // The key alone makes it a dry run too.
        let a = RebootAction {
            dry_run: true,
            command: Some(vec!["/bin/false".into()]),
            ..RebootAction::default()
        };
        let o = run(
            &a,
            &Context {
                state_dir: dir.path().into(),
                ..Context::default()
            },
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(o.summary, "dry run: would reboot via /bin/false");
    }

    #[tokio::test]
    async fn a_cancelled_reboot_is_refused_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(cancel_file(dir.path()), "").unwrap();
        let marker = dir.path().join("ran");
        let a = RebootAction {
            command: Some(vec!["/usr/bin/touch".into(), marker.display().to_string()]),
            ..RebootAction::default()
        };
        let cx = Context {
            state_dir: dir.path().into(),
            ..Context::default()
        };
        let o = run(&a, &cx, Duration::from_secs(5)).await;
        assert!(!o.ok);
        assert!(
            o.summary.starts_with("reboot refused: cancelled"),
            "{}",
            o.summary
        );
        assert!(!marker.exists());
    }
}
