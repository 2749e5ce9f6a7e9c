//! The sentences of the healing engine, for notifications, the log and the API:
//! `restarted nginx.service (job done); 127.0.0.1:80 answering again after 1.8 s`,
//! `restarted nginx.service (job done) but 127.0.0.1:80 still refuses after 10 s`.

use std::time::Duration;

use crate::events::ActionReport;

/// What came of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Answering again this long after the action was issued.
    Fixed(Duration),
    /// Still failing after the grace; the reason of the last check, when one ran.
    NotFixed(Option<portwarden_probe::Reason>),
    /// The action itself failed.
    Failed,
    /// Not verified: the daemon is stopping.
    Unverified,
}

/// `1.8 s`, `10 s`, `5m`, `1h 30m`.
pub fn secs(d: Duration) -> String {
    if d < Duration::from_secs(60) {
        let tenths = (d.as_millis() + 50) / 100;
        if tenths % 10 == 0 {
            format!("{} s", tenths / 10)
        } else {
            format!("{}.{} s", tenths / 10, tenths % 10)
        }
    } else {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    }
}

/// `restart (step 1, attempt 2)`.
pub fn position(r: &ActionReport) -> String {
    format!("{} (step {}, attempt {})", r.action, r.step, r.attempt)
}

/// How a failing check reads after "still".
fn still(reason: Option<portwarden_probe::Reason>) -> &'static str {
    use portwarden_probe::Reason::*;
    match reason {
        Some(Refused) => "refuses",
        Some(ConnectTimeout | ReadTimeout) => "does not answer",
        Some(Reset | NoData) => "hangs up",
        Some(UnexpectedResponse) => "answers wrongly",
        Some(WrongOwner) => "is held by the wrong program",
        Some(_) => "fails",
        None => "does not answer",
    }
}

/// The sentence of one attempt.
pub fn attempt(
    outcome: &portwarden_act::Outcome,
    target: &str,
    effect: &Effect,
    grace: Duration,
) -> String {
    let summary = if outcome.summary.is_empty() {
        "action ran"
    } else {
        outcome.summary.as_str()
    };
    match effect {
        Effect::Fixed(after) => {
            format!("{summary}; {target} answering again after {}", secs(*after))
        }
        Effect::NotFixed(reason) => format!(
            "{summary} but {target} still {} after {}",
            still(*reason),
            secs(grace)
        ),
        Effect::Failed => format!("action failed: {summary}"),
        Effect::Unverified => format!("{summary}; not verified, portwarden is stopping"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(summary: &str) -> portwarden_act::Outcome {
        portwarden_act::Outcome {
            ok: true,
            summary: summary.into(),
            output: String::new(),
            took: Duration::from_millis(300),
        }
    }

    #[test]
    fn sentences_say_what_was_done_and_what_came_of_it() {
        let o = outcome("restarted nginx.service (job done)");
        assert_eq!(
            attempt(
                &o,
                "127.0.0.1:80",
                &Effect::Fixed(Duration::from_millis(1830)),
                Duration::from_secs(10)
            ),
            "restarted nginx.service (job done); 127.0.0.1:80 answering again after 1.8 s"
        );
        assert_eq!(
            attempt(
                &o,
                "127.0.0.1:80",
                &Effect::NotFixed(Some(portwarden_probe::Reason::Refused)),
                Duration::from_secs(10)
            ),
            "restarted nginx.service (job done) but 127.0.0.1:80 still refuses after 10 s"
        );
        assert_eq!(
            attempt(
                &outcome("exec /usr/local/bin/fix: exit 1"),
                "x",
                &Effect::Failed,
                Duration::ZERO
            ),
            "action failed: exec /usr/local/bin/fix: exit 1"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(secs(Duration::from_millis(40)), "0 s");
        assert_eq!(secs(Duration::from_millis(1850)), "1.9 s");
        assert_eq!(secs(Duration::from_secs(300)), "5m");
        assert_eq!(secs(Duration::from_secs(5400)), "1h 30m");
    }
}
