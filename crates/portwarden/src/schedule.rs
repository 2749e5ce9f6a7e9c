//! The scheduler: one lightweight task per monitor, each waking on its own grid.
//!
//! - Spread: a monitor's first slot is at a hash of its name within the interval, so
//!   thousands of monitors never start together; a small per-slot jitter (at most 2% of the
//!   interval, at most 500 ms) never accumulates: slots stay on `start + k * interval`.
//! - A global semaphore caps checks in flight; a slow or tarpitting target holds one permit
//!   for its own deadline only, and never delays another monitor's timer.
//! - A monitor's task runs its checks one after another, so one check never overlaps itself;
//!   a check that overruns its slot skips the missed slots instead of bursting.
//! - Results go to the state machine in the same task, then out as events on the bus and as
//!   records on a bounded channel to the store (backpressure, nothing dropped).
//! - Control (run now, pause, resume) arrives on a small channel per monitor.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use portwarden_sockets::ListOptions;
use serde::Serialize;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::events::{EventBus, MonitorChange};
use crate::monitor::{Monitor, Origin};
use crate::ownership::{self, Freshness, ListingCache};
use crate::state::{Outcome, Status, Tracker};

/// Operator commands for one monitor. Sent through [`Scheduler::control`]; the API's
/// token-guarded endpoints (`api::control`) expose them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    RunNow,
    Pause,
    Resume,
}

/// A monitor's pending operator commands: two flags and a wake-up, instead of a channel
/// (a tokio mpsc costs ~700 bytes; 100,000 monitors each have one of these).
#[derive(Debug, Default)]
struct ControlCell {
    /// What the operator wants: paused or not (the latest command wins).
    paused: std::sync::atomic::AtomicBool,
    /// A check was asked for now.
    run_now: std::sync::atomic::AtomicBool,
    /// Wakes the task; a wake-up sent during a check is kept for afterwards.
    wake: tokio::sync::Notify,
}

impl ControlCell {
    fn send(&self, command: Control) {
        match command {
            Control::RunNow => self.run_now.store(true, Ordering::Relaxed),
            Control::Pause => self.paused.store(true, Ordering::Relaxed),
            Control::Resume => self.paused.store(false, Ordering::Relaxed),
        }
        self.wake.notify_one();
    }
}

/// What the scheduler hands to the store.
#[derive(Debug, Clone)]
pub enum Record {
    Check {
        monitor: Arc<str>,
        at: SystemTime,
        status: Status,
        reason: Option<portwarden_probe::Reason>,
        duration: Duration,
    },
    Transition {
        monitor: Arc<str>,
        at: SystemTime,
        from: Status,
        to: Status,
        reason: Option<portwarden_probe::Reason>,
        message: String,
    },
}

/// The last check of a monitor, for people.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LastCheck {
    /// Unix milliseconds.
    #[serde(serialize_with = "crate::schedule::unix_ms")]
    #[schema(value_type = u64)]
    pub at: SystemTime,
    /// The probe's verdict (`ok`, `warning`, `down`, `unknown`).
    #[schema(value_type = String)]
    pub state: portwarden_probe::State,
    /// A `portwarden_probe::Reason` name.
    #[schema(value_type = Option<String>)]
    pub reason: Option<portwarden_probe::Reason>,
    pub message: String,
    /// Seconds.
    #[serde(with = "crate::monitor::secs")]
    #[schema(value_type = f64)]
    pub duration: Duration,
    #[schema(value_type = Option<String>)]
    pub peer: Option<std::net::SocketAddr>,
    pub received: String,
}

/// A monitor as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MonitorView {
    pub name: String,
    pub target: String,
    pub origin: Origin,
    /// The program that must hold the port (an executable path or a process name); null
    /// without an owner check.
    pub owner: Option<String>,
    /// Why a discovered listener is watched without an owner check (its holder is hidden
    /// from portwarden); null otherwise.
    pub owner_unknown: Option<String>,
    pub tags: Vec<String>,
    /// Seconds.
    #[serde(with = "crate::monitor::secs")]
    #[schema(value_type = f64)]
    pub interval: Duration,
    pub status: Status,
    /// Unix milliseconds.
    #[serde(serialize_with = "crate::schedule::unix_ms")]
    #[schema(value_type = u64)]
    pub status_since: SystemTime,
    pub last_check: Option<LastCheck>,
    pub checks: u64,
    pub failures: u64,
    /// The earliest notAfter of the certificate chain the last TLS handshake saw (Unix
    /// seconds); kept while later checks fail before TLS; null before any handshake.
    pub cert_expiry: Option<i64>,
}

