//! portwarden's notifiers. A [`Notification`] (one event, or a group of them) goes out through a
//! [`Notifier`] built from its [`NotifierSpec`] (the `[[notifier]]` table of the config, `type`
//! selecting the variant). Sending is one attempt: retries, the durable outbox, grouping and
//! routing belong to the daemon's dispatcher.
//!
//! Layout: [`message`] (what is sent), [`spec`] (the config of each notifier type, with the keys
//! every type shares), [`template`] (the default subject and body, and per-notifier overrides),
//! and one module per notifier type behind [`Notifier::send`]: [`smtp`], [`webhook`], [`slack`],
//! [`discord`], [`teams`], [`telegram`], [`ntfy`], [`pagerduty`], [`alertmanager`], [`exec`],
//! [`log`]. Shared plumbing: `secret` (`*_env` / `*_file` values, read at send time so a rotated
//! secret needs no restart and a missing one is a clear send error) and `http` (one client
//! setup, capped reads, the HTTP status → retryable rule).
//!
//! What every `send` promises: one attempt, bounded by the notifier's `timeout` (default 10 s),
//! no panics, the receiver's own words in [`Delivery::response`] (`250 2.0.0 Ok: queued as …`,
//! `HTTP 200: ok`) and in [`SendError::message`], which names the notifier type and the server,
//! never a secret (webhook URLs and bot tokens are left out). `retryable` is false for permanent
//! refusals (HTTP 4xx except 408 and 429, SMTP 5xx, a missing `*_env` variable) and true for
//! connection errors, timeouts, HTTP 5xx and SMTP 4xx.

pub mod alertmanager;
pub mod discord;
pub mod exec;
mod http;
pub mod log;
pub mod message;
pub mod ntfy;
pub mod pagerduty;
mod secret;
pub mod slack;
pub mod smtp;
pub mod spec;
pub mod teams;
pub mod telegram;
pub mod template;
pub mod webhook;

use std::time::Duration;

pub use message::{Item, Kind, Notification};
pub use spec::NotifierSpec;
pub use template::{render_body, render_subject};

/// The timeout of one send when the notifier does not set `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the receiver answered to a delivered notification, in its own words
/// (`250 2.0.0 Ok: queued as 4F2A1`, `HTTP 200: ok`), for `portwarden notify test` and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub response: String,
}

/// Why a send failed. `retryable` is false when trying again cannot help (a 400 from a webhook,
/// an address the mail server refuses permanently); the dispatcher still keeps the notification
/// and reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub message: String,
    pub retryable: bool,
}

impl SendError {
    /// A failure that may go away (connection refused, timeout, 5xx, SMTP 4xx).
    pub fn retryable(message: impl Into<String>) -> SendError {
        SendError {
            message: message.into(),
            retryable: true,
        }
    }

    /// A refusal that trying again cannot fix (4xx, SMTP 5xx, a missing `*_env` variable).
    pub fn permanent(message: impl Into<String>) -> SendError {
        SendError {
            message: message.into(),
            retryable: false,
        }
    }
}

/// A notifier ready to send: templates compiled, clients built. Secrets are read at send time.
#[derive(Debug)]
pub struct Notifier {
    pub name: String,
    spec: NotifierSpec,
    timeout: Duration,
    inner: Inner,
}

/// The built notifier of each type.
#[derive(Debug)]
enum Inner {
    Log(log::LogNotifier),
    Smtp(Box<smtp::SmtpNotifier>),
    Webhook(webhook::WebhookNotifier),
    Slack(slack::SlackNotifier),
    Discord(discord::DiscordNotifier),
    Teams(teams::TeamsNotifier),
    Telegram(telegram::TelegramNotifier),
    Ntfy(ntfy::NtfyNotifier),
    Pagerduty(pagerduty::PagerdutyNotifier),
    Alertmanager(alertmanager::AlertmanagerNotifier),
    Exec(exec::ExecNotifier),
}

