//! `exec` with real scripts written to a temporary directory.
#![expect(
    clippy::unwrap_used,
    reason = "a test file: its helpers outside #[test] may unwrap too (STYLE.md)"
)]
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use portwarden_act::{run, ActionSpec, Context, ExecAction};

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn exec(argv: &[&str], timeout: Option<&str>) -> ActionSpec {
    ActionSpec::Exec(ExecAction {
        command: argv.iter().map(|s| s.to_string()).collect(),
        timeout: timeout.map(String::from),
        env: [("EXTRA".to_string(), "yes".to_string())].into(),
        ..ExecAction::default()
    })
}

fn cx(dir: &Path) -> Context {
    Context {
        monitor: "web".into(),
        target: "127.0.0.1:8080".into(),
        reason: "refused".into(),
        message: "connection refused".into(),
        dry_run: false,
        state_dir: dir.into(),
    }
}

#[tokio::test]
async fn a_script_gets_argv_and_environment_and_exit_0_is_ok() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "fix",
        r#"echo "args=$1|$2"
echo "mon=$PORTWARDEN_MONITOR target=$PORTWARDEN_TARGET reason=$PORTWARDEN_REASON"
echo "msg=$PORTWARDEN_MESSAGE dry=$PORTWARDEN_DRY_RUN extra=$EXTRA""#,
    );
    let o = run(
        &exec(&[s.to_str().unwrap(), "a b", "c"], None),
        &cx(dir.path()),
    )
    .await;
    assert!(o.ok, "{o:?}");
    assert_eq!(o.summary, format!("exec {}: exit 0", s.display()));
    assert_eq!(
        o.output,
        "args=a b|c\nmon=web target=127.0.0.1:8080 reason=refused\nmsg=connection refused dry=0 extra=yes\n"
    );
}

#[tokio::test]
async fn exit_1_is_not_ok_and_names_the_stderr_line() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "fail",
        "echo working\necho 'nginx: config test failed' >&2\nexit 1",
    );
    let o = run(&exec(&[s.to_str().unwrap()], None), &cx(dir.path())).await;
    assert!(!o.ok);
    assert_eq!(
        o.summary,
        format!("exec {}: exit 1: nginx: config test failed", s.display())
    );
    assert_eq!(o.output, "working\nnginx: config test failed\n");
}

#[tokio::test]
async fn timeout_kills_the_script_and_the_child_it_spawned() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let s = script(
        dir.path(),
        "hang",
        &format!(
            "sleep 300 &\necho $! > {}\necho started\nwait",
            pidfile.display()
        ),
    );
    let start = Instant::now();
    let o = run(&exec(&[s.to_str().unwrap()], Some("1s")), &cx(dir.path())).await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(!o.ok);
    assert!(
        o.summary
            .contains("timed out after 1s, process group killed"),
        "{}",
        o.summary
    );
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    // The killed child is gone (or a zombie of init's about to be reaped).
    let mut gone = false;
    for _ in 0..50 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.is_empty() || stat.contains(") Z ") {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone, "sleep {pid} survived the timeout");
}

#[tokio::test]
async fn dry_run_does_not_run_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let s = script(dir.path(), "touch", &format!("touch {}", marker.display()));
    let mut c = cx(dir.path());
    c.dry_run = true;
    let o = run(&exec(&[s.to_str().unwrap(), "x y"], None), &c).await;
    assert!(o.ok);
    assert_eq!(
        o.summary,
        format!("dry run: would exec {} 'x y'", s.display())
    );
    assert!(!marker.exists());
}

#[tokio::test]
async fn a_bare_name_is_found_on_path_and_cwd_applies() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ActionSpec::Exec(ExecAction {
        command: vec!["pwd".into()],
        cwd: Some(dir.path().into()),
        ..ExecAction::default()
    });
    let o = run(&spec, &cx(dir.path())).await;
    assert!(o.ok, "{o:?}");
    assert_eq!(
        o.output.trim(),
        dir.path().canonicalize().unwrap().to_str().unwrap()
    );
}

#[tokio::test]
async fn a_missing_program_says_it_cannot_start() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&exec(&["/nonexistent/pw-fix"], None), &cx(dir.path())).await;
    assert!(!o.ok);
    assert!(
        o.summary
            .starts_with("exec /nonexistent/pw-fix: cannot start: No such file"),
        "{}",
        o.summary
    );
}

