//! The `reid` binary end to end.

#[path = "../common/mod.rs"]
mod common;

// The gallery tests' backends: the database server the gallery commands also run against.
#[allow(dead_code)]
#[path = "../gallery/backends.rs"]
mod backends;
mod commands;
mod zoo;
