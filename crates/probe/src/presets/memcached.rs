//! memcached (text protocol): `version`, answered `VERSION <version>`; `quit`.
//!
//! `version` needs no authentication and works on every memcached since 1.2; a server
//! started with SASL only (binary protocol) answers the text command with an error, which
//! fails the check.

use super::{expect_prefix, Preset, PresetContext};
use crate::spec::Step;

fn dialog(_: &PresetContext<'_>) -> Vec<Step> {
    vec![
        Step::Send(b"version\r\n".to_vec()),
        // A prefix decides at the first wrong byte: `ERROR`, `-ERR` and binary data fail
        // at once.
        expect_prefix(b"VERSION "),
    ]
}

/// memcached on 11211.
pub const MEMCACHED: Preset = Preset {
    name: "memcached",
    aliases: &[],
    summary: "memcached: version answered VERSION",
    default_port: 11211,
    implicit_tls: false,
    starttls: None,
    dialog,
    quit: Some(b"quit\r\n"),
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Verdict;

    fn verdict(reply: &[u8]) -> Verdict {
        let steps = dialog(&PresetContext {
            host: "localhost",
            starttls: false,
        });
        let Some(Step::Expect(e)) = steps.last() else {
            panic!("the dialog ends with an expectation");
        };
        e.evaluate(reply)
    }

    #[test]
    fn version_reply_matches_and_errors_fail_at_once() {
        assert_eq!(verdict(b"VERSION 1.6.18\r\n"), Verdict::Matched);
        assert_eq!(verdict(b"VERS"), Verdict::Undecided);
        assert_eq!(verdict(b"ERROR\r\n"), Verdict::Mismatch);
        assert_eq!(
            verdict(b"-ERR unknown command 'version'\r\n"),
            Verdict::Mismatch
        );
        assert_eq!(verdict(b"\x81\x0b"), Verdict::Mismatch);
    }
}
