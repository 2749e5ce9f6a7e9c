//! Reads: a monitor's history, everyone's 24-hour uptime, database statistics. They run on
//! the blocking pool over a separate read-only connection, in WAL mode, so they see the last
//! committed batch and never hold up the writer.

use std::collections::{BTreeMap, HashMap};
use std::sync::PoisonError;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::clock::DAY_MS;
use super::code;
use super::db::file_bytes;
use super::error::StoreError;
use super::health::StoreState;
use super::open::open_reader;
use super::uptime::{load_timeline, measure, Timeline};
use super::Shared;
use crate::state::Status;

/// The reader's connection and the database generation it belongs to.
#[derive(Debug)]
pub(crate) struct Reader {
    generation: u64,
    conn: Connection,
}

/// A monitor's stored history.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MonitorHistory {
    pub monitor: String,
    /// The latest stored state; `None` if never recorded, or not watched at the moment.
    pub state: Option<Status>,
    /// First record, Unix milliseconds.
    pub first_seen: Option<i64>,
    /// Newest first.
    pub results: Vec<HistoryResult>,
    pub uptime: Uptime,
    /// Newest first.
    pub incidents: Vec<HistoryIncident>,
}

/// One stored check result.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryResult {
    /// Unix milliseconds.
    pub at: i64,
    pub status: Status,
    /// A `portwarden_probe::Reason` name.
    pub reason: Option<String>,
    /// Seconds.
    pub duration: f64,
}

/// Fraction of observed time not down, per window; `None` when nothing was observed in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Uptime {
    pub d1: Option<f64>,
    pub d7: Option<f64>,
    pub d30: Option<f64>,
    pub d365: Option<f64>,
}

/// One incident: from entering Down to the next ok or warning.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryIncident {
    /// Unix milliseconds.
    pub start: i64,
    /// Unix milliseconds; `None` while open.
    pub end: Option<i64>,
    /// Seconds (until now while open).
    pub duration: f64,
    /// The reason of the result that opened it.
    pub reason: Option<String>,
    pub message: String,
}

/// Database size and contents.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoreStats {
    /// Database file plus WAL, in bytes.
    pub db_bytes: u64,
    pub page_size: i64,
    pub pages: i64,
    pub free_pages: i64,
    /// Rows per table.
    pub rows: BTreeMap<String, i64>,
    /// Bytes of pages per table or index.
    pub table_bytes: BTreeMap<String, i64>,
}

/// Runs `f` in a read transaction on the reader connection, (re)opening it as needed.
pub(crate) fn with_reader<T>(
    shared: &Shared,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    match shared.health.state() {
        StoreState::Ok => {}
        StoreState::Starting => {
            return Err(StoreError::Unavailable("not open yet".into()));
        }
        StoreState::Failed => {
            let why = shared.health.snapshot(&shared.path).error;
            return Err(StoreError::Unavailable(
                why.unwrap_or_else(|| "failed".into()),
            ));
        }
    }
    let generation = shared.health.generation();
    let mut guard = shared.reader.lock().unwrap_or_else(PoisonError::into_inner);
    let reader = match guard.take() {
        Some(r) if r.generation == generation => r,
        _ => Reader {
            generation,
            conn: open_reader(&shared.path)?,
        },
    };
    let out = (|| {
        let tx = reader.conn.unchecked_transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    })();
    // A failed query may mean a replaced file: the next call opens afresh.
    if out.is_ok() {
        *guard = Some(reader);
    }
    out
}

struct MonitorRow {
    id: i64,
    first_seen_ms: i64,
    state: i64,
    detail_from_ms: i64,
    detail_from_state: i64,
}

