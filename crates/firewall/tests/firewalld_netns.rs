//! firewalld against the real daemon, started by the test in its own network and mount
//! namespaces: a private `/run` (its own system bus from `dbus-daemon --system`) and a private
//! copy of `/etc/firewalld`, so nothing of the host's firewalld, bus or config is touched.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{block_on, have, sh};
use portwarden_firewall::{BackendKind, Firewall, Runner};

/// The processes this test started; killed by PID when it ends, also on panic.
struct Daemons {
    dbus: Option<u32>,
    firewalld: Option<Child>,
}

impl Drop for Daemons {
    fn drop(&mut self) {
        if let Some(child) = self.firewalld.as_mut() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(pid) = self.dbus {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

/// Fails under `CI`, skips loudly otherwise.
fn cannot(why: String) -> Option<()> {
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("SKIPPED: {why}");
    None
}

/// Enters new network + mount namespaces with a private /run and /etc/firewalld.
fn enter(dir: &Path) -> Result<(), String> {
    let d = dir.display();
    common::enter_private_mounts(&format!(
        "mkdir -p /run/dbus {d}
         cp -a /etc/firewalld {d}/etc
         mount --bind {d}/etc /etc/firewalld"
    ))
}

/// Starts the bus and firewalld; waits (at most 30 s) until `firewall-cmd --state` says running.
fn start(dir: &Path, daemons: &mut Daemons) -> Result<(), String> {
    let out = Command::new("dbus-daemon")
        .args(["--system", "--fork", "--print-pid"])
        .output()
        .map_err(|e| format!("dbus-daemon: {e}"))?;
    let pid = String::from_utf8_lossy(&out.stdout).trim().parse::<u32>();
    daemons.dbus = pid.as_ref().ok().copied();
    if !out.status.success() || pid.is_err() {
        return Err(format!(
            "dbus-daemon --system did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let log = dir.join("firewalld.log");
    let child = Command::new("firewalld")
        .args(["--nofork", "--nopid", "--log-target", "file", "--log-file"])
        .arg(&log)
        .spawn()
        .map_err(|e| format!("firewalld: {e}"))?;
    daemons.firewalld = Some(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = Command::new("firewall-cmd").arg("--state").output();
        if state.is_ok_and(|s| s.status.success()) {
            return Ok(());
        }
        let exited = daemons
            .firewalld
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        if exited.is_some() || Instant::now() > deadline {
            return Err(format!(
                "firewalld did not come up ({}); its log:\n{}",
                match exited {
                    Some(status) => format!("exited: {status}"),
                    None => "not running after 30 s".to_string(),
                },
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn in_private_firewalld(f: impl FnOnce() + Send) {
    if !have("firewalld") || !have("firewall-cmd") || !have("dbus-daemon") || !have("nft") {
        return;
    }
    let dir = PathBuf::from(format!(
        "/tmp/portwarden-firewalld-test-{}",
        std::process::id()
    ));
    let result = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                if let Err(why) = enter(&dir) {
                    return cannot(why);
                }
                let mut daemons = Daemons {
                    dbus: None,
                    firewalld: None,
                };
                if let Err(why) = start(&dir, &mut daemons) {
                    return cannot(why);
                }
                f();
                drop(daemons);
                Some(())
            })
            .join()
    });
    let _ = std::fs::remove_dir_all(&dir);
    result.expect("test thread panicked");
}

#[test]
fn a_flushed_firewalld_is_not_enabled_and_enable_brings_its_table_back() {
    in_private_firewalld(|| {
        let started = Instant::now();
        let fw = Firewall::new(BackendKind::Firewalld, Runner::default());
        let inspect = || block_on(fw.inspect()).unwrap();
        let state = inspect();
        assert_eq!(state.backend, BackendKind::Firewalld);
        assert!(state.enabled, "{state:?}");
        assert!(state.inbound_default_deny(), "{state:?}");
        // Inbound defaults and rules were read from firewalld's table, not assumed.
        assert!(!state.rules.is_empty(), "{state:?}");
        assert!(
            !state.notes.iter().any(|n| n.contains("could not be read")),
            "{:?}",
            state.notes
        );
        eprintln!("inbound: {:?}; {} rules", state.inbound, state.rules.len());

        // firewalld keeps saying "running" with nothing of it in the kernel.
        sh("nft flush ruleset");
        assert_eq!(sh("firewall-cmd --state").trim(), "running");
        let state = inspect();
        assert!(!state.enabled, "{state:?}");
        assert!(state.notes.iter().any(|n| n.contains("says running")));

        // The first reload fails after a flush (firewalld 1.3.3); enable copes.
        block_on(fw.enable()).unwrap();
        assert!(sh("nft list tables").contains("table inet firewalld\n"));
        assert!(inspect().enabled);

        // Running with its table: enable is a plain reload and keeps it enabled.
        block_on(fw.enable()).unwrap();
        assert!(inspect().enabled);
        eprintln!("firewalld cycle took {:?}", started.elapsed());
    });
}
