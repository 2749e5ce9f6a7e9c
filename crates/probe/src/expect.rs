//! Expectations on what a server sends: substring, prefix, regex, exact bytes, or a
//! protocol-aware reply parser supplied by a preset.
//!
//! An expectation is evaluated after every read and answers [`Verdict::Undecided`] until the
//! data decides it, so the engine stops reading the moment the answer is known instead of
//! waiting for a timeout (check_tcp waits 2 s, Monit 200 ms per step).
//!
//! A matched expectation uses up only what it matched ([`Expectation::consumed`]): the next
//! expect step of a dialog starts on the rest, which may already be in the buffer (two reply
//! lines in one read must not make the second step wait for new bytes). Text patterns use up
//! their line to its end; binary patterns and reply parsers exactly what they matched.

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
    /// A regular expression tested against each complete line (without its `\n` or `\r\n`)
    /// in turn, as blackbox_exporter's line reader does; an unterminated last line counts
    /// only once the server has closed the connection ([`Expectation::evaluate_at_close`]).
    /// Shared like [`Matcher::Regex`].
    Line(std::sync::Arc<regex::bytes::Regex>),
    /// A preset's protocol parser.
    Reply(ReplyParser),
}

/// How much of the data a match used up, and whether the rest of its line goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumed {
    /// Bytes used up from the start of the data.
    pub end: usize,
    /// The match ended inside a text line whose end has not been received yet: the rest of
    /// that line, when it comes, belongs to this match, not to the next step.
    pub rest_of_line: bool,
}

impl Matcher {
    /// Builds a regex matcher, naming the pattern in the error.
    pub fn regex(pattern: &str) -> Result<Self, String> {
        regex::bytes::Regex::new(pattern)
            .map(|re| Matcher::Regex(std::sync::Arc::new(re)))
            .map_err(|e| format!("invalid regex {pattern:?}: {e}"))
    }

    /// Builds a line-by-line regex matcher ([`Matcher::Line`]), naming the pattern in the
    /// error.
    pub fn line_regex(pattern: &str) -> Result<Self, String> {
        regex::bytes::Regex::new(pattern)
            .map(|re| Matcher::Line(std::sync::Arc::new(re)))
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
            Matcher::Line(re) => {
                if matching_line(re, data, false).is_some() {
                    Verdict::Matched
                } else {
                    Verdict::Undecided
                }
            }
            Matcher::Reply(parser) => (parser.parse)(data),
        }
    }

    /// Like [`Matcher::evaluate`], once the server has closed the connection: nothing more
    /// will come, so an unterminated last line is a line.
    pub fn evaluate_at_close(&self, data: &[u8]) -> Verdict {
        match self {
            Matcher::Line(re) if matching_line(re, data, true).is_some() => Verdict::Matched,
            Matcher::Line(_) => Verdict::Mismatch,
            other => other.evaluate(data),
        }
    }

    /// What a match on `data` used up; `None` when this matcher does not match `data`.
    pub fn consumed(&self, data: &[u8], at_close: bool) -> Option<Consumed> {
        let text = |end: usize, pattern: &[u8]| {
            // A binary pattern (a hex prefix of a binary handshake, say) has no lines.
            let lines = is_text(pattern) && !data[..end].ends_with(b"\n");
            match data[end..].iter().position(|&b| b == b'\n') {
                Some(nl) if lines => Consumed {
                    end: end + nl + 1,
                    rest_of_line: false,
                },
                _ => Consumed {
                    end,
                    rest_of_line: lines,
                },
            }
        };
        match self {
            Matcher::Contains(needle) => {
                let at = find(data, needle)?;
                Some(text(at + needle.len(), needle))
            }
            Matcher::Prefix(prefix) => data.starts_with(prefix).then(|| text(prefix.len(), prefix)),
            Matcher::Regex(re) => re.find(data).map(|m| text(m.end(), b"")),
            Matcher::Line(re) => matching_line(re, data, at_close).map(|line| Consumed {
                end: line.next,
                rest_of_line: false,
            }),
            Matcher::Reply(parser) => {
                if (parser.parse)(data) != Verdict::Matched {
                    return None;
                }
                Some(Consumed {
                    end: shortest_matching_lines(parser, data),
                    rest_of_line: false,
                })
            }
        }
    }

    /// The regex whose capture groups a later send may expand, if this matcher has one.
    pub fn capture_regex(&self) -> Option<&regex::bytes::Regex> {
        match self {
            Matcher::Regex(re) | Matcher::Line(re) => Some(re),
            _ => None,
        }
    }
}

