//! `reid_logging_*`: the host receives the library's log lines (ONNX Runtime's included)
//! through a callback; without one nothing is written to its stderr.

use std::ffi::{CString, c_char, c_void};

use super::boundary::guard;
use super::status::{Failure, reid_status};
use crate::logging::{Level, set_callback};

/// How severe a log line is (`reid_logging_set_callback`'s `min_level`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum reid_log_level {
    /// Detailed tracing.
    REID_LOG_VERBOSE = 0,
    /// Information.
    REID_LOG_INFO = 1,
    /// Something may be wrong.
    REID_LOG_WARNING = 2,
    /// Something failed.
    REID_LOG_ERROR = 3,
    /// The source cannot continue.
    REID_LOG_FATAL = 4,
}

/// Receives one log line: `user_data`, its `reid_log_level` and its NUL-terminated text
/// (valid during the call only). It may be called from any thread, also during other calls
/// of the library, and must not call back into it.
#[allow(non_camel_case_types)]
pub type reid_log_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, level: i32, message: *const c_char)>;

/// The host's `user_data`, handed back to its callback on whatever thread logs.
struct UserData(*mut c_void);
// SAFETY: the pointer is only passed back to the host's callback, whose contract
// (`reid_logging_set_callback`) allows calls from any thread.
unsafe impl Send for UserData {}
// SAFETY: as above; the library never dereferences it.
unsafe impl Sync for UserData {}

fn level_of(value: i32) -> Option<Level> {
    Some(match value {
        0 => Level::Verbose,
        1 => Level::Info,
        2 => Level::Warning,
        3 => Level::Error,
        4 => Level::Fatal,
        _ => return None,
    })
}

/// Sends the library's log lines at `min_level` (a `reid_log_level`) or above to `callback`
/// with `user_data`; NULL stops them (the default: nothing is written anywhere). Lines come
/// from ONNX Runtime (model warnings, for example) and from the library. Thread-safe; takes
/// effect for every line logged after it returns.
///
/// Errors: `REID_INVALID_ARGUMENT` (unknown level).
///
/// # Safety
/// `callback` NULL or a function that may be called with `user_data` from any thread until
/// this function is called again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_logging_set_callback(
    callback: reid_log_callback,
    user_data: *mut c_void,
    min_level: i32,
) -> reid_status {
    guard(|| {
        let level = level_of(min_level)
            .ok_or_else(|| Failure::invalid(format!("unknown log level {min_level}")))?;
        let Some(callback) = callback else {
            set_callback(None, level);
            return Ok(());
        };
        let user_data = UserData(user_data);
        set_callback(
            Some(Box::new(move |level, message| {
                let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
                let user_data = &user_data;
                // SAFETY: the host's contract for `callback` and `user_data`.
                unsafe { callback(user_data.0, level as i32, text.as_ptr()) };
            })),
            level,
        );
        Ok(())
    })
}
