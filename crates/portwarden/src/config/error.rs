//! Config problems: each one names its file, line and column, the section it belongs to
//! and the key path inside it, like
//! `portwarden.toml:12:10: monitor "mail": target: port must be 1-65535, got 0`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, as the user named it (for a directory: the directory joined with the file).
    pub file: PathBuf,
    /// 1-based line and column (in characters) of the offending text, when there is one.
    pub position: Option<(usize, usize)>,
    /// Where in the config and what is wrong: `monitor "mail": target: port must be …`.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.file.display(), self.message)
            }
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Every problem found in a config, in reading order (file by file, top to bottom).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    problems: Vec<Problem>,
    /// The config path itself does not exist (the daemon then runs its embedded default).
    not_found: bool,
}

impl ConfigErrors {
    pub(crate) fn new(problems: Vec<Problem>) -> Self {
        Self {
            problems,
            not_found: false,
        }
    }

    pub(crate) fn missing(path: &Path, error: &std::io::Error) -> Self {
        Self {
            problems: vec![Problem {
                file: path.to_path_buf(),
                position: None,
                message: format!("cannot read: {error}"),
            }],
            not_found: true,
        }
    }

    /// The problems, in reading order.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// How many problems there are.
    pub fn len(&self) -> usize {
        self.problems.len()
    }

    /// Never true for an error returned by [`super::load`]; here for clippy's `len_without_is_empty`.
    #[expect(dead_code, reason = "pairs with len()")]
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// Whether the only problem is that the config path does not exist.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "for callers that fall back when the file is missing; tests use it"
        )
    )]
    pub fn is_not_found(&self) -> bool {
        self.not_found
    }
}

impl fmt::Display for ConfigErrors {
    /// One problem per line, then the count: `2 problems`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        let n = self.problems.len();
        write!(f, "{n} problem{}", if n == 1 { "" } else { "s" })
    }
}

impl std::error::Error for ConfigErrors {}

/// One config file's text, to turn byte spans into line and column.
#[derive(Debug)]
pub(crate) struct SourceFile {
    /// The name shown in problems.
    pub path: PathBuf,
    pub text: String,
    /// Byte offset where each line starts.
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: PathBuf, text: String) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            path,
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of byte `offset`.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |t| t.chars().count());
        (line, col + 1)
    }

    /// A problem at `span` of this file.
    pub fn problem(&self, span: &Range<usize>, message: String) -> Problem {
        Problem {
            file: self.path.clone(),
            position: Some(self.position(span.start)),
            message: one_line(message),
        }
    }

    /// A problem about the whole file.
    pub fn file_problem(&self, message: String) -> Problem {
        Problem {
            file: self.path.clone(),
            position: None,
            message: one_line(message),
        }
    }

    /// `file:line:col`, for problems that point at a second place.
    pub fn place(&self, span: &Range<usize>) -> String {
        let (line, col) = self.position(span.start);
        format!("{}:{line}:{col}", self.path.display())
    }
}

/// Keeps every problem on one line, whatever a library's message looks like.
fn one_line(message: String) -> String {
    let message = if message.contains('\n') {
        message
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        message
    };
    safe_to_show(&message)
}

/// Longest run of non-blank characters a problem shows of a value; the rest is cut.
pub(crate) const MAX_SHOWN: usize = 120;

/// A problem's text as it may reach a terminal or a log: control and bidi-override
/// characters escaped (a config value must not move the cursor or reorder what is shown),
/// and every run of non-blank characters longer than [`MAX_SHOWN`] (a pasted value, a huge
/// name) cut, saying how long it was.
pub(crate) fn safe_to_show(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4 * MAX_SHOWN));
    let mut run = 0usize;
    let mut run_len = 0usize;
    let chars: Vec<char> = text.chars().collect();
    // Blank: a space between values (a tab or line end inside one is control, escaped).
    let blank = |c: char| c.is_whitespace() && !c.is_control();
    for (i, &c) in chars.iter().enumerate() {
        if blank(c) {
            run = 0;
            out.push(c);
            continue;
        }
        if run == 0 {
            run_len = chars[i..].iter().take_while(|&&c| !blank(c)).count();
        }
        run += 1;
        if run_len > MAX_SHOWN && run > MAX_SHOWN {
            if run == MAX_SHOWN + 1 {
                out.push_str(&format!("…[{run_len} characters]"));
            }
            continue;
        }
        if c.is_control() || is_bidi_control(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The characters that change the direction of the text after them (Trojan Source).
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_cut_long_values_and_escape_what_a_terminal_would_obey() {
        let huge = "A".repeat(200_000);
        let shown = safe_to_show(&format!("monitor \"{huge}\": name: at most 64 characters"));
        assert_eq!(
            shown,
            format!(
                "monitor \"{}…[200003 characters] name: at most 64 characters",
                "A".repeat(MAX_SHOWN - 1)
            )
        );
        assert_eq!(
            safe_to_show("got x\u{1b}[2J and \u{202E}txt.exe\0"),
            "got x\\u{1b}[2J and \\u{202e}txt.exe\\u{0}"
        );
        assert_eq!(safe_to_show("plain text, kept"), "plain text, kept");
    }

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let f = SourceFile::new("x.toml".into(), "ab\nçd = 1\n\nz".into());
        assert_eq!(f.position(0), (1, 1));
        assert_eq!(f.position(1), (1, 2));
        assert_eq!(f.position(3), (2, 1));
        // `ç` is two bytes, one column.
        assert_eq!(f.position(5), (2, 2));
        assert_eq!(f.position(11), (3, 1));
        assert_eq!(f.position(12), (4, 1));
        assert_eq!(f.position(999), (4, 2));
    }

    #[test]
    fn display_lists_each_problem_then_the_count() {
        let f = SourceFile::new("p.toml".into(), "a = 1\nb = 2\n".into());
        let errors = ConfigErrors::new(vec![
            f.problem(&(6..7), "b: bad".into()),
            f.file_problem("multi\nline".into()),
        ]);
        assert_eq!(
            errors.to_string(),
            "p.toml:2:1: b: bad\np.toml: multi; line\n2 problems"
        );
    }
}
