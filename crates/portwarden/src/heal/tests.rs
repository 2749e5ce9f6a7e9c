//! The engine against a scripted world under paused time: a fake scheduler (one check per
//! second per monitor, and on request; fail_after = recover_after = 1) and fake actions whose
//! effect on the service is scripted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use portwarden_act::spec::{ExecAction, RebootAction, UnitAction};
use portwarden_act::ActionSpec;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::engine::{Engine, HealHandle, Monitors, Observed, Runner, Seen, Settings};
use crate::events::{EventBus, EventKind, MonitorChange};
use crate::monitor::{Heal, Step};
use crate::state::Status;
use crate::store::ActionRecord;

const INTERVAL: Duration = Duration::from_secs(1);

/// What an action does to its monitor's service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Up, and stays up.
    Fixes,
    /// The action succeeds; the service stays down.
    Nothing,
    /// The action itself fails.
    Fails,
    /// Up for exactly one check, then down again (a restart storm).
    Relapses,
}

#[derive(Debug)]
struct Mon {
    heal: Heal,
    status: Status,
    since: SystemTime,
    last: Option<Seen>,
    up: bool,
    /// Answers this many more checks, then goes down (Relapses).
    up_for: Option<u32>,
    silenced: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    mons: HashMap<String, Mon>,
    /// Effect per action program (`command[0]`, or the kind).
    effects: HashMap<String, Effect>,
    records: Vec<ActionRecord>,
    /// (monitor, program, when)
    runs: Vec<(String, String, Instant)>,
    running: usize,
    max_running: usize,
    cancelled: bool,
    /// What the engine says is pending (the pending-reboot file of the real world).
    pending: Option<portwarden_act::PendingReboot>,
    reboot_refused: Option<String>,
}

#[derive(Debug, Clone)]
struct World {
    state: Arc<Mutex<State>>,
    bus: EventBus,
}

impl World {
    fn new(bus: &EventBus) -> Self {
        Self {
            state: Arc::default(),
            bus: bus.clone(),
        }
    }

    fn add(&self, name: &str, heal: Heal) {
        self.state.lock().unwrap().mons.insert(
            name.into(),
            Mon {
                heal,
                status: Status::Ok,
                since: SystemTime::now(),
                last: None,
                up: true,
                up_for: None,
                silenced: None,
            },
        );
        // The fake scheduler: one check per interval.
        let w = self.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(INTERVAL).await;
                w.check(&name);
            }
        });
    }

    fn effect(&self, program: &str, e: Effect) {
        self.state.lock().unwrap().effects.insert(program.into(), e);
    }

    /// The service dies (the next check fails and the monitor goes DOWN).
    fn kill(&self, name: &str) {
        let mut s = self.state.lock().unwrap();
        let m = s.mons.get_mut(name).unwrap();
        m.up = false;
        m.up_for = None;
    }

    fn revive(&self, name: &str) {
        self.state.lock().unwrap().mons.get_mut(name).unwrap().up = true;
    }

    fn check(&self, name: &str) {
        let now = SystemTime::now();
        let change = {
            let mut s = self.state.lock().unwrap();
            let Some(m) = s.mons.get_mut(name) else {
                return;
            };
            if m.status == Status::Paused {
                return;
            }
            // Flapping stays flapping here (the real state machine needs its window to pass).
            let flapping = m.status == Status::Flapping;
            let answered = m.up;
            if answered {
                if let Some(n) = &mut m.up_for {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        m.up = false;
                        m.up_for = None;
                    }
                }
            }
            m.last = Some(Seen {
                started: now,
                finished: now,
                answered,
                reason: (!answered).then_some(portwarden_probe::Reason::Refused),
                message: if answered { "ok" } else { "connection refused" }.into(),
            });
            let to = if answered { Status::Ok } else { Status::Down };
            (m.status != to && !flapping).then(|| {
                let from = std::mem::replace(&mut m.status, to);
                m.since = now;
                MonitorChange {
                    monitor: name.into(),
                    from,
                    to,
                    reason: None,
                    message: String::new(),
                    down_for: None,
                }
            })
        };
        if let Some(c) = change {
            self.bus.publish(c.into_event());
        }
    }

    fn records(&self) -> Vec<ActionRecord> {
        self.state.lock().unwrap().records.clone()
    }

    fn outcomes(&self, name: &str) -> Vec<String> {
        self.records()
            .iter()
            .filter(|r| r.monitor == name)
            .map(|r| format!("{}:{}", r.kind, r.outcome))
            .collect()
    }

    fn runs(&self, name: &str) -> Vec<(String, Instant)> {
        let s = self.state.lock().unwrap();
        s.runs
            .iter()
            .filter(|(m, _, _)| m == name)
            .map(|(_, p, t)| (p.clone(), *t))
            .collect()
    }
}

