//! "The socket on this port must belong to …": an expected owner and the verdict on a port.

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::{Listener, Listing, Owner, Protocol};

/// Who is expected to hold a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedOwner {
    /// A process name (`comm`), e.g. `nginx`.
    Name(String),
    /// An executable path, e.g. `/usr/sbin/nginx`.
    Exe(String),
    /// A systemd unit, written `unit:nginx.service` (`.service` may be left out).
    Unit(String),
}

impl ExpectedOwner {
    /// Parses `nginx`, `/usr/sbin/nginx` or `unit:nginx.service`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("owner must not be empty".into());
        }
        if let Some(unit) = text.strip_prefix("unit:") {
            if unit.is_empty() || unit.contains('/') {
                return Err(format!("invalid unit name {unit:?}"));
            }
            let unit = if unit.contains('.') {
                unit.to_string()
            } else {
                format!("{unit}.service")
            };
            return Ok(Self::Unit(unit));
        }
        if text.starts_with('/') {
            return Ok(Self::Exe(text.to_string()));
        }
        if text.contains('/') {
            return Err(format!(
                "owner {text:?}: give a process name, an absolute executable path, or unit:NAME"
            ));
        }
        Ok(Self::Name(text.to_string()))
    }

    /// Whether `owner` is the expected one. Names compare with `comm`, which the kernel cuts
    /// to 15 bytes, and with the executable's file name.
    pub fn matches(&self, owner: &Owner) -> bool {
        match self {
            Self::Name(name) => {
                let comm_cut: String = name.chars().take(15).collect();
                owner.name == *name
                    || owner.name == comm_cut
                    || owner
                        .exe
                        .as_deref()
                        .and_then(|e| e.file_name())
                        .is_some_and(|f| f == name.as_str())
            }
            Self::Exe(path) => owner
                .exe
                .as_deref()
                .is_some_and(|e| e == std::path::Path::new(path)),
            Self::Unit(unit) => owner.unit.as_deref() == Some(unit.as_str()),
        }
    }
}

impl fmt::Display for ExpectedOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(n) => f.write_str(n),
            Self::Exe(p) => f.write_str(p),
            Self::Unit(u) => write!(f, "unit {u}"),
        }
    }
}

/// The verdict on who holds a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum OwnerVerdict {
    /// Every socket reaching the address belongs to the expected owner.
    Ok { owners: Vec<Owner> },
    /// Nothing listens there.
    NotListening,
    /// Someone else holds it.
    Wrong { holders: Vec<Owner> },
    /// A socket is there but its owner cannot be read (rights).
    Unknown,
}

impl OwnerVerdict {
    /// One sentence for people, naming the port, the holder and the expectation.
    pub fn describe(&self, addr: SocketAddr, expected: &ExpectedOwner) -> String {
        let port = addr.port();
        match self {
            Self::Ok { owners } => format!("port {port} is held by {}", list_owners(owners)),
            Self::NotListening => format!("nothing listens on {addr}, expected {expected}"),
            Self::Wrong { holders } => {
                format!("port {port} is held by {}, expected {expected}", list_owners(holders))
            }
            Self::Unknown => format!(
                "port {port} is held by an unknown owner (run as root to see it), expected {expected}"
            ),
        }
    }
}

