//! The boundary every C call crosses: panic catching and checked conversion of the caller's
//! pointers. Statuses and the last error message are in [`super::status`].

use std::cell::Cell;
use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::status::reid_status::{REID_INTERNAL_ERROR, REID_OK};
use super::status::{Failure, Outcome, reid_status, remember};

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

thread_local! {
    /// Entry points running on this thread (nested when a callback calls back in).
    static CALLS_HERE: Cell<usize> = const { Cell::new(0) };
}
/// Entry points running on any thread.
static CALLS: AtomicUsize = AtomicUsize::new(0);
static QUIET_HOOK: Once = Once::new();

/// Whether a panic here is caught by an entry point and reported through its status: the
/// panicking thread runs one, or is a worker of the pool the entry points compute on while one
/// runs (rayon hands a worker's panic to the calling thread).
fn caught_by_an_entry_point() -> bool {
    CALLS_HERE.with(Cell::get) > 0
        || (rayon::current_thread_index().is_some() && CALLS.load(Ordering::SeqCst) > 0)
}

/// Replaces the panic hook, once, by one that is silent for panics an entry point catches: the
/// host gets them as `REID_INTERNAL_ERROR` and the last error message, and nothing on its
/// stderr. Other panics go to the hook that was there before.
fn install_quiet_hook() {
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !caught_by_an_entry_point() {
                previous(info);
            }
        }));
    });
}

/// Runs `body` counted as an entry point, catching its panics quietly.
fn catch<T>(body: impl FnOnce() -> T) -> std::thread::Result<T> {
    install_quiet_hook();
    CALLS_HERE.with(|c| c.set(c.get() + 1));
    CALLS.fetch_add(1, Ordering::SeqCst);
    let result = catch_unwind(AssertUnwindSafe(body));
    CALLS.fetch_sub(1, Ordering::SeqCst);
    CALLS_HERE.with(|c| c.set(c.get() - 1));
    result
}

/// Runs the body of a fallible entry point: a failure or a panic becomes a status and the
/// thread's last error message.
pub(crate) fn guard(body: impl FnOnce() -> Outcome) -> reid_status {
    match catch(body) {
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
    match catch(body) {
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

/// The caller's `count` embeddings of `dim` floats, row-major.
///
/// # Safety
/// As for [`input_slice`], with `count × dim` floats.
pub(crate) unsafe fn input_rows<'a>(
    ptr: *const f32,
    count: usize,
    dim: usize,
    what: &str,
) -> Outcome<&'a [f32]> {
    let total = count
        .checked_mul(dim)
        .ok_or_else(|| Failure::invalid(format!("`{what}`: {count} × {dim} overflows")))?;
    // SAFETY: forwarded contract.
    unsafe { input_slice(ptr, total, what) }
}

/// Checks that the caller's `dim` is `expected`, the dimension of `holder` ("a gallery").
pub(crate) fn same_dim(expected: usize, dim: usize, holder: &str) -> Outcome {
    if dim == expected {
        Ok(())
    } else {
        Err(Failure::new(
            reid_status::REID_DIMENSION_MISMATCH,
            format!("{dim}-d embeddings given to {holder} of {expected}-d"),
        ))
    }
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

/// Copies `text` into the caller's `buf` (`cap` bytes) as a NUL-terminated string; `*out_len`
/// (optional) receives its length without the NUL, also when the buffer is too small
/// (`REID_BUFFER_TOO_SMALL`, nothing written; `what` names the text in the message).
///
/// # Safety
/// `buf` valid for writing `cap` bytes (NULL only with `cap` 0); `out_len` NULL or writable.
pub(crate) unsafe fn write_text(
    text: &str,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
    what: &str,
) -> Outcome {
    // SAFETY: forwarded contract.
    unsafe { copy_out(text.as_bytes(), true, buf.cast::<u8>(), cap, out_len, what) }
}

/// Copies `bytes` into the caller's `buf` (`cap` bytes); `*out_len` (optional) receives their
/// number, also when the buffer is too small (`REID_BUFFER_TOO_SMALL`, nothing written).
///
/// # Safety
/// As [`write_text`].
pub(crate) unsafe fn write_bytes(
    bytes: &[u8],
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
    what: &str,
) -> Outcome {
    // SAFETY: forwarded contract.
    unsafe { copy_out(bytes, false, buf, cap, out_len, what) }
}

/// [`write_text`] and [`write_bytes`]: `bytes`, then a NUL when `nul`.
///
/// # Safety
/// As [`write_text`].
unsafe fn copy_out(
    bytes: &[u8],
    nul: bool,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
    what: &str,
) -> Outcome {
    if buf.is_null() && cap > 0 {
        return Err(Failure::null("buf"));
    }
    // SAFETY: the caller's contract.
    unsafe { write_optional(out_len, bytes.len()) };
    let needed = bytes.len() + usize::from(nul);
    if cap < needed {
        return Err(Failure::new(
            super::status::reid_status::REID_BUFFER_TOO_SMALL,
            format!("{what} needs {needed} bytes, the buffer holds {cap}"),
        ));
    }
    // SAFETY: the caller's contract.
    let out = unsafe { output_slice(buf, needed, "buf") }?;
    out[..bytes.len()].copy_from_slice(bytes);
    if nul {
        out[bytes.len()] = 0;
    }
    Ok(())
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

    /// Panics inside entry points, on the calling thread and on a pool worker, then one
    /// outside any: run alone by the test below, which reads what reached stderr.
    #[test]
    #[ignore = "child process of caught_panics_print_nothing"]
    fn child_panics_inside_and_outside_entry_points() {
        use rayon::prelude::*;
        assert_eq!(
            guard(|| panic!("caught on the caller")),
            REID_INTERNAL_ERROR
        );
        let status = guard(|| {
            (0..64).into_par_iter().for_each(|i| {
                if i == 37 {
                    panic!("caught on a worker")
                }
            });
            Ok(())
        });
        assert_eq!(status, REID_INTERNAL_ERROR);
        assert!(message().contains("caught on a worker"), "{}", message());
        let outside = std::thread::spawn(|| panic!("not caught by reid")).join();
        assert!(outside.is_err());
    }

    #[test]
    fn caught_panics_print_nothing() {
        let (_, module) = module_path!().split_once("::").unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                &format!("{module}::child_panics_inside_and_outside_entry_points"),
            ])
            .args(["--ignored", "--nocapture", "--test-threads=1"])
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("caught on"), "{stderr}");
        // A panic of the host's own (outside any entry point) still reaches the old hook.
        assert!(stderr.contains("not caught by reid"), "{stderr}");
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