#[tokio::test]
async fn user_switch_runs_as_that_user_when_root() {
    if !nix_is_root() {
        eprintln!("SKIPPED: not root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = ActionSpec::Exec(ExecAction {
        command: vec!["/usr/bin/id".into(), "-u".into()],
        user: Some("nobody".into()),
        ..ExecAction::default()
    });
    let o = run(&spec, &cx(dir.path())).await;
    assert!(o.ok, "{o:?}");
    assert_ne!(o.output.trim(), "0");
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

/// The shipped unit, read from the repository.
fn shipped_unit() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../packaging/portwarden.service"
    ))
    .unwrap()
}

/// The unit's `CapabilityBoundingSet=` (every such line, as systemd merges them).
fn unit_bounding_set() -> Vec<String> {
    shipped_unit()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("CapabilityBoundingSet="))
        .flat_map(|v| v.split_whitespace().map(str::to_string))
        .collect()
}

/// Issue 13: the documented `user = "nobody"` failed under the shipped unit with `cannot
/// start: Operation not permitted`, its bounding set lacking what the switch needs.
#[test]
fn the_shipped_unit_grants_what_user_and_group_need() {
    let set = unit_bounding_set();
    for cap in portwarden_act::exec::SWITCH_CAPABILITIES {
        assert!(
            set.iter().any(|c| c == cap),
            "packaging/portwarden.service: CapabilityBoundingSet lacks {cap}: {set:?}"
        );
    }
    // Still hardened: the sandbox the docs describe.
    let unit = shipped_unit();
    for line in [
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/portwarden",
        "NoNewPrivileges=yes",
        "AmbientCapabilities=",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} is gone");
    }
}

#[test]
fn the_shipped_unit_passes_systemd_analyze_verify() {
    let have = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is missing (scripts/install-test-deps installs systemd)"
        );
        eprintln!("SKIPPED: systemd-analyze is not installed");
        return;
    }
    // The binary is not installed here: the same unit with a program that exists.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("portwarden.service");
    let text: String = shipped_unit()
        .lines()
        .map(|l| {
            if l.starts_with("ExecStart=") {
                "ExecStart=/bin/true run".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&unit, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}

/// Run only by `user_switch_under_the_units_bounding_set`, inside `setpriv`: one `exec` as
/// `nobody`, its outcome on stdout.
#[tokio::test]
#[ignore = "a child of user_switch_under_the_units_bounding_set"]
async fn child_exec_as_nobody() {
    if std::env::var_os("PW_ACT_CHILD").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = ActionSpec::Exec(ExecAction {
        command: vec!["/usr/bin/id".into(), "-u".into()],
        user: Some("nobody".into()),
        ..ExecAction::default()
    });
    let o = run(&spec, &cx(dir.path())).await;
    println!("OUTCOME ok={} summary={}", o.ok, o.summary);
}

/// This test binary's `child_exec_as_nobody` as root limited to `caps` (setpriv's bounding
/// set, as the unit's `CapabilityBoundingSet` limits the daemon): its OUTCOME line.
fn exec_as_nobody_with_bounding_set(caps: &[String]) -> String {
    let set: Vec<String> = caps
        .iter()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    let out = Command::new("setpriv")
        .arg(format!("--bounding-set=-all,{}", set.join(",")))
        .arg("--")
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_exec_as_nobody",
            "--ignored",
            "--nocapture",
        ])
        .env("PW_ACT_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find(|l| l.starts_with("OUTCOME "))
        .unwrap_or_else(|| panic!("no outcome: {out:?}"))
        .to_string()
}

/// The unit's bounding set, applied for real (without systemd: setpriv limits root the same
/// way): `user = "nobody"` runs; without CAP_SETUID/CAP_SETGID (the unit before issue 13)
/// the action fails naming them.
#[test]
fn user_switch_under_the_units_bounding_set() {
    if !nix_is_root() {
        eprintln!("SKIPPED: not root");
        return;
    }
    let have = Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "setpriv (util-linux) is missing"
        );
        eprintln!("SKIPPED: setpriv is not installed");
        return;
    }
    let unit = unit_bounding_set();
    let granted = exec_as_nobody_with_bounding_set(&unit);
    assert!(granted.starts_with("OUTCOME ok=true"), "{granted}");

    let without: Vec<String> = unit
        .into_iter()
        .filter(|c| !portwarden_act::exec::SWITCH_CAPABILITIES.contains(&c.as_str()))
        .collect();
    let refused = exec_as_nobody_with_bounding_set(&without);
    assert_eq!(
        refused,
        "OUTCOME ok=false summary=exec /usr/bin/id -u: user/group: the daemon runs as root \
         without CAP_SETUID and CAP_SETGID (needed to switch user and group; a systemd unit \
         grants them in CapabilityBoundingSet=)"
    );
}