fn list_owners(owners: &[Owner]) -> String {
    let mut by_name: Vec<(String, Vec<u32>)> = Vec::new();
    for o in owners {
        match by_name.iter_mut().find(|(n, _)| *n == o.name) {
            Some((_, pids)) => pids.push(o.pid),
            None => by_name.push((o.name.clone(), vec![o.pid])),
        }
    }
    by_name
        .iter()
        .map(|(name, pids)| {
            let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
            let label = if pids.len() == 1 { "pid" } else { "pids" };
            format!("{name} ({label} {})", pids.join(", "))
        })
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Checks who holds TCP `addr` in `listing`.
pub fn check(listing: &Listing, addr: SocketAddr, expected: &ExpectedOwner) -> OwnerVerdict {
    let reaching = listing.reaching(Protocol::Tcp, addr);
    if reaching.is_empty() {
        return OwnerVerdict::NotListening;
    }
    let holders: Vec<Owner> = reaching
        .iter()
        .flat_map(|l: &&Listener| l.owners.iter().cloned())
        .collect();
    let wrong: Vec<Owner> = holders
        .iter()
        .filter(|o| !expected.matches(o))
        .cloned()
        .collect();
    if !wrong.is_empty() {
        return OwnerVerdict::Wrong { holders: wrong };
    }
    if reaching.iter().any(|l| l.owner_unknown()) {
        return OwnerVerdict::Unknown;
    }
    OwnerVerdict::Ok { owners: holders }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn owner(pid: u32, name: &str, exe: &str, unit: Option<&str>) -> Owner {
        Owner {
            pid,
            name: name.into(),
            exe: Some(PathBuf::from(exe)),
            uid: Some(0),
            user: Some("root".into()),
            unit: unit.map(str::to_string),
        }
    }

    fn listing(entries: &[(&str, Vec<Owner>)]) -> Listing {
        Listing {
            listeners: entries
                .iter()
                .enumerate()
                .map(|(i, (addr, owners))| Listener {
                    protocol: Protocol::Tcp,
                    local: addr.parse().unwrap(),
                    inode: i as u64 + 1,
                    uid: 0,
                    owners: owners.clone(),
                })
                .collect(),
            unreadable_processes: 0,
        }
    }

    #[test]
    fn parses_the_three_owner_forms() {
        assert_eq!(
            ExpectedOwner::parse("nginx").unwrap(),
            ExpectedOwner::Name("nginx".into())
        );
        assert_eq!(
            ExpectedOwner::parse("/usr/sbin/nginx").unwrap(),
            ExpectedOwner::Exe("/usr/sbin/nginx".into())
        );
        assert_eq!(
            ExpectedOwner::parse("unit:nginx").unwrap(),
            ExpectedOwner::Unit("nginx.service".into())
        );
        assert!(ExpectedOwner::parse("").is_err());
        assert!(ExpectedOwner::parse("bin/nginx")
            .unwrap_err()
            .contains("absolute"));
        assert!(ExpectedOwner::parse("unit:").is_err());
    }

    #[test]
    fn matches_name_comm_cut_exe_and_unit() {
        let o = owner(7, "python3", "/usr/bin/python3.11", Some("web.service"));
        assert!(ExpectedOwner::parse("python3").unwrap().matches(&o));
        assert!(ExpectedOwner::parse("python3.11").unwrap().matches(&o));
        assert!(ExpectedOwner::parse("/usr/bin/python3.11")
            .unwrap()
            .matches(&o));
        assert!(ExpectedOwner::parse("unit:web.service")
            .unwrap()
            .matches(&o));
        assert!(!ExpectedOwner::parse("nginx").unwrap().matches(&o));
        let long = owner(8, "portwarden-hold", "/opt/portwarden-holder", None);
        assert!(ExpectedOwner::parse("portwarden-holder")
            .unwrap()
            .matches(&long));
    }

    #[test]
    fn names_the_intruder() {
        let l = listing(&[(
            "0.0.0.0:8080",
            vec![owner(4121, "python3", "/usr/bin/python3", None)],
        )]);
        let expected = ExpectedOwner::parse("nginx").unwrap();
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let verdict = check(&l, addr, &expected);
        assert_eq!(
            verdict.describe(addr, &expected),
            "port 8080 is held by python3 (pid 4121), expected nginx"
        );
    }

    #[test]
    fn verdicts_for_missing_shared_and_unknown_owners() {
        let expected = ExpectedOwner::parse("nginx").unwrap();
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(
            check(&listing(&[]), addr, &expected),
            OwnerVerdict::NotListening
        );
        let shared = listing(&[(
            "0.0.0.0:80",
            vec![
                owner(1, "nginx", "/usr/sbin/nginx", None),
                owner(2, "nginx", "/usr/sbin/nginx", None),
            ],
        )]);
        let v = check(&shared, addr, &expected);
        assert!(matches!(&v, OwnerVerdict::Ok { owners } if owners.len() == 2));
        assert_eq!(
            v.describe(addr, &expected),
            "port 80 is held by nginx (pids 1, 2)"
        );
        assert_eq!(
            check(&listing(&[("0.0.0.0:80", vec![])]), addr, &expected),
            OwnerVerdict::Unknown
        );
        // A listener on another address does not reach this one.
        assert_eq!(
            check(
                &listing(&[("127.0.0.2:80", vec![owner(1, "x", "/x", None)])]),
                addr,
                &expected
            ),
            OwnerVerdict::NotListening
        );
    }
}
