//! From files to typed sections: reads a file or a directory of `*.toml`, parses each into a
//! spanned TOML tree, splits it into sections and deserializes each section on its own, so
//! a mistake in one monitor never hides the mistakes in the next.
//!
//! Inside one section serde stops at the first error; we then drop the offending key from
//! the tree and try again, so every type error and unknown key of the section is reported.
//! The paths of dropped keys are kept: [`super::build`] does not report what follows from
//! a key it never saw ("target: missing" after "target: invalid type").

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::chunks;
use super::error::{ConfigErrors, SourceFile};
use super::files;
use super::schema::{DaemonSection, DefaultsSection, FirewallSection, MonitorSection};
use super::Problems;

/// The top-level keys a config file may have.
pub const SECTIONS: &[&str] = &[
    "daemon",
    "defaults",
    "monitor",
    "notifier",
    "firewall",
    "probe_module",
];

/// A section of one file, deserialized as far as it goes.
#[derive(Debug)]
pub struct Section<T> {
    /// Index into [`Parsed::files`].
    pub file: usize,
    /// Span of the table (for `[[monitor]]`: its header).
    pub span: Range<usize>,
    /// `daemon`, `monitor "mail"`, `monitor[3]`: the start of every problem's message.
    pub context: String,
    /// `None` when the section could not be read at all.
    pub value: Option<T>,
    /// Paths of keys dropped because of a type error or an unknown key.
    pub dropped: Vec<String>,
}

/// A `[[notifier]]`: name and type are checked, the rest is kept as written.
#[derive(Debug)]
pub struct NotifierEntry {
    pub name: Option<Spanned<String>>,
    pub kind: Option<Spanned<String>>,
    /// Every key but `name` and `type`.
    pub settings: toml::Table,
}

/// A `[[monitor]]`: deserialized already, or — when it has a chunk of its file to itself, as
/// nearly every monitor does — kept as a place in the text until the build reaches it, so
/// that one monitor's tree and section exist at a time, not 100,000 (issue 14.8).
#[derive(Debug)]
pub enum MonitorEntry {
    Parsed(Box<Section<MonitorSection>>),
    Deferred {
        /// Index into [`Parsed::files`].
        file: usize,
        range: Range<usize>,
        /// Its 0-based number among the file's `[[monitor]]` entries (for unnamed ones).
        number: usize,
    },
}

/// Every file of a config, split into sections.
#[derive(Debug, Default)]
pub struct Parsed {
    pub files: Vec<SourceFile>,
    pub daemon: Option<Section<DaemonSection>>,
    pub defaults: Option<Section<DefaultsSection>>,
    pub firewall: Option<Section<FirewallSection>>,
    pub monitors: Vec<MonitorEntry>,
    pub notifiers: Vec<Section<NotifierEntry>>,
    /// `[[probe_module]]`: a monitor's probe keys without a target, for `/probe`.
    pub probe_modules: Vec<Section<MonitorSection>>,
}

/// Reads `path`: one file, or every `*.toml` of a directory in file-name order. Each file
/// must be a regular file (symlinks followed) of at most [`files::CONFIG_LIMIT`] bytes. In a
/// directory, names not ending in `.toml`, dot-files and subdirectories are skipped; any other
/// `*.toml` entry that is not a readable regular file (a FIFO, a device, a socket, a dangling
/// symlink) is a problem naming it.
pub fn read(path: &Path) -> Result<Vec<SourceFile>, ConfigErrors> {
    let problem = |p: &Path, message: String| {
        SourceFile::new(p.to_path_buf(), String::new()).file_problem(message)
    };
    let meta = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ConfigErrors::missing(path, &e)
        } else {
            ConfigErrors::new(vec![problem(path, format!("cannot read: {e}"))])
        }
    })?;
    let paths: Vec<PathBuf> = if meta.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|e| {
            ConfigErrors::new(vec![problem(path, format!("cannot read directory: {e}"))])
        })?;
        let mut names: Vec<std::ffi::OsString> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .filter(|n| {
                let n = n.to_string_lossy();
                n.ends_with(".toml") && !n.starts_with('.')
            })
            // A subdirectory is skipped; everything else is read, so that a FIFO, a device
            // or a dangling symlink is reported rather than silently left out.
            .filter(|n| !path.join(n).is_dir())
            .collect();
        names.sort();
        names.into_iter().map(|n| path.join(n)).collect()
    } else {
        vec![path.to_path_buf()]
    };
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for p in paths {
        match files::read_bounded(&p, files::CONFIG_LIMIT) {
            Ok(text) => files.push(SourceFile::new(p, text)),
            Err(e @ files::FileError::NotUtf8(_)) => problems.push(problem(&p, e.to_string())),
            Err(e) => problems.push(problem(&p, format!("cannot read: {e}"))),
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(ConfigErrors::new(problems))
    }
}

