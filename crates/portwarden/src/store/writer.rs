//! The store task: receives messages from the bounded queue, gathers them into batches (up
//! to `batch_max` messages or `batch_wait` after the first), and commits each batch in one
//! transaction on the blocking pool, so SQLite never stalls the runtime's workers. It also
//! runs housekeeping, and keeps the store alive through failures: a corrupt file is moved
//! aside and replaced at once; any other failure (unwritable directory, full disk, lock)
//! marks the store failed, drops and counts the check results that arrive, keeps the state
//! changes in the [`Journal`] (those of the batch that failed too), and retries every
//! `retry_every`. A reopened database gets the journal first, before anything newer.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::db::{file_bytes, Db, Item};
use super::journal::Journal;
use super::open;
use super::options::Options;
use super::record::{CheckRecord, TransitionRecord};
use super::Shared;

/// A message to the store task.
#[derive(Debug)]
pub(crate) enum Msg {
    Record(CheckRecord),
    Transition(TransitionRecord),
    /// Answered once everything queued before it is committed (or dropped, while failed).
    Flush(oneshot::Sender<()>),
    /// A change to the notification outbox, answered once committed (or with why not).
    Outbox(super::outbox::OutboxOp, oneshot::Sender<Result<(), String>>),
    /// An attempt of the healing engine, answered once committed (or with why not).
    Action(
        super::actions::ActionRecord,
        oneshot::Sender<Result<(), String>>,
    ),
}

/// The state of the store task between batches.
#[derive(Debug)]
pub(crate) struct Task {
    rx: mpsc::Receiver<Msg>,
    shared: Arc<Shared>,
    opts: Options,
    db: Option<Db>,
    /// Whether a database was opened by this process already (the first open marks
    /// monitors unobserved across the time the daemon was not running).
    opened_once: bool,
    next_retry: Instant,
    /// State changes waiting for the database while it is failed.
    journal: Journal,
}

