//! portwarden's view of the local side of ports: every listening TCP socket (and bound UDP
//! socket) of this network namespace, and the processes that hold it.
//!
//! Data enters from the operating system ([`list`]: on Linux `/proc/net/{tcp,tcp6,udp,udp6}`
//! and each process's file descriptors, read with the `procfs` crate) and leaves as a
//! [`Listing`]. On top of it:
//! - [`owner`]: "must belong to nginx" checks (`owner = "nginx"`, an exe path, or
//!   `unit:nginx.service`) with a verdict that names the intruder;
//! - [`inventory`]: snapshots of the listeners and the drift between two of them.
//!
//! Other platforms compile and answer [`SocketsError::Unsupported`].

pub mod inventory;
pub mod owner;

#[cfg(target_os = "linux")]
mod linux;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Transport protocol of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// A process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    /// The process name (`comm`, at most 15 bytes on Linux).
    pub name: String,
    /// The executable, when readable.
    pub exe: Option<PathBuf>,
    pub uid: Option<u32>,
    /// The user name of `uid`, when it has one.
    pub user: Option<String>,
    /// The systemd unit the process runs in (from its cgroup), e.g. `nginx.service`.
    pub unit: Option<String>,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (pid {})", self.name, self.pid)
    }
}

/// One listening (TCP) or bound (UDP) socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub protocol: Protocol,
    pub local: SocketAddr,
    /// The kernel's socket inode: two listeners on one port (SO_REUSEPORT) differ here.
    pub inode: u64,
    /// The uid that created the socket.
    pub uid: u32,
    /// Every process with the socket open (several for pre-fork servers); empty when the
    /// owner could not be read.
    pub owners: Vec<Owner>,
}

impl Listener {
    /// The port.
    pub fn port(&self) -> u16 {
        self.local.port()
    }

    /// Whether the owner is unknown (no process found, or not allowed to look).
    pub fn owner_unknown(&self) -> bool {
        self.owners.is_empty()
    }

    /// Whether a connection to `addr` on this listener's port would reach this socket:
    /// same address, or this socket listens on the wildcard of the family (`::` also takes
    /// IPv4 unless it is v6-only, which `/proc` does not tell; we assume dual-stack).
    pub fn accepts(&self, addr: SocketAddr) -> bool {
        if addr.port() != self.port() {
            return false;
        }
        let mine = self.local.ip();
        mine == addr.ip()
            || (mine.is_unspecified() && (mine.is_ipv6() || addr.is_ipv4()))
            || to_canonical(addr.ip()) == mine
    }
}

fn to_canonical(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    }
}

/// Everything [`list`] found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Listing {
    /// Sorted by protocol, port, address.
    pub listeners: Vec<Listener>,
    /// Processes whose file descriptors could not be read (not ours, and not root):
    /// their sockets show an unknown owner.
    pub unreadable_processes: usize,
}

impl Listing {
    /// Whether some owners may be missing because of missing rights.
    pub fn owners_incomplete(&self) -> bool {
        self.unreadable_processes > 0 && self.listeners.iter().any(Listener::owner_unknown)
    }

    /// Listeners a connection to `addr` (protocol `protocol`) would reach.
    pub fn reaching(&self, protocol: Protocol, addr: SocketAddr) -> Vec<&Listener> {
        self.listeners
            .iter()
            .filter(|l| l.protocol == protocol && l.accepts(addr))
            .collect()
    }
}

/// What to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListOptions {
    /// Include bound UDP sockets.
    pub udp: bool,
}

/// Listing failed as a whole (a single unreadable process never fails it).
#[derive(Debug, thiserror::Error)]
pub enum SocketsError {
    /// This platform has no implementation yet.
    #[error("listing sockets is not supported on this platform yet")]
    Unsupported,
    /// The kernel's socket table could not be read.
    #[error("cannot read {table}: {reason}")]
    SocketTable { table: String, reason: String },
}

/// Lists the listening TCP sockets (and, if asked, bound UDP sockets) of the caller's
/// network namespace, with their owners.
pub fn list(options: ListOptions) -> Result<Listing, SocketsError> {
    #[cfg(target_os = "linux")]
    {
        linux::list(options)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = options;
        Err(SocketsError::Unsupported)
    }
}

/// Whether this process may read every process's file descriptors (root on Linux).
pub fn sees_all_owners() -> bool {
    #[cfg(target_os = "linux")]
    {
        linux::is_root()
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(addr: &str) -> Listener {
        Listener {
            protocol: Protocol::Tcp,
            local: addr.parse().unwrap(),
            inode: 1,
            uid: 0,
            owners: vec![],
        }
    }

    #[test]
    fn wildcard_listeners_accept_their_family() {
        let any4 = listener("0.0.0.0:80");
        assert!(any4.accepts("127.0.0.2:80".parse().unwrap()));
        assert!(!any4.accepts("[::1]:80".parse().unwrap()));
        assert!(!any4.accepts("127.0.0.1:81".parse().unwrap()));
        let any6 = listener("[::]:80");
        assert!(any6.accepts("[::1]:80".parse().unwrap()));
        assert!(any6.accepts("127.0.0.1:80".parse().unwrap()));
        let one = listener("127.0.0.2:80");
        assert!(one.accepts("127.0.0.2:80".parse().unwrap()));
        assert!(!one.accepts("127.0.0.1:80".parse().unwrap()));
        assert!(one.accepts("[::ffff:127.0.0.2]:80".parse().unwrap()));
    }
}
