//! How the store is doing, shared between the store task (which writes it) and every
//! [`super::Store`] handle (which reads it without waiting on the task).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

/// Whether the database is usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StoreState {
    /// The store task has not opened the database yet.
    Starting,
    Ok,
    /// The database could not be opened or written; results are dropped and state changes
    /// journaled in memory until a reopen works.
    Failed,
}

/// A snapshot of the store's health, for `/api/v1/…` and `portwarden status`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoreHealth {
    pub state: StoreState,
    /// The last error, while failed.
    pub error: Option<String>,
    /// The database file.
    pub path: String,
    /// Check results committed since the daemon started.
    pub records_written: u64,
    /// State changes committed since the daemon started.
    pub transitions_written: u64,
    /// Results and state changes lost since the daemon started (database failed, queue stuck,
    /// journal full). State changes are lost only when the journal is full.
    pub dropped: u64,
    /// State changes kept in memory since the daemon started because the database was failed
    /// (written when it opens again).
    pub journaled: u64,
    /// State changes held in memory now, waiting for the database.
    pub journal_pending: u64,
    /// Journaled state changes written once the database opened again.
    pub journal_written: u64,
    /// Journaled state changes lost because the journal was full (the oldest go first); also
    /// counted in `dropped`.
    pub journal_dropped: u64,
    /// Size of the database and its write-ahead log, in bytes, as of the last housekeeping.
    pub db_bytes: u64,
    /// Where the last corrupt database was moved, if one was.
    pub moved_aside: Option<String>,
}

#[derive(Debug)]
struct Text {
    state: StoreState,
    error: Option<String>,
    moved_aside: Option<String>,
}

/// The live counters behind [`StoreHealth`].
#[derive(Debug)]
pub(crate) struct HealthCell {
    text: Mutex<Text>,
    /// Mirrors `state == Failed` so `record` can drop without taking the lock.
    failed: AtomicBool,
    /// Bumped by each successful open, so readers know to reopen their connection.
    generation: AtomicU64,
    pub(crate) records_written: AtomicU64,
    pub(crate) transitions_written: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) journaled: AtomicU64,
    pub(crate) journal_pending: AtomicU64,
    pub(crate) journal_written: AtomicU64,
    pub(crate) journal_dropped: AtomicU64,
    pub(crate) db_bytes: AtomicU64,
}

impl HealthCell {
    pub(crate) fn new() -> HealthCell {
        HealthCell {
            text: Mutex::new(Text {
                state: StoreState::Starting,
                error: None,
                moved_aside: None,
            }),
            failed: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            records_written: AtomicU64::new(0),
            transitions_written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            journaled: AtomicU64::new(0),
            journal_pending: AtomicU64::new(0),
            journal_written: AtomicU64::new(0),
            journal_dropped: AtomicU64::new(0),
            db_bytes: AtomicU64::new(0),
        }
    }

    fn text(&self) -> std::sync::MutexGuard<'_, Text> {
        // The guarded data is plain values, valid even if a holder panicked.
        self.text.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The database was (re)opened.
    pub(crate) fn set_ok(&self) {
        let mut t = self.text();
        t.state = StoreState::Ok;
        t.error = None;
        self.failed.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The database is unusable for now.
    pub(crate) fn set_failed(&self, error: String) {
        let mut t = self.text();
        t.state = StoreState::Failed;
        t.error = Some(error);
        self.failed.store(true, Ordering::SeqCst);
    }

    pub(crate) fn set_moved_aside(&self, to: &Path) {
        self.text().moved_aside = Some(to.display().to_string());
    }

    pub(crate) fn is_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    pub(crate) fn state(&self) -> StoreState {
        self.text().state
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub(crate) fn add_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, path: &Path) -> StoreHealth {
        let t = self.text();
        StoreHealth {
            state: t.state,
            error: t.error.clone(),
            path: path.display().to_string(),
            records_written: self.records_written.load(Ordering::Relaxed),
            transitions_written: self.transitions_written.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            journaled: self.journaled.load(Ordering::Relaxed),
            journal_pending: self.journal_pending.load(Ordering::Relaxed),
            journal_written: self.journal_written.load(Ordering::Relaxed),
            journal_dropped: self.journal_dropped.load(Ordering::Relaxed),
            db_bytes: self.db_bytes.load(Ordering::Relaxed),
            moved_aside: t.moved_aside.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_serializes_with_lowercase_state() {
        let h = HealthCell::new();
        h.set_failed("disk full".into());
        h.add_dropped(3);
        let json = serde_json::to_value(h.snapshot(Path::new("/x/history.db"))).unwrap();
        assert_eq!(json["state"], "failed");
        assert_eq!(json["error"], "disk full");
        assert_eq!(json["dropped"], 3);
        h.set_ok();
        assert!(!h.is_failed());
        assert_eq!(h.generation(), 1);
    }
}
