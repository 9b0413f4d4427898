//! The classification benchmarks' layouts read as torchvision's dataset classes read them.
//!
//! `tests/fixtures/make_classification_dataset_fixtures.py` built tiny fake copies of each
//! official layout and recorded, with torchvision's own DTD, Caltech101, Flowers102,
//! OxfordIIITPet, Food101, SUN397, StanfordCars, FashionMNIST, CIFAR100 and SVHN classes (and
//! PyPI continuum's Birdsnap), which file carries which class in each split, and for the
//! pixel-array datasets each image's pixels. The SDK must read the same.

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
    let classes = strings(&listing["classes"]);
    let pairs = strings(&listing["files"])
        .into_iter()
        .zip(numbers(&listing["labels"]))
        .map(|(f, l)| (f, classes[l as usize].clone()))
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

/// Copies `from` (a folder of the fixture) to `to`: unpacking writes next to the archives.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, target).unwrap();
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

fn numbers(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

/// The fixture script's position-weighted pixel sum of an RGB image.
fn pixel_checksum(rgb: &[u8]) -> u64 {
    rgb.iter()
        .enumerate()
        .map(|(i, &v)| v as u64 * (i as u64 % 251 + 1))
        .sum()
}

/// Unpacks `name` from the fixture folders `copy` (copied under a temporary root) and checks
/// each split's labels, pixels and class names against torchvision's reading.
fn check_pixel_archive(name: &str, copy: &[&str], side: usize, gray: bool) {
    let expected = expected();
    let dir = tempfile::tempdir().unwrap();
    for folder in copy {
        copy_tree(
            &fixture().join("root").join(folder),
            &dir.path().join(folder),
        );
    }
    for (split, train) in [("train", true), ("test", false)] {
        // Twice: unpacking, then reading what was unpacked.
        for _ in 0..2 {
            let set = load_classification(name, dir.path(), train, 0)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let want = &expected[name][split];
            let labels = numbers(&want["labels"]);
            assert_eq!(set.classes, strings(&want["classes"]), "{name}");
            assert_eq!(set.samples.len(), labels.len(), "{name} {split}");
            let mut seen = BTreeSet::new();
            for (path, l) in &set.samples {
                // Files are named by their index in the archive.
                let index: usize = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
                assert!(seen.insert(index));
                assert_eq!(l[0] as u64, labels[index], "{name} {}", path.display());
                let (rgb, w, h) = reid::preprocess::decode(&std::fs::read(path).unwrap()).unwrap();
                assert_eq!((w, h), (side, side));
                if gray {
                    let sum: u64 = rgb.chunks(3).map(|p| p[0] as u64).sum();
                    assert_eq!(sum, numbers(&want["pixel_sums"])[index], "{name}");
                } else {
                    let sum = pixel_checksum(&rgb);
                    assert_eq!(sum, numbers(&want["checksums"])[index], "{name} {index}");
                }
            }
        }
    }
}

#[test]
fn fashion_mnist_unpacks_to_the_same_labels_and_pixels() {
    check_pixel_archive("fashion_mnist", &["FashionMNIST"], 28, true);
    // A truncated archive is an error, and leaves no half-written folder.
    let broken = tempfile::tempdir().unwrap();
    let raw = broken.path().join("FashionMNIST/raw");
    std::fs::create_dir_all(&raw).unwrap();
    for name in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        let bytes = std::fs::read(fixture().join("root/FashionMNIST/raw").join(name)).unwrap();
        std::fs::write(raw.join(name), &bytes[..bytes.len() - 10]).unwrap();
    }
    assert!(load_classification("fashion_mnist", broken.path(), false, 0).is_err());
    assert_eq!(
        std::fs::read_dir(&raw).unwrap().count(),
        2,
        "nothing written"
    );
}

#[test]
fn cifar100_python_and_binary_versions_unpack_as_torchvision_reads_them() {
    // The python version: a Python 2 pickle (train, as the archive ships it) and a Python 3
    // protocol-5 pickle (test).
    check_pixel_archive("cifar100", &["cifar-100-python"], 32, false);
    // The binary version of the same arrays (the script wrote it from the same numbers).
    check_pixel_archive("cifar100", &["cifar-100-binary"], 32, false);
    // A truncated pickle is an error and leaves nothing behind.
    let broken = tempfile::tempdir().unwrap();
    let base = broken.path().join("cifar-100-python");
    copy_tree(&fixture().join("root/cifar-100-python"), &base);
    let train = std::fs::read(base.join("train")).unwrap();
    std::fs::write(base.join("train"), &train[..train.len() / 2]).unwrap();
    let err = load_classification("cifar100", broken.path(), true, 0).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    assert!(!base.join("reid-images").exists());
}

