//! The Python binding (`bindings/python/reid`, ctypes over the C ABI) against the Rust API:
//! this test exports a re-id model and a classifier, computes with the Rust `Extractor` and
//! `Classifier` what the binding must reproduce, and runs `bindings/python/tests/
//! test_binding.py` with the `libreid.so` that `cargo test` built. The script checks
//! embeddings, the gallery against NumPy, classification, finetuning with its progress
//! callback, and the error paths.
//!
//! Needs a Python with NumPy and the `onnxruntime` package (`REID_PYTHON`); CI sets
//! `REID_REQUIRE_ONNX_CHECK`, which turns a missing one into a failure instead of a skip.

use crate::common;

use common::bad_options::BadOption;

use std::path::{Path, PathBuf};
use std::process::Command;

use reid::classifier::Classifier;
use reid::export::{ExportOptions, export_onnx_file};
use reid::extractor::{Extractor, ExtractorOptions};
use reid::formats::npy::{NpyArray, write_npy};
use reid::models::{Arch, ReidModel, Task};
use serde_json::json;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> Option<String> {
    common::python_with(&["numpy", "onnxruntime"])
}

/// The `libreid.so` built for this test run: next to the test binary in `<profile>/deps/`.
fn library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let lib = exe.parent().unwrap().join("libreid.so");
    assert!(lib.is_file(), "{} was not built", lib.display());
    lib
}

/// Installs `bindings/python` with pip (from a copy: a build writes next to its sources) into
/// `work/site`, which it returns. Without network access, so the interpreter needs pip,
/// setuptools ≥ 61 and a wheel builder (`.ci/run` installs `wheel`); where that fails and CI
/// does not require the check, the source folder serves instead.
fn pip_install(python: &str, work: &Path) -> PathBuf {
    let source = work.join("package");
    std::fs::create_dir_all(source.join("reid")).unwrap();
    for file in ["pyproject.toml", "reid/__init__.py"] {
        std::fs::copy(root().join("bindings/python").join(file), source.join(file)).unwrap();
    }
    let site = work.join("site");
    let out = Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
        ])
        .args(["--no-index", "--disable-pip-version-check", "--target"])
        .arg(&site)
        .arg(&source)
        .output()
        .unwrap();
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        assert!(
            std::env::var("REID_REQUIRE_ONNX_CHECK").is_err(),
            "pip install bindings/python failed: {why}"
        );
        eprintln!("pip install bindings/python skipped: {why}");
        return root().join("bindings/python");
    }
    assert!(site.join("reid/__init__.py").is_file());
    site
}

#[test]
fn python_package_version_is_the_crate_version() {
    let text = std::fs::read_to_string(root().join("bindings/python/pyproject.toml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("version = "))
        .expect("a version line");
    assert_eq!(
        line,
        format!("version = \"{}\"", env!("CARGO_PKG_VERSION")),
        "bindings/python/pyproject.toml"
    );
}

#[test]
fn python_binding_matches_the_rust_api() {
    let Some(python) = python() else { return };
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let device = reid::device::default_device();

    let images: Vec<PathBuf> = ["person0.jpg", "person1.jpg", "person2.png", "person3.jpg"]
        .iter()
        .map(|n| root().join("tests/fixtures/images").join(n))
        .collect();

    let model = dir.join("osnet_x0_25.onnx");
    let net = reid::weights::load_torchreid(
        Arch::OsnetX0_25,
        root().join("tests/fixtures/osnet_x0_25/checkpoint.pth.tar"),
        &device,
    )
    .unwrap()
    .0;
    export_onnx_file(&net, &ExportOptions::new(128, 64), &model).unwrap();
    let extractor = Extractor::new(&model, &ExtractorOptions::default()).unwrap();
    // The same model with an initializer ONNX Runtime warns about, for the log callback.
    let warning_model = dir.join("warns.onnx");
    std::fs::copy(&model, &warning_model).unwrap();
    common::add_unused_initializer(&warning_model);
    let embeddings = extractor.extract_files(&images).unwrap();
    let dim = extractor.dim();
    write_npy(
        dir.join("embeddings.npy"),
        &NpyArray::f32(vec![images.len(), dim], embeddings),
    )
    .unwrap();
    // Decoded pixels of the first image, for the binding's pixel-buffer entry points.
    let (rgb, w, h) = reid::preprocess::decode(&std::fs::read(&images[0]).unwrap()).unwrap();
    let pixels: Vec<f32> = rgb.iter().map(|&v| v as f32).collect();
    write_npy(
        dir.join("pixels.npy"),
        &NpyArray::f32(vec![h, w, 3], pixels),
    )
    .unwrap();

    let names: Vec<String> = ["cat", "dog", "bird", "fish"].map(String::from).to_vec();
    let net = reid::models::seeding::seeded(&device, 7, || {
        ReidModel::new(Arch::Mobilenetv3Small, 4, &device)
    })
    .with_task(Task::Classification, names.clone());
    let classifier_path = dir.join("classifier.onnx");
    export_onnx_file(&net, &ExportOptions::new(64, 64), &classifier_path).unwrap();
    let classifier = Classifier::new(&classifier_path, &ExtractorOptions::default()).unwrap();
    let top3: Vec<Vec<(usize, f32)>> = classifier
        .classify_files(&images, 3)
        .unwrap()
        .into_iter()
        .map(|row| row.into_iter().map(|p| (p.class, p.score)).collect())
        .collect();

    // The library's messages for the shared table of bad options.
    let bad_options: Vec<serde_json::Value> = BadOption::ALL
        .iter()
        .map(|case| json!({"case": case.name(), "message": case.rust_error().to_string()}))
        .collect();
    // Database galleries of their own (the test build's library has the `postgres` feature),
    // dropped after the run.
    let database = common::database::database_url().map(|url| {
        let (gallery, gallery_schema) = common::database::database_location(&url);
        let (identities, identities_schema) = common::database::database_location(&url);
        (
            url,
            [gallery, identities],
            [gallery_schema, identities_schema],
        )
    });
    let spec = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "postgres": database.as_ref().map(|(_, locations, _)| locations),
        "bad_options": bad_options,
        "model": model,
        "warning_model": warning_model,
        "unused_initializer": common::UNUSED_INITIALIZER,
        "input_size": [128, 64],
        "images": images,
        "embeddings": dir.join("embeddings.npy"),
        "pixels": dir.join("pixels.npy"),
        "classifier": classifier_path,
        "class_names": names,
        "top3": top3,
        "weights": root().join("tests/fixtures/osnet_x0_25/checkpoint.pth.tar"),
        "work": dir,
    });
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let out = Command::new(&python)
        .arg(root().join("bindings/python/tests/test_binding.py"))
        .arg(&spec_path)
        .env("REID_LIBRARY", library())
        .env("PYTHONPATH", root().join("bindings/python"))
        .output()
        .unwrap();
    if let Some((url, _, schemas)) = &database {
        for schema in schemas {
            common::database::drop_schema(url, schema);
        }
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(out.status.success(), "the Python binding's checks failed");
    assert!(
        stdout.contains("python binding: all checks passed"),
        "{stdout}"
    );

    // The Python example, with the output the C and C++ examples must give, run against the
    // package as `pip install` lays it out.
    let site = pip_install(&python, dir);
    let out = Command::new(&python)
        .arg(root().join("examples/python/extract_and_search.py"))
        .arg(&model)
        .arg(dir.join("example.reidg"))
        .args(&images)
        .env("REID_LIBRARY", library())
        .env("PYTHONPATH", site)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "examples/python/extract_and_search.py failed"
    );
    common::check_example_output(&stdout, images.len());
}
