//! `type = "teams"`: Microsoft Teams. `format = "adaptive"` (the default) posts an Adaptive
//! Card in a message envelope, as Teams Workflows ("Post to a channel when a webhook request is
//! received") expect: `{"type": "message", "attachments": [{"contentType":
//! "application/vnd.microsoft.card.adaptive", "content": {"type": "AdaptiveCard", …}}]}`.
//! `format = "message_card"` posts the legacy Office 365 connector MessageCard
//! (`{"@type": "MessageCard", "title": …, "text": …, "themeColor": …}`).
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `url` / `url_env` / `url_file` | the workflow or connector URL (a secret) | required |
//! | `format` | `adaptive` or `message_card` | `adaptive` |
//! | `subject`, `body` | template overrides (see [`crate::template`]) | the defaults |
//! | `timeout` | one send may take this long | `"10s"` |

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::http::{JsonWebhook, WebhookKeys};
use crate::{truncate_chars, Delivery, Notification, SendError};

/// Which card Teams gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamsFormat {
    /// An Adaptive Card (Teams Workflows).
    #[default]
    Adaptive,
    /// A legacy MessageCard (Office 365 connectors).
    MessageCard,
}

/// `type = "teams"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsSpec {
    /// The workflow / connector URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Environment variable holding the URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// File holding the URL.
    #[serde(default)]
    pub url_file: Option<String>,
    /// Card format; default `adaptive`.
    #[serde(default)]
    pub format: TeamsFormat,
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

/// A built `teams` notifier.
#[derive(Debug)]
pub struct TeamsNotifier {
    hook: JsonWebhook,
    format: TeamsFormat,
}

impl TeamsNotifier {
    pub(crate) fn new(spec: &TeamsSpec, timeout: Duration) -> Result<TeamsNotifier, String> {
        Ok(TeamsNotifier {
            hook: JsonWebhook::new(
                "teams",
                WebhookKeys {
                    url: spec.url.as_ref(),
                    url_env: spec.url_env.as_ref(),
                    url_file: spec.url_file.as_ref(),
                    subject: spec.subject.as_deref(),
                    body: spec.body.as_deref(),
                },
                timeout,
            )?,
            format: spec.format,
        })
    }

    /// The JSON Teams gets.
    pub fn message(&self, n: &Notification) -> Result<serde_json::Value, SendError> {
        let (subject, body) = self.hook.texts(n)?;
        let body = truncate_chars(&body, 20_000);
        let problem = n.items.iter().any(|i| i.kind.is_problem());
        Ok(match self.format {
            TeamsFormat::Adaptive => json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            {"type": "TextBlock", "text": subject, "weight": "Bolder",
                             "size": "Medium", "wrap": true,
                             "color": if problem { "Attention" } else { "Good" }},
                            {"type": "TextBlock", "text": body, "wrap": true,
                             "fontType": "Monospace"},
                        ],
                    },
                }],
            }),
            TeamsFormat::MessageCard => json!({
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "summary": subject,
                "title": subject,
                "themeColor": if problem { "D70000" } else { "2DC72D" },
                // MessageCard text is Markdown: a code block keeps the layout.
                "text": format!("```\n{}\n```", body.replace("```", "'''")),
            }),
        })
    }

    pub(crate) async fn send(&self, n: &Notification) -> Result<Delivery, SendError> {
        self.hook.post(&self.message(n)?).await
    }
}
