//! Fuzz target: see `reid_fuzz::targets::state_dict`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reid_fuzz::targets::state_dict(data));
