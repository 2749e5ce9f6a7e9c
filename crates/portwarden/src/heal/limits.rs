//! A monitor's healing counters and the limits around them: at most `max_actions` within
//! `window` (then give up), `cooldown` between two actions, and everything forgotten after
//! `reset_after` of continuous health. Pure: time comes in as arguments (tokio instants, so
//! the engine's tests run under paused time).
//!
//! The ladder position is part of the counters on purpose: a fix that does not hold (the
//! service dies again right after every restart) moves on to the next step, and a restart
//! storm ends in "gave up" after exactly `max_actions` actions instead of looping.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::ladder::{Position, Rung};
use crate::monitor::Heal;

/// What the engine does next for a failing monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run ladder step `step` (0-based) for its `attempt`-th time, after `wait` (the rest of
    /// the cooldown; zero for the first action).
    Act {
        step: usize,
        attempt: u32,
        wait: Duration,
    },
    /// Stop acting: a person must look. The text says why.
    GiveUp(String),
}

/// One monitor's counters.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// When each action within the current window was issued, oldest first.
    actions: VecDeque<Instant>,
    last_action: Option<Instant>,
    position: Position,
    /// Why the engine gave up; kept until the counters reset.
    gave_up: Option<String>,
    /// Healthy (ok or warning) without a break since then; `None` while not healthy.
    healthy_since: Option<Instant>,
}

impl Counters {
    /// The monitor answers (ok or warning).
    pub fn healthy(&mut self, now: Instant) {
        self.healthy_since.get_or_insert(now);
    }

    /// The monitor is failing again. If it was healthy for `reset_after` first, everything
    /// starts afresh; returns whether it did.
    pub fn unhealthy(&mut self, heal: &Heal, now: Instant) -> bool {
        let since = self.healthy_since.take();
        let reset = since.is_some_and(|t| now.saturating_duration_since(t) >= heal.reset_after);
        let anything = self.last_action.is_some() || self.gave_up.is_some();
        if reset && anything {
            *self = Counters::default();
            return true;
        }
        false
    }

    /// What comes next under `heal` at `now`.
    pub fn decide(&mut self, heal: &Heal, now: Instant) -> Decision {
        if let Some(why) = &self.gave_up {
            return Decision::GiveUp(why.clone());
        }
        self.prune(heal, now);
        if self.actions.len() >= heal.max_actions as usize {
            return Decision::GiveUp(format!(
                "{} actions within {} did not fix it for good",
                self.actions.len(),
                humantime::format_duration(heal.window)
            ));
        }
        match self.position.next(&heal.steps) {
            Rung::Exhausted => {
                Decision::GiveUp(format!("every step was tried ({})", describe_ladder(heal)))
            }
            Rung::Try { step, attempt } => Decision::Act {
                step,
                attempt,
                wait: self
                    .last_action
                    .map(|t| (t + heal.cooldown).saturating_duration_since(now))
                    .unwrap_or_default(),
            },
        }
    }

    /// An action of `step` was issued at `now`.
    pub fn acted(&mut self, step: usize, now: Instant) {
        self.actions.push_back(now);
        self.last_action = Some(now);
        self.position.tried(step);
    }

    /// A step counts as tried without an action (refused before it ran: the daemon's own unit).
    pub fn skipped(&mut self, step: usize) {
        self.position.tried(step);
    }

    pub fn give_up(&mut self, why: String) {
        self.gave_up = Some(why);
    }

    /// Why the engine gave up, while it stays given up.
    pub fn gave_up(&self) -> Option<&str> {
        self.gave_up.as_deref()
    }

    /// Actions within the window at `now`.
    pub fn in_window(&self, heal: &Heal, now: Instant) -> usize {
        self.actions
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < heal.window)
            .count()
    }

    /// The next try (0-based step, 1-based attempt), if any is left.
    pub fn next(&self, heal: &Heal) -> Option<(usize, u32)> {
        match self.position.next(&heal.steps) {
            Rung::Try { step, attempt } => Some((step, attempt)),
            Rung::Exhausted => None,
        }
    }

    fn prune(&mut self, heal: &Heal, now: Instant) {
        while self
            .actions
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= heal.window)
        {
            self.actions.pop_front();
        }
    }
}

