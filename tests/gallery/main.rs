//! Galleries (layer `gallery`): search against a brute-force reference, and durable files.

#[path = "../common/mod.rs"]
mod common;

mod durable_files;
mod in_memory;
