//! The C ABI (layer `ffi`): the installed SDK from C and C++, the header, validation and the scenario table through Rust and C.

#[path = "../common/mod.rs"]
mod common;

mod header;
mod installed_sdk;
mod scenarios;
mod validation;
