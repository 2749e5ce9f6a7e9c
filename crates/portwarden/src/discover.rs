//! Zero-config mode: every TCP listener found on this host becomes a monitor — a connect
//! check on the address it listens on, plus an owner check for the program that holds it —
//! so `portwarden run` is useful before anyone writes a config. The listing at start-up gives
//! the first set; the listener watcher ([`crate::watch`]) adds the listeners that appear later.
//!
//! Names: `PROGRAM@ADDRESS:PORT` (`sshd@0.0.0.0:22`). A listener whose holder portwarden
//! cannot see (another user's process when not root, `/proc` mounted with `hidepid`, another
//! PID namespace) is named by what is known, `port-PORT@ADDRESS` (`port-2024@0.0.0.0`), and
//! watched without an owner check; [`Monitor::owner_unknown`] says why.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use portwarden_probe::{Probe, ProbeSpec, Target};
use portwarden_sockets::owner::ExpectedOwner;
use portwarden_sockets::{Listing, Protocol};

use crate::monitor::{Fingerprint, Monitor, Origin, Policy};

/// How often a discovered listener is checked.
pub const INTERVAL: Duration = Duration::from_secs(30);
/// The deadline of each check.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Monitors for the TCP listeners of `listing`, except those of this process.
pub fn monitors(listing: &Listing) -> Vec<Monitor> {
    let me = std::process::id();
    let mut by_name: BTreeMap<String, Monitor> = BTreeMap::new();
    for l in &listing.listeners {
        if l.protocol != Protocol::Tcp || l.owners.iter().any(|o| o.pid == me) {
            continue;
        }
        let name = name(l.owners.first().map(|o| o.name.as_str()), l.local);
        if by_name.contains_key(&name) {
            // SO_REUSEPORT: several sockets on one address are one service.
            continue;
        }
        let target = reachable(l.local);
        let owner = l.owners.first().map(|o| match &o.exe {
            Some(exe) => ExpectedOwner::Exe(exe.display().to_string()),
            None => ExpectedOwner::Name(o.name.clone()),
        });
        let mut spec = ProbeSpec::connect(Target {
            host: portwarden_probe::Host::Ip(target.ip()),
            port: target.port(),
        });
        spec.limits.deadline = TIMEOUT;
        spec.limits.connect_timeout = TIMEOUT;
        let Ok(probe) = Probe::new(spec) else {
            continue;
        };
        let definition = Fingerprint::of(&format!("discovered {target} owner {owner:?}"));
        by_name.insert(
            name.clone(),
            Monitor {
                name,
                probe,
                owner_unknown: owner.is_none().then(|| owner_unknown(listing, l)),
                owner,
                interval: INTERVAL,
                policy: Policy::default(),
                notify: Vec::new(),
                tags: vec!["discovered".into()],
                heal: crate::monitor::Heal::default(),
                origin: Origin::Discovered,
                definition,
            },
        );
    }
    by_name.into_values().collect()
}

/// The name of the monitor of a listener held by `process` (`None`: not visible).
pub fn name(process: Option<&str>, local: SocketAddr) -> String {
    match process {
        Some(p) => format!("{p}@{local}"),
        None => match local {
            SocketAddr::V4(a) => format!("port-{}@{}", a.port(), a.ip()),
            SocketAddr::V6(a) => format!("port-{}@[{}]", a.port(), a.ip()),
        },
    }
}

/// Why the holder of `l` is not known, for people.
fn owner_unknown(listing: &Listing, l: &portwarden_sockets::Listener) -> String {
    if listing.unreadable_processes > 0 && !portwarden_sockets::sees_all_owners() {
        format!(
            "the socket belongs to uid {}, and portwarden (uid {}, not root) cannot read the \
             processes of other users ({} unreadable); run it as root to check the owner",
            l.uid,
            rustix::process::geteuid().as_raw(),
            listing.unreadable_processes
        )
    } else if listing.unreadable_processes > 0 {
        format!(
            "the socket belongs to uid {}; {} processes could not be read (/proc mounted with \
             hidepid, or a process that ended meanwhile)",
            l.uid, listing.unreadable_processes
        )
    } else {
        format!(
            "the socket belongs to uid {}, but no visible process holds it: a process in \
             another PID namespace (a container), or the kernel",
            l.uid
        )
    }
}

/// The address to connect to for a listener: loopback for a wildcard.
pub(crate) fn reachable(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use portwarden_sockets::{Listener, Owner};

    fn listener(addr: &str, owner: Option<(&str, u32)>) -> Listener {
        Listener {
            protocol: Protocol::Tcp,
            local: addr.parse().unwrap(),
            inode: 1,
            uid: 0,
            owners: owner
                .map(|(name, pid)| Owner {
                    pid,
                    name: name.into(),
                    exe: Some(format!("/usr/sbin/{name}").into()),
                    uid: Some(0),
                    user: None,
                    unit: None,
                })
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn watches_each_listener_on_an_address_that_reaches_it() {
        let listing = Listing {
            listeners: vec![
                listener("0.0.0.0:22", Some(("sshd", 10))),
                listener("[::]:22", Some(("sshd", 10))),
                listener("127.0.0.53:53", Some(("resolved", 11))),
                listener("127.0.0.53:53", Some(("resolved", 11))),
                listener("0.0.0.0:9000", None),
                listener("127.0.0.1:9898", Some(("me", std::process::id()))),
            ],
            unreadable_processes: 0,
        };
        let found = monitors(&listing);
        let summary: Vec<(String, String, Option<String>)> = found
            .iter()
            .map(|m| {
                (
                    m.name.clone(),
                    m.probe.spec().target.to_string(),
                    m.owner.as_ref().map(ToString::to_string),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("port-9000@0.0.0.0".into(), "127.0.0.1:9000".into(), None),
                (
                    "resolved@127.0.0.53:53".into(),
                    "127.0.0.53:53".into(),
                    Some("/usr/sbin/resolved".into())
                ),
                (
                    "sshd@0.0.0.0:22".into(),
                    "127.0.0.1:22".into(),
                    Some("/usr/sbin/sshd".into())
                ),
                (
                    "sshd@[::]:22".into(),
                    "[::1]:22".into(),
                    Some("/usr/sbin/sshd".into())
                ),
            ]
        );
        let hidden = found.iter().find(|m| m.owner.is_none()).unwrap();
        let why = hidden.owner_unknown.as_deref().unwrap();
        assert!(why.starts_with("the socket belongs to uid 0"), "{why}");
        assert!(found
            .iter()
            .filter(|m| m.owner.is_some())
            .all(|m| m.owner_unknown.is_none()));
        assert_eq!(name(None, "[::]:22".parse().unwrap()), "port-22@[::]");
        assert!(found
            .iter()
            .all(|m| m.origin == Origin::Discovered && m.interval == INTERVAL));
    }
}
