//! From the parsed JSON and text listings to the crate's [`State`]: which tables are managed,
//! whether inbound traffic is denied per family, and each rule as a line plus, when it is
//! simple enough, a [`SimpleRule`].

use std::collections::{BTreeSet, VecDeque};
use std::net::IpAddr;

use serde_json::Value;

use super::json::{Chain, Ruleset, Table};
use super::text::{self, TextTable};
use crate::model::{BackendKind, InboundDefault, Rule, SimpleRule, State, Verdict};
use crate::Error;

/// The managed-table filter: `None` = every native table that is not another tool's.
pub fn is_managed(table: &Table, managed: Option<&[String]>) -> bool {
    if table.is_iptables_nft() {
        return false;
    }
    match managed {
        Some(m) => m.iter().any(|id| same_table(id, &table.id())),
        None => !another_tools(&table.name),
    }
}

/// Tables that tools keep for themselves and change at will (fail2ban's bans, Docker's and
/// libvirt's NAT, firewalld's zones): restoring an old copy would undo their work, so without
/// an explicit `tables` list they are never managed.
pub fn another_tools(name: &str) -> bool {
    const PREFIXES: [&str; 12] = [
        "f2b",
        "fail2ban",
        "sshguard",
        "crowdsec",
        "docker",
        "libvirt",
        "firewalld",
        "cni",
        "kube",
        "netavark",
        "podman",
        "lxd",
    ];
    let name = name.to_ascii_lowercase();
    PREFIXES.iter().any(|p| name.starts_with(p))
}

