//! The store's knobs: queue and batch sizes, how often to retry a failed database, and the
//! retention tiers. Not user configuration: the defaults are what keeps one monitor under its
//! 256 KiB budget; tests shrink the timings.

use std::time::Duration;

use super::clock::{Clock, DAY_MS, HOUR_MS, MINUTE_MS};

/// Width of the finest rollup tier.
pub(crate) const FINE_MS: i64 = 5 * MINUTE_MS;

/// How long each kind of row is kept, and the caps that bound a misbehaving monitor.
#[derive(Debug, Clone)]
pub(crate) struct Retention {
    /// Raw results (one row per check).
    pub raw_ms: i64,
    /// 5-minute rollups.
    pub fine_ms: i64,
    /// Hourly rollups.
    pub hourly_ms: i64,
    /// Daily rollups.
    pub daily_ms: i64,
    /// State changes, compacted totals and closed incidents: long enough for the 365-day
    /// uptime (plus a day, so the window's first day is always complete).
    pub detail_ms: i64,
    /// Compacted uptime totals stay hourly for this long, then merge into daily totals.
    pub hourly_totals_ms: i64,
    /// State changes kept per monitor before the oldest are compacted into totals.
    pub max_transitions: u32,
    /// Incidents kept per monitor; the oldest go first.
    pub max_incidents: u32,
    /// Longest incident message kept, in bytes (cut at a character boundary).
    pub message_bytes: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            raw_ms: HOUR_MS,
            fine_ms: 25 * HOUR_MS,
            hourly_ms: 35 * DAY_MS,
            daily_ms: 731 * DAY_MS,
            detail_ms: 366 * DAY_MS,
            hourly_totals_ms: 8 * DAY_MS,
            max_transitions: 1536,
            max_incidents: 128,
            message_bytes: 160,
        }
    }
}

/// Everything the store task and its handles need to know besides the path.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Messages the queue holds before `record` waits.
    pub queue: usize,
    /// Longest `record` / `transition` waits for room in the queue before dropping.
    pub send_timeout: Duration,
    /// Most messages committed in one transaction.
    pub batch_max: usize,
    /// Longest a message waits for companions before its batch is committed.
    pub batch_wait: Duration,
    /// Pause between attempts to reopen a failed database.
    pub retry_every: Duration,
    /// State changes held in memory while the database is failed ([`super::journal`]); a
    /// change takes about 300 bytes (messages cut to `message_bytes`), so the default holds
    /// at most ~30 MiB (measured: `a_full_journal_costs_little_memory…` in the tests).
    pub journal_max: usize,
    /// Period of the housekeeping pass (idle buckets, idle monitors' retention, size).
    pub sweep_every: Duration,
    /// A rollup bucket with no new result for this long after its end is written out.
    pub idle_close_ms: i64,
    /// Monitors whose retention the housekeeping pass checks per run.
    pub sweep_monitors: usize,
    pub retention: Retention,
    pub clock: Clock,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            queue: 16_384,
            send_timeout: Duration::from_secs(2),
            batch_max: 2_048,
            batch_wait: Duration::from_millis(150),
            retry_every: Duration::from_secs(30),
            journal_max: 100_000,
            sweep_every: Duration::from_secs(10),
            idle_close_ms: 2 * MINUTE_MS,
            sweep_monitors: 200,
            retention: Retention::default(),
            clock: Clock::System,
        }
    }
}
