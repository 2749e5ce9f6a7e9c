//! The Nagios / check_tcp-style command line: NUL-separated arguments.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    portwarden::fuzzing::nagios_args(data);
});