/// Splits every file into sections. Syntax errors end the reading of their file only.
pub fn parse(files: Vec<SourceFile>, problems: &mut Problems) -> Parsed {
    let mut parsed = Parsed::default();
    for index in 0..files.len() {
        parse_file(index, &files, &mut parsed, problems);
    }
    parsed.files = files;
    parsed
}

fn parse_file(index: usize, files: &[SourceFile], parsed: &mut Parsed, problems: &mut Problems) {
    let file = &files[index];
    // `[[monitor]] N` for unnamed entries counts across the file's chunks.
    let mut counts = ArrayCounts::default();
    for chunk in chunks::split(&file.text) {
        if chunk.array_of == Some("monitor") {
            parsed.monitors.push(MonitorEntry::Deferred {
                file: index,
                range: chunk.range,
                number: counts.monitor,
            });
            counts.monitor += 1;
            continue;
        }
        parse_chunk(index, files, chunk, parsed, problems, &mut counts);
    }
}

/// The sections of a deferred `[[monitor]]` (normally one; none if its text does not parse).
pub fn deferred_monitor(
    files: &[SourceFile],
    file: usize,
    range: Range<usize>,
    number: usize,
    problems: &mut Problems,
) -> Vec<Section<MonitorSection>> {
    let mut parsed = Parsed::default();
    let mut counts = ArrayCounts {
        monitor: number,
        ..ArrayCounts::default()
    };
    let chunk = chunks::Chunk {
        range,
        array_of: Some("monitor"),
    };
    parse_chunk(file, files, chunk, &mut parsed, problems, &mut counts);
    parsed
        .monitors
        .into_iter()
        .filter_map(|entry| match entry {
            MonitorEntry::Parsed(section) => Some(*section),
            MonitorEntry::Deferred { .. } => None,
        })
        .collect()
}

/// Parses one chunk of a file and splits it into sections.
fn parse_chunk(
    index: usize,
    files: &[SourceFile],
    chunk: chunks::Chunk<'_>,
    parsed: &mut Parsed,
    problems: &mut Problems,
    counts: &mut ArrayCounts,
) {
    let file = &files[index];
    let root = match DeTable::parse(&file.text[chunk.range.clone()]) {
        Ok(root) => root,
        Err(e) => {
            let span = shift_span(e.span().unwrap_or(0..0), chunk.range.start);
            problems.push(index, file, &span, format!("syntax error: {}", e.message()));
            // The entry still takes its place: later ones keep their numbers.
            if let Some(count) = chunk.array_of.and_then(|name| counts.of(name)) {
                *count += 1;
            }
            return;
        }
    };
    let root = shift_table(root.into_inner(), chunk.range.start);
    parse_root(index, files, root, parsed, problems, counts);
}

/// How many entries of each array of tables a file has had so far.
#[derive(Debug, Default)]
struct ArrayCounts {
    monitor: usize,
    notifier: usize,
    probe_module: usize,
}

