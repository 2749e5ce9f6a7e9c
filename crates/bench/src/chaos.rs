//! `bench chaos`: notifications under chaos, every transition accounted for.
//!
//! `--monitors` loopback targets that this process opens and closes at random (so it knows
//! the ground truth of every flip), `portwarden run` watching them with fast thresholds and
//! one `webhook` notifier, the daemon SIGKILLed `--kills` times at random moments and started
//! again on the same state directory, and a receiver in this process that cycles through four
//! behaviours: answer at once, fail (HTTP 500), stall past the notifier's timeout and then
//! accept (it keeps the item: "accepted late"), and refuse connections (its listener closed).
//!
//! After `--seconds` the flips stop with every target up, the receiver answers at once, and
//! the daemon gets up to `--drain-seconds` to empty its outbox. A notification that failed 5
//! times waits 10 minutes for its next attempt (by design); if the outbox still holds rows
//! after 15 s, the bench does what an operator would, a reload with the notifier changed
//! (its timeout by 1 ms), which retries them at once. The figures say whether it had to. Then it is stopped and the
//! transitions it recorded (its store's incidents: each start is a DOWN, each end an UP) are
//! held against what the receiver accepted:
//!
//! - an item is a transition as the receiver sees it: (monitor, kind, `since_ms`). A DOWN's
//!   `since_ms` is its incident's start; an UP's is the start of the outage it ends (it is
//!   computed from the outage's length, so it is matched within [`MATCH_SLACK_MS`]);
//! - **lost**: a recorded transition the receiver never accepted;
//! - **duplicated by key** (a failure, receiver-side dedup cannot catch it): one transition
//!   accepted under two different idempotency keys, or one key carrying different items in
//!   two deliveries;
//! - **repeated with the same key** (expected after a late answer, and harmless since the
//!   receiver can drop it): a delivery whose key was accepted before;
//! - **out of order**: per monitor, a transition first accepted after a later one of the
//!   same monitor;
//! - **not in the store**: an accepted item that matches no recorded transition but lies
//!   within an outage this process made: the notification was queued, the store's batch
//!   with the transition (written a moment apart) was lost to a SIGKILL. Not a failure;
//! - **unexpected**: an accepted item that matches neither.
//!
//! The ground truth is accounted separately: each outage this process made is detected (an
//! incident of that monitor starts within it), or missed while the daemon was not running,
//! or too short for the thresholds (shorter than [`LONG_OUTAGE_MS`]: one failed check may
//! fall in it, two are needed), or missed although long: that last figure should be zero.
//!
//! Loopback only, its own temp dir, every loop bounded in time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use clap::Args;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, Instant};

use crate::children::{free_port, Guarded};

/// Checks every 200 ms, DOWN after two failures, UP after one success.
const INTERVAL_MS: u64 = 200;
const CHECK_TIMEOUT_MS: u64 = 150;
const FAIL_AFTER: u64 = 2;
/// The notifier gives an attempt this long; a late answer comes [`LATE_BY_MS`] after it.
const NOTIFIER_TIMEOUT_MS: u64 = 1_000;
const LATE_BY_MS: u64 = 500;
/// An outage at least this long is always seen by a running daemon: `FAIL_AFTER` checks one
/// interval apart, plus one interval of phase and a check's timeout.
const LONG_OUTAGE_MS: i64 = ((FAIL_AFTER + 1) * INTERVAL_MS + CHECK_TIMEOUT_MS) as i64;
/// An incident starts this long at most after its outage ended (a check in flight).
const DETECT_SLACK_MS: i64 = 500;
/// An UP's `since_ms` is the outage start give or take the clock's rounding.
const MATCH_SLACK_MS: i64 = 100;

#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// Monitors (and targets) flipping.
    #[arg(long, default_value_t = 50)]
    monitors: usize,
    /// How long the flips, kills and receiver faults go on.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// SIGKILLs of the daemon, at random moments of the run.
    #[arg(long, default_value_t = 5)]
    kills: usize,
    /// Longest wait for the outbox to drain after the flips stop.
    #[arg(long, default_value_t = 120)]
    drain_seconds: u64,
    /// Seed of the random flips, kills and pauses (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// The portwarden binary (default: next to this one, e.g. target/release/portwarden).
    #[arg(long)]
    portwarden: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &ChaosArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.monitors > 0, "--monitors must be at least 1");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(chaos(args))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