/// Start-lag statistics: how late checks start after their slot (permit waits included).
#[derive(Debug)]
pub struct LagStats {
    /// Buckets of 100 µs up to 1 s, then one overflow bucket.
    buckets: Vec<AtomicU64>,
    max_us: AtomicU64,
    checks: AtomicU64,
}

const LAG_BUCKET_US: u64 = 100;
const LAG_BUCKETS: usize = 10_000;

/// A summary of [`LagStats`].
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LagSummary {
    pub checks: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The non-empty buckets as `[upper bound in ms, count since start]`, so a reader can
    /// take the difference of two readings and get the lag of that window alone.
    #[schema(value_type = Vec<Vec<f64>>)]
    pub buckets: Vec<(f64, u64)>,
}

impl Default for LagStats {
    fn default() -> Self {
        Self {
            buckets: (0..=LAG_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max_us: AtomicU64::new(0),
            checks: AtomicU64::new(0),
        }
    }
}

impl LagStats {
    fn record(&self, lag: Duration) {
        let us = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        let bucket = usize::try_from(us / LAG_BUCKET_US)
            .unwrap_or(LAG_BUCKETS)
            .min(LAG_BUCKETS);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
        self.checks.fetch_add(1, Ordering::Relaxed);
    }

    pub fn summary(&self) -> LagSummary {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let quantile = |q: f64| -> f64 {
            if total == 0 {
                return 0.0;
            }
            let rank = ((total as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return ((i as u64 + 1) * LAG_BUCKET_US) as f64 / 1000.0;
                }
            }
            f64::INFINITY
        };
        let buckets = counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (((i as u64 + 1) * LAG_BUCKET_US) as f64 / 1000.0, *c))
            .collect();
        // A quantile is a bucket's upper bound; the maximum is exact, and no quantile
        // exceeds it (a p99 of 1.3 ms beside a maximum of 1.2 ms read as a bug on /metrics).
        let max_ms = self.max_us.load(Ordering::Relaxed) as f64 / 1000.0;
        LagSummary {
            buckets,
            checks: self.checks.load(Ordering::Relaxed),
            p50_ms: quantile(0.50).min(max_ms),
            p99_ms: quantile(0.99).min(max_ms),
            max_ms,
        }
    }
}

/// What every monitor task shares.
#[derive(Debug)]
struct Shared {
    permits: Arc<Semaphore>,
    bus: EventBus,
    records: mpsc::Sender<Record>,
    listings: ListingCache,
    lag: LagStats,
    /// The grid origin: slots are `epoch + offset + k * interval`.
    epoch: Instant,
}

/// One scheduled monitor.
#[derive(Debug)]
struct Slot {
    monitor: Arc<Monitor>,
    view: Arc<Mutex<MonitorView>>,
    control: Arc<ControlCell>,
    cancel: CancellationToken,
}

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplySummary {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
    pub unchanged: usize,
    /// The names of the removed monitors.
    pub removed_names: Vec<String>,
}

/// The running set of monitors.
#[derive(Debug)]
pub struct Scheduler {
    shared: Arc<Shared>,
    slots: RwLock<BTreeMap<String, Slot>>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

/// Settings of the scheduler itself.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerSettings {
    /// Checks in flight at most, over all monitors.
    pub max_in_flight: usize,
    /// How stale the shared socket listing of owner checks may be.
    pub listing_max_age: Duration,
}

impl Scheduler {
    pub fn new(settings: SchedulerSettings, bus: EventBus, records: mpsc::Sender<Record>) -> Self {
        Self {
            shared: Arc::new(Shared {
                permits: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
                bus,
                records,
                listings: ListingCache::new(settings.listing_max_age, ListOptions::default()),
                lag: LagStats::default(),
                epoch: Instant::now(),
            }),
            slots: RwLock::new(BTreeMap::new()),
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        }
    }