impl ArrayCounts {
    fn of(&mut self, name: &str) -> Option<&mut usize> {
        match name {
            "monitor" => Some(&mut self.monitor),
            "notifier" => Some(&mut self.notifier),
            "probe_module" => Some(&mut self.probe_module),
            _ => None,
        }
    }
}

/// Splits one parsed chunk (or file) into sections.
fn parse_root(
    index: usize,
    files: &[SourceFile],
    root: DeTable<'_>,
    parsed: &mut Parsed,
    problems: &mut Problems,
    counts: &mut ArrayCounts,
) {
    let file = &files[index];
    // Reading order: the tree sorts keys by name.
    let mut entries: Vec<_> = root.into_iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    for (key, value) in entries {
        let name = key.get_ref().to_string();
        match name.as_str() {
            "daemon" | "defaults" | "firewall" => {
                let first = match name.as_str() {
                    "daemon" => parsed.daemon.as_ref().map(|s| (s.file, s.span.clone())),
                    "defaults" => parsed.defaults.as_ref().map(|s| (s.file, s.span.clone())),
                    _ => parsed.firewall.as_ref().map(|s| (s.file, s.span.clone())),
                };
                if let Some((first_file, first_span)) = first {
                    let place = files
                        .get(first_file)
                        .map(|f| f.place(&first_span))
                        .unwrap_or_else(|| "an earlier file".into());
                    problems.push(
                        index,
                        file,
                        &value.span(),
                        format!(
                            "[{name}] is also defined at {place}; [daemon], [defaults] and \
                             [firewall] may each appear in only one file"
                        ),
                    );
                    continue;
                }
                match name.as_str() {
                    "daemon" => {
                        parsed.daemon = Some(section(index, file, value, name, problems));
                    }
                    "defaults" => {
                        parsed.defaults = Some(section(index, file, value, name, problems));
                    }
                    _ => parsed.firewall = Some(section(index, file, value, name, problems)),
                }
            }
            "monitor" | "notifier" | "probe_module" => {
                let span = value.span();
                let DeValue::Array(items) = value.into_inner() else {
                    problems.push(
                        index,
                        file,
                        &span,
                        format!("{name}: must be an array of tables: write [[{name}]]"),
                    );
                    continue;
                };
                for item in items {
                    let i = counts.of(&name).map_or(0, |count| {
                        *count += 1;
                        *count - 1
                    });
                    let label = item
                        .get_ref()
                        .get("name")
                        .and_then(|n| n.get_ref().as_str())
                        .filter(|n| !n.is_empty())
                        .map_or_else(|| format!("{name}[{}]", i + 1), |n| format!("{name} {n:?}"));
                    if name == "monitor" {
                        parsed.monitors.push(MonitorEntry::Parsed(Box::new(section(
                            index, file, item, label, problems,
                        ))));
                    } else if name == "probe_module" {
                        parsed
                            .probe_modules
                            .push(section(index, file, item, label, problems));
                    } else {
                        parsed
                            .notifiers
                            .push(notifier(index, file, item, label, problems));
                    }
                }
            }
            _ => {
                let hint = suggest(&name, SECTIONS.iter().copied())
                    .map(|s| format!(", did you mean `{s}`?"))
                    .unwrap_or_else(|| format!(" (expected one of {})", SECTIONS.join(", ")));
                problems.push(
                    index,
                    file,
                    &key.span(),
                    format!("{name}: unknown top-level key{hint}"),
                );
            }
        }
    }
}