/// `restart ×2, reboot`: the ladder for people.
pub fn describe_ladder(heal: &Heal) -> String {
    heal.steps
        .iter()
        .map(|s| match s.attempts {
            0 | 1 => s.action.kind().to_string(),
            n => format!("{} ×{n}", s.action.kind()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::Step;

    fn heal(attempts: &[u32]) -> Heal {
        Heal {
            steps: attempts
                .iter()
                .map(|a| Step {
                    action: serde_json::from_value(
                        serde_json::json!({"type": "restart", "unit": "a.service"}),
                    )
                    .unwrap(),
                    attempts: *a,
                    grace: Duration::from_secs(10),
                })
                .collect(),
            max_actions: 3,
            window: Duration::from_secs(600),
            cooldown: Duration::from_secs(30),
            reset_after: Duration::from_secs(600),
        }
    }

    fn act(c: &mut Counters, h: &Heal, now: Instant) -> Decision {
        let d = c.decide(h, now);
        if let Decision::Act { step, .. } = d {
            c.acted(step, now);
        }
        d
    }

    #[test]
    fn the_first_action_waits_for_nothing_the_next_for_the_cooldown() {
        let h = heal(&[5]);
        let t0 = Instant::now();
        let mut c = Counters::default();
        assert_eq!(
            act(&mut c, &h, t0),
            Decision::Act {
                step: 0,
                attempt: 1,
                wait: Duration::ZERO
            }
        );
        assert_eq!(
            c.decide(&h, t0 + Duration::from_secs(10)),
            Decision::Act {
                step: 0,
                attempt: 2,
                wait: Duration::from_secs(20)
            }
        );
    }

    #[test]
    fn max_actions_within_the_window_gives_up_and_old_actions_leave_the_window() {
        let h = heal(&[10]);
        let t0 = Instant::now();
        let mut c = Counters::default();
        for i in 0..3 {
            assert!(matches!(
                act(&mut c, &h, t0 + Duration::from_secs(60 * i)),
                Decision::Act { .. }
            ));
        }
        let d = c.decide(&h, t0 + Duration::from_secs(200));
        assert_eq!(
            d,
            Decision::GiveUp("3 actions within 10m did not fix it for good".into())
        );
        // Ten and a half minutes later the first action is out of the window.
        assert!(matches!(
            c.decide(&h, t0 + Duration::from_secs(630)),
            Decision::Act { attempt: 4, .. }
        ));
        assert_eq!(c.in_window(&h, t0 + Duration::from_secs(630)), 2);
    }

    #[test]
    fn an_exhausted_ladder_gives_up_and_stays_given_up_until_a_healthy_spell() {
        let h = heal(&[1, 1]);
        let t0 = Instant::now();
        let mut c = Counters::default();
        act(&mut c, &h, t0);
        act(&mut c, &h, t0 + Duration::from_secs(30));
        let Decision::GiveUp(why) = c.decide(&h, t0 + Duration::from_secs(60)) else {
            panic!("expected to give up");
        };
        assert_eq!(why, "every step was tried (restart, restart)");
        c.give_up(why);
        // Healthy for a minute only: still given up.
        c.healthy(t0 + Duration::from_secs(100));
        assert!(!c.unhealthy(&h, t0 + Duration::from_secs(160)));
        assert!(c.gave_up().is_some());
        // Healthy for ten minutes: everything starts afresh.
        c.healthy(t0 + Duration::from_secs(200));
        assert!(c.unhealthy(&h, t0 + Duration::from_secs(800)));
        assert_eq!(c.gave_up(), None);
        assert_eq!(
            c.decide(&h, t0 + Duration::from_secs(800)),
            Decision::Act {
                step: 0,
                attempt: 1,
                wait: Duration::ZERO
            }
        );
    }

    #[test]
    fn describes_the_ladder() {
        assert_eq!(describe_ladder(&heal(&[2, 1])), "restart ×2, restart");
    }
}