    /// Makes `monitors` plus `unchanged` the running set: unchanged ones (same name and
    /// definition, whether built again or only named because [`Scheduler::runs`] said so
    /// when the config was read) keep their task and state, changed ones restart, removed
    /// ones stop.
    pub fn apply(&self, monitors: Vec<Monitor>, unchanged: Vec<String>) -> ApplySummary {
        let mut summary = ApplySummary::default();
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let mut next: BTreeMap<String, Slot> = BTreeMap::new();
        for name in unchanged {
            // Only this task applies configs, and it asked `runs` a moment ago: the slot is
            // there. Were it not, the monitor would stop until the next reload, so say so.
            match slots.remove(&name) {
                Some(slot) => {
                    summary.unchanged += 1;
                    next.insert(name, slot);
                }
                None => tracing::error!(
                    monitor = %name,
                    "a monitor read as unchanged is no longer running; reload again to start it"
                ),
            }
        }
        for monitor in monitors {
            match slots.remove(&monitor.name) {
                Some(slot) if slot.monitor.definition == monitor.definition => {
                    summary.unchanged += 1;
                    next.insert(monitor.name.clone(), slot);
                }
                old => {
                    if let Some(old) = old {
                        old.cancel.cancel();
                        summary.changed += 1;
                    } else {
                        summary.added += 1;
                    }
                    let name = monitor.name.clone();
                    next.insert(name, self.spawn(monitor));
                }
            }
        }
        for (name, gone) in std::mem::take(&mut *slots) {
            gone.cancel.cancel();
            summary.removed += 1;
            summary.removed_names.push(name.clone());
            // Its history stops here: nobody watches it any more, so its last state must not
            // keep counting in the uptime.
            let status = gone.view.lock().unwrap_or_else(|p| p.into_inner()).status;
            let records = self.shared.records.clone();
            tokio::spawn(async move {
                let _ = records
                    .send(Record::Transition {
                        monitor: Arc::from(name.as_str()),
                        at: SystemTime::now(),
                        from: status,
                        to: Status::Paused,
                        reason: None,
                        message: "removed from the config".into(),
                    })
                    .await;
            });
        }
        *slots = next;
        summary
    }

    /// Starts `monitor` unless one of that name runs (zero-config adopting a new listener);
    /// whether it was started.
    pub fn add(&self, monitor: Monitor) -> bool {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        if slots.contains_key(&monitor.name) {
            return false;
        }
        let name = monitor.name.clone();
        let slot = self.spawn(monitor);
        slots.insert(name, slot);
        true
    }

    fn spawn(&self, monitor: Monitor) -> Slot {
        let monitor = Arc::new(monitor);
        let view = Arc::new(Mutex::new(MonitorView {
            name: monitor.name.clone(),
            target: monitor.probe.spec().target.to_string(),
            origin: monitor.origin,
            owner: monitor.owner.as_ref().map(ToString::to_string),
            owner_unknown: monitor.owner_unknown.clone(),
            tags: monitor.tags.clone(),
            interval: monitor.interval,
            status: Status::Unknown,
            status_since: SystemTime::now(),
            last_check: None,
            checks: 0,
            failures: 0,
            cert_expiry: None,
        }));
        let control = Arc::new(ControlCell::default());
        let cancel = self.shutdown.child_token();
        let task = MonitorTask {
            monitor: monitor.clone(),
            view: view.clone(),
            shared: self.shared.clone(),
            control: control.clone(),
            cancel: cancel.clone(),
            tracker: Tracker::new(monitor.policy),
        };
        self.tasks.spawn(task.run());
        Slot {
            monitor,
            view,
            control,
            cancel,
        }
    }

    /// Whether a monitor of this name runs with this definition (a reload then keeps only its
    /// name: [`crate::config::load_beside`]).
    pub fn runs(&self, name: &str, definition: crate::monitor::Fingerprint) -> bool {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots
            .get(name)
            .is_some_and(|s| s.monitor.definition == definition)
    }

