//! `GET /api/v1/listeners`: this host's listening TCP and bound UDP sockets (port → process):
//! address, port, protocol, every process holding the socket (pid, name, exe, user, systemd
//! unit) and the configured monitors whose target reaches it.
//!
//! Listing walks `/proc` (every process's file descriptors), so requests share one listing at
//! most [`MAX_AGE`] old (a [`ListingCache`], as the owner checks use): however many requests arrive, `/proc` is walked at
//! most once per [`MAX_AGE`], one walk at a time, on a blocking thread. Without root, sockets
//! of other users' processes show no owner; the answer says so (`sees_all_owners`, `note`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use portwarden_sockets::{ListOptions, Protocol};
use serde::Serialize;

use crate::api::{ApiError, ApiState};
use crate::ownership::ListingCache;
use crate::schedule::MonitorView;

/// How old a listing may be before a request lists again.
pub const MAX_AGE: Duration = Duration::from_secs(2);

/// The cache `GET /api/v1/listeners` requests share: TCP and UDP, at most [`MAX_AGE`] old.
pub fn cache() -> ListingCache {
    ListingCache::new(MAX_AGE, ListOptions { udp: true })
}

/// The routes of this file, merged into the API's router.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/listeners", get(listeners))
}

/// This host's listeners.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Listeners {
    /// Unix milliseconds when the sockets were listed (at most 2 s before the answer).
    #[serde(serialize_with = "crate::schedule::unix_ms")]
    #[schema(value_type = u64)]
    listed_at: SystemTime,
    /// Whether the daemon may see every socket's owner (it runs as root).
    sees_all_owners: bool,
    /// Whether some listed sockets show no owner because their processes could not be read.
    owners_incomplete: bool,
    /// Processes whose file descriptors could not be read.
    unreadable_processes: usize,
    /// Why owners may be missing, for people; null when nothing is hidden.
    note: Option<String>,
    /// By protocol, port, address.
    listeners: Vec<ListenerEntry>,
}

/// One listening TCP socket or bound UDP socket.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ListenerEntry {
    #[schema(value_type = String, example = "tcp")]
    protocol: &'static str,
    /// The local address (`0.0.0.0` or `::` for every address).
    address: String,
    port: u16,
    /// The kernel's socket inode: two sockets on one port (SO_REUSEPORT) differ here.
    inode: u64,
    /// The uid that created the socket.
    uid: u32,
    /// Every process holding the socket; empty when it could not be seen.
    owners: Vec<ListenerOwner>,
    /// Configured monitors whose target reaches this socket (TCP only), by name.
    monitored_by: Vec<String>,
}

/// A process holding a socket.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ListenerOwner {
    pid: u32,
    /// The process name (at most 15 bytes on Linux).
    name: String,
    /// The executable, when readable.
    exe: Option<String>,
    uid: Option<u32>,
    /// The user name of `uid`.
    user: Option<String>,
    /// The systemd unit the process runs in, e.g. `nginx.service`.
    unit: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/listeners", tag = "listeners",
    responses(
        (status = 200, description = "This host's listening sockets and their processes", body = Listeners),
        (status = 503, description = "The sockets cannot be listed on this host", body = crate::api::ErrorBody),
    ))]
pub(crate) async fn listeners(State(s): State<ApiState>) -> Result<Json<Listeners>, ApiError> {
    let taken = s.listeners.get_listed().await;
    let listing = match taken.listing.as_ref() {
        Ok(l) => l,
        Err(e) => return Err(ApiError::Unavailable(format!("cannot list sockets: {e}"))),
    };
    let targets = Targets::new(&s.scheduler.views());
    let sees_all_owners = portwarden_sockets::sees_all_owners();
    let owners_incomplete = listing.owners_incomplete();
    let note = (!sees_all_owners && owners_incomplete).then(|| {
        format!(
            "portwarden runs unprivileged: the owners of sockets held by {} other processes \
             cannot be seen (they show none); run it as root to see every owner",
            listing.unreadable_processes
        )
    });
    let listeners = listing
        .listeners
        .iter()
        .map(|l| ListenerEntry {
            protocol: match l.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
            },
            address: l.local.ip().to_string(),
            port: l.local.port(),
            inode: l.inode,
            uid: l.uid,
            owners: l
                .owners
                .iter()
                .map(|o| ListenerOwner {
                    pid: o.pid,
                    name: o.name.clone(),
                    exe: o.exe.as_ref().map(|e| e.display().to_string()),
                    uid: o.uid,
                    user: o.user.clone(),
                    unit: o.unit.clone(),
                })
                .collect(),
            monitored_by: match l.protocol {
                Protocol::Tcp => targets.reaching(l),
                Protocol::Udp => Vec::new(),
            },
        })
        .collect();
    Ok(Json(Listeners {
        listed_at: taken.at,
        sees_all_owners,
        owners_incomplete,
        unreadable_processes: listing.unreadable_processes,
        note,
        listeners,
    }))
}

