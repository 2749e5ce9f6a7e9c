//! The nftables backend against a real kernel ruleset, each test in its own network namespace:
//! inspect, snapshot, three kinds of tampering, restore next to other tools' tables, a refused
//! corrupt baseline, and the change watch.

#![expect(
    clippy::unwrap_used,
    reason = "a test file; helpers outside #[test] may unwrap too"
)]

mod common;

use std::time::Duration;

use common::{block_on, have, in_netns, sh};
use portwarden_firewall::nftables::{self, Watch};
use portwarden_firewall::{
    assess, BackendKind, Baseline, Firewall, Policy, Requirement, Restore, Runner, State,
    ViolationKind,
};

const RULESET: &str = r#"table inet filter {
	counter ssh_hits {
	}
	chain input {
		type filter hook input priority filter; policy drop;
		iif lo accept
		ct state established,related accept
		ip saddr 10.0.0.0/8 tcp dport 22 counter name "ssh_hits" accept comment "ssh"
		tcp dport { 80, 443 } counter accept
	}
}
"#;

const SSH_RULE: &str =
    r#"ip saddr 10.0.0.0/8 tcp dport 22 counter name "ssh_hits" accept comment "ssh""#;

fn load(ruleset: &str) {
    sh(&format!("nft -f - <<'EOF'\n{ruleset}\nEOF"));
}

fn firewall() -> Firewall {
    Firewall::new(BackendKind::Nftables, Runner::default())
}

fn policy() -> Policy {
    Policy {
        require: vec![Requirement::Enabled, Requirement::InboundDefaultDeny],
        rules: vec!["tcp/22 from 10.0.0.0/8".parse().unwrap()],
    }
}

fn inspect() -> State {
    block_on(firewall().inspect()).expect("inspect")
}

/// The firewall as a guard holding `baseline` sees it: only the tables the baseline saved are
/// managed, so tables other tools add later are foreign, not drift.
fn guarded(baseline: &Baseline) -> Firewall {
    let Restore::Nftables(payload) = &baseline.restore else {
        panic!("not an nftables payload")
    };
    firewall().with_tables(Some(payload.table_ids()))
}

fn ssh_handle() -> String {
    let listing = sh("nft -a list chain inet filter input");
    let line = listing
        .lines()
        .find(|l| l.contains("comment \"ssh\""))
        .expect("the ssh rule is listed");
    line.rsplit("# handle ").next().unwrap().trim().to_string()
}

/// Adds tables of "another tool" and returns how they look, to check a restore leaves them be.
fn add_foreign_tables() -> String {
    load("table ip other {\n\tchain c {\n\t\ttype filter hook prerouting priority 0;\n\t}\n}");
    let mut seen = sh("nft list table ip other");
    if have("iptables-nft") {
        sh("iptables-nft -A INPUT -p tcp --dport 2222 -m comment --comment other-tool -j ACCEPT");
        seen.push_str(&sh("iptables-nft-save -t filter | grep -v '^#'"));
    }
    seen
}

fn foreign_tables_now() -> String {
    let mut seen = sh("nft list table ip other");
    if have("iptables-nft") {
        seen.push_str(&sh("iptables-nft-save -t filter | grep -v '^#'"));
    }
    seen
}

#[derive(Debug, Clone, Copy)]
enum Tamper {
    Flush,
    PolicyAccept,
    DeleteSshRule,
}

fn tamper_then_restore(tamper: Tamper) {
    load(RULESET);
    let state = inspect();
    assert!(state.enabled);
    assert!(state.inbound_default_deny(), "{:?}", state.inbound);
    let clean = assess(&state, &policy(), None);
    assert!(clean.ok(), "{:?}", clean.violations);

    let baseline = block_on(firewall().snapshot("test-host")).expect("snapshot");
    let fw = guarded(&baseline);
    assert!(assess(&state, &policy(), Some(&baseline)).ok());

    match tamper {
        Tamper::Flush => sh("nft flush ruleset"),
        Tamper::PolicyAccept => sh("nft chain inet filter input '{ policy accept; }'"),
        Tamper::DeleteSshRule => sh(&format!(
            "nft delete rule inet filter input handle {}",
            ssh_handle()
        )),
    };
    let tampered = assess(&block_on(fw.inspect()).unwrap(), &policy(), Some(&baseline));
    let kinds: Vec<ViolationKind> = tampered.violations.iter().map(|v| v.kind).collect();
    let drift = tampered.drift.clone().unwrap();
    match tamper {
        Tamper::Flush => assert!(kinds.contains(&ViolationKind::Disabled), "{kinds:?}"),
        Tamper::PolicyAccept => {
            assert!(kinds.contains(&ViolationKind::InboundOpen), "{kinds:?}");
            assert!(kinds.contains(&ViolationKind::Drift), "{kinds:?}");
            assert!(!drift.defaults.is_empty());
        }
        Tamper::DeleteSshRule => {
            assert!(kinds.contains(&ViolationKind::MissingRule), "{kinds:?}");
            assert!(kinds.contains(&ViolationKind::Drift), "{kinds:?}");
            assert_eq!(drift.vanished.len(), 1, "{drift}");
            assert_eq!(drift.vanished[0].text, SSH_RULE);
        }
    }

    let foreign = add_foreign_tables();
    block_on(fw.restore(&baseline)).expect("restore");
    let restored = block_on(fw.inspect()).unwrap();
    assert_eq!(restored.rules, baseline.rules, "{tamper:?}");
    assert_eq!(restored.inbound, baseline.inbound, "{tamper:?}");
    let after = assess(&restored, &policy(), Some(&baseline));
    assert!(after.ok(), "{tamper:?}: {:?}", after.violations);
    assert!(after.drift.unwrap().is_empty());
    assert_eq!(
        foreign_tables_now(),
        foreign,
        "{tamper:?}: foreign tables changed"
    );
    assert!(restored.foreign_tables.contains(&"ip other".to_string()));
}

