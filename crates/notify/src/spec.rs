//! The `[[notifier]]` table of each notifier type, as written. The daemon removes the keys it
//! handles itself (`name`, `remind_every`, `group_window`) and deserializes the rest, `type`
//! included, into [`NotifierSpec`]; unknown keys are errors.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum NotifierSpec {
    Log(LogSpec),
}

/// `type = "log"`: a line in the daemon's log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSpec {}

impl NotifierSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            NotifierSpec::Log(_) => "log",
        }
    }
}
