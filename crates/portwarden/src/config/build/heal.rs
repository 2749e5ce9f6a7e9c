//! Self-healing: `on_down` into the heal ladder's steps (the engine's keys taken out, the
//! rest checked by the `portwarden-act` crate), and the ladder's limits over `[defaults]`.

use std::time::Duration;

use toml::Spanned;

use super::values::{count32, positive};
use super::{Issues, MAX_COUNT};
use crate::config::duration::HumanDuration;
use crate::monitor::{self, Heal};

/// The self-healing limits of `[defaults]` or a monitor, over `base`.
pub(super) fn heal_limits(
    max_actions: &Option<Spanned<i64>>,
    window: &Option<Spanned<HumanDuration>>,
    cooldown: &Option<Spanned<HumanDuration>>,
    reset_after: &Option<Spanned<HumanDuration>>,
    base: &Heal,
    issues: &mut Issues,
) -> Heal {
    Heal {
        steps: Vec::new(),
        max_actions: count32(max_actions, "max_actions", 1, issues).unwrap_or(base.max_actions),
        window: positive(window, "action_window", issues).unwrap_or(base.window),
        cooldown: cooldown
            .as_ref()
            .map_or(base.cooldown, |c| c.get_ref().get()),
        reset_after: positive(reset_after, "reset_after", issues).unwrap_or(base.reset_after),
    }
}

/// `on_down` into ladder steps: the engine's keys (`attempts`, `grace`,
/// `after_failed_restarts`) are taken out, the rest is the `portwarden-act` crate's action,
/// checked by it.
pub(super) fn heal_steps(
    list: &Spanned<Vec<toml::Table>>,
    issues: &mut Issues,
) -> Vec<monitor::Step> {
    let mut steps: Vec<monitor::Step> = Vec::new();
    for (i, table) in list.get_ref().iter().enumerate() {
        let path = format!("on_down[{}]", i + 1);
        let mut table = table.clone();
        let attempts = match table.remove("attempts") {
            None => Some(1),
            Some(toml::Value::Integer(n)) if (1..=MAX_COUNT).contains(&n) => u32::try_from(n).ok(),
            Some(other) => {
                issues.add(
                    list.span(),
                    format!("{path}.attempts"),
                    format!("must be an integer 1-{MAX_COUNT}, got {other}"),
                );
                None
            }
        };
        // The step before is tried this many times before this one runs (the design's
        // `{ type = "reboot", after_failed_restarts = 3 }`): the same as its `attempts`.
        match table.remove("after_failed_restarts") {
            None => {}
            Some(toml::Value::Integer(n)) if (1..=MAX_COUNT).contains(&n) && i > 0 => {
                if let Some(before) = steps.last_mut() {
                    before.attempts = u32::try_from(n).unwrap_or(1);
                }
            }
            Some(_) if i == 0 => issues.add(
                list.span(),
                format!("{path}.after_failed_restarts"),
                "the first step has no step before it; use `attempts` on it instead",
            ),
            Some(other) => issues.add(
                list.span(),
                format!("{path}.after_failed_restarts"),
                format!("must be an integer 1-{MAX_COUNT}, got {other}"),
            ),
        }
        let grace = match table.remove("grace") {
            None => Some(Duration::from_secs(10)),
            Some(toml::Value::String(text)) => match crate::config::duration::parse(&text) {
                Ok(d) => Some(d),
                Err(e) => {
                    issues.add(list.span(), format!("{path}.grace"), e);
                    None
                }
            },
            Some(other) => {
                issues.add(
                    list.span(),
                    format!("{path}.grace"),
                    format!("must be a duration string like \"10s\", got {other}"),
                );
                None
            }
        };
        if !table.contains_key("type") {
            issues.add(
                list.span(),
                format!("{path}.type"),
                "missing; say which action, e.g. type = \"restart\"",
            );
            continue;
        }
        let action = match <portwarden_act::ActionSpec as serde::Deserialize>::deserialize(
            toml::Value::Table(table),
        ) {
            Ok(a) => a,
            Err(e) => {
                issues.add(
                    list.span(),
                    path.clone(),
                    e.message()
                        .replace("unknown variant", "unknown action type"),
                );
                continue;
            }
        };
        if let Err(e) = portwarden_act::validate(&action) {
            issues.add(list.span(), path.clone(), e);
            continue;
        }
        if let (Some(attempts), Some(grace)) = (attempts, grace) {
            steps.push(monitor::Step {
                action,
                attempts,
                grace,
            });
        }
    }
    steps
}
