//! Every firewall tool's output parser (nft JSON and text, nft monitor, iptables-save, ufw,
//! firewall-cmd, PowerShell JSON, pfctl); the first byte picks the parser, coverage guidance
//! learns the choice. Invariants: `portwarden_firewall::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    portwarden_firewall::fuzzing::firewall_output(data);
});