    /// How many monitors run (without copying their views).
    pub fn len(&self) -> usize {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Every monitor's view, sorted by name.
    pub fn views(&self) -> Vec<MonitorView> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots
            .values()
            .map(|s| s.view.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .collect()
    }

    /// One monitor's view.
    pub fn view(&self, name: &str) -> Option<MonitorView> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots
            .get(name)
            .map(|s| s.view.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// The running monitor of this name (the notification dispatcher routes by it).
    pub fn monitor(&self, name: &str) -> Option<Arc<Monitor>> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.get(name).map(|s| s.monitor.clone())
    }

    /// Sends an operator command; `false` if there is no such monitor.
    pub fn control(&self, name: &str, command: Control) -> bool {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        match slots.get(name) {
            Some(slot) => {
                slot.control.send(command);
                true
            }
            None => false,
        }
    }

    pub fn lag(&self) -> LagSummary {
        self.shared.lag.summary()
    }

    /// Checks in flight right now.
    pub fn in_flight(&self, max: usize) -> usize {
        max.saturating_sub(self.shared.permits.available_permits())
    }

    /// Stops scheduling; checks in flight may finish within `grace`, the rest are abandoned.
    pub async fn shutdown(&self, grace: Duration) {
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "checks still running after the {} grace period were abandoned",
                humantime::format_duration(grace)
            );
        }
    }
}

/// The task of one monitor.
struct MonitorTask {
    monitor: Arc<Monitor>,
    view: Arc<Mutex<MonitorView>>,
    shared: Arc<Shared>,
    control: Arc<ControlCell>,
    cancel: CancellationToken,
    tracker: Tracker,
}

impl MonitorTask {
    async fn run(mut self) {
        let interval = self.monitor.interval;
        let mut slot = first_slot(
            self.shared.epoch,
            &self.monitor.name,
            interval,
            Instant::now(),
        );
        let mut paused = false;
        let mut round: u64 = 0;
        loop {
            let due = slot + jitter(&self.monitor.name, round, interval);
            let run_now = tokio::select! {
                biased;
                () = self.cancel.cancelled() => return,
                () = self.control.wake.notified() => {
                    let wanted = self.control.paused.load(Ordering::Relaxed);
                    if wanted && !paused {
                        paused = true;
                        if let Some(t) = self.tracker.pause() { self.publish(&t).await; }
                    } else if !wanted && paused {
                        paused = false;
                        // Back on the grid at the next slot: no burst for the slots missed.
                        slot = first_slot(self.shared.epoch, &self.monitor.name, interval, Instant::now());
                        if let Some(t) = self.tracker.resume() { self.publish(&t).await; }
                    }
                    if !self.control.run_now.swap(false, Ordering::Relaxed) || paused {
                        continue;
                    }
                    true
                },
                () = sleep_until(due), if !paused => false,
            };
            let permit = tokio::select! {
                () = self.cancel.cancelled() => return,
                permit = self.shared.permits.clone().acquire_owned() => permit,
            };
            let Ok(_permit) = permit else { return };
            let started = Instant::now();
            if !run_now {
                self.shared
                    .lag
                    .record(started.saturating_duration_since(due));
            }
            // Boxed: a check's future (the probe's above all) is kilobytes; inlined it would
            // sit in every idle monitor's task, 100,000 times over. Boxed it exists only
            // while a check runs.
            Box::pin(self.check()).await;
            drop(_permit);
            if !run_now {
                round += 1;
                slot += interval;
                // An overrun skips the slots it missed instead of catching up in a burst.
                let now = Instant::now();
                while slot + jitter(&self.monitor.name, round, interval) <= now {
                    slot += interval;
                    round += 1;
                }
            }
        }
    }

