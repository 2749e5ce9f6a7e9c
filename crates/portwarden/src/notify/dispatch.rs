//! The dispatcher task: events in from the bus, outbox rows into the store, notifications out
//! through the notifiers.
//!
//! One task owns all lanes (one lane per notifier: its rows in order, whether a send is in
//! flight, when it last delivered). Sends run as their own tasks, at most one per lane, so a
//! slow receiver holds up its own lane only. Every change to a row is committed to the store
//! before the dispatcher acts on it; a row is sent only after its insert is committed, and
//! deleted only after delivery. Grouping decides over the rows at send time ([`super::plan`]),
//! so nothing waits in memory alone: a SIGKILL loses nothing, a restart delivers what was
//! pending first (its rows have the lowest `seq`) and keeps each row's retry schedule.
//!
//! While the store is failed (disk full), notifications still go out, from memory, and what
//! the store could not take is remembered ([`Unsaved`]) and written as soon as it is back:
//! new rows as they are now, retry bookkeeping, deliveries. See [`Unsaved`] for why that keeps
//! "exactly once by key".

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portwarden_notify::{Delivery, Kind, Notification, SendError};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::items::{self, Lookup};
use super::plan;
use crate::config::NotifierConfig;
use crate::events::{Event, EventBus, EventKind, LosslessReceiver};
use crate::state::Status;
use crate::store::{
    kind_name, Carried, Delivered, OutboxRow, Reminded, ReminderMark, RowState, RowUpdate, Store,
};

/// Longest a single attempt may take, whatever the notifier's own timeout says.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(300);
/// How long sends in flight may finish at shutdown (their rows stay in the outbox anyway).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Events taken from the bus in one go (one outbox transaction).
const EVENT_BATCH: usize = 1024;
/// Why the rows of a notifier that left the config wait.
pub const NOT_CONFIGURED: &str = "notifier no longer configured";
/// How often outbox changes the store could not take are tried again (only while there are
/// some, and only once the store says it is open again).
const RESYNC_EVERY: Duration = Duration::from_secs(1);

/// A boxed send in flight.
pub type SendFuture = Pin<Box<dyn Future<Output = Result<Delivery, SendError>> + Send>>;

/// Something that delivers a notification: a real [`portwarden_notify::Notifier`], or a fake in
/// tests.
pub trait Deliver: Send + Sync + std::fmt::Debug {
    /// One attempt.
    fn deliver(self: Arc<Self>, notification: Notification) -> SendFuture;
}

impl Deliver for portwarden_notify::Notifier {
    fn deliver(self: Arc<Self>, notification: Notification) -> SendFuture {
        Box::pin(async move { portwarden_notify::Notifier::send(&self, &notification).await })
    }
}

/// Builds a notifier from its config.
pub type Build = Arc<dyn Fn(&NotifierConfig) -> Result<Arc<dyn Deliver>, String> + Send + Sync>;

/// The real notifiers of the `portwarden-notify` crate.
pub fn build_notifier(config: &NotifierConfig) -> Result<Arc<dyn Deliver>, String> {
    portwarden_notify::Notifier::new(&config.name, config.spec.clone())
        .map(|n| Arc::new(n) as Arc<dyn Deliver>)
}

/// What the dispatcher routes by; replaced on reload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub notifiers: Vec<NotifierConfig>,
    /// `[firewall] notify`.
    pub firewall_notify: Vec<String>,
}

/// Everything the dispatcher is built from.
#[derive(Clone)]
pub struct DispatcherOptions {
    pub store: Store,
    pub bus: EventBus,
    pub lookup: Lookup,
    pub build: Build,
    pub settings: Settings,
    pub host: String,
    /// Monitors DOWN before the restart: see [`Store::carried_down`].
    pub carried_down: HashMap<String, Carried>,
}

/// The daemon's side of a running dispatcher: reloads in, configured names out (for the API).
#[derive(Debug, Clone)]
pub struct DispatcherHandle {
    reload: mpsc::Sender<Settings>,
    configured: Arc<Mutex<Vec<String>>>,
}

impl DispatcherHandle {
    /// Hands the dispatcher a reloaded config; pending rows stay.
    pub async fn reload(&self, settings: Settings) {
        let _ = self.reload.send(settings).await;
    }

    /// The names of the configured notifiers.
    pub fn configured(&self) -> Vec<String> {
        self.configured
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }
}

/// Wall-clock milliseconds that move with tokio's clock (so tests can pause time): persisted
/// times are Unix ms, sleeps are tokio instants.
#[derive(Debug, Clone, Copy)]
struct Clock {
    wall0: i64,
    t0: Instant,
}

impl Clock {
    fn new() -> Self {
        Self {
            wall0: items::unix_ms(std::time::SystemTime::now()),
            t0: Instant::now(),
        }
    }

    fn now_ms(&self) -> i64 {
        self.wall0 + i64::try_from(self.t0.elapsed().as_millis()).unwrap_or(i64::MAX / 2)
    }

