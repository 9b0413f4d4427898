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

/// The allocation bound is process-wide: the two tests take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn every_finding_of_the_fuzz_targets_stays_fixed() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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

/// The fuzzers' starting points — every seed of fuzz/seeds.txt and fuzz/corpus/ — go through
/// their targets too: CI does not run the fuzzers themselves (README, "Fuzzing"), so a target
/// that stopped accepting a valid file, or a parser that started panicking on one, shows here.
#[test]
fn every_seed_of_the_fuzz_targets_is_answered() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds: Vec<(String, std::path::PathBuf)> = Vec::new();
    let list = std::fs::read_to_string(root.join("fuzz/seeds.txt")).unwrap();
    for line in list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (name, pattern) = line.split_once(' ').unwrap();
        let pattern = root.join(pattern.trim());
        let (folder, file) = (pattern.parent().unwrap(), pattern.file_name().unwrap());
        let file = file.to_str().unwrap();
        match file.split_once('*') {
            // Only a `*` in the file name: the globs seeds.txt uses.
            Some((head, tail)) => {
                for entry in std::fs::read_dir(folder).unwrap() {
                    let path = entry.unwrap().path();
                    let n = path.file_name().unwrap().to_str().unwrap().to_string();
                    if n.starts_with(head) && n.ends_with(tail) && path.is_file() {
                        seeds.push((name.to_string(), path));
                    }
                }
            }
            None => seeds.push((name.to_string(), pattern.clone())),
        }
    }
    for folder in std::fs::read_dir(root.join("fuzz/corpus")).unwrap() {
        let folder = folder.unwrap().path();
        let name = folder.file_name().unwrap().to_str().unwrap().to_string();
        for entry in std::fs::read_dir(&folder).unwrap() {
            seeds.push((name.clone(), entry.unwrap().path()));
        }
    }
    let named: std::collections::BTreeSet<&str> = seeds.iter().map(|(n, _)| n.as_str()).collect();
    assert!(named.len() >= 12, "seeds for only {named:?}");
    for (name, path) in &seeds {
        let (_, target) = ALL
            .iter()
            .find(|(target, _)| target == name)
            .unwrap_or_else(|| panic!("{name}: no fuzz target of that name"));
        bound::set_allocation_limit(if name == "image" {
            IMAGE_ALLOCATION_LIMIT
        } else {
            bound::DEFAULT_ALLOCATION_LIMIT
        });
        target(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
    }
}
