//! Fuzz target: see `reid_fuzz::targets::video_splits`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reid_fuzz::targets::video_splits(data));
