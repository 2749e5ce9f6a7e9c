//! Rollups: per-bucket counts of each verdict and latency (min / avg / max / p95) in three
//! tiers, 5 minutes, 1 hour, 1 day. The store task keeps each monitor's current 5-minute
//! bucket in memory ([`Bucket`]) and writes it when a result for a later bucket arrives (or
//! the monitor falls idle, or at flush); each write also recomputes the hour and the day the
//! bucket belongs to from the tier below, so every tier is always consistent and a crash
//! loses at most the bucket in memory (its raw results are on disk).
//!
//! Latency covers results that answered (ok and warning): the time of a refused or timed-out
//! check says nothing about the service. The p95 of an hour or a day is the count-weighted
//! 95th percentile of its buckets' p95s, an estimate; min, max, avg and counts are exact.

use rusqlite::{params, Connection, OptionalExtension};

use super::clock::{floor_to, DAY_MS, HOUR_MS, SECOND_MS};
use super::code;
use super::options::FINE_MS;

/// Samples a bucket holds before folding them into its summary (a monitor checked many
/// times a second must not grow the task's memory without bound).
const MAX_SAMPLES: usize = 4096;

/// The stored form of one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    pub ok: i64,
    pub warning: i64,
    pub down: i64,
    pub unknown: i64,
    pub min_us: Option<i64>,
    pub avg_us: Option<i64>,
    pub max_us: Option<i64>,
    pub p95_us: Option<i64>,
}

impl Summary {
    /// How many results the latency figures cover.
    fn answered(&self) -> i64 {
        self.ok + self.warning
    }

    pub(crate) fn total(&self) -> i64 {
        self.ok + self.warning + self.down + self.unknown
    }

    /// Summarizes raw latencies (sorted in place).
    fn from_samples(counts: [i64; 4], samples: &mut [i64]) -> Summary {
        let [ok, warning, down, unknown] = counts;
        let mut s = Summary {
            ok,
            warning,
            down,
            unknown,
            ..Summary::default()
        };
        if !samples.is_empty() {
            samples.sort_unstable();
            let n = samples.len();
            let sum: i128 = samples.iter().map(|&v| i128::from(v)).sum();
            s.min_us = samples.first().copied();
            s.max_us = samples.last().copied();
            s.avg_us = i64::try_from(sum / n as i128).ok();
            // Nearest rank: the smallest value with at least 95 % of samples at or below it.
            s.p95_us = Some(samples[(95 * n).div_ceil(100).max(1) - 1]);
        }
        s
    }

    /// One summary for several disjoint buckets.
    pub(crate) fn combine(parts: &[Summary]) -> Summary {
        let mut out = Summary::default();
        let mut weighted_sum: i128 = 0;
        let mut weight: i64 = 0;
        let mut p95s: Vec<(i64, i64)> = Vec::new();
        for p in parts {
            out.ok += p.ok;
            out.warning += p.warning;
            out.down += p.down;
            out.unknown += p.unknown;
            out.min_us = min_opt(out.min_us, p.min_us);
            out.max_us = max_opt(out.max_us, p.max_us);
            let w = p.answered().max(1);
            if let Some(avg) = p.avg_us {
                weighted_sum += i128::from(avg) * i128::from(w);
                weight += w;
            }
            if let Some(p95) = p.p95_us {
                p95s.push((p95, w));
            }
        }
        if weight > 0 {
            out.avg_us = i64::try_from(weighted_sum / i128::from(weight)).ok();
        }
        p95s.sort_unstable();
        let total: i64 = p95s.iter().map(|&(_, w)| w).sum();
        let target = (95 * total + 99) / 100;
        let mut seen = 0;
        for (p95, w) in p95s {
            seen += w;
            if seen >= target {
                out.p95_us = Some(p95);
                break;
            }
        }
        out
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// A monitor's current 5-minute bucket, in the store task's memory.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    pub start_ms: i64,
    /// What the database already held for this bucket (an earlier flush, an earlier run),
    /// plus folded samples.
    base: Summary,
    counts: [i64; 4],
    samples: Vec<i64>,
}

impl Bucket {
    /// The bucket holding `at_ms`, continuing what the database has for it.
    pub(crate) fn open(conn: &Connection, monitor: i64, at_ms: i64) -> rusqlite::Result<Bucket> {
        let start_ms = floor_to(at_ms, FINE_MS);
        let base = load(conn, Tier::Fine, monitor, start_ms)?.unwrap_or_default();
        Ok(Bucket {
            start_ms,
            base,
            counts: [0; 4],
            samples: Vec::new(),
        })
    }

