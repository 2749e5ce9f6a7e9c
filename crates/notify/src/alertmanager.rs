//! `type = "alertmanager"`: Prometheus Alertmanager, API v2 (`POST <url>/api/v2/alerts` with a
//! JSON array). Each item becomes an alert whose identity is its labels:
//!
//! * `alertname` from the kind: `PortwardenMonitorDown` (down, and reminders of a monitor),
//!   `PortwardenMonitorWarning`, `PortwardenMonitorFlapping`, `PortwardenFirewallViolation`
//!   (also reminders whose subject is `firewall`), `PortwardenFirewallRepairFailed`,
//!   `PortwardenActionFailed`, `PortwardenSelfHealingGaveUp`, `PortwardenTest`;
//! * `instance` = the host, `monitor` = the item's subject, `severity` (fixed per alertname:
//!   `critical`, or `warning` for warnings, flapping and failed actions, `none` for tests);
//! * the spec's `labels`.
//!
//! Annotations: `summary` (the default headline), `description` (the message), and when known
//! `target`, `reason`, `received`, `action`, `detail`, `down_for`, `incident`,
//! `notification_id`. `startsAt` is the item's `since_ms` (else the notification's time).
//!
//! A problem fires with `endsAt` = now + `expire_after`, so it stays active between the
//! daemon's reminders (which re-post it; keep `remind_every` shorter than `expire_after`) and
//! still ends if portwarden itself disappears. A recovery posts the same labels with `endsAt` =
//! now, which resolves the alert: `up` resolves the monitor's down, warning, flapping,
//! action-failed and gave-up alerts; `firewall_repaired` the firewall's violation and
//! repair-failed alerts. `action_taken` items are not sent. A test alert fires for 5 minutes.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `url` | Alertmanager's base URL, `http://127.0.0.1:9093` | required |
//! | `labels` | extra labels on every alert, `{ team = "ops" }` (not `alertname`, `instance`, `monitor`, `severity`) | none |
//! | `generator_url` | `generatorURL` of every alert (a link to this host's dashboard) | none |
//! | `expire_after` | how long a firing alert stays active without a reminder | `"24h"` |
//! | `headers` | extra request headers (`Authorization` for a proxy in front) | none |
//! | `ca_file`, `insecure_skip_verify` | TLS | system roots, `false` |
//! | `timeout` | one send may take this long | `"10s"` |

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::http::{self, check_url, TlsOptions};
use crate::template::{format_duration, headline, rfc3339};
use crate::{Delivery, Item, Kind, Notification, SendError};

/// `type = "alertmanager"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerSpec {
    /// Base URL (`http://127.0.0.1:9093`).
    pub url: String,
    /// Extra labels on every alert.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `generatorURL` of every alert.
    #[serde(default)]
    pub generator_url: Option<String>,
    /// How long a firing alert stays active without a reminder; default `"24h"`.
    #[serde(default)]
    pub expire_after: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// PEM file of extra trusted CA certificates.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Accept any TLS certificate; default false.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// One send may take this long (`"10s"`).
    #[serde(default)]
    pub timeout: Option<String>,
}

/// A built `alertmanager` notifier.
#[derive(Debug)]
pub struct AlertmanagerNotifier {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    headers: HeaderMap,
    labels: BTreeMap<String, String>,
    generator_url: Option<String>,
    expire_after: Duration,
}

const RESERVED: [&str; 4] = ["alertname", "instance", "monitor", "severity"];

/// The alert an item fires (alertname, severity), if any.
pub fn firing_alert(item: &Item) -> Option<(&'static str, &'static str)> {
    let firewall = item.subject == "firewall";
    Some(match item.kind {
        Kind::Down => ("PortwardenMonitorDown", "critical"),
        Kind::Reminder if firewall => ("PortwardenFirewallViolation", "critical"),
        Kind::Reminder => ("PortwardenMonitorDown", "critical"),
        Kind::Warning => ("PortwardenMonitorWarning", "warning"),
        Kind::Flapping => ("PortwardenMonitorFlapping", "warning"),
        Kind::FirewallViolation => ("PortwardenFirewallViolation", "critical"),
        Kind::FirewallRepairFailed => ("PortwardenFirewallRepairFailed", "critical"),
        Kind::ActionFailed => ("PortwardenActionFailed", "warning"),
        Kind::GaveUp => ("PortwardenSelfHealingGaveUp", "critical"),
        Kind::Test => ("PortwardenTest", "none"),
        Kind::Up | Kind::FirewallRepaired | Kind::ActionTaken | Kind::Grouped => return None,
    })
}