impl Monitors for World {
    fn heal(&self, name: &str) -> Option<(Heal, String)> {
        let s = self.state.lock().unwrap();
        s.mons
            .get(name)
            .map(|m| (m.heal.clone(), "127.0.0.1:80".to_string()))
    }

    fn observe(&self, name: &str) -> Option<Observed> {
        let s = self.state.lock().unwrap();
        s.mons.get(name).map(|m| Observed {
            status: m.status,
            status_since: m.since,
            interval: INTERVAL,
            last: m.last.clone(),
        })
    }

    fn run_now(&self, name: &str) {
        let w = self.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            // A check takes a moment.
            tokio::time::sleep(Duration::from_millis(5)).await;
            w.check(&name);
        });
    }

    async fn held(&self, name: &str) -> Option<String> {
        let s = self.state.lock().unwrap();
        s.mons.get(name).and_then(|m| m.silenced.clone())
    }

    async fn record(&self, row: ActionRecord) {
        self.state.lock().unwrap().records.push(row);
    }
}

fn program(spec: &ActionSpec) -> String {
    match spec {
        ActionSpec::Exec(e) => e.command[0].clone(),
        other => other.kind().to_string(),
    }
}

impl Runner for World {
    async fn run(
        &self,
        spec: &ActionSpec,
        cx: &portwarden_act::Context,
    ) -> portwarden_act::Outcome {
        let p = program(spec);
        let effect = {
            let mut s = self.state.lock().unwrap();
            s.running += 1;
            s.max_running = s.max_running.max(s.running);
            s.runs.push((cx.monitor.clone(), p.clone(), Instant::now()));
            s.effects.get(&p).copied().unwrap_or(Effect::Nothing)
        };
        // Actions take a while: a restart, a script.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut s = self.state.lock().unwrap();
        s.running -= 1;
        let m = s.mons.get_mut(&cx.monitor).unwrap();
        match effect {
            Effect::Fixes => m.up = true,
            Effect::Relapses => {
                m.up = true;
                m.up_for = Some(1);
            }
            Effect::Nothing | Effect::Fails => {}
        }
        portwarden_act::Outcome {
            ok: effect != Effect::Fails,
            summary: format!("ran {p}"),
            output: String::new(),
            took: Duration::from_millis(300),
        }
    }

    fn reboot_allowed(&self, _: &ActionSpec, _: &portwarden_act::Context) -> Result<(), String> {
        match &self.state.lock().unwrap().reboot_refused {
            Some(why) => Err(why.clone()),
            None => Ok(()),
        }
    }

    fn reboot_cancelled(&self, _: &Path) -> bool {
        self.state.lock().unwrap().cancelled
    }

    fn clear_reboot_cancel(&self, _: &Path) {
        self.state.lock().unwrap().cancelled = false;
    }

    fn reboot_pending(&self, _: &Path, pending: Option<portwarden_act::PendingReboot>) {
        self.state.lock().unwrap().pending = pending;
    }
}

fn exec(program: &str, attempts: u32) -> Step {
    Step {
        action: ActionSpec::Exec(ExecAction {
            command: vec![program.into()],
            ..Default::default()
        }),
        attempts,
        grace: Duration::from_secs(3),
    }
}

fn heal(steps: Vec<Step>) -> Heal {
    Heal {
        steps,
        max_actions: 3,
        window: Duration::from_secs(600),
        cooldown: Duration::from_secs(30),
        reset_after: Duration::from_secs(600),
    }
}

