//! iptables (nf_tables and legacy backends) against the real tools, each run in its own network
//! namespace: inspect, snapshot, three kinds of tampering, restore.

#![expect(
    clippy::unwrap_used,
    reason = "a test file; helpers outside #[test] may unwrap too"
)]

mod common;

use common::{block_on, have, in_netns, sh};
use portwarden_firewall::{
    assess, BackendKind, Baseline, Firewall, Policy, Requirement, Runner, ViolationKind,
};

fn policy() -> Policy {
    Policy {
        require: vec![Requirement::Enabled, Requirement::InboundDefaultDeny],
        rules: vec!["tcp/22 from 10.0.0.0/8".parse().unwrap()],
    }
}

/// A typical host firewall for both families: drop policy, loopback, established, ssh from LAN.
fn setup(v: &str) {
    sh(&format!(
        "set -e
         for t in iptables-{v} ip6tables-{v}; do
           $t -w -A INPUT -i lo -j ACCEPT
           $t -w -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
           $t -w -P INPUT DROP
         done
         iptables-{v} -w -A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -m comment --comment ssh -j ACCEPT
         ip6tables-{v} -w -A INPUT -s fd00::/8 -p tcp -m tcp --dport 22 -m comment --comment ssh -j ACCEPT"
    ));
}

fn kinds(fw: &Firewall, baseline: &Baseline) -> (Vec<ViolationKind>, portwarden_firewall::Drift) {
    let state = block_on(fw.inspect()).unwrap();
    let a = assess(&state, &policy(), Some(baseline));
    (
        a.violations.iter().map(|v| v.kind).collect(),
        a.drift.unwrap(),
    )
}

/// After a restore the guarded chains equal the baseline: no drift, no violation. Rules other
/// tools keep outside INPUT's reach (a `nat` table, Docker's FORWARD chains) are not drift.
fn assert_restored(fw: &Firewall, baseline: &Baseline) {
    block_on(fw.restore(baseline)).unwrap();
    let state = block_on(fw.inspect()).unwrap();
    let a = assess(&state, &policy(), Some(baseline));
    let drift = a.drift.clone().unwrap();
    assert!(drift.is_empty(), "{drift}");
    assert!(state.enabled && state.inbound_default_deny());
    assert!(a.ok(), "{:?}", a.violations);
}

fn tamper_and_restore_cycle(v: &str, kind: BackendKind) {
    setup(v);
    let fw = Firewall::new(kind, Runner::default());
    let state = block_on(fw.inspect()).unwrap();
    assert_eq!(state.backend, kind);
    assert!(state.enabled, "{state:?}");
    assert!(state.inbound_default_deny(), "{state:?}");
    assert!(assess(&state, &policy(), None).ok());
    let baseline = block_on(fw.snapshot("test-host")).unwrap();
    assert!(assess(&state, &policy(), Some(&baseline)).ok());

    // Another tool's rules, added after the baseline: a restore must not remove them.
    sh(&format!(
        "iptables-{v} -w -t nat -A POSTROUTING -o lo -m comment --comment other-tool -j ACCEPT"
    ));
    if v == "nft" {
        sh("nft add table ip other_tool");
    }

    // (a) switched off: accept policy, everything flushed, both families.
    sh(&format!(
        "for t in iptables-{v} ip6tables-{v}; do $t -w -P INPUT ACCEPT; $t -w -F; $t -w -X; done"
    ));
    let (k, drift) = kinds(&fw, &baseline);
    assert!(k.contains(&ViolationKind::Disabled), "{k:?}");
    assert!(k.contains(&ViolationKind::MissingRule), "{k:?}");
    assert!(k.contains(&ViolationKind::Drift), "{k:?}");
    assert!(drift
        .vanished
        .iter()
        .any(|r| r.scope == "ipv4 filter INPUT" && r.text.contains("--dport 22")));
    assert!(drift.defaults.iter().any(|d| d == "ipv4: drop → accept"));
    assert_restored(&fw, &baseline);

    // Docker-style chains in the filter table, added after the baseline: not the guard's.
    sh(&format!(
        "iptables-{v} -w -N DOCKER-USER && iptables-{v} -w -A DOCKER-USER -j RETURN && \
         iptables-{v} -w -A FORWARD -j DOCKER-USER && iptables-{v} -w -P FORWARD DROP"
    ));
    let (k, drift) = kinds(&fw, &baseline);
    assert!(k.is_empty() && drift.is_empty(), "{k:?} {drift}");

    // (b) only the policy: still "enabled" (rules exist) but inbound is open.
    sh(&format!("iptables-{v} -w -P INPUT ACCEPT"));
    let (k, drift) = kinds(&fw, &baseline);
    assert!(k.contains(&ViolationKind::InboundOpen), "{k:?}");
    assert!(!k.contains(&ViolationKind::Disabled), "{k:?}");
    assert!(drift
        .vanished
        .iter()
        .any(|r| r.scope == "ipv4 filter INPUT" && r.text == "policy DROP"));
    assert_restored(&fw, &baseline);

    // (c) the ssh rule deleted.
    sh(&format!(
        "iptables-{v} -w -D INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -m comment --comment ssh -j ACCEPT"
    ));
    let (k, drift) = kinds(&fw, &baseline);
    assert!(k.contains(&ViolationKind::MissingRule), "{k:?}");
    assert!(!k.contains(&ViolationKind::InboundOpen), "{k:?}");
    assert_eq!(drift.vanished.len(), 1, "{drift}");
    assert_eq!(
        drift.vanished[0].text,
        "-s 10.0.0.0/8 -p tcp -m tcp --dport 22 -m comment --comment ssh -j ACCEPT"
    );
    assert_restored(&fw, &baseline);

    // The other tools' rules survived the restores.
    assert!(sh(&format!("iptables-{v}-save -t nat")).contains("other-tool"));
    let filter = sh(&format!("iptables-{v}-save -t filter"));
    assert!(
        filter.contains(":FORWARD DROP") && filter.contains("-A FORWARD -j DOCKER-USER"),
        "{filter}"
    );
    if v == "nft" {
        assert!(sh("nft list tables").contains("table ip other_tool"));
    }
}

#[test]
fn nft_backend_detects_tampering_and_restores_the_baseline() {
    if !have("iptables-nft-save") {
        return;
    }
    in_netns(|| tamper_and_restore_cycle("nft", BackendKind::IptablesNft));
}

fn legacy_names(file: &str) -> String {
    std::fs::read_to_string(format!("/proc/thread-self/net/{file}")).unwrap_or_default()
}

#[test]
fn legacy_backend_detects_tampering_and_restores_the_baseline() {
    if !have("iptables-legacy-save") {
        return;
    }
    in_netns(|| tamper_and_restore_cycle("legacy", BackendKind::IptablesLegacy));
}

#[test]
fn inspecting_legacy_without_tables_creates_none() {
    if !have("iptables-legacy-save") {
        return;
    }
    in_netns(|| {
        assert_eq!(legacy_names("ip_tables_names"), "");
        let fw = Firewall::new(BackendKind::IptablesLegacy, Runner::default());
        let state = block_on(fw.inspect()).unwrap();
        assert!(!state.enabled);
        assert!(!state.inbound_default_deny());
        let baseline = block_on(fw.snapshot("h")).unwrap();
        assert_eq!(
            baseline.restore,
            portwarden_firewall::Restore::Iptables(portwarden_firewall::iptables::Payload {
                v4: None,
                v6: None
            })
        );
        assert_eq!(legacy_names("ip_tables_names"), "");
        assert_eq!(legacy_names("ip6_tables_names"), "");
    });
}
