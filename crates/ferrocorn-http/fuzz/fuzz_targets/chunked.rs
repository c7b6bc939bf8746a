#![no_main]
//! cargo fuzz run chunked: see `src/checks.rs` for the properties checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrocorn_http_fuzz::checks::chunked(data));
