//! The real reboot path, made harmless: `reboot(2)` issued by the init of a private PID
//! namespace (`unshare -p -f --mount-proc`) only ends that namespace. And the safety net: with
//! `PORTWARDEN_TEST_NO_HOST_REBOOT=1`, a reboot in the host's PID namespace is refused.
#![cfg(target_os = "linux")]

use std::path::PathBuf;
use std::process::Command;

/// `target/<profile>/examples/reboot_in_pidns`, built by `cargo test` (examples are built
/// with the tests).
fn helper() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let p = profile_dir.join("examples").join("reboot_in_pidns");
    assert!(
        p.exists(),
        "{} is missing: run `cargo test -p portwarden-act` (builds examples) or `cargo build -p portwarden-act --examples`",
        p.display()
    );
    p
}

fn host_pidns() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .expect("readlink /proc/self/ns/pid")
        .to_string_lossy()
        .into_owned()
}

fn skip_or_fail(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("cannot run the PID-namespace reboot test: {why}");
    }
    eprintln!("\n***** SKIPPED: PID-namespace reboot test: {why} *****\n");
}

#[test]
fn reboot_syscall_in_a_private_pid_namespace_ends_only_that_namespace() {
    let dir = tempfile::tempdir().unwrap();
    // Can we make a PID namespace at all?
    match Command::new("unshare")
        .args(["-p", "-f", "--mount-proc", "true"])
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => return skip_or_fail(&format!("`unshare -p -f --mount-proc true` exited {s}")),
        Err(e) => return skip_or_fail(&format!("cannot run unshare: {e}")),
    }
    let boot_before = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let out = Command::new("unshare")
        .args(["-p", "-f", "--mount-proc"])
        .arg(helper())
        .arg("syscall")
        .arg(dir.path())
        .env("PORTWARDEN_TEST_NO_HOST_REBOOT", "1")
        .env("PORTWARDEN_HOST_PIDNS", host_pidns())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The namespace's init was killed by the kernel with SIGHUP (a reboot request): unshare
    // reports 128 + 1. Anything else (a printed outcome) means reboot(2) was not reached.
    use std::os::unix::process::ExitStatusExt;
    let hup = out.status.code() == Some(129) || out.status.signal() == Some(1);
    assert!(hup, "status {:?}, output {text:?}", out.status);
    assert!(!text.contains("summary="), "{text}");
    // Recorded before it was issued.
    let history = std::fs::read_to_string(dir.path().join("reboots.json")).unwrap();
    assert!(history.contains(boot_before.trim()), "{history}");
    // And we are still here, on the same boot.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap(),
        boot_before
    );
}

#[test]
fn in_the_host_pid_namespace_the_safety_net_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("rebooted");
    // A harmless `touch` stands in for the reboot command: the run must stop before it.
    let out = Command::new(helper())
        .arg("command")
        .arg(dir.path())
        .arg(&marker)
        .env("PORTWARDEN_TEST_NO_HOST_REBOOT", "1")
        .env("PORTWARDEN_HOST_PIDNS", host_pidns())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains(
            "summary=reboot refused: PORTWARDEN_TEST_NO_HOST_REBOOT=1 and this is the host's PID namespace"
        ),
        "{stdout}"
    );
    assert!(!marker.exists());
    assert!(!dir.path().join("reboots.json").exists());
}

#[test]
fn the_helper_refuses_syscall_mode_outside_a_pid_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(helper())
        .arg("syscall")
        .arg(dir.path())
        .env("PORTWARDEN_TEST_NO_HOST_REBOOT", "1")
        .env("PORTWARDEN_HOST_PIDNS", host_pidns())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn the_safety_net_refuses_without_the_host_namespace_given() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("rebooted");
    // In a private PID namespace but with PORTWARDEN_HOST_PIDNS unreadable: still refused.
    match Command::new("unshare")
        .args(["-p", "-f", "--mount-proc", "true"])
        .status()
    {
        Ok(s) if s.success() => {}
        _ => return skip_or_fail("unshare -p is not available"),
    }
    let out = Command::new("unshare")
        .args(["-p", "-f", "--mount-proc"])
        .arg(helper())
        .arg("command")
        .arg(dir.path())
        .arg(&marker)
        .env("PORTWARDEN_TEST_NO_HOST_REBOOT", "1")
        .env("PORTWARDEN_HOST_PIDNS", "not-a-namespace")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("PORTWARDEN_HOST_PIDNS is missing or unreadable"),
        "{stdout}"
    );
    assert!(!marker.exists());
}
