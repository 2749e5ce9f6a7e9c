//! Incidents across monitors, newest first, for `GET /api/v1/incidents`: one monitor's come
//! from the table's primary key `(monitor_id, start_ms)`; everyone's from the `start_ms`
//! indexes of migration 4 (a partial one holds only the open incidents, so `open=true` never
//! walks the closed ones). Each query reads at most `limit` rows.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::error::StoreError;

/// Which incidents to list.
#[derive(Debug, Clone, Default)]
pub struct IncidentQuery {
    /// Only this monitor's.
    pub monitor: Option<String>,
    /// Only open (`true`) or only closed (`false`) ones.
    pub open: Option<bool>,
    /// At most this many.
    pub limit: usize,
}

/// One incident of one monitor: from entering Down to the next ok or warning.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Incident {
    pub monitor: String,
    /// Unix milliseconds.
    pub start: i64,
    /// Unix milliseconds; null while open.
    pub end: Option<i64>,
    /// Whether it is still open (`end` is null).
    pub open: bool,
    /// Seconds (until now while open).
    pub duration: f64,
    /// The `portwarden_probe::Reason` name of the result that opened it, when it had one.
    pub reason: Option<String>,
    /// What that result said (shortened).
    pub message: String,
}

const COLUMNS: &str = "SELECT m.name, i.start_ms, i.end_ms, n.name, i.message FROM incidents i";

