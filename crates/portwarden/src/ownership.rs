//! Joins a probe result with the owner check: "the socket on this port must belong to X".
//!
//! The daemon's owner checks share one socket listing ([`ListingCache`]). A listing that
//! started before a probe's connection succeeded may predate the server it reached (taken
//! while the service was down, or before it was restarted), so it can never prove a
//! mismatch: [`judge_after_connect`] confirms every mismatch against a listing that started
//! after the connection, and takes every verdict from such a listing while the monitor is
//! not healthy (its checks are what healing's verification reads). The common case, a
//! healthy monitor whose owner matches, still costs one shared walk per `max_age`.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use portwarden_probe::{ProbeResult, Reason, State};
use portwarden_sockets::owner::{self, ExpectedOwner, OwnerVerdict};
use portwarden_sockets::{ListOptions, Listing, SocketsError};
use tokio::time::Instant;

/// Lists the sockets now and folds the owner verdict into `result` (the one-shot CLI).
pub fn apply(result: &mut ProbeResult, expected: &ExpectedOwner) -> Option<OwnerVerdict> {
    let listing = portwarden_sockets::list(ListOptions::default());
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

/// Which listing an owner verdict may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The shared listing (up to `max_age` old) for a match; a mismatch is confirmed against
    /// one that started after the connection. For healthy monitors.
    ConfirmMismatch,
    /// Only a listing that started after the connection, whatever it says: for a monitor
    /// that is down (healing verifies fixes with its checks) or on a manual run.
    AfterConnect,
}

/// Folds the owner verdict into `result`, from a listing no older than the connection the
/// probe made when the verdict is a mismatch (or always, with [`Freshness::AfterConnect`]).
/// `connected` is an instant after the probe's connection succeeded (the end of the probe).
pub async fn judge_after_connect(
    result: &mut ProbeResult,
    expected: &ExpectedOwner,
    cache: &ListingCache,
    connected: Instant,
    freshness: Freshness,
) -> Option<OwnerVerdict> {
    let addr = result.peer?;
    let mut listed = match freshness {
        Freshness::ConfirmMismatch => cache.get_listed().await,
        Freshness::AfterConnect => cache.get_since(connected).await,
    };
    if !listed.started_after(connected) && !proves_match(&listed, addr, expected) {
        // Taken before the connection: it may show the port as it was before the server
        // came (back). Decide on one taken (or being taken) after it.
        listed = cache.get_since(connected).await;
    }
    judge(result, expected, listed.listing.as_ref().as_ref())
}

/// Whether `listed` shows `addr` held by the expected owner (a listing error proves nothing).
fn proves_match(listed: &Listed, addr: std::net::SocketAddr, expected: &ExpectedOwner) -> bool {
    match listed.listing.as_ref() {
        Ok(l) => matches!(owner::check(l, addr, expected), OwnerVerdict::Ok { .. }),
        Err(_) => false,
    }
}

/// What takes a listing: `portwarden_sockets::list`, or a script in tests.
type Lister = Arc<dyn Fn(ListOptions) -> Result<Listing, SocketsError> + Send + Sync>;

/// A listing, or why there is none; shared between checks.
pub type SharedListing = Arc<Result<Listing, SocketsError>>;

/// A socket listing shared by many readers: taken at most once per `max_age`, one walk of
/// `/proc` at a time on a blocking thread, the other readers waiting for it. The daemon's
/// owner checks share one (10,000 monitors with an owner cost one listing), and
/// `GET /api/v1/listeners` requests another (with UDP).
#[derive(Clone)]
pub struct ListingCache {
    max_age: Duration,
    options: ListOptions,
    latest: Arc<Mutex<Option<Listed>>>,
    refresh: Arc<tokio::sync::Mutex<()>>,
    lister: Lister,
}

impl fmt::Debug for ListingCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListingCache")
            .field("max_age", &self.max_age)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// One listing and when it was taken.
#[derive(Debug, Clone)]
pub struct Listed {
    /// When the walk started (wall clock, for people).
    pub at: SystemTime,
    /// When the walk started: nothing that happened before it can be missing from it, what
    /// happened during it may or may not be there.
    started: Instant,
    pub listing: SharedListing,
}

