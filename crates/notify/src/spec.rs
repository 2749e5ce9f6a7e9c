//! The `[[notifier]]` table of each notifier type, as written. The daemon removes the keys it
//! handles itself (`name`, `remind_every`, `group_window`) and deserializes the rest, `type`
//! included, into [`NotifierSpec`]; unknown keys are errors.
//!
//! Keys every type has:
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `type` | `smtp`, `webhook`, `slack`, `discord`, `teams`, `telegram`, `ntfy`, `pagerduty`, `alertmanager`, `exec`, `log` | required |
//! | `timeout` | one send attempt may take this long (`"10s"`, `"1m"`); on expiry it fails, retryable | `"10s"` |
//!
//! Secrets are never written inline: a key ending in `_env` names an environment variable of the
//! daemon, one ending in `_file` a file whose content (trailing newline removed) is the secret.
//! Both are read at each send. The keys of each type are listed in its module: [`crate::smtp`],
//! [`crate::webhook`], [`crate::slack`], [`crate::discord`], [`crate::teams`],
//! [`crate::telegram`], [`crate::ntfy`], [`crate::pagerduty`], [`crate::alertmanager`],
//! [`crate::exec`], [`crate::log`]. Types with a message text (`smtp`, `webhook`, chat, `ntfy`,
//! `telegram`) take `subject` / `body` template overrides, see [`crate::template`].

use serde::Deserialize;

pub use crate::alertmanager::AlertmanagerSpec;
pub use crate::discord::DiscordSpec;
pub use crate::exec::ExecSpec;
pub use crate::log::LogSpec;
pub use crate::ntfy::NtfySpec;
pub use crate::pagerduty::PagerdutySpec;
pub use crate::slack::SlackSpec;
pub use crate::smtp::{SmtpSpec, SmtpTls};
pub use crate::teams::{TeamsFormat, TeamsSpec};
pub use crate::telegram::TelegramSpec;
pub use crate::webhook::WebhookSpec;

/// One `[[notifier]]` table; `type` selects the variant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum NotifierSpec {
    Log(LogSpec),
    Smtp(SmtpSpec),
    Webhook(WebhookSpec),
    Slack(SlackSpec),
    Discord(DiscordSpec),
    Teams(TeamsSpec),
    Telegram(TelegramSpec),
    Ntfy(NtfySpec),
    Pagerduty(PagerdutySpec),
    Alertmanager(AlertmanagerSpec),
    Exec(ExecSpec),
}

impl NotifierSpec {
    /// Every `type` value, in the order of the docs.
    pub const TYPES: &'static [&'static str] = &[
        "smtp",
        "webhook",
        "slack",
        "discord",
        "teams",
        "telegram",
        "ntfy",
        "pagerduty",
        "alertmanager",
        "exec",
        "log",
    ];

    /// The `type` value of this spec.
    pub fn kind(&self) -> &'static str {
        match self {
            NotifierSpec::Log(_) => "log",
            NotifierSpec::Smtp(_) => "smtp",
            NotifierSpec::Webhook(_) => "webhook",
            NotifierSpec::Slack(_) => "slack",
            NotifierSpec::Discord(_) => "discord",
            NotifierSpec::Teams(_) => "teams",
            NotifierSpec::Telegram(_) => "telegram",
            NotifierSpec::Ntfy(_) => "ntfy",
            NotifierSpec::Pagerduty(_) => "pagerduty",
            NotifierSpec::Alertmanager(_) => "alertmanager",
            NotifierSpec::Exec(_) => "exec",
        }
    }

    /// The `timeout` key as written, if set.
    pub fn timeout(&self) -> Option<&str> {
        match self {
            NotifierSpec::Log(s) => s.timeout.as_deref(),
            NotifierSpec::Smtp(s) => s.timeout.as_deref(),
            NotifierSpec::Webhook(s) => s.timeout.as_deref(),
            NotifierSpec::Slack(s) => s.timeout.as_deref(),
            NotifierSpec::Discord(s) => s.timeout.as_deref(),
            NotifierSpec::Teams(s) => s.timeout.as_deref(),
            NotifierSpec::Telegram(s) => s.timeout.as_deref(),
            NotifierSpec::Ntfy(s) => s.timeout.as_deref(),
            NotifierSpec::Pagerduty(s) => s.timeout.as_deref(),
            NotifierSpec::Alertmanager(s) => s.timeout.as_deref(),
            NotifierSpec::Exec(s) => s.timeout.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<NotifierSpec, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    #[test]
    fn every_type_parses_with_its_minimal_keys_and_kind_round_trips() {
        let minimal = [
            serde_json::json!({"type": "smtp", "server": "127.0.0.1:25", "from": "a@b", "to": ["c@d"]}),
            serde_json::json!({"type": "webhook", "url": "http://127.0.0.1/"}),
            serde_json::json!({"type": "slack", "url": "http://127.0.0.1/"}),
            serde_json::json!({"type": "discord", "url": "http://127.0.0.1/"}),
            serde_json::json!({"type": "teams", "url": "http://127.0.0.1/"}),
            serde_json::json!({"type": "telegram", "bot_token_env": "T", "chat_id": "1"}),
            serde_json::json!({"type": "ntfy", "url": "http://127.0.0.1/topic"}),
            serde_json::json!({"type": "pagerduty", "routing_key_env": "K"}),
            serde_json::json!({"type": "alertmanager", "url": "http://127.0.0.1:9093"}),
            serde_json::json!({"type": "exec", "command": ["/bin/true"]}),
            serde_json::json!({"type": "log"}),
        ];
        let kinds: Vec<&str> = minimal
            .iter()
            .map(|j| parse(j.clone()).expect("minimal spec parses").kind())
            .collect();
        assert_eq!(kinds, NotifierSpec::TYPES);
    }

    #[test]
    fn unknown_keys_and_types_are_refused() {
        let e = parse(serde_json::json!({"type": "log", "colour": "red"})).unwrap_err();
        assert!(e.contains("unknown field `colour`"), "{e}");
        let e = parse(serde_json::json!({"type": "carrier_pigeon"})).unwrap_err();
        assert!(e.contains("carrier_pigeon"), "{e}");
    }

    #[test]
    fn timeout_is_read_from_every_type() {
        let s = parse(serde_json::json!({"type": "log", "timeout": "3s"})).expect("parses");
        assert_eq!(s.timeout(), Some("3s"));
    }
}
