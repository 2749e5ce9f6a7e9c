//! Where a monitor stands on its ladder of `on_down` steps. Pure: the engine asks what comes
//! next and reports each attempt made; tested without clocks.

use crate::monitor::Step;

/// The next try on the ladder: step `step` (0-based), its `attempt`-th try (1-based).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    pub step: usize,
    /// Tries of `step` made so far.
    pub tried: u32,
}

/// What the ladder says comes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rung {
    /// Run `step` (0-based) for its `attempt`-th time (1-based).
    Try { step: usize, attempt: u32 },
    /// Every step was tried as often as it may be.
    Exhausted,
}

impl Position {
    /// The try after this position, on `steps` as configured now (a reload may have made the
    /// ladder shorter: then it is exhausted).
    pub fn next(&self, steps: &[Step]) -> Rung {
        let mut step = self.step;
        let mut tried = self.tried;
        while let Some(s) = steps.get(step) {
            // `attempts = 0` would make a step that never runs; treat it as 1.
            if tried < s.attempts.max(1) {
                return Rung::Try {
                    step,
                    attempt: tried + 1,
                };
            }
            step += 1;
            tried = 0;
        }
        Rung::Exhausted
    }

    /// Counts one try of `step`: the position moves past it.
    pub fn tried(&mut self, step: usize) {
        if step != self.step {
            self.step = step;
            self.tried = 0;
        }
        self.tried += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn step(kind_unit: &str, attempts: u32) -> Step {
        Step {
            action: serde_json::from_value(
                serde_json::json!({"type": "restart", "unit": kind_unit}),
            )
            .unwrap(),
            attempts,
            grace: Duration::from_secs(1),
        }
    }

    #[test]
    fn steps_are_tried_in_order_each_as_often_as_configured() {
        let steps = vec![step("a.service", 2), step("b.service", 1)];
        let mut p = Position::default();
        let mut seen = Vec::new();
        while let Rung::Try { step, attempt } = p.next(&steps) {
            seen.push((step, attempt));
            p.tried(step);
        }
        assert_eq!(seen, [(0, 1), (0, 2), (1, 1)]);
        assert_eq!(p.next(&steps), Rung::Exhausted);
    }

    #[test]
    fn zero_attempts_counts_as_one_and_a_shorter_ladder_is_exhausted() {
        let steps = vec![step("a.service", 0)];
        let mut p = Position::default();
        assert_eq!(
            p.next(&steps),
            Rung::Try {
                step: 0,
                attempt: 1
            }
        );
        p.tried(0);
        assert_eq!(p.next(&steps), Rung::Exhausted);
        let p = Position { step: 3, tried: 0 };
        assert_eq!(p.next(&steps), Rung::Exhausted);
        assert_eq!(Position::default().next(&[]), Rung::Exhausted);
    }
}
