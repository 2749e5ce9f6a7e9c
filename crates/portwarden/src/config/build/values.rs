//! The value checkers every section shares: a duration greater than zero, an integer in
//! range, a path taken from the file's directory, and the two relations between values that
//! more than one section checks (timeout against interval, window against the counts).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::{Issues, MAX_COUNT};
use crate::config::duration::HumanDuration;

pub(super) fn resolve_path(
    base: &Path,
    text: &Spanned<String>,
    path: &str,
    issues: &mut Issues,
) -> Option<PathBuf> {
    let t = text.get_ref();
    if t.trim().is_empty() {
        issues.add(text.span(), path, "must not be empty");
        return None;
    }
    Some(base.join(t))
}

pub(super) fn key_path(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

pub(super) fn longer_than_interval(timeout: Duration, interval: Duration) -> String {
    format!(
        "{} is longer than the interval ({}): a check must end before the next one starts; \
         set timeout to {} or less, or a longer interval",
        HumanDuration(timeout),
        HumanDuration(interval),
        HumanDuration(interval)
    )
}

pub(super) fn check_window(
    window: u32,
    fail_after: u32,
    recover_after: u32,
    span: Range<usize>,
    issues: &mut Issues,
) {
    let needed = fail_after.max(recover_after);
    if window < needed {
        issues.add(
            span,
            "window",
            format!(
                "{window} is smaller than fail_after ({fail_after}) or recover_after \
                 ({recover_after}): the last {window} results can never hold {needed}"
            ),
        );
    }
}

/// A duration that must be greater than zero; `None` when absent or zero (reported).
pub(super) fn positive(
    v: &Option<Spanned<HumanDuration>>,
    path: &str,
    issues: &mut Issues,
) -> Option<Duration> {
    let v = v.as_ref()?;
    if v.get_ref().get().is_zero() {
        issues.add(v.span(), path, "must be greater than 0");
        return None;
    }
    Some(v.get_ref().get())
}

/// An integer in `min..=max`; `None` when absent or out of range (reported).
pub(super) fn count(
    v: &Option<Spanned<i64>>,
    path: &str,
    min: i64,
    max: i64,
    issues: &mut Issues,
) -> Option<i64> {
    let v = v.as_ref()?;
    let n = *v.get_ref();
    if !(min..=max).contains(&n) {
        issues.add(v.span(), path, format!("must be {min}-{max}, got {n}"));
        return None;
    }
    Some(n)
}

pub(super) fn count32(
    v: &Option<Spanned<i64>>,
    path: &str,
    min: i64,
    issues: &mut Issues,
) -> Option<u32> {
    count(v, path, min, MAX_COUNT, issues).and_then(|n| u32::try_from(n).ok())
}
