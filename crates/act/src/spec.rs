//! One `on_down` entry as written. The daemon removes the keys its engine handles itself
//! (`attempts`, `grace`) and deserializes the rest, `type` included; unknown keys are errors.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ActionSpec {
    Restart(UnitAction),
}

/// `restart`, `start`, `stop`: a service unit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitAction {
    pub unit: String,
}

impl ActionSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            ActionSpec::Restart(_) => "restart",
        }
    }
}
