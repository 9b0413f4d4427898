//! Fuzz target: see `reid_fuzz::targets::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reid_fuzz::targets::config(data));