    fn instant(&self, ms: i64) -> Instant {
        let now = self.now_ms();
        Instant::now() + Duration::from_millis(u64::try_from(ms - now).unwrap_or(0))
    }
}

/// One notifier's queue.
#[derive(Debug)]
struct Lane {
    config: Option<NotifierConfig>,
    /// The notifier, or why it cannot send (not configured, cannot be built).
    sender: Result<Arc<dyn Deliver>, String>,
    rows: VecDeque<OutboxRow>,
    last_sent_ms: Option<i64>,
    busy: bool,
}

impl Lane {
    fn orphan() -> Self {
        Lane {
            config: None,
            sender: Err(NOT_CONFIGURED.into()),
            rows: VecDeque::new(),
            last_sent_ms: None,
            busy: false,
        }
    }

    fn window_ms(&self) -> i64 {
        self.config.as_ref().map_or(0, |c| {
            i64::try_from(c.group_window.as_millis()).unwrap_or(i64::MAX)
        })
    }

    fn gather_ms(&self) -> i64 {
        self.config.as_ref().map_or(0, |c| {
            i64::try_from(c.group_wait.as_millis()).unwrap_or(i64::MAX)
        })
    }

    fn due_ms(&self) -> Option<i64> {
        if self.busy || self.sender.is_err() {
            return None;
        }
        plan::due_ms(
            &self.rows,
            self.window_ms(),
            self.gather_ms(),
            self.last_sent_ms,
        )
    }
}

/// A monitor that is down, for reminders.
#[derive(Debug)]
struct DownMonitor {
    /// The DOWN item, restated by each reminder.
    item: portwarden_notify::Item,
    since_ms: i64,
    /// Last reminder (or the DOWN itself) per notifier.
    last: HashMap<String, i64>,
}

/// Outbox changes the store could not commit (it was failed), to be written once it is back.
///
/// Why write them later rather than only deliver from memory: until they are in the outbox, a
/// crash or restart would lose a notification nobody received yet (its row never written), or
/// send one again that was delivered (its row never deleted), or regroup a message that was
/// already attempted under a new key (its attempts never written). Written late, each row
/// keeps its `seq`, notification id and attempts, so after a restart the same rows make the
/// same message with the same key, as if the store had never failed: exactly once by key.
/// Only the window until the store is back stays exposed to a crash.
/// Rows of the outbox not read at start-up: every one with a seq below `below_seq`.
#[derive(Debug, Clone, Copy)]
struct LeftRows {
    below_seq: i64,
}

#[derive(Debug, Default)]
struct Unsaved {
    /// Rows whose insert failed (written with their state at the time of the retry).
    rows: HashSet<i64>,
    /// Rows whose retry bookkeeping failed to update.
    updates: HashSet<i64>,
    /// Deliveries that could not be recorded: their rows are still to be deleted and the
    /// delivery logged. Oldest first.
    deliveries: Vec<(Vec<i64>, Delivered)>,
    /// When to try again; `None` while nothing waits.
    retry_at: Option<Instant>,
}

impl Unsaved {
    fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.updates.is_empty() && self.deliveries.is_empty()
    }

    /// Something new could not be written: try again in a moment (unless already planned).
    fn schedule(&mut self) {
        if self.retry_at.is_none() {
            self.retry_at = Some(Instant::now() + RESYNC_EVERY);
        }
    }
}

/// The result of one send.
#[derive(Debug)]
struct Sent {
    notifier: String,
    seqs: Vec<i64>,
    notification: Notification,
    result: Result<Delivery, SendError>,
}

/// The dispatcher; run it with [`Dispatcher::run`].
pub struct Dispatcher {
    store: Store,
    bus: EventBus,
    /// Lossless: a storm of any size reaches the outbox whole.
    events: LosslessReceiver,
    lookup: Lookup,
    build: Build,
    settings: Settings,
    reloads: mpsc::Receiver<Settings>,
    configured: Arc<Mutex<Vec<String>>>,
    host: String,
    clock: Clock,
    lanes: BTreeMap<String, Lane>,
    next_seq: i64,
    down: HashMap<String, DownMonitor>,
    /// Monitors whose DOWN a silence held: their UP is held too.
    held_down: HashSet<String>,
    /// Monitors DOWN before the restart, until their first verdict: a DOWN again is not news,
    /// an OK is the recovery nobody has heard of yet.
    carried_down: HashMap<String, Carried>,
    /// The start of each DOWN monitor's outage as announced: its UP takes its start and
    /// length from here, so both name the same outage (the state machine, started afresh
    /// after a restart, counts from its own first check).
    down_since: HashMap<String, i64>,
    /// Reminder times from before the restart, until each carried-down monitor's first
    /// verdict restores them.
    reminded: Reminded,
    /// Reminder times to write with the next outbox insert.
    marks: Vec<ReminderMark>,
    inflight: JoinSet<Sent>,
    jitter: RandomState,
    unsaved: Unsaved,
    /// The store was failed at start-up, so the rows left from before are still unread:
    /// read once it is back ([`Dispatcher::read_left_rows`]), not at the next restart.
    left_rows_unread: Option<LeftRows>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("lanes", &self.lanes.len())
            .field("down", &self.down.len())
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// Subscribes to the bus at once (losslessly), so no event published after this call is
    /// missed.
    pub fn new(options: DispatcherOptions) -> (Dispatcher, DispatcherHandle) {
        let (reload, reloads) = mpsc::channel(4);
        // Known from the start, not only once the first settings are applied: `/metrics`
        // shows every notifier's queue gauges from the first scrape.
        let names = options.settings.notifiers.iter().map(|n| n.name.clone());
        let configured = Arc::new(Mutex::new(names.collect()));
        let d = Dispatcher {
            events: options.bus.subscribe_lossless(),
            store: options.store,
            bus: options.bus,
            lookup: options.lookup,
            build: options.build,
            settings: Settings::default(),
            reloads,
            configured: configured.clone(),
            host: options.host,
            clock: Clock::new(),
            lanes: BTreeMap::new(),
            next_seq: 1,
            down: HashMap::new(),
            held_down: HashSet::new(),
            carried_down: options.carried_down,
            down_since: HashMap::new(),
            reminded: Reminded::new(),
            marks: Vec::new(),
            inflight: JoinSet::new(),
            jitter: RandomState::new(),
            unsaved: Unsaved::default(),
            left_rows_unread: None,
        };
        // The first settings arrive through the same path as reloads.
        let _ = reload.try_send(options.settings);
        (d, DispatcherHandle { reload, configured })
    }

