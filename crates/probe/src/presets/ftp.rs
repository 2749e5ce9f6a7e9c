//! FTP (RFC 959): greeting `220`, multi-line aware in FTP's own way (the lines between
//! `220-` and the final `220 ` need not carry the code), `QUIT`; STARTTLS (`AUTH TLS`,
//! RFC 4217) on 21.

use super::{expect_reply, Preset, PresetContext};
use crate::reply;
use crate::spec::Step;
use crate::starttls::StartTls;

fn dialog(ctx: &PresetContext<'_>) -> Vec<Step> {
    let mut steps = vec![expect_reply("ftp greeting 220", reply::ftp_code_is::<220>)];
    if ctx.starttls {
        steps.push(Step::StartTls(StartTls::Ftp));
    }
    steps
}

/// FTP control connection on 21, optionally upgraded with `AUTH TLS`.
pub const FTP: Preset = Preset {
    name: "ftp",
    aliases: &[],
    summary: "FTP control connection: greeting 220, optional STARTTLS (AUTH TLS)",
    default_port: 21,
    implicit_tls: false,
    starttls: Some(StartTls::Ftp),
    dialog,
    quit: Some(b"QUIT\r\n"),
};
