//! Retention: what keeps a monitor's share of the database bounded whatever its age.
//!
//! | data | kept |
//! |---|---|
//! | raw results | 1 hour |
//! | 5-minute rollups | 25 hours |
//! | hourly rollups | 35 days |
//! | daily rollups | 731 days |
//! | state changes | 366 days, at most 1536 per monitor |
//! | compacted uptime totals | hourly for 8 days, then daily, until 366 days |
//! | incidents | 366 days after they end, at most 128 per monitor |
//!
//! A monitor is pruned when its results cross an hour (and the raw window whenever a
//! 5-minute bucket closes), so the work follows the load in small per-monitor steps; the
//! housekeeping pass covers monitors that stopped reporting. State changes past the cap (a
//! flapping monitor) or past 366 days are *compacted*: their exact observed and down time is
//! added to per-hour / per-day totals before the rows go, so uptime stays exact (see
//! [`super::uptime`] for windows that start inside compacted time).

use std::collections::BTreeMap;

use rusqlite::{params, Connection};

use super::clock::{floor_to, DAY_MS, HOUR_MS, SECOND_MS};
use super::code;
use super::monitors::{self, Entry};
use super::options::Retention;
use super::uptime::segments;

/// Drops raw results older than the raw window before `ref_ms`.
pub(crate) fn prune_raw(
    conn: &Connection,
    e: &Entry,
    ref_ms: i64,
    r: &Retention,
) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM results WHERE monitor_id = ?1 AND at_ms < ?2")?
        .execute(params![e.id, ref_ms.saturating_sub(r.raw_ms)])?;
    Ok(())
}

/// Applies every retention rule to one monitor, as of `ref_ms`.
pub(crate) fn prune(
    conn: &Connection,
    e: &mut Entry,
    ref_ms: i64,
    r: &Retention,
) -> rusqlite::Result<()> {
    prune_raw(conn, e, ref_ms, r)?;
    for (sql, keep) in [
        (
            "DELETE FROM rollup_5m WHERE monitor_id = ?1 AND start_s < ?2",
            r.fine_ms,
        ),
        (
            "DELETE FROM rollup_1h WHERE monitor_id = ?1 AND start_s < ?2",
            r.hourly_ms,
        ),
        (
            "DELETE FROM rollup_1d WHERE monitor_id = ?1 AND start_s < ?2",
            r.daily_ms,
        ),
    ] {
        conn.prepare_cached(sql)?
            .execute(params![e.id, ref_ms.saturating_sub(keep) / SECOND_MS])?;
    }
    let horizon = ref_ms.saturating_sub(r.detail_ms);
    if e.detail_from_ms < horizon {
        compact(conn, e, horizon, ref_ms, r)?;
    }
    conn.prepare_cached(
        "DELETE FROM uptime_totals WHERE monitor_id = ?1 AND (start_s + span_s) * 1000 <= ?2",
    )?
    .execute(params![e.id, horizon])?;
    merge_hours(conn, e.id, ref_ms.saturating_sub(r.hourly_totals_ms))?;
    let gone = conn
        .prepare_cached(
            "DELETE FROM incidents WHERE monitor_id = ?1 AND end_ms IS NOT NULL AND end_ms < ?2",
        )?
        .execute(params![e.id, horizon])?;
    e.incidents = e
        .incidents
        .saturating_sub(u32::try_from(gone).unwrap_or(u32::MAX));
    cap_incidents(conn, e, r)?;
    e.pruned_ms = ref_ms;
    Ok(())
}

/// Keeps at most `max_incidents` incidents, the newest.
pub(crate) fn cap_incidents(
    conn: &Connection,
    e: &mut Entry,
    r: &Retention,
) -> rusqlite::Result<()> {
    if e.incidents <= r.max_incidents {
        return Ok(());
    }
    conn.prepare_cached(
        "DELETE FROM incidents WHERE monitor_id = ?1 AND start_ms < (
             SELECT start_ms FROM incidents WHERE monitor_id = ?1
             ORDER BY start_ms DESC LIMIT 1 OFFSET ?2)",
    )?
    .execute(params![e.id, i64::from(r.max_incidents) - 1])?;
    e.incidents = count(
        conn,
        "SELECT count(*) FROM incidents WHERE monitor_id = ?1",
        e.id,
    )?;
    Ok(())
}

/// Compacts the oldest state changes of a monitor over the cap until half the cap remain.
pub(crate) fn cap_transitions(
    conn: &Connection,
    e: &mut Entry,
    ref_ms: i64,
    r: &Retention,
) -> rusqlite::Result<()> {
    if e.transitions <= r.max_transitions {
        return Ok(());
    }
    e.transitions = count(
        conn,
        "SELECT count(*) FROM transitions WHERE monitor_id = ?1",
        e.id,
    )?;
    if e.transitions <= r.max_transitions {
        return Ok(());
    }
    let keep = i64::from(r.max_transitions / 2);
    let oldest_kept: i64 = conn
        .prepare_cached(
            "SELECT at_ms FROM transitions WHERE monitor_id = ?1 ORDER BY at_ms DESC LIMIT 1 OFFSET ?2",
        )?
        .query_row(params![e.id, keep], |row| row.get(0))?;
    // Cut at an hour boundary when that still frees enough, so totals stay whole hours.
    let aligned = floor_to(oldest_kept, HOUR_MS);
    if aligned > e.detail_from_ms {
        compact(conn, e, aligned, ref_ms, r)?;
    }
    if e.transitions > r.max_transitions {
        compact(conn, e, oldest_kept, ref_ms, r)?;
    }
    Ok(())
}

