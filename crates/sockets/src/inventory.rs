//! Port inventory: a snapshot of the listeners (what is declared) and the drift of a
//! listing against it — new listeners nobody declared, vanished ones, changed owners.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::{Listing, Protocol};

/// The snapshot file format version.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Who holds a socket, as far as it survives a restart: no pids.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identity {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// One listening address in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub protocol: Protocol,
    pub local: SocketAddr,
    /// Empty when the owner could not be read when the snapshot was taken.
    pub owners: BTreeSet<Identity>,
}

/// A saved set of listeners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub version: u32,
    /// Unix seconds when it was taken.
    pub taken_at: u64,
    pub listeners: Vec<Entry>,
}

impl Snapshot {
    /// Captures `listing`; sockets sharing an address (SO_REUSEPORT) become one entry.
    pub fn capture(listing: &Listing, taken_at: u64) -> Self {
        Self {
            version: SNAPSHOT_VERSION,
            taken_at,
            listeners: entries(listing).into_values().collect(),
        }
    }

    /// Parses a snapshot file's text; the error names the line and column.
    pub fn parse(text: &str) -> Result<Self, String> {
        let snapshot: Snapshot = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(format!(
                "snapshot version {} is not supported (expected {SNAPSHOT_VERSION})",
                snapshot.version
            ));
        }
        Ok(snapshot)
    }
}

fn entries(listing: &Listing) -> BTreeMap<(Protocol, SocketAddr), Entry> {
    let mut map: BTreeMap<(Protocol, SocketAddr), Entry> = BTreeMap::new();
    for l in &listing.listeners {
        let entry = map.entry((l.protocol, l.local)).or_insert_with(|| Entry {
            protocol: l.protocol,
            local: l.local,
            owners: BTreeSet::new(),
        });
        entry.owners.extend(l.owners.iter().map(|o| Identity {
            name: o.name.clone(),
            exe: o.exe.as_ref().map(|e| e.display().to_string()),
            unit: o.unit.clone(),
        }));
    }
    map
}

/// What changed since a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// Listening now, not in the snapshot.
    pub appeared: Vec<Entry>,
    /// In the snapshot, not listening now.
    pub vanished: Vec<Entry>,
    /// Listening in both, held by someone else now.
    pub owner_changed: Vec<OwnerChange>,
}

/// A listener whose owner changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnerChange {
    pub protocol: Protocol,
    pub local: SocketAddr,
    pub before: BTreeSet<Identity>,
    pub after: BTreeSet<Identity>,
}

impl Drift {
    /// Whether anything changed.
    pub fn is_empty(&self) -> bool {
        self.appeared.is_empty() && self.vanished.is_empty() && self.owner_changed.is_empty()
    }
}

/// Compares the current listing with a snapshot. An owner unknown on either side (missing
/// rights) is not reported as a change.
pub fn diff(snapshot: &Snapshot, listing: &Listing) -> Drift {
    let before: BTreeMap<(Protocol, SocketAddr), &Entry> = snapshot
        .listeners
        .iter()
        .map(|e| ((e.protocol, e.local), e))
        .collect();
    let now = entries(listing);
    let mut drift = Drift::default();
    for (key, entry) in &now {
        match before.get(key) {
            None => drift.appeared.push(entry.clone()),
            Some(old) => {
                let comparable = !old.owners.is_empty() && !entry.owners.is_empty();
                if comparable && old.owners != entry.owners {
                    drift.owner_changed.push(OwnerChange {
                        protocol: entry.protocol,
                        local: entry.local,
                        before: old.owners.clone(),
                        after: entry.owners.clone(),
                    });
                }
            }
        }
    }
    drift.vanished = before
        .iter()
        .filter(|(key, _)| !now.contains_key(key))
        .map(|(_, e)| (*e).clone())
        .collect();
    drift
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Listener, Owner};

    fn listing(entries: &[(&str, &str, u32)]) -> Listing {
        Listing {
            listeners: entries
                .iter()
                .enumerate()
                .map(|(i, (addr, name, pid))| Listener {
                    protocol: Protocol::Tcp,
                    local: addr.parse().unwrap(),
                    inode: i as u64 + 1,
                    uid: 0,
                    owners: if name.is_empty() {
                        vec![]
                    } else {
                        vec![Owner {
                            pid: *pid,
                            name: name.to_string(),
                            exe: Some(format!("/usr/bin/{name}").into()),
                            uid: Some(0),
                            user: None,
                            unit: None,
                        }]
                    },
                })
                .collect(),
            unreadable_processes: 0,
        }
    }

    #[test]
    fn no_drift_against_itself_even_after_restarts() {
        let snap = Snapshot::capture(&listing(&[("0.0.0.0:22", "sshd", 10)]), 1);
        // Same program, new pid.
        assert!(diff(&snap, &listing(&[("0.0.0.0:22", "sshd", 99)])).is_empty());
    }

    #[test]
    fn reports_appeared_vanished_and_changed() {
        let snap = Snapshot::capture(
            &listing(&[("0.0.0.0:22", "sshd", 10), ("0.0.0.0:80", "nginx", 11)]),
            1,
        );
        let now = listing(&[
            ("0.0.0.0:22", "sshd", 10),
            ("0.0.0.0:8080", "nc", 12),
            ("0.0.0.0:80", "python3", 13),
        ]);
        let d = diff(&snap, &now);
        assert_eq!(d.appeared.len(), 1);
        assert_eq!(d.appeared[0].local.port(), 8080);
        assert!(d.vanished.is_empty());
        assert_eq!(d.owner_changed.len(), 1);
        assert_eq!(
            d.owner_changed[0].after.iter().next().unwrap().name,
            "python3"
        );
        let gone = diff(&snap, &listing(&[("0.0.0.0:22", "sshd", 10)]));
        assert_eq!(gone.vanished.len(), 1);
        assert_eq!(gone.vanished[0].local.port(), 80);
    }

    #[test]
    fn unknown_owners_are_not_changes() {
        let snap = Snapshot::capture(&listing(&[("0.0.0.0:22", "sshd", 10)]), 1);
        assert!(diff(&snap, &listing(&[("0.0.0.0:22", "", 0)])).is_empty());
    }

    #[test]
    fn round_trips_and_rejects_bad_files() {
        let snap = Snapshot::capture(&listing(&[("[::]:443", "nginx", 1)]), 42);
        let text = serde_json::to_string_pretty(&snap).unwrap();
        assert_eq!(Snapshot::parse(&text).unwrap(), snap);
        assert!(Snapshot::parse("{").unwrap_err().contains("line 1"));
        let future = text.replace("\"version\": 1", "\"version\": 9");
        assert!(Snapshot::parse(&future).unwrap_err().contains("version 9"));
        assert!(Snapshot::parse(r#"{"version":1,"taken_at":1,"listeners":[],"x":1}"#).is_err());
    }
}