/// A complete line that a line regex matched: where its text lies and where the next line
/// starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchedLine {
    /// The line without its `\n` or `\r\n`.
    pub text: (usize, usize),
    /// Where the data after the line begins.
    pub next: usize,
}

/// The first complete line of `data` that `re` matches (the unterminated rest counts too
/// when `at_close`).
pub fn matching_line(re: &regex::bytes::Regex, data: &[u8], at_close: bool) -> Option<MatchedLine> {
    let mut start = 0;
    while start < data.len() {
        let (end, next) = match data[start..].iter().position(|&b| b == b'\n') {
            Some(nl) => (start + nl, start + nl + 1),
            None if at_close => (data.len(), data.len()),
            None => return None,
        };
        let text_end = if data[start..end].ends_with(b"\r") {
            end - 1
        } else {
            end
        };
        if re.is_match(&data[start..text_end]) {
            return Some(MatchedLine {
                text: (start, text_end),
                next,
            });
        }
        start = next;
    }
    None
}

/// The shortest run of whole lines of `data` on which a reply parser already matches (its
/// reply), else all of `data` (a binary reply). Reply parsers decide on the first reply, so
/// a match on fewer lines stays a match on more: a binary search over the line ends.
fn shortest_matching_lines(parser: &ReplyParser, data: &[u8]) -> usize {
    let ends: Vec<usize> = data
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .map(|(i, _)| i + 1)
        .collect();
    let first = ends.partition_point(|&end| (parser.parse)(&data[..end]) != Verdict::Matched);
    ends.get(first).copied().unwrap_or(data.len())
}

/// Whether a pattern is text (printable ASCII, tabs, line ends) rather than binary.
fn is_text(pattern: &[u8]) -> bool {
    pattern
        .iter()
        .all(|&b| matches!(b, b'\t' | b'\r' | b'\n' | b' '..=b'~'))
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Contains(b) => write!(f, "contains \"{}\"", escape_for_display(b)),
            Matcher::Prefix(b) => write!(f, "starts with \"{}\"", escape_for_display(b)),
            Matcher::Regex(re) => write!(f, "matches /{}/", re.as_str()),
            Matcher::Line(re) => write!(f, "a line matching /{}/", re.as_str()),
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
        self.combine(data, Matcher::evaluate)
    }

    /// Tests the data once the server has closed the connection (see
    /// [`Matcher::evaluate_at_close`]).
    pub fn evaluate_at_close(&self, data: &[u8]) -> Verdict {
        self.combine(data, Matcher::evaluate_at_close)
    }

    /// What a match of this expectation on `data` used up: with "any", the matcher that
    /// needed the least; with "all", the one that needed the most.
    pub fn consumed(&self, data: &[u8], at_close: bool) -> Option<Consumed> {
        let each = self
            .matchers
            .iter()
            .filter_map(|m| m.consumed(data, at_close));
        match self.mode {
            MatchMode::Any => each.min_by_key(|c| c.end),
            MatchMode::All => each.max_by_key(|c| c.end),
        }
    }

    fn combine(&self, data: &[u8], evaluate: fn(&Matcher, &[u8]) -> Verdict) -> Verdict {
        let mut matched = 0;
        let mut mismatched = 0;
        for m in &self.matchers {
            match evaluate(m, data) {
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
    find(haystack, needle).is_some()
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
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