    async fn check(&mut self) {
        let at = SystemTime::now();
        let mut result = self.monitor.probe.run().await;
        if let Some(expected) = &self.monitor.owner {
            // The probe is over, so its connection (if any) succeeded before now: a listing
            // that started earlier cannot prove a mismatch (issue 13).
            let connected = Instant::now();
            // While the monitor is not healthy (down, starting, flapping), every verdict comes
            // from a listing after the connection: healing's verification of a fix reads
            // these checks, and a stale match must not call a fix good either.
            let freshness = if matches!(self.tracker.status(), Status::Ok | Status::Warning) {
                Freshness::ConfirmMismatch
            } else {
                Freshness::AfterConnect
            };
            ownership::judge_after_connect(
                &mut result,
                expected,
                &self.shared.listings,
                connected,
                freshness,
            )
            .await;
        }
        let status = match result.state {
            portwarden_probe::State::Ok => Status::Ok,
            portwarden_probe::State::Warning => Status::Warning,
            portwarden_probe::State::Critical => Status::Down,
            portwarden_probe::State::Unknown => Status::Unknown,
        };
        let outcome = Outcome {
            verdict: result.state,
            reason: result.reason,
            message: result.message.clone(),
        };
        let transition = self.tracker.observe(&outcome, Instant::now());
        {
            let mut view = self.view.lock().unwrap_or_else(|p| p.into_inner());
            view.checks += 1;
            if let Some(tls) = &result.tls {
                view.cert_expiry = Some(tls.earliest_expiry_unix);
            }
            if status == Status::Down {
                view.failures += 1;
            }
            view.last_check = Some(LastCheck {
                at,
                state: result.state,
                reason: result.reason,
                message: result.message,
                duration: result.timings.total,
                peer: result.peer,
                received: result.received,
            });
        }
        let name: Arc<str> = Arc::from(self.monitor.name.as_str());
        let _ = self
            .shared
            .records
            .send(Record::Check {
                monitor: name,
                at,
                status,
                reason: result.reason,
                duration: result.timings.total,
            })
            .await;
        if let Some(t) = transition {
            self.publish(&t).await;
        }
    }

    async fn publish(&self, t: &crate::state::Transition) {
        let at = SystemTime::now();
        {
            let mut view = self.view.lock().unwrap_or_else(|p| p.into_inner());
            view.status = t.to;
            view.status_since = at;
        }
        let _ = self
            .shared
            .records
            .send(Record::Transition {
                monitor: Arc::from(self.monitor.name.as_str()),
                at,
                from: t.from,
                to: t.to,
                reason: t.reason,
                message: t.message.clone(),
            })
            .await;
        self.shared
            .bus
            .publish(MonitorChange::from_transition(&self.monitor.name, t).into_event());
    }
}

fn hash_of(name: &str, salt: u64) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    salt.hash(&mut h);
    h.finish()
}

/// The first slot at or after `now` on this monitor's grid.
fn first_slot(epoch: Instant, name: &str, interval: Duration, now: Instant) -> Instant {
    let interval_ns = interval.as_nanos().max(1);
    let offset = Duration::from_nanos(
        u64::try_from(u128::from(hash_of(name, 0)) % interval_ns).unwrap_or(0),
    );
    let mut slot = epoch + offset;
    if slot < now {
        let behind = now.duration_since(slot).as_nanos();
        let steps = behind.div_ceil(interval_ns);
        slot += Duration::from_nanos(u64::try_from(steps * interval_ns).unwrap_or(u64::MAX / 2));
    }
    slot
}

/// Jitter of one slot: up to 2% of the interval, at most 500 ms; recomputed per slot,
/// never accumulated.
fn jitter(name: &str, round: u64, interval: Duration) -> Duration {
    let max = (interval / 50).min(Duration::from_millis(500));
    let max_us = u64::try_from(max.as_micros()).unwrap_or(0);
    if max_us == 0 {
        return Duration::ZERO;
    }
    Duration::from_micros(hash_of(name, round + 1) % max_us)
}

