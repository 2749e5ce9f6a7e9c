//! Plain-text tables for the CLI: left-aligned columns, two spaces apart.

/// Lays out `rows` under `titles`; returns the header line and one line per row (without
/// colour, so callers can style whole lines).
pub fn layout<const N: usize>(titles: [&str; N], rows: &[[String; N]]) -> (String, Vec<String>) {
    let mut widths = titles.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String; N]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    (
        line(&titles.map(String::from)),
        rows.iter().map(line).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_columns_to_the_widest_cell() {
        let (header, lines) = layout(
            ["A", "BB"],
            &[["xyz".into(), "1".into()], ["q".into(), "".into()]],
        );
        assert_eq!(header, "A    BB");
        assert_eq!(lines, vec!["xyz  1", "q"]);
    }
}
