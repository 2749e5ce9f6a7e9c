//! POP3 (RFC 1939): greeting `+OK` (a `-ERR` greeting is a refusal), `QUIT`; STARTTLS
//! (`STLS`, RFC 2595) on 110, implicit TLS on 995.

use super::{expect_reply, Preset, PresetContext};
use crate::reply;
use crate::spec::Step;
use crate::starttls::StartTls;

fn dialog(ctx: &PresetContext<'_>) -> Vec<Step> {
    let mut steps = vec![expect_reply("pop3 greeting +OK", reply::pop3_ok)];
    if ctx.starttls {
        steps.push(Step::StartTls(StartTls::Pop3));
    }
    steps
}

/// POP3 on 110, optionally upgraded with `STLS`.
pub const POP3: Preset = Preset {
    name: "pop3",
    aliases: &["pop"],
    summary: "POP3 mailbox access: greeting +OK, optional STARTTLS (STLS)",
    default_port: 110,
    implicit_tls: false,
    starttls: Some(StartTls::Pop3),
    dialog,
    quit: Some(b"QUIT\r\n"),
};

/// POP3 over implicit TLS on 995 (check_tcp's `spop`).
pub const POP3S: Preset = Preset {
    name: "pop3s",
    aliases: &["spop"],
    summary: "POP3 over implicit TLS on 995",
    default_port: 995,
    implicit_tls: true,
    starttls: None,
    ..POP3
};
