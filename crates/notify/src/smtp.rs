//! `type = "smtp"`: e-mail through an SMTP server (lettre, rustls with ring). One message per
//! notification, to every address in `to`, plain text UTF-8, with `Auto-Submitted:
//! auto-generated` (so vacation responders stay quiet) and `X-Portwarden-Notification: <id>`.
//! The response is the server's final reply, `250 2.0.0 Ok: queued as 4F2A1`. A 5xx reply is
//! permanent (`smtp to mail.example.com:587: permanent error (535): 5.7.8 Authentication
//! failed`); 4xx replies, refused connections, TLS failures and timeouts are retryable. When
//! the server fails (cannot connect, or does not accept the message) and `fallback_server` is
//! set, the same message goes to the fallback within the same attempt.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `server` | `host:port` (port defaults: 587 for `starttls`, 465 for `tls`, 25 for `none`) | required |
//! | `tls` | `starttls` (upgrade required), `tls` (implicit TLS, "SMTPS"), `none` (plain; loopback only) | `starttls` |
//! | `ca_file` | PEM file of extra trusted CA certificates (a private CA, a self-signed server) | system roots |
//! | `insecure_skip_verify` | accept any certificate (lab use) | `false` |
//! | `username` | AUTH user name; needs `password_env` or `password_file` | no AUTH |
//! | `password_env` / `password_file` | the password, read at each send | none |
//! | `from` | sender, `portwarden@example.com` or `"Portwarden <pw@example.com>"` | required |
//! | `to` | recipients, one or more | required |
//! | `fallback_server` | a second `host:port`, same `tls` and credentials | none |
//! | `subject`, `body` | template overrides (see [`crate::template`]) | the defaults |
//! | `timeout` | the whole send may take this long; with a fallback each server gets half | `"10s"` |

use std::net::IpAddr;
use std::time::Duration;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use crate::secret::Secret;
use crate::template::Texts;
use crate::{one_line, Delivery, Notification, SendError};

/// How the connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS; refused if the server does not offer it.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption; only to a loopback address.
    None,
}

/// `type = "smtp"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSpec {
    /// `host:port` of the server.
    pub server: String,
    /// `starttls`, `tls` or `none`; default `starttls`.
    #[serde(default)]
    pub tls: SmtpTls,
    /// PEM file of extra trusted CA certificates.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Accept any certificate; default false.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// AUTH user name.
    #[serde(default)]
    pub username: Option<String>,
    /// Environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the password.
    #[serde(default)]
    pub password_file: Option<String>,
    /// Sender address.
    pub from: String,
    /// Recipient addresses.
    pub to: Vec<String>,
    /// A second server, tried when the first fails.
    #[serde(default)]
    pub fallback_server: Option<String>,
    /// Subject template.
    #[serde(default)]
    pub subject: Option<String>,
    /// Body template.
    #[serde(default)]
    pub body: Option<String>,
    /// The whole send may take this long (`"10s"`).
    #[serde(default)]
    pub timeout: Option<String>,
}

/// One server to talk to.
#[derive(Clone)]
struct Server {
    host: String,
    port: u16,
    tls: Option<TlsParameters>,
    mode: SmtpTls,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{} ({:?})", self.host, self.port, self.mode)
    }
}

impl Server {
    fn name(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A built `smtp` notifier.
#[derive(Debug)]
pub struct SmtpNotifier {
    servers: Vec<Server>,
    username: Option<String>,
    password: Option<Secret>,
    from: Mailbox,
    to: Vec<Mailbox>,
    texts: Texts,
    timeout: Duration,
}

/// `Auto-Submitted: auto-generated` (RFC 3834).
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_string())
    }
}

/// `X-Portwarden-Notification: <id>`.
#[derive(Debug, Clone)]
struct NotificationId(String);

impl Header for NotificationId {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Portwarden-Notification")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(NotificationId(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `host:port` → (host, port); IPv6 in brackets.
fn split_server(key: &str, server: &str, default_port: u16) -> Result<(String, u16), String> {
    let server = server.trim();
    if server.is_empty() {
        return Err(format!("{key}: must be host:port"));
    }
    let (host, port) = if let Some(rest) = server.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{key}: missing ] in {server:?}"))?;
        match after.strip_prefix(':') {
            Some(p) => (host.to_string(), Some(p)),
            None if after.is_empty() => (host.to_string(), None),
            None => return Err(format!("{key}: expected :port after ] in {server:?}")),
        }
    } else {
        match server.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => (server.to_string(), None),
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (server.to_string(), None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(format!("{key}: port must be 1-65535, got {p:?}")),
        },
    };
    if host.is_empty() {
        return Err(format!("{key}: no host in {server:?}"));
    }
    Ok((host, port))
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

