//! The healing task: subscribes to the bus (losslessly: no DOWN of a storm is missed), and for
//! each monitor that goes DOWN runs its ladder in a task of its own (one at a time per
//! monitor), under the limits of [`super::limits`].
//!
//! One attempt: decide (limits, ladder) → wait out the cooldown → for a reboot, the guard and
//! the announced, cancellable hold-off → take a global permit → run the action → verify
//! (ask the scheduler for re-checks within `grace`; fixed on the first answering check) →
//! record in the store and publish an event → on a fix, watch that it holds until the monitor
//! is back up; otherwise the next attempt. Silenced, paused, removed or recovered monitors
//! stop the loop at every turn.
//!
//! What the engine needs from the daemon ([`Monitors`]) and the actions themselves
//! ([`Runner`]) are traits, so the tests run the engine with scripted fakes under paused time.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use portwarden_act::ActionSpec;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::limits::{describe_ladder, Counters, Decision};
use super::text;
use crate::events::{ActionReport, Event, EventBus, EventKind, LosslessReceiver};
use crate::monitor::{Heal, Step};
use crate::state::Status;
use crate::store::ActionRecord;

/// How often the engine looks at a monitor's latest check while it waits.
const POLL: Duration = Duration::from_millis(20);
/// How often a pending reboot looks for the cancel file.
const CANCEL_POLL: Duration = Duration::from_millis(200);
/// How long a running action may finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// One check as the engine sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub started: SystemTime,
    pub finished: SystemTime,
    /// The service answered (ok or warning).
    pub answered: bool,
    pub reason: Option<portwarden_probe::Reason>,
    pub message: String,
}

/// A monitor as the engine sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub status: Status,
    pub status_since: SystemTime,
    pub interval: Duration,
    pub last: Option<Seen>,
}

/// What the engine needs of the daemon: the monitors (scheduler), silences and the record
/// (store).
pub trait Monitors: Send + Sync + 'static {
    /// The monitor's ladder and limits, and its target, as configured now.
    fn heal(&self, name: &str) -> Option<(Heal, String)>;
    /// Its state and latest check; `None` once it is no longer configured.
    fn observe(&self, name: &str) -> Option<Observed>;
    /// Asks for a check now.
    fn run_now(&self, name: &str);
    /// Why actions on it are held now (an active silence), if they are.
    fn held(&self, name: &str) -> impl Future<Output = Option<String>> + Send;
    /// Stores one attempt.
    fn record(&self, row: ActionRecord) -> impl Future<Output = ()> + Send;
}

/// What runs actions: the `portwarden-act` crate, or scripted fakes in tests.
pub trait Runner: Send + Sync + 'static {
    /// One bounded attempt.
    fn run(
        &self,
        spec: &ActionSpec,
        cx: &portwarden_act::Context,
    ) -> impl Future<Output = portwarden_act::Outcome> + Send;
    /// The reboot guard (uptime, reboots per day): `Err(why)` refuses the reboot.
    fn reboot_allowed(&self, spec: &ActionSpec, cx: &portwarden_act::Context)
        -> Result<(), String>;
    /// `portwarden reboot cancel` was given for the pending reboot.
    fn reboot_cancelled(&self, state_dir: &Path) -> bool;
    /// Forgets a cancel (before a new hold-off, and once it has cancelled one).
    fn clear_reboot_cancel(&self, state_dir: &Path);
    /// Says a reboot is held off (`Some`) or no longer (`None`), for `portwarden reboot cancel`.
    fn reboot_pending(&self, state_dir: &Path, pending: Option<portwarden_act::PendingReboot>);
}

/// The engine's settings (daemon-wide; per-monitor limits are in each monitor's [`Heal`]).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Actions running at once over all monitors.
    pub max_concurrent_actions: usize,
    /// The daemon's state directory (the reboot guard's counts, the cancel file).
    pub state_dir: PathBuf,
    /// The daemon's own service unit (`portwarden.service`), never restarted or stopped.
    pub own_unit: Option<String>,
}

