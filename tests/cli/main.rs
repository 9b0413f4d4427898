//! The `reid` binary end to end.

#[path = "../common/mod.rs"]
mod common;

mod commands;
