//! The HTTP plumbing of the webhook-style notifiers: one client setup (rustls with the ring
//! provider, the system's roots, optional `ca_file` / `insecure_skip_verify`, no redirects),
//! a POST whose answer is read with a byte cap, and the rule that turns a status or an error
//! into [`SendError::retryable`]. Messages name the notifier type and `host:port`, never the
//! full URL: Slack, Discord and Telegram URLs carry their secret in the path.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::{one_line, Delivery, SendError};

/// At most this much of an answer is read; the rest is dropped with the connection.
pub(crate) const READ_CAP: usize = 64 * 1024;
/// At most this much of an answer is quoted in a response or an error.
pub(crate) const QUOTE_CAP: usize = 200;

/// TLS options of a notifier that talks HTTPS to a server of its own (webhook, alertmanager,
/// ntfy).
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsOptions<'a> {
    pub ca_file: Option<&'a str>,
    pub insecure_skip_verify: bool,
}

/// A client for one notifier.
pub(crate) fn client(timeout: Duration, tls: &TlsOptions<'_>) -> Result<reqwest::Client, String> {
    let config = rustls_config(tls)?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .connect_timeout(timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("portwarden/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", chain(&e)))
}

fn rustls_config(tls: &TlsOptions<'_>) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = native_roots().clone();
        if let Some(path) = tls.ca_file {
            let pem = portwarden_bounded_read::read_bounded_bytes(
                path.as_ref(),
                portwarden_bounded_read::PEM_LIMIT,
            )
            .map_err(|e| format!("ca_file: cannot read {path}: {e}"))?;
            let mut added = 0;
            for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
                let cert: CertificateDer<'static> =
                    cert.map_err(|e| format!("ca_file: {path}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("ca_file: {path}: {e}"))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!("ca_file: {path} holds no PEM certificate"));
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(config)
}

/// The system's trust anchors, loaded once.
fn native_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
        roots
    })
}

/// `insecure_skip_verify = true`: any certificate is accepted, signatures are still checked.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Checks a URL in `Notifier::new` (when it is written inline) and returns it parsed.
pub(crate) fn check_url(key: &str, url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{key}: {e}"))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "{key}: scheme must be http or https, got {other:?}"
            ))
        }
    }
    if parsed.host_str().is_none() {
        return Err(format!("{key}: no host in the URL"));
    }
    Ok(parsed)
}

/// `host:port` of a URL, for messages.
pub(crate) fn server_of(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// Extra headers from the config, checked.
pub(crate) fn header_map<'a>(
    headers: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("headers: {name:?} is not a valid header name"))?;
        let v = HeaderValue::from_str(value)
            .map_err(|_| format!("headers: the value of {name} is not a valid header value"))?;
        map.insert(n, v);
    }
    Ok(map)
}

/// The answer of a server, status and the start of its body.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    /// At most [`READ_CAP`] bytes of the body, lossily decoded.
    pub body: String,
}

impl Reply {
    /// `HTTP 200: ok`: the receiver's words for [`Delivery::response`] and errors.
    pub(crate) fn words(&self) -> String {
        let quoted = one_line(&self.body, QUOTE_CAP);
        if quoted.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            format!("HTTP {}: {quoted}", self.status)
        }
    }
}

/// One POST. A 2xx answer is `Ok`; anything else is a [`SendError`] that names `notifier`, the
/// server and what it said.
pub(crate) async fn post(
    client: &reqwest::Client,
    notifier: &str,
    url: &reqwest::Url,
    mut headers: HeaderMap,
    content_type: &str,
    body: Vec<u8>,
) -> Result<Reply, SendError> {
    let server = server_of(url);
    if !headers.contains_key(CONTENT_TYPE) {
        let ct = HeaderValue::from_str(content_type).map_err(|_| {
            SendError::permanent(format!(
                "{notifier}: content_type {content_type:?} is not a valid header value"
            ))
        })?;
        headers.insert(CONTENT_TYPE, ct);
    }
    let response = client
        .post(url.clone())
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|e| request_error(notifier, &server, e))?;
    let status = response.status().as_u16();
    let body = read_capped(response)
        .await
        .map_err(|e| request_error(notifier, &server, e))?;
    let reply = Reply { status, body };
    if (200..300).contains(&status) {
        Ok(reply)
    } else {
        let mut message = format!("{notifier} to {server}: {}", reply.words());
        if (300..400).contains(&status) {
            message.push_str(" (redirects are not followed: point the URL at the final address)");
        }
        Err(SendError {
            message,
            retryable: status_retryable(status),
        })
    }
}

/// A 2xx reply as a [`Delivery`].
pub(crate) fn delivered(reply: &Reply) -> Delivery {
    Delivery {
        response: reply.words(),
    }
}

