//! The C ABI from the outside: the SDK is installed into a prefix with `bindings/install.sh`,
//! and C / C++ programs that know only the installed header, library, pkg-config file and
//! CMake package are built and run: the error-path test and the thread test (natively and
//! under valgrind), the C example, a statically linked build, the C++ wrapper's tests and
//! the C++ example.
//!
//! CI sets `REID_REQUIRE_ONNX_CHECK`, `REID_REQUIRE_VALGRIND` and `REID_REQUIRE_CMAKE`, so
//! that a missing tool fails instead of skipping.

use crate::common;
use crate::common::fixture;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use reid::export::{ExportOptions, export_onnx_file};
use reid::extractor::{Extractor, ExtractorOptions};
use reid::models::Arch;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn required(var: &str) -> bool {
    std::env::var_os(var).is_some()
}

/// The installed SDK and the test model, made once per test run.
struct Sdk {
    prefix: PathBuf,
    /// osnet_x0_25 from the torchreid fixture, exported at 128×64; None without ONNX Runtime.
    model: Option<PathBuf>,
}

fn sdk() -> &'static Sdk {
    static SDK: OnceLock<Sdk> = OnceLock::new();
    SDK.get_or_init(|| {
        let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_abi");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        let prefix = work.join("prefix");
        // The test binary lives in <target>/<profile>/deps/, next to the libreid.so and
        // libreid.a that `cargo test` built for it (cargo copies them up to <profile>/ only
        // for `cargo build`): install exactly those.
        let exe = std::env::current_exe().unwrap();
        let mut install = Command::new("sh");
        install
            .arg(root().join("bindings/install.sh"))
            .arg("--prefix")
            .arg(&prefix)
            .arg("--lib-dir")
            .arg(exe.parent().unwrap());
        check(&install.output().unwrap(), "bindings/install.sh");

        let model = work.join("osnet_x0_25.onnx");
        let device = reid::device::default_device();
        let net = reid::weights::load_torchreid(
            Arch::OsnetX0_25,
            fixture("osnet_x0_25/checkpoint.pth.tar"),
            &device,
        )
        .unwrap()
        .0;
        export_onnx_file(&net, &ExportOptions::new(128, 64), &model).unwrap();
        let model = match Extractor::new(&model, &ExtractorOptions::default()) {
            Ok(_) => Some(model),
            Err(e) => {
                assert!(
                    !required("REID_REQUIRE_ONNX_CHECK"),
                    "ONNX Runtime required but not usable: {e}"
                );
                eprintln!("ONNX Runtime not found; the C programs are skipped: {e}");
                None
            }
        };
        Sdk { prefix, model }
    })
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `pkg-config ARGS reid` against the installed SDK, split into arguments.
fn pkg_config(sdk: &Sdk, args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("reid")
        .env("PKG_CONFIG_PATH", sdk.prefix.join("lib/pkgconfig"))
        .output()
        .expect("pkg-config");
    check(&out, "pkg-config");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Compiles C sources with strict warnings and the given link arguments.
fn build_c(source: &Path, exe_name: &str, link: &[String]) -> PathBuf {
    build_c_with(source, exe_name, link, &[])
}

/// As `build_c`, with extra compiler flags (a sanitizer).
fn build_c_with(source: &Path, exe_name: &str, link: &[String], flags: &[&str]) -> PathBuf {
    let exe = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("c_abi")
        .join(exe_name);
    let out = Command::new("cc")
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-g",
            "-O1",
        ])
        .args(flags)
        .arg(source)
        // The test programs share tests/c/common.h; the examples need only `link`.
        .args(
            source
                .starts_with(root().join("tests/c"))
                .then(|| ["-I".into(), root().join("tests/c").into_os_string()])
                .into_iter()
                .flatten(),
        )
        .args(link)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("cc");
    check(&out, &format!("cc {}", source.display()));
    exe
}

/// Runs an installed-SDK program (the dynamic linker finds libreid.so.0.x in the prefix).
fn run(sdk: &Sdk, program: &[&std::ffi::OsStr]) -> Output {
    Command::new(program[0])
        .args(&program[1..])
        .env("LD_LIBRARY_PATH", sdk.prefix.join("lib"))
        .output()
        .unwrap()
}

fn valgrind_available() -> bool {
    let found = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found || !required("REID_REQUIRE_VALGRIND"),
        "valgrind required but not found"
    );
    if !found {
        eprintln!("valgrind not found: memory checks skipped");
    }
    found
}