/// `inet  filter` and `inet filter` name the same table.
pub fn same_table(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// Builds the state. `listing` is the `nft -s list ruleset` text of the same ruleset; its lines
/// give each rule's text. A mismatch between the two is an error, never a guess.
pub fn build(
    ruleset: &Ruleset,
    listing: &[TextTable],
    managed: Option<&[String]>,
) -> Result<State, Error> {
    let bad = |detail: String| Error::malformed(text::SOURCE, detail);
    let mut rules = Vec::new();
    let mut foreign_tables = Vec::new();
    for table in &ruleset.tables {
        if table.is_iptables_nft() {
            foreign_tables.push(format!("{} (iptables-nft)", table.id()));
            continue;
        }
        if !is_managed(table, managed) {
            foreign_tables.push(table.id());
            continue;
        }
        let shown = listing
            .iter()
            .find(|t| t.family == table.family && t.name == table.name)
            .ok_or_else(|| bad(format!("table {} is missing from the text", table.id())))?;
        let inbound = inbound_chains(table);
        for set in &shown.sets {
            rules.push(Rule {
                scope: format!("{} {} {}", table.id(), set.kind, set.name),
                text: set_text(&set.lines),
                simple: None,
            });
        }
        for chain in &table.chains {
            let scope = format!("{} {}", table.id(), chain.name);
            let lines = &shown
                .chains
                .iter()
                .find(|c| c.name == chain.name)
                .ok_or_else(|| bad(format!("chain {scope} is missing from the text")))?
                .lines;
            let n = chain.rules.len();
            let Some(headers) = lines.len().checked_sub(n).map(|h| &lines[..h]) else {
                return Err(bad(format!(
                    "chain {scope}: the JSON has {n} rules, the text only {} lines",
                    lines.len()
                )));
            };
            if let Some(odd) = headers.iter().find(|l| !is_header(l)) {
                return Err(bad(format!(
                    "chain {scope}: the text has more rules than the JSON (`{odd}`)"
                )));
            }
            // The header as a pseudo-rule: a changed policy or a deleted chain is drift.
            if chain.base.is_some() || !headers.is_empty() {
                rules.push(Rule {
                    scope: scope.clone(),
                    text: headers.join(" "),
                    simple: None,
                });
            }
            let is_inbound = inbound.contains(&chain.name);
            for (rule, line) in chain.rules.iter().zip(&lines[headers.len()..]) {
                rules.push(Rule {
                    scope: scope.clone(),
                    text: line.clone(),
                    simple: simple_rule(&rule.expr, is_inbound),
                });
            }
        }
    }
    let all_input: Vec<(&Table, &Chain)> = ruleset
        .tables
        .iter()
        .flat_map(|t| t.chains.iter().map(move |c| (t, c)))
        .filter(|(t, c)| c.is_input_filter() && matches!(t.family.as_str(), "ip" | "ip6" | "inet"))
        .collect();
    let inbound = [("ipv4", "ip"), ("ipv6", "ip6")]
        .into_iter()
        .map(|(scope, family)| {
            let chains: Vec<&Chain> = all_input
                .iter()
                .filter(|(t, _)| t.family == family || t.family == "inet")
                .map(|(_, c)| *c)
                .collect();
            inbound_default(scope, &chains)
        })
        .collect();
    Ok(State {
        backend: BackendKind::Nftables,
        enabled: !all_input.is_empty(),
        inbound,
        rules,
        foreign_tables,
        notes: Vec::new(),
    })
}

/// A named set or map as one line. The elements of a set the packet path fills itself
/// (`flags dynamic` or `timeout`, fail2ban-style) change by design and are left out.
fn set_text(lines: &[String]) -> String {
    let dynamic = lines.iter().any(|l| {
        (l.starts_with("flags ") && (l.contains("dynamic") || l.contains("timeout")))
            || l.starts_with("timeout ")
    });
    lines
        .iter()
        .filter(|l| !(dynamic && l.starts_with("elements =")))
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Lines nft prints at the top of a chain body before any rule.
fn is_header(line: &str) -> bool {
    ["type ", "policy ", "comment ", "devices "]
        .iter()
        .any(|p| line.starts_with(p))
}

/// One family's default: it denies when any input chain covering it does (a drop in any chain
/// on a hook is final). The policy shown is a denying chain's, else the first chain's.
fn inbound_default(scope: &str, chains: &[&Chain]) -> InboundDefault {
    let described: Vec<(bool, String)> = chains
        .iter()
        .filter_map(|c| {
            let base = c.base.as_ref()?;
            let last = c.rules.last().and_then(|r| final_denial(&r.expr));
            let denies = base.policy == "drop" || last.is_some();
            let shown = match last {
                Some(v) if base.policy != "drop" => format!("{}, final {v}", base.policy),
                _ => base.policy.clone(),
            };
            Some((denies, shown))
        })
        .collect();
    let pick = described
        .iter()
        .find(|(d, _)| *d)
        .or_else(|| described.first());
    InboundDefault {
        scope: scope.to_string(),
        policy: pick.map(|(_, p)| p.clone()),
        denies: pick.is_some_and(|(d, _)| *d),
    }
}

/// `drop` or `reject` when the rule denies everything: only a verdict, with at most a counter
/// or log before it.
fn final_denial(expr: &[Value]) -> Option<&'static str> {
    let (last, rest) = expr.split_last()?;
    if !rest
        .iter()
        .all(|e| key_of(e).is_some_and(|k| k == "counter" || k == "log"))
    {
        return None;
    }
    match key_of(last)? {
        "drop" => Some("drop"),
        "reject" => Some("reject"),
        _ => None,
    }
}

/// The only key of a one-key object, the way nft JSON names statements and expressions.
fn key_of(v: &Value) -> Option<&str> {
    let obj = v.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    obj.keys().next().map(String::as_str)
}

/// Chains of `table` inbound traffic passes: input filter base chains and, transitively, the
/// chains they jump or goto (verdict maps included).
fn inbound_chains(table: &Table) -> BTreeSet<String> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut queue: VecDeque<&Chain> = table
        .chains
        .iter()
        .filter(|c| c.is_input_filter())
        .collect();
    while let Some(chain) = queue.pop_front() {
        if !seen.insert(chain.name.clone()) {
            continue;
        }
        let mut targets = Vec::new();
        for rule in &chain.rules {
            for e in &rule.expr {
                jump_targets(e, &mut targets);
            }
        }
        queue.extend(targets.iter().filter_map(|t| table.chain(t)));
    }
    seen
}

fn jump_targets(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, inner) in map {
                if k == "jump" || k == "goto" {
                    if let Some(t) = inner.get("target").and_then(Value::as_str) {
                        out.push(t.to_string());
                    }
                }
                jump_targets(inner, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| jump_targets(i, out)),
        _ => {}
    }
}

