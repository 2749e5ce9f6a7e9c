//! portwarden's notifiers. A [`Notification`] (one event, or a group of them) goes out through a
//! [`Notifier`] built from its [`NotifierSpec`] (the `[[notifier]]` table of the config, `type`
//! selecting the variant). Sending is one attempt: retries, the durable outbox, grouping and
//! routing belong to the daemon's dispatcher.
//!
//! Layout: [`message`] (what is sent), [`spec`] (the config of each notifier type), and one
//! module per notifier type behind [`Notifier::send`].

pub mod message;
pub mod spec;

pub use message::{Item, Kind, Notification};
pub use spec::NotifierSpec;

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

/// A notifier ready to send: secrets resolved, templates compiled, clients built.
#[derive(Debug)]
pub struct Notifier {
    pub name: String,
    spec: NotifierSpec,
}

impl Notifier {
    /// Builds the notifier; the error names what is wrong (an unset `password_env`, a template
    /// that does not compile, a URL that does not parse).
    pub fn new(name: &str, spec: NotifierSpec) -> Result<Notifier, String> {
        Ok(Notifier {
            name: name.to_string(),
            spec,
        })
    }

    /// The `type` of this notifier (`smtp`, `webhook`, …).
    pub fn kind(&self) -> &'static str {
        self.spec.kind()
    }

    /// One delivery attempt.
    pub async fn send(&self, notification: &Notification) -> Result<Delivery, SendError> {
        let _ = notification;
        Err(SendError {
            message: format!("{} notifiers are not built yet", self.kind()),
            retryable: false,
        })
    }
}
