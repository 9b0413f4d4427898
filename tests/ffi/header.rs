//! `include/reid.h` is generated from `src/ffi/` by cbindgen. This test regenerates it and
//! fails when the committed header differs (`REID_BLESS=1` writes it instead), and checks that
//! it compiles as C11 and C++17 with strict warnings, included twice.

use std::path::{Path, PathBuf};
use std::process::Command;

const HANDLES: [&str; 6] = [
    "reid_classifier",
    "reid_extractor",
    "reid_extractor_options",
    "reid_gallery",
    "reid_identity_store",
    "reid_finetuner",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn generate() -> String {
    let mut config = cbindgen::Config::from_file(root().join("include/cbindgen.toml"))
        .expect("include/cbindgen.toml");
    let mut extra = format!(
        "#define REID_VERSION_MAJOR {}\n#define REID_VERSION_MINOR {}\n#define REID_VERSION_PATCH {}\n\
         #define REID_VERSION_STRING \"{}\"\n\n",
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION"),
    );
    for handle in HANDLES {
        extra.push_str(&format!(
            "/** Opaque handle; see the functions named {handle}_*. */\n\
             typedef struct {handle} {handle};\n\n"
        ));
    }
    config.after_includes = Some(extra);
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root().join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen runs on src/ffi");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("UTF-8 header")
}

#[test]
fn committed_header_is_current() {
    let path = root().join("include/reid.h");
    let fresh = generate();
    if std::env::var_os("REID_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/reid.h differs from src/ffi/: regenerate it with \
         `REID_BLESS=1 cargo test --test ffi header` and commit it"
    );
}

#[test]
fn header_declares_the_cargo_version() {
    let header = std::fs::read_to_string(root().join("include/reid.h")).unwrap();
    let version = format!(
        "#define REID_VERSION_STRING \"{}\"",
        env!("CARGO_PKG_VERSION")
    );
    assert!(header.contains(&version), "header lacks `{version}`");
}

fn compile(compiler: &str, standard: &str, source: &Path) {
    let out = Command::new(compiler)
        .args([
            standard,
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fsyntax-only",
        ])
        .arg("-I")
        .arg(root().join("include"))
        .arg(source)
        .output()
        .unwrap_or_else(|e| panic!("{compiler}: {e}"));
    assert!(
        out.status.success(),
        "{compiler} {standard}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn header_compiles_strictly_as_c11_and_cpp17_included_twice() {
    let dir = tempfile::tempdir().unwrap();
    let body = "#include \"reid.h\"\n#include \"reid.h\"\n\
                int main(void) { return reid_version() == 0 ? 1 : REID_OK; }\n";
    let c: PathBuf = dir.path().join("twice.c");
    let cpp: PathBuf = dir.path().join("twice.cpp");
    std::fs::write(&c, body).unwrap();
    std::fs::write(&cpp, body.replace("(void)", "()")).unwrap();
    compile("cc", "-std=c11", &c);
    compile("c++", "-std=c++17", &cpp);
}
