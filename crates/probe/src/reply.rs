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

fn first_line_starts_with(data: &[u8], prefix: &[u8]) -> Verdict {
    match complete_lines(data).next() {
        None if data.len() >= prefix.len() && !data.starts_with(prefix) => Verdict::Mismatch,
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
        assert_eq!(code_is::<220>(b"220-mail.example ESMTP\r\n"), Verdict::Undecided);
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
}