impl Listed {
    /// Whether the walk started at or after `t`: it sees every socket that listened at `t`
    /// and still does.
    pub fn started_after(&self, t: Instant) -> bool {
        self.started >= t
    }
}

impl ListingCache {
    pub fn new(max_age: Duration, options: ListOptions) -> Self {
        Self::with_lister(max_age, options, Arc::new(portwarden_sockets::list))
    }

    fn with_lister(max_age: Duration, options: ListOptions, lister: Lister) -> Self {
        Self {
            max_age,
            options,
            latest: Arc::new(Mutex::new(None)),
            refresh: Arc::new(tokio::sync::Mutex::new(())),
            lister,
        }
    }

    /// The latest listing if `usable` says so.
    fn latest_if(&self, usable: impl Fn(&Listed) -> bool) -> Option<Listed> {
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        latest.as_ref().filter(|l| usable(l)).cloned()
    }

    fn fresh(&self) -> Option<Listed> {
        // Age counts from the start of the walk: the oldest state a listing can show.
        self.latest_if(|l| l.started.elapsed() <= self.max_age)
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
        self.take().await
    }

    /// A listing whose walk started at or after `t`: the latest if it did, else the one being
    /// taken if that started after `t` (single flight: it waits for that walk), else a new
    /// one.
    pub async fn get_since(&self, t: Instant) -> Listed {
        if let Some(l) = self.latest_if(|l| l.started_after(t)) {
            return l;
        }
        let _guard = self.refresh.lock().await;
        // A walk that held the lock while we waited may have started after `t`.
        if let Some(l) = self.latest_if(|l| l.started_after(t)) {
            return l;
        }
        self.take().await
    }