struct Harness {
    world: World,
    bus: EventBus,
    handle: HealHandle,
    events: Arc<Mutex<Vec<String>>>,
    stop: CancellationToken,
    engine: tokio::task::JoinHandle<()>,
}

fn start(max_concurrent_actions: usize, own_unit: Option<&str>) -> Harness {
    let bus = EventBus::new();
    let world = World::new(&bus);
    let (engine, handle) = Engine::new(
        world.clone(),
        world.clone(),
        &bus,
        Settings {
            max_concurrent_actions,
            state_dir: PathBuf::from("/nonexistent"),
            own_unit: own_unit.map(str::to_string),
        },
    );
    let stop = CancellationToken::new();
    let engine = tokio::spawn(engine.run(stop.clone()));
    // Every healing event, as `kind:monitor:message`.
    let events = Arc::new(Mutex::new(Vec::new()));
    let mut rx = bus.subscribe();
    let sink = events.clone();
    tokio::spawn(async move {
        while let Ok(e) = rx.recv().await {
            let line = match &e.kind {
                EventKind::ActionTaken(a) => format!("taken:{}:{}", a.monitor, a.message),
                EventKind::ActionFailed(a) => format!("failed:{}:{}", a.monitor, a.message),
                EventKind::GaveUp(a) => format!("gave_up:{}:{}", a.monitor, a.message),
                EventKind::RebootPending(a) => format!("pending:{}:{}", a.monitor, a.message),
                _ => continue,
            };
            sink.lock().unwrap().push(line);
        }
    });
    Harness {
        world,
        bus,
        handle,
        events,
        stop,
        engine,
    }
}

fn change(name: &str, to: Status) -> MonitorChange {
    MonitorChange {
        monitor: name.into(),
        from: Status::Ok,
        to,
        reason: None,
        message: String::new(),
        down_for: None,
    }
}

impl Harness {
    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
}

