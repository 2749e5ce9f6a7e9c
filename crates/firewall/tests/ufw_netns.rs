//! ufw against the real tool, in a network namespace plus a mount namespace where private
//! copies of `/etc/ufw` and `/etc/default/ufw` and a tmpfs `/run` hide the host's: ufw writes
//! its configuration, and the host's must never change.

#![expect(
    clippy::unwrap_used,
    reason = "a test file; helpers outside #[test] may unwrap too"
)]

mod common;

use std::path::PathBuf;

use common::{block_on, have, sh};
use portwarden_firewall::{
    assess, BackendKind, Firewall, Policy, Requirement, Runner, State, ViolationKind,
};

/// Runs `f` on a thread with its own network and mount namespaces and private ufw files.
/// Returns `None` (after saying why) when that cannot be set up and `CI` is not set.
fn in_private_ufw<T: Send>(f: impl FnOnce() -> T + Send) -> Option<T> {
    let dir = PathBuf::from(format!("/tmp/portwarden-ufw-test-{}", std::process::id()));
    let host_conf = std::fs::read("/etc/ufw/ufw.conf").ok();
    let host_default = std::fs::read("/etc/default/ufw").ok();
    let result = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                if let Err(why) = enter(&dir) {
                    assert!(std::env::var_os("CI").is_none(), "{why}");
                    eprintln!("SKIPPED: {why}");
                    return None;
                }
                Some(f())
            })
            .join()
    });
    let _ = std::fs::remove_dir_all(&dir);
    // Whatever happened inside, the host's ufw files are as they were.
    assert_eq!(std::fs::read("/etc/ufw/ufw.conf").ok(), host_conf);
    assert_eq!(std::fs::read("/etc/default/ufw").ok(), host_default);
    result.expect("test thread panicked")
}

fn enter(dir: &std::path::Path) -> Result<(), String> {
    let d = dir.display();
    common::enter_private_mounts(&format!(
        "mkdir -p {d}
         cp -a /etc/ufw {d}/ufw
         cp -a /etc/default/ufw {d}/default-ufw
         mount --bind {d}/ufw /etc/ufw
         mount --bind {d}/default-ufw /etc/default/ufw"
    ))
}

fn policy() -> Policy {
    Policy {
        require: vec![Requirement::Enabled, Requirement::InboundDefaultDeny],
        rules: vec!["tcp/22".parse().unwrap()],
    }
}

fn kinds(state: &State) -> Vec<ViolationKind> {
    assess(state, &policy(), None)
        .violations
        .iter()
        .map(|v| v.kind)
        .collect()
}

fn assert_input_drop() {
    let saved = sh("iptables-save");
    assert!(saved.contains(":INPUT DROP"), "{saved}");
    assert!(saved.contains(":ufw-user-input"), "{saved}");
}

#[test]
fn ufw_tampering_is_seen_in_the_kernel_and_enable_repairs_it() {
    if !have("ufw") || !have("iptables-save") {
        return;
    }
    in_private_ufw(|| {
        let fw = Firewall::new(BackendKind::Ufw, Runner::default());
        let inspect = || block_on(fw.inspect()).unwrap();
        // A fresh namespace with ufw disabled in its (private) config.
        sh("sed -i 's/^ENABLED=.*/ENABLED=no/' /etc/ufw/ufw.conf");
        assert!(!inspect().enabled);

        sh("ufw --force enable && ufw allow 22/tcp");
        let state = inspect();
        assert_eq!(state.backend, BackendKind::Ufw);
        assert!(state.enabled, "{state:?}");
        assert!(kinds(&state).is_empty(), "{:?}", kinds(&state));

        // ufw keeps saying "active, deny (incoming)"; the kernel accepts.
        sh("iptables -w -P INPUT ACCEPT");
        assert!(sh("ufw status verbose").contains("deny (incoming)"));
        let state = inspect();
        assert!(state.enabled);
        assert_eq!(kinds(&state), [ViolationKind::InboundOpen]);
        assert!(
            state
                .notes
                .iter()
                .any(|n| n.contains("deny (incoming)") && n.contains("ipv4 INPUT policy is ACCEPT")),
            "{:?}",
            state.notes
        );
        block_on(fw.enable()).unwrap();
        assert_input_drop();

        sh("ufw disable");
        assert!(kinds(&inspect()).contains(&ViolationKind::Disabled));
        block_on(fw.enable()).unwrap();
        assert!(inspect().enabled);

        // ufw's chains flushed away while ENABLED=yes: not enabled, whatever ufw.conf says.
        sh("iptables -w -F && iptables -w -X");
        let state = inspect();
        assert!(!state.enabled, "{state:?}");
        block_on(fw.enable()).unwrap();
        assert_input_drop();

        sh("nft flush ruleset");
        let state = inspect();
        assert!(!state.enabled, "{state:?}");
        assert!(!state.inbound_default_deny());
        block_on(fw.enable()).unwrap();
        assert_input_drop();
        assert!(kinds(&inspect()).is_empty());
    });
}
