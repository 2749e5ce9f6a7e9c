//! `type = "slack"`: a Slack incoming webhook (also Mattermost and Rocket.Chat, which accept
//! the same JSON). The message is `{"text": "*<subject>*\n<body>"}` with Slack's `&`, `<`, `>`
//! escaped, so text from a monitored server cannot ping `<!channel>`; with `blocks = true` it
//! also carries a header block and a section block. Slack answers `HTTP 200: ok`.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `url` / `url_env` / `url_file` | the incoming-webhook URL (a secret: prefer `url_env`/`url_file`) | required |
//! | `channel`, `username`, `icon_emoji` | overrides, for webhooks that still honour them | none |
//! | `blocks` | add Block Kit blocks besides `text` | `false` |
//! | `subject`, `body` | template overrides (see [`crate::template`]) | the defaults |
//! | `timeout` | one send may take this long | `"10s"` |

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::http::{JsonWebhook, WebhookKeys};
use crate::{truncate_chars, Delivery, Notification, SendError};

/// `type = "slack"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSpec {
    /// The incoming-webhook URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Environment variable holding the URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// File holding the URL.
    #[serde(default)]
    pub url_file: Option<String>,
    /// Channel override.
    #[serde(default)]
    pub channel: Option<String>,
    /// Sender name override.
    #[serde(default)]
    pub username: Option<String>,
    /// Sender icon override (`:rotating_light:`).
    #[serde(default)]
    pub icon_emoji: Option<String>,
    /// Also send Block Kit blocks; default false.
    #[serde(default)]
    pub blocks: bool,
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

/// A built `slack` notifier.
#[derive(Debug)]
pub struct SlackNotifier {
    hook: JsonWebhook,
    spec: SlackSpec,
}

/// Slack's three escapes for message text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl SlackNotifier {
    pub(crate) fn new(spec: &SlackSpec, timeout: Duration) -> Result<SlackNotifier, String> {
        Ok(SlackNotifier {
            hook: JsonWebhook::new(
                "slack",
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

    /// The JSON Slack gets.
    pub fn message(&self, n: &Notification) -> Result<serde_json::Value, SendError> {
        let (subject, body) = self.hook.texts(n)?;
        // Slack cuts `text` at 40 000 characters; a section block at 3 000.
        let text = truncate_chars(
            &format!("*{}*\n{}", escape(&subject), escape(&body)),
            39_000,
        );
        let mut msg = json!({ "text": text });
        if self.spec.blocks {
            msg["blocks"] = json!([
                {"type": "header", "text": {"type": "plain_text", "text": truncate_chars(&subject, 150)}},
                {"type": "section", "text": {"type": "mrkdwn", "text": truncate_chars(&escape(&body), 2_900)}},
            ]);
        }
        for (key, value) in [
            ("channel", &self.spec.channel),
            ("username", &self.spec.username),
            ("icon_emoji", &self.spec.icon_emoji),
        ] {
            if let Some(v) = value {
                msg[key] = json!(v);
            }
        }
        Ok(msg)
    }

    pub(crate) async fn send(&self, n: &Notification) -> Result<Delivery, SendError> {
        self.hook.post(&self.message(n)?).await
    }
}
