//! What every backend reports, in one shape: whether the firewall is on, whether inbound traffic
//! is denied by default per address family, and the rules as normalised lines (for drift and
//! for required-rule checks).

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The firewall layer portwarden talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// Native nftables tables (`nft`).
    Nftables,
    /// iptables / ip6tables on the nf_tables kernel backend (`iptables-nft-*`).
    IptablesNft,
    /// iptables / ip6tables on the legacy x_tables backend (`iptables-legacy-*`).
    IptablesLegacy,
    /// Uncomplicated Firewall (drives iptables).
    Ufw,
    /// firewalld (drives nftables, `table inet firewalld`).
    Firewalld,
    /// Windows Defender Firewall, per profile.
    Windows,
    /// macOS packet filter.
    Pf,
    /// macOS application firewall (socketfilterfw).
    MacAppFirewall,
}

impl BackendKind {
    pub const ALL: [BackendKind; 8] = [
        Self::Nftables,
        Self::IptablesNft,
        Self::IptablesLegacy,
        Self::Ufw,
        Self::Firewalld,
        Self::Windows,
        Self::Pf,
        Self::MacAppFirewall,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Nftables => "nftables",
            Self::IptablesNft => "iptables-nft",
            Self::IptablesLegacy => "iptables-legacy",
            Self::Ufw => "ufw",
            Self::Firewalld => "firewalld",
            Self::Windows => "windows",
            Self::Pf => "pf",
            Self::MacAppFirewall => "mac-app-firewall",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An address family, for "is inbound denied by default" which is answered per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

/// A verdict as rules and policies use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Accept,
    Drop,
    Reject,
}

impl Verdict {
    pub fn denies(self) -> bool {
        matches!(self, Self::Drop | Self::Reject)
    }
}

/// The inbound default of one family (or one Windows/macOS profile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundDefault {
    /// `ipv4`, `ipv6`, or a profile name (`domain`, `private`, `public`).
    pub scope: String,
    /// The chain's policy as written (`drop`, `accept`, `block`), when there is one.
    pub policy: Option<String>,
    /// True when traffic no rule accepts is dropped or rejected: a drop policy, or a final
    /// unconditional drop/reject rule (firewalld's way).
    pub denies: bool,
}

/// One rule as a normalised line: handles, counters and comments removed, so two listings of
/// the same ruleset give the same lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Rule {
    /// Where the rule lives: `inet filter input`, `ipv4 filter INPUT`, `ufw`.
    pub scope: String,
    /// The rule in the backend's own syntax, normalised.
    pub text: String,
    /// What portwarden understood of it, for required-rule checks. `None` when the rule uses
    /// matches portwarden does not interpret; such a rule never satisfies a requirement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simple: Option<SimpleRule>,
}

/// The part of a rule a required-rule spec can talk about. A rule is only summarised this way
/// when it has no other conditions (apart from `ct state new`, counters, logging and comments).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SimpleRule {
    /// True when the rule sits in a chain inbound traffic passes (an input hook chain, or a
    /// chain such a chain jumps to).
    pub inbound: bool,
    /// `tcp`, `udp`, or `None` for any protocol.
    pub proto: Option<String>,
    /// Destination ports as inclusive ranges; empty means any port.
    pub dports: Vec<(u16, u16)>,
    /// Source networks as (address, prefix length); empty means any source.
    pub sources: Vec<(IpAddr, u8)>,
    /// Input interface, when the rule names one.
    pub iif: Option<String>,
    pub verdict: Verdict,
}

/// A firewall as one backend sees it right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub backend: BackendKind,
    /// The firewall is switched on: its tables/chains exist and hook into inbound traffic
    /// (ufw/firewalld: the frontend says so AND the kernel agrees).
    pub enabled: bool,
    /// Inbound default per family or profile.
    pub inbound: Vec<InboundDefault>,
    /// Rules in the tables this backend manages, sorted by scope then position.
    pub rules: Vec<Rule>,
    /// Tables that belong to other tools (Docker, fail2ban, iptables-nft under nft): listed,
    /// never restored or counted as drift.
    pub foreign_tables: Vec<String>,
    /// Facts a person should know: "ufw says active but INPUT policy is ACCEPT in the kernel".
    pub notes: Vec<String>,
}

impl State {
    /// True when every family or profile denies inbound traffic by default.
    pub fn inbound_default_deny(&self) -> bool {
        !self.inbound.is_empty() && self.inbound.iter().all(|d| d.denies)
    }
}
