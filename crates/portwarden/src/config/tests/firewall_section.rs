//! `[firewall]`: its defaults, every option, and its mistakes named with their place.

use super::*;

#[test]
fn firewall_section_defaults_and_every_option() {
    let none = ok("");
    assert!(none.firewall.guard);
    assert_eq!(none.firewall.on_violation, None);
    assert_eq!(
        none.firewall.policy.require,
        vec![portwarden_firewall::Requirement::Enabled]
    );
    assert_eq!(none.firewall.verify_every, Duration::from_secs(30));
    let c = ok(r#"
[firewall]
guard = true
backend = "nftables"
require = ["inbound-default-deny"]
rules = ["tcp/22 from 10.0.0.0/8", "drop tcp/23"]
tables = ["inet filter"]
baseline = "fw.json"
on_violation = "alert"
verify_every = "5s"
watch = false
max_repairs_per_hour = 2
"#);
    let f = &c.firewall;
    assert_eq!(f.backend, Some(portwarden_firewall::BackendKind::Nftables));
    assert_eq!(f.policy.rules.len(), 2);
    assert_eq!(
        f.policy.rules[0].to_string(),
        "accept tcp/22 from 10.0.0.0/8"
    );
    assert_eq!(f.tables.as_deref(), Some(&["inet filter".to_string()][..]));
    assert!(f.baseline.ends_with("fw.json"));
    assert_eq!(f.on_violation, Some(super::OnViolation::Alert));
    assert_eq!(f.verify_every, Duration::from_secs(5));
    assert!(!f.watch);
    assert_eq!(f.max_repairs_per_hour, 2);
}

#[test]
fn firewall_section_mistakes_are_named_with_their_place() {
    assert_eq!(
        problems(
            r#"[firewall]
backend = "nftable"
require = ["enabled", "deny-all"]
rules = ["tcp/70000"]
tables = ["filter"]
on_violation = "fix"
verify_every = "0s"
colour = "red"
"#
        ),
        vec![
            "portwarden.toml:2:11: firewall: backend: unknown backend \"nftable\"; did you mean \"nftables\"? expected \"auto\" or one of nftables, iptables-nft, iptables-legacy, ufw, firewalld, windows, pf, mac-app-firewall",
            "portwarden.toml:3:23: firewall: require[1]: unknown requirement `deny-all` (expected \"enabled\" or \"inbound-default-deny\")",
            "portwarden.toml:4:10: firewall: rules[0]: `70000`: port must be 1-65535",
            "portwarden.toml:5:11: firewall: tables[0]: \"filter\" is not a table; write \"FAMILY NAME\", e.g. \"inet filter\" (families: ip, ip6, inet, arp, bridge, netdev)",
            "portwarden.toml:6:16: firewall: on_violation: unknown mode \"fix\"; expected \"alert\", \"enable\" or \"restore\"",
            "portwarden.toml:7:16: firewall: verify_every: must be greater than 0",
            "portwarden.toml:8:1: firewall: colour: unknown key (`portwarden config example` shows every key)",
        ]
    );
}
