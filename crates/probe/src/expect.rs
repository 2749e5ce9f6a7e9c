//! Expectations on what a server sends: substring, prefix, regex, exact bytes, or a
//! protocol-aware reply parser supplied by a preset.
//!
//! An expectation is evaluated after every read and answers [`Verdict::Undecided`] until the
//! data decides it, so the engine stops reading the moment the answer is known instead of
//! waiting for a timeout (check_tcp waits 2 s, Monit 200 ms per step).

use std::fmt;

use crate::escape::escape_for_display;

/// What the data received so far says about an expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The expectation is met; reading can stop.
    Matched,
    /// The expectation can no longer be met, whatever arrives next.
    Mismatch,
    /// More data could still decide it either way.
    Undecided,
}

/// A protocol reply parser: a named function from the bytes received so far to a verdict.
/// Presets use it where a plain pattern cannot decide early (multi-line SMTP replies,
/// binary handshakes).
#[derive(Clone, Copy)]
pub struct ReplyParser {
    /// Shown in results and `--help` output, e.g. `"smtp reply 220"`.
    pub name: &'static str,
    /// Decides on the bytes received so far.
    pub parse: fn(&[u8]) -> Verdict,
}

impl fmt::Debug for ReplyParser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// One pattern the received data is tested against.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// The bytes appear anywhere in the data (check_tcp's `-e`).
    Contains(Vec<u8>),
    /// The data starts with these bytes (written as text or as hex).
    Prefix(Vec<u8>),
    /// A regular expression over the raw bytes. Shared: a spec cloned per probe (the
    /// `/probe` endpoint does) must not rebuild the regex's cache pool every time.
    Regex(std::sync::Arc<regex::bytes::Regex>),
    /// A preset's protocol parser.
    Reply(ReplyParser),
}

impl Matcher {
    /// Builds a regex matcher, naming the pattern in the error.
    pub fn regex(pattern: &str) -> Result<Self, String> {
        regex::bytes::Regex::new(pattern)
            .map(|re| Matcher::Regex(std::sync::Arc::new(re)))
            .map_err(|e| format!("invalid regex {pattern:?}: {e}"))
    }

    /// Tests the data received so far.
    pub fn evaluate(&self, data: &[u8]) -> Verdict {
        match self {
            Matcher::Contains(needle) => {
                if contains(data, needle) {
                    Verdict::Matched
                } else {
                    Verdict::Undecided
                }
            }
            Matcher::Prefix(prefix) => {
                if data.len() >= prefix.len() {
                    if data.starts_with(prefix) {
                        Verdict::Matched
                    } else {
                        Verdict::Mismatch
                    }
                } else if prefix.starts_with(data) {
                    Verdict::Undecided
                } else {
                    Verdict::Mismatch
                }
            }
            Matcher::Regex(re) => {
                if re.is_match(data) {
                    Verdict::Matched
                } else {
                    Verdict::Undecided
                }
            }
            Matcher::Reply(parser) => (parser.parse)(data),
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Contains(b) => write!(f, "contains \"{}\"", escape_for_display(b)),
            Matcher::Prefix(b) => write!(f, "starts with \"{}\"", escape_for_display(b)),
            Matcher::Regex(re) => write!(f, "matches /{}/", re.as_str()),
            Matcher::Reply(p) => f.write_str(p.name),
        }
    }
}

/// Whether one or all matchers must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatchMode {
    /// Any one matcher suffices (check_tcp's default).
    #[default]
    Any,
    /// Every matcher must match (check_tcp's `-A`).
    All,
}

/// A set of matchers combined with [`MatchMode`].
#[derive(Debug, Clone)]
pub struct Expectation {
    pub matchers: Vec<Matcher>,
    pub mode: MatchMode,
}

impl Expectation {
    /// An expectation with a single matcher.
    pub fn one(matcher: Matcher) -> Self {
        Self {
            matchers: vec![matcher],
            mode: MatchMode::Any,
        }
    }

