//! `type = "log"`: the notification as one structured line in the daemon's log (`tracing`,
//! target `portwarden::notify`). It always works, which makes it the safe default receiver and a
//! record of what the other notifiers were asked to say. Problems are logged at WARN, the rest at
//! INFO. The response is `logged`.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `timeout` | see [`crate::spec`] (nothing here waits) | `"10s"` |

use serde::Deserialize;

use crate::{render_subject, Delivery, Notification, SendError};

/// `type = "log"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSpec {
    /// One send may take this long (`"10s"`).
    #[serde(default)]
    pub timeout: Option<String>,
}

/// A built `log` notifier.
#[derive(Debug)]
pub struct LogNotifier {
    name: String,
}

impl LogNotifier {
    pub(crate) fn new(name: &str, _spec: &LogSpec) -> Result<LogNotifier, String> {
        Ok(LogNotifier {
            name: name.to_string(),
        })
    }

    pub(crate) fn send(&self, n: &Notification) -> Result<Delivery, SendError> {
        let subject = render_subject(n);
        let subjects: Vec<&str> = n.items.iter().map(|i| i.subject.as_str()).collect();
        let problem = n.items.iter().any(|i| i.kind.is_problem());
        if problem {
            tracing::warn!(
                target: "portwarden::notify",
                notifier = %self.name,
                id = %n.id,
                kind = %n.kind,
                host = %n.host,
                items = n.items.len(),
                monitors = %subjects.join(","),
                "{subject}"
            );
        } else {
            tracing::info!(
                target: "portwarden::notify",
                notifier = %self.name,
                id = %n.id,
                kind = %n.kind,
                host = %n.host,
                items = n.items.len(),
                monitors = %subjects.join(","),
                "{subject}"
            );
        }
        Ok(Delivery {
            response: "logged".to_string(),
        })
    }
}
