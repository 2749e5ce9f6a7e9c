//! PostgreSQL: an `SSLRequest` answered with one byte, `S` (TLS offered) or `N` (not
//! offered); either proves PostgreSQL answers without logging in or touching a database.
//! With STARTTLS, the [`StartTls::Postgres`] negotiation sends the `SSLRequest` itself and
//! requires `S`, then the TLS handshake shows the server's certificate.
//!
//! No quit: after its answer the server waits for a TLS handshake or a startup packet,
//! and anything we could send there is logged (a cancel request: `PID 0 in cancel request
//! did not match any process`; a malformed startup packet; plain bytes where TLS was
//! offered). Leaving without a word is what PostgreSQL expects from a client that did not
//! like the answer to its `SSLRequest`: a normal close (FIN) is not logged at all, while
//! a reset is (`could not receive data from client: Connection reset by peer`).

use super::{expect_reply, Preset, PresetContext};
use crate::expect::Verdict;
use crate::spec::Step;
use crate::starttls::StartTls;

/// The `SSLRequest` message: length 8, request code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Matches the one-byte answer to `SSLRequest`. Anything else, including an `E` error
/// message (servers older than 7.0), fails; the answer is one byte, so a longer reply to
/// a plain `SSLRequest` is not PostgreSQL either once it shows up in the same read.
fn ssl_answer(data: &[u8]) -> Verdict {
    match data {
        [] => Verdict::Undecided,
        [b'S' | b'N'] => Verdict::Matched,
        _ => Verdict::Mismatch,
    }
}

fn dialog(ctx: &PresetContext<'_>) -> Vec<Step> {
    if ctx.starttls {
        return vec![Step::StartTls(StartTls::Postgres)];
    }
    vec![
        Step::Send(SSL_REQUEST.to_vec()),
        expect_reply("postgres answer S or N to SSLRequest", ssl_answer),
    ]
}

/// PostgreSQL on 5432.
pub const POSTGRES: Preset = Preset {
    name: "postgres",
    aliases: &["postgresql", "pgsql"],
    summary: "PostgreSQL: SSLRequest answered S or N, optional TLS (STARTTLS)",
    default_port: 5432,
    implicit_tls: false,
    starttls: Some(StartTls::Postgres),
    dialog,
    quit: None,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_byte_s_or_n_matches() {
        assert_eq!(ssl_answer(b""), Verdict::Undecided);
        assert_eq!(ssl_answer(b"S"), Verdict::Matched);
        assert_eq!(ssl_answer(b"N"), Verdict::Matched);
    }

    #[test]
    fn anything_else_fails() {
        assert_eq!(ssl_answer(b"E"), Verdict::Mismatch);
        assert_eq!(ssl_answer(b"SSH-2.0-OpenSSH\r\n"), Verdict::Mismatch);
        assert_eq!(ssl_answer(b"\x00"), Verdict::Mismatch);
        assert_eq!(ssl_answer(b"-ERR"), Verdict::Mismatch);
    }

    #[test]
    fn starttls_leaves_the_ssl_request_to_the_negotiation() {
        let plain = dialog(&PresetContext {
            host: "db",
            starttls: false,
        });
        assert!(matches!(plain.first(), Some(Step::Send(b)) if b[..] == SSL_REQUEST));
        assert_eq!(StartTls::Postgres.negotiation().len(), 2);
        let upgraded = dialog(&PresetContext {
            host: "db",
            starttls: true,
        });
        assert!(matches!(upgraded[..], [Step::StartTls(StartTls::Postgres)]));
    }
}
