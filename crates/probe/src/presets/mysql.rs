//! MySQL and MariaDB: the server speaks first with a handshake packet (protocol version
//! 10); a server that refuses the client sends an error packet instead (`Host '...' is not
//! allowed to connect`, `Too many connections`), which fails the check.
//!
//! A packet is a 3-byte little-endian payload length, a sequence id (0 for the first
//! packet), then the payload. The parser refuses a wrong header or a first payload byte
//! other than 10 or 0xff at once, and otherwise decides when the declared payload is
//! complete (reading at most [`MAX_PAYLOAD`] bytes of it), so an error packet's message is
//! shown in full in the result.
//!
//! No quit: the protocol has none before login. Note that MySQL counts a client that
//! leaves without logging in (as check_tcp does too) as a connection error of its host;
//! after `max_connect_errors` (default 100) in a row without a successful login from the
//! same host, that host is blocked. Loopback clients are exempt; for remote probes raise
//! `max_connect_errors` or let something log in regularly from the monitoring host.

use super::{expect_reply, Preset, PresetContext};
use crate::expect::Verdict;
use crate::spec::Step;

/// Largest first payload we read: a handshake is about 100 bytes, an error packet at most
/// 3 + 512.
const MAX_PAYLOAD: usize = 1024;
/// Protocol version byte of the handshake v10 every server since MySQL 3.21 sends.
const PROTOCOL_V10: u8 = 0x0a;
/// First payload byte of an error packet.
const ERR_PACKET: u8 = 0xff;

/// Matches a complete, well-formed handshake v10; see the module docs.
fn handshake_v10(data: &[u8]) -> Verdict {
    if data.len() >= 3 {
        let length = usize::from(data[0]) | usize::from(data[1]) << 8 | usize::from(data[2]) << 16;
        if length == 0 || length > MAX_PAYLOAD {
            return Verdict::Mismatch;
        }
        if data.get(3).is_some_and(|&seq| seq != 0) {
            return Verdict::Mismatch;
        }
        if data
            .get(4)
            .is_some_and(|&p| p != PROTOCOL_V10 && p != ERR_PACKET)
        {
            return Verdict::Mismatch;
        }
        match data.get(4..4 + length) {
            None => Verdict::Undecided,
            Some(payload) if valid_handshake(payload) => Verdict::Matched,
            Some(_) => Verdict::Mismatch,
        }
    } else {
        Verdict::Undecided
    }
}

/// Protocol 10, a printable NUL-terminated server version, then at least the connection
/// id (4), the first 8 bytes of auth data, a NUL filler and the capability flags (2).
fn valid_handshake(payload: &[u8]) -> bool {
    let Some((&PROTOCOL_V10, rest)) = payload.split_first() else {
        return false;
    };
    let Some(nul) = rest.iter().position(|&b| b == 0) else {
        return false;
    };
    let (version, after) = (&rest[..nul], &rest[nul + 1..]);
    !version.is_empty()
        && version.iter().all(|b| (0x20..0x7f).contains(b))
        && after.len() >= 4 + 8 + 1 + 2
        && after[12] == 0
}

fn dialog(_: &PresetContext<'_>) -> Vec<Step> {
    vec![expect_reply("mysql handshake v10", handshake_v10)]
}

/// MySQL / MariaDB on 3306.
pub const MYSQL: Preset = Preset {
    name: "mysql",
    aliases: &["mariadb"],
    summary: "MySQL / MariaDB: server handshake v10 (an error packet fails)",
    default_port: 3306,
    implicit_tls: false,
    starttls: None,
    dialog,
    quit: None,
};

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet with sequence id 0 around `payload`.
    fn packet(payload: &[u8]) -> Vec<u8> {
        let len = payload.len().to_le_bytes();
        let mut p = vec![len[0], len[1], len[2], 0];
        p.extend_from_slice(payload);
        p
    }

    /// The start of a MySQL 8.0 handshake.
    fn handshake(version: &[u8]) -> Vec<u8> {
        let mut payload = vec![PROTOCOL_V10];
        payload.extend_from_slice(version);
        payload.push(0);
        payload.extend_from_slice(&[0x0d, 0, 0, 0]); // connection id
        payload.extend_from_slice(b"abcdefgh"); // auth data, part 1
        payload.push(0); // filler
        payload.extend_from_slice(&[0xff, 0xff, 0xff, 0x02, 0, 0xff, 0xdf, 0x15]);
        payload.extend_from_slice(&[0; 10]);
        payload.extend_from_slice(b"ijklmnopqrst\0caching_sha2_password\0");
        packet(&payload)
    }

    #[test]
    fn matches_a_complete_handshake() {
        assert_eq!(handshake_v10(&handshake(b"8.0.36")), Verdict::Matched);
        assert_eq!(
            handshake_v10(&handshake(b"5.5.5-10.11.6-MariaDB-0+deb12u1")),
            Verdict::Matched
        );
    }

    #[test]
    fn waits_only_while_the_packet_is_incomplete() {
        let full = handshake(b"8.0.36");
        for cut in 0..full.len() {
            assert_eq!(
                handshake_v10(&full[..cut]),
                Verdict::Undecided,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn refuses_an_error_packet() {
        let mut payload = vec![ERR_PACKET, 0x6a, 0x04];
        payload
            .extend_from_slice(b"Host '10.0.0.7' is not allowed to connect to this MySQL server");
        let err = packet(&payload);
        assert_eq!(
            handshake_v10(&err[..10]),
            Verdict::Undecided,
            "shows the whole message"
        );
        assert_eq!(handshake_v10(&err), Verdict::Mismatch);
    }

    #[test]
    fn refuses_garbage_as_soon_as_the_header_shows_it() {
        assert_eq!(handshake_v10(b"SSH-2.0-OpenSSH_9.2\r\n"), Verdict::Mismatch);
        assert_eq!(handshake_v10(b"220 mail ESMTP\r\n"), Verdict::Mismatch);
        assert_eq!(
            handshake_v10(b"\x00\x00\x00"),
            Verdict::Mismatch,
            "empty packet"
        );
        assert_eq!(
            handshake_v10(b"\x4a\x00\x00\x01"),
            Verdict::Mismatch,
            "sequence 1"
        );
        assert_eq!(
            handshake_v10(b"\x4a\x00\x00\x00\x09"),
            Verdict::Mismatch,
            "protocol 9"
        );
        assert_eq!(handshake_v10(b"\x4a\x00\x00\x00"), Verdict::Undecided);
    }

    #[test]
    fn refuses_a_malformed_handshake() {
        // No NUL after the version.
        assert_eq!(handshake_v10(&packet(b"\x0a8.0.36")), Verdict::Mismatch);
        // Empty version.
        assert_eq!(
            handshake_v10(&packet(&[PROTOCOL_V10, 0, 1, 2, 3])),
            Verdict::Mismatch
        );
        // Too short after the version.
        assert_eq!(
            handshake_v10(&packet(b"\x0a8.0\x00\x01\x02")),
            Verdict::Mismatch
        );
        // Control characters in the version.
        let mut bad = handshake(b"8.0\x01");
        assert_eq!(handshake_v10(&bad), Verdict::Mismatch);
        // Filler not NUL.
        bad = handshake(b"8.0.36");
        let filler = 4 + 1 + 6 + 1 + 4 + 8;
        bad[filler] = b'x';
        assert_eq!(handshake_v10(&bad), Verdict::Mismatch);
    }
}
