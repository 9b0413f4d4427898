//! Fuzz target: see `reid_fuzz::targets::image`.
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: {
        reid_fuzz::set_allocation_limit(reid_fuzz::targets::IMAGE_ALLOCATION_LIMIT);
    },
    |data: &[u8]| reid_fuzz::targets::image(data)
);
