//! The boundary every C call crosses: panic catching and checked conversion of the caller's
//! pointers. Statuses and the last error message are in [`super::status`].

use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use super::status::reid_status::{REID_INTERNAL_ERROR, REID_OK};
use super::status::{Failure, Outcome, reid_status, remember};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::ffi::status::{reid_last_error_message, reid_status::*, reid_status_str};

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
