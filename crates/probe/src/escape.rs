//! Escape sequences in send / quit / expect strings: `\r \n \t \\ \0 \xHH`.
//!
//! Unlike check_tcp's `-E`, an unknown escape is an error naming its position instead of being
//! passed through silently, so a typo like `\m` never reaches the wire.

use thiserror::Error;

/// A malformed escape sequence.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EscapeError {
    /// `\` followed by a character that is not a known escape.
    #[error("unknown escape `\\{found}` at byte {at} (known: \\r \\n \\t \\\\ \\0 \\xHH)")]
    Unknown { at: usize, found: char },
    /// `\x` not followed by two hex digits.
    #[error("`\\x` at byte {at} must be followed by two hex digits")]
    BadHex { at: usize },
    /// A lone `\` at the very end.
    #[error("trailing `\\` at byte {at}")]
    Trailing { at: usize },
}

/// Turns a string with escapes into the bytes it stands for.
pub fn unescape(text: &str) -> Result<Vec<u8>, EscapeError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let at = i;
        let Some(&code) = bytes.get(i + 1) else {
            return Err(EscapeError::Trailing { at });
        };
        match code {
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'\\' => out.push(b'\\'),
            b'0' => out.push(0),
            b'x' => {
                let hex = bytes.get(i + 2..i + 4).ok_or(EscapeError::BadHex { at })?;
                let value = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(EscapeError::BadHex { at })?;
                out.push(value);
                i += 2;
            }
            _ => {
                let found = text[i + 1..].chars().next().unwrap_or('?');
                return Err(EscapeError::Unknown { at, found });
            }
        }
        i += 2;
    }
    Ok(out)
}

/// Parses bytes written as hex digits, with optional spaces or colons between bytes
/// (`"16 03 01"`, `"16:03:01"`, `"160301"`).
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !matches!(b, b' ' | b':' | b'\t'))
        .collect();
    if digits.is_empty() {
        return Err("hex string is empty".into());
    }
    if digits.len() % 2 != 0 {
        return Err(format!(
            "hex string has an odd number of digits ({})",
            digits.len()
        ));
    }
    digits
        .chunks(2)
        .enumerate()
        .map(|(n, pair)| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    format!("byte {} is not hex: {:?}", n, String::from_utf8_lossy(pair))
                })
        })
        .collect()
}

/// Renders received bytes for humans: printable ASCII as is, the rest escaped the same way
/// [`unescape`] reads them, so an excerpt can be pasted back into an expect string.
pub fn escape_for_display(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\x");
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 0xf)] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_every_known_sequence() {
        assert_eq!(
            unescape(r"a\r\n\t\\\0\x41\xff").unwrap(),
            b"a\r\n\t\\\0A\xff".to_vec()
        );
    }

    #[test]
    fn plain_text_passes_through() {
        assert_eq!(unescape("QUIT").unwrap(), b"QUIT".to_vec());
        assert_eq!(unescape("ünï").unwrap(), "ünï".as_bytes().to_vec());
    }

    #[test]
    fn rejects_bad_escapes_with_position() {
        assert_eq!(
            unescape(r"ab\m").unwrap_err(),
            EscapeError::Unknown { at: 2, found: 'm' }
        );
        assert_eq!(unescape(r"\x4").unwrap_err(), EscapeError::BadHex { at: 0 });
        assert_eq!(
            unescape(r"\xzz").unwrap_err(),
            EscapeError::BadHex { at: 0 }
        );
        assert_eq!(
            unescape("x\\").unwrap_err(),
            EscapeError::Trailing { at: 1 }
        );
        assert_eq!(
            unescape(r"\x").unwrap_err().to_string(),
            "`\\x` at byte 0 must be followed by two hex digits"
        );
    }

    #[test]
    fn display_escapes_round_trip() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(unescape(&escape_for_display(&all)).unwrap(), all);
    }

    #[test]
    fn parses_hex_in_common_spellings() {
        assert_eq!(parse_hex("16 03 01").unwrap(), vec![0x16, 3, 1]);
        assert_eq!(parse_hex("16:03:0A").unwrap(), vec![0x16, 3, 10]);
        assert!(parse_hex("abc").unwrap_err().contains("odd"));
        assert!(parse_hex("zz").unwrap_err().contains("not hex"));
        assert!(parse_hex("").is_err());
    }
}
