//! The protocol reply parsers (SMTP/FTP multi-line replies, SSH identification, LDAP BER,
//! MySQL handshake, HTTP status line, POP3, IMAP, …) through each preset's dialog; the first
//! byte picks the preset. Invariants: `portwarden_probe::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    portwarden_probe::fuzzing::reply_parsers(data);
});