    pub(crate) fn end_ms(&self) -> i64 {
        self.start_ms + FINE_MS
    }

    pub(crate) fn contains(&self, at_ms: i64) -> bool {
        floor_to(at_ms, FINE_MS) == self.start_ms
    }

    /// Counts one result.
    pub(crate) fn add(&mut self, status: i64, duration_us: i64) {
        let slot = match status {
            code::OK => 0,
            code::WARNING => 1,
            code::DOWN => 2,
            _ => 3,
        };
        self.counts[slot] += 1;
        if slot <= 1 {
            self.samples.push(duration_us);
            if self.samples.len() >= MAX_SAMPLES {
                self.base = self.summary();
                self.counts = [0; 4];
                self.samples.clear();
            }
        }
    }

    pub(crate) fn summary(&self) -> Summary {
        let mut samples = self.samples.clone();
        let fresh = Summary::from_samples(self.counts, &mut samples);
        if self.base.total() == 0 {
            fresh
        } else {
            Summary::combine(&[self.base, fresh])
        }
    }

    /// Writes the bucket and refreshes its hour and day.
    pub(crate) fn write(&self, conn: &Connection, monitor: i64) -> rusqlite::Result<()> {
        store(conn, Tier::Fine, monitor, self.start_ms, &self.summary())?;
        let hour = floor_to(self.start_ms, HOUR_MS);
        let day = floor_to(self.start_ms, DAY_MS);
        let h = combine_range(conn, Tier::Fine, monitor, hour, HOUR_MS)?;
        store(conn, Tier::Hour, monitor, hour, &h)?;
        let d = combine_range(conn, Tier::Hour, monitor, day, DAY_MS)?;
        store(conn, Tier::Day, monitor, day, &d)
    }
}

/// The rollup tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    Fine,
    Hour,
    Day,
}

impl Tier {
    fn select_one(self) -> &'static str {
        match self {
            Tier::Fine => "SELECT ok, warning, down, unknown, min_us, avg_us, max_us, p95_us FROM rollup_5m WHERE monitor_id = ?1 AND start_s = ?2",
            Tier::Hour => "SELECT ok, warning, down, unknown, min_us, avg_us, max_us, p95_us FROM rollup_1h WHERE monitor_id = ?1 AND start_s = ?2",
            Tier::Day => "SELECT ok, warning, down, unknown, min_us, avg_us, max_us, p95_us FROM rollup_1d WHERE monitor_id = ?1 AND start_s = ?2",
        }
    }

    fn select_range(self) -> &'static str {
        match self {
            Tier::Fine => "SELECT ok, warning, down, unknown, min_us, avg_us, max_us, p95_us FROM rollup_5m WHERE monitor_id = ?1 AND start_s >= ?2 AND start_s < ?3",
            Tier::Hour => "SELECT ok, warning, down, unknown, min_us, avg_us, max_us, p95_us FROM rollup_1h WHERE monitor_id = ?1 AND start_s >= ?2 AND start_s < ?3",
            Tier::Day => "SELECT ok, warning, down, unknown, min_us, avg_us, max_us, p95_us FROM rollup_1d WHERE monitor_id = ?1 AND start_s >= ?2 AND start_s < ?3",
        }
    }

    fn replace(self) -> &'static str {
        match self {
            Tier::Fine => "INSERT OR REPLACE INTO rollup_5m (monitor_id, start_s, ok, warning, down, unknown, min_us, avg_us, max_us, p95_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            Tier::Hour => "INSERT OR REPLACE INTO rollup_1h (monitor_id, start_s, ok, warning, down, unknown, min_us, avg_us, max_us, p95_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            Tier::Day => "INSERT OR REPLACE INTO rollup_1d (monitor_id, start_s, ok, warning, down, unknown, min_us, avg_us, max_us, p95_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        }
    }
}

fn row_summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<Summary> {
    Ok(Summary {
        ok: r.get(0)?,
        warning: r.get(1)?,
        down: r.get(2)?,
        unknown: r.get(3)?,
        min_us: r.get(4)?,
        avg_us: r.get(5)?,
        max_us: r.get(6)?,
        p95_us: r.get(7)?,
    })
}