/// Runs a program under valgrind's memcheck: any invalid access or definite leak fails.
fn run_valgrind(sdk: &Sdk, program: &[&std::ffi::OsStr]) -> Output {
    Command::new("valgrind")
        .args([
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite",
            "--num-callers=30",
            "--gen-suppressions=all",
        ])
        .arg(format!(
            "--suppressions={}",
            root().join("tests/c/valgrind.supp").display()
        ))
        .args(program)
        .env("LD_LIBRARY_PATH", sdk.prefix.join("lib"))
        .output()
        .unwrap()
}

fn os(s: &(impl AsRef<std::ffi::OsStr> + ?Sized)) -> &std::ffi::OsStr {
    s.as_ref()
}

#[test]
fn installed_prefix_has_the_versioned_library_and_packages() {
    let sdk = sdk();
    let lib = sdk.prefix.join("lib");
    let version = env!("CARGO_PKG_VERSION");
    let abi = format!("0.{}", env!("CARGO_PKG_VERSION_MINOR"));
    assert!(lib.join(format!("libreid.so.{version}")).is_file());
    assert_eq!(
        std::fs::read_link(lib.join(format!("libreid.so.{abi}"))).unwrap(),
        Path::new(&format!("libreid.so.{version}"))
    );
    assert!(lib.join("libreid.a").is_file());
    assert!(sdk.prefix.join("include/reid.h").is_file());
    assert!(sdk.prefix.join("include/reid.hpp").is_file());
    assert!(lib.join("cmake/reid/reidConfig.cmake").is_file());
    let soname = Command::new("readelf")
        .arg("-d")
        .arg(lib.join("libreid.so"))
        .output()
        .unwrap();
    let dynamic = String::from_utf8_lossy(&soname.stdout);
    assert!(
        dynamic.contains(&format!("[libreid.so.{abi}]")),
        "soname not libreid.so.{abi}:\n{dynamic}"
    );
    let modversion = pkg_config(sdk, &["--modversion"]);
    assert_eq!(modversion, [version]);
}

#[test]
fn c_error_paths_return_their_status_natively_and_under_valgrind() {
    let sdk = sdk();
    if sdk.model.is_none() {
        return;
    }
    let mut link = pkg_config(sdk, &["--cflags", "--libs"]);
    link.push("-lm".into());
    let exe = build_c(&root().join("tests/c/abi_errors.c"), "abi_errors", &link);
    run_checks_program(sdk, &exe, "abi_errors");
}

/// Runs a test program taking `WEIGHTS IMAGES_DIR WORK_DIR` natively (it must report no
/// failed check) and then under valgrind, each time in a fresh work directory.
fn run_checks_program(sdk: &Sdk, exe: &Path, name: &str) {
    let weights = fixture("osnet_x0_25/checkpoint.pth.tar");
    let images = fixture("images");
    let work = tempfile::tempdir().unwrap();
    let out = run(sdk, &[os(exe), os(&weights), os(&images), os(work.path())]);
    check(&out, name);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains(", 0 failures"), "{summary}");
    if valgrind_available() {
        let work = tempfile::tempdir().unwrap();
        let args = [os(exe), os(&weights), os(&images), os(work.path())];
        check(&run_valgrind(sdk, &args), &format!("{name} under valgrind"));
    }
}

/// Whether the C compiler builds and runs a program with `-fsanitize=NAME`; CI's
/// `REID_REQUIRE_SANITIZERS` makes a missing runtime a failure instead of a skip.
fn sanitizer_available(name: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("probe.c");
    std::fs::write(&source, "int main(void) { return 0; }\n").unwrap();
    let exe = dir.path().join("probe");
    let built = Command::new("cc")
        .arg(format!("-fsanitize={name}"))
        .arg(&source)
        .arg("-o")
        .arg(&exe)
        .status()
        .is_ok_and(|s| s.success());
    let runs = built && without_aslr(&exe).status().is_ok_and(|s| s.success());
    assert!(
        runs || !required("REID_REQUIRE_SANITIZERS"),
        "REID_REQUIRE_SANITIZERS is set but -fsanitize={name} does not build or run"
    );
    if !runs {
        eprintln!("-fsanitize={name} unavailable: that check skipped");
    }
    runs
}

/// A command running `exe` with address-space randomization off: gcc 12's ThreadSanitizer
/// cannot map its shadow memory under the high mmap entropy of current kernels.
fn without_aslr(exe: &Path) -> Command {
    let mut command = Command::new("setarch");
    command.arg(std::env::consts::ARCH).arg("-R").arg(exe);
    command
}

