//! The parsers on listings recorded with nftables 1.0.6 (tests/data/nft_*), and the restore
//! script.

use std::net::IpAddr;

use super::*;
use crate::model::{SimpleRule, Verdict};
use crate::rulespec::RequiredRule;

const DROP_JSON: &str = include_str!("../../tests/data/nft_drop_policy.json");
const DROP_TXT: &str = include_str!("../../tests/data/nft_drop_policy.txt");
const FIREWALLD_JSON: &str = include_str!("../../tests/data/nft_firewalld.json");
const FIREWALLD_TXT: &str = include_str!("../../tests/data/nft_firewalld.txt");
const IPTABLES_JSON: &str = include_str!("../../tests/data/nft_iptables_nft.json");
const IPTABLES_TXT: &str = include_str!("../../tests/data/nft_iptables_nft.txt");
const FLUSHED_JSON: &str = include_str!("../../tests/data/nft_flushed.json");
const FLUSHED_TXT: &str = include_str!("../../tests/data/nft_flushed.txt");

fn state_of(json_text: &str, listing: &str, tables: Option<&[String]>) -> Result<State, Error> {
    let ruleset = json::parse(json_text)?;
    let listing = text::parse(listing).map_err(|e| Error::malformed(text::SOURCE, e))?;
    state::build(&ruleset, &listing, tables)
}

fn rule<'a>(state: &'a State, text: &str) -> &'a Rule {
    state
        .rules
        .iter()
        .find(|r| r.text == text)
        .unwrap_or_else(|| panic!("no rule `{text}` in {:#?}", state.rules))
}

fn net(s: &str) -> (IpAddr, u8) {
    crate::rulespec::parse_net(s).unwrap()
}

use crate::model::Rule;

#[test]
fn drop_policy_inet_table_is_enabled_and_denies_both_families() {
    let s = state_of(DROP_JSON, DROP_TXT, None).unwrap();
    assert!(s.enabled);
    assert!(s.inbound_default_deny());
    assert_eq!(s.inbound[0].scope, "ipv4");
    assert_eq!(s.inbound[0].policy.as_deref(), Some("drop"));
    assert_eq!(s.inbound[1].scope, "ipv6");
    assert!(s.foreign_tables.is_empty());
    // Headers of base chains are pseudo-rules; regular chains without a header have none.
    let first: Vec<(&str, &str)> = s
        .rules
        .iter()
        .take(3)
        .map(|r| (r.scope.as_str(), r.text.as_str()))
        .collect();
    assert_eq!(
        first,
        [
            (
                "inet filter input",
                "type filter hook input priority filter; policy drop;"
            ),
            ("inet filter input", "iif \"lo\" accept"),
            ("inet filter input", "ct state established,related accept"),
        ]
    );
    // 1 header + 9 rules, 1 rule in extra, 2 headers for forward/output.
    assert_eq!(s.rules.len(), 13);
    assert!(s.rules.iter().all(|r| !r.text.contains("handle")));
}

#[test]
fn simple_rules_cover_sources_ports_sets_ranges_and_interfaces() {
    let s = state_of(DROP_JSON, DROP_TXT, None).unwrap();
    let ssh = rule(
        &s,
        "ip saddr 10.0.0.0/8 tcp dport 22 counter name \"ssh_hits\" accept comment \"ssh\"",
    );
    // A named counter only counts: the rule is still simple.
    let ssh = ssh.simple.clone().unwrap();
    assert_eq!(
        (ssh.proto.as_deref(), ssh.dports, ssh.sources),
        (Some("tcp"), vec![(22, 22)], vec![net("10.0.0.0/8")])
    );
    assert!("tcp/22 from 10.1.0.0/16"
        .parse::<RequiredRule>()
        .unwrap()
        .satisfied_by(rule(
            &s,
            "ip saddr 10.0.0.0/8 tcp dport 22 counter name \"ssh_hits\" accept comment \"ssh\""
        )));
    let web = rule(&s, "tcp dport { 80, 443 } counter accept")
        .simple
        .clone();
    assert_eq!(
        web,
        Some(SimpleRule {
            inbound: true,
            proto: Some("tcp".into()),
            dports: vec![(80, 80), (443, 443)],
            sources: vec![],
            iif: None,
            verdict: Verdict::Accept,
        })
    );
    let v6 = rule(
        &s,
        "ip6 saddr { 2001:db8::/32, fe80::1 } udp dport 5000-5010 accept",
    )
    .simple
    .clone()
    .unwrap();
    assert_eq!(v6.sources, vec![net("2001:db8::/32"), net("fe80::1/128")]);
    assert_eq!(v6.dports, vec![(5000, 5010)]);
    let dns = rule(&s, "udp dport { 53, 6000-6010 } ct state new accept")
        .simple
        .clone()
        .unwrap();
    assert_eq!(dns.dports, vec![(53, 53), (6000, 6010)]);
    let eth = rule(
        &s,
        "iifname \"eth0\" tcp dport 8080 log prefix \"web \" accept",
    )
    .simple
    .clone()
    .unwrap();
    assert_eq!(eth.iif.as_deref(), Some("eth0"));
    assert_eq!(rule(&s, "ct state established,related accept").simple, None);
    assert_eq!(
        rule(&s, "tcp dport 9999 meta mark 0x00000001 accept").simple,
        None
    );
    assert_eq!(rule(&s, "jump extra").simple, None);
    // A chain the input chain jumps to is inbound too.
    let smtp = rule(&s, "tcp dport 25 accept").simple.clone().unwrap();
    assert!(smtp.inbound);
    let need: RequiredRule = "tcp/443".parse().unwrap();
    assert!(s.rules.iter().any(|r| need.satisfied_by(r)));
}

