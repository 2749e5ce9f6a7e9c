//! Linux: the socket tables of `/proc/net` and the owners found through `/proc/PID/fd`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use procfs::net::{TcpState, UdpState};
use procfs::process::{FDTarget, Process};
use procfs::ProcessCGroups;

use crate::{ListOptions, Listener, Listing, Owner, Protocol, SocketsError};

pub(crate) fn is_root() -> bool {
    uzers::get_effective_uid() == 0
}

/// A socket found in a table, before its owners are known.
struct Found {
    protocol: Protocol,
    local: SocketAddr,
    inode: u64,
    uid: u32,
}

pub(crate) fn list(options: ListOptions) -> Result<Listing, SocketsError> {
    let mut found = Vec::new();
    for (table, entries) in [
        ("/proc/net/tcp", procfs::net::tcp()),
        ("/proc/net/tcp6", procfs::net::tcp6()),
    ] {
        // A kernel without IPv6 has no tcp6 table; that is not an error.
        let entries = match entries {
            Ok(e) => e,
            Err(procfs::ProcError::NotFound(_)) if table.ends_with('6') => continue,
            Err(e) => return Err(table_error(table, e)),
        };
        found.extend(
            entries
                .into_iter()
                .filter(|e| e.state == TcpState::Listen)
                .map(|e| Found {
                    protocol: Protocol::Tcp,
                    local: e.local_address,
                    inode: e.inode,
                    uid: e.uid,
                }),
        );
    }
    if options.udp {
        for (table, entries) in [
            ("/proc/net/udp", procfs::net::udp()),
            ("/proc/net/udp6", procfs::net::udp6()),
        ] {
            let entries = match entries {
                Ok(e) => e,
                Err(procfs::ProcError::NotFound(_)) if table.ends_with('6') => continue,
                Err(e) => return Err(table_error(table, e)),
            };
            // Bound, not connected: a server socket waiting for datagrams.
            found.extend(
                entries
                    .into_iter()
                    .filter(|e| e.state == UdpState::Close && e.local_address.port() != 0)
                    .map(|e| Found {
                        protocol: Protocol::Udp,
                        local: e.local_address,
                        inode: e.inode,
                        uid: e.uid,
                    }),
            );
        }
    }

    let wanted: HashSet<u64> = found.iter().map(|f| f.inode).filter(|&i| i != 0).collect();
    let (holders, unreadable_processes) = socket_holders(&wanted);

    let mut listeners: Vec<Listener> = found
        .into_iter()
        .map(|f| Listener {
            protocol: f.protocol,
            local: f.local,
            inode: f.inode,
            uid: f.uid,
            owners: holders.get(&f.inode).cloned().unwrap_or_default(),
        })
        .collect();
    listeners.sort_by(|a, b| {
        (
            a.protocol,
            a.local.port(),
            a.local.is_ipv6(),
            a.local.ip(),
            a.inode,
        )
            .cmp(&(
                b.protocol,
                b.local.port(),
                b.local.is_ipv6(),
                b.local.ip(),
                b.inode,
            ))
    });
    Ok(Listing {
        listeners,
        unreadable_processes,
    })
}

fn table_error(table: &str, e: procfs::ProcError) -> SocketsError {
    SocketsError::SocketTable {
        table: table.to_string(),
        reason: e.to_string(),
    }
}

/// Maps each wanted socket inode to the processes holding it, scanning every process's
/// descriptors once. Returns how many processes could not be read.
fn socket_holders(wanted: &HashSet<u64>) -> (HashMap<u64, Vec<Owner>>, usize) {
    let mut holders: HashMap<u64, Vec<Owner>> = HashMap::new();
    let mut unreadable = 0;
    let Ok(processes) = procfs::process::all_processes() else {
        return (holders, 0);
    };
    for process in processes.flatten() {
        let fds = match process.fd() {
            Ok(fds) => fds,
            // Gone since the directory was read: not a rights problem.
            Err(procfs::ProcError::NotFound(_)) => continue,
            Err(_) => {
                unreadable += 1;
                continue;
            }
        };
        let mut owner: Option<Owner> = None;
        let mut seen_here = HashSet::new();
        for fd in fds.flatten() {
            let FDTarget::Socket(inode) = fd.target else {
                continue;
            };
            // A process may hold one socket through several descriptors (dup, fork).
            if !wanted.contains(&inode) || !seen_here.insert(inode) {
                continue;
            }
            let owner = owner.get_or_insert_with(|| describe(&process));
            holders.entry(inode).or_default().push(owner.clone());
        }
    }
    for owners in holders.values_mut() {
        owners.sort_by_key(|o| o.pid);
    }
    (holders, unreadable)
}

