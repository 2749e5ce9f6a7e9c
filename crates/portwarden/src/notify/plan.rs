//! The decisions of one notifier's lane, as pure functions over its outbox rows: when the next
//! send is due, which rows it carries, what they become as one notification, and what a failed
//! attempt does to them. The dispatcher only runs them; tests run them with made-up times.
//!
//! The rules:
//! - Rows go out strictly in `seq` order; the head row blocks the rest (a DOWN is never
//!   overtaken by its UP).
//! - A quiet notifier sends `group_wait` after the head row was queued (a burst of events
//!   travels together). After a delivery, the next send waits until `group_window` has passed
//!   since it, and then carries everything queued meanwhile as one notification: a storm is
//!   one message per window, and the window is also the notifier's rate limit.
//! - `group_window` zero: no grouping, no waiting; rows go one by one.
//! - A failed attempt moves every row it carried to the same next attempt time (exponential
//!   backoff with jitter); after [`FAILING_AFTER`] attempts, or at once for a permanent error,
//!   the rows are `failing`: reported once, retried at the longest interval, never dropped.

use std::collections::VecDeque;

use portwarden_notify::{Kind, Notification, SendError};

use crate::store::{OutboxRow, RowState, RowUpdate};

/// Most events in one grouped notification; the rest follow in the next one.
pub const MAX_GROUP_ITEMS: usize = 500;
/// First retry after this long, doubling per attempt…
pub const BACKOFF_FIRST_MS: i64 = 1_000;
/// …up to this.
pub const BACKOFF_MAX_MS: i64 = 10 * 60 * 1_000;
/// Failed attempts before a row is reported as failing.
pub const FAILING_AFTER: u32 = 5;

/// When the lane's next send is due (Unix ms), or `None` when it has nothing to send.
pub fn due_ms(
    rows: &VecDeque<OutboxRow>,
    window_ms: i64,
    gather_ms: i64,
    last_sent_ms: Option<i64>,
) -> Option<i64> {
    let head = rows.front()?;
    if head.attempts > 0 || head.state == RowState::Failing {
        // A retry: its own schedule, whatever the window says.
        return Some(head.next_attempt_ms);
    }
    if window_ms <= 0 {
        return Some(head.next_attempt_ms.max(head.created_ms));
    }
    let gathered = head.created_ms + gather_ms;
    let window_end = last_sent_ms.map_or(i64::MIN, |l| l + window_ms);
    Some(gathered.max(window_end).max(head.next_attempt_ms))
}

/// How many rows from the head the next send carries. A message once attempted is frozen: a
/// retry carries exactly the rows the failed attempt carried (each of them got an attempt,
/// and the head blocks every later row), so it keeps its key and body and a receiver that
/// took the first attempt after all can drop the retry; rows queued since wait for the next
/// message.
pub fn batch_len(rows: &VecDeque<OutboxRow>, window_ms: i64) -> usize {
    let attempted = rows.iter().take_while(|r| r.attempts > 0).count();
    if attempted > 0 {
        return attempted;
    }
    if window_ms <= 0 {
        return rows.len().min(1);
    }
    let mut items = 0;
    let mut n = 0;
    for r in rows {
        items += r.notification.items.len();
        // The first row always goes, however large.
        if n > 0 && items > MAX_GROUP_ITEMS {
            break;
        }
        n += 1;
    }
    n
}

/// The rows of one send as one notification: a single row as itself, several as one
/// [`Kind::Grouped`] notification with every item in order. A group's id names its first row
/// and its size, so the same rows always make the same id.
pub fn compose(rows: &[OutboxRow]) -> Option<Notification> {
    let first = rows.first()?;
    if rows.len() == 1 {
        return Some(first.notification.clone());
    }
    Some(Notification {
        id: format!("group:{}:{}", first.notification.id, rows.len()),
        kind: Kind::Grouped,
        host: first.notification.host.clone(),
        at_ms: first.notification.at_ms,
        items: rows
            .iter()
            .flat_map(|r| r.notification.items.iter().cloned())
            .collect(),
    })
}

/// The pause before attempt `attempts + 1`: doubling from [`BACKOFF_FIRST_MS`] up to
/// [`BACKOFF_MAX_MS`], stretched by `jitter` (0 to 1) within ±20% so many notifiers that failed
/// together do not retry in lock step.
pub fn backoff_ms(attempts: u32, failing: bool, jitter: f64) -> i64 {
    let base = if failing {
        BACKOFF_MAX_MS
    } else {
        let doublings = attempts.saturating_sub(1).min(30);
        BACKOFF_FIRST_MS
            .saturating_mul(1_i64 << doublings)
            .min(BACKOFF_MAX_MS)
    };
    let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    (base as f64 * factor) as i64
}