#[test]
fn svhn_unpacks_as_torchvision_reads_it() {
    check_pixel_archive("svhn", &["svhn"], 32, false);
}

#[test]
fn birdsnap_matches_continuum_and_reads_the_official_download_folder() {
    let expected = expected();
    let data = fixture().join("root/birdsnap_continuum");
    for (split, train) in [("train", true), ("test", false)] {
        let (want, classes) = reference(&expected["birdsnap"][split]);
        // continuum's layout: images/ next to the birdsnap/ folder.
        let set = load_classification("birdsnap", &data, train, 0).unwrap();
        assert_eq!(set.classes, classes);
        assert_eq!(ours(&set, &data.join("images")), want, "{split}");
        // get_birdsnap.py's layout: birdsnap/download/images.
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&data.join("birdsnap"), &dir.path().join("birdsnap"));
        let downloaded = dir.path().join("birdsnap/download/images");
        copy_tree(&data.join("images"), &downloaded);
        let set = load_classification("birdsnap", dir.path(), train, 0).unwrap();
        assert_eq!(ours(&set, &downloaded), want, "{split}");
    }
    let empty = tempfile::tempdir().unwrap();
    copy_tree(&data.join("birdsnap"), &empty.path().join("birdsnap"));
    let err = load_classification("birdsnap", empty.path(), true, 0).unwrap_err();
    assert!(err.to_string().contains("get_birdsnap.py"), "{err}");
}

#[test]
fn python_pickles_of_every_protocol_read_as_python_wrote_them() {
    use reid::formats::pickle::{PyValue, unpickle};
    let want = &expected()["pickles"]["value"];
    for protocol in 0..=5 {
        let path = fixture().join(format!("pickles/protocol{protocol}.pkl"));
        let value = unpickle(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("protocol {protocol}: {e}"));
        let ints: Vec<i64> = value
            .get("ints")
            .unwrap()
            .items()
            .unwrap()
            .iter()
            .map(|v| v.int().unwrap())
            .collect();
        let want_ints: Vec<i64> = want["ints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(ints, want_ints, "protocol {protocol}");
        let floats: Vec<f64> = value
            .get("floats")
            .unwrap()
            .items()
            .unwrap()
            .iter()
            .map(|v| match v {
                PyValue::Float(f) => *f,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(floats, [0.5, -1.25e10]);
        assert_eq!(
            value.get("text").unwrap().text().unwrap(),
            want["text"].as_str().unwrap()
        );
        let PyValue::Bytes(bytes) = value.get("bytes").unwrap() else {
            panic!("protocol {protocol}: bytes");
        };
        let sum: u64 = bytes.iter().map(|&b| b as u64).sum();
        assert_eq!(sum, want["bytes_sum"].as_u64().unwrap());
        assert_eq!(
            value.get("flags").unwrap().items().unwrap(),
            [PyValue::Bool(true), PyValue::Bool(false), PyValue::None]
        );
        let tuple = value.get("tuple").unwrap().items().unwrap();
        assert_eq!(tuple[0], PyValue::Int(1));
        assert_eq!(
            tuple[1],
            PyValue::Tuple(vec![PyValue::Int(2), PyValue::Int(3)])
        );
        let array = |key: &str| match value.get(key) {
            Some(PyValue::Array(a)) => a.clone(),
            other => panic!("protocol {protocol} {key}: {other:?}"),
        };
        let matrix = array("matrix");
        assert_eq!(matrix.shape, [3, 4]);
        assert!(matrix.dtype.ends_with("i8"), "{}", matrix.dtype);
        let values: Vec<i64> = matrix
            .data
            .chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let want_matrix: Vec<i64> = want["matrix"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(values, want_matrix);
        // A Fortran-ordered array: the flag, and the values in C order once transposed.
        let f = array("fortran");
        assert_eq!(f.shape, [2, 3]);
        let raw: Vec<f32> = f
            .data
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let c_order: Vec<f64> = if f.fortran_order {
            (0..2)
                .flat_map(|r| (0..3).map(move |c| (r, c)))
                .map(|(r, c)| raw[r + 2 * c] as f64)
                .collect()
        } else {
            raw.iter().map(|&v| v as f64).collect()
        };
        let want_f: Vec<f64> = want["fortran_c_order"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(c_order, want_f, "protocol {protocol}");
        let pixels = array("pixels");
        let sum: u64 = pixels.data.iter().map(|&b| b as u64).sum();
        assert_eq!(sum, want["pixels_sum"].as_u64().unwrap());
    }
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