/// Builds a C test program with AddressSanitizer and its leak checker on the C side: the
/// library's heap blocks come from the sanitizer's malloc, so a write past a buffer the library
/// filled, a use after free or a leaked handle fails the run.
fn build_c_asan(source: &Path, exe_name: &str, link: &[String]) -> PathBuf {
    let flags = ["-fsanitize=address", "-fno-omit-frame-pointer"];
    build_c_with(source, exe_name, link, &flags)
}

/// Runs an AddressSanitizer build of an installed-SDK program, with the leak checker or not.
fn run_asan(sdk: &Sdk, program: &[&std::ffi::OsStr], leaks: bool) -> Output {
    let options = format!(
        "detect_leaks={}:halt_on_error=1:exitcode=99",
        u8::from(leaks)
    );
    without_aslr(Path::new(program[0]))
        .args(&program[1..])
        .env("LD_LIBRARY_PATH", sdk.prefix.join("lib"))
        .env("ASAN_OPTIONS", options)
        .output()
        .unwrap()
}

#[test]
fn c_error_paths_hold_under_address_sanitizer() {
    let sdk = sdk();
    if sdk.model.is_none() || !sanitizer_available("address") {
        return;
    }
    let mut link = pkg_config(sdk, &["--cflags", "--libs"]);
    link.push("-lm".into());
    let source = root().join("tests/c/abi_errors.c");
    let exe = build_c_asan(&source, "abi_errors_asan", &link);
    let work = tempfile::tempdir().unwrap();
    let weights = fixture("osnet_x0_25/checkpoint.pth.tar");
    let images = fixture("images");
    let out = run_asan(
        sdk,
        &[os(&exe), os(&weights), os(&images), os(work.path())],
        true,
    );
    check(&out, "abi_errors under AddressSanitizer");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains(", 0 failures"), "{summary}");
}

/// Threads sharing an extractor and a gallery, built with ThreadSanitizer on the C side: a race
/// between the host's threads on their own memory fails the run (the library's internals are
/// left out, tests/c/tsan.supp says why).
#[test]
fn c_threads_hold_under_thread_sanitizer() {
    let sdk = sdk();
    let Some(model) = &sdk.model else { return };
    if !sanitizer_available("thread") {
        return;
    }
    let mut link = pkg_config(sdk, &["--cflags", "--libs"]);
    link.extend(["-lm".into(), "-pthread".into()]);
    let exe = build_c_with(
        &root().join("tests/c/threads.c"),
        "threads_tsan",
        &link,
        &["-fsanitize=thread"],
    );
    let out = without_aslr(&exe)
        .arg(model)
        .arg(fixture("images"))
        .arg("2")
        .env("LD_LIBRARY_PATH", sdk.prefix.join("lib"))
        .env(
            "TSAN_OPTIONS",
            format!(
                "halt_on_error=1:exitcode=99:suppressions={}",
                root().join("tests/c/tsan.supp").display()
            ),
        )
        .output()
        .unwrap();
    check(&out, "threads under ThreadSanitizer");
}

#[test]
fn c_threads_share_one_extractor_and_gallery() {
    let sdk = sdk();
    let Some(model) = &sdk.model else { return };
    let mut link = pkg_config(sdk, &["--cflags", "--libs"]);
    link.extend(["-lm".into(), "-pthread".into()]);
    let exe = build_c(&root().join("tests/c/threads.c"), "threads", &link);
    let images = fixture("images");
    let out = run(sdk, &[os(&exe), os(model), os(&images), os(&"3")]);
    check(&out, "threads");
    println!("{}", String::from_utf8_lossy(&out.stdout));

    if valgrind_available() {
        check(
            &run_valgrind(sdk, &[os(&exe), os(model), os(&images), os(&"1")]),
            "threads under valgrind",
        );
    }
}

fn example_images() -> Vec<PathBuf> {
    ["person0.jpg", "person1.jpg", "person2.png", "person3.jpg"]
        .iter()
        .map(|n| fixture("images").join(n))
        .collect()
}

/// Runs an example (`PROGRAM MODEL GALLERY_FILE IMAGE...`) on the fixture images and checks
/// its output.
fn run_example(sdk: &Sdk, exe: &Path, model: &Path, name: &str) {
    let work = tempfile::tempdir().unwrap();
    let gallery = work.path().join("people.reidg");
    let images = example_images();
    let mut args = vec![os(exe), os(model), os(&gallery)];
    args.extend(images.iter().map(os));
    let out = run(sdk, &args);
    check(&out, name);
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    common::check_example_output(&stdout, images.len());
}

