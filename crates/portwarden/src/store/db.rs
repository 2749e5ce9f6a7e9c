//! The store task's database: one connection, owned by one task, and the in-memory state
//! that goes with it ([`super::monitors`], current rollup buckets). Everything here is
//! blocking; the task runs it on the blocking pool, one batch (one transaction) at a time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{params, Connection};

use super::clock::{floor_to, micros, unix_ms, HOUR_MS};
use super::code;
use super::monitors::{self, Entry};
use super::open::{self, OpenError};
use super::options::{Options, Retention};
use super::record::{CheckRecord, TransitionRecord};
use super::retention;
use super::rollup::Bucket;

/// One message for the database.
#[derive(Debug)]
pub(crate) enum Item {
    Record(CheckRecord),
    Transition(TransitionRecord),
    Outbox(super::outbox::OutboxOp),
    Action(super::actions::ActionRecord),
}

/// The open database and what the task remembers about it.
#[derive(Debug)]
pub(crate) struct Db {
    conn: Connection,
    path: PathBuf,
    monitors: HashMap<Arc<str>, Entry>,
    reasons: HashMap<&'static str, i64>,
    retention: Retention,
    idle_close_ms: i64,
    sweep_monitors: usize,
    /// Names still to visit in the current round of the housekeeping pass.
    sweep_queue: Vec<Arc<str>>,
    /// Tests simulating a year skip the raw rows of results older than this (they would be
    /// deleted within the hour); everything else runs as in production.
    #[cfg(test)]
    pub(crate) raw_from_ms: i64,
}

impl Db {
    /// Opens the database. `after_start` marks every watched monitor unobserved from its
    /// last sign of life, because the daemon was not running in between.
    pub(crate) fn open(path: &Path, opts: &Options, after_start: bool) -> Result<Db, OpenError> {
        let conn = open::open_writer(path)?;
        let sqlite = |source| OpenError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let mut monitors = monitors::load(&conn).map_err(sqlite)?;
        if after_start && monitors.values().any(|e| code::counts_as_observed(e.state)) {
            let tx = conn.unchecked_transaction().map_err(sqlite)?;
            for e in monitors.values_mut() {
                monitors::mark_offline_after_gap(&tx, e).map_err(sqlite)?;
            }
            tx.commit().map_err(sqlite)?;
        }
        let reasons = HashMap::new();
        Ok(Db {
            conn,
            path: path.to_path_buf(),
            monitors,
            reasons,
            retention: opts.retention.clone(),
            idle_close_ms: opts.idle_close_ms,
            sweep_monitors: opts.sweep_monitors,
            sweep_queue: Vec::new(),
            #[cfg(test)]
            raw_from_ms: i64::MIN,
        })
    }

    /// Commits a batch in one transaction. With `persist_buckets`, the rollup buckets in
    /// memory are written too (flush). On error nothing of the batch is kept, and the caller
    /// must drop this `Db` (memory and database may disagree).
    pub(crate) fn apply(
        &mut self,
        items: &[Item],
        persist_buckets: bool,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        let mut w = Writer {
            conn: &tx,
            reasons: &mut self.reasons,
            r: &self.retention,
            now_ms,
            #[cfg(test)]
            raw_from_ms: self.raw_from_ms,
        };
        for item in items {
            match item {
                Item::Record(rec) => {
                    let e = entry(&mut self.monitors, w.conn, &rec.monitor, unix_ms(rec.at))?;
                    w.record(e, rec)?;
                }
                Item::Transition(t) => {
                    let e = entry(&mut self.monitors, w.conn, &t.monitor, unix_ms(t.at))?;
                    w.transition(e, t)?;
                }
                Item::Outbox(op) => super::outbox::apply(w.conn, op)?,
                Item::Action(row) => super::actions::insert(w.conn, row)?,
            }
        }
        if persist_buckets {
            for e in self.monitors.values() {
                if let Some(b) = &e.bucket {
                    b.write(w.conn, e.id)?;
                }
                monitors::save(w.conn, e)?;
            }
        }
        tx.commit()
    }

