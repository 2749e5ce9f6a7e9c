//! Small parsers for line-based protocol replies, shared by presets and STARTTLS.
//!
//! They decide as soon as the reply is complete: a multi-line SMTP greeting is matched when
//! its final line arrives, not after a timeout.

use crate::expect::{complete_lines, Verdict};

/// The code of a complete numeric reply (SMTP, FTP, NNTP: `250-...` lines continue,
/// `250 ...` or a bare `250` ends it). `None` while the final line has not arrived;
/// `Some(None)` when a complete line is not a numeric reply at all.
pub fn final_code(data: &[u8]) -> Option<Option<u16>> {
    for line in complete_lines(data) {
        let code = line
            .get(..3)
            .filter(|c| c.iter().all(u8::is_ascii_digit))
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.parse::<u16>().ok());
        let Some(code) = code else {
            return Some(None);
        };
        match line.get(3) {
            Some(b'-') => continue,
            None | Some(b' ') => return Some(Some(code)),
            Some(_) => return Some(None),
        }
    }
    None
}

/// Matches when the complete numeric reply has code `C`.
pub fn code_is<const C: u16>(data: &[u8]) -> Verdict {
    match final_code(data) {
        None => Verdict::Undecided,
        Some(Some(code)) if code == C => Verdict::Matched,
        Some(_) => Verdict::Mismatch,
    }
}

/// Matches when the complete numeric reply's code is in the 2xx class.
pub fn code_is_2xx(data: &[u8]) -> Verdict {
    match final_code(data) {
        None => Verdict::Undecided,
        Some(Some(code)) if (200..300).contains(&code) => Verdict::Matched,
        Some(_) => Verdict::Mismatch,
    }
}

/// POP3: the first line starts with `+OK` (anything else, e.g. `-ERR`, is a mismatch).
pub fn pop3_ok(data: &[u8]) -> Verdict {
    first_line_starts_with(data, b"+OK")
}

/// IMAP: an untagged `* OK` (or `* PREAUTH`) greeting.
pub fn imap_greeting(data: &[u8]) -> Verdict {
    match complete_lines(data).next() {
        None => Verdict::Undecided,
        Some(l) if l.starts_with(b"* OK") || l.starts_with(b"* PREAUTH") => Verdict::Matched,
        Some(_) => Verdict::Mismatch,
    }
}

/// IMAP: the tagged completion of command `a1` is `OK`; untagged lines before it are skipped.
pub fn imap_tagged_ok(data: &[u8]) -> Verdict {
    for line in complete_lines(data) {
        if let Some(rest) = line.strip_prefix(b"a1 ") {
            return if rest.starts_with(b"OK") {
                Verdict::Matched
            } else {
                Verdict::Mismatch
            };
        }
    }
    Verdict::Undecided
}

/// The code of a complete FTP reply (RFC 959 §4.2): a multi-line reply opens with `220-`
/// and ends only at a line starting with the same code and a space; the lines between may
/// say anything, unlike SMTP, where every line carries the code. `None` while the final
/// line has not arrived; `Some(None)` when the first line is not a numeric reply.
pub fn ftp_final_code(data: &[u8]) -> Option<Option<u16>> {
    let mut lines = complete_lines(data);
    let first = lines.next()?;
    let Some(code) = reply_code(first) else {
        return Some(None);
    };
    match first.get(3) {
        None | Some(b' ') => Some(Some(code)),
        Some(b'-') => {
            let digits = &first[..3];
            lines
                .find(|l| l.starts_with(digits) && matches!(l.get(3), None | Some(b' ')))
                .map(|_| Some(code))
        }
        Some(_) => Some(None),
    }
}

/// Matches when the complete FTP reply (see [`ftp_final_code`]) has code `C`.
pub fn ftp_code_is<const C: u16>(data: &[u8]) -> Verdict {
    match ftp_final_code(data) {
        None => Verdict::Undecided,
        Some(Some(code)) if code == C => Verdict::Matched,
        Some(_) => Verdict::Mismatch,
    }
}

/// Matches when the data starts with one of `candidates`; stays undecided only while the
/// data received so far could still become one of them, so garbage is refused at its first
/// wrong byte.
pub fn starts_with_any(data: &[u8], candidates: &[&[u8]]) -> Verdict {
    let mut possible = false;
    for c in candidates {
        if data.starts_with(c) {
            return Verdict::Matched;
        }
        possible |= c.starts_with(data);
    }
    if possible {
        Verdict::Undecided
    } else {
        Verdict::Mismatch
    }
}

/// The three-digit code at the start of a reply line.
fn reply_code(line: &[u8]) -> Option<u16> {
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, d| n * 10 + u16::from(d - b'0')))
}