#[test]
fn restores_a_flushed_ruleset_and_leaves_other_tables_alone() {
    if !have("nft") {
        return;
    }
    in_netns(|| tamper_then_restore(Tamper::Flush));
}

#[test]
fn restores_an_input_policy_switched_to_accept() {
    if !have("nft") {
        return;
    }
    in_netns(|| tamper_then_restore(Tamper::PolicyAccept));
}

#[test]
fn restores_a_deleted_ssh_rule_and_reports_it_vanished() {
    if !have("nft") {
        return;
    }
    in_netns(|| tamper_then_restore(Tamper::DeleteSshRule));
}

#[test]
fn restoring_twice_gives_no_duplicate_rules() {
    if !have("nft") {
        return;
    }
    in_netns(|| {
        load(RULESET);
        let baseline = block_on(firewall().snapshot("test-host")).unwrap();
        let before = sh("nft -s list ruleset");
        block_on(firewall().restore(&baseline)).unwrap();
        block_on(firewall().restore(&baseline)).unwrap();
        assert_eq!(sh("nft -s list ruleset"), before);
        assert_eq!(inspect().rules, baseline.rules);
    });
}

#[test]
fn a_corrupt_baseline_is_refused_by_nft_check_and_changes_nothing() {
    if !have("nft") {
        return;
    }
    in_netns(|| {
        load(RULESET);
        let mut baseline: Baseline = block_on(firewall().snapshot("test-host")).unwrap();
        let Restore::Nftables(payload) = &mut baseline.restore else {
            panic!("not an nftables payload")
        };
        payload.tables[0].text = payload.tables[0].text.replace("policy drop", "policy dorp");
        sh("nft chain inet filter input '{ policy accept; }'");
        let before = sh("nft -s list ruleset");
        let err = block_on(firewall().restore(&baseline)).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("nft -c -f -"), "{message}");
        assert!(message.contains("/dev/stdin:"), "{message}");
        assert_eq!(sh("nft -s list ruleset"), before);
    });
}

#[test]
fn snapshot_refuses_an_iptables_nft_table() {
    if !have("nft") || !have("iptables-nft") {
        return;
    }
    in_netns(|| {
        sh("iptables-nft -A INPUT -p tcp --dport 22 -m comment --comment ssh -j ACCEPT");
        let only = ["ip filter".to_string()];
        let err = block_on(nftables::snapshot(&Runner::default(), Some(&only))).unwrap_err();
        assert!(err.to_string().contains("iptables-nft"), "{err}");
        // With nothing native to manage, there is nothing to save either.
        assert!(block_on(nftables::snapshot(&Runner::default(), None)).is_err());
        let state = inspect();
        assert_eq!(state.foreign_tables, ["ip filter (iptables-nft)"]);
        assert!(state.enabled);
    });
}

#[test]
fn watch_reports_a_flush_and_its_culprit_within_a_second() {
    if !have("nft") {
        return;
    }
    in_netns(|| {
        load(RULESET);
        block_on(async {
            let mut watch = Watch::start().await.expect("nft monitor starts");
            let started = tokio::time::Instant::now();
            let status = std::process::Command::new("sh")
                .args(["-c", "nft flush ruleset"])
                .status()
                .unwrap();
            assert!(status.success());
            let change = tokio::time::timeout(Duration::from_secs(1), watch.next())
                .await
                .expect("a change within a second")
                .expect("the monitor is running");
            assert!(started.elapsed() < Duration::from_secs(1));
            let culprit = change.culprit.expect("the generation line names a process");
            assert_eq!(culprit.comm, "nft");
            assert!(culprit.pid > 0);
            assert!(change.generation.is_some());
            assert!(
                change.lines.iter().any(|l| l == "delete table inet filter"),
                "{:?}",
                change.lines
            );
        });
    });
}
