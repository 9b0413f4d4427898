//! Every input a fuzz target found (fuzz/regressions/<target>/) replayed through that target in
//! `cargo test`. Each once made reid panic, abort or allocate without bound; each must now be
//! answered like any other input (mostly with an error), within the target's allocation bound.
//!
//! The targets' own files are included, not the `reid-fuzz` crate: as a dependency its libFuzzer
//! binaries would appear beside `reid` to `cargo run`.

#[path = "../fuzz/src/bound.rs"]
mod bound;
#[path = "../fuzz/src/files.rs"]
mod files;
#[path = "../fuzz/src/targets.rs"]
mod targets;

use std::path::Path;

// `targets` finds its scratch files at the crate root, as in the fuzz crate.
use files::{scratch, scratch_file};
use targets::{ALL, IMAGE_ALLOCATION_LIMIT};

#[global_allocator]
static ALLOCATOR: bound::Bounded = bound::Bounded;

#[test]
fn every_finding_of_the_fuzz_targets_stays_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut replayed = 0;
    for folder in std::fs::read_dir(&root).unwrap() {
        let folder = folder.unwrap().path();
        let name = folder.file_name().unwrap().to_str().unwrap().to_string();
        let (_, target) = ALL
            .iter()
            .find(|(target, _)| *target == name)
            .unwrap_or_else(|| panic!("{}: no fuzz target of that name", folder.display()));
        bound::set_allocation_limit(if name == "image" {
            IMAGE_ALLOCATION_LIMIT
        } else {
            bound::DEFAULT_ALLOCATION_LIMIT
        });
        for input in std::fs::read_dir(&folder).unwrap() {
            let input = input.unwrap().path();
            eprintln!("replaying {}", input.display());
            target(&std::fs::read(&input).unwrap());
            replayed += 1;
        }
    }
    // Findings are only ever added: fewer means the folder was not found or emptied.
    assert!(
        replayed >= 8,
        "only {replayed} inputs replayed from {}",
        root.display()
    );
}
