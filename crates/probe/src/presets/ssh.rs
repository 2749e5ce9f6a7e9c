//! SSH (RFC 4253 §4.2): the server's identification line `SSH-2.0-...` (or `SSH-1.99-...`,
//! a server that also speaks protocol 1). No STARTTLS, no TLS: SSH brings its own.
//!
//! The server may send other lines before its identification; like the OpenSSH client,
//! the parser skips up to 1024 of them, none longer than 8 KiB. A NUL byte or a CR not
//! followed by LF (which OpenSSH also rejects) refuses the reply at once, so a binary
//! protocol on the port is caught without a timeout; a text protocol (an SMTP greeting,
//! say) can only be told apart from such lines when the server stops talking, so it ends
//! with the idle timeout.
//!
//! The polite quit is our own identification followed by an unencrypted
//! `SSH_MSG_DISCONNECT` (reason 11, "by application"), which RFC 4253 allows at any time.
//! sshd then logs `Received disconnect ... 11: portwarden probe` at INFO level and closes
//! the connection itself, instead of logging `did not receive identification string`
//! (nothing sent) or waiting for its `LoginGraceTime`.
//!
//! The probe never authenticates: OpenSSH 9.8 and later count every such connection as a
//! `noauth` penalty (`PerSourcePenalties`, 1 s each by default). Probing once a second or
//! faster from one address can get that address refused; exempt the monitoring host with
//! `PerSourcePenaltyExemptList`.

use super::{expect_reply, Preset, PresetContext};
use crate::expect::Verdict;
use crate::spec::Step;

/// Lines the OpenSSH client accepts before the identification line.
const MAX_PRE_IDENT_LINES: usize = 1024;
/// Longest line the OpenSSH client accepts, identification or not.
const MAX_LINE: usize = 8192;

/// Decides on the server's identification line; see the module docs for what is skipped.
fn server_ident(data: &[u8]) -> Verdict {
    let mut rest = data;
    for _ in 0..=MAX_PRE_IDENT_LINES {
        let end = rest.iter().position(|&b| b == b'\n');
        let line = &rest[..end.unwrap_or(rest.len())];
        let body = line.strip_suffix(b"\r").unwrap_or(line);
        if body.contains(&0) || body.contains(&b'\r') || body.len() > MAX_LINE {
            return Verdict::Mismatch;
        }
        if body.starts_with(b"SSH-") {
            // An identification line: decide once it is complete, or as soon as its
            // version cannot be 2.0 or 1.99.
            let versions = [&b"SSH-2.0-"[..], b"SSH-1.99-"];
            let complete_version = versions.iter().any(|v| body.starts_with(v));
            let partial_version = versions.iter().any(|v| v.starts_with(body));
            return match end {
                Some(_) if complete_version => Verdict::Matched,
                None if complete_version || partial_version => Verdict::Undecided,
                _ => Verdict::Mismatch,
            };
        }
        match end {
            // A line before the identification: skip it.
            Some(i) => rest = &rest[i + 1..],
            None => return Verdict::Undecided,
        }
    }
    Verdict::Mismatch
}

fn dialog(_: &PresetContext<'_>) -> Vec<Step> {
    vec![expect_reply("ssh identification SSH-2.0", server_ident)]
}

/// Our identification line, then `SSH_MSG_DISCONNECT` in the unencrypted binary packet
/// format: packet_length 36, padding_length 6, payload [1, reason 11, string
/// "portwarden probe", string ""], 6 bytes of padding (the packet is a multiple of 8).
const QUIT: &[u8] = b"SSH-2.0-portwarden\r\n\
    \x00\x00\x00\x24\x06\
    \x01\x00\x00\x00\x0b\x00\x00\x00\x10portwarden probe\x00\x00\x00\x00\
    \x00\x00\x00\x00\x00\x00";

