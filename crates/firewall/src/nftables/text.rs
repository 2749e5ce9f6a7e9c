//! `nft -s list ruleset` text → per chain, its header lines and its rule lines, so each JSON
//! rule can be shown the way the administrator writes it. Also the line normalisation used for
//! drift (no handles, no counter numbers, single spaces).

use std::sync::OnceLock;

use regex::Regex;

/// Where the text comes from, for error messages.
pub const SOURCE: &str = "nft -s list ruleset";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextTable {
    pub family: String,
    pub name: String,
    pub chains: Vec<TextChain>,
    /// Named sets and maps: their elements decide what rules like `ip saddr @allow` let in.
    pub sets: Vec<TextSet>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextSet {
    /// `set` or `map`.
    pub kind: String,
    pub name: String,
    /// The body, normalised, one line per declaration (`type ipv4_addr`, `elements = { … }`).
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextChain {
    pub name: String,
    /// Every line of the chain's body, normalised: header lines (`type … policy …;`,
    /// `comment "…"`) first, then one line per rule.
    pub lines: Vec<String>,
}

/// Splits a listing into tables, chains, sets and maps. Other objects (counters, quotas,
/// flowtables) are skipped. A rule or element list nft wraps over several lines is joined.
pub fn parse(text: &str) -> Result<Vec<TextTable>, String> {
    let mut tables: Vec<TextTable> = Vec::new();
    let mut depth = 0usize;
    // The block being read, and a line still waiting for its closing brace.
    let mut block = Block::Other;
    let mut pending = String::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let lineno = n + 1;
        if line.is_empty() || (line.starts_with('#') && pending.is_empty()) {
            continue;
        }
        let before = depth;
        depth = depth_after(depth, line).ok_or_else(|| format!("line {lineno}: unbalanced }}"))?;
        match before {
            0 => {
                let words: Vec<&str> = line.split_whitespace().collect();
                match words.as_slice() {
                    ["table", family, name, "{"] => tables.push(TextTable {
                        family: family.to_string(),
                        name: unquote(name),
                        chains: Vec::new(),
                        sets: Vec::new(),
                    }),
                    _ => return Err(format!("line {lineno}: expected `table FAMILY NAME {{`")),
                }
            }
            1 => {
                let words: Vec<&str> = line.split_whitespace().collect();
                let table = tables
                    .last_mut()
                    .ok_or_else(|| format!("line {lineno}: outside a table"))?;
                block = match words.as_slice() {
                    ["chain", name, "{"] => {
                        table.chains.push(TextChain {
                            name: unquote(name),
                            lines: Vec::new(),
                        });
                        Block::Chain
                    }
                    [kind @ ("set" | "map"), name, "{"] => {
                        table.sets.push(TextSet {
                            kind: kind.to_string(),
                            name: unquote(name),
                            lines: Vec::new(),
                        });
                        Block::Set
                    }
                    _ => Block::Other,
                };
            }
            _ if block != Block::Other => {
                if depth < 2 {
                    continue; // the chain's closing brace
                }
                if !pending.is_empty() {
                    pending.push(' ');
                }
                pending.push_str(line);
                if depth == 2 {
                    let table = tables.last_mut();
                    let lines = match block {
                        Block::Chain => table
                            .and_then(|t| t.chains.last_mut())
                            .map(|c| &mut c.lines),
                        _ => table.and_then(|t| t.sets.last_mut()).map(|s| &mut s.lines),
                    }
                    .ok_or_else(|| format!("line {lineno}: outside a block"))?;
                    lines.push(normalise(&pending));
                    pending.clear();
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("the listing ends inside a block (truncated?)".into());
    }
    Ok(tables)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Chain,
    Set,
    Other,
}

/// Brace depth after `line`, ignoring braces inside double quotes. `None` when it closes more
/// than is open.
fn depth_after(mut depth: usize, line: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for ch in line.chars() {
        match ch {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '{' if !quoted => depth += 1,
            '}' if !quoted => depth = depth.checked_sub(1)?,
            _ => {}
        }
    }
    Some(depth)
}

fn unquote(name: &str) -> String {
    name.trim_matches('"').to_string()
}

/// One line as drift compares it: no `# handle N`, counters without their numbers, runs of
/// spaces outside quotes collapsed (iptables-nft leaves double spaces where an xt match was).
pub fn normalise(line: &str) -> String {
    static NUMBERS: OnceLock<Regex> = OnceLock::new();
    let numbers = NUMBERS.get_or_init(|| {
        Regex::new(r"\s+(packets \d+ bytes \d+|# handle \d+\s*$)").expect("static regex is valid")
    });
    let stripped = numbers.replace_all(line, "");
    let mut out = String::with_capacity(stripped.len());
    let mut quoted = false;
    let mut escaped = false;
    let mut space = false;
    for ch in stripped.trim().chars() {
        if !quoted && ch.is_whitespace() {
            space = true;
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        match ch {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ => {}
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_drops_counter_numbers_handles_and_extra_spaces_not_quoted_ones() {
        assert_eq!(
            normalise("tcp dport 22  counter packets 12 bytes 3400 accept # handle 7"),
            "tcp dport 22 counter accept"
        );
        assert_eq!(
            normalise("log prefix \"a  b \" accept"),
            "log prefix \"a  b \" accept"
        );
    }

    #[test]
    fn splits_chains_skips_objects_and_joins_wrapped_rules() {
        let text = "table inet t {\n\tset s {\n\t\ttype ipv4_addr\n\t\telements = { 1.2.3.4,\n\t\t\t5.6.7.8 }\n\t}\n\n\tchain c {\n\t\ttype filter hook input priority filter; policy drop;\n\t\ttcp dport { 1,\n\t\t\t2 } accept comment \"}{\"\n\t\tdrop\n\t}\n}\n# Warning: something\ntable ip x {\n}\n";
        let tables = parse(text).unwrap();
        assert_eq!(tables.len(), 2);
        assert_eq!(
            (tables[0].family.as_str(), tables[0].name.as_str()),
            ("inet", "t")
        );
        assert_eq!(tables[0].chains.len(), 1);
        assert_eq!(tables[0].sets.len(), 1);
        assert_eq!(
            tables[0].sets[0].lines,
            ["type ipv4_addr", "elements = { 1.2.3.4, 5.6.7.8 }"]
        );
        assert_eq!(
            tables[0].chains[0].lines,
            vec![
                "type filter hook input priority filter; policy drop;",
                "tcp dport { 1, 2 } accept comment \"}{\"",
                "drop"
            ]
        );
        assert!(parse("table inet t {\n\tchain c {\n").is_err());
        assert!(parse("}\n").is_err());
        assert!(parse("garbage\n").is_err());
    }
}
