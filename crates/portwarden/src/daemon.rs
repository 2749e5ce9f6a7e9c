//! `portwarden run`: the long-running daemon. Wires config (or zero-config discovery), the
//! scheduler, the store, the event bus, the listener watcher and the API together, and
//! handles signals: SIGHUP reloads, SIGTERM / SIGINT stop gracefully.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiShared};
use crate::config::{self, Config};
use crate::events::{EventBus, EventKind};
use crate::monitor::Monitor;
use crate::schedule::{Record, Scheduler, SchedulerSettings};
use crate::store::{CheckRecord, Store, TransitionRecord};
use crate::{discover, guard, heal, notify, watch};

/// Default API address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9898";
/// How long checks in flight may finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Records queued for the store before checks wait (backpressure).
const RECORD_QUEUE: usize = 65_536;
/// Longest a reload may take to read and check the config before it is given up.
const RELOAD_LIMIT: Duration = Duration::from_secs(30);

/// Command-line choices of `portwarden run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `-c FILE|DIR`; `None`: the default path if it exists, else zero-config.
    pub config: Option<PathBuf>,
    /// Overrides `[daemon] state_dir`.
    pub state_dir: Option<PathBuf>,
    /// Overrides `[daemon] listen`.
    pub listen: Option<SocketAddr>,
}

/// Where the daemon's monitors come from.
#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    ZeroConfig,
}

impl Source {
    /// What a firewall with no rules means to the guard under this source.
    fn guard_mode(&self) -> guard::GuardMode {
        match self {
            Source::File(_) => guard::GuardMode::Configured,
            Source::ZeroConfig => guard::GuardMode::ZeroConfig,
        }
    }

    fn describe(&self) -> String {
        match self {
            Source::File(p) => format!("config {}", p.display()),
            Source::ZeroConfig => "zero-config".into(),
        }
    }
}

/// Everything a (re)load produces.
struct Loaded {
    listen: SocketAddr,
    state_dir: Option<PathBuf>,
    max_in_flight: usize,
    max_concurrent_actions: usize,
    /// `[daemon] api_token_env` / `api_token_file`, `read_token`.
    api_token: Option<config::ApiTokenSource>,
    read_token: bool,
    api_tls: Option<(PathBuf, PathBuf)>,
    /// `[daemon] http_*`.
    http_limits: crate::api::server::HttpLimits,
    monitors: Vec<Monitor>,
    /// Names of monitors that run already with the same definition (reloads only).
    unchanged: Vec<String>,
    listing: Option<portwarden_sockets::Listing>,
    firewall: config::FirewallSettings,
    notify: notify::Settings,
    blackbox_config: Option<PathBuf>,
    probe_modules: Vec<config::ProbeModule>,
}

/// Reads the config. `running` (reloads) tells which monitors already run unchanged.
fn load(source: &Source, running: &config::RunningCheck<'_>) -> anyhow::Result<Loaded> {
    match source {
        Source::File(path) => {
            let Config {
                daemon,
                monitors,
                unchanged,
                files,
                firewall,
                notifiers,
                probe_modules,
                ..
            } = config::load_beside(path, running).map_err(|e| anyhow::anyhow!("{e}"))?;
            tracing::debug!(files = files.len(), "config read from {}", path.display());
            Ok(Loaded {
                listen: daemon.listen,
                state_dir: daemon.state_dir,
                max_in_flight: daemon.max_in_flight,
                max_concurrent_actions: daemon.max_concurrent_actions,
                api_token: daemon.api_token,
                read_token: daemon.read_token,
                api_tls: daemon.tls,
                http_limits: daemon.http,
                blackbox_config: daemon.blackbox_config,
                probe_modules,
                monitors,
                unchanged,
                listing: None,
                notify: notify::Settings {
                    notifiers,
                    firewall_notify: firewall.notify.clone(),
                },
                firewall,
            })
        }
        Source::ZeroConfig => {
            let listing = portwarden_sockets::list(portwarden_sockets::ListOptions::default())
                .context("zero-config mode lists this host's listeners")?;
            let defaults = config::DaemonSettings::default();
            Ok(Loaded {
                listen: defaults.listen,
                state_dir: None,
                max_in_flight: defaults.max_in_flight,
                max_concurrent_actions: defaults.max_concurrent_actions,
                api_token: None,
                read_token: false,
                api_tls: None,
                http_limits: defaults.http,
                blackbox_config: None,
                probe_modules: Vec::new(),
                monitors: discover::monitors(&listing),
                unchanged: Vec::new(),
                listing: Some(listing),
                // The embedded default guards the firewall too: alert when it is switched
                // off, restore only when a baseline was saved; a host with no rules at all
                // has nothing to guard yet (`guard::GuardMode::ZeroConfig`).
                firewall: config::FirewallSettings::default(),
                notify: notify::Settings::default(),
            })
        }
    }
}

