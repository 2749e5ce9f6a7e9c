//! Uptime from state changes, not samples: the time a monitor spent Down divided by the time
//! it was observed (not paused, not before its first record, not while the daemon was
//! stopped), integrated exactly over the state intervals.
//!
//! Old state changes are compacted into exact per-hour / per-day totals (see
//! [`super::retention`]). A window that starts inside compacted time begins at the start of
//! the total it falls in: the figure stays exact, over a window at most one hour (recent
//! totals) or one day (older ones) longer than asked. Monitors that change state fewer than
//! ~4 times a day are never compacted inside 366 days, so for them every window is exact to
//! the millisecond.

use rusqlite::{params, Connection};

use super::clock::SECOND_MS;
use super::code;

/// Exact observed and down time of a compacted stretch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Total {
    pub start_ms: i64,
    pub span_ms: i64,
    pub observed_ms: i64,
    pub down_ms: i64,
}

impl Total {
    fn end_ms(&self) -> i64 {
        self.start_ms + self.span_ms
    }
}

/// What the uptime of one monitor is computed from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Timeline {
    /// State changes are complete from here on.
    pub detail_from_ms: i64,
    /// The state in effect at `detail_from_ms`, before any change at that instant.
    pub detail_from_state: i64,
    /// `(at_ms, state)`, sorted by time; may start before the window.
    pub transitions: Vec<(i64, i64)>,
    /// Compacted totals, covering time before `detail_from_ms`.
    pub totals: Vec<Total>,
}

/// Observed and down time over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Measured {
    pub observed_ms: i64,
    pub down_ms: i64,
    /// Where the window really began (earlier than asked when it starts in compacted time).
    pub start_ms: i64,
}

impl Measured {
    /// The fraction of observed time not down; `None` when nothing was observed.
    pub(crate) fn uptime(&self) -> Option<f64> {
        (self.observed_ms > 0)
            .then(|| (self.observed_ms - self.down_ms) as f64 / self.observed_ms as f64)
    }

    fn add(&mut self, state: i64, ms: i64) {
        if code::counts_as_observed(state) {
            self.observed_ms += ms;
            if code::counts_as_down(state) {
                self.down_ms += ms;
            }
        }
    }
}

/// Calls `f(from, to, state)` for each stretch of constant state in `[from, to)`, starting
/// in `initial` unless a transition at or before `from` says otherwise.
pub(crate) fn segments(
    initial: i64,
    transitions: &[(i64, i64)],
    from: i64,
    to: i64,
    mut f: impl FnMut(i64, i64, i64),
) {
    let mut state = initial;
    let mut cursor = from;
    for &(at, st) in transitions {
        if at <= from {
            state = st;
            continue;
        }
        if at >= to {
            break;
        }
        f(cursor, at, state);
        cursor = at;
        state = st;
    }
    if cursor < to {
        f(cursor, to, state);
    }
}

/// Observed and down time in `[start_ms, now_ms)`.
pub(crate) fn measure(tl: &Timeline, start_ms: i64, now_ms: i64) -> Measured {
    let mut m = Measured {
        start_ms,
        ..Measured::default()
    };
    if start_ms < tl.detail_from_ms {
        // Widen to whole totals: a total straddling the start counts in full, and so do the
        // totals it then spans (an hour's total inside a day's total).
        let mut lo = start_ms;
        loop {
            let widened = tl
                .totals
                .iter()
                .filter(|t| t.end_ms() > lo && t.start_ms < tl.detail_from_ms)
                .map(|t| t.start_ms)
                .fold(lo, i64::min);
            if widened == lo {
                break;
            }
            lo = widened;
        }
        for t in tl
            .totals
            .iter()
            .filter(|t| t.end_ms() > lo && t.start_ms < tl.detail_from_ms)
        {
            m.observed_ms += t.observed_ms;
            m.down_ms += t.down_ms;
        }
        m.start_ms = lo;
    }
    let from = start_ms.max(tl.detail_from_ms);
    if from < now_ms {
        segments(
            tl.detail_from_state,
            &tl.transitions,
            from,
            now_ms,
            |a, b, st| m.add(st, b - a),
        );
    }
    m
}

