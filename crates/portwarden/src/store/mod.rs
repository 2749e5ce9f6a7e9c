//! The history store: check results, state changes and incidents in SQLite, bounded in size,
//! never in the way of monitoring.
//!
//! Data enters through a [`Store`] handle (cheap to clone): [`Store::record`] and
//! [`Store::transition`] queue messages on a bounded channel; the [`StoreTask`] (one task,
//! owner of the only writing connection) commits them in batches, one transaction each
//! ([`writer`]). Data leaves through [`Store::history`], [`Store::incidents`],
//! [`Store::uptime_24h`] and [`Store::stats`], which read over a separate read-only connection
//! ([`query`]).
//!
//! Layout, from the bottom:
//! - [`schema`]: tables and `user_version` migrations; [`open`]: connections, corruption.
//! - [`code`]: states as stored; [`clock`]: time as stored.
//! - [`monitors`], [`rollup`], [`retention`], [`uptime`]: one concern each of the data.
//! - [`db`]: a batch applied to the database; [`writer`]: the task around it.
//! - [`health`]: what the store reports about itself; [`error`]: what queries fail with.
//!
//! Uptime is computed from state changes (exact), not from sampled results; rollups and a
//! short raw window serve the graphs. A monitor checked every 10 s takes well under 256 KiB
//! at steady state; see [`retention`] for the tiers.
//!
//! A failing database never stops monitoring: the store reports `failed` in
//! [`Store::health`], drops (and counts) the check results it cannot write, keeps the state
//! changes in a bounded in-memory [`journal`] that it writes first when the database opens
//! again (so incidents during the failure keep their real times), retries every 30 s, and
//! moves a corrupt file aside to start afresh.

mod actions;
mod clock;
mod code;
mod db;
mod error;
mod health;
mod incidents;
mod journal;
mod monitors;
mod open;
mod options;
mod outbox;
mod query;
mod record;
mod retention;
mod rollup;
mod schema;
mod uptime;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use actions::{read_file as read_actions, ActionRecord};
pub use error::StoreError;
pub use health::{StoreHealth, StoreState};
pub use incidents::{Incident, IncidentQuery};
pub use outbox::{
    kind_name, Carried, Delivered, NotifierQueue, OutboxRow, Reminded, ReminderMark, RowState,
    RowUpdate, Silence, SilenceFile,
};
#[expect(
    unused_imports,
    reason = "the store's query types, named by its tests only"
)]
pub use query::{HistoryIncident, HistoryResult, MonitorHistory, StoreStats, Uptime};
pub use record::{CheckRecord, TransitionRecord};

use clock::Clock;
use health::HealthCell;
pub(crate) use options::Options;
use outbox::OutboxOp;
use writer::Msg;

/// What the handles and the task share.
#[derive(Debug)]
struct Shared {
    path: PathBuf,
    health: HealthCell,
    reader: Mutex<Option<query::Reader>>,
    clock: Clock,
}

/// A handle on the history store. Clones share one queue and one health record.
#[derive(Debug, Clone)]
pub struct Store {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
    send_timeout: std::time::Duration,
}

/// The task that owns the database connection; run it with [`StoreTask::run`].
#[derive(Debug)]
pub struct StoreTask {
    task: writer::Task,
}

impl Store {
    /// Opens or creates `path` (parent dirs created). Never fails: problems show in
    /// [`Store::health`]. The database is opened when the task starts running.
    pub fn open(path: PathBuf) -> (Store, StoreTask) {
        Store::open_with(path, Options::default())
    }

    pub(crate) fn open_with(path: PathBuf, opts: Options) -> (Store, StoreTask) {
        let (tx, rx) = mpsc::channel(opts.queue.max(1));
        let shared = Arc::new(Shared {
            path,
            health: HealthCell::new(),
            reader: Mutex::new(None),
            clock: opts.clock.clone(),
        });
        let store = Store {
            tx,
            shared: shared.clone(),
            send_timeout: opts.send_timeout,
        };
        (
            store,
            StoreTask {
                task: writer::Task::new(rx, shared, opts),
            },
        )
    }

    /// Queues one check result. Waits while the queue is full (backpressure), but never
    /// longer than a couple of seconds; a result that cannot be queued, or arrives while the
    /// database is failed, is dropped and counted.
    pub async fn record(&self, r: CheckRecord) {
        if self.shared.health.is_failed() {
            self.shared.health.add_dropped(1);
            return;
        }
        self.send(Msg::Record(r)).await;
    }

    /// Queues one state change, also while the database is failed: the task keeps it in its
    /// journal then and writes it when the database is back. Otherwise as [`Store::record`].
    pub async fn transition(&self, t: TransitionRecord) {
        self.send(Msg::Transition(t)).await;
    }

    async fn send(&self, msg: Msg) {
        if self.tx.send_timeout(msg, self.send_timeout).await.is_err() {
            self.shared.health.add_dropped(1);
        }
    }

    /// Waits until everything queued so far is committed, rollups of the current buckets
    /// included (a barrier for tests; at shutdown the task drains by itself). Returns at once
    /// if the task is gone.
    #[cfg_attr(not(test), expect(dead_code, reason = "a barrier for tests"))]
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// The store's health, without waiting on the task.
    pub fn health(&self) -> StoreHealth {
        self.shared.health.snapshot(&self.shared.path)
    }

    /// Recent results (newest first, at most `limit`), uptime over 24 h / 7 d / 30 d / 365 d,
    /// and recent incidents (newest first, at most `limit`) of one monitor. A monitor never
    /// recorded has an empty history.
    pub async fn history(&self, monitor: &str, limit: usize) -> Result<MonitorHistory, StoreError> {
        let shared = self.shared.clone();
        let monitor = monitor.to_string();
        tokio::task::spawn_blocking(move || {
            let now = shared.clock.now_ms();
            query::with_reader(&shared, |c| query::history(c, &monitor, limit, now))
        })
        .await?
    }

