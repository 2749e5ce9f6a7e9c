//! STARTTLS: the plain-text exchange that asks a server to switch to TLS, per protocol.
//!
//! Each protocol's negotiation is a list of ordinary dialog steps run after the greeting;
//! the engine then does the TLS handshake on the same connection.

use serde::{Deserialize, Serialize};

use crate::expect::{Expectation, Matcher, ReplyParser};
use crate::reply;
use crate::spec::Step;

/// A protocol that can upgrade a plain connection to TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    /// SMTP / submission: `EHLO`, then `STARTTLS` → 220 (RFC 3207).
    Smtp,
    /// IMAP: `a1 STARTTLS` → `a1 OK` (RFC 3501).
    Imap,
    /// POP3: `STLS` → `+OK` (RFC 2595).
    Pop3,
    /// FTP: `AUTH TLS` → 234 (RFC 4217).
    Ftp,
    /// NNTP: `STARTTLS` → 382 (RFC 4642).
    Nntp,
    /// PostgreSQL: SSLRequest → `S`.
    Postgres,
}

impl StartTls {
    /// All protocols, for help texts and registry tests.
    pub const ALL: &'static [StartTls] = &[
        StartTls::Smtp,
        StartTls::Imap,
        StartTls::Pop3,
        StartTls::Ftp,
        StartTls::Nntp,
        StartTls::Postgres,
    ];

    /// The lowercase name used on the command line and in config.
    pub fn name(self) -> &'static str {
        match self {
            StartTls::Smtp => "smtp",
            StartTls::Imap => "imap",
            StartTls::Pop3 => "pop3",
            StartTls::Ftp => "ftp",
            StartTls::Nntp => "nntp",
            StartTls::Postgres => "postgres",
        }
    }

    /// Parses a protocol name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.name() == name)
    }

    /// The steps that ask for TLS, run after the server's greeting has been read.
    pub fn negotiation(self) -> Vec<Step> {
        let reply = |name, parse| {
            Step::Expect(Expectation::one(Matcher::Reply(ReplyParser {
                name,
                parse,
            })))
        };
        match self {
            StartTls::Smtp => vec![
                Step::Send(b"EHLO portwarden\r\n".to_vec()),
                reply("smtp reply 250 to EHLO", reply::code_is::<250>),
                Step::Send(b"STARTTLS\r\n".to_vec()),
                reply("smtp reply 220 to STARTTLS", reply::code_is::<220>),
            ],
            StartTls::Imap => vec![
                Step::Send(b"a1 STARTTLS\r\n".to_vec()),
                reply("imap a1 OK to STARTTLS", reply::imap_tagged_ok),
            ],
            StartTls::Pop3 => vec![
                Step::Send(b"STLS\r\n".to_vec()),
                reply("pop3 +OK to STLS", reply::pop3_ok),
            ],
            StartTls::Ftp => vec![
                Step::Send(b"AUTH TLS\r\n".to_vec()),
                reply("ftp reply 234 to AUTH TLS", reply::ftp_code_is::<234>),
            ],
            StartTls::Nntp => vec![
                Step::Send(b"STARTTLS\r\n".to_vec()),
                reply("nntp reply 382 to STARTTLS", reply::code_is::<382>),
            ],
            StartTls::Postgres => vec![
                // SSLRequest: length 8, code 80877103.
                Step::Send(vec![0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]),
                Step::Expect(Expectation::one(Matcher::Prefix(b"S".to_vec()))),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_round_trips_its_name_and_negotiates() {
        for p in StartTls::ALL {
            assert_eq!(StartTls::from_name(p.name()), Some(*p));
            let steps = p.negotiation();
            assert!(
                matches!(steps.first(), Some(Step::Send(_))),
                "{p:?} starts by asking"
            );
            assert!(
                matches!(steps.last(), Some(Step::Expect(_))),
                "{p:?} ends by reading"
            );
        }
    }
}
