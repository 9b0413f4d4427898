//! Loading ONNX Runtime: a failed load is not remembered (a later extractor with a good
//! library works), and a second, different library after a successful load is a clear error;
//! ONNX Runtime's own log lines reach the host's callback and never its stderr. Each sequence
//! needs a process in which ONNX Runtime was never loaded, so it runs in a child of its test.
//! (The message of a failed search is checked in `src/extractor/runtime.rs`.)

use crate::common;

use std::path::Path;
use std::process::Command;

use reid::export::{ExportOptions, export_onnx_file};
use reid::extractor::{Extractor, ExtractorOptions};
use reid::models::{Arch, ReidModel};

/// Runs `child` (an ignored test of this module) alone in a fresh process, checks it passed,
/// and returns what it wrote on stderr.
fn run_child(child: &str) -> String {
    let (_, module) = module_path!().split_once("::").unwrap();
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([
        "--exact",
        &format!("{module}::{child}"),
        "--ignored",
        "--test-threads=1",
    ]);
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{child}:\n{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout),
    );
    stderr
}

fn small_model(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("model.onnx");
    let model = ReidModel::new(Arch::OsnetX0_25, 1, &reid::device::default_device());
    export_onnx_file(&model, &ExportOptions::new(64, 32), &path).unwrap();
    path
}

fn with_library(library: &Path) -> ExtractorOptions {
    ExtractorOptions {
        ort_library: Some(library.to_path_buf()),
        ..Default::default()
    }
}

#[test]
#[ignore = "child process of a_failed_load_is_retried_and_a_second_library_refused"]
fn child_failed_load_then_good_then_another() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path());
    let wrong = dir.path().join("nowhere/libonnxruntime.so");
    let err = Extractor::new(&model, &with_library(&wrong))
        .err()
        .expect("no library there");
    assert!(err.to_string().contains("(absent)"), "{err}");
    // The failure is not kept: the library found in the usual places loads now.
    let extractor = Extractor::new(&model, &ExtractorOptions::default()).unwrap();
    assert_eq!(extractor.dim(), 512);
    let loaded = reid::extractor::runtime::loaded_library()
        .unwrap()
        .to_path_buf();
    // The same file again is fine; another copy of it is not (one ONNX Runtime per process).
    Extractor::new(&model, &with_library(&loaded)).unwrap();
    let copy = dir.path().join("libonnxruntime.so");
    std::fs::copy(&loaded, &copy).unwrap();
    let err = Extractor::new(&model, &with_library(&copy))
        .err()
        .expect("a second library");
    let message = err.to_string();
    assert!(
        message.contains("already loaded from") && message.contains(copy.to_str().unwrap()),
        "{message}"
    );
}

#[test]
fn a_failed_load_is_retried_and_a_second_library_refused() {
    if !common::ort_available() {
        return;
    }
    run_child("child_failed_load_then_good_then_another");
}

/// A small export with one initializer no node uses: ONNX Runtime logs a warning for it when
/// it loads the model.
fn model_onnx_runtime_warns_about(dir: &Path) -> std::path::PathBuf {
    let path = small_model(dir);
    common::add_unused_initializer(&path);
    path
}

/// What the child's callback received: (level, line).
static LINES: std::sync::Mutex<Vec<(i32, String)>> = std::sync::Mutex::new(Vec::new());

unsafe extern "C" fn collect_line(
    _user_data: *mut std::ffi::c_void,
    level: i32,
    message: *const std::ffi::c_char,
) {
    // SAFETY: a NUL-terminated string valid during the call.
    let line = unsafe { std::ffi::CStr::from_ptr(message) }.to_string_lossy();
    LINES.lock().unwrap().push((level, line.into_owned()));
}

#[test]
#[ignore = "child process of onnx_runtime_logs_reach_the_callback_and_never_stderr"]
fn child_warning_with_a_callback() {
    use reid::ffi::logging::{reid_log_level, reid_logging_set_callback};
    use reid::ffi::status::reid_status;
    let warning = reid_log_level::REID_LOG_WARNING as i32;
    // SAFETY: a callback callable from any thread, no user data.
    let status =
        unsafe { reid_logging_set_callback(Some(collect_line), std::ptr::null_mut(), warning) };
    assert_eq!(status, reid_status::REID_OK);
    let dir = tempfile::tempdir().unwrap();
    let model = model_onnx_runtime_warns_about(dir.path());
    Extractor::new(&model, &ExtractorOptions::default()).unwrap();
    let lines = LINES.lock().unwrap();
    assert!(
        lines
            .iter()
            .any(|(level, line)| *level == warning && line.contains(common::UNUSED_INITIALIZER)),
        "{lines:?}"
    );
    assert!(
        lines.iter().all(|(level, _)| *level >= warning),
        "{lines:?}"
    );
}

#[test]
#[ignore = "child process of onnx_runtime_logs_reach_the_callback_and_never_stderr"]
fn child_warning_without_a_callback() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_onnx_runtime_warns_about(dir.path());
    Extractor::new(&model, &ExtractorOptions::default()).unwrap();
}

#[test]
fn onnx_runtime_logs_reach_the_callback_and_never_stderr() {
    if !common::ort_available() {
        return;
    }
    for child in [
        "child_warning_with_a_callback",
        "child_warning_without_a_callback",
    ] {
        let stderr = run_child(child);
        assert!(
            !stderr.contains(common::UNUSED_INITIALIZER),
            "{child} wrote on stderr:\n{stderr}"
        );
    }
}