#[test]
fn firewalld_style_chain_denies_by_its_final_reject() {
    // firewalld's table is another tool's unless named (the firewalld backend names it).
    let unnamed = state_of(FIREWALLD_JSON, FIREWALLD_TXT, None).unwrap();
    assert!(unnamed.rules.is_empty());
    assert!(unnamed.inbound.iter().all(|d| d.denies), "{unnamed:?}");
    let s = state_of(
        FIREWALLD_JSON,
        FIREWALLD_TXT,
        Some(&["inet firewalld".to_string()]),
    )
    .unwrap();
    assert!(s.enabled);
    for d in &s.inbound {
        assert!(d.denies, "{d:?}");
        assert_eq!(d.policy.as_deref(), Some("accept, final reject"));
    }
    // Reached by jump then goto: still inbound.
    let ssh = rule(&s, "tcp dport 22 ct state new,untracked accept")
        .simple
        .clone()
        .unwrap();
    assert!(ssh.inbound);
    assert!("tcp/22"
        .parse::<RequiredRule>()
        .unwrap()
        .satisfied_by(&Rule {
            scope: String::new(),
            text: String::new(),
            simple: Some(ssh),
        }));
    assert_eq!(
        rule(&s, "meta l4proto { icmp, ipv6-icmp } accept").simple,
        None
    );
}

#[test]
fn iptables_nft_tables_are_foreign_but_count_for_the_kernels_behaviour() {
    let s = state_of(IPTABLES_JSON, IPTABLES_TXT, None).unwrap();
    assert_eq!(
        s.foreign_tables,
        ["ip filter (iptables-nft)", "ip6 filter (iptables-nft)"]
    );
    // Their drop policies protect both families although the native table accepts.
    assert!(s.enabled);
    assert!(s.inbound_default_deny());
    assert!(s.rules.iter().all(|r| r.scope.starts_with("inet mine ")));
    assert_eq!(s.rules.len(), 2);
    // Managing only another table makes `inet mine` foreign as well.
    let only = ["inet other".to_string()];
    let s = state_of(IPTABLES_JSON, IPTABLES_TXT, Some(&only)).unwrap();
    assert!(s.foreign_tables.contains(&"inet mine".to_string()));
    assert!(s.rules.is_empty());
}

#[test]
fn flushed_ruleset_is_a_valid_disabled_state() {
    let s = state_of(FLUSHED_JSON, FLUSHED_TXT, None).unwrap();
    assert!(!s.enabled);
    assert!(s.rules.is_empty());
    assert_eq!(s.inbound.len(), 2);
    assert!(s.inbound.iter().all(|d| !d.denies && d.policy.is_none()));
}

#[test]
fn malformed_listings_are_errors_never_an_enabled_state() {
    let truncated = &DROP_JSON[..DROP_JSON.len() / 2];
    let cases: [(&str, &str); 7] = [
        ("truncated", truncated),
        ("empty object", "{}"),
        ("not an array", r#"{"nftables": {}}"#),
        ("empty array", r#"{"nftables": []}"#),
        (
            "expr not an array",
            r#"{"nftables": [{"metainfo": {}}, {"table": {"family": "inet", "name": "t"}},
                {"chain": {"family": "inet", "table": "t", "name": "c", "type": "filter", "hook": "input", "policy": "drop"}},
                {"rule": {"family": "inet", "table": "t", "chain": "c", "expr": {"accept": null}}}]}"#,
        ),
        ("garbage", "\u{fffd}\u{fffd}PK\u{3}\u{4}"),
        (
            "wrong types",
            r#"{"nftables": [{"table": {"family": 4, "name": "t"}}]}"#,
        ),
    ];
    for (what, input) in cases {
        match json::parse(input) {
            Err(Error::Malformed {
                source_name,
                detail,
            }) => {
                assert_eq!(source_name, "nft -j list ruleset", "{what}");
                assert!(!detail.is_empty(), "{what}");
            }
            other => panic!("{what}: expected Malformed, got {other:?}"),
        }
    }
    // serde's position is in the message.
    let Err(e) = json::parse(truncated) else {
        panic!("truncated JSON parsed")
    };
    assert!(e.to_string().contains("line 1 column"), "{e}");
}