#[test]
fn c_example_builds_with_pkg_config_alone_and_runs() {
    let sdk = sdk();
    let Some(model) = &sdk.model else { return };
    let link = pkg_config(sdk, &["--cflags", "--libs"]);
    let exe = build_c(
        &root().join("examples/c/extract_and_search.c"),
        "extract_and_search",
        &link,
    );
    run_example(sdk, &exe, model, "extract_and_search");
}

#[test]
fn c_example_links_statically() {
    let sdk = sdk();
    let Some(model) = &sdk.model else { return };
    let mut link = pkg_config(sdk, &["--cflags"]);
    link.push(sdk.prefix.join("lib/libreid.a").display().to_string());
    link.extend(
        pkg_config(sdk, &["--static", "--libs-only-l"])
            .into_iter()
            .filter(|l| l != "-lreid"),
    );
    let exe = build_c(
        &root().join("examples/c/extract_and_search.c"),
        "extract_and_search_static",
        &link,
    );
    let dynamic = Command::new("readelf")
        .arg("-d")
        .arg(&exe)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&dynamic.stdout).contains("libreid"));
    // LD_LIBRARY_PATH is set but unused: the program does not depend on libreid.so.
    run_example(sdk, &exe, model, "statically linked extract_and_search");
}

/// `cmake` (from `REID_CMAKE` or PATH), if present.
fn cmake() -> Option<PathBuf> {
    let cmake = std::env::var_os("REID_CMAKE")
        .map(PathBuf::from)
        .unwrap_or_else(|| "cmake".into());
    let found = Command::new(&cmake)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found || !required("REID_REQUIRE_CMAKE"),
        "cmake required but not found"
    );
    found.then_some(cmake)
}

/// Builds a C++ project with CMake's `find_package(reid)` against the installed SDK, or,
/// without CMake, compiles `source` directly with the pkg-config flags.
fn build_cpp(sdk: &Sdk, project: &Path, source: &str, target: &str) -> PathBuf {
    let build = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("c_abi")
        .join(format!("build-{target}"));
    let _ = std::fs::remove_dir_all(&build);
    let Some(cmake) = cmake() else {
        eprintln!("cmake not found: building {target} with pkg-config instead");
        std::fs::create_dir_all(&build).unwrap();
        let exe = build.join(target);
        let out = Command::new("c++")
            .args([
                "-std=c++17",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-g",
            ])
            .arg(project.join(source))
            .args(pkg_config(sdk, &["--cflags", "--libs"]))
            .arg("-o")
            .arg(&exe)
            .output()
            .unwrap();
        check(&out, &format!("c++ {source}"));
        return exe;
    };
    let configure = Command::new(&cmake)
        .arg("-S")
        .arg(project)
        .arg("-B")
        .arg(&build)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", sdk.prefix.display()))
        .arg("-DCMAKE_BUILD_TYPE=Debug")
        .output()
        .unwrap();
    check(
        &configure,
        &format!("cmake configure {}", project.display()),
    );
    let compile = Command::new(&cmake)
        .arg("--build")
        .arg(&build)
        .output()
        .unwrap();
    check(&compile, &format!("cmake build {}", project.display()));
    build.join(target)
}

#[test]
fn cpp_wrapper_tests_pass_natively_and_under_valgrind() {
    let sdk = sdk();
    if sdk.model.is_none() {
        return;
    }
    let exe = build_cpp(
        sdk,
        &root().join("bindings/cpp/tests"),
        "test_reid.cpp",
        "test_reid",
    );
    run_checks_program(sdk, &exe, "test_reid");
}

#[test]
fn cpp_example_builds_with_find_package_and_runs() {
    let sdk = sdk();
    let Some(model) = &sdk.model else { return };
    let exe = build_cpp(
        sdk,
        &root().join("examples/cpp"),
        "gallery_demo.cpp",
        "gallery_demo",
    );
    run_example(sdk, &exe, model, "gallery_demo");
}

