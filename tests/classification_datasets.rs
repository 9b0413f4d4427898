//! The classification benchmarks' layouts read as torchvision's dataset classes read them.
//!
//! `tests/fixtures/make_classification_dataset_fixtures.py` built tiny fake copies of each
//! official layout and recorded, with torchvision's own DTD, Caltech101, Flowers102,
//! OxfordIIITPet, Food101, SUN397, StanfordCars and FashionMNIST classes, which file carries
//! which class in each split. The SDK must read the same (image, class) pairs and class names.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use reid::data::classification::{ClassificationDataset, load_classification};
use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/classification_datasets")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// (file relative to the root, class name) pairs of torchvision's listing.
fn reference(listing: &Value) -> (BTreeSet<(String, String)>, Vec<String>) {
    let classes: Vec<String> = listing["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let pairs = listing["files"]
        .as_array()
        .unwrap()
        .iter()
        .zip(listing["labels"].as_array().unwrap())
        .map(|(f, l)| {
            let class = classes[l.as_u64().unwrap() as usize].clone();
            (f.as_str().unwrap().to_string(), class)
        })
        .collect();
    (pairs, classes)
}

fn ours(set: &ClassificationDataset, root: &Path) -> BTreeSet<(String, String)> {
    set.samples
        .iter()
        .map(|(path, labels)| {
            assert_eq!(labels.len(), 1);
            assert!(path.is_file(), "{} does not exist", path.display());
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, set.classes[labels[0]].clone())
        })
        .collect()
}

fn load(name: &str, train: bool) -> ClassificationDataset {
    load_classification(name, &fixture().join("root"), train, 0)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn split_datasets_match_torchvision() {
    let expected = expected();
    let root = fixture().join("root");
    for name in [
        "dtd",
        "flowers102",
        "oxford_pets",
        "food101",
        "stanford_cars",
    ] {
        for (split, train) in [("train", true), ("test", false)] {
            let (want, classes) = reference(&expected[name][split]);
            let set = load(name, train);
            assert_eq!(ours(&set, &root), want, "{name} {split}");
            // Class names the split uses are torchvision's.
            let used: BTreeSet<&String> = set
                .samples
                .iter()
                .map(|(_, l)| &set.classes[l[0]])
                .collect();
            assert!(used.iter().all(|c| classes.contains(c)), "{name}: {used:?}");
        }
    }
}

#[test]
fn caltech101_and_sun397_match_torchvision_and_split_by_protocol() {
    let expected = expected();
    let root = fixture().join("root");
    let (want, classes) = reference(&expected["caltech101"]["all"]);
    let (train, test) = (load("caltech101", true), load("caltech101", false));
    assert_eq!(train.classes, classes, "BACKGROUND_Google is not a class");
    let all: BTreeSet<_> = ours(&train, &root)
        .union(&ours(&test, &root))
        .cloned()
        .collect();
    assert_eq!(all, want);
    // 30 training images per class (all of them when fewer), the rest for testing.
    let per_class = |set: &ClassificationDataset, c: usize| {
        set.samples.iter().filter(|(_, l)| l[0] == c).count()
    };
    for (c, total) in [(0, 33), (1, 31), (2, 2)] {
        assert_eq!(per_class(&train, c), total.min(30), "{}", classes[c]);
        assert_eq!(per_class(&test, c), total - total.min(30), "{}", classes[c]);
    }
    let (want, classes) = reference(&expected["sun397"]["all"]);
    let sun = load("sun397", true);
    assert_eq!(sun.classes, classes);
    assert_eq!(ours(&sun, &root), want);
}

#[test]
fn fashion_mnist_unpacks_to_the_same_labels_and_pixels() {
    let expected = expected();
    // Unpacking writes next to the archive files: work on a copy of the fixture.
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("FashionMNIST/raw");
    std::fs::create_dir_all(&raw).unwrap();
    for entry in std::fs::read_dir(fixture().join("root/FashionMNIST/raw")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, raw.join(path.file_name().unwrap())).unwrap();
        }
    }
    for (split, train) in [("train", true), ("test", false)] {
        let set = load_classification("fashion_mnist", dir.path(), train, 0).unwrap();
        let want = &expected["fashion_mnist"][split];
        let labels: Vec<u64> = want["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let sums: Vec<u64> = want["pixel_sums"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(set.samples.len(), labels.len(), "{split}");
        for (path, l) in &set.samples {
            // Files are named by their index in the archive.
            let index: usize = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            assert_eq!(l[0] as u64, labels[index], "{}", path.display());
            let (rgb, w, h) = reid::preprocess::decode(&std::fs::read(path).unwrap()).unwrap();
            assert_eq!((w, h), (28, 28));
            let sum: u64 = rgb.chunks(3).map(|p| p[0] as u64).sum();
            assert_eq!(sum, sums[index], "{}", path.display());
        }
        let names: Vec<String> = want["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        for (i, class) in set.classes.iter().enumerate() {
            assert!(class.starts_with(&format!("{i}_")), "{class}");
            assert_eq!(class[2..].replace('_', " "), names[i].replace('/', "-"));
        }
    }
    // A truncated archive is an error, and leaves no half-written folder.
    let broken = tempfile::tempdir().unwrap();
    let raw = broken.path().join("FashionMNIST/raw");
    std::fs::create_dir_all(&raw).unwrap();
    for name in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        let bytes = std::fs::read(fixture().join("root/FashionMNIST/raw").join(name)).unwrap();
        std::fs::write(raw.join(name), &bytes[..bytes.len() - 10]).unwrap();
    }
    assert!(load_classification("fashion_mnist", broken.path(), false, 0).is_err());
    assert!(!raw.join("images/test").exists());
}

#[test]
fn missing_or_corrupt_layouts_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(load_classification("food101", dir.path(), true, 0).is_err());
    std::fs::create_dir_all(dir.path().join("food-101/meta")).unwrap();
    std::fs::write(dir.path().join("food-101/meta/classes.txt"), "apple_pie\n").unwrap();
    std::fs::write(
        dir.path().join("food-101/meta/train.txt"),
        "no_slash_here\n",
    )
    .unwrap();
    assert!(load_classification("food101", dir.path(), true, 0).is_err());
    std::fs::create_dir_all(dir.path().join("flowers-102")).unwrap();
    std::fs::write(
        dir.path().join("flowers-102/imagelabels.mat"),
        b"MATLAB junk",
    )
    .unwrap();
    assert!(load_classification("flowers102", dir.path(), true, 0).is_err());
}