/// The SQL of one query shape. The open / closed conditions are written out (not bound) so
/// SQLite can pick the partial index of open incidents.
fn sql(by_monitor: bool, open: Option<bool>) -> String {
    // One monitor's start times are unique; across monitors the index's second key breaks ties.
    let order = if by_monitor {
        "i.start_ms DESC"
    } else {
        "i.start_ms DESC, i.monitor_id DESC"
    };
    let mut conditions = Vec::new();
    if by_monitor {
        conditions.push("m.name = ?2");
    }
    match open {
        Some(true) => conditions.push("i.end_ms IS NULL"),
        Some(false) => conditions.push("i.end_ms IS NOT NULL"),
        None => {}
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    // Across monitors, the plan is pinned: incidents in start order through an index, as the
    // outer loop (CROSS JOIN is never reordered), reading only `limit` rows. With statistics
    // (the writer's `PRAGMA optimize`) SQLite would otherwise rather walk the monitors or the
    // table and sort every incident.
    let (index, join) = match (by_monitor, open) {
        (true, _) => ("", "JOIN"),
        (false, Some(true)) => (" INDEXED BY incidents_open", "CROSS JOIN"),
        (false, _) => (" INDEXED BY incidents_by_start", "CROSS JOIN"),
    };
    format!(
        "{COLUMNS}{index} {join} monitors m ON m.id = i.monitor_id \
         LEFT JOIN reasons n ON n.id = i.reason_id{filter} ORDER BY {order} LIMIT ?1"
    )
}

/// The newest incidents first that match `q`; durations of open ones run until `now_ms`.
pub(crate) fn recent(
    conn: &Connection,
    q: &IncidentQuery,
    now_ms: i64,
) -> Result<Vec<Incident>, StoreError> {
    let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&sql(q.monitor.is_some(), q.open))?;
    let row = |r: &rusqlite::Row<'_>| {
        let start: i64 = r.get(1)?;
        let end: Option<i64> = r.get(2)?;
        Ok(Incident {
            monitor: r.get(0)?,
            start,
            end,
            open: end.is_none(),
            duration: (end.unwrap_or(now_ms) - start).max(0) as f64 / 1e3,
            reason: r.get(3)?,
            message: r.get(4)?,
        })
    };
    let rows = match &q.monitor {
        Some(m) => stmt.query_map(params![limit, m], row)?,
        None => stmt.query_map(params![limit], row)?,
    };
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO monitors VALUES (1, 'web', 0, 0, 0, 0, 0, NULL);
             INSERT INTO monitors VALUES (2, 'mail', 0, 0, 0, 0, 0, 300);
             INSERT INTO reasons VALUES (1, 'refused');
             INSERT INTO incidents VALUES (1, 100, 150, 1, 'connection refused');
             INSERT INTO incidents VALUES (2, 200, 260, NULL, 'timed out');
             INSERT INTO incidents VALUES (1, 250, NULL, 1, 'refused again');
             INSERT INTO incidents VALUES (2, 300, NULL, 1, 'refused');",
        )
        .unwrap();
        conn
    }

    fn starts(
        conn: &Connection,
        monitor: Option<&str>,
        open: Option<bool>,
        limit: usize,
    ) -> Vec<i64> {
        let q = IncidentQuery {
            monitor: monitor.map(String::from),
            open,
            limit,
        };
        recent(conn, &q, 1_000)
            .unwrap()
            .into_iter()
            .map(|i| i.start)
            .collect()
    }

    #[test]
    fn lists_newest_first_with_filters_and_limit() {
        let conn = db();
        assert_eq!(starts(&conn, None, None, 10), [300, 250, 200, 100]);
        assert_eq!(starts(&conn, None, None, 2), [300, 250]);
        assert_eq!(starts(&conn, None, Some(true), 10), [300, 250]);
        assert_eq!(starts(&conn, None, Some(false), 10), [200, 100]);
        assert_eq!(starts(&conn, Some("web"), None, 10), [250, 100]);
        assert_eq!(starts(&conn, Some("web"), Some(false), 10), [100]);
        assert_eq!(starts(&conn, Some("nosuch"), None, 10), Vec::<i64>::new());
        assert_eq!(starts(&conn, None, None, 0), Vec::<i64>::new());
    }

    #[test]
    fn fills_every_field() {
        let conn = db();
        let q = IncidentQuery {
            limit: 10,
            ..IncidentQuery::default()
        };
        let all = recent(&conn, &q, 1_000).unwrap();
        assert_eq!(
            all[0],
            Incident {
                monitor: "mail".into(),
                start: 300,
                end: None,
                open: true,
                duration: 0.7,
                reason: Some("refused".into()),
                message: "refused".into(),
            }
        );
        let timed_out = &all[2];
        assert_eq!((timed_out.end, timed_out.open), (Some(260), false));
        assert!((timed_out.duration - 0.06).abs() < 1e-9);
        assert_eq!(timed_out.reason, None);
    }

    #[test]
    fn queries_use_the_indexes_not_a_sort_of_the_table() {
        let conn = db();
        assert_plans_use_indexes(&conn);
        // The writer runs `PRAGMA optimize`, which may ANALYZE: the plans must hold with
        // statistics too (here 200 monitors with 20 incidents each, few open).
        conn.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 3 UNION ALL SELECT i + 1 FROM n WHERE i < 202)
             INSERT INTO monitors SELECT i, 'm' || i, 0, 0, 0, 0, 0, NULL FROM n;
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 3999)
             INSERT INTO incidents SELECT 3 + i % 200, 1000 + i, CASE WHEN i % 97 = 0 THEN NULL
             ELSE 2000 + i END, 1, 'x' FROM n;
             ANALYZE;",
        )
        .unwrap();
        assert_plans_use_indexes(&conn);
    }

    fn assert_plans_use_indexes(conn: &Connection) {
        for (by_monitor, open) in [
            (false, None),
            (false, Some(true)),
            (false, Some(false)),
            (true, None),
            (true, Some(true)),
            (true, Some(false)),
        ] {
            let mut stmt = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {}", sql(by_monitor, open)))
                .unwrap();
            let detail = |r: &rusqlite::Row<'_>| r.get::<_, String>(3);
            let rows = if by_monitor {
                stmt.query_map(params![1, "web"], detail)
            } else {
                stmt.query_map(params![1], detail)
            };
            let plan: Vec<String> = rows.unwrap().map(Result::unwrap).collect();
            let plan = plan.join("; ");
            assert!(
                !plan.contains("TEMP B-TREE"),
                "{by_monitor} {open:?}: {plan}"
            );
            if open == Some(true) && !by_monitor {
                assert!(plan.contains("incidents_open"), "{plan}");
            }
        }
    }
}