/// A monitor's healing, as the API shows it.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Healing {
    /// The engine gave up: a person must look. Cleared when the monitor recovers, or by an
    /// acknowledgement (`POST /api/v1/monitors/{name}/acknowledge`).
    pub needs_attention: bool,
    /// Unix milliseconds of the acknowledgement of the current give-up: further DOWNs of it do
    /// not raise `needs_attention` again. Cleared when the monitor recovers or healing gives
    /// up anew.
    pub acknowledged_ms: Option<i64>,
    /// Why it gave up (kept until the counters reset after a healthy spell).
    pub gave_up: Option<String>,
    /// What it is doing now: `restart (step 1/2, attempt 1)`, `cooldown`, `reboot pending`.
    pub running: Option<String>,
    /// The ladder: `restart ×2, reboot`.
    pub ladder: String,
    /// The next try, as `step/attempt` counted from 1; `None` when the ladder is used up.
    pub next: Option<String>,
    /// Actions within the monitor's window now.
    pub actions_in_window: usize,
    /// The latest attempt.
    #[schema(value_type = Option<Object>)]
    pub last: Option<ActionReport>,
}

/// The engine's per-monitor state. Only monitors with a ladder that went DOWN have one.
#[derive(Debug, Default)]
struct MonitorState {
    counters: Counters,
    /// The ladder of the latest DOWN (for the API).
    heal: Option<Heal>,
    running: Option<String>,
    /// A DOWN that came while the ladder ran: looked at again when it ends (it may have
    /// ended because the monitor recovered just before failing anew).
    again: Option<SystemTime>,
    needs_attention: bool,
    /// See [`Healing::acknowledged_ms`].
    acknowledged_ms: Option<i64>,
    last: Option<ActionReport>,
}

/// Read access for the API; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct HealHandle {
    states: Arc<Mutex<HashMap<String, MonitorState>>>,
}

impl HealHandle {
    /// One monitor's healing; `None` if the engine never acted on it.
    pub fn healing(&self, name: &str) -> Option<Healing> {
        let states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        states.get(name).map(view)
    }

    /// Every monitor the engine has state for, by name.
    pub fn all(&self) -> BTreeMap<String, Healing> {
        let states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        states.iter().map(|(k, s)| (k.clone(), view(s))).collect()
    }

    /// An operator saw the give-up: clears `needs_attention` and keeps it off for the rest of
    /// this incident. `None` if the engine has no state for the monitor.
    pub fn acknowledge(&self, name: &str, now_ms: i64) -> Option<Healing> {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        let s = states.get_mut(name)?;
        s.needs_attention = false;
        s.acknowledged_ms = Some(now_ms);
        Some(view(s))
    }

    fn with<T>(&self, name: &str, f: impl FnOnce(&mut MonitorState) -> T) -> T {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        f(states.entry(name.to_string()).or_default())
    }
}

fn view(s: &MonitorState) -> Healing {
    let now = Instant::now();
    let (ladder, next, in_window) = match &s.heal {
        Some(h) => (
            describe_ladder(h),
            s.counters
                .next(h)
                .map(|(step, attempt)| format!("{}/{attempt}", step + 1)),
            s.counters.in_window(h, now),
        ),
        None => (String::new(), None, 0),
    };
    Healing {
        needs_attention: s.needs_attention,
        acknowledged_ms: s.acknowledged_ms,
        gave_up: s.counters.gave_up().map(str::to_string),
        running: s.running.clone(),
        ladder,
        next,
        actions_in_window: in_window,
        last: s.last.clone(),
    }
}

/// The healing engine; run it with [`Engine::run`].
pub struct Engine<M, R> {
    inner: Arc<Inner<M, R>>,
    /// Lossless: no DOWN of a storm escapes the engine.
    events: LosslessReceiver,
}

impl<M, R> std::fmt::Debug for Engine<M, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

struct Inner<M, R> {
    monitors: M,
    runner: R,
    bus: EventBus,
    permits: Semaphore,
    settings: Settings,
    handle: HealHandle,
}

impl<M: Monitors, R: Runner> Engine<M, R> {
    /// Subscribes to the bus now (so no DOWN published after this escapes the engine).
    pub fn new(monitors: M, runner: R, bus: &EventBus, settings: Settings) -> (Self, HealHandle) {
        let handle = HealHandle::default();
        let inner = Arc::new(Inner {
            monitors,
            runner,
            bus: bus.clone(),
            permits: Semaphore::new(settings.max_concurrent_actions.max(1)),
            settings,
            handle: handle.clone(),
        });
        let events = bus.subscribe_lossless();
        (Self { inner, events }, handle)
    }

