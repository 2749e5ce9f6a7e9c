//! clamd, the ClamAV daemon: `zPING` (NUL-terminated command), answered `PONG\0`.
//!
//! clamd closes the connection after answering a command outside a session, so there is
//! nothing to send as a quit; the empty quit makes the engine wait for that close instead
//! of resetting the connection.

use super::{expect_prefix, Preset, PresetContext};
use crate::spec::Step;

fn dialog(_: &PresetContext<'_>) -> Vec<Step> {
    vec![Step::Send(b"zPING\0".to_vec()), expect_prefix(b"PONG")]
}

/// clamd on 3310 (check_tcp's `clamd`).
pub const CLAMD: Preset = Preset {
    name: "clamd",
    aliases: &[],
    summary: "ClamAV daemon: zPING answered PONG",
    default_port: 3310,
    implicit_tls: false,
    starttls: None,
    dialog,
    quit: Some(b""),
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
    fn pong_matches_and_anything_else_fails_at_once() {
        assert_eq!(verdict(b"PONG\0"), Verdict::Matched);
        assert_eq!(verdict(b"PO"), Verdict::Undecided);
        assert_eq!(verdict(b"UNKNOWN COMMAND\0"), Verdict::Mismatch);
        assert_eq!(verdict(b"+PONG\r\n"), Verdict::Mismatch);
    }
}