#[test]
fn readme_c_example_builds_and_runs() {
    let sdk = sdk();
    let Some(model) = &sdk.model else { return };
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let chapter = &readme[readme
        .find("## Using reid from C, C++ and Python")
        .expect("C chapter")..];
    let start = chapter.find("```c\n").expect("a C code block") + 5;
    let code = &chapter[start..start + chapter[start..].find("```").unwrap()];
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("readme.c");
    std::fs::write(&source, code).unwrap();
    let exe = build_c(&source, "readme", &pkg_config(sdk, &["--cflags", "--libs"]));
    let gallery = work.path().join("people.reidg");
    let images = example_images();
    let mut args = vec![os(&exe), os(model), os(&gallery)];
    args.extend(images.iter().map(os));
    let out = run(sdk, &args);
    check(&out, "README example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("identity 0: 1.000\n"), "{stdout}");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
}

#[test]
fn c_program_finetunes_evaluates_exports_and_extracts() {
    let sdk = sdk();
    let mut link = pkg_config(sdk, &["--cflags", "--libs"]);
    link.push("-lm".into());
    let exe = build_c(&root().join("examples/c/finetune.c"), "finetune", &link);
    let dir = tempfile::tempdir().unwrap();
    let dataset = common::identity_folder_dataset(dir.path());
    let work = dir.path().join("job");
    let weights = fixture("osnet_x0_25/checkpoint.pth.tar");
    let image = std::fs::read_dir(dataset.join("query/13"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let out = run(
        sdk,
        &[os(&exe), os(&weights), os(&dataset), os(&work), os(&image)],
    );
    check(&out, "finetune");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    for expected in [
        "before: mAP",
        "epoch 1/2",
        "epoch 2/2",
        "after 2 epochs: mAP",
        "saved a checkpoint",
        ": 512 floats, norm 1.000",
    ] {
        assert!(stdout.contains(expected), "no `{expected}` in:\n{stdout}");
    }
    assert!(work.join("finetuned.bpk").is_file() && work.join("finetuned.onnx").is_file());
    // The checkpoint is a normal reid checkpoint.
    let device = reid::device::default_device();
    let model = reid::weights::load_checkpoint(work.join("finetuned.bpk"), &device).unwrap();
    assert_eq!(model.arch, Arch::OsnetX0_25);
}

/// The classification entry points from C: a classifier (random weights, named classes)
/// exported by the Rust API classifies the fixture images; the C program's top-3 must be the
/// Rust Classifier's, and its error paths must hold, natively and under valgrind.
#[test]
fn c_classifier_gives_the_rust_top_k_and_refuses_bad_input() {
    use reid::classifier::Classifier;
    use reid::models::{ReidModel, Task};
    let sdk = sdk();
    let Some(reid_model) = &sdk.model else { return };
    let work = tempfile::tempdir().unwrap();
    let device = reid::device::default_device();
    let names: Vec<String> = ["cat", "dog", "bird", "fish"].map(String::from).to_vec();
    let net = reid::models::seeding::seeded(&device, 7, || {
        ReidModel::new(Arch::Mobilenetv3Small, 4, &device)
    })
    .with_task(Task::Classification, names.clone());
    let model = work.path().join("classifier.onnx");
    export_onnx_file(&net, &ExportOptions::new(64, 64), &model).unwrap();
    let images = example_images();

    let rust = Classifier::new(&model, &ExtractorOptions::default()).unwrap();
    let expected = rust.classify_files(&images, 3).unwrap();

    let mut link = pkg_config(sdk, &["--cflags", "--libs"]);
    link.push("-lm".into());
    let exe = build_c(&root().join("tests/c/classify.c"), "classify", &link);
    let mut args = vec![os(&exe), os(&model), os(reid_model)];
    args.extend(images.iter().map(os));
    let out = run(sdk, &args);
    check(&out, "classify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(stdout.contains("classes 4 multilabel 0"), "{stdout}");
    for (i, name) in names.iter().enumerate() {
        assert!(stdout.contains(&format!("class {i} {name}")), "{stdout}");
    }
    for (i, row) in expected.iter().enumerate() {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("image {i}:")))
            .unwrap_or_else(|| panic!("no line for image {i}: {stdout}"));
        let values: Vec<&str> = line.split_whitespace().skip(2).collect();
        for (j, p) in row.iter().enumerate() {
            assert_eq!(values[2 * j].parse::<usize>().unwrap(), p.class, "{line}");
            let score: f32 = values[2 * j + 1].parse().unwrap();
            assert!((score - p.score).abs() < 1e-4, "{line} vs {row:?}");
        }
    }
    assert!(stdout.contains("classify: 0 failures"), "{stdout}");
    if valgrind_available() {
        check(&run_valgrind(sdk, &args), "classify under valgrind");
    }
    if sanitizer_available("address") {
        let exe = build_c_asan(&root().join("tests/c/classify.c"), "classify_asan", &link);
        args[0] = os(&exe);
        // Leaks are valgrind's job here: gcc 12's leak checker crashes in its own tracer at
        // this program's exit ("Tracer caught signal 11"), every time.
        let out = run_asan(sdk, &args, false);
        check(&out, "classify under AddressSanitizer");
        assert!(String::from_utf8_lossy(&out.stdout).contains("classify: 0 failures"));
    }
}