/// 5xx, 408 and 429 may pass later; other statuses will not.
pub(crate) fn status_retryable(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

async fn read_capped(mut response: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = READ_CAP - buf.len();
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= READ_CAP {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// A transport error, classified by type: a request that never got an answer may pass later,
/// except when the request itself could not be built.
fn request_error(notifier: &str, server: &str, e: reqwest::Error) -> SendError {
    let e = e.without_url();
    let retryable = !e.is_builder();
    let what = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        format!("cannot connect: {}", chain(&e))
    } else {
        chain(&e)
    };
    SendError {
        message: format!("{notifier} to {server}: {what}"),
        retryable,
    }
}

/// An error and its sources, without the URL, duplicates removed.
fn chain(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let top = e.to_string();
    // reqwest's own top line ("error sending request for url (…)") repeats the URL; its
    // sources carry the cause.
    if source.is_none() {
        parts.push(top);
    }
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert!(status_retryable(500));
        assert!(status_retryable(503));
        assert!(status_retryable(429));
        assert!(status_retryable(408));
        assert!(!status_retryable(400));
        assert!(!status_retryable(404));
        assert!(!status_retryable(301));
    }

    #[test]
    fn server_of_hides_the_path() {
        let u = check_url("url", "https://hooks.slack.com/services/T/B/secret").expect("url");
        assert_eq!(server_of(&u), "hooks.slack.com:443");
        assert!(check_url("url", "ftp://x/").is_err());
        assert!(check_url("url", "not a url").is_err());
    }

    #[test]
    fn reply_words_are_capped_and_on_one_line() {
        let r = Reply {
            status: 200,
            body: "ok\n".repeat(500),
        };
        let w = r.words();
        assert!(w.starts_with("HTTP 200: ok ok"));
        assert!(w.len() <= "HTTP 200: ".len() + QUOTE_CAP + '…'.len_utf8());
        assert_eq!(
            Reply {
                status: 204,
                body: String::new()
            }
            .words(),
            "HTTP 204"
        );
    }
}

/// Where a notifier's URL comes from: `url`, `url_env` or `url_file` (chat webhook URLs are
/// secrets).
#[derive(Debug, Clone)]
pub(crate) struct UrlSource {
    source: crate::secret::Secret,
}

impl UrlSource {
    /// Exactly one of the three; an inline URL is checked now.
    pub(crate) fn new(
        url: Option<&String>,
        url_env: Option<&String>,
        url_file: Option<&String>,
    ) -> Result<UrlSource, String> {
        let source = crate::secret::Secret::require("url", url, url_env, url_file)?;
        if let crate::secret::Secret::Inline(u) = &source {
            check_url("url", u)?;
        }
        Ok(UrlSource { source })
    }

    /// The URL now.
    pub(crate) fn resolve(&self, notifier: &str) -> Result<reqwest::Url, SendError> {
        let text = self.source.read(notifier)?;
        check_url("url", text.trim()).map_err(|e| {
            // The value may be a secret: say what is wrong, not what it is.
            let e = e.split(':').next().unwrap_or("url").to_string();
            SendError::permanent(format!("{notifier}: {e}: the URL does not parse"))
        })
    }
}

/// What the chat notifiers (slack, discord, teams) share: a client, the webhook URL from one
/// of its three sources, the subject and body templates, and posting the JSON each builds.
#[derive(Debug)]
pub(crate) struct JsonWebhook {
    notifier: &'static str,
    client: reqwest::Client,
    url: UrlSource,
    texts: crate::template::Texts,
}

/// The keys of a chat notifier that [`JsonWebhook`] reads.
pub(crate) struct WebhookKeys<'a> {
    pub url: Option<&'a String>,
    pub url_env: Option<&'a String>,
    pub url_file: Option<&'a String>,
    pub subject: Option<&'a str>,
    pub body: Option<&'a str>,
}

impl JsonWebhook {
    pub(crate) fn new(
        notifier: &'static str,
        keys: WebhookKeys<'_>,
        timeout: Duration,
    ) -> Result<Self, String> {
        Ok(Self {
            notifier,
            client: client(timeout, &TlsOptions::default())?,
            url: UrlSource::new(keys.url, keys.url_env, keys.url_file)?,
            texts: crate::template::Texts::new(keys.subject, keys.body)?,
        })
    }

    /// The subject and body for `n`.
    pub(crate) fn texts(&self, n: &crate::Notification) -> Result<(String, String), SendError> {
        texts(&self.texts, self.notifier, n)
    }

    /// Posts `message` as JSON to the webhook URL (read now, from its source).
    pub(crate) async fn post(&self, message: &serde_json::Value) -> Result<Delivery, SendError> {
        let url = self.url.resolve(self.notifier)?;
        let body = json_bytes(self.notifier, message)?;
        let reply = post(
            &self.client,
            self.notifier,
            &url,
            HeaderMap::new(),
            "application/json",
            body,
        )
        .await?;
        Ok(delivered(&reply))
    }
}

/// The subject and body of a chat-style message: the notifier's templates, or the defaults.
pub(crate) fn texts(
    texts: &crate::template::Texts,
    notifier: &str,
    n: &crate::Notification,
) -> Result<(String, String), SendError> {
    let subject = texts
        .subject(n)
        .map_err(|e| SendError::permanent(format!("{notifier}: {e}")))?;
    let body = texts
        .body(n)
        .map_err(|e| SendError::permanent(format!("{notifier}: {e}")))?;
    Ok((subject, body))
}

/// A JSON value as request bytes.
pub(crate) fn json_bytes(notifier: &str, value: &serde_json::Value) -> Result<Vec<u8>, SendError> {
    serde_json::to_vec(value)
        .map_err(|e| SendError::permanent(format!("{notifier}: cannot encode the message: {e}")))
}