    /// Runs until `shutdown`; then lets a running action finish (at most
    /// [`SHUTDOWN_GRACE`]), while waits (cooldowns, grace, hold-offs) end at once.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let tasks = TaskTracker::new();
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => break,
                e = self.events.recv() => e,
            };
            match event {
                Some(e) => self.inner.on_event(&e, &tasks, &shutdown),
                None => break, // the bus is gone
            }
        }
        tasks.close();
        if !tasks.is_empty() {
            tracing::info!(
                "waiting for {} healing task(s) to finish their action",
                tasks.len()
            );
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("a healing action still running at shutdown was abandoned");
        }
    }
}

/// How a wait ended.
#[derive(Debug, PartialEq, Eq)]
enum Wake {
    Elapsed,
    /// The monitor answers again (or left: removed, paused).
    Recovered,
    Stopped,
}

/// Which event an attempt makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publish {
    Taken,
    Failed,
    GaveUp,
    LogOnly,
}

/// What the verification found.
#[derive(Debug)]
enum Verdict {
    Fixed {
        after: Duration,
        check: SystemTime,
    },
    NotFixed {
        last: Option<Seen>,
    },
    Failed,
    /// The daemon is stopping: the action ran, nobody looked.
    Unverified,
}

impl Verdict {
    fn name(&self) -> &'static str {
        match self {
            Verdict::Fixed { .. } => "fixed",
            Verdict::NotFixed { .. } => "not_fixed",
            Verdict::Failed => "failed",
            Verdict::Unverified => "unverified",
        }
    }
}

/// From `issued` (monotonic) to `then` (a wall-clock time just past): the monotonic time
/// elapsed, less how long ago `then` was. Durations stay monotonic (and follow tokio's clock
/// in tests); only the short correction is wall-clock.
fn since(issued: Instant, then: SystemTime) -> Duration {
    let ago = SystemTime::now().duration_since(then).unwrap_or_default();
    issued.elapsed().saturating_sub(ago)
}