/// Replaces the state changes before `new_from` by exact totals: per day for days that ended
/// before the hourly-totals window, per hour after. Totals older than `detail_ms` are not
/// written (no uptime window reaches them).
pub(crate) fn compact(
    conn: &Connection,
    e: &mut Entry,
    new_from: i64,
    ref_ms: i64,
    r: &Retention,
) -> rusqlite::Result<()> {
    if new_from <= e.detail_from_ms {
        return Ok(());
    }
    let changes = conn
        .prepare_cached(
            "SELECT at_ms, status FROM transitions WHERE monitor_id = ?1 AND at_ms < ?2 ORDER BY at_ms",
        )?
        .query_map(params![e.id, new_from], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<Vec<(i64, i64)>>>()?;
    let hourly_from = ref_ms.saturating_sub(r.hourly_totals_ms);
    let oldest_wanted = ref_ms.saturating_sub(r.detail_ms);
    let mut totals: BTreeMap<(i64, i64), (i64, i64)> = BTreeMap::new();
    segments(
        e.detail_from_state,
        &changes,
        e.detail_from_ms,
        new_from,
        |from, to, state| {
            if !code::counts_as_observed(state) {
                return;
            }
            let mut a = from.max(oldest_wanted);
            while a < to {
                let day = floor_to(a, DAY_MS);
                let (start, span) = if day + DAY_MS <= hourly_from {
                    (day, DAY_MS)
                } else {
                    (floor_to(a, HOUR_MS), HOUR_MS)
                };
                let end = to.min(start + span);
                let t = totals.entry((start, span)).or_default();
                t.0 += end - a;
                if code::counts_as_down(state) {
                    t.1 += end - a;
                }
                a = end;
            }
        },
    );
    for ((start, span), (observed, down)) in totals {
        add_total(conn, e.id, start, span, observed, down)?;
    }
    let state_at_cut = changes.last().map_or(e.detail_from_state, |&(_, s)| s);
    let gone = conn
        .prepare_cached("DELETE FROM transitions WHERE monitor_id = ?1 AND at_ms < ?2")?
        .execute(params![e.id, new_from])?;
    e.transitions = e
        .transitions
        .saturating_sub(u32::try_from(gone).unwrap_or(u32::MAX));
    e.detail_from_ms = new_from;
    e.detail_from_state = state_at_cut;
    monitors::save(conn, e)
}

fn add_total(
    conn: &Connection,
    monitor: i64,
    start_ms: i64,
    span_ms: i64,
    observed_ms: i64,
    down_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO uptime_totals (monitor_id, start_s, span_s, observed_ms, down_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (monitor_id, start_s, span_s) DO UPDATE SET
             observed_ms = observed_ms + excluded.observed_ms,
             down_ms = down_ms + excluded.down_ms",
    )?
    .execute(params![
        monitor,
        start_ms / SECOND_MS,
        span_ms / SECOND_MS,
        observed_ms,
        down_ms
    ])?;
    Ok(())
}

/// Folds hourly totals of days that ended before `cutoff_ms` into daily totals.
fn merge_hours(conn: &Connection, monitor: i64, cutoff_ms: i64) -> rusqlite::Result<()> {
    let before_s = floor_to(cutoff_ms, DAY_MS) / SECOND_MS;
    let hours = conn
        .prepare_cached(
            "SELECT start_s, observed_ms, down_ms FROM uptime_totals
             WHERE monitor_id = ?1 AND span_s = 3600 AND start_s < ?2",
        )?
        .query_map(params![monitor, before_s], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if hours.is_empty() {
        return Ok(());
    }
    let mut days: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (start_s, observed, down) in hours {
        let d = days
            .entry(floor_to(start_s * SECOND_MS, DAY_MS))
            .or_default();
        d.0 += observed;
        d.1 += down;
    }
    conn.prepare_cached(
        "DELETE FROM uptime_totals WHERE monitor_id = ?1 AND span_s = 3600 AND start_s < ?2",
    )?
    .execute(params![monitor, before_s])?;
    for (day, (observed, down)) in days {
        add_total(conn, monitor, day, DAY_MS, observed, down)?;
    }
    Ok(())
}

fn count(conn: &Connection, sql: &str, monitor: i64) -> rusqlite::Result<u32> {
    let n: i64 = conn
        .prepare_cached(sql)?
        .query_row([monitor], |r| r.get(0))?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}