impl SmtpNotifier {
    pub(crate) fn new(spec: &SmtpSpec, timeout: Duration) -> Result<SmtpNotifier, String> {
        let default_port = match spec.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        };
        let ca = match &spec.ca_file {
            None => None,
            Some(path) => {
                let pem = portwarden_bounded_read::read_bounded_bytes(
                    path.as_ref(),
                    portwarden_bounded_read::PEM_LIMIT,
                )
                .map_err(|e| format!("ca_file: cannot read {path}: {e}"))?;
                Some(Certificate::from_pem(&pem).map_err(|e| format!("ca_file: {path}: {e}"))?)
            }
        };
        let mut servers = Vec::new();
        for (key, value) in [
            ("server", Some(&spec.server)),
            ("fallback_server", spec.fallback_server.as_ref()),
        ] {
            let Some(value) = value else { continue };
            let (host, port) = split_server(key, value, default_port)?;
            if spec.tls == SmtpTls::None && !is_loopback(&host) {
                return Err(format!(
                    "{key}: tls = \"none\" sends the password and the mail in clear text; it is only allowed to a loopback address, not {host}"
                ));
            }
            let tls = if spec.tls == SmtpTls::None {
                None
            } else {
                let mut b = TlsParameters::builder(host.clone())
                    .dangerous_accept_invalid_certs(spec.insecure_skip_verify);
                if let Some(ca) = &ca {
                    b = b.add_root_certificate(ca.clone());
                }
                Some(
                    b.build_rustls()
                        .map_err(|e| format!("{key}: TLS setup: {e}"))?,
                )
            };
            servers.push(Server {
                host,
                port,
                tls,
                mode: spec.tls,
            });
        }
        let password = Secret::choose(
            "password",
            None,
            spec.password_env.as_ref(),
            spec.password_file.as_ref(),
        )?;
        match (&spec.username, &password) {
            (Some(_), None) => {
                return Err("username: needs password_env or password_file".to_string())
            }
            (None, Some(_)) => return Err("password_env/password_file: needs username".to_string()),
            _ => {}
        }
        let from: Mailbox = spec
            .from
            .parse()
            .map_err(|e| format!("from: {:?} is not an address: {e}", spec.from))?;
        if spec.to.is_empty() {
            return Err("to: needs at least one address".to_string());
        }
        let to = spec
            .to
            .iter()
            .map(|a| {
                a.parse::<Mailbox>()
                    .map_err(|e| format!("to: {a:?} is not an address: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SmtpNotifier {
            servers,
            username: spec.username.clone(),
            password,
            from,
            to,
            texts: Texts::new(spec.subject.as_deref(), spec.body.as_deref())?,
            timeout,
        })
    }

    /// The message for `n`.
    fn message(&self, n: &Notification) -> Result<Message, SendError> {
        let subject = self
            .texts
            .subject(n)
            .map_err(|e| SendError::permanent(format!("smtp: {e}")))?;
        let body = self
            .texts
            .body(n)
            .map_err(|e| SendError::permanent(format!("smtp: {e}")))?;
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .header(AutoSubmitted)
            .header(NotificationId(one_line(&n.id, 200)));
        for to in &self.to {
            b = b.to(to.clone());
        }
        b.body(body)
            .map_err(|e| SendError::permanent(format!("smtp: cannot build the message: {e}")))
    }

    pub(crate) async fn send(&self, n: &Notification) -> Result<Delivery, SendError> {
        let message = self.message(n)?;
        let credentials = match (&self.username, &self.password) {
            (Some(user), Some(secret)) => {
                Some(Credentials::new(user.clone(), secret.read("smtp")?))
            }
            _ => None,
        };
        let mut failures: Vec<SendError> = Vec::new();
        for (i, server) in self.servers.iter().enumerate() {
            match self.send_to(server, &message, credentials.clone()).await {
                Ok(mut delivery) => {
                    if i > 0 {
                        delivery.response.push_str(&format!(
                            " (via fallback {}; {})",
                            server.name(),
                            failures
                                .iter()
                                .map(|f| f.message.as_str())
                                .collect::<Vec<_>>()
                                .join("; ")
                        ));
                    }
                    return Ok(delivery);
                }
                Err(e) => failures.push(e),
            }
        }
        let retryable = failures.iter().any(|f| f.retryable);
        Err(SendError {
            message: failures
                .into_iter()
                .map(|f| f.message)
                .collect::<Vec<_>>()
                .join("; then fallback "),
            retryable,
        })
    }

    async fn send_to(
        &self,
        server: &Server,
        message: &Message,
        credentials: Option<Credentials>,
    ) -> Result<Delivery, SendError> {
        let tls = match (&server.tls, server.mode) {
            (Some(p), SmtpTls::Starttls) => Tls::Required(p.clone()),
            (Some(p), SmtpTls::Tls) => Tls::Wrapper(p.clone()),
            _ => Tls::None,
        };
        // With a fallback, each server gets its share of the timeout, so a black-holed first
        // server still leaves time for the second.
        let share = self.timeout / u32::try_from(self.servers.len().max(1)).unwrap_or(1);
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host.clone())
                .port(server.port)
                .tls(tls)
                .timeout(Some(share));
        if let Some(c) = credentials {
            builder = builder.credentials(c);
        }
        let transport = builder.build();
        let name = server.name();
        let sent = match tokio::time::timeout(share, transport.send(message.clone())).await {
            Ok(sent) => sent,
            Err(_) => {
                return Err(SendError::retryable(format!(
                    "smtp to {name}: no answer within {}",
                    humantime::format_duration(share)
                )))
            }
        };
        match sent {
            Ok(response) => {
                let last = response.message().last().unwrap_or("").to_string();
                Ok(Delivery {
                    response: one_line(&format!("{} {last}", response.code()), 300),
                })
            }
            Err(e) => Err(SendError {
                retryable: !e.is_permanent() && !e.is_client(),
                message: format!("smtp to {name}: {}", one_line(&describe(&e), 500)),
            }),
        }
    }
}

