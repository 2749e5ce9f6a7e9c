//! Splits a config file at its top-level table headers so that each part is parsed on its own:
//! the text before the first header, then one chunk per `[name]` or `[[name]]` header with
//! everything up to the next one. A 100,000-monitor file then never exists as one TOML tree
//! (whose token and event lists alone take ~2 KB per monitor) but one monitor at a time, which
//! keeps a reload within its memory budget (issue 14.8).
//!
//! Splitting must not change what the file means. A dotted header (`[monitor.expect]`,
//! `[[monitor.on_down]]`) extends the table of the header before it and stays in its chunk.
//! Where a split could change the meaning — a dotted header whose parent is not the current
//! chunk's table, a quoted header key, a header the lexer cannot make sense of, unbalanced
//! brackets — the whole file is one chunk and is parsed as one tree, as before.

use std::ops::Range;

use toml_parser::lexer::{Token, TokenKind};
use toml_parser::Source;

/// One part of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk<'t> {
    pub range: Range<usize>,
    /// `name` when the chunk is one `[[name]]` entry (so a caller can count an entry whose
    /// text does not parse).
    pub array_of: Option<&'t str>,
}

/// The chunks of `text`, in order, covering all of it.
pub fn split(text: &str) -> Vec<Chunk<'_>> {
    let whole = vec![Chunk {
        range: 0..text.len(),
        array_of: None,
    }];
    let Some(headers) = chunk_starts(text) else {
        return whole;
    };
    let mut chunks = Vec::with_capacity(headers.len() + 1);
    let mut from = 0;
    let mut array_of = None;
    for header in headers {
        if header.start > from {
            chunks.push(Chunk {
                range: from..header.start,
                array_of,
            });
        }
        from = header.start;
        array_of = header.array.then_some(header.key);
    }
    chunks.push(Chunk {
        range: from..text.len(),
        array_of,
    });
    chunks
}

/// Each top-level `[name]` / `[[name]]` header; `None`: keep the file whole.
fn chunk_starts(text: &str) -> Option<Vec<Header<'_>>> {
    let mut tokens = Source::new(text).lex().peekable();
    let mut starts = Vec::new();
    // Brackets and braces open in values (an array spanning lines can hold a line that
    // starts with `[`); headers only count at depth 0.
    let mut depth = 0usize;
    let mut line_start = true;
    let mut current: Option<&str> = None;
    while let Some(token) = tokens.next() {
        match token.kind() {
            TokenKind::Newline => {
                line_start = true;
                continue;
            }
            TokenKind::Whitespace | TokenKind::Comment => continue,
            TokenKind::LeftSquareBracket if line_start && depth == 0 => {
                let header = read_header(text, &token, &mut tokens)?;
                match header.key.split_once('.') {
                    None => {
                        current = Some(header.key);
                        starts.push(header);
                    }
                    Some((parent, _)) if Some(parent.trim()) == current => {}
                    Some(_) => return None,
                }
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => depth += 1,
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                depth = depth.checked_sub(1)?;
            }
            _ => {}
        }
        line_start = false;
    }
    (depth == 0).then_some(starts)
}

/// A table header: where its `[` is, its key as written (trimmed), and whether it is `[[…]]`.
struct Header<'t> {
    start: usize,
    key: &'t str,
    array: bool,
}

/// Reads a header after its first `[`: an optional second `[` right after it, the key, and
/// as many `]` as were opened, all on one line. `None` for anything else, or a quoted key.
fn read_header<'t>(
    text: &'t str,
    open: &Token,
    tokens: &mut std::iter::Peekable<toml_parser::lexer::Lexer<'_>>,
) -> Option<Header<'t>> {
    let start = open.span().start();
    let mut key_start = open.span().end();
    let array = tokens
        .next_if(|t| t.kind() == TokenKind::LeftSquareBracket && t.span().start() == key_start);
    if let Some(second) = array.as_ref() {
        key_start = second.span().end();
    }
    let key_end = loop {
        let token = tokens.next()?;
        match token.kind() {
            TokenKind::RightSquareBracket => break token.span().start(),
            TokenKind::Atom | TokenKind::Dot | TokenKind::Whitespace => {}
            // Quoted keys, brackets, line ends, comments: leave the file whole.
            _ => return None,
        }
    };
    if array.is_some() {
        let first_close = key_end;
        tokens.next_if(|t| {
            t.kind() == TokenKind::RightSquareBracket && t.span().start() == first_close + 1
        })?;
    }
    let key = text.get(key_start..key_end)?.trim();
    (!key.is_empty()).then_some(Header {
        start,
        key,
        array: array.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::split;

    fn parts(text: &str) -> Vec<&str> {
        split(text).into_iter().map(|c| &text[c.range]).collect()
    }

    fn ranges(text: &str) -> Vec<std::ops::Range<usize>> {
        split(text).into_iter().map(|c| c.range).collect()
    }

    #[test]
    fn splits_at_every_top_level_header() {
        let text = "# head\n[daemon]\nlisten = \"x\"\n\n[[monitor]]\nname = \"a\"\n[[ monitor ]]\nname = \"b\"\n";
        assert_eq!(
            parts(text),
            [
                "# head\n",
                "[daemon]\nlisten = \"x\"\n\n",
                "[[monitor]]\nname = \"a\"\n",
                "[[ monitor ]]\nname = \"b\"\n"
            ]
        );
    }

    #[test]
    fn dotted_headers_stay_with_their_parent() {
        let text = "[[monitor]]\nname = \"a\"\n[monitor.expect]\nprefix = \"2\"\n[[monitor.on_down]]\ntype = \"restart\"\n[[monitor]]\nname = \"b\"\n";
        assert_eq!(
            parts(text),
            [
                "[[monitor]]\nname = \"a\"\n[monitor.expect]\nprefix = \"2\"\n[[monitor.on_down]]\ntype = \"restart\"\n",
                "[[monitor]]\nname = \"b\"\n"
            ]
        );
    }

    #[test]
    fn brackets_inside_values_and_strings_are_not_headers() {
        let text = "[[monitor]]\nname = \"a\"\ntags = [\n[\"x\"],\n]\nsend = \"\"\"\n[[monitor]]\n\"\"\"\n[[monitor]]\nname = \"b\"\n";
        assert_eq!(split(text).len(), 2);
        assert!(parts(text)[0].contains("\"\"\"\n[[monitor]]\n\"\"\""));
    }

    #[test]
    fn array_entries_are_named() {
        let text = "x = 1\n[daemon]\n[[monitor]]\n[[notifier]]\n";
        let kinds: Vec<_> = split(text).into_iter().map(|c| c.array_of).collect();
        assert_eq!(kinds, [None, None, Some("monitor"), Some("notifier")]);
    }

    #[test]
    fn the_file_stays_whole_where_a_split_could_change_its_meaning() {
        for text in [
            // A dotted header reaching back into another chunk's table.
            "[daemon]\nlisten = \"x\"\n[[monitor]]\nname = \"a\"\n[daemon.api]\nx = 1\n",
            // Quoted header keys.
            "[[\"monitor\"]]\nname = \"a\"\n[[monitor]]\nname = \"b\"\n",
            // Broken headers and brackets.
            "[[monitor]\nname = \"a\"\n[[monitor]]\n",
            "[[monitor]]\ntags = [\n[[monitor]]\n",
            "]\n[[monitor]]\n",
        ] {
            assert_eq!(ranges(text), vec![0..text.len()], "{text:?}");
        }
    }

    #[test]
    fn an_empty_file_is_one_empty_chunk() {
        assert_eq!(ranges(""), vec![0..0]);
    }
}
