//! The config loader (TOML → checked config) on arbitrary text.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        portwarden::fuzzing::config(text);
    }
});
