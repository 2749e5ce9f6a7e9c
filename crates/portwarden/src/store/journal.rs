//! The journal: state changes held in memory while the database is failed, so an outage that
//! starts and ends while the disk is full still becomes an incident with its real times.
//!
//! Check results may be lost in a failure (they are counted); state changes may not, because
//! incidents and exact uptime are made of them. The store task keeps every state change it
//! cannot write here, in arrival order, and writes them first, in order, when the database
//! opens again, before anything that arrived later.
//!
//! The journal is bounded (`journal_max` in the store's options). When it is full the
//! *oldest* change goes: the newest ones decide each monitor's current state and its open
//! incident, which drive what a restart announces; an early change lost costs at most one
//! incident's boundary.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;

use super::db::cut;
use super::health::HealthCell;
use super::record::TransitionRecord;

/// State changes waiting for the database, oldest first.
#[derive(Debug)]
pub(crate) struct Journal {
    entries: VecDeque<TransitionRecord>,
    max: usize,
    /// Longest message kept (the store keeps no more of it either).
    message_bytes: usize,
    /// Whether the current failure already logged that the journal overflowed.
    overflow_reported: bool,
}

impl Journal {
    pub(crate) fn new(max: usize, message_bytes: usize) -> Journal {
        Journal {
            entries: VecDeque::new(),
            max: max.max(1),
            message_bytes,
            overflow_reported: false,
        }
    }

    /// Keeps `t` for later; when full, drops (and counts) the oldest change.
    pub(crate) fn push(&mut self, mut t: TransitionRecord, health: &HealthCell) {
        let kept = cut(&t.message, self.message_bytes).len();
        t.message.truncate(kept);
        if self.entries.len() >= self.max {
            self.entries.pop_front();
            health.journal_dropped.fetch_add(1, Relaxed);
            health.add_dropped(1);
            if !self.overflow_reported {
                self.overflow_reported = true;
                tracing::error!(
                    max = self.max,
                    "history store journal full ({} state changes held while the database is \
                     failed): the oldest are dropped from now on",
                    self.max
                );
            }
        } else {
            health.journal_pending.fetch_add(1, Relaxed);
        }
        health.journaled.fetch_add(1, Relaxed);
        self.entries.push_back(t);
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The oldest `n` changes (or fewer), left in place until [`Journal::written`].
    pub(crate) fn oldest(&self, n: usize) -> Vec<TransitionRecord> {
        self.entries.iter().take(n).cloned().collect()
    }

    /// The oldest `n` changes are in the database now.
    pub(crate) fn written(&mut self, n: usize, health: &HealthCell) {
        let n = n.min(self.entries.len());
        self.entries.drain(..n);
        let n = n as u64;
        health.journal_pending.fetch_sub(n, Relaxed);
        health.journal_written.fetch_add(n, Relaxed);
        health.transitions_written.fetch_add(n, Relaxed);
        if self.entries.is_empty() {
            self.overflow_reported = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::state::Status;

    fn change(n: u64) -> TransitionRecord {
        TransitionRecord {
            monitor: Arc::from("web"),
            at: UNIX_EPOCH + Duration::from_secs(n),
            from: Status::Ok,
            to: Status::Down,
            reason: None,
            message: "ñ".repeat(100),
        }
    }

    fn seconds(ts: &[TransitionRecord]) -> Vec<u64> {
        ts.iter()
            .map(|t| t.at.duration_since(UNIX_EPOCH).unwrap().as_secs())
            .collect()
    }

    #[test]
    fn keeps_the_newest_when_full_and_counts_the_rest() {
        let health = HealthCell::new();
        let mut j = Journal::new(3, 9);
        for n in 1..=5 {
            j.push(change(n), &health);
        }
        assert_eq!(seconds(&j.oldest(10)), [3, 4, 5]);
        // Cut like the store cuts it, at a character boundary.
        assert_eq!(j.oldest(1)[0].message, "ññññ");
        let snap = health.snapshot(std::path::Path::new("h.db"));
        assert_eq!(
            (
                snap.journaled,
                snap.journal_pending,
                snap.journal_dropped,
                snap.dropped
            ),
            (5, 3, 2, 2)
        );
        j.written(2, &health);
        assert_eq!(seconds(&j.oldest(10)), [5]);
        let snap = health.snapshot(std::path::Path::new("h.db"));
        assert_eq!((snap.journal_pending, snap.journal_written), (1, 2));
        assert_eq!(snap.transitions_written, 2);
    }
}