#[test]
fn text_that_does_not_match_the_json_is_an_error() {
    // One rule line missing from the text.
    let short = DROP_TXT.replace("\t\ttcp dport 25 accept\n", "");
    assert!(matches!(
        state_of(DROP_JSON, &short, None),
        Err(Error::Malformed { .. })
    ));
    // One rule line too many.
    let long = DROP_TXT.replace(
        "\t\ttcp dport 25 accept\n",
        "\t\ttcp dport 25 accept\n\t\ttcp dport 26 accept\n",
    );
    assert!(matches!(
        state_of(DROP_JSON, &long, None),
        Err(Error::Malformed { .. })
    ));
    // Truncated text.
    assert!(text::parse(&DROP_TXT[..DROP_TXT.len() / 2]).is_err());
}

#[test]
fn an_unknown_expression_makes_the_rule_opaque_not_the_listing_unreadable() {
    let future = DROP_JSON.replacen(
        r#"{"accept": null}"#,
        r#"{"quantum": {"entangled": true}}, {"accept": null}"#,
        1,
    );
    assert_ne!(future, DROP_JSON);
    let s = state_of(&future, DROP_TXT, None).unwrap();
    assert!(s.enabled);
    assert_eq!(rule(&s, "iif \"lo\" accept").simple, None);
}

#[test]
fn restore_script_recreates_each_table_and_refuses_odd_payloads() {
    let payload = Payload {
        tables: vec![SavedTable {
            family: "inet".into(),
            name: "filter".into(),
            text: "table inet filter {\n}".into(),
        }],
    };
    assert_eq!(
        restore_script(&payload).unwrap(),
        "table inet filter\ndelete table inet filter\ntable inet filter {\n}\n"
    );
    let mut wrong = payload.clone();
    wrong.tables[0].text = "table inet other {\n}\n".into();
    assert!(restore_script(&wrong).is_err());
    let mut injected = payload.clone();
    injected.tables[0].name = "filter\nflush ruleset".into();
    assert!(restore_script(&injected).is_err());
    assert!(restore_script(&Payload { tables: vec![] }).is_err());
}

#[test]
fn payload_round_trips_through_the_baseline_json() {
    let payload = Payload {
        tables: vec![SavedTable {
            family: "inet".into(),
            name: "filter".into(),
            text: DROP_TXT.into(),
        }],
    };
    let json = serde_json::to_string(&Restore::Nftables(payload.clone())).unwrap();
    let back: Restore = serde_json::from_str(&json).unwrap();
    assert_eq!(back, Restore::Nftables(payload));
}

#[test]
fn named_sets_and_maps_are_compared_but_not_a_dynamic_sets_elements() {
    let s = state_of(
        include_str!("../../tests/data/nft_sets.json"),
        include_str!("../../tests/data/nft_sets.txt"),
        None,
    )
    .unwrap();
    let sets: Vec<(&str, &str)> = s
        .rules
        .iter()
        .filter(|r| r.scope.contains(" set ") || r.scope.contains(" map "))
        .map(|r| (r.scope.as_str(), r.text.as_str()))
        .collect();
    assert_eq!(
        sets,
        [
            (
                "inet t set allow",
                "type ipv4_addr; flags interval; elements = { 1.1.1.1, 2.2.2.2, 3.3.3.3, \
                 4.4.4.4, 5.5.5.5, 6.6.6.6, 7.7.7.7, 8.8.8.8, 9.9.9.9, 10.0.0.0/8, \
                 11.11.11.11, 172.16.0.0/12, 192.168.1.1 }"
            ),
            (
                "inet t set ban",
                "type ipv4_addr; flags dynamic,timeout; timeout 1h"
            ),
            (
                "inet t map ports",
                "type inet_service : verdict; elements = { 22 : accept }"
            ),
        ]
    );
    // A rule matching a named set cannot be judged by its text alone.
    assert_eq!(rule(&s, "ip saddr @allow accept").simple, None);
}

#[test]
fn other_tools_tables_are_never_managed_by_default() {
    for name in [
        "f2b-table",
        "fail2ban",
        "sshguard",
        "crowdsec",
        "docker-bridges",
        "libvirt_network",
        "firewalld",
    ] {
        assert!(super::state::another_tools(name), "{name}");
    }
    for name in ["filter", "fw", "mangle", "host_firewall"] {
        assert!(!super::state::another_tools(name), "{name}");
    }
}
