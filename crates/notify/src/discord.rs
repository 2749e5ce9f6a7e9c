//! `type = "discord"`: a Discord channel webhook. The message is
//! `{"content": "**<subject>**\n<body>", "allowed_mentions": {"parse": []}}`, cut to Discord's
//! 2000 characters; mentions are disabled so text from a monitored server cannot ping
//! `@everyone`. Discord answers `HTTP 204`.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `url` / `url_env` / `url_file` | the webhook URL (a secret: prefer `url_env`/`url_file`) | required |
//! | `username`, `avatar_url` | sender overrides | none |
//! | `subject`, `body` | template overrides (see [`crate::template`]) | the defaults |
//! | `timeout` | one send may take this long | `"10s"` |

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::http::{JsonWebhook, WebhookKeys};
use crate::{truncate_chars, Delivery, Notification, SendError};

/// Discord refuses longer `content`.
pub const DISCORD_MAX_CHARS: usize = 2000;

/// `type = "discord"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordSpec {
    /// The webhook URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Environment variable holding the URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// File holding the URL.
    #[serde(default)]
    pub url_file: Option<String>,
    /// Sender name override.
    #[serde(default)]
    pub username: Option<String>,
    /// Sender avatar override.
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// Subject template.
    #[serde(default)]
    pub subject: Option<String>,
    /// Body template.
    #[serde(default)]
    pub body: Option<String>,
    /// One send may take this long (`"10s"`).
    #[serde(default)]
    pub timeout: Option<String>,
}

/// A built `discord` notifier.
#[derive(Debug)]
pub struct DiscordNotifier {
    hook: JsonWebhook,
    spec: DiscordSpec,
}

impl DiscordNotifier {
    pub(crate) fn new(spec: &DiscordSpec, timeout: Duration) -> Result<DiscordNotifier, String> {
        Ok(DiscordNotifier {
            hook: JsonWebhook::new(
                "discord",
                WebhookKeys {
                    url: spec.url.as_ref(),
                    url_env: spec.url_env.as_ref(),
                    url_file: spec.url_file.as_ref(),
                    subject: spec.subject.as_deref(),
                    body: spec.body.as_deref(),
                },
                timeout,
            )?,
            spec: spec.clone(),
        })
    }

    /// The JSON Discord gets.
    pub fn message(&self, n: &Notification) -> Result<serde_json::Value, SendError> {
        let (subject, body) = self.hook.texts(n)?;
        let content = truncate_chars(&format!("**{subject}**\n{body}"), DISCORD_MAX_CHARS);
        let mut msg = json!({ "content": content, "allowed_mentions": { "parse": [] } });
        if let Some(u) = &self.spec.username {
            msg["username"] = json!(u);
        }
        if let Some(a) = &self.spec.avatar_url {
            msg["avatar_url"] = json!(a);
        }
        Ok(msg)
    }

    pub(crate) async fn send(&self, n: &Notification) -> Result<Delivery, SendError> {
        self.hook.post(&self.message(n)?).await
    }
}