impl Notifier {
    /// Builds the notifier; the error names what is wrong (a template that does not compile, a
    /// URL that does not parse, plain SMTP to a host that is not loopback). It reads no secret:
    /// an unset `password_env` is reported by [`Notifier::send`], so `portwarden notify test`
    /// shows it and a rotated secret needs no restart.
    pub fn new(name: &str, spec: NotifierSpec) -> Result<Notifier, String> {
        let timeout = match spec.timeout() {
            None => DEFAULT_TIMEOUT,
            Some(text) => parse_timeout(text)?,
        };
        let inner = match &spec {
            NotifierSpec::Log(s) => Inner::Log(log::LogNotifier::new(name, s)?),
            NotifierSpec::Smtp(s) => Inner::Smtp(Box::new(smtp::SmtpNotifier::new(s, timeout)?)),
            NotifierSpec::Webhook(s) => Inner::Webhook(webhook::WebhookNotifier::new(s, timeout)?),
            NotifierSpec::Slack(s) => Inner::Slack(slack::SlackNotifier::new(s, timeout)?),
            NotifierSpec::Discord(s) => Inner::Discord(discord::DiscordNotifier::new(s, timeout)?),
            NotifierSpec::Teams(s) => Inner::Teams(teams::TeamsNotifier::new(s, timeout)?),
            NotifierSpec::Telegram(s) => {
                Inner::Telegram(telegram::TelegramNotifier::new(s, timeout)?)
            }
            NotifierSpec::Ntfy(s) => Inner::Ntfy(ntfy::NtfyNotifier::new(s, timeout)?),
            NotifierSpec::Pagerduty(s) => {
                Inner::Pagerduty(pagerduty::PagerdutyNotifier::new(s, timeout)?)
            }
            NotifierSpec::Alertmanager(s) => {
                Inner::Alertmanager(alertmanager::AlertmanagerNotifier::new(s, timeout)?)
            }
            NotifierSpec::Exec(s) => Inner::Exec(exec::ExecNotifier::new(s)?),
        };
        Ok(Notifier {
            name: name.to_string(),
            spec,
            timeout,
            inner,
        })
    }

    /// The `type` of this notifier (`smtp`, `webhook`, …).
    pub fn kind(&self) -> &'static str {
        self.spec.kind()
    }

    /// The spec this notifier was built from.
    pub fn spec(&self) -> &NotifierSpec {
        &self.spec
    }

    /// How long one [`Notifier::send`] may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// One delivery attempt, bounded by the notifier's timeout.
    pub async fn send(&self, notification: &Notification) -> Result<Delivery, SendError> {
        if let Inner::Exec(n) = &self.inner {
            // exec enforces the timeout itself: it must kill the program's process group.
            return n.send(notification, self.timeout).await;
        }
        let attempt = async {
            match &self.inner {
                Inner::Log(n) => n.send(notification),
                Inner::Smtp(n) => n.send(notification).await,
                Inner::Webhook(n) => n.send(notification).await,
                Inner::Slack(n) => n.send(notification).await,
                Inner::Discord(n) => n.send(notification).await,
                Inner::Teams(n) => n.send(notification).await,
                Inner::Telegram(n) => n.send(notification).await,
                Inner::Ntfy(n) => n.send(notification).await,
                Inner::Pagerduty(n) => n.send(notification).await,
                Inner::Alertmanager(n) => n.send(notification).await,
                Inner::Exec(n) => n.send(notification, self.timeout).await,
            }
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(SendError::retryable(format!(
                "{}: no answer within {}",
                self.kind(),
                humantime::format_duration(self.timeout)
            ))),
        }
    }
}

/// `timeout = "10s"` → a duration; zero and unparsable values are refused.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(d) if d.is_zero() => Err(format!("timeout: must be more than zero, got {text:?}")),
        Ok(d) => Ok(d),
        Err(e) => Err(format!(
            "timeout: {e} in {text:?} (write a duration such as \"10s\" or \"1m\")"
        )),
    }
}

/// Text from a receiver, made safe for one log line: control characters become spaces, runs of
/// white space shrink to one, and at most `max` bytes are kept (on a character boundary).
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    let mut space = false;
    for c in text.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if space || out.is_empty() {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        if out.len() + c.len_utf8() > max {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out.trim_end().to_string()
}

/// At most `max` characters of `text`, ending in `…` when cut.
pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_flattens_and_caps_receiver_text() {
        assert_eq!(one_line("  a\r\n\tb  ", 100), "a b");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("ééé", 3), "é…");
        assert_eq!(one_line("", 3), "");
    }

    #[test]
    fn truncate_chars_counts_characters() {
        assert_eq!(truncate_chars("héllo", 5), "héllo");
        assert_eq!(truncate_chars("héllo", 3), "hé…");
    }

    #[test]
    fn timeouts_parse_like_the_rest_of_the_config() {
        assert_eq!(parse_timeout("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_timeout("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(parse_timeout("0s").unwrap_err().contains("more than zero"));
        assert!(parse_timeout("ten").unwrap_err().starts_with("timeout: "));
    }
}