pub(crate) fn unix_ms<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    s.serialize_u64(u64::try_from(ms).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_quantiles_never_exceed_the_maximum() {
        let lag = LagStats::default();
        for us in [800, 900, 1_215] {
            lag.record(Duration::from_micros(us));
        }
        let s = lag.summary();
        assert_eq!(s.max_ms, 1.215);
        assert_eq!(s.p99_ms, 1.215);
        assert_eq!(s.p50_ms, 1.0);
    }
    use crate::events::EventKind;
    use crate::monitor::Policy;
    use portwarden_probe::{Probe, ProbeSpec, Target};
    use std::net::SocketAddr;
    use tokio::io::AsyncWriteExt;

    fn monitor(name: &str, addr: SocketAddr, interval: Duration, deadline: Duration) -> Monitor {
        let mut spec =
            ProbeSpec::connect(Target::parse_with_default(&addr.to_string(), None).unwrap());
        spec.limits.deadline = deadline;
        spec.limits.connect_timeout = deadline;
        spec.steps = vec![portwarden_probe::Step::Expect(
            portwarden_probe::Expectation::one(portwarden_probe::Matcher::Prefix(b"hi".to_vec())),
        )];
        Monitor {
            name: name.into(),
            probe: Probe::new(spec).unwrap(),
            owner: None,
            owner_unknown: None,
            interval,
            policy: Policy {
                fail_after: 2,
                recover_after: 1,
                ..Policy::default()
            },
            notify: vec![],
            tags: vec![],
            heal: crate::monitor::Heal::default(),
            origin: Origin::Config,
            definition: crate::monitor::Fingerprint::of(&format!("{name} {addr} {interval:?}")),
        }
    }

    fn scheduler(max_in_flight: usize) -> (Scheduler, mpsc::Receiver<Record>, EventBus) {
        let bus = EventBus::new();
        let (tx, rx) = mpsc::channel(100_000);
        let settings = SchedulerSettings {
            max_in_flight,
            listing_max_age: Duration::from_secs(1),
        };
        (Scheduler::new(settings, bus.clone(), tx), rx, bus)
    }

    async fn listener() -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let _ = s.write_all(b"hi\r\n").await;
            }
        });
        addr
    }

    /// Accepts and then says nothing, holding the connection: a tarpit.
    async fn tarpit() -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        addr
    }

    fn closed() -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }

    fn checks_of(records: &[Record], name: &str) -> Vec<SystemTime> {
        records
            .iter()
            .filter_map(|r| match r {
                Record::Check { monitor, at, .. } if &**monitor == name => Some(*at),
                _ => None,
            })
            .collect()
    }

    fn drain(rx: &mut mpsc::Receiver<Record>) -> Vec<Record> {
        let mut out = Vec::new();
        while let Ok(r) = rx.try_recv() {
            out.push(r);
        }
        out
    }

    #[test]
    fn first_slots_spread_over_the_interval() {
        let epoch = Instant::now();
        let interval = Duration::from_secs(10);
        let offsets: Vec<Duration> = (0..1000)
            .map(|i| first_slot(epoch, &format!("m{i}"), interval, epoch) - epoch)
            .collect();
        assert!(offsets.iter().all(|o| *o < interval));
        // Each tenth of the interval gets roughly a tenth of the monitors.
        for decile in 0..10 {
            let n = offsets.iter().filter(|o| o.as_secs() == decile).count();
            assert!((50..=150).contains(&n), "decile {decile}: {n}");
        }
        // A monitor added later starts at its next slot on the same grid, not at once.
        let later = epoch + Duration::from_secs(95);
        let slot = first_slot(epoch, "m7", interval, later);
        assert!(slot >= later && slot < later + interval);
        assert_eq!(
            (slot - epoch).as_nanos() % interval.as_nanos(),
            offsets[7].as_nanos()
        );
    }

    #[test]
    fn jitter_is_small_and_bounded() {
        for round in 0..100 {
            assert!(jitter("x", round, Duration::from_secs(10)) < Duration::from_millis(200));
            assert!(jitter("x", round, Duration::from_secs(3600)) < Duration::from_millis(500));
        }
        assert_eq!(jitter("x", 1, Duration::from_micros(40)), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn slots_do_not_drift_over_many_intervals() {
        let (sched, mut rx, _bus) = scheduler(16);
        sched.apply(
            vec![monitor(
                "refused",
                closed(),
                Duration::from_secs(1),
                Duration::from_millis(100),
            )],
            Vec::new(),
        );
        tokio::time::sleep(Duration::from_secs(100)).await;
        let checks = checks_of(&drain(&mut rx), "refused");
        // One check per second, start to end: no drift, no burst.
        assert!(
            (99..=101).contains(&checks.len()),
            "{} checks",
            checks.len()
        );
        let lag = sched.lag();
        assert!(lag.max_ms < 50.0, "{lag:?}");
        let counted: u64 = lag.buckets.iter().map(|(_, c)| c).sum();
        assert_eq!(counted, lag.checks, "every check is in a bucket");
        sched.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn a_tarpit_costs_only_its_own_timeout() {
        // 1,000 tarpit connections, each seen from both ends in this process.
        crate::daemon::raise_file_limit();
        let (sched, mut rx, _bus) = scheduler(1100);
        let pit = tarpit().await;
        let mut monitors: Vec<Monitor> = (0..1000)
            .map(|i| {
                monitor(
                    &format!("pit{i}"),
                    pit,
                    Duration::from_millis(300),
                    Duration::from_secs(2),
                )
            })
            .collect();
        let healthy = listener().await;
        monitors.push(monitor(
            "healthy",
            healthy,
            Duration::from_millis(100),
            Duration::from_secs(1),
        ));
        sched.apply(monitors, Vec::new());
        tokio::time::sleep(Duration::from_millis(1550)).await;
        let records = drain(&mut rx);
        let healthy_checks = checks_of(&records, "healthy").len();
        // 15 slots in 1.5 s; the 1,000 tarpits (each holding a connection for 2 s) delay none.
        assert!(
            (14..=16).contains(&healthy_checks),
            "{healthy_checks} healthy checks"
        );
        assert!(
            checks_of(&records, "pit0").is_empty(),
            "a tarpit check ended before its deadline"
        );
        sched.shutdown(Duration::from_millis(10)).await;
    }

    #[tokio::test]
    async fn a_monitor_never_runs_twice_at_once() {
        let (sched, mut rx, _bus) = scheduler(1024);
        let pit = tarpit().await;
        // Interval 100 ms, each check takes 350 ms: slots are skipped, never overlapped.
        sched.apply(
            vec![monitor(
                "slow",
                pit,
                Duration::from_millis(100),
                Duration::from_millis(350),
            )],
            Vec::new(),
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let checks = checks_of(&drain(&mut rx), "slow");
        assert!((3..=4).contains(&checks.len()), "{} checks", checks.len());
        for pair in checks.windows(2) {
            let gap = pair[1].duration_since(pair[0]).unwrap();
            assert!(
                gap >= Duration::from_millis(350),
                "overlapping checks {gap:?} apart"
            );
        }
        sched.shutdown(Duration::from_millis(10)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn goes_down_and_publishes_one_event_per_transition() {
        let (sched, mut rx, bus) = scheduler(16);
        let mut events = bus.subscribe();
        sched.apply(
            vec![monitor(
                "gone",
                closed(),
                Duration::from_secs(1),
                Duration::from_millis(100),
            )],
            Vec::new(),
        );
        tokio::time::sleep(Duration::from_secs(10)).await;
        let ev = events.try_recv().unwrap();
        assert!(
            matches!(&ev.kind, EventKind::MonitorDown(c) if c.monitor == "gone" && c.reason == Some(portwarden_probe::Reason::Refused)),
            "{ev:?}"
        );
        assert!(events.try_recv().is_err(), "one event only");
        let records = drain(&mut rx);
        let transitions: Vec<(Status, Status)> = records
            .iter()
            .filter_map(|r| match r {
                Record::Transition { from, to, .. } => Some((*from, *to)),
                _ => None,
            })
            .collect();
        assert_eq!(transitions, vec![(Status::Unknown, Status::Down)]);
        assert_eq!(sched.view("gone").unwrap().status, Status::Down);
        sched.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn run_now_pause_and_resume() {
        let (sched, mut rx, _bus) = scheduler(16);
        sched.apply(
            vec![monitor(
                "ctl",
                closed(),
                Duration::from_secs(3600),
                Duration::from_millis(100),
            )],
            Vec::new(),
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        drain(&mut rx);
        assert!(sched.control("ctl", Control::RunNow));
        assert!(!sched.control("nope", Control::RunNow));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            checks_of(&drain(&mut rx), "ctl").len(),
            1,
            "run-now runs at once"
        );
        sched.control("ctl", Control::Pause);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(sched.view("ctl").unwrap().status, Status::Paused);
        sched.control("ctl", Control::RunNow);
        tokio::time::sleep(Duration::from_secs(7200)).await;
        assert!(
            checks_of(&drain(&mut rx), "ctl").is_empty(),
            "paused monitors do not run"
        );
        sched.control("ctl", Control::Resume);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(sched.view("ctl").unwrap().status, Status::Unknown);
        assert_eq!(checks_of(&drain(&mut rx), "ctl").len(), 1);
        sched.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_monitor_named_as_unchanged_keeps_its_task_and_state() {
        let (sched, _rx, _bus) = scheduler(16);
        let gone = closed();
        let make = |name: &str| {
            monitor(
                name,
                gone,
                Duration::from_secs(1),
                Duration::from_millis(100),
            )
        };
        sched.apply(vec![make("keep"), make("drop")], Vec::new());
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before = sched.view("keep").unwrap();
        assert_eq!(before.status, Status::Down);
        let keep = make("keep");
        assert!(sched.runs("keep", keep.definition));
        assert!(!sched.runs("new", keep.definition));
        // A reload that read "keep" as unchanged hands over its name only.
        let s = sched.apply(vec![make("new")], vec!["keep".into()]);
        assert_eq!((s.added, s.removed, s.unchanged), (1, 1, 1));
        let after = sched.view("keep").unwrap();
        assert_eq!(after.status, Status::Down, "its state was kept");
        assert!(after.checks >= before.checks);
        assert!(sched.view("drop").is_none());
        sched.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn apply_keeps_unchanged_monitors_and_their_state() {
        let (sched, mut rx, _bus) = scheduler(16);
        let gone = closed();
        let every_second = |name: &str| {
            monitor(
                name,
                gone,
                Duration::from_secs(1),
                Duration::from_millis(100),
            )
        };
        let s = sched.apply(
            vec![
                every_second("keep"),
                every_second("change"),
                every_second("drop"),
            ],
            Vec::new(),
        );
        assert_eq!(s.added, 3);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before = sched.view("keep").unwrap();
        assert_eq!(before.status, Status::Down);
        let s = sched.apply(
            vec![
                every_second("keep"),
                monitor(
                    "change",
                    gone,
                    Duration::from_secs(2),
                    Duration::from_millis(100),
                ),
                every_second("new"),
            ],
            Vec::new(),
        );
        assert_eq!(
            s,
            ApplySummary {
                added: 1,
                removed: 1,
                changed: 1,
                unchanged: 1,
                removed_names: vec!["drop".into()],
            }
        );
        let after = sched.view("keep").unwrap();
        assert_eq!(after.status, Status::Down);
        assert!(after.checks >= before.checks);
        assert_eq!(
            sched.view("change").unwrap().checks,
            0,
            "a changed monitor starts afresh"
        );
        assert!(sched.view("drop").is_none());
        tokio::time::sleep(Duration::from_millis(1)).await;
        let records = drain(&mut rx);
        assert!(
            records.iter().any(|r| matches!(r, Record::Transition { monitor, to: Status::Paused, .. } if &**monitor == "drop")),
            "a removed monitor's history is closed"
        );
        sched.shutdown(Duration::from_secs(1)).await;
    }

    /// 100,000 monitors live in memory at once: an idle monitor's task must stay small
    /// (the probe's own future, kilobytes, is boxed and exists only during a check).
    #[tokio::test]
    async fn an_idle_monitor_task_stays_under_one_kibibyte() {
        let (tx, _rx) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            permits: Arc::new(Semaphore::new(1)),
            bus: EventBus::new(),
            records: tx,
            listings: ListingCache::new(Duration::from_secs(1), ListOptions::default()),
            lag: LagStats::default(),
            epoch: Instant::now(),
        });
        let m = Arc::new(monitor(
            "x",
            closed(),
            Duration::from_secs(1),
            Duration::from_secs(1),
        ));
        let probe_future = std::mem::size_of_val(&m.probe.run());
        let view = Arc::new(Mutex::new(MonitorView {
            name: String::new(),
            target: String::new(),
            origin: Origin::Config,
            owner: None,
            owner_unknown: None,
            tags: vec![],
            interval: Duration::from_secs(1),
            status: Status::Unknown,
            status_since: SystemTime::now(),
            last_check: None,
            checks: 0,
            failures: 0,
            cert_expiry: None,
        }));
        let control = Arc::new(ControlCell::default());
        let task = MonitorTask {
            tracker: Tracker::new(m.policy),
            monitor: m,
            view,
            shared,
            control,
            cancel: CancellationToken::new(),
        };
        let task_future = std::mem::size_of_val(&task.run());
        assert!(task_future < 1024, "an idle task takes {task_future} bytes");
        assert!(
            task_future < probe_future,
            "the probe future ({probe_future} bytes) is inlined"
        );
    }
}
