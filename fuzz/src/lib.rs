//! The fuzz targets of reid's parsers and byte-taking C entry points ([`targets`]), run by the
//! libFuzzer binaries of `fuzz_targets/`; an allocator that stops the process on any single
//! allocation above a stated bound ([`bound`]); scratch files for the readers that take a path
//! ([`files`]). reid's `tests/fuzz_regressions.rs` includes these same files to replay past
//! findings in `cargo test` (a dependency on this crate would make `cargo run` see its
//! binaries).

pub mod bound;
pub mod files;
pub mod targets;

pub use bound::{DEFAULT_ALLOCATION_LIMIT, set_allocation_limit};
pub use files::{scratch, scratch_file};

#[global_allocator]
static ALLOCATOR: bound::Bounded = bound::Bounded;