/// SSH on 22: the server's identification line.
pub const SSH: Preset = Preset {
    name: "ssh",
    aliases: &[],
    summary: "SSH: server identification SSH-2.0 (or 1.99), polite disconnect",
    default_port: 22,
    implicit_tls: false,
    starttls: None,
    dialog,
    quit: Some(QUIT),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_complete_identification_line() {
        assert_eq!(
            server_ident(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
            Verdict::Matched
        );
        assert_eq!(server_ident(b"SSH-1.99-Cisco-1.25\r\n"), Verdict::Matched);
        // LF alone ends a line for OpenSSH too.
        assert_eq!(server_ident(b"SSH-2.0-dropbear\n"), Verdict::Matched);
        // The binary packet that follows the line does not matter.
        assert_eq!(
            server_ident(b"SSH-2.0-x\r\n\x00\x00\x04\x1c\x0a\x14"),
            Verdict::Matched
        );
    }

    #[test]
    fn waits_while_the_line_is_incomplete() {
        assert_eq!(server_ident(b""), Verdict::Undecided);
        assert_eq!(server_ident(b"SS"), Verdict::Undecided);
        assert_eq!(server_ident(b"SSH-2.0-Open"), Verdict::Undecided);
        assert_eq!(server_ident(b"SSH-2.0-OpenSSH\r"), Verdict::Undecided);
        assert_eq!(server_ident(b"SSH-1.9"), Verdict::Undecided);
    }

    #[test]
    fn refuses_other_versions_as_soon_as_they_show() {
        assert_eq!(server_ident(b"SSH-1.5-"), Verdict::Mismatch);
        assert_eq!(server_ident(b"SSH-3"), Verdict::Mismatch);
        assert_eq!(server_ident(b"SSH-2.0\r\n"), Verdict::Mismatch);
        assert_eq!(server_ident(b"SSH-1.99\r\n"), Verdict::Mismatch);
    }

    #[test]
    fn skips_lines_before_the_identification() {
        let data = b"Authorized users only\r\nsecond line\nSSH-2.0-OpenSSH_9.6\r\n";
        assert_eq!(server_ident(data), Verdict::Matched);
        assert_eq!(server_ident(b"220 mail ESMTP\r\n"), Verdict::Undecided);
        let mut many = b"x\r\n".repeat(MAX_PRE_IDENT_LINES);
        many.extend_from_slice(b"SSH-2.0-late\r\n");
        assert_eq!(server_ident(&many), Verdict::Matched);
        let mut too_many = b"x\r\n".repeat(MAX_PRE_IDENT_LINES + 1);
        too_many.extend_from_slice(b"SSH-2.0-late\r\n");
        assert_eq!(server_ident(&too_many), Verdict::Mismatch);
        assert_eq!(server_ident(&vec![b'a'; MAX_LINE + 1]), Verdict::Mismatch);
    }

    #[test]
    fn refuses_binary_data_at_once() {
        // A MySQL greeting: length, sequence 0, protocol 10, version, NUL.
        assert_eq!(
            server_ident(b"\x4a\x00\x00\x00\x0a8.0.36\x00"),
            Verdict::Mismatch
        );
        assert_eq!(server_ident(b"+PONG\rX"), Verdict::Mismatch);
    }

    #[test]
    fn quit_is_an_identification_and_a_well_formed_disconnect() {
        let packet = QUIT
            .strip_prefix(b"SSH-2.0-portwarden\r\n")
            .expect("the quit starts with our identification");
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let length = be32(&packet[..4]);
        assert_eq!(packet.len(), 4 + length);
        assert_eq!(packet.len() % 8, 0, "cleartext packets are a multiple of 8");
        let padding = usize::from(packet[4]);
        assert!(padding >= 4);
        let payload = &packet[5..packet.len() - padding];
        assert_eq!(payload[0], 1, "SSH_MSG_DISCONNECT");
        assert_eq!(payload[1..5], 11u32.to_be_bytes(), "by application");
        let desc_len = be32(&payload[5..9]);
        assert_eq!(&payload[9..9 + desc_len], b"portwarden probe");
        assert_eq!(payload[9 + desc_len..], [0, 0, 0, 0], "empty language tag");
    }
}
