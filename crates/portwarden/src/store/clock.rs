//! Time in the store: Unix milliseconds everywhere, read from a [`Clock`] that tests can set,
//! so a year of history is simulated in seconds.

#[cfg(test)]
use std::sync::atomic::{AtomicI64, Ordering};
#[cfg(test)]
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) const SECOND_MS: i64 = 1_000;
pub(crate) const MINUTE_MS: i64 = 60 * SECOND_MS;
pub(crate) const HOUR_MS: i64 = 60 * MINUTE_MS;
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;

/// Where "now" comes from: the system clock, or (tests) a value set by hand.
#[derive(Debug, Clone, Default)]
pub(crate) enum Clock {
    #[default]
    System,
    /// Milliseconds since the epoch, moved by the test.
    #[cfg(test)]
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A clock that stands at `ms` until moved with [`Clock::set`].
    #[cfg(test)]
    pub(crate) fn manual(ms: i64) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(ms)))
    }

    /// Moves a manual clock (no effect on the system clock).
    #[cfg(test)]
    pub(crate) fn set(&self, ms: i64) {
        if let Clock::Manual(v) = self {
            v.store(ms, Ordering::SeqCst);
        }
    }

    /// Now, in Unix milliseconds.
    pub(crate) fn now_ms(&self) -> i64 {
        match self {
            Clock::System => unix_ms(SystemTime::now()),
            #[cfg(test)]
            Clock::Manual(v) => v.load(Ordering::SeqCst),
        }
    }
}

/// A point in time as Unix milliseconds (negative before 1970, saturating far out).
pub(crate) fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// The `SystemTime` of Unix milliseconds.
#[cfg(test)]
pub(crate) fn system_time(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

/// A duration in whole microseconds, saturating.
pub(crate) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// The start of the `size_ms` bucket holding `ms` (also right for times before 1970).
pub(crate) fn floor_to(ms: i64, size_ms: i64) -> i64 {
    ms.div_euclid(size_ms).saturating_mul(size_ms)
}

/// `20261126T115338Z`: a UTC timestamp that is safe in a file name.
pub(crate) fn file_stamp(t: SystemTime) -> String {
    let secs = unix_ms(t).div_euclid(SECOND_MS);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(dt) => format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        ),
        Err(_) => secs.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_ms_round_trips_both_sides_of_the_epoch() {
        for ms in [0, 1, 1_764_158_018_123, -1, -86_400_000] {
            assert_eq!(unix_ms(system_time(ms)), ms);
        }
    }

    #[test]
    fn buckets_floor_towards_minus_infinity() {
        assert_eq!(floor_to(7_199_999, HOUR_MS), HOUR_MS);
        assert_eq!(floor_to(-1, HOUR_MS), -HOUR_MS);
        assert_eq!(floor_to(i64::MIN, HOUR_MS), i64::MIN);
    }

    #[test]
    fn file_stamps_are_utc_and_compact() {
        assert_eq!(
            file_stamp(system_time(1_764_158_018_000)),
            "20251126T115338Z"
        );
    }

    #[test]
    fn a_manual_clock_moves_only_when_set() {
        let c = Clock::manual(5);
        assert_eq!(c.now_ms(), 5);
        c.set(9);
        assert_eq!(c.now_ms(), 9);
    }
}
