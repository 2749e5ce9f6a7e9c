//! Where a probe connects: a host (name or address) and a port, resolved to every address
//! of the chosen family.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The host part of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A literal address: no DNS lookup.
    Ip(IpAddr),
    /// A name to resolve.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

impl Host {
    /// Parses a bare host: an IPv4 / IPv6 address (brackets allowed) or a DNS name.
    pub fn parse(text: &str) -> Result<Self, TargetError> {
        let unbracketed = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        let valid_name = !text.is_empty()
            && text.len() <= 253
            && text.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if valid_name {
            Ok(Host::Name(text.to_string()))
        } else {
            Err(TargetError::BadHost(text.to_string()))
        }
    }
}

/// A host and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: Host,
    pub port: u16,
}

/// A target that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TargetError {
    /// The text has no `:port` and no default port was given.
    #[error("missing port in {0:?} (write host:port, or [v6-address]:port)")]
    MissingPort(String),
    /// The port is not a number in 1-65535.
    #[error("port must be 1-65535, got {0:?}")]
    BadPort(String),
    /// Neither an address nor a valid host name.
    #[error("not a valid host name or address: {0:?}")]
    BadHost(String),
}

impl Target {
    /// Parses `host:port`, `1.2.3.4:port`, `[::1]:port`; a bare host takes `default_port`.
    pub fn parse_with_default(text: &str, default_port: Option<u16>) -> Result<Self, TargetError> {
        let text = text.trim();
        // A bare IPv6 address has colons but no port.
        if let Ok(ip) = text.parse::<IpAddr>() {
            let port = default_port.ok_or_else(|| TargetError::MissingPort(text.into()))?;
            return Ok(Target {
                host: Host::Ip(ip),
                port,
            });
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (inside, after) = rest
                .split_once(']')
                .ok_or_else(|| TargetError::BadHost(text.into()))?;
            match after.strip_prefix(':') {
                Some(port) => (format!("[{inside}]"), Some(port)),
                None if after.is_empty() => (format!("[{inside}]"), None),
                None => return Err(TargetError::BadHost(text.into())),
            }
        } else {
            match text.rsplit_once(':') {
                Some((host, port)) => (host.to_string(), Some(port)),
                None => (text.to_string(), None),
            }
        };
        let port = match port {
            Some(p) => parse_port(p)?,
            None => default_port.ok_or_else(|| TargetError::MissingPort(text.into()))?,
        };
        Ok(Target {
            host: Host::parse(&host)?,
            port,
        })
    }
}

/// Parses a TCP port, 1-65535.
pub fn parse_port(text: &str) -> Result<u16, TargetError> {
    match text.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(TargetError::BadPort(text.into())),
    }
}

impl FromStr for Target {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Target::parse_with_default(s, None)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            _ => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

/// Which address family to connect over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Every resolved address, in resolver order.
    #[default]
    Any,
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

impl Family {
    /// Whether `addr` belongs to this family.
    pub fn admits(self, addr: &IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => addr.is_ipv4(),
            Family::V6 => addr.is_ipv6(),
        }
    }
}

/// Resolves a target to all its addresses of `family`, in resolver order. Literal addresses
/// skip the resolver entirely (no thread hop on the hot path).
pub async fn resolve(target: &Target, family: Family) -> std::io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = match &target.host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, target.port)],
        Host::Name(name) => tokio::net::lookup_host((name.as_str(), target.port))
            .await?
            .collect(),
    };
    let mut seen = Vec::with_capacity(addrs.len());
    for a in addrs {
        if family.admits(&a.ip()) && !seen.contains(&a) {
            seen.push(a);
        }
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_target_form() {
        let t: Target = "127.0.0.1:22".parse().unwrap();
        assert_eq!(t.host, Host::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(t.port, 22);
        let t: Target = "[::1]:8080".parse().unwrap();
        assert_eq!(t.host, Host::Ip("::1".parse().unwrap()));
        assert_eq!(t.to_string(), "[::1]:8080");
        let t: Target = "mail.example.com:25".parse().unwrap();
        assert_eq!(t.host, Host::Name("mail.example.com".into()));
        let t = Target::parse_with_default("::1", Some(22)).unwrap();
        assert_eq!(t.to_string(), "[::1]:22");
        let t = Target::parse_with_default("localhost", Some(25)).unwrap();
        assert_eq!(t.to_string(), "localhost:25");
    }

    #[test]
    fn rejects_bad_targets_with_the_reason() {
        assert_eq!(
            "host:0".parse::<Target>().unwrap_err().to_string(),
            "port must be 1-65535, got \"0\""
        );
        assert!(matches!(
            "host:99999".parse::<Target>(),
            Err(TargetError::BadPort(_))
        ));
        assert!(matches!(
            "host".parse::<Target>(),
            Err(TargetError::MissingPort(_))
        ));
        assert!(matches!(
            "bad host:1".parse::<Target>(),
            Err(TargetError::BadHost(_))
        ));
        assert!(matches!(
            "[::1".parse::<Target>(),
            Err(TargetError::BadHost(_))
        ));
    }

    #[tokio::test]
    async fn resolves_names_to_the_chosen_family() {
        let t = Target::parse_with_default("localhost", Some(9)).unwrap();
        let v4 = resolve(&t, Family::V4).await.unwrap();
        assert!(!v4.is_empty() && v4.iter().all(|a| a.is_ipv4()));
        let literal = resolve(&"[::1]:9".parse().unwrap(), Family::V4)
            .await
            .unwrap();
        assert!(literal.is_empty(), "a v6 literal has no v4 address");
    }
}