    /// Runs until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        self.load_outbox(&shutdown).await;
        let mut first = true;
        let mut batch = Vec::with_capacity(EVENT_BATCH);
        loop {
            self.start_due_sends();
            let wake = self.next_wake_ms().map(|ms| self.clock.instant(ms));
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(sent) = self.inflight.join_next(), if !self.inflight.is_empty() => {
                    match sent {
                        Ok(sent) => self.finished(sent).await,
                        Err(e) => tracing::error!(error = %e, "a notification send task failed"),
                    }
                }
                Some(settings) = self.reloads.recv() => {
                    self.apply_settings(settings, first).await;
                    first = false;
                }
                received = self.events.recv_many(&mut batch, EVENT_BATCH) => {
                    if received == 0 {
                        break; // the bus is gone
                    }
                    let events = std::mem::take(&mut batch);
                    self.on_events(&events).await;
                }
                () = sleep_until_opt(wake) => self.remind().await,
                () = sleep_until_opt(self.unsaved.retry_at) => self.write_unsaved().await,
            }
        }
        // Sends in flight get a moment; their rows are in the outbox whatever happens.
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !self.inflight.is_empty() {
            match tokio::time::timeout_at(deadline, self.inflight.join_next()).await {
                Ok(Some(Ok(sent))) => self.finished(sent).await,
                Ok(Some(Err(_))) => {}
                Ok(None) | Err(_) => break,
            }
        }
        self.inflight.abort_all();
    }

    /// Loads the rows left from before (a restart, a crash): they go first.
    async fn load_outbox(&mut self, shutdown: &CancellationToken) {
        let started = Instant::now();
        let rows = loop {
            match self.store.outbox_rows().await {
                Ok(rows) => break Some(rows),
                Err(e) => {
                    let failed = self.store.health().state == crate::store::StoreState::Failed;
                    if failed || started.elapsed() > Duration::from_secs(30) {
                        tracing::error!(error = %e,
                            "notification outbox cannot be read; notifications left from before \
                             stay in the database unsent, new ones are sent from memory");
                        break None;
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        };
        let Some(rows) = rows else {
            // Above any seq written before, so an unread older row never sorts after.
            self.next_seq = self.clock.now_ms();
            self.left_rows_unread = Some(LeftRows {
                below_seq: self.next_seq,
            });
            self.unsaved.schedule();
            return;
        };
        if !self.carried_down.is_empty() {
            match self.store.reminders().await {
                Ok(reminded) => self.reminded = reminded,
                Err(e) => tracing::warn!(error = %e,
                    "reminder times from before the restart cannot be read; reminders about \
                     monitors still DOWN start over"),
            }
        }
        if !rows.is_empty() {
            tracing::info!(
                rows = rows.len(),
                "notification outbox: {} notifications from before the restart are delivered first",
                rows.len()
            );
        }
        for row in rows {
            self.next_seq = self.next_seq.max(row.seq + 1);
            self.lanes
                .entry(row.notifier.clone())
                .or_insert_with(Lane::orphan)
                .rows
                .push_back(row);
        }
    }

    /// New notifier settings: changed notifiers are rebuilt and their rows tried again now;
    /// removed ones keep their rows, marked failing.
    async fn apply_settings(&mut self, settings: Settings, initial: bool) {
        let now = self.clock.now_ms();
        let mut updates = Vec::new();
        let mut reports = Vec::new();
        let names: HashSet<String> = settings.notifiers.iter().map(|n| n.name.clone()).collect();
        for config in &settings.notifiers {
            let lane = self
                .lanes
                .entry(config.name.clone())
                .or_insert_with(Lane::orphan);
            if lane.config.as_ref() == Some(config) && lane.sender.is_ok() {
                continue;
            }
            lane.sender = (self.build)(config);
            lane.config = Some(config.clone());
            match &lane.sender {
                Ok(_) if initial => {
                    // Rows from before the restart keep their schedule; only rows that waited
                    // for this notifier to exist start over.
                    for r in lane.rows.iter_mut() {
                        if r.last_error.as_deref() == Some(NOT_CONFIGURED) {
                            restart_row(r, now);
                            updates.push(plan::update_of(r));
                        }
                    }
                }
                Ok(_) => {
                    // A changed notifier deserves a fresh try of everything it holds.
                    for r in lane.rows.iter_mut() {
                        if r.attempts > 0 || r.state == RowState::Failing {
                            restart_row(r, now);
                            updates.push(plan::update_of(r));
                        }
                    }
                }
                Err(why) => {
                    tracing::error!(notifier = %config.name, error = %why,
                        "notifier cannot be built; its notifications wait in the outbox");
                    let why = why.clone();
                    mark_failing(lane, &why, &mut updates, &mut reports, &config.name);
                }
            }
        }
        for (name, lane) in self.lanes.iter_mut() {
            if names.contains(name) {
                continue;
            }
            if lane.config.is_some() {
                tracing::warn!(notifier = %name, rows = lane.rows.len(),
                    "notifier {name} left the config; its waiting notifications are kept");
            }
            lane.config = None;
            lane.sender = Err(NOT_CONFIGURED.into());
            mark_failing(lane, NOT_CONFIGURED, &mut updates, &mut reports, name);
        }
        // Monitors the reload removed are no longer down as far as reminders go.
        let lookup = self.lookup.clone();
        self.down.retain(|m, _| lookup(m).is_some());
        self.held_down.retain(|m| lookup(m).is_some());
        if let Ok(mut c) = self.configured.lock() {
            *c = settings.notifiers.iter().map(|n| n.name.clone()).collect();
        }
        self.settings = settings;
        self.persist_updates(updates).await;
        for (notifier, id, error) in reports {
            self.bus.publish(EventKind::NotificationFailing {
                notifier,
                id,
                error,
            });
        }
    }

    /// Events to outbox rows (committed before anything is sent).
    async fn on_events(&mut self, events: &[Arc<Event>]) {
        let lookup = self.lookup.clone();
        let events: Vec<Arc<Event>> = events.iter().flat_map(|e| self.carry_over(e)).collect();
        let routed: Vec<items::Routed> = events
            .iter()
            .filter_map(|e| {
                self.track_down(e);
                items::route(e, &self.host, &*lookup, &self.settings.firewall_notify)
            })
            .filter(|r| !r.notifiers.is_empty())
            .collect();
        if routed.is_empty() {
            return;
        }
        let silences = self.silences().await;
        let now = self.clock.now_ms();
        let mut rows = Vec::new();
        for r in routed {
            let Some(item) = r.notification.items.first() else {
                continue;
            };
            let subject = item.subject.clone();
            let kind = r.notification.kind;
            if let Some(s) = silences.iter().find(|s| s.matches(&subject)) {
                tracing::info!(monitor = %subject, silence = s.id,
                    "{} notification about {subject} held: silenced until {} ({})",
                    kind_name(kind), format_ms(s.until_ms),
                    if s.reason.is_empty() { "no reason given" } else { &s.reason });
                if kind == Kind::Down {
                    self.held_down.insert(subject);
                }
                continue;
            }
            match kind {
                Kind::Down => {
                    self.held_down.remove(&subject);
                }
                Kind::Up if self.held_down.remove(&subject) => {
                    tracing::info!(monitor = %subject,
                        "up notification about {subject} held: its DOWN was silenced");
                    continue;
                }
                _ => {}
            }
            for notifier in &r.notifiers {
                rows.push(self.new_row(notifier, r.notification.clone(), now));
            }
        }
        self.queue(rows).await;
    }

    /// A monitor's first verdict after a restart, seen against its state before: a DOWN that
    /// was already announced is not announced again (its reminders go on from the old start);
    /// a first OK or WARNING is its recovery, announced as one with the outage's length. An
    /// outage the store recorded but whose DOWN was never queued (the daemon stopped in
    /// between) is announced now, dated from its start, and followed by its recovery if the
    /// monitor is healthy again; one whose end the store saw but whose UP was never queued
    /// gets its UP now. Every UP counts from the start of the DOWN announced for it.
    fn carry_over(&mut self, event: &Arc<Event>) -> Vec<Arc<Event>> {
        match &event.kind {
            EventKind::MonitorUp(c) => {
                if let Some(since_ms) = self.down_since.remove(&c.monitor) {
                    return vec![recovery(event, c, since_ms)];
                }
            }
            EventKind::MonitorDown(c) if c.from != Status::Unknown => {
                self.down_since
                    .insert(c.monitor.clone(), items::unix_ms(event.at));
            }
            // Recovered to WARNING: the outage is over (the store closes the incident too).
            EventKind::MonitorWarning(c) if c.from != Status::Unknown => {
                self.down_since.remove(&c.monitor);
            }
            _ => {}
        }
        let change = match &event.kind {
            EventKind::MonitorDown(c)
            | EventKind::MonitorChanged(c)
            | EventKind::MonitorWarning(c)
                if c.from == Status::Unknown =>
            {
                c
            }
            _ => return vec![event.clone()],
        };
        let Some(carried) = self.carried_down.remove(&change.monitor) else {
            if change.to == Status::Down {
                self.down_since
                    .insert(change.monitor.clone(), items::unix_ms(event.at));
            }
            return vec![event.clone()];
        };
        let since_ms = carried.since_ms;
        let at_ms = items::unix_ms(event.at);
        if carried.ended {
            // The outage ended while nobody was told; what the monitor does now is news of
            // its own (a new DOWN, or nothing).
            let mut up = change.clone();
            up.from = Status::Down;
            up.to = Status::Ok;
            up.reason = None;
            up.message = "recovered before the restart".into();
            let mut events = vec![recovery(event, &up, since_ms)];
            if change.to == Status::Down {
                self.down_since.insert(change.monitor.clone(), at_ms);
                events.push(event.clone());
            }
            return events;
        }
        // The DOWN nobody was told about, dated from the outage's start.
        let untold_down = |change: &crate::events::MonitorChange| {
            tracing::info!(monitor = %change.monitor,
                "{} was DOWN since {} before the restart, not yet announced: announcing it",
                change.monitor, format_ms(since_ms));
            let mut down = change.clone();
            down.to = Status::Down;
            down.down_for = None;
            if down.message.is_empty() || change.to != Status::Down {
                down.message = "down before the restart".into();
                down.reason = None;
            }
            let at =
                std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(since_ms).unwrap_or(0));
            Arc::new(Event {
                at,
                kind: EventKind::MonitorDown(down),
            })
        };
        match change.to {
            Status::Down => {
                self.down_since.insert(change.monitor.clone(), since_ms);
                if !carried.announced {
                    return vec![untold_down(change)];
                }
                tracing::info!(monitor = %change.monitor,
                    "{} is still DOWN (since {}, before the restart): not announced again",
                    change.monitor, format_ms(since_ms));
                self.track_down(event);
                let reminded = self.reminded.remove(&change.monitor).unwrap_or_default();
                if let Some(d) = self.down.get_mut(&change.monitor) {
                    d.since_ms = since_ms;
                    d.item.since_ms = u64::try_from(since_ms).ok();
                    // The outage keeps its start and its reminder schedule: the next reminder
                    // comes `remind_every` after the last one before the restart (or after
                    // the DOWN), on time and not twice. A time older than the outage is from
                    // an earlier one.
                    d.last = reminded
                        .into_iter()
                        .filter(|&(_, last)| last >= since_ms)
                        .collect();
                }
                Vec::new()
            }
            Status::Ok | Status::Warning => {
                if self.reminded.remove(&change.monitor).is_some() {
                    self.marks.push(ReminderMark::forget(&change.monitor));
                }
                let mut up = change.clone();
                up.from = Status::Down;
                let up = recovery(event, &up, since_ms);
                if carried.announced {
                    vec![up]
                } else {
                    vec![untold_down(change), up]
                }
            }
            _ => {
                // Still undecided (flapping, paused): keep waiting for a verdict.
                self.carried_down.insert(change.monitor.clone(), carried);
                vec![event.clone()]
            }
        }
    }

    /// Keeps the set of down monitors (for reminders) in step with the events.
    fn track_down(&mut self, event: &Event) {
        let change = match &event.kind {
            EventKind::MonitorDown(c)
            | EventKind::MonitorUp(c)
            | EventKind::MonitorWarning(c)
            | EventKind::MonitorFlapping(c)
            | EventKind::MonitorChanged(c) => c,
            _ => return,
        };
        if !matches!(event.kind, EventKind::MonitorDown(_)) {
            if let Some(d) = self.down.remove(&change.monitor) {
                if !d.last.is_empty() {
                    self.marks.push(ReminderMark::forget(&change.monitor));
                }
            }
            return;
        }
        let at_ms = items::unix_ms(event.at);
        let lookup = self.lookup.clone();
        if let Some(routed) = items::route(event, &self.host, &*lookup, &[]) {
            if let Some(item) = routed.notification.items.into_iter().next() {
                self.down.insert(
                    change.monitor.clone(),
                    DownMonitor {
                        item,
                        since_ms: at_ms,
                        last: HashMap::new(),
                    },
                );
            }
        }
    }

    /// Silences in force; none when the store cannot say (better a notification too many).
    async fn silences(&self) -> Vec<crate::store::Silence> {
        match self.store.silences().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "silences cannot be read; notifying anyway");
                Vec::new()
            }
        }
    }

    fn new_row(&mut self, notifier: &str, notification: Notification, now: i64) -> OutboxRow {
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut row = OutboxRow {
            seq,
            notifier: notifier.to_string(),
            notification,
            created_ms: now,
            attempts: 0,
            next_attempt_ms: now,
            last_error: None,
            state: RowState::Pending,
        };
        if let Some(Err(why)) = self.lanes.get(notifier).map(|l| &l.sender) {
            row.state = RowState::Failing;
            row.last_error = Some(why.clone());
            row.next_attempt_ms = now + plan::BACKOFF_MAX_MS;
        } else if !self.lanes.contains_key(notifier) {
            row.state = RowState::Failing;
            row.last_error = Some(NOT_CONFIGURED.into());
            row.next_attempt_ms = now + plan::BACKOFF_MAX_MS;
        }
        row
    }

    /// Commits new rows (with the reminder times waiting in `marks`), then queues them on
    /// their lanes.
    async fn queue(&mut self, rows: Vec<OutboxRow>) {
        if rows.is_empty() && self.marks.is_empty() {
            return;
        }
        let marks = std::mem::take(&mut self.marks);
        if let Err(e) = self.store.outbox_insert(rows.clone(), marks).await {
            // Sending from memory beats not sending: the store may be failed for hours
            // (disk full) and that is when people need to hear about problems.
            tracing::error!(error = %e, rows = rows.len(),
                "notifications could not be written to the outbox; sending them from memory \
                 and writing them once the store is back (a crash before that would lose them)");
            self.unsaved.rows.extend(rows.iter().map(|r| r.seq));
            self.unsaved.schedule();
        }
        for row in rows {
            if row.state == RowState::Failing {
                self.bus.publish(EventKind::NotificationFailing {
                    notifier: row.notifier.clone(),
                    id: row.notification.id.clone(),
                    error: row.last_error.clone().unwrap_or_default(),
                });
            }
            self.lanes
                .entry(row.notifier.clone())
                .or_insert_with(Lane::orphan)
                .rows
                .push_back(row);
        }
    }

    /// Starts a send on every idle lane whose head is due.
    fn start_due_sends(&mut self) {
        let now = self.clock.now_ms();
        for (name, lane) in self.lanes.iter_mut() {
            if lane.due_ms().is_none_or(|due| due > now) {
                continue;
            }
            let Ok(sender) = lane.sender.clone() else {
                continue;
            };
            let n = plan::batch_len(&lane.rows, lane.window_ms());
            let rows: Vec<OutboxRow> = lane.rows.iter().take(n).cloned().collect();
            let Some(notification) = plan::compose(&rows) else {
                continue;
            };
            lane.busy = true;
            let seqs = rows.iter().map(|r| r.seq).collect();
            let notifier = name.clone();
            // A first attempt is on record before it starts: a receiver may take the message
            // and the daemon die before the answer, and after the restart the message must be
            // the same (same rows, same key), not regrouped with rows queued since.
            let first_attempt: Vec<RowUpdate> = rows
                .iter()
                .filter(|r| r.attempts == 0)
                .map(|r| RowUpdate {
                    attempts: 1,
                    ..plan::update_of(r)
                })
                .collect();
            let store = self.store.clone();
            self.inflight.spawn(async move {
                if !first_attempt.is_empty() {
                    if let Err(e) = store.outbox_update(first_attempt).await {
                        // Sending beats waiting for a store that may be failed for hours.
                        tracing::warn!(error = %e, "the attempt could not be recorded first");
                    }
                }
                let result =
                    match tokio::time::timeout(ATTEMPT_LIMIT, sender.deliver(notification.clone()))
                        .await
                    {
                        Ok(r) => r,
                        Err(_) => Err(SendError {
                            message: format!("no answer within {}s", ATTEMPT_LIMIT.as_secs()),
                            retryable: true,
                        }),
                    };
                Sent {
                    notifier,
                    seqs,
                    notification,
                    result,
                }
            });
        }
    }

    /// Records the outcome of a send.
    async fn finished(&mut self, sent: Sent) {
        let now = self.clock.now_ms();
        let jitter = self.jitter.hash_one((sent.seqs.first(), now)) as f64 / u64::MAX as f64;
        let Some(lane) = self.lanes.get_mut(&sent.notifier) else {
            return;
        };
        lane.busy = false;
        let n = &sent.notification;
        match sent.result {
            Ok(delivery) => {
                // A set: a storm's lane holds 100,000 rows, a send 500 of them.
                let carried: HashSet<i64> = sent.seqs.iter().copied().collect();
                let retried = lane
                    .rows
                    .iter()
                    .filter(|r| carried.contains(&r.seq))
                    .map(|r| r.attempts)
                    .max()
                    .unwrap_or(0);
                lane.rows.retain(|r| !carried.contains(&r.seq));
                lane.last_sent_ms = Some(now);
                tracing::info!(notifier = %sent.notifier, id = %n.id, kind = kind_name(n.kind),
                    items = n.items.len(), attempts = retried + 1,
                    "notification {} delivered by {}: {}", n.id, sent.notifier, delivery.response);
                let log = Delivered {
                    notifier: sent.notifier.clone(),
                    id: n.id.clone(),
                    kind: kind_name(n.kind),
                    items: n.items.len(),
                    delivered_ms: now,
                    response: delivery.response,
                };
                for seq in &sent.seqs {
                    self.unsaved.rows.remove(seq);
                    self.unsaved.updates.remove(seq);
                }
                if let Err(e) = self
                    .store
                    .outbox_delivered(sent.seqs.clone(), log.clone())
                    .await
                {
                    tracing::warn!(error = %e, id = %n.id,
                        "delivered, but the outbox could not be updated: it is once the store \
                         is back (a restart before that would send it again)");
                    self.unsaved.deliveries.push((sent.seqs, log));
                    self.unsaved.schedule();
                }
            }
            Err(error) => {
                let (updates, newly_failing) =
                    plan::after_failure(&mut lane.rows, &sent.seqs, &error, now, jitter);
                let next = updates
                    .first()
                    .map(|u| u.next_attempt_ms - now)
                    .unwrap_or(0);
                let attempts = updates.iter().map(|u| u.attempts).max().unwrap_or(0);
                if newly_failing {
                    self.bus.publish(EventKind::NotificationFailing {
                        notifier: sent.notifier.clone(),
                        id: n.id.clone(),
                        error: format!("{error} (after {attempts} attempts)"),
                    });
                } else {
                    tracing::warn!(notifier = %sent.notifier, id = %n.id, attempts,
                        "notification {} not delivered by {} (attempt {attempts}): {error}; \
                         next attempt in {:.1}s",
                        n.id, sent.notifier, next as f64 / 1000.0);
                }
                self.persist_updates(updates).await;
            }
        }
    }

    async fn persist_updates(&mut self, updates: Vec<RowUpdate>) {
        if updates.is_empty() {
            return;
        }
        let seqs: Vec<i64> = updates.iter().map(|u| u.seq).collect();
        if let Err(e) = self.store.outbox_update(updates).await {
            tracing::warn!(error = %e,
                "outbox retry times could not be written; they are once the store is back");
            self.unsaved.updates.extend(seqs);
            self.unsaved.schedule();
        }
    }

    /// Writes what the store could not take before, once it is open again: rows not yet in
    /// the outbox (as they are now), retry bookkeeping, then deliveries (deleting their rows).
    /// What fails again stays for the next try.
    async fn write_unsaved(&mut self) {
        self.unsaved.retry_at = None;
        if self.store.health().state != crate::store::StoreState::Ok {
            self.unsaved.schedule();
            return;
        }
        if self.left_rows_unread.is_some() {
            self.read_left_rows().await;
        }
        let (rows, updates, deliveries) = (
            self.unsaved.rows.len(),
            self.unsaved.updates.len(),
            self.unsaved.deliveries.len(),
        );
        let mut new_rows = Vec::new();
        let mut updated = Vec::new();
        for lane in self.lanes.values() {
            for r in &lane.rows {
                if self.unsaved.rows.contains(&r.seq) {
                    new_rows.push(r.clone());
                } else if self.unsaved.updates.contains(&r.seq) {
                    updated.push(plan::update_of(r));
                }
            }
        }
        // Rows delivered meanwhile are in no lane: nothing to insert or update for them.
        self.unsaved.rows.clear();
        self.unsaved.updates.clear();
        if !new_rows.is_empty() {
            let seqs: Vec<i64> = new_rows.iter().map(|r| r.seq).collect();
            // Their reminder times are not kept: at worst a reminder after a restart comes
            // one interval off, never a notification lost or doubled.
            if self
                .store
                .outbox_insert(new_rows, Vec::new())
                .await
                .is_err()
            {
                self.unsaved.rows.extend(seqs);
            }
        }
        if !updated.is_empty() {
            let seqs: Vec<i64> = updated.iter().map(|u| u.seq).collect();
            if self.store.outbox_update(updated).await.is_err() {
                self.unsaved.updates.extend(seqs);
            }
        }
        let mut left = Vec::new();
        for (seqs, log) in std::mem::take(&mut self.unsaved.deliveries) {
            if !left.is_empty() {
                left.push((seqs, log));
                continue;
            }
            if self
                .store
                .outbox_delivered(seqs.clone(), log.clone())
                .await
                .is_err()
            {
                left.push((seqs, log));
            }
        }
        self.unsaved.deliveries = left;
        if self.left_rows_unread.is_some() {
            self.unsaved.schedule();
        } else if rows + updates + deliveries == 0 {
            // Only the left rows were waiting.
        } else if self.unsaved.is_empty() {
            tracing::info!(
                rows,
                updates,
                deliveries,
                "history store back: notifications sent from memory while it was failed are \
                 in the outbox"
            );
        } else {
            self.unsaved.schedule();
        }
    }

    /// The rows left from before a start-up at which the store was failed, now that it is
    /// back. They queue after the rows made since: put first, they would join a message
    /// already attempted (rows with attempts lead a lane) and change its items and key. Rows
    /// of this run that were delivered meanwhile may still be in the store (their deletion is
    /// written after this): only rows older than this run's first are taken.
    async fn read_left_rows(&mut self) {
        let Some(left) = self.left_rows_unread else {
            return;
        };
        let rows = match self.store.outbox_rows().await {
            Ok(rows) => rows,
            Err(_) => return, // tried again with the next retry
        };
        self.left_rows_unread = None;
        let known: HashSet<i64> = self
            .lanes
            .values()
            .flat_map(|lane| lane.rows.iter().map(|r| r.seq))
            .collect();
        let mut added = 0usize;
        for row in rows {
            if row.seq >= left.below_seq || known.contains(&row.seq) {
                continue;
            }
            added += 1;
            self.lanes
                .entry(row.notifier.clone())
                .or_insert_with(Lane::orphan)
                .rows
                .push_back(row);
        }
        if added > 0 {
            tracing::info!(
                rows = added,
                "history store back: {added} notifications left from before the restart are \
                 queued for delivery"
            );
        }
    }

    /// The next time anything is due: a lane's send or a reminder.
    fn next_wake_ms(&self) -> Option<i64> {
        let lanes = self.lanes.values().filter_map(Lane::due_ms).min();
        let reminders = self.reminders_due().map(|(_, _, at)| at).min();
        match (lanes, reminders) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// (monitor, notifier, due) of every reminder to come.
    fn reminders_due(&self) -> impl Iterator<Item = (&str, String, i64)> + '_ {
        // Most setups remind nobody: then 100,000 down monitors cost nothing here.
        let anyone = self
            .lanes
            .values()
            .any(|l| l.config.as_ref().is_some_and(|c| c.remind_every.is_some()));
        let down = if anyone { Some(&self.down) } else { None };
        down.into_iter().flatten().flat_map(move |(monitor, d)| {
            let notifiers = (self.lookup)(monitor).map(|i| i.notify).unwrap_or_default();
            notifiers.into_iter().filter_map(move |n| {
                let every = self.lanes.get(&n)?.config.as_ref()?.remind_every?;
                let last = d.last.get(&n).copied().unwrap_or(d.since_ms);
                let every = i64::try_from(every.as_millis()).unwrap_or(i64::MAX / 2);
                Some((monitor.as_str(), n, last.saturating_add(every)))
            })
        })
    }

    /// Queues the reminders that are due.
    async fn remind(&mut self) {
        let now = self.clock.now_ms();
        let due: Vec<(String, String)> = self
            .reminders_due()
            .filter(|(_, _, at)| *at <= now)
            .map(|(m, n, _)| (m.to_string(), n))
            .collect();
        if due.is_empty() {
            return;
        }
        let silences = self.silences().await;
        let mut rows = Vec::new();
        for (monitor, notifier) in due {
            let Some(d) = self.down.get_mut(&monitor) else {
                continue;
            };
            d.last.insert(notifier.clone(), now);
            self.marks.push(ReminderMark {
                monitor: monitor.clone(),
                notifier: notifier.clone(),
                last_ms: Some(now),
            });
            if let Some(s) = silences.iter().find(|s| s.matches(&monitor)) {
                tracing::info!(monitor = %monitor, silence = s.id,
                    "reminder about {monitor} held: silenced until {}", format_ms(s.until_ms));
                continue;
            }
            let item = items::reminder(&d.item, now);
            let notification = items::single(&self.host, item, now);
            rows.push(self.new_row(&notifier, notification, now));
        }
        self.queue(rows).await;
    }
}

