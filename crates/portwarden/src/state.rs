//! The monitor state machine: results in, states and transitions out.
//!
//! `fail_after` consecutive failures (or that many within the last `window` results) take a
//! monitor down, `recover_after` successes bring it back; too many up/down flips within the
//! flap window show as one `Flapping` state instead of a storm of transitions. In the spirit
//! of pingora's health checks: count, and report transitions only.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::monitor::Policy;

/// A monitor's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No verdict yet, or the probe itself could not decide.
    Unknown,
    Ok,
    /// Answering, but slow or with a certificate about to expire.
    Warning,
    Down,
    /// Changing state too often; one event instead of many.
    Flapping,
    /// Checks stopped by an operator.
    Paused,
}

impl Status {
    /// The lowercase name used in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Down => "down",
            Status::Flapping => "flapping",
            Status::Paused => "paused",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one check said, as the state machine needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub verdict: portwarden_probe::State,
    pub reason: Option<portwarden_probe::Reason>,
    pub message: String,
}

/// A change of state, for events and the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
    /// The reason of the result that caused it.
    pub reason: Option<portwarden_probe::Reason>,
    pub message: String,
    /// On leaving Down: how long it was down.
    pub down_for: Option<Duration>,
}

/// The state machine of one monitor: counts failures and successes (in a row, or within the
/// last `window` results), turns them into states, detects flapping. Pure: time comes in as
/// arguments, so it is tested without clocks.
#[derive(Debug, Clone)]
pub struct Tracker {
    policy: Policy,
    status: Status,
    /// The state without flapping suppression: what the results say.
    underlying: Status,
    /// The last results, `true` = failed; as many as the policy needs.
    recent: VecDeque<bool>,
    /// When `underlying` changed between up and down, within the flap window.
    flips: VecDeque<Instant>,
    /// When the monitor went down (start of the open incident).
    down_since: Option<Instant>,
}

