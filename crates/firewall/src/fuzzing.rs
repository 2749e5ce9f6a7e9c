//! Entry points for the fuzz targets (`fuzz/`, see docs/fuzzing.md): each takes what a tool
//! printed, runs the real parser on it and checks what is cheap to check beyond "no panic".
//! Not an API: hidden from the docs, and nothing else calls it.

use crate::exec::Output;
use crate::iptables::{self, Variant};
use crate::model::Family;
use crate::nftables::{json, parse_generation, state, text};
use crate::{firewalld, macos, ufw, windows};

/// Every parser, picked by the first byte (modulo their count; seeds in
/// `fuzz/corpus/firewall_output/` start with it); the rest is the tool's output.
pub fn firewall_output(data: &[u8]) {
    const PARSERS: &[fn(&str)] = &[
        nft_json,
        nft_text,
        nft_monitor,
        iptables_save,
        ufw,
        firewalld,
        windows_profiles,
        pfctl,
    ];
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    if let Ok(text) = std::str::from_utf8(rest) {
        PARSERS[usize::from(which) % PARSERS.len()](text);
    }
}

/// `nft -j list ruleset`: parse, then judge the ruleset as `inspect` does (with an empty and
/// with a matching text listing).
pub fn nft_json(input: &str) {
    let Ok(ruleset) = json::parse(input) else {
        return;
    };
    for table in &ruleset.tables {
        let _ = table.id();
        let _ = table.is_iptables_nft();
        for chain in &table.chains {
            let _ = chain.is_input_filter();
            for rule in &chain.rules {
                let _ = state::simple_rule(&rule.expr, true);
                let _ = state::simple_rule(&rule.expr, false);
            }
        }
    }
    let _ = state::build(&ruleset, &[], None);
    // A listing with one line per rule under every chain: the text side always fits, so
    // every error left comes from the JSON side.
    let listing: Vec<text::TextTable> = ruleset
        .tables
        .iter()
        .map(|t| text::TextTable {
            family: t.family.clone(),
            name: t.name.clone(),
            chains: t
                .chains
                .iter()
                .map(|c| text::TextChain {
                    name: c.name.clone(),
                    lines: (0..c.rules.len()).map(|i| format!("rule {i}")).collect(),
                })
                .collect(),
            sets: Vec::new(),
        })
        .collect();
    let _ = state::build(&ruleset, &listing, None);
}

/// `nft -s list ruleset`: parse; every line kept is already normalised.
pub fn nft_text(input: &str) {
    let Ok(tables) = text::parse(input) else {
        return;
    };
    for table in &tables {
        let lines = table
            .chains
            .iter()
            .flat_map(|c| &c.lines)
            .chain(table.sets.iter().flat_map(|s| &s.lines));
        for line in lines {
            assert_eq!(
                &text::normalise(line),
                line,
                "a kept line is not normalised"
            );
        }
    }
}

/// One `nft monitor` line: a parsed generation line, printed again, parses the same.
pub fn nft_monitor(input: &str) {
    let Some((generation, pid, comm)) = parse_generation(input) else {
        return;
    };
    let again = format!("# new generation {generation} by process {pid} ({comm})");
    assert_eq!(
        parse_generation(&again),
        Some((generation, pid, comm)),
        "a generation line does not round-trip"
    );
}

/// `iptables-save`: parse and build the state; the guarded restore text made from it, less
/// its `-F` (flush) lines, reads back with INPUT as saved.
pub fn iptables_save(input: &str) {
    let Ok(tables) = iptables::parse_save("fuzz", input) else {
        return;
    };
    let _ = iptables::state_from(Variant::Nft, &tables, &tables);
    let _ = iptables::inbound_of(Family::Ipv4, &tables);
    let Ok(restore) = iptables::guarded_restore_text("fuzz", input) else {
        return;
    };
    let without_flush: String = restore
        .lines()
        .filter(|l| !l.starts_with("-F "))
        .map(|l| format!("{l}\n"))
        .collect();
    let input_of = |tables: &[iptables::Table]| {
        tables
            .iter()
            .find(|t| t.name == "filter")
            .and_then(|t| t.chains.iter().find(|c| c.name == "INPUT"))
            .cloned()
    };
    match iptables::parse_save("restore", &without_flush) {
        Ok(back) => assert_eq!(
            input_of(&back),
            input_of(&tables),
            "INPUT changed on its way through the restore text:\n{restore}"
        ),
        Err(e) => panic!("the guarded restore text does not read back: {e}\n{restore}"),
    }
}

/// ufw: `ufw.conf`, `ufw status verbose`, `iptables --version`.
pub fn ufw(input: &str) {
    let _ = ufw::parse_conf("fuzz", input);
    let _ = ufw::parse_status(input);
    let _ = ufw::parse_iptables_version(input);
}

/// firewall-cmd: `--state` output (stdout and stderr, three exit codes) and `nft list tables`.
pub fn firewalld(input: &str) {
    for code in [Some(0), Some(252), None] {
        let out = Output {
            code,
            stdout: input.to_string(),
            stderr: input.to_string(),
        };
        let _ = firewalld::parse_state(&out);
    }
    if let Ok(tables) = firewalld::parse_tables(input) {
        let daemon = firewalld::Daemon::Running;
        let _ = firewalld::combine(&daemon, &tables, None);
    }
}

/// Windows: the PowerShell JSON of `Get-NetFirewallProfile`.
pub fn windows_profiles(input: &str) {
    let _ = windows::parse_profiles(input);
}

/// macOS: `pfctl -s info`, `pfctl -s rules`, the application firewall's state, and the
/// state built from pfctl's output.
pub fn pfctl(input: &str) {
    let _ = macos::parse_pf_status(input);
    let _ = macos::parse_pf_rules(input);
    let _ = macos::parse_app_firewall(input);
    let out = Output {
        code: Some(0),
        stdout: input.to_string(),
        stderr: input.to_string(),
    };
    let _ = macos::pfctl_complaint(&out);
    let _ = macos::pf_state(&macos::pf_info_command(), &out, Ok(&out));
}

#[cfg(test)]
mod tests {
    /// The committed seeds and past findings (docs/fuzzing.md) keep holding the invariants.
    #[test]
    fn the_firewall_output_corpus_holds_the_invariants() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fuzz/corpus/firewall_output"
        );
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("the corpus exists") {
            super::firewall_output(&std::fs::read(entry.unwrap().path()).unwrap());
            seen += 1;
        }
        assert!(seen > 10, "only {seen} seeds");
    }
}