// ---------------------------------------------------------------------------------------
// Targets and their flips (the ground truth).

/// One outage this process made: the target closed at `down_ms`, opened at `up_ms`.
#[derive(Debug, Clone)]
struct Outage {
    monitor: usize,
    down_ms: i64,
    up_ms: i64,
}

/// A loopback listener that accepts and hangs up; aborting its task closes the port.
struct Target {
    port: u16,
    server: Option<JoinHandle<()>>,
}

/// Ports that this process closes and opens again come from below the kernel's ephemeral
/// range (32768 and up), from this first one on: while closed, an ephemeral port could be
/// handed to an outgoing connection and could not be bound again.
const FIRST_PORT: u16 = 10_000;
/// …and below this one (the end of the tests' range starts at 20000).
const PORT_END: u16 = 20_000;

/// `n` ports that are free at the moment, from a start that depends on this process's id.
fn reserved_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let span = u32::from(PORT_END - FIRST_PORT);
    let start = u16::try_from(std::process::id() % span).unwrap_or(0);
    let ports: Vec<u16> = (0..PORT_END - FIRST_PORT)
        .map(|i| FIRST_PORT + (start + i) % (PORT_END - FIRST_PORT))
        .filter(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .take(n)
        .collect();
    anyhow::ensure!(
        ports.len() == n,
        "only {} free ports in {FIRST_PORT}-{PORT_END}",
        ports.len()
    );
    Ok(ports)
}

/// A listener on `port` again; tokio sets SO_REUSEADDR, so a port just closed can be bound
/// at once. Something else may hold it for a moment: tried for at most 3 s.
async fn bind_again(port: u16) -> anyhow::Result<TcpListener> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => return Ok(l),
            Err(e) if Instant::now() >= deadline => {
                return Err(e).with_context(|| format!("binding port {port} again"))
            }
            Err(_) => sleep(Duration::from_millis(50)).await,
        }
    }
}

impl Target {
    async fn open(&mut self) -> anyhow::Result<()> {
        let listener = bind_again(self.port).await?;
        self.server = Some(tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                drop(socket);
            }
        }));
        Ok(())
    }

    /// Closes the port (the task drops its listener as it is aborted).
    async fn close(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }
}

/// Flips every target at random until `until`, then opens them all; returns the outages.
async fn flip(
    targets: &mut [Target],
    until: Instant,
    rng: &mut fastrand::Rng,
) -> anyhow::Result<Vec<Outage>> {
    let start = Instant::now();
    // Per target: when it flips next, and since when it is down (None while up).
    let mut next: Vec<Instant> = (0..targets.len())
        .map(|_| start + Duration::from_millis(rng.u64(500..4_000)))
        .collect();
    let mut down_since: Vec<Option<i64>> = vec![None; targets.len()];
    let mut outages = Vec::new();
    while Instant::now() < until {
        let Some((i, at)) = next.iter().copied().enumerate().min_by_key(|(_, t)| *t) else {
            break;
        };
        sleep_until(at.min(until)).await;
        if Instant::now() >= until {
            break;
        }
        match down_since[i].take() {
            None => {
                targets[i].close().await;
                down_since[i] = Some(now_ms());
                // A quarter of the outages are shorter than the thresholds can see for sure.
                let length = if rng.u8(0..4) == 0 {
                    rng.u64(50..LONG_OUTAGE_MS as u64)
                } else {
                    rng.u64(LONG_OUTAGE_MS as u64..4_000)
                };
                next[i] = Instant::now() + Duration::from_millis(length);
            }
            Some(down_ms) => {
                targets[i].open().await?;
                outages.push(Outage {
                    monitor: i,
                    down_ms,
                    up_ms: now_ms(),
                });
                next[i] = Instant::now() + Duration::from_millis(rng.u64(1_500..6_000));
            }
        }
    }
    for (i, since) in down_since.iter().enumerate() {
        if let Some(down_ms) = *since {
            targets[i].open().await?;
            outages.push(Outage {
                monitor: i,
                down_ms,
                up_ms: now_ms(),
            });
        }
    }
    Ok(outages)
}

