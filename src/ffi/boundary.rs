//! The boundary every C call crosses: status codes, the thread-local error message, panic
//! catching, and checked conversion of the caller's pointers.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

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
            Error::Io { .. } => REID_IO_ERROR,
            Error::WeightFormat { .. } | Error::WeightMismatch { .. } | Error::ModelFormat(_) => {
                REID_MODEL_ERROR
            }
            Error::InvalidInput(_) => REID_INVALID_ARGUMENT,
            Error::Npy { .. } => REID_DATA_FILE_ERROR,
            Error::GalleryFile { .. } => REID_GALLERY_ERROR,
            Error::Runtime(_) => REID_RUNTIME_ERROR,
            Error::BadInput { .. } => REID_BAD_IMAGE,
            Error::NotFound(_) => REID_NOT_FOUND,
            Error::Device(..) => REID_DEVICE_ERROR,
            Error::Cancelled => REID_CANCELLED,
        };
        Self::new(status, error.to_string())
    }
}

pub(crate) type Outcome<T = ()> = std::result::Result<T, Failure>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn remember(message: &str) {
    // Interior NULs would cut the C string short; show them instead.
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = message);
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs the body of a fallible entry point: a failure or a panic becomes a status and the
/// thread's last error message.
pub(crate) fn guard(body: impl FnOnce() -> Outcome) -> reid_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => REID_OK,
        Ok(Err(failure)) => {
            remember(&failure.message);
            failure.status
        }
        Err(payload) => {
            remember(&format!(
                "internal error (please report): {}",
                panic_message(payload.as_ref())
            ));
            REID_INTERNAL_ERROR
        }
    }
}

/// Runs the body of an infallible getter: any failure or panic gives `neutral`.
pub(crate) fn guard_value<T>(neutral: T, body: impl FnOnce() -> Outcome<T>) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        _ => neutral,
    }
}

/// Refuses a NULL array of `len` > 0 items, or one larger than memory can hold.
fn check_array<T>(is_null: bool, len: usize, what: &str) -> Outcome {
    if is_null {
        return Err(Failure::null(what));
    }
    if len
        .checked_mul(size_of::<T>())
        .is_none_or(|b| b > isize::MAX as usize)
    {
        return Err(Failure::invalid(format!(
            "`{what}`: {len} items is too many"
        )));
    }
    Ok(())
}

/// The caller's input array of `len` items (`ptr` may be NULL only when `len` is 0).
///
/// # Safety
/// `ptr` must point to `len` initialized items that stay valid for the call.
pub(crate) unsafe fn input_slice<'a, T>(ptr: *const T, len: usize, what: &str) -> Outcome<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    check_array::<T>(ptr.is_null(), len, what)?;
    // SAFETY: non-NULL, size checked; validity of the memory is the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The caller's output array of `len` items (`ptr` may be NULL only when `len` is 0).
///
/// # Safety
/// `ptr` must point to `len` writable items that stay valid for the call.
pub(crate) unsafe fn output_slice<'a, T>(
    ptr: *mut T,
    len: usize,
    what: &str,
) -> Outcome<&'a mut [T]> {
    if len == 0 {
        return Ok(&mut []);
    }
    check_array::<T>(ptr.is_null(), len, what)?;
    // SAFETY: as for `input_slice`.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// Checks an output pointer before any work is done, so a NULL is reported without side
/// effects.
pub(crate) fn require_out<T>(ptr: *mut T, what: &str) -> Outcome {
    if ptr.is_null() {
        Err(Failure::null(what))
    } else {
        Ok(())
    }
}

/// Writes `value` through an optional output pointer (NULL: the caller does not want it).
///
/// # Safety
/// A non-NULL `ptr` must be valid for writing one `T`.
pub(crate) unsafe fn write_optional<T>(ptr: *mut T, value: T) {
    if !ptr.is_null() {
        // SAFETY: non-NULL; validity is the caller's contract.
        unsafe { ptr.write(value) };
    }
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// A non-NULL `ptr` must point to a NUL-terminated string valid for the call.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, what: &str) -> Outcome<&'a str> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL and NUL-terminated by contract.
    let raw = unsafe { CStr::from_ptr(ptr) };
    raw.to_str()
        .map_err(|_| Failure::invalid(format!("`{what}` is not valid UTF-8")))
}

/// A NUL-terminated path argument (any bytes on Unix, UTF-8 elsewhere).
///
/// # Safety
/// As for [`text`].
pub(crate) unsafe fn path(ptr: *const c_char, what: &str) -> Outcome<PathBuf> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL and NUL-terminated by contract.
    let raw = unsafe { CStr::from_ptr(ptr) };
    if raw.is_empty() {
        return Err(Failure::invalid(format!("`{what}` is empty")));
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(raw.to_bytes())))
    }
    #[cfg(not(unix))]
    {
        raw.to_str()
            .map(PathBuf::from)
            .map_err(|_| Failure::invalid(format!("`{what}` is not valid UTF-8")))
    }
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
            // SAFETY: caller's contract on `out_len`.
            unsafe { write_optional(out_len, bytes.len() - 1) };
            if cap < bytes.len() {
                return Err(Failure::new(
                    REID_BUFFER_TOO_SMALL,
                    "error message buffer too small",
                ));
            }
            // SAFETY: caller's contract on `buf` / `cap`.
            let out = unsafe { output_slice(buf.cast::<u8>(), bytes.len(), "buf") }?;
            out.copy_from_slice(bytes);
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
        _ => c"REID_UNKNOWN_STATUS",
    };
    name.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> String {
        let mut buf = vec![0 as c_char; 512];
        let mut len = 0;
        // SAFETY: buf holds 512 bytes.
        let status = unsafe { reid_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) };
        assert_eq!(status, REID_OK);
        // SAFETY: NUL-terminated by the call.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_an_internal_error_with_its_message() {
        let status = guard(|| panic!("deliberate test panic"));
        assert_eq!(status, REID_INTERNAL_ERROR);
        assert!(message().contains("deliberate test panic"), "{}", message());
        assert_eq!(guard_value(7usize, || panic!("in a getter")), 7);
    }

    #[test]
    fn messages_are_per_thread_and_survive_success() {
        let status = guard(|| Err(Failure::invalid("first thread's failure")));
        assert_eq!(status, REID_INVALID_ARGUMENT);
        std::thread::spawn(|| {
            assert_eq!(message(), "");
            guard(|| Err(Failure::invalid("second thread's failure")));
            assert_eq!(message(), "second thread's failure");
        })
        .join()
        .unwrap();
        assert_eq!(guard(|| Ok(())), REID_OK);
        assert_eq!(message(), "first thread's failure");
    }

    #[test]
    fn crate_errors_map_to_their_status() {
        let cases = [
            (Error::InvalidInput("x".into()), REID_INVALID_ARGUMENT),
            (Error::ModelFormat("x".into()), REID_MODEL_ERROR),
            (Error::NotFound("x".into()), REID_NOT_FOUND),
            (Error::Runtime("x".into()), REID_RUNTIME_ERROR),
            (
                Error::BadInput {
                    index: 3,
                    reason: "x".into(),
                },
                REID_BAD_IMAGE,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(Failure::from(error).status, status);
        }
        // SAFETY: reid_status_str returns static NUL-terminated strings.
        let name = |s: i32| {
            unsafe { CStr::from_ptr(reid_status_str(s)) }
                .to_str()
                .unwrap()
        };
        assert_eq!(name(REID_BAD_IMAGE as i32), "REID_BAD_IMAGE");
        assert_eq!(name(REID_INTERNAL_ERROR as i32), "REID_INTERNAL_ERROR");
    }
}