fn healthy(status: Status) -> bool {
    matches!(status, Status::Ok | Status::Warning)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn unix_ms(t: SystemTime) -> i64 {
    crate::notify::items::unix_ms(t)
}

impl<M: Monitors, R: Runner> Inner<M, R> {
    fn on_event(
        self: &Arc<Self>,
        event: &Event,
        tasks: &TaskTracker,
        shutdown: &CancellationToken,
    ) {
        let now = Instant::now();
        match &event.kind {
            // Flapping counts as failing: a restart storm (up after each restart, down again
            // at once) turns into flapping, which hides the DOWNs that would come next.
            EventKind::MonitorDown(c) | EventKind::MonitorFlapping(c) => {
                self.on_down(&c.monitor, event.at, tasks, shutdown)
            }
            EventKind::MonitorUp(c)
            | EventKind::MonitorChanged(c)
            | EventKind::MonitorWarning(c) => {
                let mut states = self
                    .handle
                    .states
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                // Only monitors the engine acted on have counters to keep.
                let Some(s) = states.get_mut(&c.monitor) else {
                    return;
                };
                if healthy(c.to) {
                    s.counters.healthy(now);
                    s.needs_attention = false;
                    s.acknowledged_ms = None;
                } else if let Some(h) = &s.heal {
                    s.counters.unhealthy(h, now);
                }
            }
            _ => {}
        }
    }

    fn on_down(
        self: &Arc<Self>,
        name: &str,
        down_at: SystemTime,
        tasks: &TaskTracker,
        shutdown: &CancellationToken,
    ) {
        let Some((heal, _)) = self.monitors.heal(name) else {
            return;
        };
        if heal.steps.is_empty() {
            return;
        }
        let now = Instant::now();
        let start = self.handle.with(name, |s| {
            if s.counters.unhealthy(&heal, now) {
                tracing::info!(monitor = %name,
                    "{name} was healthy for {} or longer: its healing counters start afresh",
                    humantime::format_duration(heal.reset_after));
            }
            s.heal = Some(heal.clone());
            if s.running.is_some() {
                s.again = Some(down_at);
                return false;
            }
            if let Some(why) = s.counters.gave_up() {
                s.needs_attention = s.acknowledged_ms.is_none();
                tracing::warn!(monitor = %name,
                    "{name} is DOWN again; not acting, healing gave up earlier ({why}); \
                     it starts afresh after {} of health",
                    humantime::format_duration(heal.reset_after));
                return false;
            }
            s.running = Some("starting".into());
            true
        });
        if start {
            let inner = self.clone();
            let name = name.to_string();
            let stop = shutdown.child_token();
            tasks.spawn(async move {
                let (mut heal, mut down_at) = (heal, down_at);
                loop {
                    inner.heal(&name, heal, down_at, &stop).await;
                    // A DOWN during the ladder: once more, with the ladder configured now
                    // (unless it gave up: then it waits for a healthy spell).
                    let again = inner.handle.with(&name, |s| {
                        let again = s
                            .again
                            .take()
                            .filter(|_| s.counters.gave_up().is_none() && !stop.is_cancelled());
                        if again.is_none() {
                            s.running = None;
                        }
                        again
                    });
                    match (again, inner.monitors.heal(&name)) {
                        (Some(at), Some((h, _))) if !h.steps.is_empty() => {
                            (heal, down_at) = (h, at);
                        }
                        (Some(_), _) => {
                            inner.handle.with(&name, |s| s.running = None);
                            break;
                        }
                        (None, _) => break,
                    }
                }
            });
        }
    }

    /// The ladder for one DOWN, until the monitor answers again, the engine gives up, or
    /// something holds it (silence, pause, removal, shutdown). `heal` is the ladder as
    /// configured at the DOWN: a reload meanwhile applies to the next one.
    async fn heal(&self, name: &str, heal: Heal, down_at: SystemTime, stop: &CancellationToken) {
        let target = self.monitors.heal(name).map(|(_, t)| t).unwrap_or_default();
        // `issued_ms` of the first action counts from the DOWN event; of later ones, from the
        // moment the action became due (end of cooldown, verification, hold-off).
        let mut due = down_at;
        loop {
            if stop.is_cancelled() {
                return;
            }
            let Some(seen) = self.monitors.observe(name) else {
                return;
            };
            if healthy(seen.status) {
                return;
            }
            if seen.status == Status::Paused {
                tracing::info!(monitor = %name, "{name} is paused: no healing action");
                return;
            }
            if let Some(why) = self.monitors.held(name).await {
                tracing::info!(monitor = %name, "healing of {name} held: {why}");
                let report = ActionReport {
                    outcome: "skipped".into(),
                    message: format!("no action: {why}"),
                    ..self.report(name, &target, None, 0)
                };
                self.finish(report, unix_ms(SystemTime::now()), Publish::LogOnly)
                    .await;
                return;
            }
            let decision = self
                .handle
                .with(name, |s| s.counters.decide(&heal, Instant::now()));
            let (index, attempt) = match decision {
                Decision::GiveUp(why) => {
                    self.give_up(name, &target, why).await;
                    return;
                }
                Decision::Act { wait, .. } if !wait.is_zero() => {
                    self.handle.with(name, |s| {
                        s.running = Some(format!("cooldown ({} left)", text::secs(wait)));
                    });
                    if self.wait(name, wait, stop).await != Wake::Elapsed {
                        return;
                    }
                    due = SystemTime::now();
                    // Silence, pause and limits again: time has passed.
                    continue;
                }
                Decision::Act { step, attempt, .. } => (step, attempt),
            };
            let step = &heal.steps[index];
            let base = self.report(name, &target, Some((index, step)), attempt);
            let cx = portwarden_act::Context {
                monitor: name.to_string(),
                target: target.clone(),
                reason: seen
                    .last
                    .as_ref()
                    .and_then(|c| c.reason)
                    .map(|r| r.as_str().to_string())
                    .unwrap_or_default(),
                message: seen
                    .last
                    .as_ref()
                    .map(|c| c.message.clone())
                    .unwrap_or_default(),
                dry_run: false,
                state_dir: self.settings.state_dir.clone(),
            };
            if let Some(unit) = self.own_unit(&step.action) {
                // A restart of our own unit would kill this very task mid-action.
                self.handle.with(name, |s| s.counters.skipped(index));
                let report = ActionReport {
                    outcome: "skipped".into(),
                    message: format!(
                        "not running {} {unit}: it is portwarden's own unit",
                        step.action.kind()
                    ),
                    ..base
                };
                self.finish(report, unix_ms(SystemTime::now()), Publish::Failed)
                    .await;
                continue;
            }
            if let ActionSpec::Reboot(r) = &step.action {
                if !self.reboot_hold_off(name, r, &cx, &base, stop).await {
                    return;
                }
                due = SystemTime::now();
            }
            // The global cap on actions at once; a monitor that recovers meanwhile needs none.
            self.handle.with(name, |s| {
                s.running = Some(format!("waiting for a slot ({})", text::position(&base)))
            });
            let permit = tokio::select! {
                p = self.permits.acquire() => p,
                () = stop.cancelled() => return,
            };
            let Ok(permit) = permit else { return };
            self.handle.with(name, |s| {
                s.counters.acted(index, Instant::now());
                s.running = Some(text::position(&base));
            });
            let issued = SystemTime::now();
            let issued_at = Instant::now();
            let issued_ms = issued.duration_since(due).unwrap_or_default();
            tracing::debug!(monitor = %name, action = step.action.kind(),
                issued_us = u64::try_from(issued_ms.as_micros()).unwrap_or(u64::MAX),
                "{name}: {} issued", step.action.kind());
            // Not cancelled by shutdown: the action is bounded by its own timeout, and the
            // daemon waits briefly for it.
            let outcome = self.runner.run(&step.action, &cx).await;
            drop(permit);
            let done = SystemTime::now();
            let verdict = if !outcome.ok {
                Verdict::Failed
            } else if stop.is_cancelled() {
                Verdict::Unverified
            } else {
                self.verify(name, step.grace, issued_at, done, stop).await
            };
            let report = ActionReport {
                summary: outcome.summary.clone(),
                output: outcome.output.clone(),
                outcome: verdict.name().into(),
                message: text::attempt(&outcome, &target, &verdict_text(&verdict), step.grace),
                issued_ms: Some(ms(issued_ms)),
                took_ms: Some(ms(outcome.took)),
                fixed_after_ms: match &verdict {
                    Verdict::Fixed { after, .. } => Some(ms(*after)),
                    _ => None,
                },
                ..base
            };
            let publish = match verdict {
                Verdict::Failed => Publish::Failed,
                _ => Publish::Taken,
            };
            self.finish(report, unix_ms(issued), publish).await;
            if let Verdict::Fixed { check, .. } = verdict {
                match self.holds(name, check, stop).await {
                    Wake::Elapsed => {
                        tracing::warn!(monitor = %name,
                            "{name} failed again right after the fix: next healing attempt");
                    }
                    Wake::Recovered | Wake::Stopped => return,
                }
            }
            due = SystemTime::now();
        }
    }

    /// The report of an attempt, before it has an outcome.
    fn report(
        &self,
        name: &str,
        target: &str,
        step: Option<(usize, &Step)>,
        attempt: u32,
    ) -> ActionReport {
        ActionReport {
            monitor: name.to_string(),
            target: target.to_string(),
            step: step.map_or(0, |(i, _)| i + 1),
            attempt,
            action: step
                .map(|(_, s)| s.action.kind().to_string())
                .unwrap_or_default(),
            dry_run: matches!(step, Some((_, s)) if matches!(&s.action, ActionSpec::Reboot(r) if r.dry_run)),
            ..Default::default()
        }
    }

    /// Records an attempt, publishes its event (`publish`) and keeps it for the API.
    async fn finish(&self, report: ActionReport, started_ms: i64, publish: Publish) {
        let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let row = ActionRecord {
            id: 0,
            monitor: report.monitor.clone(),
            step: u32::try_from(report.step).unwrap_or(u32::MAX),
            attempt: report.attempt,
            kind: report.action.clone(),
            summary: report.summary.clone(),
            message: report.message.clone(),
            output: report.output.clone(),
            outcome: report.outcome.clone(),
            started_ms,
            took_ms: report.took_ms.map_or(0, to_i64),
            issued_ms: report.issued_ms.map(to_i64),
            fixed_after_ms: report.fixed_after_ms.map(to_i64),
            dry_run: report.dry_run,
        };
        self.monitors.record(row).await;
        self.handle
            .with(&report.monitor, |s| s.last = Some(report.clone()));
        let kind = match publish {
            Publish::Taken => EventKind::ActionTaken(report),
            Publish::Failed => EventKind::ActionFailed(report),
            Publish::GaveUp => EventKind::GaveUp(report),
            // In the store and the log, not a notification.
            Publish::LogOnly => {
                tracing::info!(monitor = %report.monitor, outcome = %report.outcome,
                    "{}: {}", report.monitor, report.message);
                return;
            }
        };
        self.bus.publish(kind);
    }

    async fn give_up(&self, name: &str, target: &str, why: String) {
        self.handle.with(name, |s| {
            s.counters.give_up(why.clone());
            s.needs_attention = true;
            s.acknowledged_ms = None;
        });
        let report = ActionReport {
            outcome: "gave_up".into(),
            message: format!("gave up healing {name}: {why}; a person must look"),
            ..self.report(name, target, None, 0)
        };
        self.finish(report, unix_ms(SystemTime::now()), Publish::GaveUp)
            .await;
    }

    /// Waits `d`, ending early when the monitor answers again or leaves.
    async fn wait(&self, name: &str, d: Duration, stop: &CancellationToken) -> Wake {
        let deadline = Instant::now() + d;
        loop {
            match self.monitors.observe(name) {
                Some(o) if !healthy(o.status) && o.status != Status::Paused => {}
                _ => return Wake::Recovered,
            }
            let now = Instant::now();
            if now >= deadline {
                return Wake::Elapsed;
            }
            tokio::select! {
                () = stop.cancelled() => return Wake::Stopped,
                () = tokio::time::sleep(POLL.min(deadline - now)) => {}
            }
        }
    }

    /// After an action issued at `issued` and done at `done`: up to `grace` for an answering
    /// check that started after it, asking the scheduler for one at once and then every
    /// interval (at most every second).
    async fn verify(
        &self,
        name: &str,
        grace: Duration,
        issued: Instant,
        done: SystemTime,
        stop: &CancellationToken,
    ) -> Verdict {
        let start = Instant::now();
        let deadline = start + grace;
        let mut last = None;
        let Some(first) = self.monitors.observe(name) else {
            return Verdict::NotFixed { last };
        };
        let every = first
            .interval
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        self.monitors.run_now(name);
        let mut next_ask = start + every;
        loop {
            let Some(o) = self.monitors.observe(name) else {
                return Verdict::NotFixed { last };
            };
            if let Some(c) = o.last.filter(|c| c.started >= done) {
                if c.answered {
                    return Verdict::Fixed {
                        after: since(issued, c.finished),
                        check: c.started,
                    };
                }
                last = Some(c);
            }
            if healthy(o.status) && o.status_since >= done {
                return Verdict::Fixed {
                    after: since(issued, o.status_since),
                    check: o.status_since,
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Verdict::NotFixed { last };
            }
            if now >= next_ask {
                self.monitors.run_now(name);
                next_ask += every;
            }
            tokio::select! {
                () = stop.cancelled() => return Verdict::Unverified,
                () = tokio::time::sleep(POLL.min(deadline - now)) => {}
            }
        }
    }

    /// After a fix: `Recovered` once the monitor is back up (ok or warning), `Elapsed` when a
    /// check after the fixing one fails again (the fix did not hold), `Stopped` on shutdown,
    /// removal or pause.
    async fn holds(&self, name: &str, fixed_by: SystemTime, stop: &CancellationToken) -> Wake {
        loop {
            match self.monitors.observe(name) {
                None => return Wake::Stopped,
                Some(o) if healthy(o.status) => return Wake::Recovered,
                Some(o) if o.status == Status::Paused => return Wake::Stopped,
                Some(o) => {
                    if o.last.is_some_and(|c| c.started > fixed_by && !c.answered) {
                        return Wake::Elapsed;
                    }
                }
            }
            tokio::select! {
                () = stop.cancelled() => return Wake::Stopped,
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// A reboot step: its guard, then the announced hold-off. `true`: go ahead.
    async fn reboot_hold_off(
        &self,
        name: &str,
        r: &portwarden_act::spec::RebootAction,
        cx: &portwarden_act::Context,
        base: &ActionReport,
        stop: &CancellationToken,
    ) -> bool {
        let spec = ActionSpec::Reboot(r.clone());
        if let Err(why) = self.runner.reboot_allowed(&spec, cx) {
            self.give_up(name, &base.target, format!("the reboot is refused: {why}"))
                .await;
            return false;
        }
        let hold_off = r
            .hold_off
            .as_deref()
            .and_then(|t| portwarden_act::spec::parse_duration(t).ok())
            .unwrap_or_default();
        // A cancel left from an earlier reboot must not cancel this one.
        self.runner.clear_reboot_cancel(&self.settings.state_dir);
        self.handle.with(name, |s| {
            s.running = Some(format!("reboot pending ({})", text::secs(hold_off)));
        });
        self.bus.publish(EventKind::RebootPending(ActionReport {
            outcome: "pending".into(),
            message: format!(
                "{}rebooting in {} unless `portwarden reboot cancel`",
                if base.dry_run { "dry run: " } else { "" },
                text::secs(hold_off)
            ),
            hold_off_secs: Some(hold_off.as_secs()),
            ..base.clone()
        }));
        let until = SystemTime::now() + hold_off;
        self.runner.reboot_pending(
            &self.settings.state_dir,
            Some(portwarden_act::PendingReboot {
                monitor: name.to_string(),
                until: until
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            }),
        );
        let go = self.hold_off_until(name, base, stop, hold_off).await;
        self.runner.reboot_pending(&self.settings.state_dir, None);
        go
    }

    /// The hold-off of [`Self::reboot_hold_off`]: `true` when it ran out, `false` when the
    /// reboot was cancelled, called off or the daemon stops.
    async fn hold_off_until(
        &self,
        name: &str,
        base: &ActionReport,
        stop: &CancellationToken,
        hold_off: Duration,
    ) -> bool {
        let deadline = Instant::now() + hold_off;
        loop {
            if self.runner.reboot_cancelled(&self.settings.state_dir) {
                self.runner.clear_reboot_cancel(&self.settings.state_dir);
                let report = ActionReport {
                    outcome: "skipped".into(),
                    message: "reboot cancelled by `portwarden reboot cancel`".into(),
                    ..base.clone()
                };
                self.finish(report, unix_ms(SystemTime::now()), Publish::LogOnly)
                    .await;
                self.give_up(name, &base.target, "the reboot was cancelled".into())
                    .await;
                return false;
            }
            match self.monitors.observe(name) {
                Some(o) if healthy(o.status) => {
                    tracing::info!(monitor = %name,
                        "reboot called off: {name} answers again");
                    let report = ActionReport {
                        outcome: "skipped".into(),
                        message: "reboot called off: the service answers again".into(),
                        ..base.clone()
                    };
                    self.finish(report, unix_ms(SystemTime::now()), Publish::LogOnly)
                        .await;
                    return false;
                }
                None => return false,
                Some(_) => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            tokio::select! {
                () = stop.cancelled() => return false,
                () = tokio::time::sleep(CANCEL_POLL.min(deadline - now)) => {}
            }
        }
    }

    /// The unit of a restart / stop step when it is the daemon's own.
    fn own_unit<'a>(&self, spec: &'a ActionSpec) -> Option<&'a str> {
        let own = self.settings.own_unit.as_deref()?;
        match spec {
            ActionSpec::Restart(u) | ActionSpec::Stop(u) if same_unit(&u.unit, own) => {
                Some(&u.unit)
            }
            _ => None,
        }
    }
}

/// `portwarden` and `portwarden.service` are the same unit.
fn same_unit(a: &str, b: &str) -> bool {
    let norm = |u: &str| {
        if u.contains('.') {
            u.to_string()
        } else {
            format!("{u}.service")
        }
    };
    norm(a) == norm(b)
}

/// The verdict's part of the sentence.
fn verdict_text(v: &Verdict) -> text::Effect {
    match v {
        Verdict::Fixed { after, .. } => text::Effect::Fixed(*after),
        Verdict::NotFixed { last } => text::Effect::NotFixed(last.as_ref().and_then(|c| c.reason)),
        Verdict::Failed => text::Effect::Failed,
        Verdict::Unverified => text::Effect::Unverified,
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn the_own_unit_matches_with_or_without_suffix() {
        assert!(same_unit("portwarden", "portwarden.service"));
        assert!(same_unit("portwarden.service", "portwarden.service"));
        assert!(!same_unit("nginx", "portwarden.service"));
    }
}