    /// Housekeeping: writes rollup buckets of monitors that stopped reporting, runs
    /// retention for a slice of the monitors, and returns free pages to the file system when
    /// they are a large part of it. Bounded work per call.
    pub(crate) fn sweep(&mut self, now_ms: i64) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        let mut w = Writer {
            conn: &tx,
            reasons: &mut self.reasons,
            r: &self.retention,
            now_ms,
            #[cfg(test)]
            raw_from_ms: i64::MIN,
        };
        let mut budget = self.sweep_monitors.max(1) * 10;
        for e in self.monitors.values_mut() {
            if budget == 0 {
                break;
            }
            if e.bucket
                .as_ref()
                .is_some_and(|b| b.end_ms() + self.idle_close_ms < now_ms)
            {
                if let Some(b) = e.bucket.take() {
                    w.close(e, &b, now_ms)?;
                    budget -= 1;
                }
            }
        }
        if self.sweep_queue.is_empty() {
            self.sweep_queue = self.monitors.keys().cloned().collect();
        }
        for _ in 0..self.sweep_monitors {
            let Some(name) = self.sweep_queue.pop() else {
                break;
            };
            if let Some(e) = self.monitors.get_mut(&name) {
                if now_ms - e.pruned_ms >= HOUR_MS && e.bucket.is_none() {
                    retention::prune(w.conn, e, now_ms, w.r)?;
                }
            }
        }
        tx.commit()?;
        let pages: i64 = self
            .conn
            .pragma_query_value(None, "page_count", |r| r.get(0))?;
        let free: i64 = self
            .conn
            .pragma_query_value(None, "freelist_count", |r| r.get(0))?;
        if free > 1024 && free * 4 > pages {
            // Bounded: at most 16 MiB of pages per pass.
            self.conn.execute_batch("PRAGMA incremental_vacuum(4096)")?;
        }
        Ok(())
    }

    /// Clean stop: writes the buckets in memory and marks every watched monitor unobserved
    /// from now on (the daemon stops watching).
    pub(crate) fn finish(mut self, now_ms: i64) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        for e in self.monitors.values_mut() {
            if let Some(b) = e.bucket.take() {
                b.write(&tx, e.id)?;
            }
            if code::counts_as_observed(e.state) {
                let at = now_ms.max(e.last_change_ms);
                monitors::change_state(&tx, e, at, code::OFFLINE, None)?;
            }
            monitors::save(&tx, e)?;
        }
        tx.commit()?;
        self.conn.execute_batch("PRAGMA optimize")?;
        Ok(())
    }

    /// Bytes of the database file and its WAL.
    pub(crate) fn file_bytes(&self) -> u64 {
        file_bytes(&self.path)
    }

    #[cfg(test)]
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// Bytes of the database file at `path` and its WAL.
pub(crate) fn file_bytes(path: &Path) -> u64 {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    [path.as_os_str(), wal.as_os_str()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// The entry of `name`, created on first sight.
fn entry<'m>(
    monitors: &'m mut HashMap<Arc<str>, Entry>,
    conn: &Connection,
    name: &Arc<str>,
    at_ms: i64,
) -> rusqlite::Result<&'m mut Entry> {
    if !monitors.contains_key(&**name) {
        let e = monitors::create(conn, name, at_ms)?;
        monitors.insert(name.clone(), e);
    }
    monitors
        .get_mut(&**name)
        .ok_or(rusqlite::Error::QueryReturnedNoRows)
}

/// A batch's view of the database.
struct Writer<'a> {
    conn: &'a Connection,
    reasons: &'a mut HashMap<&'static str, i64>,
    r: &'a Retention,
    now_ms: i64,
    #[cfg(test)]
    raw_from_ms: i64,
}

