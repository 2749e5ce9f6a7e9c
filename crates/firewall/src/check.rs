//! Judging a firewall state against what the operator requires.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::baseline::Baseline;
use crate::diff::Drift;
use crate::model::State;
use crate::rulespec::RequiredRule;

/// A named check from `require = [...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Requirement {
    /// The firewall is switched on.
    Enabled,
    /// Every family denies inbound traffic no rule accepts.
    InboundDefaultDeny,
}

impl FromStr for Requirement {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "enabled" => Ok(Self::Enabled),
            "inbound-default-deny" => Ok(Self::InboundDefaultDeny),
            other => Err(format!(
                "unknown requirement `{other}` (expected \"enabled\" or \"inbound-default-deny\")"
            )),
        }
    }
}

/// What the firewall must look like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub require: Vec<Requirement>,
    pub rules: Vec<RequiredRule>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            require: vec![Requirement::Enabled],
            rules: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViolationKind {
    Disabled,
    InboundOpen,
    MissingRule,
    Drift,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub kind: ViolationKind,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The outcome of one verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    pub violations: Vec<Violation>,
    /// Drift from the baseline, when there is one (empty when nothing changed).
    pub drift: Option<Drift>,
}

impl Assessment {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// Only "switched off" problems: what `on_violation = "enable"` can fix.
    pub fn disabled(&self) -> bool {
        self.violations
            .iter()
            .any(|v| v.kind == ViolationKind::Disabled)
    }
}

/// Checks `state` against `policy` and, when given, the baseline.
pub fn assess(state: &State, policy: &Policy, baseline: Option<&Baseline>) -> Assessment {
    let mut violations = Vec::new();
    for requirement in &policy.require {
        match requirement {
            Requirement::Enabled if !state.enabled => violations.push(Violation {
                kind: ViolationKind::Disabled,
                message: format!("the {} firewall is switched off", state.backend),
            }),
            Requirement::InboundDefaultDeny if state.enabled && !state.inbound_default_deny() => {
                let open: Vec<String> = state
                    .inbound
                    .iter()
                    .filter(|d| !d.denies)
                    .map(|d| match &d.policy {
                        Some(p) => format!("{} (policy {p})", d.scope),
                        None => d.scope.clone(),
                    })
                    .collect();
                let message = if open.is_empty() {
                    "no chain filters inbound traffic".to_string()
                } else {
                    format!(
                        "inbound traffic is accepted by default: {}",
                        open.join(", ")
                    )
                };
                violations.push(Violation {
                    kind: ViolationKind::InboundOpen,
                    message,
                });
            }
            _ => {}
        }
    }
    for required in &policy.rules {
        if !state.rules.iter().any(|r| required.satisfied_by(r)) {
            violations.push(Violation {
                kind: ViolationKind::MissingRule,
                message: format!("required rule missing: {required}"),
            });
        }
    }
    let drift = baseline.map(|b| drift(b, state));
    if let Some(d) = drift.as_ref().filter(|d| !d.is_empty()) {
        violations.push(Violation {
            kind: ViolationKind::Drift,
            message: format!(
                "ruleset drifted from the baseline: {} rule(s) vanished, {} appeared{}",
                d.vanished.len(),
                d.appeared.len(),
                if d.defaults.is_empty() {
                    String::new()
                } else {
                    format!(", defaults changed ({})", d.defaults.join("; "))
                }
            ),
        });
    }
    Assessment { violations, drift }
}

/// Drift of `state` from the baseline, over the tables the baseline holds only: another
/// tool's table (Docker's nat rules, a fail2ban table) appearing later is not drift, and a
/// restore would not remove it anyway.
pub fn drift(baseline: &Baseline, state: &State) -> Drift {
    let table = |scope: &str| {
        scope
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let tables: std::collections::HashSet<String> =
        baseline.rules.iter().map(|r| table(&r.scope)).collect();
    let now: Vec<_> = state
        .rules
        .iter()
        .filter(|r| tables.contains(&table(&r.scope)))
        .cloned()
        .collect();
    Drift::between(&baseline.rules, &baseline.inbound, &now, &state.inbound)
}