/// What a required-rule check can use of a rule, or `None` when the rule has any condition or
/// statement portwarden does not interpret (a future expression type lands here too).
pub fn simple_rule(expr: &[Value], inbound: bool) -> Option<SimpleRule> {
    let mut rule = SimpleRule {
        inbound,
        proto: None,
        dports: Vec::new(),
        sources: Vec::new(),
        iif: None,
        verdict: Verdict::Accept,
    };
    let (last, rest) = expr.split_last()?;
    rule.verdict = match key_of(last)? {
        "accept" => Verdict::Accept,
        "drop" => Verdict::Drop,
        "reject" => Verdict::Reject,
        _ => return None,
    };
    let mut have_ports = false;
    let mut have_sources = false;
    for e in rest {
        let key = key_of(e)?;
        match key {
            "counter" | "log" => {}
            "match" => {
                let m = e.get("match")?;
                let op = m.get("op")?.as_str()?;
                if op != "==" && op != "in" {
                    return None;
                }
                let (left, right) = (m.get("left")?, m.get("right")?);
                match key_of(left)? {
                    "meta" => match left.get("meta")?.get("key")?.as_str()? {
                        "l4proto" => set_proto(&mut rule, right.as_str()?)?,
                        "iif" | "iifname" if rule.iif.is_none() => {
                            rule.iif = Some(right.as_str()?.to_string())
                        }
                        _ => return None,
                    },
                    "ct" => {
                        // `ct state new` (alone or with others) restricts nothing a fresh
                        // connection needs; any other ct match does.
                        if left.get("ct")?.get("key")?.as_str()? != "state" || !has_new(right) {
                            return None;
                        }
                    }
                    "payload" => {
                        let p = left.get("payload")?;
                        let proto = p.get("protocol")?.as_str()?;
                        match (proto, p.get("field")?.as_str()?) {
                            ("ip", "protocol") | ("ip6", "nexthdr") => {
                                set_proto(&mut rule, right.as_str()?)?
                            }
                            ("tcp" | "udp", "dport") if !have_ports => {
                                set_proto(&mut rule, proto)?;
                                rule.dports = ports(right)?;
                                have_ports = true;
                            }
                            ("ip" | "ip6", "saddr") if !have_sources => {
                                rule.sources = networks(right)?;
                                have_sources = true;
                            }
                            _ => return None,
                        }
                    }
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
    Some(rule)
}

/// Records the protocol; a rule asking for two different ones is not simple.
fn set_proto(rule: &mut SimpleRule, proto: &str) -> Option<()> {
    if proto != "tcp" && proto != "udp" {
        return None;
    }
    match &rule.proto {
        Some(p) if p != proto => None,
        _ => {
            rule.proto = Some(proto.to_string());
            Some(())
        }
    }
}

fn has_new(right: &Value) -> bool {
    match right {
        Value::String(s) => s == "new",
        Value::Array(items) => items.iter().any(|i| i.as_str() == Some("new")),
        _ => false,
    }
}

/// `22`, `{"range":[a,b]}`, `{"set":[22, {"range":…}]}`.
fn ports(right: &Value) -> Option<Vec<(u16, u16)>> {
    let one = |v: &Value| -> Option<(u16, u16)> {
        if let Some(p) = v.as_u64() {
            let p = u16::try_from(p).ok()?;
            return Some((p, p));
        }
        let range = v.get("range")?.as_array()?;
        match range.as_slice() {
            [lo, hi] => Some((
                u16::try_from(lo.as_u64()?).ok()?,
                u16::try_from(hi.as_u64()?).ok()?,
            )),
            _ => None,
        }
    };
    match right.get("set").and_then(Value::as_array) {
        Some(items) => items.iter().map(one).collect(),
        None => Some(vec![one(right)?]),
    }
}

/// `"10.0.0.1"`, `{"prefix":{"addr","len"}}`, or a set of those.
fn networks(right: &Value) -> Option<Vec<(IpAddr, u8)>> {
    let one = |v: &Value| -> Option<(IpAddr, u8)> {
        if let Some(s) = v.as_str() {
            let addr: IpAddr = s.parse().ok()?;
            return Some((addr, if addr.is_ipv4() { 32 } else { 128 }));
        }
        let p = v.get("prefix")?;
        let addr: IpAddr = p.get("addr")?.as_str()?.parse().ok()?;
        let len = u8::try_from(p.get("len")?.as_u64()?).ok()?;
        (len <= if addr.is_ipv4() { 32 } else { 128 }).then_some((addr, len))
    };
    match right.get("set").and_then(Value::as_array) {
        Some(items) => items.iter().map(one).collect(),
        None => Some(vec![one(right)?]),
    }
}