/// What a failed attempt does to the rows it carried. Returns the updates and whether a row
/// became failing with this attempt (time to report it).
pub fn after_failure(
    rows: &mut VecDeque<OutboxRow>,
    seqs: &[i64],
    error: &SendError,
    now_ms: i64,
    jitter: f64,
) -> (Vec<RowUpdate>, bool) {
    let mut updates = Vec::with_capacity(seqs.len());
    let mut newly_failing = false;
    // Every row of the attempt shares the head's schedule, so the group stays together.
    let mut next = None;
    let carried: std::collections::HashSet<i64> = seqs.iter().copied().collect();
    for r in rows.iter_mut().filter(|r| carried.contains(&r.seq)) {
        r.attempts = r.attempts.saturating_add(1);
        let failing =
            !error.retryable || r.attempts >= FAILING_AFTER || r.state == RowState::Failing;
        if failing && r.state != RowState::Failing {
            newly_failing = true;
        }
        r.state = if failing {
            RowState::Failing
        } else {
            RowState::Pending
        };
        let at = *next.get_or_insert_with(|| now_ms + backoff_ms(r.attempts, failing, jitter));
        r.next_attempt_ms = at;
        r.last_error = Some(error.message.clone());
        updates.push(update_of(r));
    }
    (updates, newly_failing)
}