/// `change` as the UP event at `event`'s time of an outage that began at `since_ms`.
fn recovery(event: &Event, change: &crate::events::MonitorChange, since_ms: i64) -> Arc<Event> {
    let mut up = change.clone();
    up.down_for = u64::try_from(items::unix_ms(event.at) - since_ms)
        .ok()
        .map(Duration::from_millis);
    Arc::new(Event {
        at: event.at,
        kind: EventKind::MonitorUp(up),
    })
}

/// A row given a fresh start (its notifier was fixed or came back).
fn restart_row(r: &mut OutboxRow, now: i64) {
    // An attempted row keeps one attempt on record: its message stays frozen (the same rows
    // under the same key) until delivered, so a receiver that took it late can drop it.
    r.attempts = r.attempts.min(1);
    r.state = RowState::Pending;
    r.next_attempt_ms = now;
}

/// Marks a lane's rows failing with `why`; one report per lane.
fn mark_failing(
    lane: &mut Lane,
    why: &str,
    updates: &mut Vec<RowUpdate>,
    reports: &mut Vec<(String, String, String)>,
    name: &str,
) {
    let mut changed = 0;
    for r in lane.rows.iter_mut() {
        if r.state != RowState::Failing || r.last_error.as_deref() != Some(why) {
            r.state = RowState::Failing;
            r.last_error = Some(why.to_string());
            updates.push(plan::update_of(r));
            changed += 1;
        }
    }
    if changed > 0 {
        if let Some(head) = lane.rows.front() {
            reports.push((
                name.to_string(),
                head.notification.id.clone(),
                format!("{why} ({} notifications waiting)", lane.rows.len()),
            ));
        }
    }
}

/// Unix ms as RFC 3339 UTC, for log lines.
pub fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