/// Moves every span of a chunk's tree by the chunk's offset in its file, so that problems
/// and positions read as if the file had been parsed whole.
fn shift_table(table: DeTable<'_>, by: usize) -> DeTable<'_> {
    table
        .into_iter()
        .map(|(key, value)| {
            let span = shift_span(key.span(), by);
            (Spanned::new(span, key.into_inner()), shift_value(value, by))
        })
        .collect()
}

fn shift_value(value: Spanned<DeValue<'_>>, by: usize) -> Spanned<DeValue<'_>> {
    let span = shift_span(value.span(), by);
    let inner = match value.into_inner() {
        DeValue::Table(t) => DeValue::Table(shift_table(t, by)),
        DeValue::Array(a) => DeValue::Array(a.into_iter().map(|v| shift_value(v, by)).collect()),
        other => other,
    };
    Spanned::new(span, inner)
}

fn shift_span(span: Range<usize>, by: usize) -> Range<usize> {
    span.start + by..span.end + by
}

/// Deserializes one section, dropping bad keys until what is left deserializes.
fn section<T: DeserializeOwned>(
    index: usize,
    file: &SourceFile,
    value: Spanned<DeValue<'_>>,
    context: String,
    problems: &mut Problems,
) -> Section<T> {
    let span = value.span();
    let mut value = value;
    let mut dropped = Vec::new();
    // Each round drops one key, so this ends; the bound is for pathological files.
    for _ in 0..200 {
        match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(v) => {
                return Section {
                    file: index,
                    span,
                    context,
                    value: Some(v),
                    dropped,
                }
            }
            Err(e) => {
                let at = e.span().unwrap_or_else(|| span.clone());
                let path = locate(value.get_ref(), &at).unwrap_or_default();
                let shown = render_path(&path);
                let message = rewrite_serde_message(e.message());
                let message = if shown.is_empty() {
                    format!("{context}: {message}")
                } else {
                    format!("{context}: {shown}: {message}")
                };
                problems.push(index, file, &at, message);
                // Drop the innermost key holding the error (not an array element: that
                // would shift the indices of later problems).
                let Some(key_len) = path.iter().rposition(|s| matches!(s, Seg::Key(_))) else {
                    break;
                };
                if !remove(value.get_mut(), &path[..=key_len]) {
                    break;
                }
                dropped.push(render_path(&path[..=key_len]));
            }
        }
    }
    Section {
        file: index,
        span,
        context,
        value: None,
        dropped,
    }
}

fn notifier(
    index: usize,
    file: &SourceFile,
    value: Spanned<DeValue<'_>>,
    context: String,
    problems: &mut Problems,
) -> Section<NotifierEntry> {
    let string_at = |key: &str, problems: &mut Problems| -> Option<Spanned<String>> {
        let v = value.get_ref().get(key)?;
        match v.get_ref().as_str() {
            Some(s) => Some(Spanned::new(v.span(), s.to_string())),
            None => {
                problems.push(
                    index,
                    file,
                    &v.span(),
                    format!("{context}: {key}: must be a string"),
                );
                None
            }
        }
    };
    let name = string_at("name", problems);
    let kind = string_at("type", problems);
    // A key of the wrong type is reported above; "missing" would only repeat it.
    let wrong: Vec<String> = ["name", "type"]
        .into_iter()
        .filter(|k| {
            value
                .get_ref()
                .get(*k)
                .is_some_and(|v| !v.get_ref().is_str())
        })
        .map(String::from)
        .collect();
    let mut s: Section<toml::Table> = section(index, file, value, context, problems);
    s.dropped.extend(wrong);
    let settings = s.value.take().map(|mut t| {
        t.remove("name");
        t.remove("type");
        t
    });
    Section {
        file: s.file,
        span: s.span,
        context: s.context,
        value: settings.map(|settings| NotifierEntry {
            name,
            kind,
            settings,
        }),
        dropped: s.dropped,
    }
}

/// One step of a path into a TOML tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    /// 0-based; shown 1-based.
    Index(usize),
}

fn render_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{}]", i + 1)),
        }
    }
    out
}

