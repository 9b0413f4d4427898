//! The library's version at run time (the header carries it as `REID_VERSION_*` macros).

use std::ffi::c_char;

/// The library version, "MAJOR.MINOR.PATCH", as a static NUL-terminated string (never NULL,
/// never freed). Compare it with `REID_VERSION_*` to detect a header / library mismatch.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn reid_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