fn first_line_starts_with(data: &[u8], prefix: &[u8]) -> Verdict {
    // Before the first complete line there may be blank lines, which `complete_lines` skips:
    // only the unterminated line after them can refuse early.
    let partial = &data[data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)..];
    match complete_lines(data).next() {
        None if partial.len() >= prefix.len() && !partial.starts_with(prefix) => Verdict::Mismatch,
        None => Verdict::Undecided,
        Some(l) if l.starts_with(prefix) => Verdict::Matched,
        Some(_) => Verdict::Mismatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_the_final_line_of_a_multiline_reply() {
        assert_eq!(
            code_is::<220>(b"220-mail.example ESMTP\r\n"),
            Verdict::Undecided
        );
        assert_eq!(
            code_is::<220>(b"220-mail.example ESMTP\r\n220 ready\r\n"),
            Verdict::Matched
        );
        assert_eq!(code_is::<220>(b"220 ready"), Verdict::Undecided);
        assert_eq!(code_is::<220>(b"554 no service\r\n"), Verdict::Mismatch);
        assert_eq!(code_is::<220>(b"SSH-2.0-x\r\n"), Verdict::Mismatch);
        assert_eq!(code_is::<250>(b"250\r\n"), Verdict::Matched);
    }

    #[test]
    fn accepts_any_2xx() {
        assert_eq!(code_is_2xx(b"201 no posting\r\n"), Verdict::Matched);
        assert_eq!(code_is_2xx(b"400 go away\r\n"), Verdict::Mismatch);
    }

    #[test]
    fn pop3_and_imap_greetings() {
        assert_eq!(pop3_ok(b"+OK Dovecot ready.\r\n"), Verdict::Matched);
        assert_eq!(pop3_ok(b"-ERR"), Verdict::Mismatch);
        assert_eq!(pop3_ok(b"+O"), Verdict::Undecided);
        assert_eq!(imap_greeting(b"* OK IMAP4rev1\r\n"), Verdict::Matched);
        assert_eq!(imap_greeting(b"* BYE\r\n"), Verdict::Mismatch);
        assert_eq!(
            imap_tagged_ok(b"* CAPABILITY x\r\na1 OK Begin TLS\r\n"),
            Verdict::Matched
        );
        assert_eq!(imap_tagged_ok(b"a1 BAD no\r\n"), Verdict::Mismatch);
    }

    #[test]
    fn ftp_multiline_reply_ends_at_its_code_and_a_space() {
        // RFC 959: the lines between the first and the last need not carry the code.
        let banner = b"220-Welcome\r\n  to our server\r\n220-still\r\n";
        assert_eq!(ftp_code_is::<220>(banner), Verdict::Undecided);
        let mut done = banner.to_vec();
        done.extend_from_slice(b"220 ready\r\n");
        assert_eq!(ftp_code_is::<220>(&done), Verdict::Matched);
        assert_eq!(ftp_code_is::<220>(b"220-a\r\n220\r\n"), Verdict::Matched);
        assert_eq!(ftp_code_is::<220>(b"220 ProFTPD\r\n"), Verdict::Matched);
        assert_eq!(ftp_code_is::<220>(b"220 ProFTPD"), Verdict::Undecided);
        assert_eq!(ftp_code_is::<220>(b"421 too many\r\n"), Verdict::Mismatch);
        assert_eq!(ftp_code_is::<220>(b"SSH-2.0-x\r\n"), Verdict::Mismatch);
        assert_eq!(ftp_code_is::<220>(b"220x\r\n"), Verdict::Mismatch);
        assert_eq!(ftp_code_is::<220>(b""), Verdict::Undecided);
    }

    #[test]
    fn starts_with_any_refuses_at_the_first_wrong_byte() {
        let c: &[&[u8]] = &[b"+PONG\r\n", b"-NOAUTH "];
        assert_eq!(starts_with_any(b"", c), Verdict::Undecided);
        assert_eq!(starts_with_any(b"+PO", c), Verdict::Undecided);
        assert_eq!(starts_with_any(b"-NO", c), Verdict::Undecided);
        assert_eq!(starts_with_any(b"+PONG\r\n", c), Verdict::Matched);
        assert_eq!(
            starts_with_any(b"-NOAUTH Authentication required.", c),
            Verdict::Matched
        );
        assert_eq!(starts_with_any(b"+OK", c), Verdict::Mismatch);
        assert_eq!(starts_with_any(b"ERROR\r\n", c), Verdict::Mismatch);
    }

    /// Found by the `reply_parsers` fuzz target: blank lines before `+OK` were refused when
    /// they arrived in a read of their own, and accepted when `+OK` came with them.
    #[test]
    fn pop3_blank_lines_before_ok_do_not_refuse_it_early() {
        assert_eq!(pop3_ok(b"\n\n\n\n"), Verdict::Undecided);
        assert_eq!(pop3_ok(b"\n\n\n\n+OK ready\n"), Verdict::Matched);
        assert_eq!(pop3_ok(b"\n\n-ERR"), Verdict::Mismatch);
    }
}