/// `/var/lib/portwarden` as root, else `$XDG_STATE_HOME/portwarden`
/// (`~/.local/state/portwarden`).
pub fn default_state_dir() -> PathBuf {
    if portwarden_sockets::sees_all_owners() {
        return PathBuf::from("/var/lib/portwarden");
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("portwarden");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/state/portwarden"),
        None => PathBuf::from("portwarden-state"),
    }
}

/// Runs the daemon until SIGTERM / SIGINT.
pub async fn run(options: RunOptions) -> anyhow::Result<()> {
    // Handlers first: a SIGHUP during start-up must not kill the daemon (its default action).
    let mut hangup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let source = match &options.config {
        Some(path) => Source::File(path.clone()),
        None if Path::new(config::DEFAULT_PATH).exists() => {
            Source::File(config::DEFAULT_PATH.into())
        }
        None => Source::ZeroConfig,
    };
    let loaded = load(&source, &|_, _| false)?;
    let listen = options.listen.unwrap_or(loaded.listen);
    let state_dir = options
        .state_dir
        .clone()
        .or(loaded.state_dir.clone())
        .unwrap_or_else(default_state_dir);
    let max_in_flight = loaded.max_in_flight;
    let loaded_http_limits = loaded.http_limits;
    let api_auth = crate::api::auth::ApiAuth::load(loaded.api_token.as_ref(), loaded.read_token)?;
    let api_tls = match &loaded.api_tls {
        Some((cert, key)) => Some(crate::api::tls::server_config(cert, key)?),
        None => None,
    };
    let scheme = if api_tls.is_some() { "https" } else { "http" };
    let probe_modules =
        crate::api::blackbox::load(loaded.blackbox_config.as_deref(), &loaded.probe_modules);
    let file_limit = raise_file_limit();
    let needed = FileLimit::needed(max_in_flight, loaded.monitors.len());
    if file_limit.too_low(needed) {
        tracing::warn!(
            limit = file_limit.limit,
            needed,
            "the open-file limit ({}) is below what {} checks in flight need ({needed}; \
             max_in_flight and the monitors plus {FILE_RESERVE} for the daemon): checks that \
             find no descriptor end UNKNOWN (local_resources), never DOWN; raise the hard \
             limit (LimitNOFILE= in the unit, ulimit -Hn) or lower max_in_flight",
            file_limit.limit.unwrap_or(u64::MAX),
            max_in_flight.min(loaded.monitors.len()),
        );
    }

    // Bind first: a taken port is the most common start-up failure, so fail before work.
    let api_listener = api::bind(listen).await?;
    match &source {
        Source::File(p) => tracing::info!(
            "using {}: {} monitors; API on {scheme}://{listen}; state in {}",
            p.display(),
            loaded.monitors.len(),
            state_dir.display()
        ),
        Source::ZeroConfig => tracing::info!(
            "no config file at {}: running the built-in default — watching the {} TCP listeners \
             found on this host (connect check every {}s, and each must stay with the program \
             holding it now), noticing new ones; API on {scheme}://{listen}; state in {}",
            config::DEFAULT_PATH,
            loaded.monitors.len(),
            discover::INTERVAL.as_secs(),
            state_dir.display()
        ),
    }

    for m in &loaded.monitors {
        if let Some(why) = &m.owner_unknown {
            tracing::warn!(monitor = %m.name, "watching {} without an owner check: {why}", m.name);
        }
    }

    let shutdown = CancellationToken::new();
    let (store, store_task) = Store::open(state_dir.join("portwarden.db"));
    // The store stops last, after every record has reached it.
    let store_shutdown = CancellationToken::new();
    let store_done = tokio::spawn(store_task.run(store_shutdown.clone()));
    let bus = EventBus::new();
    let (records, records_rx) = mpsc::channel(RECORD_QUEUE);
    let forwarder = tokio::spawn(forward_records(records_rx, store.clone()));
    let scheduler = Arc::new(Scheduler::new(
        SchedulerSettings {
            max_in_flight,
            listing_max_age: Duration::from_secs(2),
        },
        bus.clone(),
        records,
    ));
    // Read before the first check runs: the first verdicts are compared with it.
    let carried_down = store.carried_down().await.unwrap_or_else(|e| {
        tracing::debug!("no monitor state from before the restart: {e}");
        Default::default()
    });
    // Subscribed before the first check runs, so no event escapes the notifications.
    let (dispatcher, notifications) = notify::Dispatcher::new(notify::DispatcherOptions {
        store: store.clone(),
        bus: bus.clone(),
        lookup: monitor_lookup(&scheduler),
        build: Arc::new(notify::build_notifier),
        settings: loaded.notify,
        host: notify::host_name(),
        carried_down,
    });
    let dispatcher = tokio::spawn(dispatcher.run(shutdown.child_token()));
    // Also subscribed before the first check: a DOWN at start-up gets healed too.
    let (healer, healing) = heal::daemon_engine(
        &scheduler,
        store.clone(),
        &bus,
        loaded.max_concurrent_actions,
        state_dir.clone(),
    );
    let healer = tokio::spawn(healer.run(shutdown.child_token()));
    scheduler.apply(loaded.monitors, loaded.unchanged);
    let metrics_events = tokio::spawn(crate::api::metrics::count_events(
        bus.clone(),
        shutdown.child_token(),
    ));
    // Zero-config watches the listeners that appear later too, as those found at start.
    let adopt =
        matches!(source, Source::ZeroConfig).then(|| watch::Adopt(Arc::downgrade(&scheduler)));
    let watcher = tokio::spawn(watch::run(
        loaded.listing,
        watch::PERIOD,
        bus.clone(),
        adopt,
        shutdown.child_token(),
    ));
    let firewall_status = guard::SharedStatus::default();
    let pause_file = state_dir.join(guard::PAUSE_FILE);
    let mut firewall_guard = GuardTask::start(
        loaded.firewall,
        source.guard_mode(),
        &pause_file,
        &bus,
        &firewall_status,
        &shutdown,
    );
    let api_state = ApiShared {
        scheduler: scheduler.clone(),
        store: store.clone(),
        started: SystemTime::now(),
        mode: source.describe(),
        max_in_flight,
        file_limit,
        firewall: firewall_status.clone(),
        notifications: notifications.clone(),
        healing,
        bus: bus.clone(),
        auth: api_auth,
        db_path: state_dir.join("portwarden.db"),
        stop: shutdown.child_token(),
        probe_modules: probe_modules.clone(),
        listeners: crate::api::listeners::cache(),
        sse_keep_alive: std::time::Duration::ZERO,
    };
    let api_shutdown = shutdown.child_token();
    let api_task = tokio::spawn(api::serve(
        api_listener,
        api_tls,
        loaded_http_limits,
        api_state,
        api_shutdown,
    ));
    let watchdog = spawn_watchdog(shutdown.child_token());
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

    loop {
        tokio::select! {
            _ = hangup.recv() => {
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Reloading]);
                // The reading runs in the blocking pool; a stop request wins over it.
                let read = tokio::select! {
                    read = read_off_runtime(&source, &scheduler, probe_modules.current()) => read,
                    _ = terminate.recv() => break,
                    _ = interrupt.recv() => break,
                };
                if let Some((settings, notify_settings)) = reload(read, &scheduler, &bus, &probe_modules) {
                    notifications.reload(notify_settings).await;
                    if settings != firewall_guard.settings {
                        tracing::info!("[firewall] changed: restarting the firewall guard");
                        firewall_guard.stop().await;
                        firewall_guard = GuardTask::start(
                            settings,
                            source.guard_mode(),
                            &pause_file,
                            &bus,
                            &firewall_status,
                            &shutdown,
                        );
                    }
                }
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }

    tracing::info!(
        "stopping: letting checks in flight finish (at most {}s)",
        SHUTDOWN_GRACE.as_secs()
    );
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    scheduler.shutdown(SHUTDOWN_GRACE).await;
    shutdown.cancel();
    firewall_guard.stop().await;
    // Before the store stops: the dispatcher's last results go into the outbox.
    // The healing engine lets a running action finish (briefly) and records it.
    let _ = tokio::join!(watcher, api_task, dispatcher, healer, metrics_events);
    // The last holders of the record sender are gone with the scheduler (and any check
    // still past the grace ends by its own deadline): the forwarder drains and ends.
    drop(scheduler);
    if tokio::time::timeout(SHUTDOWN_GRACE, forwarder)
        .await
        .is_err()
    {
        tracing::warn!("results of checks still running at shutdown were not stored");
    }
    // The store task drains its queue and writes everything before it returns.
    store_shutdown.cancel();
    let _ = store_done.await;
    if let Some(w) = watchdog {
        w.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// The running firewall guard, restarted when a reload changes `[firewall]`.
struct GuardTask {
    settings: config::FirewallSettings,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl GuardTask {
    fn start(
        settings: config::FirewallSettings,
        mode: guard::GuardMode,
        pause_file: &Path,
        bus: &EventBus,
        status: &guard::SharedStatus,
        shutdown: &CancellationToken,
    ) -> Self {
        let stop = shutdown.child_token();
        let task = tokio::spawn(guard::run(
            settings.clone(),
            mode,
            pause_file.to_path_buf(),
            bus.clone(),
            status.clone(),
            stop.clone(),
        ));
        Self {
            settings,
            stop,
            task,
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Reads and checks the config for a reload in the blocking pool, so a slow or hostile file
/// never stalls the runtime (signals, API, checks), and gives up after [`RELOAD_LIMIT`].
///
/// Monitors that already run unchanged come back as names only, so the reload never holds a
/// second copy of every monitor. Weak: an abandoned reading must not keep the scheduler (and
/// the record channel it holds) alive past shutdown. `/probe`'s modules are prepared against
/// the `running` ones (a `blackbox.yml` that cannot be read keeps what came from it).
async fn read_off_runtime(
    source: &Source,
    scheduler: &Arc<Scheduler>,
    running_modules: Arc<crate::api::blackbox::Modules>,
) -> anyhow::Result<(Loaded, crate::api::blackbox::Modules)> {
    let source = source.clone();
    let scheduler = Arc::downgrade(scheduler);
    let task = tokio::task::spawn_blocking(move || {
        let running = |name: &str, definition| {
            scheduler
                .upgrade()
                .is_some_and(|s| s.runs(name, definition))
        };
        let loaded = load(&source, &running)?;
        let modules = crate::api::blackbox::prepare(
            loaded.blackbox_config.as_deref(),
            &loaded.probe_modules,
            &running_modules,
        );
        Ok((loaded, modules))
    });
    match tokio::time::timeout(RELOAD_LIMIT, task).await {
        Ok(Ok(read)) => read,
        Ok(Err(e)) => Err(anyhow::anyhow!("reading the config failed: {e}")),
        Err(_) => Err(anyhow::anyhow!(
            "reading the config took more than {}s: abandoned",
            RELOAD_LIMIT.as_secs()
        )),
    }
}

/// SIGHUP: a valid new config replaces the running one (unchanged monitors keep their
/// state); an invalid one is logged and the running one stays. Returns the new `[firewall]`
/// and notifier settings; `/probe` serves the new modules from `probe_modules`.
fn reload(
    read: anyhow::Result<(Loaded, crate::api::blackbox::Modules)>,
    scheduler: &Scheduler,
    bus: &EventBus,
    probe_modules: &crate::api::blackbox::ModuleTable,
) -> Option<(config::FirewallSettings, notify::Settings)> {
    let mut firewall = None;
    match read {
        Ok((loaded, modules)) => {
            probe_modules.replace(modules);
            firewall = Some((loaded.firewall, loaded.notify));
            let monitors = loaded.monitors.len() + loaded.unchanged.len();
            let s = scheduler.apply(loaded.monitors, loaded.unchanged);
            crate::api::metrics::retire(&s.removed_names);
            bus.publish(EventKind::ConfigReloaded {
                monitors,
                added: s.added,
                removed: s.removed,
                changed: s.changed,
            });
        }
        Err(e) => bus.publish(EventKind::ConfigRejected {
            error: format!("{e:#}"),
        }),
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    firewall
}

/// How the notification dispatcher finds a monitor's target, tags and notifiers. Weak: the
/// scheduler must go away at shutdown (it holds the record channel the store drains).
fn monitor_lookup(scheduler: &Arc<Scheduler>) -> crate::notify::items::Lookup {
    let scheduler = Arc::downgrade(scheduler);
    Arc::new(move |name: &str| {
        let m = scheduler.upgrade()?.monitor(name)?;
        Some(notify::MonitorInfo {
            target: m.probe.spec().target.to_string(),
            tags: m.tags.clone(),
            notify: m.notify.clone(),
        })
    })
}

/// Moves scheduler records into the store, in order.
async fn forward_records(mut rx: mpsc::Receiver<Record>, store: Store) {
    while let Some(record) = rx.recv().await {
        match record {
            Record::Check {
                monitor,
                at,
                status,
                reason,
                duration,
            } => {
                crate::api::metrics::observe_check(&monitor, status, duration);
                if reason == Some(portwarden_probe::Reason::LocalResources) {
                    crate::api::metrics::count_local_resource_error();
                }
                store
                    .record(CheckRecord {
                        monitor,
                        at,
                        status,
                        reason,
                        duration,
                    })
                    .await;
            }
            Record::Transition {
                monitor,
                at,
                from,
                to,
                reason,
                message,
            } => {
                store
                    .transition(TransitionRecord {
                        monitor,
                        at,
                        from,
                        to,
                        reason,
                        message,
                    })
                    .await;
            }
        }
    }
}

/// Pings systemd's watchdog at half its period, when the unit asks for one.
fn spawn_watchdog(shutdown: CancellationToken) -> Option<tokio::task::JoinHandle<()>> {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return None;
    }
    let period = Duration::from_micros(usec) / 2;
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(period) => {
                    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
                }
            }
        }
    }))
}

/// Descriptors the daemon holds besides one socket per check in flight: the store (database,
/// WAL, shared memory), the API's listener and connections, notifier and healing connections
/// and pipes, the runtime, listings of `/proc`.
pub(crate) const FILE_RESERVE: u64 = 64;

/// The open-file limit the daemon runs with, against what its checks need (issue 14: under a
/// low limit, "Too many open files" was taken for the targets' outage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimit {
    /// The soft `RLIMIT_NOFILE` after start-up; `None` when unlimited.
    pub limit: Option<u64>,
}