// ---------------------------------------------------------------------------------------
// The receiver.

/// How the receiver treats a request right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// 200 at once; the delivery is kept.
    Answer,
    /// 500 at once; nothing kept.
    Fail,
    /// The delivery is kept, the answer comes after the notifier gave up.
    Late,
    /// The listener is closed (a request that slipped in gets 503, nothing kept).
    Refuse,
}

/// The receiver's cycle: (mode, how long).
/// Half the time the receiver misbehaves; one bad phase is shorter than the notifier's
/// retry pauses grow, so most messages get through before they count as failing (after 5
/// attempts, retried every 10 minutes).
const CYCLE: [(Mode, u64); 4] = [
    (Mode::Answer, 3_000),
    (Mode::Fail, 1_000),
    (Mode::Late, 1_000),
    (Mode::Refuse, 1_000),
];

/// One request the receiver accepted (answered at once or late).
#[derive(Debug, Clone)]
struct Accepted {
    key: String,
    body: serde_json::Value,
}

#[derive(Debug, Default)]
struct Tally {
    accepted: Vec<Accepted>,
    answered: u64,
    failed: u64,
    late: u64,
    refused_phases: u64,
    /// Requests without a key or a JSON body (should be none).
    malformed: u64,
}

struct Receiver {
    mode: Mutex<Mode>,
    tally: Mutex<Tally>,
}

impl Receiver {
    fn mode(&self) -> Mode {
        self.mode.lock().map_or(Mode::Answer, |m| *m)
    }

    fn set_mode(&self, mode: Mode) {
        if let Ok(mut m) = self.mode.lock() {
            *m = mode;
        }
    }

    fn count(&self, f: impl FnOnce(&mut Tally)) {
        if let Ok(mut t) = self.tally.lock() {
            f(&mut t);
        }
    }
}

async fn hook(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mode = r.mode();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let parsed = serde_json::from_slice::<serde_json::Value>(&body).ok();
    let keep = |r: &Receiver| match (key, parsed) {
        (Some(key), Some(body)) => r.count(|t| t.accepted.push(Accepted { key, body })),
        _ => r.count(|t| t.malformed += 1),
    };
    match mode {
        Mode::Answer => {
            keep(&r);
            r.count(|t| t.answered += 1);
            StatusCode::OK
        }
        Mode::Fail => {
            r.count(|t| t.failed += 1);
            StatusCode::INTERNAL_SERVER_ERROR
        }
        Mode::Late => {
            keep(&r);
            r.count(|t| t.late += 1);
            sleep(Duration::from_millis(NOTIFIER_TIMEOUT_MS + LATE_BY_MS)).await;
            StatusCode::OK
        }
        Mode::Refuse => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The receiver's HTTP server on `port`, stopped (listener and connections closed) through
/// its sender.
struct Serving {
    stop: tokio::sync::oneshot::Sender<()>,
    task: JoinHandle<()>,
}

async fn serve(receiver: Arc<Receiver>, port: u16) -> anyhow::Result<Serving> {
    let listener = bind_again(port).await?;
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(receiver);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(Serving { stop, task })
}

impl Serving {
    async fn stop(self) {
        let _ = self.stop.send(());
        // Graceful: requests in flight (a late one stalls 1.5 s) finish, keep-alive
        // connections close, so no request gets through while refusing.
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// Cycles the receiver's behaviour until `until`; leaves it answering at once.
async fn cycle_receiver(
    receiver: Arc<Receiver>,
    port: u16,
    until: Instant,
) -> anyhow::Result<Serving> {
    let mut serving = Some(serve(receiver.clone(), port).await?);
    'run: for round in 0_u64.. {
        for (mode, ms) in CYCLE {
            if Instant::now() >= until || round > 100_000 {
                break 'run;
            }
            receiver.set_mode(mode);
            if mode == Mode::Refuse {
                if let Some(s) = serving.take() {
                    s.stop().await;
                }
                receiver.count(|t| t.refused_phases += 1);
            } else if serving.is_none() {
                serving = Some(serve(receiver.clone(), port).await?);
            }
            sleep_until((Instant::now() + Duration::from_millis(ms)).min(until)).await;
        }
    }
    receiver.set_mode(Mode::Answer);
    match serving {
        Some(s) => Ok(s),
        None => serve(receiver, port).await,
    }
}

// ---------------------------------------------------------------------------------------
// The daemon.

struct Daemon {
    binary: PathBuf,
    config: PathBuf,
    log: PathBuf,
    api_port: u16,
}

impl Daemon {
    /// Starts `portwarden run` and waits (at most 30 s) for its API to accept.
    async fn start(&self) -> anyhow::Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.binary)
            .args(["run", "-c"])
            .arg(&self.config)
            .env("PORTWARDEN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting portwarden run")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.api_port))
                .await
                .is_ok()
            {
                return Ok(child);
            }
            sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!(
            "the daemon's API did not answer within 30 s (log: {})",
            self.log.display()
        )
    }
}