impl Task {
    pub(crate) fn new(rx: mpsc::Receiver<Msg>, shared: Arc<Shared>, opts: Options) -> Task {
        let journal = Journal::new(opts.journal_max, opts.retention.message_bytes);
        Task {
            rx,
            shared,
            journal,
            opts,
            db: None,
            opened_once: false,
            next_retry: Instant::now(),
        }
    }

    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        self.open().await;
        let mut sweep = tokio::time::interval(self.opts.sweep_every);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        sweep.reset();
        let max = self.opts.batch_max.max(1);
        let mut batch: Vec<Msg> = Vec::with_capacity(max);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = sweep.tick() => {
                    self.housekeeping().await;
                    continue;
                }
                n = self.rx.recv_many(&mut batch, max) => if n == 0 { break },
            }
            let deadline = Instant::now() + self.opts.batch_wait;
            while batch.len() < max
                && !batch
                    .iter()
                    .any(|m| matches!(m, Msg::Flush(_) | Msg::Outbox(..) | Msg::Action(..)))
            {
                let room = max - batch.len();
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break,
                    _ = sleep_until(deadline) => break,
                    n = self.rx.recv_many(&mut batch, room) => if n == 0 { break },
                }
            }
            self.commit(std::mem::take(&mut batch)).await;
        }
        // Stop taking new messages (senders now fail fast and count a drop), then commit
        // everything already queued.
        self.rx.close();
        while self.rx.recv_many(&mut batch, max).await > 0 {
            self.commit(std::mem::take(&mut batch)).await;
        }
        if self.db.is_none() && !self.journal.is_empty() {
            // One last try: the administrator may have made room since the last retry.
            self.open().await;
        }
        if !self.journal.is_empty() {
            tracing::error!(
                changes = self.journal.len(),
                "history store still failed at shutdown: {} state changes held in memory are \
                 lost",
                self.journal.len()
            );
        }
        if let Some(db) = self.db.take() {
            let now = self.opts.clock.now_ms();
            match tokio::task::spawn_blocking(move || db.finish(now)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "history store: final write failed"),
                Err(e) => tracing::warn!(error = %e, "history store: final write did not finish"),
            }
        }
    }

    /// Opens the database (moving a corrupt one aside first), writes the journal into it, and
    /// records the outcome: the store is ok again only once the journal is written.
    async fn open(&mut self) {
        let path = self.shared.path.clone();
        let opts = self.opts.clone();
        let after_start = !self.opened_once;
        let outcome =
            tokio::task::spawn_blocking(move || match Db::open(&path, &opts, after_start) {
                Err(e) if e.is_corrupt() => {
                    let moved = open::move_aside(&path, std::time::SystemTime::now());
                    let reopened = Db::open(&path, &opts, after_start);
                    (reopened, Some((e, moved)))
                }
                other => (other, None),
            })
            .await;
        let (result, moved) = match outcome {
            Ok(v) => v,
            Err(e) => {
                self.failed(format!("opening did not finish: {e}"));
                return;
            }
        };
        if let Some((why, moved)) = moved {
            match moved {
                Ok(to) => {
                    tracing::error!(error = %why, moved_to = %to.display(),
                        "history database corrupt; moved aside, starting a new one");
                    self.shared.health.set_moved_aside(&to);
                }
                Err(e) => tracing::error!(error = %why, move_error = %e,
                    "history database corrupt and cannot be moved aside"),
            }
        }
        match result {
            Ok(db) => {
                self.opened_once = true;
                let Some(db) = self.write_journal(db).await else {
                    return;
                };
                self.shared
                    .health
                    .db_bytes
                    .store(db.file_bytes(), std::sync::atomic::Ordering::Relaxed);
                self.db = Some(db);
                self.shared.health.set_ok();
                tracing::info!(path = %self.shared.path.display(), "history store open");
            }
            Err(e) => self.failed(e.to_string()),
        }
    }

    /// Writes the journal into a freshly opened database, oldest first, `batch_max` changes
    /// per transaction. Returns the database, or `None` (store failed again) when a write
    /// fails; what was not written stays in the journal for the next try.
    async fn write_journal(&mut self, mut db: Db) -> Option<Db> {
        if self.journal.is_empty() {
            return Some(db);
        }
        let total = self.journal.len();
        let max = self.opts.batch_max.max(1);
        while !self.journal.is_empty() {
            let items: Vec<Item> = self
                .journal
                .oldest(max)
                .into_iter()
                .map(Item::Transition)
                .collect();
            let n = items.len();
            let now = self.opts.clock.now_ms();
            let done = tokio::task::spawn_blocking(move || {
                let r = db.apply(&items, false, now);
                (db, r)
            })
            .await;
            match done {
                Ok((back, Ok(()))) => {
                    self.journal.written(n, &self.shared.health);
                    db = back;
                }
                Ok((_, Err(e))) => {
                    self.failed(format!("cannot write the journal: {e}"));
                    return None;
                }
                Err(e) => {
                    self.failed(format!("writing the journal did not finish: {e}"));
                    return None;
                }
            }
        }
        let lost = self
            .shared
            .health
            .journal_dropped
            .load(std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            written = total,
            lost_since_start = lost,
            "history store back: {total} state changes held while it was failed are written"
        );
        Some(db)
    }

    fn failed(&mut self, error: String) {
        if !self.shared.health.is_failed() {
            tracing::error!(%error,
                "history store failed; dropping check results and holding state changes in \
                 memory until it recovers");
        }
        self.db = None;
        self.shared.health.set_failed(error);
        self.next_retry = Instant::now() + self.opts.retry_every;
    }

    async fn commit(&mut self, batch: Vec<Msg>) {
        let mut flushes = Vec::new();
        let mut acks = Vec::new();
        let mut items = Vec::with_capacity(batch.len());
        let (mut records, mut transitions) = (0u64, 0u64);
        for m in batch {
            match m {
                Msg::Record(r) => {
                    records += 1;
                    items.push(Item::Record(r));
                }
                Msg::Transition(t) => {
                    transitions += 1;
                    items.push(Item::Transition(t));
                }
                Msg::Flush(tx) => flushes.push(tx),
                Msg::Outbox(op, ack) => {
                    items.push(Item::Outbox(op));
                    acks.push(ack);
                }
                Msg::Action(row, ack) => {
                    items.push(Item::Action(row));
                    acks.push(ack);
                }
            }
        }
        // Outbox changes learn whether they are durable: the dispatcher sends only then.
        let mut committed = Err("the history store is failed".to_string());
        match self.db.take() {
            None => self.keep_transitions(items, records),
            Some(mut db) => {
                let persist = !flushes.is_empty();
                let now = self.opts.clock.now_ms();
                let done = tokio::task::spawn_blocking(move || {
                    let r = db.apply(&items, persist, now);
                    (db, r, items)
                })
                .await;
                let health = &self.shared.health;
                match done {
                    Ok((db, Ok(()), _)) => {
                        committed = Ok(());
                        use std::sync::atomic::Ordering::Relaxed;
                        health.records_written.fetch_add(records, Relaxed);
                        health.transitions_written.fetch_add(transitions, Relaxed);
                        health
                            .db_bytes
                            .store(file_bytes(&self.shared.path), Relaxed);
                        self.db = Some(db);
                    }
                    Ok((db, Err(e), items)) => {
                        committed = Err(format!("cannot write: {e}"));
                        drop(db);
                        // Before reopening: a reopened database gets them first.
                        self.keep_transitions(items, records);
                        if open::is_corrupt(&e) {
                            tracing::error!(error = %e, "history database corrupt while writing");
                            self.open().await;
                        } else {
                            self.failed(format!("cannot write: {e}"));
                        }
                    }
                    Err(e) => {
                        // The batch went down with the blocking task: nothing to keep.
                        health.add_dropped(records + transitions);
                        self.failed(format!("write did not finish: {e}"));
                    }
                }
            }
        }
        for ack in acks {
            let _ = ack.send(committed.clone());
        }
        for f in flushes {
            let _ = f.send(());
        }
    }

    /// The database cannot take `items`: their state changes go into the journal, their
    /// `records` check results are dropped and counted (outbox and action changes are
    /// answered with the failure by the caller).
    fn keep_transitions(&mut self, items: Vec<Item>, records: u64) {
        self.shared.health.add_dropped(records);
        for item in items {
            if let Item::Transition(t) = item {
                self.journal.push(t, &self.shared.health);
            }
        }
    }

    async fn housekeeping(&mut self) {
        let Some(mut db) = self.db.take() else {
            if Instant::now() >= self.next_retry {
                self.open().await;
                if self.db.is_none() {
                    self.next_retry = Instant::now() + self.opts.retry_every;
                }
            }
            return;
        };
        let now = self.opts.clock.now_ms();
        let done = tokio::task::spawn_blocking(move || {
            let r = db.sweep(now);
            let bytes = db.file_bytes();
            (db, r, bytes)
        })
        .await;
        match done {
            Ok((db, Ok(()), bytes)) => {
                self.shared
                    .health
                    .db_bytes
                    .store(bytes, std::sync::atomic::Ordering::Relaxed);
                self.db = Some(db);
            }
            Ok((db, Err(e), _)) => {
                drop(db);
                if open::is_corrupt(&e) {
                    self.open().await;
                } else {
                    self.failed(format!("housekeeping failed: {e}"));
                }
            }
            Err(e) => self.failed(format!("housekeeping did not finish: {e}")),
        }
        if self.db.is_none() {
            self.shared.health.db_bytes.store(
                file_bytes(&self.shared.path),
                std::sync::atomic::Ordering::Relaxed,
            );
        }
    }
}