async fn settle(secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

#[tokio::test(start_paused = true)]
async fn a_fix_that_works_is_one_action_verified_at_once() {
    let h = start(4, None);
    h.world.add("web", heal(vec![exec("fix", 1)]));
    h.world.effect("fix", Effect::Fixes);
    settle(2).await;
    h.world.kill("web");
    settle(20).await;
    assert_eq!(h.world.outcomes("web"), ["exec:fixed"]);
    let r = &h.world.records()[0];
    // Issued as soon as the DOWN was seen (time is paused: no scheduling delay at all).
    assert_eq!(r.issued_ms, Some(0));
    // The action took 300 ms, the re-check asked for at once took 5 ms more.
    let after = r.fixed_after_ms.unwrap();
    assert!((300..400).contains(&after), "{after}");
    assert_eq!(
        h.events(),
        ["taken:web:ran fix; 127.0.0.1:80 answering again after 0.3 s"]
    );
    let healing = h.handle.healing("web").unwrap();
    assert!(!healing.needs_attention);
    assert_eq!(healing.running, None);
    h.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn the_ladder_runs_in_order_with_attempts_and_cooldown_then_gives_up() {
    let h = start(4, None);
    let mut hl = heal(vec![exec("a", 2), exec("b", 1)]);
    hl.max_actions = 10;
    h.world.add("web", hl);
    settle(2).await;
    h.world.kill("web");
    settle(300).await;
    assert_eq!(
        h.world.outcomes("web"),
        [
            "exec:not_fixed",
            "exec:not_fixed",
            "exec:not_fixed",
            ":gave_up"
        ]
    );
    let runs = h.world.runs("web");
    assert_eq!(
        runs.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["a", "a", "b"]
    );
    for pair in runs.windows(2) {
        let gap = pair[1].1 - pair[0].1;
        // 30 s of cooldown from one action to the next, not more than a poll later.
        assert!(
            gap >= Duration::from_secs(30) && gap < Duration::from_millis(30_100),
            "{gap:?}"
        );
    }
    let events = h.events();
    assert_eq!(
        events[0],
        "taken:web:ran a but 127.0.0.1:80 still refuses after 3 s"
    );
    assert_eq!(
        events.last().unwrap(),
        "gave_up:web:gave up healing web: every step was tried (exec ×2, exec); a person must look"
    );
    let healing = h.handle.healing("web").unwrap();
    assert!(healing.needs_attention);
    assert_eq!(healing.next, None);
    // Recovery clears the flag (a person fixed it).
    h.world.revive("web");
    settle(2).await;
    assert!(!h.handle.healing("web").unwrap().needs_attention);
    h.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_restart_storm_ends_after_exactly_max_actions_and_stays_given_up() {
    let h = start(4, None);
    h.world.add("web", heal(vec![exec("restart", 10)]));
    h.world.effect("restart", Effect::Relapses);
    settle(2).await;
    h.world.kill("web");
    settle(600).await;
    let outcomes = h.world.outcomes("web");
    assert_eq!(
        outcomes.iter().filter(|o| o.starts_with("exec:")).count(),
        3
    );
    assert_eq!(outcomes.last().unwrap(), ":gave_up");
    assert!(h
        .events()
        .last()
        .unwrap()
        .contains("3 actions within 10m did not fix it for good"));
    // Up for a minute, down again: still given up, no action, no second "gave up".
    h.world.revive("web");
    settle(60).await;
    h.world.kill("web");
    settle(120).await;
    assert_eq!(h.world.runs("web").len(), 3);
    assert_eq!(
        h.events()
            .iter()
            .filter(|e| e.starts_with("gave_up"))
            .count(),
        1
    );
    assert!(h.handle.healing("web").unwrap().needs_attention);
    // Healthy for reset_after: the counters start afresh and it acts again.
    h.world.revive("web");
    settle(660).await;
    h.world.effect("restart", Effect::Fixes);
    h.world.kill("web");
    settle(30).await;
    assert_eq!(h.world.runs("web").len(), 4);
    assert_eq!(h.world.outcomes("web").last().unwrap(), "exec:fixed");
    h.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_failed_action_escalates_to_the_next_step() {
    let h = start(4, None);
    h.world
        .add("web", heal(vec![exec("broken", 1), exec("fix", 1)]));
    h.world.effect("broken", Effect::Fails);
    h.world.effect("fix", Effect::Fixes);
    settle(2).await;
    h.world.kill("web");
    settle(60).await;
    assert_eq!(h.world.outcomes("web"), ["exec:failed", "exec:fixed"]);
    let events = h.events();
    assert_eq!(events[0], "failed:web:action failed: ran broken");
    assert!(events[1].starts_with("taken:web:ran fix; "));
    h.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn silenced_and_paused_monitors_are_never_acted_on() {
    let h = start(4, None);
    h.world.add("quiet", heal(vec![exec("fix", 1)]));
    h.world.add("paused", heal(vec![exec("fix", 1)]));
    h.world
        .state
        .lock()
        .unwrap()
        .mons
        .get_mut("quiet")
        .unwrap()
        .silenced = Some("silenced until tomorrow (maintenance)".into());
    settle(2).await;
    h.world.kill("quiet");
    h.world.kill("paused");
    // The paused one goes DOWN, and is paused before the engine looks.
    {
        let mut s = h.world.state.lock().unwrap();
        s.mons.get_mut("paused").unwrap().status = Status::Paused;
    }
    h.bus.publish(
        MonitorChange {
            monitor: "paused".into(),
            from: Status::Ok,
            to: Status::Down,
            reason: None,
            message: String::new(),
            down_for: None,
        }
        .into_event(),
    );
    settle(60).await;
    assert!(h.world.runs("quiet").is_empty());
    assert!(h.world.runs("paused").is_empty());
    let r = h.world.records();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].outcome, "skipped");
    assert_eq!(
        r[0].message,
        "no action: silenced until tomorrow (maintenance)"
    );
    assert!(h.events().is_empty(), "held actions notify nobody");
    h.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn actions_at_once_are_capped_and_one_per_monitor() {
    let h = start(2, None);
    for i in 0..5 {
        h.world.add(&format!("m{i}"), heal(vec![exec("fix", 1)]));
    }
    h.world.effect("fix", Effect::Fixes);
    settle(2).await;
    for i in 0..5 {
        h.world.kill(&format!("m{i}"));
    }
    // A second DOWN of a monitor being healed starts nothing.
    settle(1).await;
    h.bus.publish(
        MonitorChange {
            monitor: "m0".into(),
            from: Status::Ok,
            to: Status::Down,
            reason: None,
            message: String::new(),
            down_for: None,
        }
        .into_event(),
    );
    settle(30).await;
    let s = h.world.state.lock().unwrap();
    assert_eq!(s.max_running, 2);
    assert_eq!(s.runs.len(), 5);
    assert!(
        s.records.iter().all(|r| r.outcome == "fixed"),
        "{:?}",
        s.records
    );
    drop(s);
    h.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_reboot_is_announced_held_off_and_cancellable() {
    let reboot = |hold_off: &str| Step {
        action: ActionSpec::Reboot(RebootAction {
            hold_off: Some(hold_off.into()),
            dry_run: true,
            ..Default::default()
        }),
        attempts: 1,
        grace: Duration::from_secs(5),
    };
    let h = start(4, None);
    let mut l = heal(vec![exec("broken", 1), reboot("5m")]);
    l.cooldown = Duration::from_secs(1);
    h.world.add("web", l.clone());
    h.world.effect("broken", Effect::Fails);
    settle(2).await;
    h.world.kill("web");
    settle(60).await;
    let events = h.events();
    assert_eq!(
        events[1],
        "pending:web:dry run: rebooting in 5m unless `portwarden reboot cancel`"
    );
    assert_eq!(h.world.runs("web").len(), 1, "still holding off");
    assert_eq!(
        h.world
            .state
            .lock()
            .unwrap()
            .pending
            .as_ref()
            .map(|p| p.monitor.as_str()),
        Some("web"),
        "the hold-off is marked pending"
    );
    settle(300).await;
    assert_eq!(
        h.world.state.lock().unwrap().pending,
        None,
        "and unmarked after"
    );
    assert_eq!(
        h.world
            .runs("web")
            .iter()
            .map(|r| r.0.as_str())
            .collect::<Vec<_>>(),
        ["broken", "reboot"]
    );
    assert_eq!(
        h.world.outcomes("web"),
        ["exec:failed", "reboot:not_fixed", ":gave_up"]
    );
    assert!(h.world.records()[1].dry_run);

    // Cancelled during the hold-off: not run, recorded, given up.
    let h = start(4, None);
    h.world.add("web", l.clone());
    h.world.effect("broken", Effect::Fails);
    settle(2).await;
    h.world.kill("web");
    settle(60).await;
    h.world.state.lock().unwrap().cancelled = true;
    settle(1).await;
    assert_eq!(h.world.state.lock().unwrap().pending, None);
    assert_eq!(h.world.runs("web").len(), 1);
    assert_eq!(
        h.world.outcomes("web"),
        ["exec:failed", "reboot:skipped", ":gave_up"]
    );
    assert!(h
        .events()
        .last()
        .unwrap()
        .contains("the reboot was cancelled"));

    // Refused by its guard: given up at once.
    let h = start(4, None);
    h.world.add("web", l);
    h.world.effect("broken", Effect::Fails);
    h.world.state.lock().unwrap().reboot_refused = Some("up for 3m, less than 1h".into());
    settle(2).await;
    h.world.kill("web");
    settle(60).await;
    assert_eq!(h.world.runs("web").len(), 1);
    assert!(h
        .events()
        .last()
        .unwrap()
        .ends_with("the reboot is refused: up for 3m, less than 1h; a person must look"));
}

#[tokio::test(start_paused = true)]
async fn the_daemon_never_restarts_its_own_unit() {
    let h = start(4, Some("portwarden.service"));
    let own = Step {
        action: ActionSpec::Restart(UnitAction {
            unit: "portwarden".into(),
            manager: Default::default(),
            bus: Default::default(),
            bus_address: None,
            with_dependencies: false,
            timeout: None,
        }),
        attempts: 1,
        grace: Duration::from_secs(3),
    };
    let mut l = heal(vec![own, exec("fix", 1)]);
    l.cooldown = Duration::from_secs(1);
    h.world.add("web", l);
    h.world.effect("fix", Effect::Fixes);
    settle(2).await;
    h.world.kill("web");
    settle(30).await;
    assert_eq!(h.world.outcomes("web"), ["restart:skipped", "exec:fixed"]);
    assert_eq!(
        h.events()[0],
        "failed:web:not running restart portwarden: it is portwarden's own unit"
    );
    h.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn flapping_counts_as_failing() {
    let h = start(4, None);
    h.world.add("web", heal(vec![exec("fix", 1)]));
    h.world.effect("fix", Effect::Fixes);
    settle(2).await;
    // Down and up too often: the state machine says flapping instead of DOWN.
    {
        let mut s = h.world.state.lock().unwrap();
        let m = s.mons.get_mut("web").unwrap();
        m.up = false;
        m.status = Status::Flapping;
    }
    h.bus.publish(change("web", Status::Flapping).into_event());
    settle(10).await;
    assert_eq!(h.world.outcomes("web"), ["exec:fixed"]);
    h.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_reload_keeps_the_running_ladder_and_the_next_down_gets_the_new_one() {
    let h = start(4, None);
    let mut old = heal(vec![exec("old", 3)]);
    old.max_actions = 10;
    h.world.add("web", old.clone());
    settle(2).await;
    h.world.kill("web");
    settle(10).await;
    // SIGHUP: the monitor's ladder is now `new`, while `old` is in its cooldown.
    h.world
        .state
        .lock()
        .unwrap()
        .mons
        .get_mut("web")
        .unwrap()
        .heal = Heal {
        steps: vec![exec("new", 1)],
        ..old
    };
    settle(120).await;
    let programs =
        |h: &Harness| -> Vec<String> { h.world.runs("web").into_iter().map(|r| r.0).collect() };
    assert_eq!(programs(&h), ["old", "old", "old"]);
    assert_eq!(h.world.outcomes("web").last().unwrap(), ":gave_up");
    // Healthy for reset_after, then DOWN again: the new ladder.
    h.world.revive("web");
    settle(660).await;
    h.world.effect("new", Effect::Fixes);
    h.world.kill("web");
    settle(20).await;
    assert_eq!(programs(&h), ["old", "old", "old", "new"]);
    h.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_a_running_action_finish_and_records_it_unverified() {
    let h = start(4, None);
    h.world.add("web", heal(vec![exec("fix", 1)]));
    h.world.effect("fix", Effect::Fixes);
    settle(2).await;
    h.world.kill("web");
    // The check that sees it DOWN comes within a second; the action takes 300 ms.
    let started = loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if let Some((_, t)) = h.world.runs("web").first() {
            break *t;
        }
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.stop.cancel();
    h.engine.await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "waited for the action"
    );
    assert_eq!(h.world.outcomes("web"), ["exec:unverified"]);
}

#[tokio::test(start_paused = true)]
async fn a_down_followed_by_more_events_than_the_bus_holds_is_still_healed() {
    // issue 14.5: the engine read the bounded bus; a DOWN followed by more than 4,096 other
    // events before the engine ran was dropped ("healing engine fell behind").
    let h = start(4, None);
    h.world.add("web", heal(vec![exec("fix", 1)]));
    h.world.effect("fix", Effect::Fixes);
    settle(2).await;
    {
        // Down already, as the state machine saw it: the fake scheduler's next check is no
        // change, so the DOWN below is the only one the engine could see.
        let mut s = h.world.state.lock().unwrap();
        let m = s.mons.get_mut("web").unwrap();
        m.up = false;
        m.status = Status::Down;
        m.since = SystemTime::now();
    }
    h.bus.publish(change("web", Status::Down).into_event());
    for i in 0..crate::events::BUS_CAPACITY + 100 {
        h.bus
            .publish(change(&format!("other{i}"), Status::Down).into_event());
    }
    settle(20).await;
    assert_eq!(h.world.outcomes("web"), ["exec:fixed"]);
    h.stop.cancel();
}
