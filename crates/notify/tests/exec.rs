#![cfg(unix)]
//! `exec`: a real script written to a temp dir records its stdin and environment; exit codes,
//! stderr, timeouts and output caps.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{grouped, notifier, single};
use portwarden_notify::{Kind, Notification};
use serde_json::json;

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[tokio::test]
async fn exec_gets_the_notification_on_stdin_and_portwarden_variables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let s = script(
        dir.path(),
        "record.sh",
        &format!(
            "cat > {o}.json\nenv | grep -E '^(PORTWARDEN_|TEAM=)' | sort > {o}.env\necho \"queued $1\"",
            o = out.display()
        ),
    );
    let n = notifier(
        json!({"type": "exec", "command": [s.display().to_string(), "ticket-7"],
                            "env": {"TEAM": "ops"}}),
    );
    let sent = single(Kind::Down, "web");
    let d = n.send(&sent).await.expect("delivered");
    assert_eq!(d.response, "queued ticket-7");
    let stdin: Notification =
        serde_json::from_slice(&std::fs::read(out.with_extension("json")).expect("stdin"))
            .expect("json");
    assert_eq!(stdin, sent);
    let env = std::fs::read_to_string(out.with_extension("env")).expect("env");
    for line in [
        "PORTWARDEN_KIND=down",
        "PORTWARDEN_HOST=db1",
        "PORTWARDEN_SUBJECT=web",
        "PORTWARDEN_STATUS=down",
        "PORTWARDEN_MESSAGE=connection refused",
        "PORTWARDEN_SUMMARY=web on db1 is DOWN: refused",
        "PORTWARDEN_TARGET=127.0.0.1:8080",
        "PORTWARDEN_REASON=refused",
        "PORTWARDEN_INCIDENT=db1/web",
        "PORTWARDEN_ITEMS=1",
        "PORTWARDEN_NOTIFICATION_ID=db1-web-down",
        "TEAM=ops",
    ] {
        assert!(
            env.lines().any(|l| l == line),
            "{line:?} missing from:\n{env}"
        );
    }
}

#[tokio::test]
async fn exec_grouped_variables_list_every_item() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = script(
        dir.path(),
        "env.sh",
        "echo \"$PORTWARDEN_ITEMS|$PORTWARDEN_SUBJECT|$PORTWARDEN_STATUS|$PORTWARDEN_MESSAGE\"",
    );
    let d = notifier(json!({"type": "exec", "command": [s.display().to_string()]}))
        .send(&grouped(2, 1))
        .await
        .expect("delivered");
    assert_eq!(
        d.response,
        "3|svc0,svc1,ok0|down,down,ok|3 monitors on db1 changed: 2 DOWN, 1 UP"
    );
}

#[tokio::test]
async fn exec_nonzero_exit_is_an_error_with_the_first_stderr_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = script(
        dir.path(),
        "fail.sh",
        "echo 'pager API said 503' >&2\necho more >&2\nexit 3",
    );
    let e = notifier(json!({"type": "exec", "command": [s.display().to_string()]}))
        .send(&single(Kind::Down, "web"))
        .await
        .unwrap_err();
    assert_eq!(
        e.message,
        format!("exec: {} exited with 3: pager API said 503", s.display())
    );
    assert!(e.retryable);
    let s = script(dir.path(), "usage.sh", "echo 'bad config' >&2\nexit 78");
    let e = notifier(json!({"type": "exec", "command": [s.display().to_string()]}))
        .send(&single(Kind::Down, "web"))
        .await
        .unwrap_err();
    assert!(!e.retryable, "EX_CONFIG is permanent: {e:?}");
}

#[tokio::test]
async fn exec_timeout_kills_the_script_and_its_children() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("child.pid");
    let s = script(
        dir.path(),
        "sleep.sh",
        &format!("sleep 30 &\necho $! > {}\nwait", pidfile.display()),
    );
    let n =
        notifier(json!({"type": "exec", "command": [s.display().to_string()], "timeout": "500ms"}));
    let t = Instant::now();
    let e = n.send(&single(Kind::Down, "web")).await.unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    assert!(e.retryable);
    assert_eq!(
        e.message,
        format!("exec: {} did not finish within 500ms; killed", s.display())
    );
    let pid = std::fs::read_to_string(&pidfile)
        .expect("pid")
        .trim()
        .to_string();
    // The background sleep was in the script's process group: gone (or a zombie being reaped).
    let mut gone = false;
    for _ in 0..50 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.is_empty() || stat.contains(") Z ") {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "child {pid} still running");
}

#[tokio::test]
async fn exec_missing_program_is_permanent_and_output_is_capped() {
    let e = notifier(json!({"type": "exec", "command": ["/nonexistent/portwarden-hook"]}))
        .send(&single(Kind::Down, "web"))
        .await
        .unwrap_err();
    assert!(!e.retryable);
    assert!(
        e.message
            .starts_with("exec: cannot start /nonexistent/portwarden-hook: "),
        "{e:?}"
    );

    // A flood of output, binary junk and a program that ignores stdin: no hang, no panic.
    let dir = tempfile::tempdir().expect("tempdir");
    let s = script(
        dir.path(),
        "flood.sh",
        "head -c 5000000 /dev/zero | tr '\\0' 'x'\nprintf '\\377\\376' >&2\nexit 1",
    );
    let e = notifier(json!({"type": "exec", "command": [s.display().to_string()]}))
        .send(&grouped(300, 0))
        .await
        .unwrap_err();
    assert!(
        e.message.ends_with("exited with 1: \u{fffd}\u{fffd}"),
        "{e:?}"
    );
}

#[tokio::test]
async fn exec_silent_success_says_exit_0() {
    let d = notifier(json!({"type": "exec", "command": ["/bin/true"]}))
        .send(&single(Kind::Up, "web"))
        .await
        .expect("delivered");
    assert_eq!(d.response, "exit 0");
}
