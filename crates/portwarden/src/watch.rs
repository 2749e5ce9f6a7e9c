//! The listener watcher: lists this host's listening sockets periodically and publishes what
//! appeared, vanished or changed hands since the previous look. In zero-config mode it also
//! starts watching the TCP listeners that appear ([`Adopt`]), as the ones found at start-up.

use std::sync::Weak;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portwarden_sockets::inventory::{self, Entry, Snapshot};
use portwarden_sockets::{ListOptions, Listing};
use tokio_util::sync::CancellationToken;

use crate::events::{EventBus, EventKind, ListenerChange};
use crate::schedule::Scheduler;

/// Zero-config: new TCP listeners become monitors of this scheduler (weak: it must go away
/// at shutdown).
#[derive(Debug, Clone)]
pub struct Adopt(pub Weak<Scheduler>);

impl Adopt {
    /// Starts a monitor for every listener of `now` that has none yet (a new listener, or one
    /// that came back after a reload dropped it) and logs each.
    fn new_listeners(&self, now: &Listing) {
        let Some(scheduler) = self.0.upgrade() else {
            return;
        };
        for m in crate::discover::monitors(now) {
            if scheduler.monitor(&m.name).is_some() {
                continue;
            }
            let name = m.name.clone();
            let target = m.probe.spec().target.to_string();
            let every = humantime::format_duration(m.interval);
            let owner = m.owner.as_ref().map(ToString::to_string);
            let unknown = m.owner_unknown.clone();
            if !scheduler.add(m) {
                continue;
            }
            match (owner, unknown) {
                (Some(owner), _) => tracing::info!(
                    monitor = %name, owner = %owner,
                    "watching new listener {name}: a connect check on {target} every {every}, \
                     and the port must stay with {owner}"
                ),
                (None, why) => tracing::warn!(
                    monitor = %name,
                    "watching new listener {name}: a connect check on {target} every {every}, \
                     without an owner check: {}",
                    why.as_deref().unwrap_or("its holder is not visible")
                ),
            }
        }
    }

    /// The monitor watching `entry`, if one runs.
    fn monitor_of(&self, entry: &Entry) -> Option<String> {
        let scheduler = self.0.upgrade()?;
        let mut names: Vec<String> = entry
            .owners
            .iter()
            .map(|o| crate::discover::name(Some(&o.name), entry.local))
            .collect();
        names.push(crate::discover::name(None, entry.local));
        names.into_iter().find(|n| scheduler.monitor(n).is_some())
    }
}

/// How often the listeners are listed.
pub const PERIOD: Duration = Duration::from_secs(15);

fn names(entry: &Entry) -> Vec<String> {
    entry.owners.iter().map(|o| o.name.clone()).collect()
}

/// Publishes the drift between two listings; returns how many events it published. With
/// `adopt` (zero-config), new listeners are watched first, and each event names its monitor.
pub fn publish_drift(
    before: &Snapshot,
    now: &Listing,
    bus: &EventBus,
    adopt: Option<&Adopt>,
) -> usize {
    let drift = inventory::diff(before, now);
    if let Some(a) = adopt.filter(|_| !drift.appeared.is_empty()) {
        a.new_listeners(now);
    }
    let monitor = |e: &Entry| adopt.and_then(|a| a.monitor_of(e));
    for e in &drift.appeared {
        bus.publish(EventKind::ListenerAppeared(ListenerChange {
            protocol: e.protocol,
            local: e.local,
            before: vec![],
            after: names(e),
            monitor: monitor(e),
        }));
    }
    for e in &drift.vanished {
        bus.publish(EventKind::ListenerVanished(ListenerChange {
            protocol: e.protocol,
            local: e.local,
            before: names(e),
            after: vec![],
            monitor: monitor(e),
        }));
    }
    for c in &drift.owner_changed {
        bus.publish(EventKind::ListenerOwnerChanged(ListenerChange {
            protocol: c.protocol,
            local: c.local,
            before: c.before.iter().map(|o| o.name.clone()).collect(),
            after: c.after.iter().map(|o| o.name.clone()).collect(),
            monitor: None,
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
    match tokio::task::spawn_blocking(|| portwarden_sockets::list(ListOptions::default())).await {
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

/// Runs until `shutdown`, starting from `initial` (the listing the daemon started with);
/// `adopt` in zero-config mode.
pub async fn run(
    initial: Option<Listing>,
    period: Duration,
    bus: EventBus,
    adopt: Option<Adopt>,
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
            publish_drift(&previous, &now, &bus, adopt.as_ref());
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
        let before = Snapshot::capture(
            &portwarden_sockets::list(ListOptions::default()).unwrap(),
            0,
        );
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let now = portwarden_sockets::list(ListOptions::default()).unwrap();
        assert!(publish_drift(&before, &now, &bus, None) >= 1);
        let mut seen = false;
        while let Ok(ev) = events.try_recv() {
            if let EventKind::ListenerAppeared(c) = &ev.kind {
                seen |= c.local == addr;
            }
        }
        assert!(seen, "no listener_appeared event for {addr}");
    }
}
