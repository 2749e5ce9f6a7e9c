//! Test harness: every firewall test runs on a thread that has its own network namespace, so
//! the `nft` / `iptables` processes it starts change that namespace's firewall, never the
//! machine's. Root (CAP_NET_ADMIN) is required; without it a test fails loudly under `CI=true`
//! and says why otherwise.

#![allow(dead_code, reason = "each test file uses part of it")]

use std::future::Future;
use std::process::Command;

/// Runs `f` on a fresh thread inside a new, empty network namespace and returns its result.
/// Returns `None` (after saying why) when namespaces are not available and `CI` is not set.
pub fn in_netns<T: Send>(f: impl FnOnce() -> T + Send) -> Option<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET) {
                    let why = format!("cannot create a network namespace (need root): {e}");
                    assert!(std::env::var_os("CI").is_none(), "{why}");
                    eprintln!("SKIPPED: {why}");
                    return None;
                }
                Some(f())
            })
            .join()
            .expect("test thread panicked")
    })
}

/// Drives a future to completion on the current thread (which stays in its namespace).
pub fn block_on<F: Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(fut)
}

/// Runs a shell command in the current thread's namespace; panics with its output on failure.
pub fn sh(script: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", script])
        .output()
        .expect("spawn sh");
    assert!(
        out.status.success(),
        "`{script}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// True when `program` is on PATH. Under `CI=true` a missing tool fails the test.
pub fn have(program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        let why = format!("{program} is not installed (scripts/install-test-deps installs it)");
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("SKIPPED: {why}");
    }
    found
}

/// Moves the current thread into new network and mount namespaces, makes every mount private
/// (so nothing below reaches the host), puts a tmpfs on `/run`, then runs `setup` (`sh`, with
/// `set -e`) to bind private copies over the configuration a tool writes. Children inherit it.
pub fn enter_private_mounts(setup: &str) -> Result<(), String> {
    use nix::sched::{unshare, CloneFlags};
    let host_mnt = std::fs::read_link("/proc/self/ns/mnt").map_err(|e| e.to_string())?;
    unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS)
        .map_err(|e| format!("cannot create network + mount namespaces (need root): {e}"))?;
    let mnt = std::fs::read_link("/proc/thread-self/ns/mnt").map_err(|e| e.to_string())?;
    if mnt == host_mnt {
        // Never bind-mount anything in the host's mount namespace.
        return Err("the test thread is still in the host's mount namespace".into());
    }
    // make-rprivate first: without it the mounts below would propagate to the host (set -e).
    let out = Command::new("sh")
        .args([
            "-c",
            &format!("set -e\nmount --make-rprivate /\nmount -t tmpfs tmpfs /run\n{setup}"),
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "private mounts could not be set up: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}