/// Loads what [`measure`] needs for windows starting at `since_ms` or later.
pub(crate) fn load_timeline(
    conn: &Connection,
    monitor: i64,
    detail_from_ms: i64,
    detail_from_state: i64,
    since_ms: i64,
) -> rusqlite::Result<Timeline> {
    // The last change at or before the window start (it sets the first state), then all
    // later ones: two index seeks however long the history.
    let mut stmt = conn.prepare_cached(
        "SELECT at_ms, status FROM transitions WHERE monitor_id = ?1 AND at_ms >= coalesce(
             (SELECT max(at_ms) FROM transitions WHERE monitor_id = ?1 AND at_ms <= ?2), ?2)
         ORDER BY at_ms",
    )?;
    let transitions = stmt
        .query_map(params![monitor, since_ms], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<(i64, i64)>>>()?;
    let totals = if since_ms < detail_from_ms {
        let mut stmt = conn.prepare_cached(
            "SELECT start_s, span_s, observed_ms, down_ms FROM uptime_totals
             WHERE monitor_id = ?1 ORDER BY start_s, span_s",
        )?;
        let rows = stmt.query_map([monitor], |r| {
            Ok(Total {
                start_ms: r.get::<_, i64>(0)? * SECOND_MS,
                span_ms: r.get::<_, i64>(1)? * SECOND_MS,
                observed_ms: r.get(2)?,
                down_ms: r.get(3)?,
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    Ok(Timeline {
        detail_from_ms,
        detail_from_state,
        transitions,
        totals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::clock::{DAY_MS, HOUR_MS, MINUTE_MS};

    fn tl(transitions: Vec<(i64, i64)>) -> Timeline {
        Timeline {
            detail_from_ms: 0,
            detail_from_state: code::OFFLINE,
            transitions,
            totals: Vec::new(),
        }
    }

    #[test]
    fn thirty_six_minutes_down_in_a_day() {
        let now = 10 * DAY_MS;
        let t = tl(vec![
            (0, code::OK),
            (now - 5 * HOUR_MS, code::DOWN),
            (now - 5 * HOUR_MS + 36 * MINUTE_MS, code::OK),
        ]);
        let m = measure(&t, now - DAY_MS, now);
        assert_eq!(m.observed_ms, DAY_MS);
        assert_eq!(m.down_ms, 36 * MINUTE_MS);
        let expected = 1.0 - 36.0 / 1440.0;
        assert!((m.uptime().unwrap() - expected).abs() < 1e-12);
    }

    #[test]
    fn a_new_monitor_is_judged_only_since_its_first_record() {
        let now = 10 * DAY_MS;
        let t = tl(vec![
            (now - HOUR_MS, code::UNKNOWN),
            (now - 30 * MINUTE_MS, code::DOWN),
        ]);
        let m = measure(&t, now - 7 * DAY_MS, now);
        assert_eq!(m.observed_ms, HOUR_MS);
        assert_eq!(m.uptime(), Some(0.5));
    }

    #[test]
    fn paused_and_offline_time_is_not_observed() {
        let now = 10 * DAY_MS;
        let t = tl(vec![
            (now - 4 * HOUR_MS, code::DOWN),
            (now - 3 * HOUR_MS, code::PAUSED),
            (now - 2 * HOUR_MS, code::OK),
            (now - HOUR_MS, code::OFFLINE),
        ]);
        let m = measure(&t, now - DAY_MS, now);
        assert_eq!(m.observed_ms, 2 * HOUR_MS);
        assert_eq!(m.down_ms, HOUR_MS);
        assert_eq!(measure(&tl(vec![]), 0, now).uptime(), None);
    }

    #[test]
    fn a_window_starting_in_compacted_time_widens_to_whole_totals() {
        let now = 10 * DAY_MS;
        let t = Timeline {
            detail_from_ms: now - 2 * HOUR_MS,
            detail_from_state: code::OK,
            transitions: vec![(now - HOUR_MS, code::DOWN)],
            totals: vec![
                // A day total, and hour totals inside the following day.
                Total {
                    start_ms: 8 * DAY_MS,
                    span_ms: DAY_MS,
                    observed_ms: DAY_MS,
                    down_ms: 7,
                },
                Total {
                    start_ms: 9 * DAY_MS,
                    span_ms: HOUR_MS,
                    observed_ms: HOUR_MS,
                    down_ms: 1,
                },
                Total {
                    start_ms: 9 * DAY_MS + 5 * HOUR_MS,
                    span_ms: HOUR_MS,
                    observed_ms: 10,
                    down_ms: 2,
                },
            ],
        };
        // Starts inside the second hour total: that one counts whole, the earlier ones not.
        let m = measure(&t, 9 * DAY_MS + 5 * HOUR_MS + 1, now);
        assert_eq!(m.start_ms, 9 * DAY_MS + 5 * HOUR_MS);
        assert_eq!(m.observed_ms, 10 + 2 * HOUR_MS);
        assert_eq!(m.down_ms, 2 + HOUR_MS);
        // Starts inside the day total: everything.
        let m = measure(&t, 8 * DAY_MS + 1, now);
        assert_eq!(m.start_ms, 8 * DAY_MS);
        assert_eq!(m.down_ms, 7 + 1 + 2 + HOUR_MS);
    }

    #[test]
    fn changes_in_the_future_are_ignored() {
        let t = tl(vec![(0, code::OK), (2 * HOUR_MS, code::DOWN)]);
        let m = measure(&t, 0, HOUR_MS);
        assert_eq!((m.observed_ms, m.down_ms), (HOUR_MS, 0));
    }
}
