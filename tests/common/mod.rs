//! Helpers shared by integration tests (each test file includes this module).

// Each test crate uses only some of these.
#![allow(dead_code)]

pub mod bad_options;
pub mod database;
pub mod file_server;
pub mod hashed_weights;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The Python interpreter of `REID_PYTHON` (else `python3`) when it can import every module
/// of `modules`; `None` (the caller skips) when it cannot, unless CI's
/// `REID_REQUIRE_ONNX_CHECK` demands it, which fails instead.
pub fn python_with(modules: &[&str]) -> Option<String> {
    let python = std::env::var("REID_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", &format!("import {}", modules.join(", "))])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    let missing = modules.join(" / ");
    assert!(
        std::env::var("REID_REQUIRE_ONNX_CHECK").is_err(),
        "REID_REQUIRE_ONNX_CHECK is set but {python} lacks {missing}"
    );
    eprintln!("skipped: {python} lacks {missing}");
    None
}

/// Checks the output of the C, C++ and Python examples: every image finds itself first, and the
/// reopened gallery holds all of them.
pub fn check_example_output(stdout: &str, count: usize) {
    for i in 0..count {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("query {i}:")))
            .unwrap_or_else(|| panic!("no results for query {i}:\n{stdout}"));
        assert!(
            line.starts_with(&format!("query {i}:  identity {i} (1.000)")),
            "{line}"
        );
    }
    assert!(
        stdout.contains(&format!(
            "{count} entries; best match of image 0: identity 0 (1.000)"
        )),
        "{stdout}"
    );
}

/// Model outputs agree: max |Δ| ≤ 1e-4 × max(1, max |ref|), the zoo's tolerance; and the
/// reference is not ~0 (which would make the comparison meaningless).
pub fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        worst <= 1e-4 * scale,
        "{what}: max |Δ| = {worst:e} > 1e-4 × {scale}"
    );
    assert!(
        want.iter().any(|v| v.abs() > 1e-3),
        "{what}: the reference output is ~0"
    );
    eprintln!("{what}: max |Δ| = {worst:.3e} (scale {scale:.3})");
}

/// The message of the last failed C call on this thread (`reid_last_error_message`).
pub fn c_last_error() -> String {
    let mut buf = vec![0 as std::ffi::c_char; 2048];
    // SAFETY: buf holds 2048 bytes.
    let status = unsafe {
        reid::ffi::status::reid_last_error_message(
            buf.as_mut_ptr(),
            buf.len(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(status, reid::ffi::status::reid_status::REID_OK);
    // SAFETY: NUL-terminated by the call.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// A small synthetic dataset in the folder-per-identity layout the finetuner reads.
pub fn identity_folder_dataset(dir: &Path) -> PathBuf {
    let market = dir.join("market1501");
    let options = reid::data::SynthOptions {
        ids: 16,
        cameras: 3,
        distractors: 4,
        height: 64,
        width: 32,
        seed: 4,
        ..Default::default()
    };
    reid::data::synthesize(&market, &options).unwrap();
    let data = reid::data::load_dataset("market1501", &market).unwrap();
    let root = dir.join("people");
    for (split, samples) in [
        ("train", &data.train),
        ("query", &data.query),
        ("gallery", &data.gallery),
    ] {
        for s in samples.iter() {
            let folder = root.join(split).join(s.pid.to_string());
            std::fs::create_dir_all(&folder).unwrap();
            let name = s.path.file_name().unwrap().to_string_lossy();
            std::fs::copy(&s.path, folder.join(format!("{}_{name}", s.camera))).unwrap();
        }
    }
    root
}

/// ONNX Runtime, when its library can be found (CI installs it, and `REID_REQUIRE_ONNX_CHECK`
/// makes its absence a failure).
pub fn ort_available() -> bool {
    engine_available(reid::extractor::Engine::OnnxRuntime)
}

/// The engine `engine`, when its runtime library can be found (CI installs ONNX Runtime and
/// OpenVINO, and `REID_REQUIRE_ONNX_CHECK` makes their absence a failure).
pub fn engine_available(engine: reid::extractor::Engine) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.onnx");
    let model =
        reid::models::ReidModel::new(reid::Arch::OsnetX0_25, 1, &reid::device::default_device());
    reid::export::export_onnx_file(&model, &reid::export::ExportOptions::new(64, 32), &path)
        .unwrap();
    let options = reid::ExtractorOptions {
        engine,
        ..Default::default()
    };
    match reid::Extractor::new(&path, &options) {
        Ok(_) => true,
        Err(reid::Error::Runtime(message)) => {
            assert!(
                std::env::var("REID_REQUIRE_ONNX_CHECK").is_err(),
                "{engine:?} required but not found: {message}"
            );
            eprintln!("skipped the {engine:?} part: {message}");
            false
        }
        Err(other) => panic!("{other}"),
    }
}

/// A file under `tests/fixtures`.
pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// Asserts that a finished command succeeded (showing its stderr when not).
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The name of the initializer `add_unused_initializer` adds.
pub const UNUSED_INITIALIZER: &str = "unused_by_any_node";

/// Adds to the ONNX file at `path` one initializer no node uses, which ONNX Runtime logs a
/// warning about when it loads the model.
pub fn add_unused_initializer(path: &Path) {
    use onnx_protobuf::{Message, ModelProto, TensorProto};
    let mut model = ModelProto::parse_from_bytes(&std::fs::read(path).unwrap()).unwrap();
    let mut unused = TensorProto::new();
    unused.name = UNUSED_INITIALIZER.into();
    unused.data_type = 1; // FLOAT
    unused.dims = vec![1];
    unused.float_data = vec![0.0];
    model.graph.as_mut().unwrap().initializer.push(unused);
    std::fs::write(path, model.write_to_bytes().unwrap()).unwrap();
}
