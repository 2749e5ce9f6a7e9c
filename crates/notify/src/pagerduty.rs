//! `type = "pagerduty"`: PagerDuty Events API v2 (`POST https://events.pagerduty.com/v2/enqueue`).
//! One event per item (a grouped notification sends several, one after the other):
//! `event_action = "trigger"` for problems, `"resolve"` for recoveries (`up`,
//! `firewall_repaired`), with `dedup_key` = the item's `incident`, so PagerDuty opens one
//! incident per monitor and resolves it when the monitor recovers. `action_taken` items change
//! no incident and are not sent. A test notification triggers an `info` event and resolves it
//! at once, so it shows in the service's history without leaving an incident open.
//!
//! A trigger carries `payload.summary` (the default headline, ≤ 1024 characters),
//! `payload.source` (the host), `payload.severity` (`critical` for down, firewall and gave-up,
//! `error` for a failed action, `warning` for warnings and flapping, `info` for tests),
//! `payload.timestamp`, `payload.component` (the monitor), `payload.class` (the kind) and
//! `payload.custom_details` (target, status, reason, message, received, action, detail).
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `routing_key_env` / `routing_key_file` | the integration's routing key | required |
//! | `api_url` | the Events API endpoint (tests) | `https://events.pagerduty.com/v2/enqueue` |
//! | `subject` | template override for `payload.summary` (see [`crate::template`]) | the headline |
//! | `timeout` | one send (all its events) may take this long | `"10s"` |

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::http::{self, check_url, Reply, TlsOptions};
use crate::secret::Secret;
use crate::template::{format_duration, headline, rfc3339, Template};
use crate::{truncate_chars, Delivery, Item, Kind, Notification, SendError};

/// The Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// `type = "pagerduty"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutySpec {
    /// Environment variable holding the routing key.
    #[serde(default)]
    pub routing_key_env: Option<String>,
    /// File holding the routing key.
    #[serde(default)]
    pub routing_key_file: Option<String>,
    /// Events API endpoint.
    #[serde(default)]
    pub api_url: Option<String>,
    /// Summary template.
    #[serde(default)]
    pub subject: Option<String>,
    /// One send may take this long (`"10s"`).
    #[serde(default)]
    pub timeout: Option<String>,
}

/// A built `pagerduty` notifier.
#[derive(Debug)]
pub struct PagerdutyNotifier {
    client: reqwest::Client,
    key: Secret,
    api: reqwest::Url,
    summary: Option<Template>,
}

/// `trigger` or `resolve` for one item, or `None` when the item changes no incident.
pub fn event_action(kind: Kind) -> Option<&'static str> {
    if kind.is_recovery() {
        Some("resolve")
    } else if kind.is_problem() || kind == Kind::Test {
        Some("trigger")
    } else {
        None
    }
}

/// PagerDuty's severity for a problem kind.
fn severity(kind: Kind) -> &'static str {
    match kind {
        Kind::Warning | Kind::Flapping => "warning",
        Kind::ActionFailed => "error",
        Kind::Test => "info",
        _ => "critical",
    }
}

impl PagerdutyNotifier {
    pub(crate) fn new(
        spec: &PagerdutySpec,
        timeout: Duration,
    ) -> Result<PagerdutyNotifier, String> {
        let key = Secret::require(
            "routing_key",
            None,
            spec.routing_key_env.as_ref(),
            spec.routing_key_file.as_ref(),
        )
        .map_err(|_| "missing routing_key_env or routing_key_file".to_string())?;
        Ok(PagerdutyNotifier {
            client: http::client(timeout, &TlsOptions::default())?,
            key,
            api: check_url(
                "api_url",
                spec.api_url.as_deref().unwrap_or(PAGERDUTY_EVENTS_URL),
            )?,
            summary: spec
                .subject
                .as_deref()
                .map(|s| Template::compile("subject", s))
                .transpose()?,
        })
    }

