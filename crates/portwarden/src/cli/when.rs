//! Times as a person reads them: the local date and time and how far away it is
//! (`2026-12-08 14:05 UTC (in 30m)`), never a bare Unix time.

use std::time::Duration;

/// `2026-12-08 14:05:09 +01:00` in the machine's local time zone (`UTC` when that is UTC or
/// cannot be read).
pub fn local(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let offset = local_offset_secs(secs);
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(secs.saturating_add(offset)) else {
        return format!("{unix_ms} ms after 1970");
    };
    let zone = if offset == 0 {
        "UTC".to_string()
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let o = offset.unsigned_abs();
        format!("{sign}{:02}:{:02}", o / 3600, (o % 3600) / 60)
    };
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02} {zone}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `2026-12-08 14:05:09 UTC (in 30m)`; a time already past reads `(… ago)`.
pub fn until(unix_ms: i64, now_ms: i64) -> String {
    let ahead = unix_ms - now_ms;
    let d = Duration::from_millis(ahead.unsigned_abs());
    let d = crate::events::humanize(d);
    if ahead >= 0 {
        format!("{} (in {d})", local(unix_ms))
    } else {
        format!("{} ({d} ago)", local(unix_ms))
    }
}

/// The local zone's offset from UTC at `unix_secs`, in seconds.
#[cfg(unix)]
#[expect(
    unsafe_code,
    reason = "localtime_r: the C library is what knows the time zone"
)]
fn local_offset_secs(unix_secs: i64) -> i64 {
    // `time_t` is 32 bits on some targets.
    let Some(t) = libc::time_t::try_from(unix_secs).ok() else {
        return 0;
    };
    // SAFETY: `tm` is a plain C struct for which all-zero is a valid value; localtime_r is
    // reentrant, reads `t` and writes only `tm`, both alive for the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let filled = unsafe { libc::localtime_r(&t, &mut tm) };
    if filled.is_null() {
        return 0;
    }
    #[allow(
        clippy::useless_conversion,
        reason = "c_long is 64 bits here, 32 bits on some targets"
    )]
    i64::from(tm.tm_gmtoff)
}

#[cfg(not(unix))]
fn local_offset_secs(_unix_secs: i64) -> i64 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_dates_with_the_time_left() {
        // The machines this runs on keep UTC (TZ unset, /etc/localtime UTC); elsewhere only
        // the zone differs.
        if local_offset_secs(0) != 0 {
            return;
        }
        assert_eq!(local(1_796_664_149_000), "2026-12-07 17:22:29 UTC");
        assert_eq!(
            until(1_796_664_149_000, 1_796_664_149_000 - 30 * 60_000),
            "2026-12-07 17:22:29 UTC (in 30m 0s)"
        );
        assert_eq!(
            until(1_796_664_149_000, 1_796_664_149_000 + 2 * 3_600_000),
            "2026-12-07 17:22:29 UTC (2h 0m ago)"
        );
    }
}