impl FileLimit {
    /// Descriptors needed: one per check in flight (at most one per monitor) plus the reserve.
    pub fn needed(max_in_flight: usize, monitors: usize) -> u64 {
        u64::try_from(max_in_flight.min(monitors))
            .unwrap_or(u64::MAX)
            .saturating_add(FILE_RESERVE)
    }

    /// Whether the limit is below what the checks need.
    pub fn too_low(self, needed: u64) -> bool {
        self.limit.is_some_and(|l| l < needed)
    }
}

/// Descriptors an async runtime needs before any check: tokio's drivers (epoll, its waker,
/// the signal pipe pair) and the standard streams. Below this tokio panics while building
/// the runtime instead of returning an error.
pub(crate) const RUNTIME_FILES: u64 = 16;

/// Raises the soft open-file limit (to the hard one) and refuses, with a message for a
/// person, a limit below [`RUNTIME_FILES`]: call before building a runtime.
pub(crate) fn files_for_runtime() -> Result<FileLimit, String> {
    let files = raise_file_limit();
    if files.too_low(RUNTIME_FILES) {
        return Err(format!(
            "the open file limit is {}; portwarden needs at least {RUNTIME_FILES} (raise `ulimit -n`)",
            files.limit.unwrap_or(0)
        ));
    }
    Ok(files)
}

/// Each check holds a socket: raise the soft open-file limit to the hard one; returns the
/// soft limit in force afterwards.
pub(crate) fn raise_file_limit() -> FileLimit {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
    FileLimit {
        limit: getrlimit(Resource::Nofile).current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_files_needed_is_one_per_check_in_flight_plus_the_reserve() {
        // Bounded by max_in_flight, and by the monitors when there are fewer.
        assert_eq!(FileLimit::needed(1024, 1000), 1000 + FILE_RESERVE);
        assert_eq!(FileLimit::needed(256, 1000), 256 + FILE_RESERVE);
        // Issue 14's host: ulimit -n 256 with 1,000 monitors is too low.
        let needed = FileLimit::needed(1024, 1000);
        assert!(FileLimit { limit: Some(256) }.too_low(needed));
        assert!(!FileLimit { limit: Some(65536) }.too_low(needed));
        assert!(!FileLimit { limit: None }.too_low(needed));
    }
}