/// Sends `signal` to `child` (by its own id).
fn signal(child: &Child, signal: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// SIGTERM, then at most 10 s for the daemon to finish; SIGKILL after that.
async fn stop(child: &mut Child) {
    signal(child, rustix::process::Signal::TERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A read-only look at the daemon's database.
fn open_db(state_dir: &Path) -> anyhow::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open_with_flags(
        state_dir.join("portwarden.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    conn.busy_timeout(Duration::from_secs(2))?;
    Ok(conn)
}

/// Rows waiting in the outbox and incidents still open.
fn backlog(state_dir: &Path) -> anyhow::Result<(i64, i64)> {
    let conn = open_db(state_dir)?;
    let outbox = conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
    let open = conn.query_row(
        "SELECT count(*) FROM incidents WHERE end_ms IS NULL",
        [],
        |r| r.get(0),
    )?;
    Ok((outbox, open))
}

/// Every incident: (monitor, start_ms, end_ms).
fn incidents(state_dir: &Path) -> anyhow::Result<Vec<(String, i64, Option<i64>)>> {
    let conn = open_db(state_dir)?;
    let mut statement = conn.prepare(
        "SELECT m.name, i.start_ms, i.end_ms FROM incidents i JOIN monitors m ON m.id = i.monitor_id
         ORDER BY i.start_ms",
    )?;
    let rows = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn monitor_name(i: usize) -> String {
    format!("m{i:04}")
}

fn write_config(dir: &Path, api_port: u16, receiver_port: u16, targets: &[Target]) -> PathBuf {
    let mut text = format!(
        r#"[daemon]
listen = "127.0.0.1:{api_port}"
state_dir = "{state}"

# Hands off the machine's firewall.
[firewall]
guard = false

[defaults]
interval = "{INTERVAL_MS}ms"
timeout = "{CHECK_TIMEOUT_MS}ms"
fail_after = {FAIL_AFTER}
recover_after = 1
# Flipping is the point here: never call it flapping.
flap_max_transitions = 1000
notify = ["hook"]

[[notifier]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:{receiver_port}/hook"
timeout = "{NOTIFIER_TIMEOUT_MS}ms"
group_wait = "100ms"
group_window = "1s"

"#,
        state = dir.join("state").display()
    );
    for (i, t) in targets.iter().enumerate() {
        text.push_str(&format!(
            "[[monitor]]\nname = \"{}\"\ntarget = \"127.0.0.1:{}\"\n\n",
            monitor_name(i),
            t.port
        ));
    }
    let path = dir.join("portwarden.toml");
    // The directory is ours and fresh: a failed write shows up as the daemon's config error.
    let _ = std::fs::write(&path, text);
    path
}

// ---------------------------------------------------------------------------------------
// The run.

async fn chaos(args: &ChaosArgs) -> anyhow::Result<()> {
    let binary = crate::children::portwarden_binary(args.portwarden.as_deref())?;
    let seed = args.seed.unwrap_or_else(|| now_ms().unsigned_abs());
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = std::env::temp_dir().join(format!("portwarden-bench-chaos-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let state_dir = dir.join("state");
    // Removes the directory at the end; the daemon is stopped by hand below (and killed by
    // its handle in there if a step fails).
    let mut guard = Guarded(Vec::new(), Some(dir.clone()));

    let mut ports = reserved_ports(args.monitors + 1)?;
    let receiver_port = ports.pop().context("no receiver port")?;
    let mut targets = Vec::with_capacity(args.monitors);
    for port in ports {
        let mut t = Target { port, server: None };
        t.open().await?;
        targets.push(t);
    }
    let api_port = free_port()?;
    let daemon = Daemon {
        binary,
        config: write_config(&dir, api_port, receiver_port, &targets),
        log: dir.join("daemon.log"),
        api_port,
    };
    let receiver = Arc::new(Receiver {
        mode: Mutex::new(Mode::Answer),
        tally: Mutex::new(Tally::default()),
    });

    guard.0.push(daemon.start().await?);
    // Every monitor's first verdict (OK) before the chaos starts.
    sleep(Duration::from_millis(1_500)).await;

    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let cycling = tokio::spawn(cycle_receiver(receiver.clone(), receiver_port, until));

    // The kills, at random moments between 10 % and 90 % of the run.
    let mut kill_at: Vec<u64> = (0..args.kills)
        .map(|_| rng.u64(args.seconds * 100..=args.seconds * 900))
        .collect();
    kill_at.sort_unstable();
    let mut flip_rng = fastrand::Rng::with_seed(rng.u64(..));
    let flipping = tokio::spawn(async move {
        let outages = flip(&mut targets, until, &mut flip_rng).await;
        (targets, outages)
    });
    // Windows without a daemon: (killed, running again), Unix ms.
    let mut dead: Vec<(i64, i64)> = Vec::new();
    for at in kill_at {
        sleep_until(started + Duration::from_millis(at)).await;
        if let Some(mut child) = guard.0.pop() {
            // std's kill is SIGKILL.
            let _ = child.kill();
            let _ = child.wait();
        }
        let killed = now_ms();
        sleep(Duration::from_millis(rng.u64(0..1_500))).await;
        guard.0.push(daemon.start().await?);
        dead.push((killed, now_ms()));
    }
    let (targets, outages) = flipping.await?;
    let outages = outages?;
    let _serving = cycling.await??;

    // Drain: every target is up and the receiver answers; wait until the outbox is empty and
    // every incident closed, three looks in a row (longer than the group window).
    // Notifications that failed 5 times wait 10 minutes for their next attempt (by design):
    // if some still wait after a grace, the operator's move, a reload with the notifier
    // changed, retries them at once. Counted in the figures.
    let drain_start = Instant::now();
    let drain_until = drain_start + Duration::from_secs(args.drain_seconds);
    let reload_at = drain_start + Duration::from_secs(15);
    let mut reloaded = false;
    let mut quiet = 0;
    let mut left = (0, 0);
    while Instant::now() < drain_until && quiet < 3 {
        sleep(Duration::from_millis(500)).await;
        left = backlog(&state_dir).unwrap_or((-1, -1));
        quiet = if left == (0, 0) { quiet + 1 } else { 0 };
        if left.0 > 0 && !reloaded && Instant::now() >= reload_at {
            reloaded = true;
            let text = std::fs::read_to_string(&daemon.config)?;
            let changed = format!("timeout = \"{}ms\"", NOTIFIER_TIMEOUT_MS + 1);
            std::fs::write(
                &daemon.config,
                text.replace(&format!("timeout = \"{NOTIFIER_TIMEOUT_MS}ms\""), &changed),
            )?;
            if let Some(child) = guard.0.last() {
                signal(child, rustix::process::Signal::HUP);
            }
        }
    }
    let drained_in = drain_start.elapsed();
    let failing_reports = std::fs::read_to_string(&daemon.log)
        .unwrap_or_default()
        .matches("event=\"notification_failing\"")
        .count();
    if let Some(mut child) = guard.0.pop() {
        stop(&mut child).await;
    }
    drop(targets);

    let recorded = incidents(&state_dir)?;
    let tally = receiver
        .tally
        .lock()
        .map_err(|_| anyhow::anyhow!("receiver tally poisoned"))?;
    let figures = account(Inputs {
        args,
        seed,
        recorded: &recorded,
        outages: &outages,
        dead: &dead,
        tally: &tally,
        left_in_outbox: left.0,
        open_at_end: left.1,
        drained_in,
        failing_reports,
        reloaded,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        print_table(&figures);
    }
    if figures.lost > 0 || figures.duplicated_by_key > 0 {
        let log = dir.with_extension("log");
        let _ = std::fs::copy(&daemon.log, &log);
        eprintln!("daemon log kept in {}", log.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The accounting.

struct Inputs<'a> {
    args: &'a ChaosArgs,
    seed: u64,
    recorded: &'a [(String, i64, Option<i64>)],
    outages: &'a [Outage],
    dead: &'a [(i64, i64)],
    tally: &'a Tally,
    left_in_outbox: i64,
    open_at_end: i64,
    drained_in: Duration,
    failing_reports: usize,
    reloaded: bool,
}

/// Every figure of a run.
#[derive(Debug, Default, Serialize)]
struct Figures {
    seed: u64,
    monitors: usize,
    seconds: u64,
    kills: usize,
    /// Outages this process made, and how they came out.
    outages: usize,
    outages_long: usize,
    outages_detected: usize,
    outages_missed_daemon_not_running: usize,
    outages_missed_short: usize,
    outages_missed_long: usize,
    /// Incidents that match no outage this process made.
    incidents_without_outage: usize,
    /// Transitions the daemon recorded: incident starts (DOWN) and ends (UP).
    transitions_down: usize,
    transitions_up: usize,
    /// Requests the receiver got, by what it did.
    requests_answered: u64,
    requests_failed_500: u64,
    requests_accepted_late: u64,
    refusing_phases: u64,
    requests_malformed: u64,
    /// Distinct keys accepted, and items accepted (counting repeats).
    keys_accepted: usize,
    items_accepted: usize,
    /// The verdicts.
    lost: usize,
    duplicated_by_key: usize,
    repeated_same_key: usize,
    out_of_order: usize,
    unexpected: usize,
    /// Transitions delivered (distinct) that the store missed, within a real outage.
    not_in_store: usize,
    left_in_outbox: i64,
    incidents_open_at_end: i64,
    drain_seconds: f64,
    /// Notifications that reached `failing` (5 failed attempts; next try in 10 minutes).
    failing_reports: usize,
    /// Whether the drain needed a reload to retry failing notifications at once.
    drain_reloaded: bool,
    /// Up to ten examples of each problem.
    examples: BTreeMap<String, Vec<String>>,
}

/// A recorded transition: monitor, DOWN (false) or UP (true), incident start.
type TransitionId = (String, bool, i64);

fn account(i: Inputs<'_>) -> Figures {
    let mut f = Figures {
        seed: i.seed,
        monitors: i.args.monitors,
        seconds: i.args.seconds,
        kills: i.args.kills,
        requests_answered: i.tally.answered,
        requests_failed_500: i.tally.failed,
        requests_accepted_late: i.tally.late,
        refusing_phases: i.tally.refused_phases,
        requests_malformed: i.tally.malformed,
        left_in_outbox: i.left_in_outbox,
        incidents_open_at_end: i.open_at_end,
        drain_seconds: i.drained_in.as_secs_f64(),
        failing_reports: i.failing_reports,
        drain_reloaded: i.reloaded,
        ..Figures::default()
    };
    let mut examples: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut example = |what: &str, text: String| {
        let list = examples.entry(what.to_string()).or_default();
        if list.len() < 10 {
            list.push(text);
        }
    };

    // Recorded transitions per monitor, in the order they happened.
    let mut expected: BTreeMap<String, Vec<TransitionId>> = BTreeMap::new();
    for (monitor, start, end) in i.recorded {
        let list = expected.entry(monitor.clone()).or_default();
        list.push((monitor.clone(), false, *start));
        f.transitions_down += 1;
        if end.is_some() {
            list.push((monitor.clone(), true, *start));
            f.transitions_up += 1;
        }
    }
    let position: HashMap<&TransitionId, usize> = expected
        .values()
        .flat_map(|list| list.iter().enumerate().map(|(p, t)| (t, p)))
        .collect();

    // Ground truth: each outage against the incidents of its monitor.
    let mut explained: HashSet<(String, i64)> = HashSet::new();
    for o in i.outages {
        let name = monitor_name(o.monitor);
        let long = o.up_ms - o.down_ms >= LONG_OUTAGE_MS;
        f.outages += 1;
        f.outages_long += usize::from(long);
        let hit = i.recorded.iter().find(|(m, start, _)| {
            *m == name && *start >= o.down_ms && *start <= o.up_ms + DETECT_SLACK_MS
        });
        if let Some((m, start, _)) = hit {
            f.outages_detected += 1;
            explained.insert((m.clone(), *start));
        } else if i
            .dead
            .iter()
            .any(|(killed, back)| *killed < o.up_ms && *back + LONG_OUTAGE_MS > o.down_ms)
        {
            f.outages_missed_daemon_not_running += 1;
        } else if !long {
            f.outages_missed_short += 1;
        } else {
            f.outages_missed_long += 1;
            example(
                "outages_missed_long",
                format!("{name} down {} ms from {}", o.up_ms - o.down_ms, o.down_ms),
            );
        }
    }
    for (m, start, _) in i.recorded {
        if !explained.contains(&(m.clone(), *start)) {
            f.incidents_without_outage += 1;
            example("incidents_without_outage", format!("{m} at {start}"));
        }
    }

    // What the receiver accepted, item by item, matched to recorded transitions.
    let find = |subject: &str, up: bool, since: i64| -> Option<&TransitionId> {
        expected
            .get(subject)?
            .iter()
            .find(|(_, is_up, start)| *is_up == up && (since - start).abs() <= MATCH_SLACK_MS)
    };
    // An item the store has no incident for, within an outage this process made: the
    // notification was queued, the store's batch with the transition was lost to a SIGKILL.
    let real_outage = |subject: &str, since: i64| {
        i.outages.iter().any(|o| {
            monitor_name(o.monitor) == subject
                && since >= o.down_ms
                && since <= o.up_ms + DETECT_SLACK_MS
        })
    };
    let mut keys_of: HashMap<TransitionId, HashSet<&str>> = HashMap::new();
    let mut items_of_key: HashMap<&str, Vec<String>> = HashMap::new();
    let mut delivered: HashSet<&TransitionId> = HashSet::new();
    let mut latest: HashMap<&str, usize> = HashMap::new();
    for a in &i.tally.accepted {
        let items: &[serde_json::Value] = a.body["items"].as_array().map_or(&[], Vec::as_slice);
        let described: Vec<String> = items.iter().map(describe).collect();
        match items_of_key.get(a.key.as_str()) {
            Some(before) => {
                f.repeated_same_key += 1;
                if *before != described {
                    f.duplicated_by_key += 1;
                    example("key_changed_items", a.key.clone());
                }
            }
            None => {
                items_of_key.insert(&a.key, described);
            }
        }
        for item in items {
            f.items_accepted += 1;
            let subject = item["subject"].as_str().unwrap_or_default();
            let since = item["since_ms"].as_i64().unwrap_or_default();
            let up = match item["kind"].as_str() {
                Some("down") => false,
                Some("up") => true,
                _ => {
                    f.unexpected += 1;
                    example("unexpected", describe(item));
                    continue;
                }
            };
            let Some(t) = find(subject, up, since) else {
                let t = (subject.to_string(), up, since);
                if !keys_of.contains_key(&t) {
                    if real_outage(subject, since) {
                        f.not_in_store += 1;
                        example("not_in_store", describe(item));
                    } else {
                        f.unexpected += 1;
                        example("unexpected", describe(item));
                    }
                }
                keys_of.entry(t).or_default().insert(&a.key);
                continue;
            };
            keys_of.entry(t.clone()).or_default().insert(&a.key);
            if delivered.insert(t) {
                // First time this transition arrives: after a later one of its monitor?
                let p = position.get(t).copied().unwrap_or_default();
                let newest = latest.entry(subject).or_insert(p);
                if p < *newest {
                    f.out_of_order += 1;
                    example("out_of_order", describe(item));
                }
                *newest = (*newest).max(p);
            }
        }
    }
    f.keys_accepted = items_of_key.len();
    for (t, keys) in &keys_of {
        if keys.len() > 1 {
            f.duplicated_by_key += 1;
            let mut keys: Vec<&str> = keys.iter().copied().collect();
            keys.sort_unstable();
            example(
                "item_under_two_keys",
                format!("{}:{}:{} under {}", t.0, up_name(t.1), t.2, keys.join(", ")),
            );
        }
    }
    for t in expected.values().flatten() {
        if !delivered.contains(t) {
            f.lost += 1;
            example("lost", format!("{}:{}:{}", t.0, up_name(t.1), t.2));
        }
    }
    f.examples = examples;
    f
}

fn up_name(up: bool) -> &'static str {
    if up {
        "up"
    } else {
        "down"
    }
}

/// An item as `subject:kind:since_ms`.
fn describe(item: &serde_json::Value) -> String {
    format!(
        "{}:{}:{}",
        item["subject"].as_str().unwrap_or("?"),
        item["kind"].as_str().unwrap_or("?"),
        item["since_ms"].as_i64().unwrap_or_default()
    )
}

fn print_table(f: &Figures) {
    println!(
        "bench chaos: {} monitors, {} s, {} SIGKILLs, seed {}\n",
        f.monitors, f.seconds, f.kills, f.seed
    );
    println!("| figure | value |");
    println!("|---|---:|");
    let rows: [(&str, String); 29] = [
        ("outages made", f.outages.to_string()),
        (
            "… of them long enough for the thresholds",
            f.outages_long.to_string(),
        ),
        ("… detected (an incident)", f.outages_detected.to_string()),
        (
            "… missed, the daemon not running",
            f.outages_missed_daemon_not_running.to_string(),
        ),
        ("… missed, too short", f.outages_missed_short.to_string()),
        (
            "… missed although long (should be 0)",
            f.outages_missed_long.to_string(),
        ),
        (
            "incidents without an outage",
            f.incidents_without_outage.to_string(),
        ),
        ("recorded DOWN transitions", f.transitions_down.to_string()),
        ("recorded UP transitions", f.transitions_up.to_string()),
        ("requests answered at once", f.requests_answered.to_string()),
        ("requests failed (500)", f.requests_failed_500.to_string()),
        (
            "requests accepted late (after the timeout)",
            f.requests_accepted_late.to_string(),
        ),
        ("refusing phases", f.refusing_phases.to_string()),
        ("malformed requests", f.requests_malformed.to_string()),
        ("distinct keys accepted", f.keys_accepted.to_string()),
        (
            "items accepted (with repeats)",
            f.items_accepted.to_string(),
        ),
        ("**lost**", f.lost.to_string()),
        ("**duplicated by key**", f.duplicated_by_key.to_string()),
        (
            "repeated with the same key (receiver drops them)",
            f.repeated_same_key.to_string(),
        ),
        ("out of order (per monitor)", f.out_of_order.to_string()),
        (
            "delivered, real, but not in the store (its batch lost to a SIGKILL)",
            f.not_in_store.to_string(),
        ),
        ("unexpected items", f.unexpected.to_string()),
        ("left in the outbox", f.left_in_outbox.to_string()),
        (
            "incidents open at the end",
            f.incidents_open_at_end.to_string(),
        ),
        (
            "notifications that went failing (5 attempts)",
            f.failing_reports.to_string(),
        ),
        (
            "drain needed a reload (retries failing at once)",
            if f.drain_reloaded { "yes" } else { "no" }.to_string(),
        ),
        ("drain time", format!("{:.1} s", f.drain_seconds)),
        ("SIGKILLs", f.kills.to_string()),
        ("seed", f.seed.to_string()),
    ];
    for (name, value) in rows {
        println!("| {name} | {value} |");
    }
    for (what, list) in &f.examples {
        println!("\n{what}: {}", list.join("; "));
    }
}
