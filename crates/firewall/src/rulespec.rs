//! Required rules, written small: `tcp/22 from 10.0.0.0/8`, `udp/53`, `drop tcp/23`.
//! A requirement is met by an inbound rule with the same verdict whose protocol, port and
//! source cover it; a rule with conditions portwarden does not understand never counts.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Serialize;

use crate::model::{Rule, Verdict};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequiredRule {
    pub verdict: Verdict,
    pub proto: String,
    pub port: u16,
    /// Source network; `None` means the rule must accept from anywhere.
    pub from: Option<(IpAddr, u8)>,
}

impl FromStr for RequiredRule {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let usage = "expected `[accept|drop|reject] tcp|udp/PORT [from ADDR[/LEN]]`";
        let mut words = spec.split_whitespace().peekable();
        let verdict = match words.peek().copied() {
            Some("accept") => Some(Verdict::Accept),
            Some("drop") => Some(Verdict::Drop),
            Some("reject") => Some(Verdict::Reject),
            _ => None,
        };
        if verdict.is_some() {
            words.next();
        }
        let Some(proto_port) = words.next() else {
            return Err(format!("empty rule; {usage}"));
        };
        let (proto, port) = proto_port
            .split_once('/')
            .ok_or_else(|| format!("`{proto_port}`: {usage}"))?;
        if proto != "tcp" && proto != "udp" {
            return Err(format!("`{proto}`: protocol must be tcp or udp"));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("`{port}`: port must be 1-65535"))?;
        let from = match (words.next(), words.next()) {
            (None, _) => None,
            (Some("from"), Some(net)) => Some(parse_net(net)?),
            (Some(word), _) => return Err(format!("unexpected `{word}`; {usage}")),
        };
        if let Some(extra) = words.next() {
            return Err(format!("unexpected `{extra}`; {usage}"));
        }
        Ok(RequiredRule {
            verdict: verdict.unwrap_or(Verdict::Accept),
            proto: proto.to_string(),
            port,
            from,
        })
    }
}

/// `10.0.0.0/8`, `2001:db8::/32` or a single address.
pub fn parse_net(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("`{text}`: not an IP address or network"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("`{text}`: prefix length must be 0-{max}"))?,
    };
    Ok((addr, len))
}

/// True when network `outer` contains all of network `inner`.
pub fn net_contains(outer: (IpAddr, u8), inner: (IpAddr, u8)) -> bool {
    if outer.1 > inner.1 {
        return false;
    }
    match (outer.0, inner.0) {
        (IpAddr::V4(o), IpAddr::V4(i)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(outer.1)).unwrap_or(0);
            u32::from(o) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(o), IpAddr::V6(i)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(outer.1)).unwrap_or(0);
            u128::from(o) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

impl RequiredRule {
    /// True when `rule` provides what this requirement asks for.
    pub fn satisfied_by(&self, rule: &Rule) -> bool {
        let Some(simple) = &rule.simple else {
            return false;
        };
        simple.inbound
            && simple.verdict == self.verdict
            && simple.iif.is_none()
            && simple.proto.as_deref().is_none_or(|p| p == self.proto)
            && (simple.dports.is_empty()
                || simple
                    .dports
                    .iter()
                    .any(|(lo, hi)| (*lo..=*hi).contains(&self.port)))
            && match self.from {
                None => simple.sources.is_empty(),
                Some(net) => {
                    simple.sources.is_empty()
                        || simple.sources.iter().any(|src| net_contains(*src, net))
                }
            }
    }
}

impl fmt::Display for RequiredRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.verdict {
            Verdict::Accept => "accept",
            Verdict::Drop => "drop",
            Verdict::Reject => "reject",
        };
        write!(f, "{verdict} {}/{}", self.proto, self.port)?;
        if let Some((addr, len)) = self.from {
            write!(f, " from {addr}/{len}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SimpleRule;

    fn rule(simple: SimpleRule) -> Rule {
        Rule {
            scope: "inet filter input".into(),
            text: "x".into(),
            simple: Some(simple),
        }
    }

    fn ssh_from(sources: Vec<(IpAddr, u8)>) -> SimpleRule {
        SimpleRule {
            inbound: true,
            proto: Some("tcp".into()),
            dports: vec![(22, 22)],
            sources,
            iif: None,
            verdict: Verdict::Accept,
        }
    }

    #[test]
    fn parses_the_small_forms_and_names_what_is_wrong() {
        let r: RequiredRule = "tcp/22 from 10.0.0.0/8".parse().unwrap();
        assert_eq!(r.to_string(), "accept tcp/22 from 10.0.0.0/8");
        assert_eq!(
            "drop udp/53".parse::<RequiredRule>().unwrap().verdict,
            Verdict::Drop
        );
        assert!("icmp/1"
            .parse::<RequiredRule>()
            .unwrap_err()
            .contains("tcp or udp"));
        assert!("tcp/0"
            .parse::<RequiredRule>()
            .unwrap_err()
            .contains("1-65535"));
        assert!("tcp/22 from 10.0.0.0/33"
            .parse::<RequiredRule>()
            .unwrap_err()
            .contains("0-32"));
        assert!("tcp/22 to x"
            .parse::<RequiredRule>()
            .unwrap_err()
            .contains("`to`"));
        assert!("".parse::<RequiredRule>().is_err());
    }

    #[test]
    fn a_wider_or_equal_source_satisfies_a_narrower_one_never_the_reverse() {
        let need: RequiredRule = "tcp/22 from 10.1.0.0/16".parse().unwrap();
        assert!(need.satisfied_by(&rule(ssh_from(vec![parse_net("10.0.0.0/8").unwrap()]))));
        assert!(need.satisfied_by(&rule(ssh_from(vec![]))));
        assert!(!need.satisfied_by(&rule(ssh_from(vec![parse_net("10.1.2.0/24").unwrap()]))));
        let anywhere: RequiredRule = "tcp/22".parse().unwrap();
        assert!(!anywhere.satisfied_by(&rule(ssh_from(vec![parse_net("10.0.0.0/8").unwrap()]))));
    }

    #[test]
    fn port_ranges_protocol_verdict_and_direction_all_count() {
        let need: RequiredRule = "tcp/443".parse().unwrap();
        let mut r = ssh_from(vec![]);
        r.dports = vec![(80, 80), (400, 500)];
        assert!(need.satisfied_by(&rule(r.clone())));
        r.verdict = Verdict::Drop;
        assert!(!need.satisfied_by(&rule(r.clone())));
        r.verdict = Verdict::Accept;
        r.proto = Some("udp".into());
        assert!(!need.satisfied_by(&rule(r.clone())));
        r.proto = Some("tcp".into());
        r.inbound = false;
        assert!(!need.satisfied_by(&rule(r)));
        let opaque = Rule {
            scope: "s".into(),
            text: "tcp dport 443 meta mark 1 accept".into(),
            simple: None,
        };
        assert!(!need.satisfied_by(&opaque));
    }
}
