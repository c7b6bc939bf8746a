#![no_main]
//! cargo fuzz run uwsgi: see `src/checks.rs` for the properties checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrocorn_http_fuzz::checks::uwsgi(data));
