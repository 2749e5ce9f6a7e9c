//! The `actions` table: every attempt of the healing engine ([`crate::heal`]) — what ran,
//! what came of it, how fast — for `GET /api/v1/actions`, `portwarden actions` and after the
//! fact. Rows travel on the store task's queue like outbox changes and are answered once
//! committed; the newest [`ACTIONS_KEPT`] stay.

use std::path::Path;

use rusqlite::{params, Connection, OpenFlags};
use serde::Serialize;

use super::error::StoreError;

/// Rows kept (all monitors together); older ones go when new ones come.
pub(crate) const ACTIONS_KEPT: i64 = 2_000;
/// Longest output kept per row, in bytes (cut at a character boundary).
const OUTPUT_BYTES: usize = 4_096;

/// One attempt of the healing engine, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ActionRecord {
    /// Assigned by the database (0 before).
    pub id: i64,
    pub monitor: String,
    /// Ladder step, counted from 1 (0: none, e.g. gave up before any).
    pub step: u32,
    /// Try of the step, counted from 1.
    pub attempt: u32,
    /// The action's `type`.
    pub kind: String,
    /// The action's one-line summary.
    pub summary: String,
    /// The sentence for people (as notified).
    pub message: String,
    /// Captured output, capped.
    pub output: String,
    /// `fixed`, `not_fixed`, `failed`, `skipped`, `gave_up`, `unverified`.
    pub outcome: String,
    /// Unix milliseconds when the action was issued (or the decision made).
    pub started_ms: i64,
    pub took_ms: i64,
    /// From the DOWN event (or the end of the cooldown) to the action issued.
    pub issued_ms: Option<i64>,
    /// From the action issued to the first answering check.
    pub fixed_after_ms: Option<i64>,
    pub dry_run: bool,
}

/// Writes one row inside the caller's transaction and drops the oldest beyond the cap.
pub(crate) fn insert(conn: &Connection, r: &ActionRecord) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO actions (monitor, step, attempt, kind, summary, message, output, outcome,
                              started_ms, took_ms, issued_ms, fixed_after_ms, dry_run)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        r.monitor,
        r.step,
        r.attempt,
        r.kind,
        r.summary,
        r.message,
        cap(&r.output, OUTPUT_BYTES),
        r.outcome,
        r.started_ms,
        r.took_ms,
        r.issued_ms,
        r.fixed_after_ms,
        r.dry_run,
    ])?;
    conn.prepare_cached(
        "DELETE FROM actions WHERE id <= (SELECT id FROM actions ORDER BY id DESC LIMIT 1 OFFSET ?1)",
    )?
    .execute([ACTIONS_KEPT])?;
    Ok(())
}

/// The newest rows first, of one monitor or all, at most `limit`.
pub(crate) fn recent(
    conn: &Connection,
    monitor: Option<&str>,
    limit: usize,
) -> Result<Vec<ActionRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, monitor, step, attempt, kind, summary, message, output, outcome,
                started_ms, took_ms, issued_ms, fixed_after_ms, dry_run
         FROM actions WHERE ?1 IS NULL OR monitor = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![monitor, limit as i64], |r| {
        Ok(ActionRecord {
            id: r.get(0)?,
            monitor: r.get(1)?,
            step: r.get(2)?,
            attempt: r.get(3)?,
            kind: r.get(4)?,
            summary: r.get(5)?,
            message: r.get(6)?,
            output: r.get(7)?,
            outcome: r.get(8)?,
            started_ms: r.get(9)?,
            took_ms: r.get(10)?,
            issued_ms: r.get(11)?,
            fixed_after_ms: r.get(12)?,
            dry_run: r.get(13)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Reads the actions of a database file directly (`portwarden actions`, another process than
/// the daemon). A database the daemon never wrote, or one from before the actions table, has
/// none.
pub fn read_file(
    path: &Path,
    monitor: Option<&str>,
    limit: usize,
) -> Result<Vec<ActionRecord>, String> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    let _ = conn.busy_timeout(std::time::Duration::from_secs(2));
    let has_table: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'actions'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !has_table {
        return Ok(Vec::new());
    }
    recent(&conn, monitor, limit).map_err(|e| format!("{}: {e}", path.display()))
}

fn cap(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(monitor: &str, outcome: &str) -> ActionRecord {
        ActionRecord {
            monitor: monitor.into(),
            step: 1,
            attempt: 1,
            kind: "exec".into(),
            summary: "exec /bin/true: exit 0".into(),
            outcome: outcome.into(),
            started_ms: 5,
            issued_ms: Some(3),
            fixed_after_ms: Some(1800),
            output: "é".repeat(3000),
            ..Default::default()
        }
    }

    #[test]
    fn rows_are_kept_newest_first_capped_and_filtered_by_monitor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let conn = super::super::open::open_writer(&path).unwrap();
        insert(&conn, &row("web", "not_fixed")).unwrap();
        insert(&conn, &row("db", "failed")).unwrap();
        insert(&conn, &row("web", "fixed")).unwrap();
        let all = recent(&conn, None, 10).unwrap();
        assert_eq!(
            all.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>(),
            ["fixed", "failed", "not_fixed"]
        );
        assert_eq!(all[0].fixed_after_ms, Some(1800));
        assert!(all[0].output.len() <= OUTPUT_BYTES);
        assert_eq!(recent(&conn, Some("web"), 10).unwrap().len(), 2);
        assert_eq!(recent(&conn, Some("web"), 1).unwrap()[0].outcome, "fixed");
        // Another process reads the same file.
        assert_eq!(read_file(&path, Some("db"), 10).unwrap()[0].kind, "exec");
        assert!(read_file(&dir.path().join("none.db"), None, 10)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn only_the_newest_rows_stay() {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::open::open_writer(&dir.path().join("h.db")).unwrap();
        for _ in 0..ACTIONS_KEPT + 5 {
            insert(&conn, &row("web", "fixed")).unwrap();
        }
        let n: i64 = conn
            .query_row("SELECT count(*) FROM actions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, ACTIONS_KEPT);
    }
}
