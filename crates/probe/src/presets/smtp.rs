//! SMTP (RFC 5321): greeting `220` (multi-line aware), `QUIT`; STARTTLS on 25 and 587,
//! implicit TLS on 465.

use super::{expect_reply, Preset, PresetContext};
use crate::reply;
use crate::spec::Step;
use crate::starttls::StartTls;

fn dialog(ctx: &PresetContext<'_>) -> Vec<Step> {
    let mut steps = vec![expect_reply("smtp greeting 220", reply::code_is::<220>)];
    if ctx.starttls {
        steps.push(Step::StartTls(StartTls::Smtp));
    }
    steps
}

pub const SMTP: Preset = Preset {
    name: "smtp",
    aliases: &[],
    summary: "SMTP mail transfer: greeting 220, optional STARTTLS",
    default_port: 25,
    implicit_tls: false,
    starttls: Some(StartTls::Smtp),
    dialog,
    quit: Some(b"QUIT\r\n"),
};

pub const SUBMISSION: Preset = Preset {
    name: "submission",
    aliases: &[],
    summary: "SMTP message submission on 587: greeting 220, optional STARTTLS",
    default_port: 587,
    ..SMTP
};

pub const SMTPS: Preset = Preset {
    name: "smtps",
    aliases: &["ssmtp"],
    summary: "SMTP over implicit TLS on 465",
    default_port: 465,
    implicit_tls: true,
    starttls: None,
    ..SMTP
};
