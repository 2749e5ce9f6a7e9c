//! Backend detection against real rulesets, each in a fresh network namespace. The ufw and
//! firewalld branches are covered by `detect::decide`'s unit tests: the host's ufw and
//! firewalld are never touched, and ufw.conf is pointed at a file that does not exist.

mod common;

use common::{block_on, have, in_netns, sh};
use portwarden_firewall::detect::{detect_with, DetectPaths, Detection};
use portwarden_firewall::{BackendKind, Runner};

/// The paths of the test thread's own namespace: `/proc/net` follows the process's main
/// thread, `/proc/thread-self/net` this thread.
fn paths() -> DetectPaths {
    DetectPaths {
        ufw_conf: "/nonexistent/portwarden-test/ufw.conf".into(),
        ip_tables_names: "/proc/thread-self/net/ip_tables_names".into(),
        ip6_tables_names: "/proc/thread-self/net/ip6_tables_names".into(),
        ..DetectPaths::default()
    }
}

fn legacy_names() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    read("/proc/thread-self/net/ip_tables_names") + &read("/proc/thread-self/net/ip6_tables_names")
}

/// Loads `setup` into a fresh namespace, detects, and checks no legacy table appeared unless
/// the setup made one.
fn detect_after(setup: &str) -> Option<Detection> {
    in_netns(|| {
        if !setup.is_empty() {
            sh(setup);
        }
        let legacy_before = legacy_names();
        let found = block_on(detect_with(&Runner::default(), &paths())).expect("detection");
        assert_eq!(
            legacy_names(),
            legacy_before,
            "detection must not create legacy tables"
        );
        eprintln!("{setup:?} -> {found:?}");
        found
    })
}

#[test]
fn an_empty_namespace_falls_back_to_nftables_with_no_rules() {
    if !have("nft") {
        return;
    }
    let Some(d) = detect_after("") else { return };
    assert_eq!(d.backend, BackendKind::Nftables, "{}", d.why);
    assert!(d.layers.is_empty(), "{d:?}");
    assert!(d.why.contains("no rules"), "{}", d.why);
}

#[test]
fn detection_never_creates_a_legacy_table() {
    if !have("nft") || !have("iptables-legacy-save") {
        return;
    }
    let seen = in_netns(|| {
        assert_eq!(legacy_names(), "", "a fresh namespace has no legacy tables");
        block_on(detect_with(&Runner::default(), &paths())).expect("detection");
        block_on(detect_with(&Runner::default(), &paths())).expect("detection");
        legacy_names()
    });
    if let Some(names) = seen {
        assert_eq!(names, "", "detection created legacy tables");
    }
}

#[test]
fn a_native_inet_filter_table_is_nftables() {
    if !have("nft") {
        return;
    }
    let Some(d) = detect_after(
        "nft add table inet filter && \
         nft add chain inet filter input '{ type filter hook input priority 0; policy drop; }'",
    ) else {
        return;
    };
    assert_eq!(d.backend, BackendKind::Nftables, "{}", d.why);
    assert_eq!(d.layers, vec![BackendKind::Nftables]);
    assert!(d.why.contains("inet filter"), "{}", d.why);
}

#[test]
fn iptables_nft_rules_only_are_iptables_nft() {
    if !have("nft") || !have("iptables-nft") {
        return;
    }
    let Some(d) = detect_after(
        "iptables-nft -P INPUT DROP && \
         iptables-nft -A INPUT -p tcp --dport 22 -m comment --comment ssh -j ACCEPT",
    ) else {
        return;
    };
    assert_eq!(d.backend, BackendKind::IptablesNft, "{}", d.why);
    assert_eq!(d.layers, vec![BackendKind::IptablesNft]);
}

#[test]
fn a_native_ip_filter_table_with_lowercase_chains_is_not_iptables_nft() {
    if !have("nft") {
        return;
    }
    let Some(d) = detect_after(
        "nft add table ip filter && \
         nft add chain ip filter input '{ type filter hook input priority 0; policy drop; }' && \
         nft add rule ip filter input tcp dport 22 accept",
    ) else {
        return;
    };
    assert_eq!(d.backend, BackendKind::Nftables, "{}", d.why);
    assert_eq!(d.layers, vec![BackendKind::Nftables]);
}

#[test]
fn iptables_legacy_rules_are_iptables_legacy() {
    if !have("iptables-legacy") || !have("iptables-legacy-save") {
        return;
    }
    let Some(d) = detect_after("iptables-legacy -w -P INPUT DROP") else {
        return;
    };
    assert_eq!(d.backend, BackendKind::IptablesLegacy, "{}", d.why);
    assert_eq!(d.layers, vec![BackendKind::IptablesLegacy]);
}

#[test]
fn a_ufw_chain_made_by_iptables_nft_is_reported_as_ufw_when_ufw_is_installed() {
    // The chain is made with iptables-nft directly; ufw itself is never run.
    if !have("nft") || !have("iptables-nft") {
        return;
    }
    let ufw_installed = DetectPaths::default()
        .bin_dirs
        .iter()
        .any(|d| d.join("ufw").is_file());
    let Some(d) = detect_after("iptables-nft -P INPUT DROP && iptables-nft -N ufw-user-input")
    else {
        return;
    };
    if ufw_installed {
        assert_eq!(d.backend, BackendKind::Ufw, "{}", d.why);
        assert_eq!(d.layers, vec![BackendKind::Ufw, BackendKind::IptablesNft]);
    } else {
        assert_eq!(d.backend, BackendKind::IptablesNft, "{}", d.why);
    }
}
