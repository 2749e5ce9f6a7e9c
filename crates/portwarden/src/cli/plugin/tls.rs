//! TLS as the plugins use it: OpenSSL with no verification and no SNI, and
//! `np_net_ssl_check_certificate`'s verdict on the leaf certificate's expiry (`-D`).

use std::sync::Arc;

use portwarden_probe::{AcceptAnyCertificate, State};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection};

/// A client session that trusts anything and sends no server name; `None` only if rustls
/// refuses its own default protocol versions.
pub(super) fn client_connection() -> Option<ClientConnection> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate::new(provider)))
        .with_no_client_auth();
    config.enable_sni = false;
    // Any name will do: SNI is off and the certificate is not checked against it.
    let name = ServerName::try_from("localhost").ok()?;
    ClientConnection::new(Arc::new(config), name).ok()
}

/// `-D WARN[,CRIT]`: days before expiry that give WARNING / CRITICAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CertDays {
    pub warning: i64,
    pub critical: i64,
}

/// Parses `WARN[,CRIT]` as the plugins do (non-negative integers; CRIT defaults to 0).
pub(super) fn parse_cert_days(text: &str) -> Result<CertDays, String> {
    let days = |t: &str| {
        t.parse::<u32>()
            .map(i64::from)
            .map_err(|_| format!("Invalid certificate expiration period - {t}"))
    };
    match text.split_once(',') {
        Some((w, c)) => Ok(CertDays {
            warning: days(w)?,
            critical: days(c)?,
        }),
        None => Ok(CertDays {
            warning: days(text)?,
            critical: 0,
        }),
    }
}

/// The leaf certificate's verdict and the line the plugins print for it.
pub(super) fn check_certificate(
    chain: &[CertificateDer<'_>],
    days: CertDays,
    now_unix: i64,
) -> (State, String) {
    let Some(leaf) = chain.first() else {
        return (
            State::Critical,
            "CRITICAL - Cannot retrieve server certificate.".into(),
        );
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else {
        return (
            State::Critical,
            "CRITICAL - Cannot retrieve certificate subject.".into(),
        );
    };
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("Unknown CN")
        .to_string();
    let not_after = cert.validity().not_after.timestamp();
    verdict(&cn, not_after, days, now_unix)
}

/// The decision of `np_net_ssl_check_certificate`, from the CN, notAfter and the clock.
fn verdict(cn: &str, not_after: i64, days: CertDays, now_unix: i64) -> (State, String) {
    let time_left = not_after - now_unix;
    // C's `(int)(float / 86400)`: rounds toward zero.
    let days_left = time_left / 86_400;
    let stamp = c_locale_time(not_after);
    let word = |over_crit: bool| if over_crit { "WARNING" } else { "CRITICAL" };
    let state = |over_crit: bool| {
        if over_crit {
            State::Warning
        } else {
            State::Critical
        }
    };
    if days_left > 0 && days_left <= days.warning {
        let over = days_left > days.critical;
        (
            state(over),
            format!(
                "{} - Certificate '{cn}' expires in {days_left} day(s) ({stamp}).",
                word(over)
            ),
        )
    } else if days_left == 0 && time_left > 0 {
        let over = days_left > days.critical;
        let (n, unit) = if time_left >= 3600 {
            (time_left / 3600, "hours")
        } else {
            (time_left / 60, "minutes")
        };
        (
            state(over),
            format!(
                "{} - Certificate '{cn}' expires in {n} {unit} ({stamp})",
                word(over)
            ),
        )
    } else if time_left < 0 {
        (
            State::Critical,
            format!("CRITICAL - Certificate '{cn}' expired on {stamp}."),
        )
    } else if days_left == 0 {
        let over = days_left > days.critical;
        (
            state(over),
            format!(
                "{} - Certificate '{cn}' just expired ({stamp}).",
                word(over)
            ),
        )
    } else {
        (
            State::Ok,
            format!("OK - Certificate '{cn}' will expire on {stamp}."),
        )
    }
}

/// `strftime("%c %z")` in the C locale with TZ=GMT: `Wed Jan  6 18:12:35 2027 +0000`.
fn c_locale_time(unix: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(unix) else {
        return unix.to_string();
    };
    let weekday = t.weekday().to_string();
    let month = t.month().to_string();
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {} +0000",
        &weekday[..3],
        &month[..3],
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.year()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_time_as_the_c_locale() {
        // 2027-01-06T18:12:35Z
        assert_eq!(
            c_locale_time(1_799_259_155),
            "Wed Jan  6 18:12:35 2027 +0000"
        );
        assert_eq!(
            c_locale_time(1_799_950_355),
            "Thu Jan 14 18:12:35 2027 +0000"
        );
    }

    #[test]
    fn verdicts_follow_the_plugins() {
        let days = CertDays {
            warning: 40,
            critical: 20,
        };
        let now = 1_000_000_000;
        let (s, line) = verdict("x", now + 29 * 86_400 + 100, days, now);
        assert_eq!(s, State::Warning);
        assert!(line.starts_with("WARNING - Certificate 'x' expires in 29 day(s) ("));
        let (s, _) = verdict("x", now + 10 * 86_400, days, now);
        assert_eq!(s, State::Critical);
        let (s, line) = verdict("x", now + 50 * 86_400, days, now);
        assert_eq!(s, State::Ok);
        assert!(line.starts_with("OK - Certificate 'x' will expire on "));
        let (s, line) = verdict("x", now - 5, days, now);
        assert_eq!(s, State::Critical);
        assert!(line.starts_with("CRITICAL - Certificate 'x' expired on "));
        let (s, line) = verdict("x", now + 7200, days, now);
        assert_eq!(s, State::Critical);
        assert!(line.contains("expires in 2 hours"));
    }

    #[test]
    fn cert_days_parse_like_the_plugins() {
        assert_eq!(
            parse_cert_days("30,10"),
            Ok(CertDays {
                warning: 30,
                critical: 10
            })
        );
        assert_eq!(
            parse_cert_days("30"),
            Ok(CertDays {
                warning: 30,
                critical: 0
            })
        );
        assert!(parse_cert_days("x").is_err());
    }
}
