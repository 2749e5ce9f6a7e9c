//! Protocol presets: a default port, a greeting check, a polite quit, and where the
//! protocol has it, implicit TLS or STARTTLS. Each protocol family is one module; the
//! [`ALL`] list is the registry the CLI and config read.
//!
//! Adding a preset: write a module with a `pub const` [`Preset`] (its dialog is a plain
//! function returning [`Step`]s; use a [`crate::expect::ReplyParser`] where a pattern
//! cannot decide early), then list it in [`ALL`].

use crate::expect::{Expectation, Matcher, ReplyParser};
use crate::spec::{ProbeSpec, Step};
use crate::starttls::StartTls;

mod clamd;
mod ftp;
mod http;
mod imap;
mod ldap;
mod memcached;
mod mysql;
mod nntp;
mod pop3;
mod postgres;
mod redis;
mod smtp;
mod ssh;
mod xmpp;

/// What a preset's dialog may depend on.
#[derive(Debug, Clone, Copy)]
pub struct PresetContext<'a> {
    /// The host name or address as the user wrote it (for `Host:` headers and the like).
    pub host: &'a str,
    /// Whether to upgrade with STARTTLS (only for presets that support it).
    pub starttls: bool,
}

/// A protocol preset.
#[derive(Debug)]
pub struct Preset {
    /// The name on the command line and in `protocol = "..."`.
    pub name: &'static str,
    /// Other accepted names (check_tcp's service names, e.g. `ssmtp`).
    pub aliases: &'static [&'static str],
    /// One line for `--help` and docs.
    pub summary: &'static str,
    pub default_port: u16,
    /// TLS from the first byte.
    pub implicit_tls: bool,
    /// The STARTTLS protocol, when the plain protocol can upgrade.
    pub starttls: Option<StartTls>,
    /// The dialog: what to send and expect after connecting.
    pub dialog: fn(&PresetContext<'_>) -> Vec<Step>,
    /// Sent after the verdict to end the session politely.
    pub quit: Option<&'static [u8]>,
}

/// Every preset, in the order help lists them.
pub const ALL: &[&Preset] = &[
    &smtp::SMTP,
    &smtp::SUBMISSION,
    &smtp::SMTPS,
    &pop3::POP3,
    &pop3::POP3S,
    &imap::IMAP,
    &imap::IMAPS,
    &ftp::FTP,
    &ssh::SSH,
    &http::HTTP,
    &http::HTTPS,
    &nntp::NNTP,
    &nntp::NNTPS,
    &ldap::LDAP,
    &ldap::LDAPS,
    &xmpp::XMPP,
    &redis::REDIS,
    &memcached::MEMCACHED,
    &postgres::POSTGRES,
    &mysql::MYSQL,
    &clamd::CLAMD,
];

/// Finds a preset by name or alias (case-insensitive).
pub fn find(name: &str) -> Option<&'static Preset> {
    let name = name.to_ascii_lowercase();
    ALL.iter()
        .copied()
        .find(|p| p.name == name || p.aliases.contains(&name.as_str()))
}

impl Preset {
    /// Fills `spec` with this preset's dialog, quit and TLS mode. Asking for STARTTLS on a
    /// preset without it is an error naming the preset.
    pub fn apply(&self, spec: &mut ProbeSpec, starttls: bool) -> Result<(), String> {
        if starttls && self.starttls.is_none() {
            return Err(format!("preset {} has no STARTTLS", self.name));
        }
        let host = spec.target.host.to_string();
        let ctx = PresetContext {
            host: &host,
            starttls,
        };
        spec.steps = (self.dialog)(&ctx);
        spec.quit = self.quit.map(<[u8]>::to_vec);
        spec.implicit_tls = self.implicit_tls;
        Ok(())
    }
}

/// An expect step with a protocol reply parser.
pub(crate) fn expect_reply(name: &'static str, parse: fn(&[u8]) -> crate::Verdict) -> Step {
    Step::Expect(Expectation::one(Matcher::Reply(ReplyParser {
        name,
        parse,
    })))
}

/// An expect step with a byte prefix.
pub(crate) fn expect_prefix(prefix: &[u8]) -> Step {
    Step::Expect(Expectation::one(Matcher::Prefix(prefix.to_vec())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_are_unique_and_lowercase() {
        let mut seen = std::collections::HashSet::new();
        for p in ALL {
            for name in std::iter::once(&p.name).chain(p.aliases.iter()) {
                assert_eq!(*name, name.to_ascii_lowercase(), "{name} is not lowercase");
                assert!(seen.insert(*name), "{name} is used twice");
            }
        }
    }

    #[test]
    fn every_preset_has_a_port_and_a_dialog() {
        for p in ALL {
            assert!(p.default_port > 0, "{}", p.name);
            let steps = (p.dialog)(&PresetContext {
                host: "example.org",
                starttls: false,
            });
            assert!(
                !steps.is_empty(),
                "{} checks nothing beyond connect",
                p.name
            );
            if p.starttls.is_some() {
                let with_tls = (p.dialog)(&PresetContext {
                    host: "example.org",
                    starttls: true,
                });
                assert!(
                    with_tls.iter().any(|s| matches!(s, Step::StartTls(_))),
                    "{} ignores starttls",
                    p.name
                );
            }
        }
    }

    #[test]
    fn finds_by_alias_case_insensitively() {
        assert_eq!(find("SMTP").map(|p| p.name), Some("smtp"));
        assert!(find("gopher").is_none());
    }
}
