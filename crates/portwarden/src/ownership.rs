//! Joins a probe result with the owner check: "the socket on this port must belong to X".

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use probe::{ProbeResult, Reason, State};
use sockets::owner::{self, ExpectedOwner, OwnerVerdict};
use sockets::{ListOptions, Listing, SocketsError};
use tokio::time::Instant;

/// Lists the sockets now and folds the owner verdict into `result` (the one-shot CLI).
pub fn apply(result: &mut ProbeResult, expected: &ExpectedOwner) -> Option<OwnerVerdict> {
    let listing = sockets::list(ListOptions::default());
    judge(result, expected, listing.as_ref())
}

/// Folds the owner verdict for the port the probe reached into `result`. A wrong owner
/// explains a wrong banner better than the banner does, so it takes over the message; a
/// probe that never connected keeps its own failure.
pub fn judge(
    result: &mut ProbeResult,
    expected: &ExpectedOwner,
    listing: Result<&Listing, &SocketsError>,
) -> Option<OwnerVerdict> {
    let addr = result.peer?;
    let listing = match listing {
        Ok(l) => l,
        Err(e) => {
            result.state = result.state.worst(State::Unknown);
            result.reason = Some(Reason::OwnerUnknown);
            result.message = format!("cannot check the owner of port {}: {e}", addr.port());
            return None;
        }
    };
    let verdict = owner::check(listing, addr, expected);
    let message = verdict.describe(addr, expected);
    match &verdict {
        OwnerVerdict::Ok { .. } => {}
        OwnerVerdict::Wrong { .. } | OwnerVerdict::NotListening => {
            result.state = State::Critical;
            result.reason = Some(Reason::WrongOwner);
            result.message = message;
        }
        OwnerVerdict::Unknown => {
            if result.state == State::Ok {
                result.state = State::Unknown;
                result.reason = Some(Reason::OwnerUnknown);
                result.message = message;
            }
        }
    }
    Some(verdict)
}

/// A listing, or why there is none; shared between checks.
pub type SharedListing = Arc<Result<Listing, SocketsError>>;

/// A socket listing shared by many readers: taken at most once per `max_age`, one walk of
/// `/proc` at a time on a blocking thread, the other readers waiting for it. The daemon's
/// owner checks share one (10,000 monitors with an owner cost one listing), and
/// `GET /api/v1/listeners` requests another (with UDP).
#[derive(Debug, Clone)]
pub struct ListingCache {
    max_age: Duration,
    options: ListOptions,
    latest: Arc<Mutex<Option<Listed>>>,
    refresh: Arc<tokio::sync::Mutex<()>>,
}

/// One listing and when it was taken.
#[derive(Debug, Clone)]
pub struct Listed {
    pub at: SystemTime,
    taken: Instant,
    pub listing: SharedListing,
}

impl ListingCache {
    pub fn new(max_age: Duration, options: ListOptions) -> Self {
        Self {
            max_age,
            options,
            latest: Arc::new(Mutex::new(None)),
            refresh: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    fn fresh(&self) -> Option<Listed> {
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        latest
            .as_ref()
            .filter(|l| l.taken.elapsed() <= self.max_age)
            .cloned()
    }

    /// A listing no older than `max_age`.
    pub async fn get(&self) -> SharedListing {
        self.get_listed().await.listing
    }

    /// A listing no older than `max_age`, with the time it was taken.
    pub async fn get_listed(&self) -> Listed {
        if let Some(l) = self.fresh() {
            return l;
        }
        // One refresh at a time; the others wait for it instead of listing too.
        let _guard = self.refresh.lock().await;
        if let Some(l) = self.fresh() {
            return l;
        }
        let options = self.options;
        let at = SystemTime::now();
        let listing = tokio::task::spawn_blocking(move || sockets::list(options))
            .await
            .unwrap_or(Err(SocketsError::SocketTable {
                table: "/proc/net".into(),
                reason: "the listing task failed".into(),
            }));
        let listed = Listed {
            at,
            taken: Instant::now(),
            listing: Arc::new(listing),
        };
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(listed.clone());
        listed
    }
}
