//! How states are written in the database: small integers, plus one state of the store's own,
//! `OFFLINE`, for time in which nobody was watching (before a monitor's first record, while the
//! daemon was not running). The numbers are part of the schema: never renumber them.

use crate::state::Status;

pub(crate) const UNKNOWN: i64 = 0;
pub(crate) const OK: i64 = 1;
pub(crate) const WARNING: i64 = 2;
pub(crate) const DOWN: i64 = 3;
pub(crate) const FLAPPING: i64 = 4;
pub(crate) const PAUSED: i64 = 5;
/// Not a [`Status`]: the store knows nothing about the monitor for this time.
pub(crate) const OFFLINE: i64 = 6;

/// The database code of a state.
pub(crate) fn status_code(s: Status) -> i64 {
    match s {
        Status::Unknown => UNKNOWN,
        Status::Ok => OK,
        Status::Warning => WARNING,
        Status::Down => DOWN,
        Status::Flapping => FLAPPING,
        Status::Paused => PAUSED,
    }
}

/// The state a code stands for; `None` for `OFFLINE` and codes this build does not know.
pub(crate) fn status_from_code(code: i64) -> Option<Status> {
    match code {
        UNKNOWN => Some(Status::Unknown),
        OK => Some(Status::Ok),
        WARNING => Some(Status::Warning),
        DOWN => Some(Status::Down),
        FLAPPING => Some(Status::Flapping),
        PAUSED => Some(Status::Paused),
        _ => None,
    }
}

/// Whether time in this state counts towards uptime at all. Paused monitors and time nobody
/// watched are left out, so neither an operator's pause nor a stopped daemon costs uptime.
pub(crate) fn counts_as_observed(code: i64) -> bool {
    !matches!(code, PAUSED | OFFLINE)
}

/// Whether time in this state is downtime. Only `Down`: warning, unknown and flapping time
/// count as up (flapping never started an incident of its own either). Making flapping count
/// as down is a change here and nowhere else.
pub(crate) fn counts_as_down(code: i64) -> bool {
    code == DOWN
}

/// Parses the lowercase name of a state ([`Status::as_str`]).
#[cfg_attr(
    not(test),
    expect(
        dead_code,
        reason = "the inverse of status codes, kept with them; tests use it"
    )
)]
pub(crate) fn parse_status(name: &str) -> Option<Status> {
    [
        Status::Unknown,
        Status::Ok,
        Status::Warning,
        Status::Down,
        Status::Flapping,
        Status::Paused,
    ]
    .into_iter()
    .find(|s| s.as_str() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_code_and_name() {
        for s in [
            Status::Unknown,
            Status::Ok,
            Status::Warning,
            Status::Down,
            Status::Flapping,
            Status::Paused,
        ] {
            assert_eq!(status_from_code(status_code(s)), Some(s));
            assert_eq!(parse_status(s.as_str()), Some(s));
        }
        assert_eq!(status_from_code(OFFLINE), None);
        assert_eq!(parse_status("offline"), None);
    }

    #[test]
    fn only_down_is_downtime_and_paused_is_not_observed() {
        assert!(counts_as_down(DOWN));
        for c in [UNKNOWN, OK, WARNING, FLAPPING, PAUSED, OFFLINE] {
            assert!(!counts_as_down(c));
        }
        assert!(!counts_as_observed(PAUSED));
        assert!(!counts_as_observed(OFFLINE));
        assert!(counts_as_observed(FLAPPING));
    }
}
