//! Fuzz target: see `reid_fuzz::targets::onnx`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reid_fuzz::targets::onnx(data));
