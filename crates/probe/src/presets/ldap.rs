//! LDAP (RFC 4511): an anonymous simple bind, answered by a `BindResponse`; an
//! `UnbindRequest` ends the session (the server closes the connection). LDAP on 389,
//! LDAPS (implicit TLS) on 636.
//!
//! Any result code counts: `success`, `inappropriateAuthentication` (anonymous binds
//! disabled) or `confidentialityRequired` (TLS required) all prove an LDAP server answers.
//! The parser reads the BER just far enough to see a `BindResponse` to message 1 and its
//! result code, and refuses anything else at the first wrong byte, including the unsolicited
//! "notice of disconnection" (message 0) a server sends before dropping a client.

use super::{expect_reply, Preset, PresetContext};
use crate::expect::Verdict;
use crate::spec::Step;

/// `LDAPMessage { messageID 1, BindRequest { version 3, name "", simple "" } }`.
const BIND_REQUEST: &[u8] = &[
    0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00,
];
/// `LDAPMessage { messageID 2, UnbindRequest }`.
const UNBIND_REQUEST: &[u8] = &[0x30, 0x05, 0x02, 0x01, 0x02, 0x42, 0x00];

/// BER tags used here.
const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const ENUMERATED: u8 = 0x0a;
/// `[APPLICATION 1]` constructed: `BindResponse`.
const BIND_RESPONSE: u8 = 0x61;

/// Reads BER elements from the start of a buffer. Errors are verdicts: `Undecided` when
/// the data ends too early, `Mismatch` when it cannot be the expected element.
struct Ber<'a> {
    data: &'a [u8],
    at: usize,
}

impl Ber<'_> {
    fn byte(&mut self) -> Result<u8, Verdict> {
        let b = *self.data.get(self.at).ok_or(Verdict::Undecided)?;
        self.at += 1;
        Ok(b)
    }

    /// A tag that must be `want`, then its definite length (short or long form, at most
    /// four length bytes; LDAP forbids the indefinite form).
    fn header(&mut self, want: u8) -> Result<usize, Verdict> {
        if self.byte()? != want {
            return Err(Verdict::Mismatch);
        }
        let first = self.byte()?;
        if first < 0x80 {
            return Ok(usize::from(first));
        }
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return Err(Verdict::Mismatch);
        }
        let mut len = 0usize;
        for _ in 0..count {
            len = len << 8 | usize::from(self.byte()?);
        }
        Ok(len)
    }

    /// An INTEGER or ENUMERATED of 1 to 4 content bytes, read as unsigned.
    fn small_number(&mut self, tag: u8) -> Result<u32, Verdict> {
        let len = self.header(tag)?;
        if !(1..=4).contains(&len) {
            return Err(Verdict::Mismatch);
        }
        let mut n = 0u32;
        for _ in 0..len {
            n = n << 8 | u32::from(self.byte()?);
        }
        Ok(n)
    }
}

/// Matches a `BindResponse` to message 1 with any result code; see the module docs.
fn bind_response(data: &[u8]) -> Verdict {
    match read_bind_response(&mut Ber { data, at: 0 }) {
        Ok(()) => Verdict::Matched,
        Err(v) => v,
    }
}

/// Reads `LDAPMessage { messageID 1, BindResponse { resultCode, ... } }` up to the result
/// code.
fn read_bind_response(ber: &mut Ber<'_>) -> Result<(), Verdict> {
    let message_len = ber.header(SEQUENCE)?;
    let message_start = ber.at;
    if ber.small_number(INTEGER)? != 1 {
        return Err(Verdict::Mismatch);
    }
    let op_len = ber.header(BIND_RESPONSE)?;
    // The operation must fit in the message, and hold at least a result code.
    if ber.at - message_start + op_len > message_len || op_len < 3 {
        return Err(Verdict::Mismatch);
    }
    ber.small_number(ENUMERATED)?;
    Ok(())
}

fn dialog(_: &PresetContext<'_>) -> Vec<Step> {
    vec![
        Step::Send(BIND_REQUEST.to_vec()),
        expect_reply("ldap BindResponse to an anonymous bind", bind_response),
    ]
}

