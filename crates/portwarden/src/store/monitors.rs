//! The store task's picture of each monitor: its row id, current state, open incident, how
//! many state changes and incidents it keeps, and its current rollup bucket. Loaded once when
//! the database opens; afterwards memory leads and the `monitors` row follows.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use super::code;
use super::rollup::Bucket;

/// One monitor, as the store task tracks it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub id: i64,
    /// Latest state (a code, possibly `OFFLINE`).
    pub state: i64,
    /// Time of the latest state change.
    pub last_change_ms: i64,
    /// Time of the latest record or change.
    pub last_seen_ms: i64,
    pub open_incident_ms: Option<i64>,
    pub detail_from_ms: i64,
    pub detail_from_state: i64,
    /// State changes stored (an upper bound between recounts).
    pub transitions: u32,
    /// Incidents stored (an upper bound between recounts).
    pub incidents: u32,
    pub bucket: Option<Bucket>,
    /// Reference time of the last full retention pass.
    pub pruned_ms: i64,
}

/// Reads every monitor with its counts.
pub(crate) fn load(conn: &Connection) -> rusqlite::Result<HashMap<Arc<str>, Entry>> {
    let mut by_id: HashMap<i64, (Arc<str>, Entry)> = HashMap::new();
    let mut stmt = conn.prepare(
        "SELECT id, name, last_seen_ms, state, detail_from_ms, detail_from_state, open_incident_ms
         FROM monitors",
    )?;
    let rows = stmt.query_map([], |r| {
        let id: i64 = r.get(0)?;
        let name: String = r.get(1)?;
        let detail_from_ms: i64 = r.get(4)?;
        Ok((
            Arc::<str>::from(name),
            Entry {
                id,
                state: r.get(3)?,
                last_change_ms: detail_from_ms,
                last_seen_ms: r.get(2)?,
                open_incident_ms: r.get(6)?,
                detail_from_ms,
                detail_from_state: r.get(5)?,
                transitions: 0,
                incidents: 0,
                bucket: None,
                // The first records after a start run a retention pass.
                pruned_ms: i64::MIN,
            },
        ))
    })?;
    for row in rows {
        let (name, e) = row?;
        by_id.insert(e.id, (name, e));
    }
    let mut stmt = conn
        .prepare("SELECT monitor_id, count(*), max(at_ms) FROM transitions GROUP BY monitor_id")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        if let Some((_, e)) = by_id.get_mut(&r.get::<_, i64>(0)?) {
            e.transitions = u32::try_from(r.get::<_, i64>(1)?).unwrap_or(u32::MAX);
            e.last_change_ms = e.last_change_ms.max(r.get(2)?);
        }
    }
    let mut stmt =
        conn.prepare("SELECT monitor_id, count(*) FROM incidents GROUP BY monitor_id")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        if let Some((_, e)) = by_id.get_mut(&r.get::<_, i64>(0)?) {
            e.incidents = u32::try_from(r.get::<_, i64>(1)?).unwrap_or(u32::MAX);
        }
    }
    Ok(by_id.into_values().collect())
}

/// Creates the row of a monitor seen for the first time at `at_ms`: not observed until then.
pub(crate) fn create(conn: &Connection, name: &str, at_ms: i64) -> rusqlite::Result<Entry> {
    conn.prepare_cached(
        "INSERT INTO monitors (name, first_seen_ms, last_seen_ms, state, detail_from_ms, detail_from_state)
         VALUES (?1, ?2, ?2, ?3, ?2, ?3)",
    )?
    .execute(params![name, at_ms, code::OFFLINE])?;
    Ok(Entry {
        id: conn.last_insert_rowid(),
        state: code::OFFLINE,
        last_change_ms: at_ms,
        last_seen_ms: at_ms,
        open_incident_ms: None,
        detail_from_ms: at_ms,
        detail_from_state: code::OFFLINE,
        transitions: 0,
        incidents: 0,
        bucket: None,
        pruned_ms: at_ms,
    })
}

/// Writes the changing columns of a monitor's row.
pub(crate) fn save(conn: &Connection, e: &Entry) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE monitors SET state = ?2, open_incident_ms = ?3, last_seen_ms = ?4,
             detail_from_ms = ?5, detail_from_state = ?6
         WHERE id = ?1",
    )?
    .execute(params![
        e.id,
        e.state,
        e.open_incident_ms,
        e.last_seen_ms,
        e.detail_from_ms,
        e.detail_from_state
    ])?;
    Ok(())
}

/// Records a state change at `at_ms`. A change older than the compacted past is ignored (the
/// totals there are final); one older than the latest change is kept in the history but does
/// not become the current state.
pub(crate) fn change_state(
    conn: &Connection,
    e: &mut Entry,
    at_ms: i64,
    to: i64,
    reason: Option<i64>,
) -> rusqlite::Result<bool> {
    if at_ms < e.detail_from_ms {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT OR REPLACE INTO transitions (monitor_id, at_ms, status, reason_id) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![e.id, at_ms, to, reason])?;
    e.transitions = e.transitions.saturating_add(1);
    if at_ms >= e.last_change_ms {
        e.state = to;
        e.last_change_ms = at_ms;
    }
    e.last_seen_ms = e.last_seen_ms.max(at_ms);
    Ok(true)
}

/// Marks a monitor unobserved from the last moment anything was heard of it: after a crash
/// or an unclean stop, the gap until the next record is not counted for or against it.
pub(crate) fn mark_offline_after_gap(conn: &Connection, e: &mut Entry) -> rusqlite::Result<()> {
    if !code::counts_as_observed(e.state) {
        return Ok(());
    }
    let last_result: Option<i64> = conn
        .prepare_cached("SELECT max(at_ms) FROM results WHERE monitor_id = ?1")?
        .query_row([e.id], |r| r.get(0))
        .optional()?
        .flatten();
    let at = e
        .last_seen_ms
        .max(e.last_change_ms)
        .max(last_result.unwrap_or(i64::MIN));
    change_state(conn, e, at, code::OFFLINE, None)?;
    save(conn, e)
}
