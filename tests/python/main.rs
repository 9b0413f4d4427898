//! The Python binding against the Rust API.

#[path = "../common/mod.rs"]
mod common;

mod binding;
