//! The database layout and its migrations. `PRAGMA user_version` counts the migrations
//! applied; each runs in its own transaction, so a crash leaves a consistent version. Append
//! new migrations at the end; never edit one that has shipped.
//!
//! Times are Unix milliseconds (`*_ms`) or, in rollups, Unix seconds (`start_s`, smaller on
//! disk). States are the codes of [`super::code`]. Every per-monitor table is keyed by
//! `(monitor_id, time)` `WITHOUT ROWID`: one B-tree, rows of a monitor side by side, range
//! scans for reads and retention.

use rusqlite::{Connection, TransactionBehavior};

/// One entry per schema version.
const MIGRATIONS: &[&str] = &[
    // 1: the first layout.
    "
    -- One row per monitor name ever recorded. `state` is the latest state (or OFFLINE);
    -- transitions before `detail_from_ms` were compacted into uptime_totals, and
    -- `detail_from_state` is the state in effect at that instant.
    CREATE TABLE monitors (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        state INTEGER NOT NULL,
        detail_from_ms INTEGER NOT NULL,
        detail_from_state INTEGER NOT NULL,
        open_incident_ms INTEGER
    );
    -- portwarden_probe::Reason names, stored once.
    CREATE TABLE reasons (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
    );
    -- Every check result, for the recent window only.
    CREATE TABLE results (
        monitor_id INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        status INTEGER NOT NULL,
        reason_id INTEGER,
        duration_us INTEGER NOT NULL,
        PRIMARY KEY (monitor_id, at_ms)
    ) WITHOUT ROWID;
    -- Rollups: counts per verdict; latency (microseconds) of the results that answered
    -- (ok and warning), NULL when none did.
    CREATE TABLE rollup_5m (
        monitor_id INTEGER NOT NULL,
        start_s INTEGER NOT NULL,
        ok INTEGER NOT NULL,
        warning INTEGER NOT NULL,
        down INTEGER NOT NULL,
        unknown INTEGER NOT NULL,
        min_us INTEGER,
        avg_us INTEGER,
        max_us INTEGER,
        p95_us INTEGER,
        PRIMARY KEY (monitor_id, start_s)
    ) WITHOUT ROWID;
    CREATE TABLE rollup_1h (
        monitor_id INTEGER NOT NULL,
        start_s INTEGER NOT NULL,
        ok INTEGER NOT NULL,
        warning INTEGER NOT NULL,
        down INTEGER NOT NULL,
        unknown INTEGER NOT NULL,
        min_us INTEGER,
        avg_us INTEGER,
        max_us INTEGER,
        p95_us INTEGER,
        PRIMARY KEY (monitor_id, start_s)
    ) WITHOUT ROWID;
    CREATE TABLE rollup_1d (
        monitor_id INTEGER NOT NULL,
        start_s INTEGER NOT NULL,
        ok INTEGER NOT NULL,
        warning INTEGER NOT NULL,
        down INTEGER NOT NULL,
        unknown INTEGER NOT NULL,
        min_us INTEGER,
        avg_us INTEGER,
        max_us INTEGER,
        p95_us INTEGER,
        PRIMARY KEY (monitor_id, start_s)
    ) WITHOUT ROWID;
    -- State changes: the state `status` holds from `at_ms` until the next row.
    CREATE TABLE transitions (
        monitor_id INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        status INTEGER NOT NULL,
        reason_id INTEGER,
        PRIMARY KEY (monitor_id, at_ms)
    ) WITHOUT ROWID;
    -- Exact observed and down time of compacted state changes, per hour or per day
    -- (span_s 3600 or 86400; both may exist for one day until the hours are merged).
    CREATE TABLE uptime_totals (
        monitor_id INTEGER NOT NULL,
        start_s INTEGER NOT NULL,
        span_s INTEGER NOT NULL,
        observed_ms INTEGER NOT NULL,
        down_ms INTEGER NOT NULL,
        PRIMARY KEY (monitor_id, start_s, span_s)
    ) WITHOUT ROWID;
    -- From entering Down to leaving it for ok or warning; end_ms NULL while open.
    CREATE TABLE incidents (
        monitor_id INTEGER NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER,
        reason_id INTEGER,
        message TEXT NOT NULL,
        PRIMARY KEY (monitor_id, start_ms)
    ) WITHOUT ROWID;
    ",
    // 2: notifications (see `outbox.rs`).
    "
    -- One row per notification per notifier until it is delivered; `seq` is the delivery
    -- order, `body` the JSON of portwarden_notify::Notification, `state` pending or failing.
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY,
        notifier TEXT NOT NULL,
        id TEXT NOT NULL,
        body TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_ms INTEGER NOT NULL,
        last_error TEXT,
        state TEXT NOT NULL
    );
    -- The newest delivered notifications per notifier, with the receiver's answer.
    CREATE TABLE deliveries (
        notifier TEXT NOT NULL,
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        items INTEGER NOT NULL,
        delivered_ms INTEGER NOT NULL,
        response TEXT NOT NULL
    );
    CREATE INDEX deliveries_by_notifier ON deliveries (notifier);
    -- `portwarden silence`: notifications about `monitor` (a name, `*`, or `prefix*`) are
    -- held until `until_ms`.
    CREATE TABLE silences (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        monitor TEXT NOT NULL,
        until_ms INTEGER NOT NULL,
        reason TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    ",
    // 3: self-healing (see `actions.rs`).
    "
    -- One row per attempt of the healing engine; `outcome` is fixed, not_fixed, failed,
    -- skipped, gave_up or unverified; `issued_ms` the delay from the DOWN event (or the end
    -- of the cooldown) to the action, `fixed_after_ms` from the action to the first answer.
    CREATE TABLE actions (
        id INTEGER PRIMARY KEY,
        monitor TEXT NOT NULL,
        step INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        kind TEXT NOT NULL,
        summary TEXT NOT NULL,
        message TEXT NOT NULL,
        output TEXT NOT NULL,
        outcome TEXT NOT NULL,
        started_ms INTEGER NOT NULL,
        took_ms INTEGER NOT NULL,
        issued_ms INTEGER,
        fixed_after_ms INTEGER,
        dry_run INTEGER NOT NULL
    );
    CREATE INDEX actions_by_monitor ON actions (monitor, id);
    ",
    // 4: incidents across monitors, newest first (see `incidents.rs`). Indexes only: a
    // database of an older version gains them in one pass, its rows untouched.
    "
    CREATE INDEX incidents_by_start ON incidents (start_ms);
    CREATE INDEX incidents_open ON incidents (start_ms) WHERE end_ms IS NULL;
    ",
    // 5: what the notifications have told about each monitor (see `outbox.rs`).
    "
    -- The outage `since_ms` of `monitor` whose DOWN (`down` 1) or UP (`down` 0) was queued
    -- last; written in the transaction of its outbox rows.
    CREATE TABLE notified (
        monitor TEXT PRIMARY KEY,
        since_ms INTEGER NOT NULL,
        down INTEGER NOT NULL
    ) WITHOUT ROWID;
    ",
    // 6: reminder times, so reminders survive restarts (see `outbox.rs`).
    "
    -- When `notifier` last reminded about `monitor` (still DOWN); gone once it recovers.
    CREATE TABLE reminders (
        monitor TEXT NOT NULL,
        notifier TEXT NOT NULL,
        last_ms INTEGER NOT NULL,
        PRIMARY KEY (monitor, notifier)
    ) WITHOUT ROWID;
    ",
];

/// The schema version this build writes.
pub(crate) fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SchemaError {
    /// A newer portwarden wrote this database; it is left untouched.
    #[error("database schema version {found} is newer than this build's {known}")]
    TooNew { found: i64, known: i64 },
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Applies the migrations the database lacks.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), SchemaError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = current_version();
    if found > known {
        return Err(SchemaError::TooNew { found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_set_the_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, current_version());
    }

    #[test]
    fn a_version_3_database_keeps_its_incidents_and_gains_the_indexes() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        conn.execute_batch("INSERT INTO incidents VALUES (1, 100, NULL, NULL, 'down')")
            .unwrap();
        migrate(&mut conn).unwrap();
        let rows: i64 = conn
            .query_row(
                "SELECT count(*) FROM incidents WHERE end_ms IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rows, 1);
        let indexes: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index'
                 AND name IN ('incidents_by_start', 'incidents_open')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 2);
    }

    #[test]
    fn a_newer_schema_is_refused_not_touched() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(
            matches!(err, SchemaError::TooNew { found: 99, .. }),
            "{err}"
        );
    }
}
