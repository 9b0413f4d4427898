//! Fuzz target: see `reid_fuzz::targets::split_files`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reid_fuzz::targets::split_files(data));
