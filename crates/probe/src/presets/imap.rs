//! IMAP (RFC 9051 / 3501): untagged `* OK` or `* PREAUTH` greeting (`* BYE` is a refusal),
//! `LOGOUT`; STARTTLS on 143, implicit TLS on 993.
//!
//! The quit uses tag `a2` because STARTTLS already used `a1`, and a client must not reuse a
//! tag within a session.

use super::{expect_reply, Preset, PresetContext};
use crate::reply;
use crate::spec::Step;
use crate::starttls::StartTls;

fn dialog(ctx: &PresetContext<'_>) -> Vec<Step> {
    let mut steps = vec![expect_reply(
        "imap greeting * OK or * PREAUTH",
        reply::imap_greeting,
    )];
    if ctx.starttls {
        steps.push(Step::StartTls(StartTls::Imap));
    }
    steps
}

/// IMAP on 143, optionally upgraded with `STARTTLS`.
pub const IMAP: Preset = Preset {
    name: "imap",
    aliases: &[],
    summary: "IMAP mailbox access: greeting * OK, optional STARTTLS",
    default_port: 143,
    implicit_tls: false,
    starttls: Some(StartTls::Imap),
    dialog,
    quit: Some(b"a2 LOGOUT\r\n"),
};

/// IMAP over implicit TLS on 993 (check_tcp's `simap`).
pub const IMAPS: Preset = Preset {
    name: "imaps",
    aliases: &["simap"],
    summary: "IMAP over implicit TLS on 993",
    default_port: 993,
    implicit_tls: true,
    starttls: None,
    ..IMAP
};