impl Writer<'_> {
    fn reason_id(
        &mut self,
        reason: Option<portwarden_probe::Reason>,
    ) -> rusqlite::Result<Option<i64>> {
        let Some(reason) = reason else {
            return Ok(None);
        };
        let name = reason.as_str();
        if let Some(&id) = self.reasons.get(name) {
            return Ok(Some(id));
        }
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO reasons (name) VALUES (?1)")?
            .execute([name])?;
        let id: i64 = self
            .conn
            .prepare_cached("SELECT id FROM reasons WHERE name = ?1")?
            .query_row([name], |r| r.get(0))?;
        self.reasons.insert(name, id);
        Ok(Some(id))
    }

    /// Time used as "now" for a monitor's retention: its results' time, so history written
    /// with old timestamps ages as it would have, but never far ahead of the clock (one bad
    /// timestamp from the future must not expire everything).
    fn reference(&self, at_ms: i64) -> i64 {
        at_ms.min(self.now_ms.saturating_add(HOUR_MS))
    }

    fn record(&mut self, e: &mut Entry, rec: &CheckRecord) -> rusqlite::Result<()> {
        let at = unix_ms(rec.at);
        let status = code::status_code(rec.status);
        let duration = micros(rec.duration);
        let reason = self.reason_id(rec.reason)?;
        if e.state == code::OFFLINE {
            // Watched again: observed from this result on, state to be told.
            monitors::change_state(self.conn, e, at, code::UNKNOWN, None)?;
            monitors::save(self.conn, e)?;
        }
        if !e.bucket.as_ref().is_some_and(|b| b.contains(at)) {
            if let Some(old) = e.bucket.take() {
                let reference = self.reference(at);
                self.close(e, &old, reference)?;
            }
            e.bucket = Some(Bucket::open(self.conn, e.id, at)?);
        }
        if let Some(b) = e.bucket.as_mut() {
            b.add(status, duration);
        }
        #[cfg(test)]
        if at < self.raw_from_ms {
            e.last_seen_ms = e.last_seen_ms.max(at);
            return Ok(());
        }
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO results (monitor_id, at_ms, status, reason_id, duration_us)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![e.id, at, status, reason, duration])?;
        e.last_seen_ms = e.last_seen_ms.max(at);
        Ok(())
    }

    /// Writes a finished bucket and runs the retention it makes due.
    fn close(&mut self, e: &mut Entry, b: &Bucket, reference: i64) -> rusqlite::Result<()> {
        b.write(self.conn, e.id)?;
        retention::prune_raw(self.conn, e, reference, self.r)?;
        self.prune_hourly(e, reference)?;
        monitors::save(self.conn, e)
    }

    /// Runs the full retention pass once per hour of a monitor's own time. "A different hour"
    /// rather than "an hour later": a clock set back (or housekeeping, which prunes idle
    /// monitors at the wall clock) must not hold retention off until time catches up.
    fn prune_hourly(&mut self, e: &mut Entry, reference: i64) -> rusqlite::Result<()> {
        if floor_to(reference, HOUR_MS) != floor_to(e.pruned_ms, HOUR_MS) {
            retention::prune(self.conn, e, reference, self.r)?;
        }
        Ok(())
    }

    fn transition(&mut self, e: &mut Entry, t: &TransitionRecord) -> rusqlite::Result<()> {
        let at = unix_ms(t.at);
        let to = code::status_code(t.to);
        let reason = self.reason_id(t.reason)?;
        if !monitors::change_state(self.conn, e, at, to, reason)? {
            return Ok(());
        }
        // An incident runs from entering Down until ok or warning; flapping, unknown and
        // paused keep it open (the service has not been seen healthy yet).
        if to == code::DOWN && e.open_incident_ms.is_none() {
            let message = cut(&t.message, self.r.message_bytes);
            self.conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO incidents (monitor_id, start_ms, end_ms, reason_id, message)
                     VALUES (?1, ?2, NULL, ?3, ?4)",
                )?
                .execute(params![e.id, at, reason, message])?;
            e.open_incident_ms = Some(at);
            e.incidents = e.incidents.saturating_add(1);
            // A little slack so a storm of incidents is trimmed in steps, not per row.
            if e.incidents > self.r.max_incidents + self.r.max_incidents / 8 {
                retention::cap_incidents(self.conn, e, self.r)?;
            }
        } else if matches!(to, code::OK | code::WARNING) {
            if let Some(start) = e.open_incident_ms.take() {
                self.conn
                    .prepare_cached(
                        "UPDATE incidents SET end_ms = ?3 WHERE monitor_id = ?1 AND start_ms = ?2",
                    )?
                    .execute(params![e.id, start, at.max(start)])?;
            }
        }
        let reference = self.reference(at);
        retention::cap_transitions(self.conn, e, reference, self.r)?;
        self.prune_hourly(e, reference)?;
        monitors::save(self.conn, e)
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cut_at_character_boundaries() {
        assert_eq!(cut("abc", 10), "abc");
        assert_eq!(cut("añb", 2), "a");
        assert_eq!(cut("añb", 3), "añ");
    }
}
