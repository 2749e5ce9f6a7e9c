//! The namespace harness itself: a test's firewall is not the machine's.

mod common;

use common::{have, in_netns, sh};

#[test]
fn a_test_namespace_has_its_own_empty_ruleset() {
    if !have("nft") {
        return;
    }
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let seen = in_netns(|| {
        let ns = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        sh("nft add table inet harness_probe");
        let listing = sh("nft list tables");
        (ns, listing)
    });
    let Some((ns, listing)) = seen else { return };
    assert_ne!(
        ns, host_ns,
        "the test thread must be in its own network namespace"
    );
    assert_eq!(listing.trim(), "table inet harness_probe");
    // The machine's own namespace never saw that table.
    let host = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&host.stdout).contains("harness_probe"));
}
