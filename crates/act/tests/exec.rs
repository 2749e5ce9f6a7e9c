//! `exec` with real scripts written to a temporary directory.
#![allow(clippy::unwrap_used)]
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use act::{run, ActionSpec, Context, ExecAction};

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
