//! The statuses every fallible C call returns and the thread-local message of the last failure
//! (`reid_status`, `reid_status_str`, `reid_last_error_message`).

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::Error;

/// The result of every fallible call. The numbers are fixed and never reused; new codes are
/// only appended.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum reid_status {
    /// Success.
    REID_OK = 0,
    /// A NULL pointer where one is required, or a value out of range.
    REID_INVALID_ARGUMENT = 1,
    /// An output buffer is too small; the required size is reported where the call says.
    REID_BUFFER_TOO_SMALL = 2,
    /// A handle of the wrong type, or one already freed (detected on a best-effort basis).
    REID_INVALID_HANDLE = 3,
    /// Embeddings whose dimension differs from the gallery's or the extractor's.
    REID_DIMENSION_MISMATCH = 4,
    /// A file could not be read or written (missing, permissions, disk full).
    REID_IO_ERROR = 5,
    /// A model or weight file that cannot be used (corrupt, not a model, mismatched weights).
    REID_MODEL_ERROR = 6,
    /// An architecture name the model zoo does not know.
    REID_UNKNOWN_ARCHITECTURE = 7,
    /// The inference runtime (ONNX Runtime) could not be loaded or failed while running.
    REID_RUNTIME_ERROR = 8,
    /// One input image could not be used (undecodable, truncated, empty box); its index is
    /// in the message and no output was written.
    REID_BAD_IMAGE = 9,
    /// A gallery file that is corrupt, truncated, foreign or of another dimension; the file
    /// is left unchanged.
    REID_GALLERY_ERROR = 10,
    /// A NumPy (`.npy` / `.npz`) file that cannot be parsed or lacks an array.
    REID_DATA_FILE_ERROR = 11,
    /// A gallery entry (id) that does not exist.
    REID_NOT_FOUND = 12,
    /// A compute device that is unknown or whose backend was not compiled in.
    REID_DEVICE_ERROR = 13,
    /// The operation was cancelled by a callback.
    REID_CANCELLED = 14,
    /// A bug inside the library (a caught panic); the message says where. The handle used
    /// remains valid to free.
    REID_INTERNAL_ERROR = 15,
    /// A gallery bound to one model's embeddings was offered another model's
    /// (`reid_gallery_bind_model`).
    REID_MODEL_MISMATCH = 16,
}

use reid_status::*;

/// A failed call: the status to return and the message to keep for the caller.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: reid_status,
    pub message: String,
}

impl Failure {
    pub fn new(status: reid_status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(REID_INVALID_ARGUMENT, message)
    }

    pub fn null(what: &str) -> Self {
        Self::invalid(format!("`{what}` is NULL"))
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let status = match &error {
            Error::UnknownArchitecture { .. } => REID_UNKNOWN_ARCHITECTURE,
            Error::Io { .. } | Error::Download(_) => REID_IO_ERROR,
            Error::WeightFormat { .. } | Error::WeightMismatch { .. } | Error::ModelFormat(_) => {
                REID_MODEL_ERROR
            }
            Error::InvalidInput(_) | Error::Diverged { .. } => REID_INVALID_ARGUMENT,
            Error::Npy { .. } => REID_DATA_FILE_ERROR,
            Error::GalleryFile { .. } | Error::GalleryDatabase { .. } => REID_GALLERY_ERROR,
            Error::Runtime(_) => REID_RUNTIME_ERROR,
            Error::BadInput { .. } => REID_BAD_IMAGE,
            Error::NotFound(_) => REID_NOT_FOUND,
            Error::Device(..) => REID_DEVICE_ERROR,
            Error::Cancelled => REID_CANCELLED,
            Error::ModelMismatch { .. } => REID_MODEL_MISMATCH,
        };
        Self::new(status, error.to_string())
    }
}

pub(crate) type Outcome<T = ()> = std::result::Result<T, Failure>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Keeps `message` as this thread's last error.
pub(crate) fn remember(message: &str) {
    // Interior NULs would cut the C string short; show them instead.
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = message);
}

/// Copies the message of the last failed call on this thread into `buf` as a NUL-terminated
/// string. `*out_len` (optional) receives the message length without the NUL, also when the
/// buffer is too small, so `out_len + 1` bytes are what a retry needs. The message stays until
/// the next failure on this thread; before any failure it is empty.
///
/// Returns `REID_OK`, `REID_INVALID_ARGUMENT` (`buf` NULL with `cap` > 0) or
/// `REID_BUFFER_TOO_SMALL` (nothing written to `buf`). Thread-safe: each thread has its own
/// message. This call does not change the stored message.
///
/// # Safety
/// `buf` must be valid for writing `cap` bytes; `out_len` NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_last_error_message(
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> reid_status {
    let copy = || -> Outcome {
        if buf.is_null() && cap > 0 {
            return Err(Failure::null("buf"));
        }
        LAST_ERROR.with(|last| {
            let last = last.borrow();
            let bytes = last.as_bytes_with_nul();
            if !out_len.is_null() {
                // SAFETY: non-NULL; the caller's contract on `out_len`.
                unsafe { out_len.write(bytes.len() - 1) };
            }
            if cap < bytes.len() {
                return Err(Failure::new(
                    REID_BUFFER_TOO_SMALL,
                    "error message buffer too small",
                ));
            }
            // SAFETY: `buf` is non-NULL (cap ≥ bytes.len() > 0) and holds `cap` bytes by the
            // caller's contract.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), bytes.len()) };
            Ok(())
        })
    };
    // Not through `guard`: reading the message must not replace it.
    match catch_unwind(AssertUnwindSafe(copy)) {
        Ok(Ok(())) => REID_OK,
        Ok(Err(failure)) => failure.status,
        Err(_) => REID_INTERNAL_ERROR,
    }
}

/// A static, human-readable name for `status` ("REID_OK", …; "REID_UNKNOWN_STATUS" for a
/// number that is not a status). Never NULL; the string lives as long as the library.
#[unsafe(no_mangle)]
pub extern "C" fn reid_status_str(status: i32) -> *const c_char {
    let name: &'static CStr = match status {
        0 => c"REID_OK",
        1 => c"REID_INVALID_ARGUMENT",
        2 => c"REID_BUFFER_TOO_SMALL",
        3 => c"REID_INVALID_HANDLE",
        4 => c"REID_DIMENSION_MISMATCH",
        5 => c"REID_IO_ERROR",
        6 => c"REID_MODEL_ERROR",
        7 => c"REID_UNKNOWN_ARCHITECTURE",
        8 => c"REID_RUNTIME_ERROR",
        9 => c"REID_BAD_IMAGE",
        10 => c"REID_GALLERY_ERROR",
        11 => c"REID_DATA_FILE_ERROR",
        12 => c"REID_NOT_FOUND",
        13 => c"REID_DEVICE_ERROR",
        14 => c"REID_CANCELLED",
        15 => c"REID_INTERNAL_ERROR",
        16 => c"REID_MODEL_MISMATCH",
        _ => c"REID_UNKNOWN_STATUS",
    };
    name.as_ptr()
}