/// LDAP on 389.
pub const LDAP: Preset = Preset {
    name: "ldap",
    aliases: &[],
    summary: "LDAP: anonymous bind answered by a BindResponse (any result), then unbind",
    default_port: 389,
    implicit_tls: false,
    starttls: None,
    dialog,
    quit: Some(UNBIND_REQUEST),
};

/// LDAP over implicit TLS on 636.
pub const LDAPS: Preset = Preset {
    name: "ldaps",
    aliases: &[],
    summary: "LDAP over implicit TLS on 636",
    default_port: 636,
    implicit_tls: true,
    ..LDAP
};

#[cfg(test)]
mod tests {
    use super::*;

    /// OpenLDAP's answer to an anonymous bind: success, empty DN and message.
    const SUCCESS: &[u8] = &[
        0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
    ];

    #[test]
    fn any_bind_response_to_message_1_matches() {
        assert_eq!(bind_response(SUCCESS), Verdict::Matched);
        // inappropriateAuthentication (48) with a diagnostic message.
        let mut refused = vec![0x30, 0x1b, 0x02, 0x01, 0x01, 0x61, 0x16, 0x0a, 0x01, 0x30];
        refused.extend_from_slice(&[0x04, 0x00, 0x04, 0x11]);
        refused.extend_from_slice(b"anonymous bind no");
        assert_eq!(bind_response(&refused), Verdict::Matched);
        // Active Directory writes lengths in the four-byte long form.
        let ad = [
            0x30, 0x84, 0, 0, 0, 0x10, 0x02, 0x01, 0x01, 0x61, 0x84, 0, 0, 0, 0x07, 0x0a, 0x01,
            0x00, 0x04, 0x00, 0x04, 0x00,
        ];
        assert_eq!(bind_response(&ad), Verdict::Matched);
    }

    #[test]
    fn decides_at_the_result_code_and_waits_before_it() {
        for cut in 0..10 {
            assert_eq!(
                bind_response(&SUCCESS[..cut]),
                Verdict::Undecided,
                "cut at {cut}"
            );
        }
        assert_eq!(bind_response(&SUCCESS[..10]), Verdict::Matched);
    }

    #[test]
    fn refuses_other_messages_and_garbage() {
        // Message id 2.
        let mut other_id = SUCCESS.to_vec();
        other_id[4] = 0x02;
        assert_eq!(bind_response(&other_id), Verdict::Mismatch);
        // Notice of disconnection: message 0, ExtendedResponse.
        let notice = [0x30, 0x0c, 0x02, 0x01, 0x00, 0x78, 0x07, 0x0a, 0x01, 0x34];
        assert_eq!(bind_response(&notice), Verdict::Mismatch);
        // A SearchResultDone instead of a BindResponse.
        let mut search_done = SUCCESS.to_vec();
        search_done[5] = 0x65;
        assert_eq!(bind_response(&search_done), Verdict::Mismatch);
        // Indefinite length.
        assert_eq!(bind_response(&[0x30, 0x80]), Verdict::Mismatch);
        // The operation claims more than the message holds.
        let mut too_long = SUCCESS.to_vec();
        too_long[6] = 0x40;
        assert_eq!(bind_response(&too_long), Verdict::Mismatch);
        // Result code that is not an ENUMERATED.
        let mut not_enum = SUCCESS.to_vec();
        not_enum[7] = 0x04;
        assert_eq!(bind_response(&not_enum), Verdict::Mismatch);
        assert_eq!(
            bind_response(b"HTTP/1.1 400 Bad Request\r\n"),
            Verdict::Mismatch
        );
        assert_eq!(bind_response(b"-ERR"), Verdict::Mismatch);
        assert_eq!(bind_response(b"0"), Verdict::Undecided, "0 is 0x30");
    }

    #[test]
    fn requests_are_well_formed_ber() {
        // Each request is one SEQUENCE whose length covers exactly the rest.
        for request in [BIND_REQUEST, UNBIND_REQUEST] {
            assert_eq!(request[0], SEQUENCE);
            assert_eq!(usize::from(request[1]), request.len() - 2);
        }
    }
}
