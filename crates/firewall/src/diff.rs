//! Drift: which rules vanished and which appeared since the baseline, and which inbound
//! defaults changed. Rules are compared as normalised lines, so handles and counters never
//! count as drift.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use crate::model::{InboundDefault, Rule};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// In the baseline, gone now.
    pub vanished: Vec<Rule>,
    /// Present now, not in the baseline.
    pub appeared: Vec<Rule>,
    /// Inbound defaults that changed: "ipv4: drop → accept".
    pub defaults: Vec<String>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.vanished.is_empty() && self.appeared.is_empty() && self.defaults.is_empty()
    }

    /// Compares rule lines as multisets: a rule present twice in the baseline and once now has
    /// one copy vanished. Order within a chain matters to packets but rarely to people; a
    /// reordering shows as no drift here and is caught by the restore comparing whole tables.
    pub fn between(
        baseline: &[Rule],
        base_defaults: &[InboundDefault],
        now: &[Rule],
        now_defaults: &[InboundDefault],
    ) -> Drift {
        let key = |r: &Rule| (r.scope.clone(), r.text.clone());
        let mut remaining: HashMap<(String, String), usize> = HashMap::new();
        for rule in now {
            *remaining.entry(key(rule)).or_default() += 1;
        }
        let mut vanished = Vec::new();
        for rule in baseline {
            match remaining.get_mut(&key(rule)) {
                Some(n) if *n > 0 => *n -= 1,
                _ => vanished.push(rule.clone()),
            }
        }
        let mut wanted: HashMap<(String, String), usize> = HashMap::new();
        for rule in baseline {
            *wanted.entry(key(rule)).or_default() += 1;
        }
        let mut appeared = Vec::new();
        for rule in now {
            match wanted.get_mut(&key(rule)) {
                Some(n) if *n > 0 => *n -= 1,
                _ => appeared.push(rule.clone()),
            }
        }
        let mut defaults = Vec::new();
        for base in base_defaults {
            let shown = |d: &InboundDefault| {
                d.policy
                    .clone()
                    .unwrap_or_else(|| if d.denies { "deny" } else { "allow" }.to_string())
            };
            match now_defaults.iter().find(|d| d.scope == base.scope) {
                None => defaults.push(format!(
                    "{}: {} → no inbound chain",
                    base.scope,
                    shown(base)
                )),
                Some(d) if d.denies != base.denies || d.policy != base.policy => {
                    defaults.push(format!("{}: {} → {}", base.scope, shown(base), shown(d)))
                }
                Some(_) => {}
            }
        }
        Drift {
            vanished,
            appeared,
            defaults,
        }
    }
}

impl fmt::Display for Drift {
    /// The readable diff a notification carries: `-` vanished, `+` appeared.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.defaults {
            writeln!(f, "~ default {line}")?;
        }
        for rule in &self.vanished {
            writeln!(f, "- [{}] {}", rule.scope, rule.text)?;
        }
        for rule in &self.appeared {
            writeln!(f, "+ [{}] {}", rule.scope, rule.text)?;
        }
        Ok(())
    }
}
