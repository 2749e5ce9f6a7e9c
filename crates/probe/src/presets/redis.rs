//! Redis (RESP): `PING`, answered `+PONG`; `QUIT`. Also fits Valkey and KeyDB.
//!
//! A password-protected Redis answers `PING` with `-NOAUTH Authentication required.`, and
//! one whose ACL denies the command with `-NOPERM ...`. Both prove that Redis answers and
//! enforces its access rules, which is what a port check asks; the probe has no password
//! to send, so they are matched (`-WRONGPASS` too, for proxies that report a failed
//! implicit login that way). Any other reply fails the check, including other Redis
//! errors: `-LOADING` (still loading its data set), `-MASTERDOWN`, or `-DENIED` (protected
//! mode refusing a remote client) mean Redis is up but will not serve clients, and the
//! result's excerpt shows which.

use super::{expect_reply, Preset, PresetContext};
use crate::expect::Verdict;
use crate::reply;
use crate::spec::Step;

/// Replies that prove Redis answers; see the module docs.
const ANSWERS: &[&[u8]] = &[b"+PONG\r\n", b"-NOAUTH ", b"-NOPERM ", b"-WRONGPASS "];

fn pong_or_auth_required(data: &[u8]) -> Verdict {
    reply::starts_with_any(data, ANSWERS)
}

fn dialog(_: &PresetContext<'_>) -> Vec<Step> {
    vec![
        Step::Send(b"PING\r\n".to_vec()),
        expect_reply(
            "redis +PONG (or -NOAUTH: auth required)",
            pong_or_auth_required,
        ),
    ]
}

/// Redis on 6379.
pub const REDIS: Preset = Preset {
    name: "redis",
    aliases: &[],
    summary: "Redis: PING answered +PONG, or -NOAUTH when a password is required",
    default_port: 6379,
    implicit_tls: false,
    starttls: None,
    dialog,
    quit: Some(b"QUIT\r\n"),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pong_and_auth_errors_prove_redis() {
        assert_eq!(pong_or_auth_required(b"+PONG\r\n"), Verdict::Matched);
        assert_eq!(
            pong_or_auth_required(b"-NOAUTH Authentication required.\r\n"),
            Verdict::Matched
        );
        assert_eq!(
            pong_or_auth_required(
                b"-NOPERM this user has no permissions to run the 'ping' command\r\n"
            ),
            Verdict::Matched
        );
        assert_eq!(
            pong_or_auth_required(b"-WRONGPASS invalid username-password pair\r\n"),
            Verdict::Matched
        );
    }

    #[test]
    fn partial_replies_wait() {
        assert_eq!(pong_or_auth_required(b""), Verdict::Undecided);
        assert_eq!(pong_or_auth_required(b"+PONG"), Verdict::Undecided);
        assert_eq!(pong_or_auth_required(b"-NOA"), Verdict::Undecided);
        assert_eq!(pong_or_auth_required(b"-"), Verdict::Undecided);
    }

    #[test]
    fn other_replies_fail_at_once() {
        // memcached answering PING.
        assert_eq!(pong_or_auth_required(b"ERROR\r\n"), Verdict::Mismatch);
        assert_eq!(
            pong_or_auth_required(b"-LOADING Redis is loading the dataset in memory\r\n"),
            Verdict::Mismatch
        );
        assert_eq!(
            pong_or_auth_required(b"-ERR unknown command\r\n"),
            Verdict::Mismatch
        );
        assert_eq!(
            pong_or_auth_required(b"-DENIED Redis is running in protected mode"),
            Verdict::Mismatch
        );
        assert_eq!(pong_or_auth_required(b"+OK\r\n"), Verdict::Mismatch);
        assert_eq!(pong_or_auth_required(b"+PONGX"), Verdict::Mismatch);
        assert_eq!(pong_or_auth_required(b"\x16\x03\x01"), Verdict::Mismatch);
    }
}