/// Name, executable, user and unit of a process; whatever cannot be read stays empty.
fn describe(process: &Process) -> Owner {
    let pid = u32::try_from(process.pid).unwrap_or_default();
    let name = process
        .stat()
        .map(|s| s.comm)
        .unwrap_or_else(|_| format!("pid {pid}"));
    let uid = process.uid().ok();
    let user = uid
        .and_then(uzers::get_user_by_uid)
        .map(|u| u.name().to_string_lossy().into_owned());
    let unit = process
        .read::<ProcessCGroups>("cgroup")
        .ok()
        .and_then(|groups| {
            unit_from_cgroups(
                groups
                    .0
                    .iter()
                    .map(|g| (g.hierarchy, g.controllers.as_slice(), g.pathname.as_str())),
            )
        });
    Owner {
        pid,
        name,
        exe: process.exe().ok(),
        uid,
        user,
        unit,
    }
}

/// The systemd unit from a process's cgroups: the innermost `.service` of the unified
/// hierarchy (`0::/system.slice/nginx.service`) or of v1's `name=systemd` hierarchy.
pub(crate) fn unit_from_cgroups<'a>(
    groups: impl Iterator<Item = (u32, &'a [String], &'a str)>,
) -> Option<String> {
    let mut fallback = None;
    for (hierarchy, controllers, path) in groups {
        let systemd_v1 = controllers.iter().any(|c| c == "name=systemd");
        if hierarchy != 0 && !systemd_v1 {
            continue;
        }
        let unit = path
            .rsplit('/')
            .find(|part| part.ends_with(".service"))
            .map(str::to_string);
        if systemd_v1 {
            return unit;
        }
        fallback = fallback.or(unit);
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(lines: &[(u32, &[&str], &str)]) -> Option<String> {
        let owned: Vec<(u32, Vec<String>, String)> = lines
            .iter()
            .map(|(h, c, p)| (*h, c.iter().map(|s| s.to_string()).collect(), p.to_string()))
            .collect();
        unit_from_cgroups(owned.iter().map(|(h, c, p)| (*h, c.as_slice(), p.as_str())))
    }

    #[test]
    fn finds_the_unit_in_unified_and_legacy_cgroups() {
        assert_eq!(
            unit(&[(0, &[], "/system.slice/nginx.service")]).as_deref(),
            Some("nginx.service")
        );
        assert_eq!(
            unit(&[(
                0,
                &[],
                "/user.slice/user-1000.slice/user@1000.service/app.slice/web.service"
            )])
            .as_deref(),
            Some("web.service")
        );
        assert_eq!(
            unit(&[
                (4, &["cpu"], "/"),
                (1, &["name=systemd"], "/system.slice/sshd.service")
            ])
            .as_deref(),
            Some("sshd.service")
        );
        assert_eq!(
            unit(&[(0, &[], "/user.slice/user-0.slice/session-3.scope")]),
            None
        );
        assert_eq!(unit(&[(0, &[], "/")]), None);
    }

    #[test]
    fn lists_a_listener_of_this_process_with_its_owner() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let listing = crate::list(ListOptions::default()).unwrap();
        let mine = listing
            .listeners
            .iter()
            .find(|l| l.local == addr)
            .expect("our listener is listed");
        assert_eq!(mine.protocol, Protocol::Tcp);
        let me = std::process::id();
        assert!(mine.owners.iter().any(|o| o.pid == me), "{:?}", mine.owners);
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp_addr = udp.local_addr().unwrap();
        let with_udp = crate::list(ListOptions { udp: true }).unwrap();
        assert!(with_udp
            .listeners
            .iter()
            .any(|l| l.protocol == Protocol::Udp && l.local == udp_addr));
        assert!(!listing
            .listeners
            .iter()
            .any(|l| l.local == udp_addr && l.protocol == Protocol::Udp));
    }
}