    /// The events one notification becomes, in order.
    pub fn events(&self, n: &Notification, routing_key: &str) -> Result<Vec<Value>, SendError> {
        let mut events = Vec::new();
        for item in &n.items {
            let Some(action) = event_action(item.kind) else {
                continue;
            };
            if action == "resolve" {
                events.push(json!({
                    "routing_key": routing_key,
                    "event_action": "resolve",
                    "dedup_key": item.incident,
                }));
                continue;
            }
            let summary = match &self.summary {
                Some(t) => t
                    .render(&single(n, item))
                    .map_err(|e| SendError::permanent(format!("pagerduty: {e}")))?,
                None => headline(&n.host, item),
            };
            events.push(json!({
                "routing_key": routing_key,
                "event_action": "trigger",
                "dedup_key": item.incident,
                "client": "portwarden",
                "payload": {
                    "summary": truncate_chars(&crate::one_line(&summary, 4096), 1024),
                    "source": n.host,
                    "severity": severity(item.kind),
                    "timestamp": rfc3339(n.at_ms),
                    "component": item.subject,
                    "class": item.kind.as_str(),
                    "custom_details": details(n, item),
                },
            }));
            if item.kind == Kind::Test {
                events.push(json!({
                    "routing_key": routing_key,
                    "event_action": "resolve",
                    "dedup_key": item.incident,
                }));
            }
        }
        Ok(events)
    }

    pub(crate) async fn send(&self, n: &Notification) -> Result<Delivery, SendError> {
        let key = self.key.read("pagerduty")?;
        let events = self.events(n, &key)?;
        if events.is_empty() {
            return Ok(Delivery {
                response: format!(
                    "nothing sent: {} changes no PagerDuty incident",
                    n.kind.as_str()
                ),
            });
        }
        let total = events.len();
        let mut last: Option<Reply> = None;
        for (i, event) in events.iter().enumerate() {
            let body = http::json_bytes("pagerduty", event)?;
            let reply = http::post(
                &self.client,
                "pagerduty",
                &self.api,
                HeaderMap::new(),
                "application/json",
                body,
            )
            .await
            .map_err(|mut e| {
                if total > 1 {
                    let dedup = event["dedup_key"].as_str().unwrap_or("");
                    e.message = format!(
                        "{} (event {} of {total}, dedup_key {dedup}; {i} sent before)",
                        e.message,
                        i + 1
                    );
                }
                e
            })?;
            last = Some(reply);
        }
        let words = last.map(|r| r.words()).unwrap_or_default();
        Ok(Delivery {
            response: if total == 1 {
                words
            } else {
                format!("{total} events sent, last: {words}")
            },
        })
    }
}

/// A notification holding just `item`, for templates.
fn single(n: &Notification, item: &Item) -> Notification {
    Notification {
        id: n.id.clone(),
        kind: item.kind,
        host: n.host.clone(),
        at_ms: n.at_ms,
        items: vec![item.clone()],
    }
}

fn details(n: &Notification, item: &Item) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            m.insert(k.to_string(), Value::String(v));
        }
    };
    put("message", Some(item.message.clone()));
    put("target", item.target.clone());
    put("status", Some(item.status.clone()));
    put("reason", item.reason.clone());
    put("received", item.received.clone());
    put("action", item.action.clone());
    put("detail", item.detail.clone());
    put("down_for", item.down_for_secs.map(format_duration));
    put("since", item.since_ms.map(rfc3339));
    put("tags", Some(item.tags.join(", ")));
    put("notification_id", Some(n.id.clone()));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_follow_the_kind() {
        assert_eq!(event_action(Kind::Down), Some("trigger"));
        assert_eq!(event_action(Kind::Reminder), Some("trigger"));
        assert_eq!(event_action(Kind::FirewallViolation), Some("trigger"));
        assert_eq!(event_action(Kind::Up), Some("resolve"));
        assert_eq!(event_action(Kind::FirewallRepaired), Some("resolve"));
        assert_eq!(event_action(Kind::ActionTaken), None);
    }
}