    /// Uptime over the last 24 hours of every monitor observed in them (for the list).
    pub async fn uptime_24h(&self) -> Result<HashMap<String, f64>, StoreError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let now = shared.clock.now_ms();
            query::with_reader(&shared, |c| query::uptime_24h(c, now))
        })
        .await?
    }

    /// Monitors DOWN when the daemon last ran, by the store's open incidents and what the
    /// notifications told (see [`outbox::carried`]): read at start-up, before the first
    /// check, so a restart neither repeats a DOWN, nor forgets a recovery or a DOWN that was
    /// recorded but not yet queued. Waits (at most 10 s) for the store task to open the
    /// database first.
    pub async fn carried_down(&self) -> Result<HashMap<String, Carried>, StoreError> {
        let started = std::time::Instant::now();
        while self.shared.health.state() == StoreState::Starting
            && started.elapsed() < std::time::Duration::from_secs(10)
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || query::with_reader(&shared, outbox::carried)).await?
    }

    /// Incidents across monitors (or of one), newest first, at most `q.limit`.
    pub async fn incidents(&self, q: IncidentQuery) -> Result<Vec<Incident>, StoreError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let now = shared.clock.now_ms();
            query::with_reader(&shared, |c| incidents::recent(c, &q, now))
        })
        .await?
    }

    /// Database size and row counts per table. Scans the database: not for hot paths.
    pub async fn stats(&self) -> Result<StoreStats, StoreError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            query::with_reader(&shared, |c| query::stats(c, &shared))
        })
        .await?
    }
}

/// The notification outbox (see [`outbox`]): changes are answered once committed, so the
/// dispatcher sends a notification only after it is durable; reads wait for nothing.
impl Store {
    /// Writes new outbox rows and the reminder times they record; `Ok` once committed.
    pub async fn outbox_insert(
        &self,
        rows: Vec<OutboxRow>,
        reminders: Vec<ReminderMark>,
    ) -> Result<(), String> {
        self.outbox(OutboxOp::Insert { rows, reminders }).await
    }

    /// When each notifier last reminded about each monitor (for the dispatcher at start-up).
    pub async fn reminders(&self) -> Result<Reminded, StoreError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || query::with_reader(&shared, outbox::load_reminders))
            .await?
    }

    /// Deletes delivered rows and logs the delivery; `Ok` once committed.
    pub async fn outbox_delivered(&self, seqs: Vec<i64>, log: Delivered) -> Result<(), String> {
        self.outbox(OutboxOp::Delivered { seqs, log }).await
    }

    /// Records attempts, next attempt times and states; `Ok` once committed.
    pub async fn outbox_update(&self, updates: Vec<RowUpdate>) -> Result<(), String> {
        self.outbox(OutboxOp::Update(updates)).await
    }

    async fn outbox(&self, op: OutboxOp) -> Result<(), String> {
        if self.shared.health.is_failed() {
            let why = self.health().error.unwrap_or_else(|| "failed".into());
            return Err(format!("history store failed: {why}"));
        }
        let (ack, done) = oneshot::channel();
        self.tx
            .send_timeout(Msg::Outbox(op, ack), self.send_timeout)
            .await
            .map_err(|_| "history store queue full or stopped".to_string())?;
        done.await
            .map_err(|_| "history store stopped before committing".to_string())?
    }

    /// Every outbox row, in delivery order (for the dispatcher at start-up).
    pub async fn outbox_rows(&self) -> Result<Vec<OutboxRow>, StoreError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || query::with_reader(&shared, outbox::load)).await?
    }

    /// Pending, failing and recently delivered notifications per notifier (at most `limit`
    /// of each).
    pub async fn notifications(
        &self,
        limit: usize,
    ) -> Result<std::collections::BTreeMap<String, NotifierQueue>, StoreError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            query::with_reader(&shared, |c| outbox::overview(c, limit))
        })
        .await?
    }

    /// Silences in force now (`portwarden silence add` writes them into the same file).
    pub async fn silences(&self) -> Result<Vec<Silence>, StoreError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let now = shared.clock.now_ms();
            query::with_reader(&shared, |c| Ok(outbox::active_silences(c, now)?))
        })
        .await?
    }
}

/// The healing engine's attempts (see [`actions`]).
impl Store {
    /// Writes one attempt; `Ok` once committed.
    pub async fn record_action(&self, row: ActionRecord) -> Result<(), String> {
        if self.shared.health.is_failed() {
            let why = self.health().error.unwrap_or_else(|| "failed".into());
            return Err(format!("history store failed: {why}"));
        }
        let (ack, done) = oneshot::channel();
        self.tx
            .send_timeout(Msg::Action(row, ack), self.send_timeout)
            .await
            .map_err(|_| "history store queue full or stopped".to_string())?;
        done.await
            .map_err(|_| "history store stopped before committing".to_string())?
    }

    /// The newest attempts first, of one monitor or all, at most `limit`.
    pub async fn actions(
        &self,
        monitor: Option<String>,
        limit: usize,
    ) -> Result<Vec<ActionRecord>, StoreError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            query::with_reader(&shared, |c| actions::recent(c, monitor.as_deref(), limit))
        })
        .await?
    }
}

impl StoreTask {
    /// Runs until `shutdown` is cancelled (or every [`Store`] handle is dropped), then commits
    /// everything still queued, writes the rollups in memory and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        self.task.run(shutdown).await;
    }
}
