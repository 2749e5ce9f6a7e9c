//! `type = "webhook"`: an HTTP POST of the notification to a URL of yours. The body is the
//! [`Notification`] as JSON (the same shape `exec` gets on stdin) unless a `body` template says
//! otherwise. Every request carries `Idempotency-Key: <notification id>` (a retried notification
//! has the same id, so a receiver can drop duplicates) and `X-Portwarden-Kind: <kind>`; with a
//! secret it also carries `X-Portwarden-Signature: sha256=<hex>`, the HMAC-SHA256 of the exact
//! body bytes keyed with the secret. Answer: any 2xx is delivered (`HTTP 200: <body start>`);
//! 4xx except 408/429 is permanent; redirects are not followed.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `url` / `url_env` / `url_file` | where to POST (`http` or `https`); exactly one | required |
//! | `headers` | extra request headers, `{ Authorization = "Bearer …" }` | none |
//! | `secret_env` / `secret_file` | HMAC key for `X-Portwarden-Signature` | no signature |
//! | `body` | a template for the body text (see [`crate::template`]) | the notification as JSON |
//! | `content_type` | the `Content-Type` header | `application/json` |
//! | `ca_file` | PEM file of extra trusted CA certificates | system roots |
//! | `insecure_skip_verify` | accept any TLS certificate (tests, lab use) | `false` |
//! | `timeout` | one send may take this long | `"10s"` |
//!
//! Verifying a request (receiver side): compute HMAC-SHA256 over the raw body with the shared
//! secret and compare its lowercase hex with the header after `sha256=`.

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use sha2::Sha256;

use crate::http::{self, TlsOptions, UrlSource};
use crate::secret::Secret;
use crate::template::Texts;
use crate::{Delivery, Notification, SendError};

/// `type = "webhook"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// Where to POST.
    #[serde(default)]
    pub url: Option<String>,
    /// Environment variable holding the URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// File holding the URL.
    #[serde(default)]
    pub url_file: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Environment variable holding the HMAC secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File holding the HMAC secret.
    #[serde(default)]
    pub secret_file: Option<String>,
    /// Body template; default: the notification as JSON.
    #[serde(default)]
    pub body: Option<String>,
    /// `Content-Type` of the body; default `application/json`.
    #[serde(default)]
    pub content_type: Option<String>,
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

/// A built `webhook` notifier.
#[derive(Debug)]
pub struct WebhookNotifier {
    client: reqwest::Client,
    url: UrlSource,
    headers: HeaderMap,
    secret: Option<Secret>,
    texts: Texts,
    content_type: String,
}

/// The signature header's value for `body`: `sha256=<lowercase hex HMAC-SHA256>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length; the error arm cannot happen.
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        Err(_) => String::new(),
    }
}

impl WebhookNotifier {
    pub(crate) fn new(spec: &WebhookSpec, timeout: Duration) -> Result<WebhookNotifier, String> {
        let url = UrlSource::new(
            spec.url.as_ref(),
            spec.url_env.as_ref(),
            spec.url_file.as_ref(),
        )?;
        let secret = Secret::choose(
            "secret",
            None,
            spec.secret_env.as_ref(),
            spec.secret_file.as_ref(),
        )?;
        let content_type = spec
            .content_type
            .clone()
            .unwrap_or_else(|| "application/json".to_string());
        HeaderValue::from_str(&content_type)
            .map_err(|_| format!("content_type: {content_type:?} is not a valid header value"))?;
        let client = http::client(
            timeout,
            &TlsOptions {
                ca_file: spec.ca_file.as_deref(),
                insecure_skip_verify: spec.insecure_skip_verify,
            },
        )?;
        Ok(WebhookNotifier {
            client,
            url,
            headers: http::header_map(&spec.headers)?,
            secret,
            texts: Texts::new(None, spec.body.as_deref())?,
            content_type,
        })
    }

    pub(crate) async fn send(&self, n: &Notification) -> Result<Delivery, SendError> {
        let url = self.url.resolve("webhook")?;
        let body: Vec<u8> = if self.texts.has_body() {
            self.texts
                .body(n)
                .map_err(|e| SendError::permanent(format!("webhook: {e}")))?
                .into_bytes()
        } else {
            serde_json::to_vec(n).map_err(|e| {
                SendError::permanent(format!("webhook: cannot encode the notification: {e}"))
            })?
        };
        let mut headers = self.headers.clone();
        headers.insert(
            HeaderName::from_static("idempotency-key"),
            header_text(&n.id),
        );
        headers.insert(
            HeaderName::from_static("x-portwarden-kind"),
            HeaderValue::from_static(n.kind.as_str()),
        );
        if let Some(secret) = &self.secret {
            let key = secret.read("webhook")?;
            let sig = signature(key.as_bytes(), &body);
            if let Ok(v) = HeaderValue::from_str(&sig) {
                headers.insert(HeaderName::from_static("x-portwarden-signature"), v);
            }
        }
        let reply = http::post(
            &self.client,
            "webhook",
            &url,
            headers,
            &self.content_type,
            body,
        )
        .await?;
        Ok(http::delivered(&reply))
    }
}

/// A header value from free text: visible ASCII kept, anything else percent-encoded.
fn header_text(text: &str) -> HeaderValue {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x21..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&out).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_hmac() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn header_text_keeps_ids_readable_and_valid() {
        assert_eq!(header_text("db1-42"), "db1-42");
        assert_eq!(header_text("a b\né"), "a%20b%0A%C3%A9");
    }

    #[test]
    fn refuses_two_url_sources_and_bad_headers() {
        let spec = WebhookSpec {
            url: Some("http://127.0.0.1/".into()),
            url_env: Some("X".into()),
            ..Default::default()
        };
        assert!(WebhookNotifier::new(&spec, Duration::from_secs(1))
            .unwrap_err()
            .contains("only one of url"));
        let mut spec = WebhookSpec {
            url: Some("http://127.0.0.1/".into()),
            ..Default::default()
        };
        spec.headers.insert("bad header".into(), "x".into());
        assert!(WebhookNotifier::new(&spec, Duration::from_secs(1))
            .unwrap_err()
            .contains("not a valid header name"));
    }
}
