//! Port lists on the command line: `21000-21999,22001` in, a `Vec<u16>` out, and back.

use anyhow::{bail, Context};

/// Parses comma-separated ports and inclusive ranges (`a-b`), keeping their order.
pub fn parse(text: &str) -> anyhow::Result<Vec<u16>> {
    let mut ports = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(item)?, port(item)?),
        };
        if lo > hi {
            bail!("port range {item} runs backwards");
        }
        ports.extend(lo..=hi);
    }
    if ports.is_empty() {
        bail!("no ports given");
    }
    Ok(ports)
}

fn port(text: &str) -> anyhow::Result<u16> {
    let p: u16 = text
        .trim()
        .parse()
        .with_context(|| format!("bad port {text:?}"))?;
    if p == 0 {
        bail!("port 0 is not a target");
    }
    Ok(p)
}

/// Writes ports as compactly as [`parse`] reads them: runs of consecutive ports become ranges.
pub fn format(ports: &[u16]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < ports.len() {
        let start = ports[i];
        let mut end = start;
        while i + 1 < ports.len() && end < u16::MAX && ports[i + 1] == end + 1 {
            end += 1;
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_single_ports_round_trip() {
        let ports = parse("21000-21003,22001, 30000-30001").unwrap();
        assert_eq!(ports, vec![21000, 21001, 21002, 21003, 22001, 30000, 30001]);
        assert_eq!(format(&ports), "21000-21003,22001,30000-30001");
        assert_eq!(parse(&format(&ports)).unwrap(), ports);
    }

    #[test]
    fn rejects_empty_zero_and_backward_ranges() {
        assert!(parse("").is_err());
        assert!(parse("0").is_err());
        assert!(parse("20-10").is_err());
        assert!(parse("http").is_err());
    }
}