/// The stored bookkeeping of a row.
pub fn update_of(r: &OutboxRow) -> RowUpdate {
    RowUpdate {
        seq: r.seq,
        attempts: r.attempts,
        next_attempt_ms: r.next_attempt_ms,
        last_error: r.last_error.clone(),
        state: r.state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portwarden_notify::Item;

    /// The `group_wait` these tests use.
    const GATHER_MS: i64 = 50;

    fn row(seq: i64, created_ms: i64) -> OutboxRow {
        let item = Item {
            kind: Kind::Down,
            subject: format!("m{seq}"),
            target: None,
            status: "down".into(),
            reason: None,
            message: "refused".into(),
            received: None,
            detail: None,
            action: None,
            down_for_secs: None,
            since_ms: None,
            tags: vec![],
            incident: format!("h/m{seq}"),
        };
        OutboxRow {
            seq,
            notifier: "ops".into(),
            notification: crate::notify::items::single("h", item, created_ms),
            created_ms,
            attempts: 0,
            next_attempt_ms: created_ms,
            last_error: None,
            state: RowState::Pending,
        }
    }

    fn lane(rows: &[(i64, i64)]) -> VecDeque<OutboxRow> {
        rows.iter().map(|&(s, c)| row(s, c)).collect()
    }

    #[test]
    fn a_quiet_notifier_sends_after_the_gather_delay_then_waits_for_the_window() {
        let q = lane(&[(1, 1_000), (2, 1_010)]);
        assert_eq!(due_ms(&q, 30_000, GATHER_MS, None), Some(1_000 + GATHER_MS));
        assert_eq!(batch_len(&q, 30_000), 2);
        // Sent at 1 050: the next row waits for the window's end, whenever it arrives.
        let q = lane(&[(3, 2_000)]);
        assert_eq!(due_ms(&q, 30_000, GATHER_MS, Some(1_050)), Some(31_050));
        // A row queued long after the window is quiet again.
        let q = lane(&[(4, 100_000)]);
        assert_eq!(
            due_ms(&q, 30_000, GATHER_MS, Some(1_050)),
            Some(100_000 + GATHER_MS)
        );
        assert_eq!(due_ms(&VecDeque::new(), 30_000, GATHER_MS, None), None);
    }

    #[test]
    fn without_a_window_rows_go_one_by_one_at_once() {
        let q = lane(&[(1, 1_000), (2, 1_000)]);
        assert_eq!(due_ms(&q, 0, GATHER_MS, Some(999)), Some(1_000));
        assert_eq!(batch_len(&q, 0), 1);
        let n = compose(&q.iter().take(1).cloned().collect::<Vec<_>>()).unwrap();
        assert_eq!(n.kind, Kind::Down);
        assert_eq!(n.id, "m1:down:1000");
    }

    #[test]
    fn a_storm_becomes_one_grouped_notification_in_order_and_large_ones_are_split() {
        let q: VecDeque<OutboxRow> = (1..=MAX_GROUP_ITEMS as i64 + 7)
            .map(|s| row(s, s))
            .collect();
        assert_eq!(batch_len(&q, 3_000), MAX_GROUP_ITEMS);
        let rows: Vec<OutboxRow> = q.iter().take(200).cloned().collect();
        let n = compose(&rows).unwrap();
        assert_eq!(n.kind, Kind::Grouped);
        assert_eq!(n.items.len(), 200);
        let subjects: Vec<&str> = n.items.iter().map(|i| i.subject.as_str()).collect();
        let expected: Vec<String> = (1..=200).map(|s| format!("m{s}")).collect();
        assert_eq!(subjects, expected);
        assert_eq!(n.id, "group:m1:down:1:200");
        assert_eq!(compose(&rows).unwrap().id, n.id, "same rows, same id");
    }

    #[test]
    fn a_retry_carries_exactly_the_rows_of_the_failed_attempt() {
        // issue 14.2: rows queued after a failed attempt joined its retry, so every retry
        // had another key (group:m1:down:…:2, then :3, …) and receivers could not dedup.
        let mut q = lane(&[(1, 1_000), (2, 1_010)]);
        let first = compose(&q.iter().cloned().collect::<Vec<_>>()).unwrap();
        let error = SendError {
            message: "timed out".into(),
            retryable: true,
        };
        after_failure(&mut q, &[1, 2], &error, 2_000, 0.5);
        q.push_back(row(3, 2_500));
        q.push_back(row(4, 2_600));
        assert_eq!(batch_len(&q, 30_000), 2);
        let retry = compose(&q.iter().take(2).cloned().collect::<Vec<_>>()).unwrap();
        assert_eq!(retry.id, first.id);
        assert_eq!(retry.items.len(), first.items.len());
        // A second failure keeps it so; once delivered, the late rows go together.
        after_failure(&mut q, &[1, 2], &error, 4_000, 0.5);
        assert_eq!(batch_len(&q, 30_000), 2);
        q.pop_front();
        q.pop_front();
        assert_eq!(batch_len(&q, 30_000), 2);
        // Without grouping the head goes alone, retried or not.
        let mut q = lane(&[(5, 1_000), (6, 1_000)]);
        after_failure(&mut q, &[5], &error, 2_000, 0.5);
        assert_eq!(batch_len(&q, 0), 1);
    }

    #[test]
    fn backoff_doubles_to_ten_minutes_with_bounded_jitter() {
        assert_eq!(backoff_ms(1, false, 0.5), 1_000);
        assert_eq!(backoff_ms(2, false, 0.5), 2_000);
        assert_eq!(backoff_ms(4, false, 0.5), 8_000);
        assert_eq!(backoff_ms(40, false, 0.5), BACKOFF_MAX_MS);
        assert_eq!(backoff_ms(1, true, 0.5), BACKOFF_MAX_MS);
        assert_eq!(backoff_ms(1, false, 0.0), 800);
        assert_eq!(backoff_ms(1, false, 1.0), 1_200);
    }

    #[test]
    fn failures_keep_the_group_together_and_turn_failing_after_five_or_at_once_when_permanent() {
        let mut q = lane(&[(1, 0), (2, 0), (3, 0)]);
        let err = SendError {
            message: "refused".into(),
            retryable: true,
        };
        for attempt in 1..FAILING_AFTER {
            let (u, failing) = after_failure(&mut q, &[1, 2], &err, 10_000, 0.5);
            assert!(!failing, "attempt {attempt}");
            assert_eq!(u.len(), 2);
            assert_eq!(u[0].next_attempt_ms, u[1].next_attempt_ms);
        }
        assert_eq!(due_ms(&q, 30_000, GATHER_MS, None), Some(10_000 + 8_000));
        let (u, failing) = after_failure(&mut q, &[1, 2], &err, 20_000, 0.5);
        assert!(failing);
        assert_eq!(u[0].state, RowState::Failing);
        assert_eq!(u[0].next_attempt_ms, 20_000 + BACKOFF_MAX_MS);
        // Reported once: the next failure does not report again.
        let (_, again) = after_failure(&mut q, &[1, 2], &err, 30_000, 0.5);
        assert!(!again);
        // Row 3 was never attempted.
        assert_eq!(q[2].attempts, 0);

        let mut q = lane(&[(1, 0)]);
        let permanent = SendError {
            message: "HTTP 400".into(),
            retryable: false,
        };
        let (u, failing) = after_failure(&mut q, &[1], &permanent, 0, 0.5);
        assert!(failing);
        assert_eq!(u[0].attempts, 1);
        assert_eq!(u[0].last_error.as_deref(), Some("HTTP 400"));
    }
}
