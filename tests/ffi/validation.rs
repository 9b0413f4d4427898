//! Validation lives in the library, once: the same bad option gives the same status and the
//! same message through the Rust API and the C ABI (and, in tests/python/binding.rs, through
//! the Python binding), and a refused setter leaves the options as they were.

use crate::common;

use std::ffi::CString;

use common::bad_options::BadOption;
use reid::ffi::extractor_options::*;
use reid::ffi::gallery::{reid_gallery, reid_gallery_free, reid_gallery_new, reid_gallery_search};
use reid::ffi::search_options::{
    REID_SEARCH_MIN_SCORE, reid_search_options, reid_search_options_default,
};
use reid::ffi::status::reid_status;

/// The status and message the C ABI gives for the case.
fn c_error(case: BadOption) -> (reid_status, String) {
    let mut options = std::ptr::null_mut();
    // SAFETY: valid out pointer; every call below gets the live handle.
    unsafe {
        assert_eq!(
            reid_extractor_options_new(&mut options),
            reid_status::REID_OK
        );
        let status = match case {
            BadOption::Sessions0 => reid_extractor_options_set_threads(options, 1, 0),
            BadOption::MaxBatch0 => reid_extractor_options_set_max_batch(options, 0),
            BadOption::InputSizeZero => reid_extractor_options_set_input_size(options, 0, 128),
            BadOption::InputSizeHuge => {
                reid_extractor_options_set_input_size(options, usize::MAX, usize::MAX)
            }
            BadOption::StdZero => {
                let (mean, std) = ([0.5f32; 3], [0.0f32, 0.2, 0.2]);
                reid_extractor_options_set_normalization(
                    options,
                    1.0 / 255.0,
                    mean.as_ptr(),
                    std.as_ptr(),
                )
            }
            BadOption::UnknownDevice => {
                let name = CString::new("abacus:3").unwrap();
                reid_extractor_options_set_device(options, name.as_ptr())
            }
            BadOption::SearchK0 | BadOption::SearchNanMinScore => {
                let search = match case {
                    BadOption::SearchK0 => reid_search_options {
                        k: 0,
                        ..reid_search_options_default()
                    },
                    _ => reid_search_options {
                        k: 5,
                        min_score: f32::NAN,
                        flags: REID_SEARCH_MIN_SCORE,
                        ..reid_search_options_default()
                    },
                };
                search_status(&search)
            }
        };
        let message = common::c_last_error();
        reid_extractor_options_free(options);
        (status, message)
    }
}

/// A search of a small gallery with `options`.
fn search_status(options: &reid_search_options) -> reid_status {
    let mut gallery: *mut reid_gallery = std::ptr::null_mut();
    let query = [1.0f32, 0.0, 0.0, 0.0];
    let mut matches = [Default::default(); 4];
    let mut len = 0;
    // SAFETY: valid pointers and sizes; the gallery is freed below.
    unsafe {
        assert_eq!(reid_gallery_new(4, 0, &mut gallery), reid_status::REID_OK);
        let status = reid_gallery_search(
            gallery,
            query.as_ptr(),
            4,
            options,
            matches.as_mut_ptr(),
            matches.len(),
            &mut len,
        );
        reid_gallery_free(gallery);
        status
    }
}

fn expected_status(error: &reid::Error) -> reid_status {
    match error {
        reid::Error::InvalidInput(_) => reid_status::REID_INVALID_ARGUMENT,
        reid::Error::Device(..) => reid_status::REID_DEVICE_ERROR,
        other => panic!("unexpected kind of validation error: {other:?}"),
    }
}

#[test]
fn the_same_bad_option_gives_the_same_error_from_rust_and_c() {
    for case in BadOption::ALL {
        let rust = case.rust_error();
        let (status, message) = c_error(case);
        assert_eq!(status, expected_status(&rust), "{case:?}: status");
        assert_eq!(message, rust.to_string(), "{case:?}: message");
    }
}

#[test]
fn a_refused_setter_changes_nothing() {
    let mut options = std::ptr::null_mut();
    // SAFETY: valid out pointer; the handle stays live until freed.
    unsafe {
        assert_eq!(
            reid_extractor_options_new(&mut options),
            reid_status::REID_OK
        );
        assert_eq!(
            reid_extractor_options_set_input_size(options, 64, 32),
            reid_status::REID_OK
        );
        assert_ne!(
            reid_extractor_options_set_input_size(options, usize::MAX, 32),
            reid_status::REID_OK
        );
        assert_eq!((*options).options().overrides.size, Some((64, 32)));
        reid_extractor_options_free(options);
    }
}