fn covers(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// The innermost key (or array element) whose key or value covers `span`. Sub-tables
/// written as `[a.b]` have their header as span, so every entry is searched, not just the
/// ones whose span covers.
fn locate(value: &DeValue<'_>, span: &Range<usize>) -> Option<Vec<Seg>> {
    match value {
        DeValue::Table(table) => {
            for (k, v) in table.iter() {
                if let Some(mut inner) = locate(v.get_ref(), span) {
                    inner.insert(0, Seg::Key(k.get_ref().to_string()));
                    return Some(inner);
                }
                if covers(&k.span(), span) || covers(&v.span(), span) {
                    return Some(vec![Seg::Key(k.get_ref().to_string())]);
                }
            }
            None
        }
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(mut inner) = locate(item.get_ref(), span) {
                    inner.insert(0, Seg::Index(i));
                    return Some(inner);
                }
                if covers(&item.span(), span) {
                    return Some(vec![Seg::Index(i)]);
                }
            }
            None
        }
        _ => None,
    }
}

/// Removes the entry at `path` (which ends with a key). Returns whether it was there.
fn remove(value: &mut DeValue<'_>, path: &[Seg]) -> bool {
    match (path, value) {
        ([Seg::Key(k)], DeValue::Table(t)) => t.remove(k.as_str()).is_some(),
        ([Seg::Key(k), rest @ ..], DeValue::Table(t)) => t
            .get_mut(k.as_str())
            .is_some_and(|v| remove(v.get_mut(), rest)),
        ([Seg::Index(i), rest @ ..], DeValue::Array(a)) => {
            a.get_mut(*i).is_some_and(|v| remove(v.get_mut(), rest))
        }
        _ => false,
    }
}

/// serde's messages, said for a config: an unknown key with a suggestion instead of a list
/// of thirty keys; "value" instead of "variant".
pub(super) fn rewrite_serde_message(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((key, expected)) = rest.split_once('`') {
            let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            return match suggest(key, known.iter().copied()) {
                Some(s) => format!("unknown key, did you mean `{s}`?"),
                None if known.is_empty() => "unknown key: this table has no keys".into(),
                None if known.len() <= 8 => {
                    format!("unknown key (expected one of {})", known.join(", "))
                }
                None => "unknown key (`portwarden config example` shows every key)".into(),
            };
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return format!("unknown value {rest}");
    }
    // Rust's names for TOML's types.
    if let Some((head, expected)) = message.split_once(", expected ") {
        let said = match expected {
            e if e.starts_with("struct ") || e == "a map" => "a table",
            "a sequence" => "an array",
            "i64" | "u64" | "i32" | "u32" | "usize" => "an integer",
            _ => return message.to_string(),
        };
        return format!("{head}, expected {said}");
    }
    message.to_string()
}

/// The closest of `known` to `word`, if it is close enough to be a typo.
pub fn suggest<'a>(word: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    known
        .map(|k| (distance(&word, k), k))
        .filter(|(d, k)| *d <= 2.min(k.len() / 3 + 1) || (word.len() > 2 && k.starts_with(&word)))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, for typo suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let keys = ["name", "target", "tags", "timeout", "interval"];
        assert_eq!(suggest("tagz", keys.iter().copied()), Some("tags"));
        assert_eq!(suggest("intervall", keys.iter().copied()), Some("interval"));
        assert_eq!(suggest("targte", keys.iter().copied()), Some("target"));
        assert_eq!(suggest("zzz", keys.iter().copied()), None);
    }

    #[test]
    fn rewrites_unknown_keys_and_variants() {
        assert_eq!(
            rewrite_serde_message("unknown field `portz`, expected one of `name`, `port`"),
            "unknown key, did you mean `port`?"
        );
        assert_eq!(
            rewrite_serde_message("unknown field `x`, expected `verify`"),
            "unknown key (expected one of verify)"
        );
        assert_eq!(
            rewrite_serde_message("unknown variant `v5`, expected one of `any`, `v4`, `v6`"),
            "unknown value `v5`, expected one of `any`, `v4`, `v6`"
        );
        assert_eq!(
            rewrite_serde_message("invalid type: integer `5`, expected struct DaemonSection"),
            "invalid type: integer `5`, expected a table"
        );
        assert_eq!(
            rewrite_serde_message("invalid type: string \"x\", expected i64"),
            "invalid type: string \"x\", expected an integer"
        );
    }
}
