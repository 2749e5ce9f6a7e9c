//! `type = "telegram"`: a message from a Telegram bot (`POST <api_url>/bot<token>/sendMessage`
//! with `{"chat_id", "text", "disable_web_page_preview": true}`), plain text so nothing in a
//! monitored server's answer can break Markdown parsing; cut to Telegram's 4096 characters.
//! The bot token is part of the URL: errors name `api.telegram.org:443`, never the URL.
//! Telegram's refusals come back in its own words (`HTTP 400: {"ok":false,…"description":"Bad
//! Request: chat not found"}`).
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `bot_token_env` / `bot_token_file` | the bot token from @BotFather | required |
//! | `chat_id` | the chat, group (`-100…`) or `@channelname` | required |
//! | `message_thread_id` | a forum topic of the chat | none |
//! | `api_url` | the Bot API server (tests, a local Bot API server) | `https://api.telegram.org` |
//! | `subject`, `body` | template overrides (see [`crate::template`]) | the defaults |
//! | `timeout` | one send may take this long | `"10s"` |

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::{Deserialize, Deserializer};
use serde_json::json;

use crate::http::{self, check_url, TlsOptions};
use crate::secret::Secret;
use crate::template::Texts;
use crate::{truncate_chars, Delivery, Notification, SendError};

/// Telegram refuses longer messages.
pub const TELEGRAM_MAX_CHARS: usize = 4096;

/// `type = "telegram"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramSpec {
    /// Environment variable holding the bot token.
    #[serde(default)]
    pub bot_token_env: Option<String>,
    /// File holding the bot token.
    #[serde(default)]
    pub bot_token_file: Option<String>,
    /// Chat id (a number or `@channel`).
    #[serde(deserialize_with = "string_or_int")]
    pub chat_id: String,
    /// Forum topic id.
    #[serde(default)]
    pub message_thread_id: Option<i64>,
    /// Bot API base URL; default `https://api.telegram.org`.
    #[serde(default)]
    pub api_url: Option<String>,
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

/// `chat_id = -100123` and `chat_id = "@name"` both work.
fn string_or_int<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Int(i64),
        Text(String),
    }
    Ok(match Id::deserialize(d)? {
        Id::Int(i) => i.to_string(),
        Id::Text(s) => s,
    })
}

/// A built `telegram` notifier.
#[derive(Debug)]
pub struct TelegramNotifier {
    client: reqwest::Client,
    token: Secret,
    api: reqwest::Url,
    chat_id: String,
    thread: Option<i64>,
    texts: Texts,
}

impl TelegramNotifier {
    pub(crate) fn new(spec: &TelegramSpec, timeout: Duration) -> Result<TelegramNotifier, String> {
        let token = Secret::require(
            "bot_token",
            None,
            spec.bot_token_env.as_ref(),
            spec.bot_token_file.as_ref(),
        )
        .map_err(|_| "missing bot_token_env or bot_token_file".to_string())?;
        if spec.chat_id.trim().is_empty() {
            return Err("chat_id: must not be empty".to_string());
        }
        let api = check_url(
            "api_url",
            spec.api_url
                .as_deref()
                .unwrap_or("https://api.telegram.org"),
        )?;
        Ok(TelegramNotifier {
            client: http::client(timeout, &TlsOptions::default())?,
            token,
            api,
            chat_id: spec.chat_id.clone(),
            thread: spec.message_thread_id,
            texts: Texts::new(spec.subject.as_deref(), spec.body.as_deref())?,
        })
    }

    /// The JSON Telegram gets.
    pub fn message(&self, n: &Notification) -> Result<serde_json::Value, SendError> {
        let (subject, body) = http::texts(&self.texts, "telegram", n)?;
        let text = truncate_chars(&format!("{subject}\n\n{body}"), TELEGRAM_MAX_CHARS);
        let chat: serde_json::Value = match self.chat_id.parse::<i64>() {
            Ok(i) => json!(i),
            Err(_) => json!(self.chat_id),
        };
        let mut msg = json!({
            "chat_id": chat,
            "text": text,
            "disable_web_page_preview": true,
        });
        if let Some(t) = self.thread {
            msg["message_thread_id"] = json!(t);
        }
        Ok(msg)
    }

    pub(crate) async fn send(&self, n: &Notification) -> Result<Delivery, SendError> {
        let token = self.token.read("telegram")?;
        if token.contains(['/', '?', '#']) || token.chars().any(char::is_whitespace) {
            return Err(SendError::permanent(
                "telegram: the bot token holds characters a token never has (/ ? # or spaces)",
            ));
        }
        let base = self.api.as_str().trim_end_matches('/');
        let url = reqwest::Url::parse(&format!("{base}/bot{token}/sendMessage"))
            .map_err(|_| SendError::permanent("telegram: api_url plus token is not a URL"))?;
        let body = http::json_bytes("telegram", &self.message(n)?)?;
        let reply = http::post(
            &self.client,
            "telegram",
            &url,
            HeaderMap::new(),
            "application/json",
            body,
        )
        .await?;
        Ok(http::delivered(&reply))
    }
}
