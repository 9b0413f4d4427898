//! Fuzz target: see `reid_fuzz::targets::npz`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reid_fuzz::targets::npz(data));