/// The history of one monitor: `limit` newest results and incidents, uptime over 1, 7, 30 and
/// 365 days.
pub(crate) fn history(
    conn: &Connection,
    monitor: &str,
    limit: usize,
    now_ms: i64,
) -> Result<MonitorHistory, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let row = conn
        .prepare_cached(
            "SELECT id, first_seen_ms, state, detail_from_ms, detail_from_state
             FROM monitors WHERE name = ?1",
        )?
        .query_row([monitor], |r| {
            Ok(MonitorRow {
                id: r.get(0)?,
                first_seen_ms: r.get(1)?,
                state: r.get(2)?,
                detail_from_ms: r.get(3)?,
                detail_from_state: r.get(4)?,
            })
        })
        .optional()?;
    let Some(m) = row else {
        return Ok(MonitorHistory {
            monitor: monitor.to_string(),
            state: None,
            first_seen: None,
            results: Vec::new(),
            uptime: Uptime::default(),
            incidents: Vec::new(),
        });
    };
    let results = conn
        .prepare_cached(
            "SELECT r.at_ms, r.status, n.name, r.duration_us FROM results r
             LEFT JOIN reasons n ON n.id = r.reason_id
             WHERE r.monitor_id = ?1 ORDER BY r.at_ms DESC LIMIT ?2",
        )?
        .query_map(params![m.id, limit], |r| {
            Ok(HistoryResult {
                at: r.get(0)?,
                status: code::status_from_code(r.get(1)?).unwrap_or(Status::Unknown),
                reason: r.get(2)?,
                duration: r.get::<_, i64>(3)? as f64 / 1e6,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let timeline = load_timeline(
        conn,
        m.id,
        m.detail_from_ms,
        m.detail_from_state,
        now_ms - 365 * DAY_MS,
    )?;
    let incidents = conn
        .prepare_cached(
            "SELECT i.start_ms, i.end_ms, n.name, i.message FROM incidents i
             LEFT JOIN reasons n ON n.id = i.reason_id
             WHERE i.monitor_id = ?1 ORDER BY i.start_ms DESC LIMIT ?2",
        )?
        .query_map(params![m.id, limit], |r| {
            let start: i64 = r.get(0)?;
            let end: Option<i64> = r.get(1)?;
            Ok(HistoryIncident {
                start,
                end,
                duration: (end.unwrap_or(now_ms) - start).max(0) as f64 / 1e3,
                reason: r.get(2)?,
                message: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(MonitorHistory {
        monitor: monitor.to_string(),
        state: code::status_from_code(m.state),
        first_seen: Some(m.first_seen_ms),
        results,
        uptime: uptime(&timeline, now_ms),
        incidents,
    })
}

fn uptime(tl: &Timeline, now_ms: i64) -> Uptime {
    let over = |days: i64| measure(tl, now_ms - days * DAY_MS, now_ms).uptime();
    Uptime {
        d1: over(1),
        d7: over(7),
        d30: over(30),
        d365: over(365),
    }
}

/// Uptime over the last 24 hours of every monitor observed in them.
pub(crate) fn uptime_24h(
    conn: &Connection,
    now_ms: i64,
) -> Result<HashMap<String, f64>, StoreError> {
    let since = now_ms - DAY_MS;
    let mut stmt =
        conn.prepare_cached("SELECT id, name, detail_from_ms, detail_from_state FROM monitors")?;
    let monitors = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = HashMap::with_capacity(monitors.len());
    for (id, name, from, from_state) in monitors {
        let tl = load_timeline(conn, id, from, from_state, since)?;
        if let Some(u) = measure(&tl, since, now_ms).uptime() {
            out.insert(name, u);
        }
    }
    Ok(out)
}

/// Monitors with an incident still open (DOWN when the daemon last saw them), with its start.
pub(crate) fn open_incidents(conn: &Connection) -> Result<HashMap<String, i64>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, open_incident_ms FROM monitors WHERE open_incident_ms IS NOT NULL",
    )?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<rusqlite::Result<HashMap<_, _>>>()?;
    Ok(rows)
}

/// Sizes and row counts. Scans the whole database: for benchmarks and diagnostics.
pub(crate) fn stats(conn: &Connection, shared: &Shared) -> Result<StoreStats, StoreError> {
    let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let free_pages: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    let mut rows = BTreeMap::new();
    for table in [
        "monitors",
        "reasons",
        "results",
        "rollup_5m",
        "rollup_1h",
        "rollup_1d",
        "transitions",
        "uptime_totals",
        "incidents",
        "actions",
    ] {
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
        rows.insert(table.to_string(), n);
    }
    let mut table_bytes = BTreeMap::new();
    // dbstat is compiled into the bundled SQLite; without it the map stays empty.
    if let Ok(mut stmt) = conn.prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name") {
        let sizes = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for s in sizes {
            let (name, bytes) = s?;
            table_bytes.insert(name, bytes);
        }
    }
    Ok(StoreStats {
        db_bytes: file_bytes(&shared.path),
        page_size,
        pages,
        free_pages,
        rows,
        table_bytes,
    })
}
