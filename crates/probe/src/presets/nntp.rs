//! NNTP (RFC 3977): greeting `200` (posting allowed) or `201` (no posting); `400` and `502`
//! say the service is unavailable and are refusals. `QUIT`; STARTTLS (RFC 4642) on 119,
//! implicit TLS on 563.

use super::{expect_reply, Preset, PresetContext};
use crate::expect::Verdict;
use crate::reply;
use crate::spec::Step;
use crate::starttls::StartTls;

/// Matches a complete `200` or `201` greeting.
fn greeting(data: &[u8]) -> Verdict {
    match reply::final_code(data) {
        None => Verdict::Undecided,
        Some(Some(200 | 201)) => Verdict::Matched,
        Some(_) => Verdict::Mismatch,
    }
}

fn dialog(ctx: &PresetContext<'_>) -> Vec<Step> {
    let mut steps = vec![expect_reply("nntp greeting 200 or 201", greeting)];
    if ctx.starttls {
        steps.push(Step::StartTls(StartTls::Nntp));
    }
    steps
}

/// NNTP on 119, optionally upgraded with `STARTTLS`.
pub const NNTP: Preset = Preset {
    name: "nntp",
    aliases: &[],
    summary: "NNTP news: greeting 200 or 201, optional STARTTLS",
    default_port: 119,
    implicit_tls: false,
    starttls: Some(StartTls::Nntp),
    dialog,
    quit: Some(b"QUIT\r\n"),
};

/// NNTP over implicit TLS on 563 (check_tcp's `nntps`; IANA's older name `snntp`).
pub const NNTPS: Preset = Preset {
    name: "nntps",
    aliases: &["snntp"],
    summary: "NNTP over implicit TLS on 563",
    default_port: 563,
    implicit_tls: true,
    starttls: None,
    ..NNTP
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_accepts_200_and_201_only() {
        assert_eq!(
            greeting(b"200 news.example.org ready\r\n"),
            Verdict::Matched
        );
        assert_eq!(greeting(b"201 no posting\r\n"), Verdict::Matched);
        assert_eq!(greeting(b"200 news"), Verdict::Undecided);
        assert_eq!(greeting(b""), Verdict::Undecided);
        assert_eq!(greeting(b"400 try later\r\n"), Verdict::Mismatch);
        assert_eq!(greeting(b"502 go away\r\n"), Verdict::Mismatch);
        assert_eq!(greeting(b"205 closing\r\n"), Verdict::Mismatch);
        assert_eq!(greeting(b"+OK pop3\r\n"), Verdict::Mismatch);
        assert_eq!(greeting(b"\x00\x01\x02\n"), Verdict::Mismatch);
    }
}