impl Tracker {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            status: Status::Unknown,
            underlying: Status::Unknown,
            recent: VecDeque::new(),
            flips: VecDeque::new(),
            down_since: None,
        }
    }

    /// The status now (with flapping suppression).
    pub fn status(&self) -> Status {
        self.status
    }

    /// Feeds one result; returns the transition it caused, if any.
    pub fn observe(&mut self, outcome: &Outcome, now: Instant) -> Option<Transition> {
        if self.status == Status::Paused {
            return None;
        }
        // portwarden's own host ran out of descriptors, ports or memory: the check says
        // nothing about the target, so it neither counts nor changes the state. A thousand
        // monitors would otherwise flip to unknown and back (and a warning be announced again)
        // each time the prober is starved; the starvation is reported on its own (log,
        // `/healthz`, `portwarden_local_resource_errors_total`).
        if outcome.reason == Some(portwarden_probe::Reason::LocalResources) {
            return None;
        }
        let failed = outcome.verdict == portwarden_probe::State::Critical;
        let memory = self
            .policy
            .window
            .unwrap_or(self.policy.fail_after.max(self.policy.recover_after))
            .max(1);
        // An undecided result is neither a failure nor a success.
        if outcome.verdict != portwarden_probe::State::Unknown {
            self.recent.push_back(failed);
        }
        while self.recent.len() > memory as usize {
            self.recent.pop_front();
        }
        let next = self.next_underlying(outcome.verdict);
        let was_down = self.underlying == Status::Down;
        let is_down = next == Status::Down;
        self.underlying = next;
        let mut down_for = None;
        if is_down && !was_down {
            self.flips.push_back(now);
            if self.down_since.is_none() {
                self.down_since = Some(now);
            }
        } else if was_down && !is_down {
            self.flips.push_back(now);
        }
        while self
            .flips
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.policy.flap_window)
        {
            self.flips.pop_front();
        }
        let flapping = self.flips.len() > self.policy.flap_max_transitions as usize;
        let shown = if flapping {
            Status::Flapping
        } else if self.status == Status::Flapping && !self.flips.is_empty() {
            // Calm again only after a whole window without a flip.
            Status::Flapping
        } else {
            next
        };
        if shown != Status::Down && shown != Status::Flapping {
            if let Some(since) = self.down_since.take() {
                down_for = Some(now.duration_since(since));
            }
        }
        self.change(shown, outcome, down_for)
    }

    fn next_underlying(&self, verdict: portwarden_probe::State) -> Status {
        let fails = |n: u32| -> bool {
            match self.policy.window {
                Some(_) => self.recent.iter().filter(|f| **f).count() >= n as usize,
                None => {
                    self.recent.len() >= n as usize
                        && self.recent.iter().rev().take(n as usize).all(|f| *f)
                }
            }
        };
        let successes = |n: u32| -> bool {
            match self.policy.window {
                Some(_) => self.recent.iter().filter(|f| !**f).count() >= n as usize,
                None => {
                    self.recent.len() >= n as usize
                        && self.recent.iter().rev().take(n as usize).all(|f| !*f)
                }
            }
        };
        let answered = match verdict {
            portwarden_probe::State::Warning => Status::Warning,
            portwarden_probe::State::Unknown => Status::Unknown,
            _ => Status::Ok,
        };
        match (self.underlying, verdict) {
            (Status::Down, portwarden_probe::State::Critical) => Status::Down,
            (Status::Down, portwarden_probe::State::Unknown) => Status::Down,
            (Status::Down, _) if successes(self.policy.recover_after) => answered,
            (Status::Down, _) => Status::Down,
            (_, portwarden_probe::State::Critical) if fails(self.policy.fail_after) => Status::Down,
            // A failure short of fail_after leaves the state as it was.
            (current, portwarden_probe::State::Critical) => current,
            (_, _) => answered,
        }
    }

    fn change(
        &mut self,
        to: Status,
        outcome: &Outcome,
        down_for: Option<Duration>,
    ) -> Option<Transition> {
        if to == self.status {
            return None;
        }
        let from = std::mem::replace(&mut self.status, to);
        Some(Transition {
            from,
            to,
            reason: outcome.reason,
            message: outcome.message.clone(),
            down_for,
        })
    }

    /// Stops evaluating results (the scheduler stops checking too).
    pub fn pause(&mut self) -> Option<Transition> {
        let outcome = Outcome {
            verdict: portwarden_probe::State::Unknown,
            reason: None,
            message: "paused".into(),
        };
        self.change(Status::Paused, &outcome, None)
    }

    /// Starts afresh after a pause: counters cleared, state unknown until the next result.
    pub fn resume(&mut self) -> Option<Transition> {
        if self.status != Status::Paused {
            return None;
        }
        self.recent.clear();
        self.flips.clear();
        self.underlying = if self.down_since.is_some() {
            Status::Down
        } else {
            Status::Unknown
        };
        let outcome = Outcome {
            verdict: portwarden_probe::State::Unknown,
            reason: None,
            message: "resumed".into(),
        };
        self.change(Status::Unknown, &outcome, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            fail_after: 3,
            recover_after: 2,
            window: None,
            flap_max_transitions: 4,
            flap_window: Duration::from_secs(600),
        }
    }

    fn result(verdict: portwarden_probe::State) -> Outcome {
        Outcome {
            verdict,
            reason: (verdict != portwarden_probe::State::Ok)
                .then_some(portwarden_probe::Reason::Refused),
            message: format!("{verdict}"),
        }
    }

    /// Feeds verdicts 10 s apart; returns the status after each.
    fn run(t: &mut Tracker, start: Instant, verdicts: &[portwarden_probe::State]) -> Vec<Status> {
        verdicts
            .iter()
            .enumerate()
            .map(|(i, v)| {
                t.observe(&result(*v), start + Duration::from_secs(10 * i as u64));
                t.status()
            })
            .collect()
    }

    use portwarden_probe::State::{Critical as C, Ok as O, Unknown as U, Warning as W};

    #[test]
    fn goes_down_after_fail_after_in_a_row_and_up_after_recover_after() {
        let mut t = Tracker::new(policy());
        let s = run(&mut t, Instant::now(), &[O, C, C, O, C, C, C, C, O, O, O]);
        use Status::*;
        assert_eq!(s, vec![Ok, Ok, Ok, Ok, Ok, Ok, Down, Down, Down, Ok, Ok]);
    }

    #[test]
    fn reports_the_outage_duration_on_recovery() {
        let mut t = Tracker::new(policy());
        let start = Instant::now();
        let mut transitions = Vec::new();
        for (i, v) in [O, C, C, C, C, O, O].iter().enumerate() {
            if let Some(tr) = t.observe(&result(*v), start + Duration::from_secs(10 * i as u64)) {
                transitions.push(tr);
            }
        }
        let down = &transitions[1];
        assert_eq!((down.from, down.to), (Status::Ok, Status::Down));
        assert_eq!(down.reason, Some(portwarden_probe::Reason::Refused));
        let up = &transitions[2];
        assert_eq!((up.from, up.to), (Status::Down, Status::Ok));
        // Down at the 3rd failure (t=30 s), up at the 2nd success (t=60 s).
        assert_eq!(up.down_for, Some(Duration::from_secs(30)));
    }

    #[test]
    fn n_of_the_last_m_counts_scattered_failures() {
        let mut t = Tracker::new(Policy {
            window: Some(5),
            ..policy()
        });
        let s = run(&mut t, Instant::now(), &[C, O, C, O, C]);
        assert_eq!(s.last(), Some(&Status::Down));
        let mut in_a_row = Tracker::new(policy());
        let s = run(&mut in_a_row, Instant::now(), &[C, O, C, O, C]);
        assert_eq!(s.last(), Some(&Status::Ok));
    }

    #[test]
    fn warning_and_unknown_are_states_of_their_own() {
        let mut t = Tracker::new(policy());
        let s = run(&mut t, Instant::now(), &[U, W, O, U]);
        use Status::*;
        assert_eq!(s, vec![Unknown, Warning, Ok, Unknown]);
        // An unknown result does not end an outage.
        let mut t = Tracker::new(policy());
        let s = run(&mut t, Instant::now(), &[C, C, C, U, O]);
        assert_eq!(s, vec![Unknown, Unknown, Down, Down, Down]);
    }

    /// Issue 14: the prober's own exhaustion (EMFILE …) was taken for the target's outage.
    #[test]
    fn local_resource_unknowns_never_take_a_monitor_down_nor_change_its_state() {
        let starved = Outcome {
            verdict: U,
            reason: Some(portwarden_probe::Reason::LocalResources),
            message: "out of descriptors".into(),
        };
        let start = Instant::now();
        for before in [O, W, C] {
            let mut t = Tracker::new(Policy {
                fail_after: 1,
                ..policy()
            });
            run(&mut t, start, &[before]);
            let status = t.status();
            for i in 1..=50 {
                let at = start + Duration::from_secs(10 * i);
                assert_eq!(t.observe(&starved, at), None, "after {before}");
            }
            assert_eq!(t.status(), status, "after {before}");
        }
        // Nor do they break a run of real failures, or count as one.
        let mut t = Tracker::new(policy());
        for v in [C, C] {
            t.observe(&result(v), start);
        }
        t.observe(&starved, start);
        assert_eq!(t.status(), Status::Unknown);
        t.observe(&result(C), start);
        assert_eq!(t.status(), Status::Down);
    }

    #[test]
    fn flapping_gives_one_state_instead_of_many_and_calms_down() {
        let mut t = Tracker::new(Policy {
            fail_after: 1,
            recover_after: 1,
            ..policy()
        });
        let start = Instant::now();
        let mut transitions = Vec::new();
        let pattern = [C, O, C, O, C, O, C, O, C, O];
        for (i, v) in pattern.iter().enumerate() {
            if let Some(tr) = t.observe(&result(*v), start + Duration::from_secs(10 * i as u64)) {
                transitions.push(tr.to);
            }
        }
        use Status::*;
        // Down, Ok, Down, Ok, then the 5th flip within the window is flapping; no more events.
        assert_eq!(transitions, vec![Down, Ok, Down, Ok, Flapping]);
        // Stable results for longer than the window end the flapping.
        let later = start + Duration::from_secs(100);
        for i in 0..70 {
            t.observe(&result(O), later + Duration::from_secs(10 * i));
        }
        assert_eq!(t.status(), Ok);
    }

    #[test]
    fn pause_freezes_and_resume_starts_afresh() {
        let mut t = Tracker::new(policy());
        let start = Instant::now();
        run(&mut t, start, &[O]);
        assert_eq!(t.pause().map(|tr| tr.to), Some(Status::Paused));
        assert_eq!(t.observe(&result(C), start), None);
        assert_eq!(t.resume().map(|tr| tr.to), Some(Status::Unknown));
        assert_eq!(t.resume(), None);
        run(&mut t, start, &[O]);
        assert_eq!(t.status(), Status::Ok);
    }
}