fn load(
    conn: &Connection,
    tier: Tier,
    monitor: i64,
    start_ms: i64,
) -> rusqlite::Result<Option<Summary>> {
    conn.prepare_cached(tier.select_one())?
        .query_row(params![monitor, start_ms / SECOND_MS], row_summary)
        .optional()
}

fn combine_range(
    conn: &Connection,
    tier: Tier,
    monitor: i64,
    start_ms: i64,
    span_ms: i64,
) -> rusqlite::Result<Summary> {
    let mut stmt = conn.prepare_cached(tier.select_range())?;
    let parts = stmt
        .query_map(
            params![
                monitor,
                start_ms / SECOND_MS,
                (start_ms + span_ms) / SECOND_MS
            ],
            row_summary,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Summary::combine(&parts))
}

fn store(
    conn: &Connection,
    tier: Tier,
    monitor: i64,
    start_ms: i64,
    s: &Summary,
) -> rusqlite::Result<()> {
    conn.prepare_cached(tier.replace())?.execute(params![
        monitor,
        start_ms / SECOND_MS,
        s.ok,
        s.warning,
        s.down,
        s.unknown,
        s.min_us,
        s.avg_us,
        s.max_us,
        s.p95_us
    ])?;
    Ok(())
}

/// Reads the rollups of one tier for a monitor, oldest first (tests and future API use).
#[cfg(test)]
pub(crate) fn read_tier(
    conn: &Connection,
    tier: Tier,
    monitor: i64,
) -> rusqlite::Result<Vec<(i64, Summary)>> {
    let table = match tier {
        Tier::Fine => "rollup_5m",
        Tier::Hour => "rollup_1h",
        Tier::Day => "rollup_1d",
    };
    let sql = format!(
        "SELECT ok, warning, down, unknown, min_us, avg_us, max_us, p95_us, start_s FROM {table} WHERE monitor_id = ?1 ORDER BY start_s"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([monitor], |r| {
        Ok((r.get::<_, i64>(8)? * SECOND_MS, row_summary(r)?))
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_summarize_with_nearest_rank_p95() {
        let mut samples: Vec<i64> = (1..=100).rev().collect();
        let s = Summary::from_samples([100, 0, 3, 1], &mut samples);
        assert_eq!(s.min_us, Some(1));
        assert_eq!(s.max_us, Some(100));
        assert_eq!(s.avg_us, Some(50));
        assert_eq!(s.p95_us, Some(95));
        assert_eq!(s.total(), 104);
        let one = Summary::from_samples([1, 0, 0, 0], &mut [7]);
        assert_eq!(one.p95_us, Some(7));
    }

    #[test]
    fn no_answer_means_no_latency() {
        let s = Summary::from_samples([0, 0, 5, 0], &mut []);
        assert_eq!(
            (s.min_us, s.avg_us, s.max_us, s.p95_us),
            (None, None, None, None)
        );
        assert_eq!(Summary::combine(&[s, s]).down, 10);
        assert_eq!(Summary::combine(&[s, s]).avg_us, None);
    }

    #[test]
    fn combining_weights_averages_by_answered_results() {
        let a = Summary::from_samples([3, 0, 0, 0], &mut [10, 10, 10]);
        let b = Summary::from_samples([0, 1, 1, 0], &mut [50]);
        let c = Summary::combine(&[a, b]);
        assert_eq!((c.ok, c.warning, c.down), (3, 1, 1));
        assert_eq!(c.avg_us, Some(20));
        assert_eq!((c.min_us, c.max_us), (Some(10), Some(50)));
        // 3 of 4 answered results sit in bucket a: the 95th percentile falls in b.
        assert_eq!(c.p95_us, Some(50));
    }

    #[test]
    fn a_busy_bucket_folds_samples_without_changing_its_summary() {
        let conn = Connection::open_in_memory().unwrap();
        let mut b = Bucket {
            start_ms: 0,
            base: Summary::default(),
            counts: [0; 4],
            samples: Vec::new(),
        };
        for i in 0..(MAX_SAMPLES as i64 + 10) {
            b.add(code::OK, 1000 + i % 7);
        }
        b.add(code::DOWN, 5);
        assert!(b.samples.len() < 20);
        let s = b.summary();
        assert_eq!(s.ok, MAX_SAMPLES as i64 + 10);
        assert_eq!(s.down, 1);
        assert_eq!((s.min_us, s.max_us), (Some(1000), Some(1006)));
        drop(conn);
    }
}
