//! `type = "ntfy"`: a push message through an [ntfy](https://ntfy.sh) server. `url` is the
//! topic URL (`https://ntfy.sh/mytopic`); the message is published as JSON to the server root
//! (`{"topic", "title", "message", "priority", "tags"}`), which keeps non-ASCII titles intact.
//! Priority: `priority` if set, else 4 (high) for problems and 3 (default) for the rest. Tags:
//! `rotating_light` for problems, `white_check_mark` for recoveries, then the configured ones.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `url` / `url_env` / `url_file` | the topic URL, `server/topic` | required |
//! | `priority` | 1–5 (`min`, `low`, `default`, `high`, `max`/`urgent` also accepted) | by kind |
//! | `tags` | extra tags / emoji short codes | none |
//! | `click` | URL opened when the notification is tapped | none |
//! | `token_env` / `token_file` | access token, sent as `Authorization: Bearer …` | none |
//! | `ca_file`, `insecure_skip_verify` | TLS for a self-hosted server | system roots, `false` |
//! | `subject`, `body` | template overrides for title and message (see [`crate::template`]) | the defaults |
//! | `timeout` | one send may take this long | `"10s"` |

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use serde::{Deserialize, Deserializer};
use serde_json::json;

use crate::http::{self, TlsOptions, UrlSource};
use crate::secret::Secret;
use crate::template::Texts;
use crate::{truncate_chars, Delivery, Kind, Notification, SendError};

/// `type = "ntfy"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NtfySpec {
    /// The topic URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Environment variable holding the topic URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// File holding the topic URL.
    #[serde(default)]
    pub url_file: Option<String>,
    /// 1–5; default by kind.
    #[serde(default, deserialize_with = "priority")]
    pub priority: Option<u8>,
    /// Extra tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Click action URL.
    #[serde(default)]
    pub click: Option<String>,
    /// Environment variable holding an access token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding an access token.
    #[serde(default)]
    pub token_file: Option<String>,
    /// PEM file of extra trusted CA certificates.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Accept any TLS certificate; default false.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Title template.
    #[serde(default)]
    pub subject: Option<String>,
    /// Message template.
    #[serde(default)]
    pub body: Option<String>,
    /// One send may take this long (`"10s"`).
    #[serde(default)]
    pub timeout: Option<String>,
}

fn priority<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum P {
        Num(u8),
        Name(String),
    }
    let p = match Option::<P>::deserialize(d)? {
        None => return Ok(None),
        Some(P::Num(n)) => n,
        Some(P::Name(name)) => match name.as_str() {
            "min" => 1,
            "low" => 2,
            "default" => 3,
            "high" => 4,
            "max" | "urgent" => 5,
            other => {
                return Err(serde::de::Error::custom(format!(
                    "priority: expected 1-5 or min, low, default, high, max, got {other:?}"
                )))
            }
        },
    };
    if (1..=5).contains(&p) {
        Ok(Some(p))
    } else {
        Err(serde::de::Error::custom(format!(
            "priority: must be 1-5, got {p}"
        )))
    }
}

/// A built `ntfy` notifier.
#[derive(Debug)]
pub struct NtfyNotifier {
    client: reqwest::Client,
    url: UrlSource,
    token: Option<Secret>,
    spec: NtfySpec,
    texts: Texts,
}

impl NtfyNotifier {
    pub(crate) fn new(spec: &NtfySpec, timeout: Duration) -> Result<NtfyNotifier, String> {
        let url = UrlSource::new(
            spec.url.as_ref(),
            spec.url_env.as_ref(),
            spec.url_file.as_ref(),
        )?;
        if let Some(u) = &spec.url {
            split_topic(&http::check_url("url", u)?)?;
        }
        Ok(NtfyNotifier {
            client: http::client(
                timeout,
                &TlsOptions {
                    ca_file: spec.ca_file.as_deref(),
                    insecure_skip_verify: spec.insecure_skip_verify,
                },
            )?,
            url,
            token: Secret::choose(
                "token",
                None,
                spec.token_env.as_ref(),
                spec.token_file.as_ref(),
            )?,
            texts: Texts::new(spec.subject.as_deref(), spec.body.as_deref())?,
            spec: spec.clone(),
        })
    }

    /// The JSON the ntfy server gets, for `topic`.
    pub fn message(&self, n: &Notification, topic: &str) -> Result<serde_json::Value, SendError> {
        let (title, body) = http::texts(&self.texts, "ntfy", n)?;
        let problem = n.items.iter().any(|i| i.kind.is_problem());
        let recovery = n.items.iter().all(|i| i.kind.is_recovery()) && !n.items.is_empty();
        let mut tags: Vec<String> = Vec::new();
        if n.kind == Kind::Test {
            tags.push("bell".to_string());
        } else if problem {
            tags.push("rotating_light".to_string());
        } else if recovery {
            tags.push("white_check_mark".to_string());
        }
        tags.extend(self.spec.tags.iter().cloned());
        let priority = self.spec.priority.unwrap_or(if problem { 4 } else { 3 });
        let mut msg = json!({
            "topic": topic,
            "title": title,
            "message": truncate_chars(&body, 4_000),
            "priority": priority,
            "tags": tags,
        });
        if let Some(c) = &self.spec.click {
            msg["click"] = json!(c);
        }
        Ok(msg)
    }

    pub(crate) async fn send(&self, n: &Notification) -> Result<Delivery, SendError> {
        let url = self.url.resolve("ntfy")?;
        let (root, topic) =
            split_topic(&url).map_err(|e| SendError::permanent(format!("ntfy: {e}")))?;
        let mut headers = HeaderMap::new();
        if let Some(token) = &self.token {
            let t = token.read("ntfy")?;
            let v = HeaderValue::from_str(&format!("Bearer {t}"))
                .map_err(|_| SendError::permanent("ntfy: the token is not a valid header value"))?;
            headers.insert(AUTHORIZATION, v);
        }
        let body = http::json_bytes("ntfy", &self.message(n, &topic)?)?;
        let reply = http::post(
            &self.client,
            "ntfy",
            &root,
            headers,
            "application/json",
            body,
        )
        .await?;
        Ok(http::delivered(&reply))
    }
}

/// `https://host/path/topic` → (`https://host/path/`, `topic`).
fn split_topic(url: &reqwest::Url) -> Result<(reqwest::Url, String), String> {
    let path = url.path().trim_end_matches('/');
    let (base, topic) = path.rsplit_once('/').unwrap_or(("", path));
    if topic.is_empty() {
        return Err("url: no topic in the URL (write https://ntfy.example/<topic>)".to_string());
    }
    let mut root = url.clone();
    root.set_path(&format!("{base}/"));
    root.set_query(None);
    Ok((root, topic.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_is_the_last_path_segment() {
        let u = reqwest::Url::parse("https://ntfy.example/sub/alerts").expect("url");
        let (root, topic) = split_topic(&u).expect("splits");
        assert_eq!(root.as_str(), "https://ntfy.example/sub/");
        assert_eq!(topic, "alerts");
        assert!(split_topic(&reqwest::Url::parse("https://ntfy.example/").expect("url")).is_err());
    }

    #[test]
    fn priority_accepts_numbers_and_names() {
        let spec: NtfySpec = serde_json::from_value(
            serde_json::json!({"url": "http://127.0.0.1/t", "priority": "urgent"}),
        )
        .expect("parses");
        assert_eq!(spec.priority, Some(5));
        let e = serde_json::from_value::<NtfySpec>(
            serde_json::json!({"url": "http://127.0.0.1/t", "priority": 9}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("must be 1-5"), "{e}");
    }
}