/// The alerts a recovery item resolves (alertname, severity).
pub fn resolved_alerts(item: &Item) -> &'static [(&'static str, &'static str)] {
    match item.kind {
        Kind::Up => &[
            ("PortwardenMonitorDown", "critical"),
            ("PortwardenMonitorWarning", "warning"),
            ("PortwardenMonitorFlapping", "warning"),
            ("PortwardenActionFailed", "warning"),
            ("PortwardenSelfHealingGaveUp", "critical"),
        ],
        Kind::FirewallRepaired => &[
            ("PortwardenFirewallViolation", "critical"),
            ("PortwardenFirewallRepairFailed", "critical"),
            ("PortwardenActionFailed", "warning"),
        ],
        _ => &[],
    }
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl AlertmanagerNotifier {
    pub(crate) fn new(
        spec: &AlertmanagerSpec,
        timeout: Duration,
    ) -> Result<AlertmanagerNotifier, String> {
        let base = check_url("url", &spec.url)?;
        let endpoint = base
            .join(&format!(
                "{}/api/v2/alerts",
                base.path().trim_end_matches('/')
            ))
            .map_err(|e| format!("url: {e}"))?;
        for name in spec.labels.keys() {
            if RESERVED.contains(&name.as_str()) {
                return Err(format!("labels: {name} is set by portwarden"));
            }
            if !valid_label_name(name) {
                return Err(format!(
                    "labels: {name:?} is not a label name (letters, digits, _; not starting with a digit)"
                ));
            }
        }
        let expire_after = match &spec.expire_after {
            None => Duration::from_secs(24 * 3600),
            Some(t) => {
                humantime::parse_duration(t).map_err(|e| format!("expire_after: {e} in {t:?}"))?
            }
        };
        Ok(AlertmanagerNotifier {
            client: http::client(
                timeout,
                &TlsOptions {
                    ca_file: spec.ca_file.as_deref(),
                    insecure_skip_verify: spec.insecure_skip_verify,
                },
            )?,
            endpoint,
            headers: http::header_map(&spec.headers)?,
            labels: spec.labels.clone(),
            generator_url: spec.generator_url.clone(),
            expire_after,
        })
    }

    /// The alerts one notification becomes, at `now_ms`.
    pub fn alerts(&self, n: &Notification, now_ms: u64) -> Vec<Value> {
        let mut out = Vec::new();
        for item in &n.items {
            let starts_ms = item
                .since_ms
                .or_else(|| {
                    item.down_for_secs
                        .map(|s| n.at_ms.saturating_sub(s.saturating_mul(1000)))
                })
                .unwrap_or(n.at_ms);
            let annotations = annotations(n, item);
            if let Some((name, severity)) = firing_alert(item) {
                let ttl = if item.kind == Kind::Test {
                    Duration::from_secs(300)
                } else {
                    self.expire_after
                };
                let ends =
                    now_ms.max(starts_ms) + u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX / 2);
                out.push(self.alert(n, item, name, severity, starts_ms, ends, &annotations));
            }
            for (name, severity) in resolved_alerts(item) {
                let ends = now_ms.max(starts_ms);
                out.push(self.alert(n, item, name, severity, starts_ms, ends, &annotations));
            }
        }
        out
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one alert is built from the notification and one item's fields"
    )]
    fn alert(
        &self,
        n: &Notification,
        item: &Item,
        name: &str,
        severity: &str,
        starts_ms: u64,
        ends_ms: u64,
        annotations: &Value,
    ) -> Value {
        let mut labels = Map::new();
        labels.insert("alertname".into(), json!(name));
        labels.insert("instance".into(), json!(n.host));
        labels.insert("monitor".into(), json!(item.subject));
        labels.insert("severity".into(), json!(severity));
        for (k, v) in &self.labels {
            labels.insert(k.clone(), json!(v));
        }
        let mut alert = json!({
            "labels": labels,
            "annotations": annotations,
            "startsAt": rfc3339(starts_ms),
            "endsAt": rfc3339(ends_ms),
        });
        if let Some(g) = &self.generator_url {
            alert["generatorURL"] = json!(g);
        }
        alert
    }

    pub(crate) async fn send(&self, n: &Notification) -> Result<Delivery, SendError> {
        let alerts = self.alerts(n, now_ms());
        if alerts.is_empty() {
            return Ok(Delivery {
                response: format!("nothing sent: {} changes no alert", n.kind.as_str()),
            });
        }
        let firing = n.items.iter().filter(|i| firing_alert(i).is_some()).count();
        let resolving = n.items.iter().filter(|i| i.kind.is_recovery()).count();
        let body = http::json_bytes("alertmanager", &Value::Array(alerts))?;
        let reply = http::post(
            &self.client,
            "alertmanager",
            &self.endpoint,
            self.headers.clone(),
            "application/json",
            body,
        )
        .await?;
        Ok(Delivery {
            response: format!("{} ({firing} firing, {resolving} resolving)", reply.words()),
        })
    }
}

fn annotations(n: &Notification, item: &Item) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            m.insert(k.to_string(), Value::String(v));
        }
    };
    put("summary", Some(headline(&n.host, item)));
    put("description", Some(item.message.clone()));
    put("target", item.target.clone());
    put("status", Some(item.status.clone()));
    put("reason", item.reason.clone());
    put("received", item.received.clone());
    put("action", item.action.clone());
    put("detail", item.detail.clone());
    put("down_for", item.down_for_secs.map(format_duration));
    put("incident", Some(item.incident.clone()));
    put("notification_id", Some(n.id.clone()));
    Value::Object(m)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_are_checked() {
        assert!(valid_label_name("team"));
        assert!(valid_label_name("_x1"));
        assert!(!valid_label_name("1x"));
        assert!(!valid_label_name("a-b"));
        let spec = AlertmanagerSpec {
            url: "http://127.0.0.1:9093".into(),
            labels: [("severity".to_string(), "x".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(
            AlertmanagerNotifier::new(&spec, Duration::from_secs(1)).unwrap_err(),
            "labels: severity is set by portwarden"
        );
    }

    #[test]
    fn endpoint_keeps_a_path_prefix() {
        let spec = AlertmanagerSpec {
            url: "http://127.0.0.1:9093/am/".into(),
            ..Default::default()
        };
        let n = AlertmanagerNotifier::new(&spec, Duration::from_secs(1)).expect("builds");
        assert_eq!(
            n.endpoint.as_str(),
            "http://127.0.0.1:9093/am/api/v2/alerts"
        );
    }
}
