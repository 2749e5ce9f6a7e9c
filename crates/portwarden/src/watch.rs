//! The listener watcher: lists this host's listening sockets periodically and publishes what
//! appeared, vanished or changed hands since the previous look.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sockets::inventory::{self, Entry, Snapshot};
use sockets::{ListOptions, Listing};
use tokio_util::sync::CancellationToken;

use crate::events::{EventBus, EventKind, ListenerChange};

/// How often the listeners are listed.
pub const PERIOD: Duration = Duration::from_secs(15);

fn names(entry: &Entry) -> Vec<String> {
    entry.owners.iter().map(|o| o.name.clone()).collect()
}

/// Publishes the drift between two listings; returns how many events it published.
pub fn publish_drift(before: &Snapshot, now: &Listing, bus: &EventBus) -> usize {
    let drift = inventory::diff(before, now);
    for e in &drift.appeared {
        bus.publish(EventKind::ListenerAppeared(ListenerChange {
            protocol: e.protocol,
            local: e.local,
            before: vec![],
            after: names(e),
        }));
    }
    for e in &drift.vanished {
        bus.publish(EventKind::ListenerVanished(ListenerChange {
            protocol: e.protocol,
            local: e.local,
            before: names(e),
            after: vec![],
        }));
    }
    for c in &drift.owner_changed {
        bus.publish(EventKind::ListenerOwnerChanged(ListenerChange {
            protocol: c.protocol,
            local: c.local,
            before: c.before.iter().map(|o| o.name.clone()).collect(),
            after: c.after.iter().map(|o| o.name.clone()).collect(),
        }));
    }
    drift.appeared.len() + drift.vanished.len() + drift.owner_changed.len()
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// This host's listeners, without the daemon's own (its API is no news).
async fn list() -> Option<Listing> {
    match tokio::task::spawn_blocking(|| sockets::list(ListOptions::default())).await {
        Ok(Ok(l)) => Some(without_own(l)),
        Ok(Err(e)) => {
            tracing::warn!("cannot list listening sockets: {e}");
            None
        }
        Err(_) => None,
    }
}

fn without_own(mut listing: Listing) -> Listing {
    let me = std::process::id();
    listing
        .listeners
        .retain(|l| !l.owners.iter().any(|o| o.pid == me));
    listing
}

/// Runs until `shutdown`, starting from `initial` (the listing the daemon started with).
pub async fn run(
    initial: Option<Listing>,
    period: Duration,
    bus: EventBus,
    shutdown: CancellationToken,
) {
    let mut previous = match initial {
        Some(l) => Snapshot::capture(&without_own(l), now_unix()),
        None => match list().await {
            Some(l) => Snapshot::capture(&l, now_unix()),
            None => return,
        },
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
        if let Some(now) = list().await {
            publish_drift(&previous, &now, &bus);
            previous = Snapshot::capture(&now, now_unix());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn publishes_a_listener_that_appears() {
        let bus = EventBus::new();
        let mut events = bus.subscribe();
        let before = Snapshot::capture(&sockets::list(ListOptions::default()).unwrap(), 0);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let now = sockets::list(ListOptions::default()).unwrap();
        assert!(publish_drift(&before, &now, &bus) >= 1);
        let mut seen = false;
        while let Ok(ev) = events.try_recv() {
            if let EventKind::ListenerAppeared(c) = &ev.kind {
                seen |= c.local == addr;
            }
        }
        assert!(seen, "no listener_appeared event for {addr}");
    }
}