    /// Tests the data received so far against all matchers.
    pub fn evaluate(&self, data: &[u8]) -> Verdict {
        let mut matched = 0;
        let mut mismatched = 0;
        for m in &self.matchers {
            match m.evaluate(data) {
                Verdict::Matched => matched += 1,
                Verdict::Mismatch => mismatched += 1,
                Verdict::Undecided => {}
            }
        }
        let total = self.matchers.len();
        match self.mode {
            MatchMode::Any if matched > 0 => Verdict::Matched,
            MatchMode::Any if mismatched == total => Verdict::Mismatch,
            MatchMode::All if mismatched > 0 => Verdict::Mismatch,
            MatchMode::All if matched == total => Verdict::Matched,
            _ => Verdict::Undecided,
        }
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let joiner = match self.mode {
            MatchMode::Any => " or ",
            MatchMode::All => " and ",
        };
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(joiner)?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Splits `data` into complete CRLF- or LF-terminated lines; the unterminated rest is dropped.
pub fn complete_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let end = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    data[..end]
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(s: &str) -> Matcher {
        Matcher::Prefix(s.as_bytes().to_vec())
    }
    fn contains_m(s: &str) -> Matcher {
        Matcher::Contains(s.as_bytes().to_vec())
    }

    #[test]
    fn prefix_decides_as_early_as_possible() {
        let m = prefix("220 ");
        assert_eq!(m.evaluate(b""), Verdict::Undecided);
        assert_eq!(m.evaluate(b"22"), Verdict::Undecided);
        assert_eq!(m.evaluate(b"5"), Verdict::Mismatch);
        assert_eq!(m.evaluate(b"220 mail"), Verdict::Matched);
        assert_eq!(m.evaluate(b"220-mail"), Verdict::Mismatch);
    }

    #[test]
    fn contains_stays_undecided_until_found() {
        let m = contains_m("OpenSSH");
        assert_eq!(m.evaluate(b"SSH-2.0-Open"), Verdict::Undecided);
        assert_eq!(m.evaluate(b"SSH-2.0-OpenSSH_9"), Verdict::Matched);
    }

    #[test]
    fn regex_matches_raw_bytes() {
        let m = Matcher::regex(r"^WELCOME v\d+").unwrap();
        assert_eq!(m.evaluate(b"WELCOME v12\r\n"), Verdict::Matched);
        assert_eq!(m.evaluate(b"WELCOME vx"), Verdict::Undecided);
        assert!(Matcher::regex("(").unwrap_err().contains("invalid regex"));
    }

    #[test]
    fn any_and_all_combine_verdicts() {
        let any = Expectation {
            matchers: vec![prefix("200"), prefix("201")],
            mode: MatchMode::Any,
        };
        assert_eq!(any.evaluate(b"201 ok"), Verdict::Matched);
        assert_eq!(any.evaluate(b"400 no"), Verdict::Mismatch);
        let all = Expectation {
            matchers: vec![contains_m("a"), contains_m("b")],
            mode: MatchMode::All,
        };
        assert_eq!(all.evaluate(b"a"), Verdict::Undecided);
        assert_eq!(all.evaluate(b"ab"), Verdict::Matched);
        let all_with_prefix = Expectation {
            matchers: vec![prefix("x"), contains_m("b")],
            mode: MatchMode::All,
        };
        assert_eq!(all_with_prefix.evaluate(b"yb"), Verdict::Mismatch);
    }

    #[test]
    fn complete_lines_ignores_partial_tail() {
        let lines: Vec<&[u8]> = complete_lines(b"220-a\r\n220 b\r\n221").collect();
        assert_eq!(lines, vec![&b"220-a"[..], &b"220 b"[..]]);
        assert_eq!(complete_lines(b"no newline").count(), 0);
    }

    #[test]
    fn display_names_each_matcher() {
        let e = Expectation {
            matchers: vec![prefix("+OK"), contains_m("\r\n")],
            mode: MatchMode::All,
        };
        assert_eq!(e.to_string(), r#"starts with "+OK" and contains "\r\n""#);
    }
}