/// lettre's error with its sources (`Connection error: Connection refused (os error 111)`).
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    // The first source is already part of lettre's Display.
    if let Some(s) = source {
        source = s.source();
    }
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = s.source();
    }
    // lettre nests its errors, each saying its kind: "Connection error: Connection error: …".
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split(": ") {
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(server: &str, tls: SmtpTls) -> SmtpSpec {
        SmtpSpec {
            server: server.to_string(),
            tls,
            from: "portwarden@example.com".to_string(),
            to: vec!["ops@example.com".to_string()],
            ..Default::default()
        }
    }

    #[test]
    fn servers_split_with_default_ports() {
        assert_eq!(
            split_server("server", "mx:2525", 587),
            Ok(("mx".into(), 2525))
        );
        assert_eq!(split_server("server", "mx", 465), Ok(("mx".into(), 465)));
        assert_eq!(
            split_server("server", "[::1]:25", 587),
            Ok(("::1".into(), 25))
        );
        assert_eq!(split_server("server", "::1", 25), Ok(("::1".into(), 25)));
        assert!(split_server("server", "mx:0", 25).is_err());
        assert!(split_server("server", "", 25).is_err());
    }

    #[test]
    fn plain_smtp_only_to_loopback() {
        assert!(
            SmtpNotifier::new(&spec("127.0.0.1:25", SmtpTls::None), Duration::from_secs(1)).is_ok()
        );
        assert!(
            SmtpNotifier::new(&spec("localhost:25", SmtpTls::None), Duration::from_secs(1)).is_ok()
        );
        let e = SmtpNotifier::new(
            &spec("mail.example.com:25", SmtpTls::None),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(e.starts_with("server: tls = \"none\""), "{e}");
        let mut s = spec("127.0.0.1:25", SmtpTls::None);
        s.fallback_server = Some("192.0.2.1:25".into());
        assert!(SmtpNotifier::new(&s, Duration::from_secs(1))
            .unwrap_err()
            .starts_with("fallback_server: "));
    }

    #[test]
    fn addresses_and_credentials_are_checked_at_build() {
        let mut s = spec("127.0.0.1:25", SmtpTls::Starttls);
        s.to = vec!["not an address".into()];
        assert!(SmtpNotifier::new(&s, Duration::from_secs(1))
            .unwrap_err()
            .starts_with("to: "));
        let mut s = spec("127.0.0.1:25", SmtpTls::Starttls);
        s.username = Some("u".into());
        assert_eq!(
            SmtpNotifier::new(&s, Duration::from_secs(1)).unwrap_err(),
            "username: needs password_env or password_file"
        );
        let mut s = spec("127.0.0.1:25", SmtpTls::Starttls);
        s.to.clear();
        assert!(SmtpNotifier::new(&s, Duration::from_secs(1)).is_err());
    }

    #[test]
    fn broken_template_is_refused_at_build() {
        let mut s = spec("127.0.0.1:25", SmtpTls::Starttls);
        s.body = Some("{{ host ".into());
        let e = SmtpNotifier::new(&s, Duration::from_secs(1)).unwrap_err();
        assert!(e.starts_with("body template: syntax error"), "{e}");
    }
}
