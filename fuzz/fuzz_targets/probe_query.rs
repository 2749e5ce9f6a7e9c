//! A `/probe` request: query string, then the scrape-timeout header on the second line.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    portwarden::fuzzing::probe_query(data);
});