    /// Walks now; the caller holds `refresh`.
    async fn take(&self) -> Listed {
        let options = self.options;
        let lister = self.lister.clone();
        let at = SystemTime::now();
        let started = Instant::now();
        let listing = tokio::task::spawn_blocking(move || lister(options))
            .await
            .unwrap_or(Err(SocketsError::SocketTable {
                table: "/proc/net".into(),
                reason: "the listing task failed".into(),
            }));
        let listed = Listed {
            at,
            started,
            listing: Arc::new(listing),
        };
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(listed.clone());
        listed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const PORT: &str = "127.0.0.1:8080";

    /// A listing with `web` on 127.0.0.1:8080, or with nothing.
    fn listing(web_listens: bool) -> Listing {
        let listeners = if web_listens {
            vec![portwarden_sockets::Listener {
                protocol: portwarden_sockets::Protocol::Tcp,
                local: PORT.parse().unwrap(),
                inode: 1,
                uid: 0,
                owners: vec![portwarden_sockets::Owner {
                    pid: 42,
                    name: "web".into(),
                    exe: None,
                    uid: Some(0),
                    user: None,
                    unit: None,
                }],
            }]
        } else {
            Vec::new()
        };
        Listing {
            listeners,
            unreadable_processes: 0,
        }
    }

    /// A cache whose walks return the scripted listings in turn (the last one again once
    /// they run out), and the number of walks so far.
    fn scripted(walks: Vec<bool>) -> (ListingCache, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        let lister: Lister = Arc::new(move |_| {
            let i = seen.fetch_add(1, Ordering::SeqCst);
            Ok(listing(walks[i.min(walks.len() - 1)]))
        });
        let cache =
            ListingCache::with_lister(Duration::from_secs(1), ListOptions::default(), lister);
        (cache, count)
    }

    fn connected_probe() -> ProbeResult {
        let peer: SocketAddr = PORT.parse().unwrap();
        ProbeResult {
            state: State::Ok,
            reason: None,
            message: format!("connected to {peer}"),
            target: PORT.into(),
            peer: Some(peer),
            failed_attempts: Vec::new(),
            timings: Default::default(),
            received: String::new(),
            bytes_received: 0,
            truncated: false,
            tls: None,
            expect_end: None,
            transcript: Vec::new(),
        }
    }

    fn expected() -> ExpectedOwner {
        ExpectedOwner::Name("web".into())
    }

    /// Issue 13: the shared listing was taken while the service was down; the probe then
    /// connected to the restarted service. The stale listing must not make it a mismatch.
    #[tokio::test(start_paused = true)]
    async fn a_listing_older_than_the_connection_cannot_prove_a_mismatch() {
        let (cache, walks) = scripted(vec![false, true]);
        let stale = cache.get_listed().await; // "nothing listens", while it was down
        tokio::time::advance(Duration::from_millis(300)).await;
        let connected = Instant::now();
        assert!(!stale.started_after(connected));
        let mut result = connected_probe();
        let verdict = judge_after_connect(
            &mut result,
            &expected(),
            &cache,
            connected,
            Freshness::ConfirmMismatch,
        )
        .await;
        assert!(
            matches!(verdict, Some(OwnerVerdict::Ok { .. })),
            "{verdict:?}"
        );
        assert_eq!(result.state, State::Ok, "{}", result.message);
        assert_eq!(
            walks.load(Ordering::SeqCst),
            2,
            "one fresh walk confirmed it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_mismatch_from_a_listing_after_the_connection_stands() {
        let (cache, walks) = scripted(vec![false]);
        let connected = Instant::now();
        tokio::time::advance(Duration::from_millis(1)).await;
        let mut result = connected_probe();
        let verdict = judge_after_connect(
            &mut result,
            &expected(),
            &cache,
            connected,
            Freshness::ConfirmMismatch,
        )
        .await;
        assert_eq!(verdict, Some(OwnerVerdict::NotListening));
        assert_eq!(result.state, State::Critical);
        assert_eq!(result.reason, Some(Reason::WrongOwner));
        assert_eq!(
            result.message,
            "nothing listens on 127.0.0.1:8080, expected web"
        );
        assert_eq!(walks.load(Ordering::SeqCst), 1, "no second walk");
    }

    /// The common case keeps its cost: a healthy monitor whose owner matches reuses the
    /// shared listing however many checks connect after it.
    #[tokio::test(start_paused = true)]
    async fn matching_checks_share_one_listing_per_max_age() {
        let (cache, walks) = scripted(vec![true]);
        for _ in 0..50 {
            tokio::time::advance(Duration::from_millis(10)).await;
            let mut result = connected_probe();
            judge_after_connect(
                &mut result,
                &expected(),
                &cache,
                Instant::now(),
                Freshness::ConfirmMismatch,
            )
            .await;
            assert_eq!(result.state, State::Ok);
        }
        assert_eq!(walks.load(Ordering::SeqCst), 1);
    }

    /// A down monitor's checks (what healing verifies a fix with) never take a verdict,
    /// match or not, from a listing older than their connection.
    #[tokio::test(start_paused = true)]
    async fn after_connect_takes_even_a_match_from_a_newer_listing() {
        // Before the restart the old process held the port; after it, a wrong one does.
        let (cache, walks) = scripted(vec![true, false]);
        let _before = cache.get_listed().await;
        tokio::time::advance(Duration::from_millis(100)).await;
        let connected = Instant::now();
        let mut result = connected_probe();
        let verdict = judge_after_connect(
            &mut result,
            &expected(),
            &cache,
            connected,
            Freshness::AfterConnect,
        )
        .await;
        assert_eq!(verdict, Some(OwnerVerdict::NotListening));
        assert_eq!(walks.load(Ordering::SeqCst), 2);
    }

    /// Checks waiting for a fresh listing share one walk that started after their connections.
    #[tokio::test(start_paused = true)]
    async fn fresh_listings_are_single_flight() {
        let (cache, walks) = scripted(vec![false, true]);
        let _stale = cache.get_listed().await;
        tokio::time::advance(Duration::from_millis(100)).await;
        let connected = Instant::now();
        let all = futures_util::future::join_all((0..20).map(|_| {
            let cache = cache.clone();
            async move { cache.get_since(connected).await }
        }))
        .await;
        assert!(all.iter().all(|l| l.started_after(connected)));
        assert_eq!(walks.load(Ordering::SeqCst), 2);
    }
}