/// The monitors' targets by port, for "which monitors reach this socket".
struct Targets {
    by_port: HashMap<u16, Vec<(IpAddr, String)>>,
    local: Mutex<HashMap<IpAddr, bool>>,
}

impl Targets {
    fn new(views: &[MonitorView]) -> Self {
        let mut by_port: HashMap<u16, Vec<(IpAddr, String)>> = HashMap::new();
        for v in views {
            for addr in target_addrs(&v.target) {
                by_port
                    .entry(addr.port())
                    .or_default()
                    .push((addr.ip(), v.name.clone()));
            }
        }
        Self {
            by_port,
            local: Mutex::new(HashMap::new()),
        }
    }

    /// Names of the monitors whose target reaches `l`, sorted, each once.
    fn reaching(&self, l: &portwarden_sockets::Listener) -> Vec<String> {
        let Some(candidates) = self.by_port.get(&l.port()) else {
            return Vec::new();
        };
        let mut names: Vec<String> = candidates
            .iter()
            .filter(|(ip, _)| l.accepts(SocketAddr::new(*ip, l.port())) && self.is_local(*ip))
            .map(|(_, name)| name.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Whether `ip` is this host's: loopback, or an address a socket can be bound to (the
    /// kernel refuses others). Binding sends nothing.
    fn is_local(&self, ip: IpAddr) -> bool {
        if ip.is_loopback() || ip.is_unspecified() {
            return true;
        }
        let mut known = self.local.lock().unwrap_or_else(|p| p.into_inner());
        *known
            .entry(ip)
            .or_insert_with(|| std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok())
    }
}

/// The addresses a monitor's target (`host:port` as shown) stands for without DNS: a literal
/// address, or `localhost` (both loopbacks). Other names give none.
fn target_addrs(target: &str) -> Vec<SocketAddr> {
    if let Ok(addr) = target.parse::<SocketAddr>() {
        return vec![addr];
    }
    let Some((host, port)) = target.rsplit_once(':') else {
        return Vec::new();
    };
    let Ok(port) = port.parse::<u16>() else {
        return Vec::new();
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![SocketAddr::new(ip, port)];
    }
    if host.eq_ignore_ascii_case("localhost") {
        return vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(addr: &str) -> portwarden_sockets::Listener {
        portwarden_sockets::Listener {
            protocol: Protocol::Tcp,
            local: addr.parse().unwrap(),
            inode: 1,
            uid: 0,
            owners: vec![],
        }
    }

    fn targets(list: &[(&str, &str)]) -> Targets {
        let mut by_port: HashMap<u16, Vec<(IpAddr, String)>> = HashMap::new();
        for (name, target) in list {
            for a in target_addrs(target) {
                by_port
                    .entry(a.port())
                    .or_default()
                    .push((a.ip(), name.to_string()));
            }
        }
        Targets {
            by_port,
            local: Mutex::new(HashMap::new()),
        }
    }

    #[test]
    fn reads_literal_and_localhost_targets_only() {
        assert_eq!(
            target_addrs("127.0.0.1:80"),
            ["127.0.0.1:80".parse().unwrap()]
        );
        assert_eq!(target_addrs("[::1]:443"), ["[::1]:443".parse().unwrap()]);
        assert_eq!(target_addrs("localhost:25").len(), 2);
        assert!(target_addrs("example.com:80").is_empty());
        assert!(target_addrs("127.0.0.1").is_empty());
        assert!(target_addrs("127.0.0.1:x").is_empty());
    }

    #[test]
    fn a_monitor_reaches_the_listener_its_target_connects_to() {
        let t = targets(&[
            ("web", "127.0.0.1:8080"),
            ("web6", "localhost:8080"),
            ("other-port", "127.0.0.1:8081"),
            // TEST-NET-1: never this host's, so a wildcard listener is not its target.
            ("remote", "192.0.2.1:8080"),
        ]);
        assert_eq!(t.reaching(&listener("0.0.0.0:8080")), ["web", "web6"]);
        assert_eq!(t.reaching(&listener("127.0.0.1:8080")), ["web", "web6"]);
        assert_eq!(t.reaching(&listener("[::1]:8080")), ["web6"]);
        assert_eq!(
            t.reaching(&listener("127.0.0.2:8080")),
            Vec::<String>::new()
        );
        assert_eq!(t.reaching(&listener("0.0.0.0:9")), Vec::<String>::new());
    }

    #[tokio::test]
    async fn requests_share_one_listing_until_it_is_stale() {
        // A short age, so the test sees it go stale.
        let cache = ListingCache::new(Duration::from_millis(200), ListOptions { udp: true });
        let first = cache.get_listed().await;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let second = cache.get_listed().await;
        assert!(std::sync::Arc::ptr_eq(&first.listing, &second.listing));
        assert_eq!(first.at, second.at);
        // Once stale, the next request lists again and sees the new socket.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let third = cache.get_listed().await;
        let listing = third.listing.as_ref().as_ref().unwrap();
        assert!(listing.listeners.iter().any(|x| x.local == addr));
    }
}
