//! Gives the C library a versioned soname, so applications linked against `libreid.so.0.1`
//! are not handed an incompatible release. Before 1.0 every minor release may change the
//! ABI (`libreid.so.0.MINOR`); from 1.0 on only major releases do (`libreid.so.MAJOR`).

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" {
        let abi = if major == "0" {
            format!("0.{minor}")
        } else {
            major
        };
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libreid.so.{abi}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
