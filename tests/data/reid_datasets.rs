//! Datasets: the synthetic generator (deterministic, Market-1501 layout, a sound re-id
//! protocol, hard enough to need learning) and the readers of the standard layouts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use reid::data::{ReidDataset, Sample, SynthOptions, load_dataset, synthesize};
use reid::eval::{Labels, Matrix, Metric, distance_matrix, evaluate_market1501};

fn small() -> SynthOptions {
    SynthOptions {
        ids: 24,
        cameras: 4,
        distractors: 10,
        seed: 11,
        ..Default::default()
    }
}

fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for split in ["bounding_box_train", "query", "bounding_box_test"] {
        for entry in std::fs::read_dir(dir.join(split)).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
        }
    }
    out
}

#[test]
fn synthesis_is_deterministic_and_seeded() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let summary = synthesize(a.path(), &small()).unwrap();
    assert_eq!(synthesize(b.path(), &small()).unwrap(), summary);
    let other = SynthOptions {
        seed: 12,
        ..small()
    };
    synthesize(c.path(), &other).unwrap();
    let (fa, fb, fc) = (files(a.path()), files(b.path()), files(c.path()));
    assert_eq!(fa.len(), summary.train + summary.query + summary.gallery);
    assert!(fa == fb, "same seed, different files");
    let same_name_differs = fa
        .iter()
        .filter(|(name, bytes)| fc.get(*name).is_some_and(|other| other != *bytes))
        .count();
    assert!(same_name_differs > 0, "another seed gave the same images");
    // A second run into the same folder is refused rather than mixing two datasets.
    assert!(synthesize(a.path(), &small()).is_err());
}

fn pids(samples: &[Sample]) -> BTreeSet<i64> {
    samples.iter().map(|s| s.pid).collect()
}

#[test]
fn synthetic_data_reads_back_as_market1501_with_a_valid_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("market1501");
    let summary = synthesize(&root, &small()).unwrap();
    // Found both as `root/market1501` (torchreid's place) and as the folder itself.
    let data = load_dataset("market1501", dir.path()).unwrap();
    assert_eq!(data, load_dataset("market1501", &root).unwrap());
    assert_eq!(
        (data.train.len(), data.query.len(), data.gallery.len()),
        (summary.train, summary.query, summary.gallery)
    );
    assert_eq!(pids(&data.train), (0..12).collect());
    let test_ids: BTreeSet<i64> = (13..=24).collect();
    assert_eq!(pids(&data.query), test_ids);
    assert!(pids(&data.gallery).contains(&0), "distractors");
    assert!(
        data.train
            .iter()
            .chain(&data.query)
            .all(|s| (0..4).contains(&s.camera))
    );
    // Every query has a match in the gallery seen by another camera.
    for q in &data.query {
        assert!(
            data.gallery
                .iter()
                .any(|g| g.pid == q.pid && g.camera != q.camera),
            "{}",
            q.path.display()
        );
    }
    // Images decode at the requested size.
    let bytes = std::fs::read(&data.query[0].path).unwrap();
    let (_, w, h) = reid::preprocess::decode(&bytes).unwrap();
    assert_eq!((w, h), (64, 128));
    assert!(root.join("synth.json").is_file());
}

/// A colour histogram of the central region: what an untrained descriptor can do.
fn histogram(sample: &Sample) -> Vec<f32> {
    let (rgb, w, h) = reid::preprocess::decode(&std::fs::read(&sample.path).unwrap()).unwrap();
    let mut hist = vec![0f32; 64];
    for y in h / 6..h * 5 / 6 {
        for x in w / 4..w * 3 / 4 {
            let p = &rgb[(y * w + x) * 3..][..3];
            let bin = (p[0] as usize / 64) * 16 + (p[1] as usize / 64) * 4 + p[2] as usize / 64;
            hist[bin] += 1.0;
        }
    }
    hist
}

fn features(samples: &[Sample]) -> Matrix {
    let data: Vec<f32> = samples.iter().flat_map(histogram).collect();
    Matrix::new(samples.len(), 64, data).unwrap()
}

fn evaluate(data: &ReidDataset) -> f64 {
    let distances = distance_matrix(
        &features(&data.query),
        &features(&data.gallery),
        Metric::Cosine,
    )
    .unwrap();
    let labels = |s: &[Sample]| -> (Vec<i64>, Vec<i64>) {
        (
            s.iter().map(|x| x.pid).collect(),
            s.iter().map(|x| x.camera as i64).collect(),
        )
    };
    let (qp, qc) = labels(&data.query);
    let (gp, gc) = labels(&data.gallery);
    let labels = Labels {
        query_ids: &qp,
        gallery_ids: &gp,
        query_cams: &qc,
        gallery_cams: &gc,
    };
    evaluate_market1501(&distances, labels, 10).unwrap().map
}

#[test]
fn identities_are_learnable_but_not_trivial() {
    let dir = tempfile::tempdir().unwrap();
    let options = SynthOptions {
        ids: 100,
        cameras: 6,
        distractors: 20,
        seed: 3,
        ..Default::default()
    };
    synthesize(dir.path(), &options).unwrap();
    let data = load_dataset("market1501", dir.path()).unwrap();
    let map = evaluate(&data);
    eprintln!("colour-histogram mAP on synthetic data: {map:.3}");
    // 50 test identities: chance is about 2 %. Colours carry identity, but cameras (light,
    // colour cast, background, blur, noise) keep a histogram far from perfect.
    assert!(map > 0.15, "mAP {map}: identities are not distinguishable");
    assert!(
        map < 0.8,
        "mAP {map}: a colour histogram solves it; cameras add too little"
    );
}

#[test]
fn missing_datasets_name_the_expected_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_dataset("market1501", dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("market1501") && err.contains("bounding_box_train"),
        "{err}"
    );
    let err = load_dataset("msmt17", dir.path()).unwrap_err().to_string();
    assert!(err.contains("list_train.txt"), "{err}");
    assert!(load_dataset("imagenet", dir.path()).is_err());
}

#[test]
fn market_and_msmt_layouts_follow_torchreid() {
    let dir = tempfile::tempdir().unwrap();
    let put = |rel: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    };
    let duke = "dukemtmc-reid/DukeMTMC-reID";
    put(&format!("{duke}/bounding_box_train/0005_c2_f0046985.jpg"));
    put(&format!("{duke}/bounding_box_train/0001_c1_f0000001.jpg"));
    put(&format!("{duke}/bounding_box_train/0005_c8_f0046986.jpg"));
    put(&format!("{duke}/query/0007_c3_f0000002.jpg"));
    put(&format!("{duke}/bounding_box_test/0007_c4_f0000003.jpg"));
    put(&format!("{duke}/bounding_box_test/-1_c4_f0000004.jpg"));
    let d = load_dataset("dukemtmcreid", dir.path()).unwrap();
    let train: Vec<(i64, i32)> = d.train.iter().map(|s| (s.pid, s.camera)).collect();
    assert_eq!(train, [(0, 0), (1, 1), (1, 7)]);
    assert_eq!(d.gallery.len(), 1, "junk (-1) is dropped");

    let msmt = dir.path().join("msmt17/MSMT17_V1");
    let list = |name: &str, lines: &str| std::fs::write(msmt.join(name), lines).unwrap();
    std::fs::create_dir_all(&msmt).unwrap();
    list(
        "list_train.txt",
        "0003/0003_000_01_0303morning_0015_0.jpg 3\n0001/0001_001_14_0303noon_0010_1.jpg 1\n",
    );
    list(
        "list_val.txt",
        "0003/0003_005_07_0303afternoon_0001_0.jpg 3\n",
    );
    list(
        "list_query.txt",
        "0000/0000_000_05_0303morning_0007_0.jpg 0\n",
    );
    list(
        "list_gallery.txt",
        "0000/0000_002_09_0303noon_0001_2.jpg 0\n\n",
    );
    let m = load_dataset("msmt17", dir.path()).unwrap();
    let train: Vec<(i64, i32)> = m.train.iter().map(|s| (s.pid, s.camera)).collect();
    assert_eq!(train, [(1, 0), (0, 13), (1, 6)]);
    assert!(
        m.train[0]
            .path
            .ends_with("MSMT17_V1/train/0003/0003_000_01_0303morning_0015_0.jpg")
    );
    assert_eq!((m.query[0].camera, m.gallery[0].camera), (4, 8));
    list("list_query.txt", "0000/broken.jpg\n");
    let err = load_dataset("msmt17", dir.path()).unwrap_err().to_string();
    assert!(err.contains("list_query.txt:1"), "{err}");
}

/// AugMix's operations against Pillow's (tests/fixtures/make_augmix_fixtures.py): the
/// per-channel look-up tables, shifts, rotations and shears (bilinear) pixel for pixel.
#[test]
fn augmix_operations_match_pillow() {
    use reid::data::augmix::{Op, apply};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/augmix/ops.npz");
    let f = reid::formats::npy::read_npz(path).unwrap();
    let as_u8 =
        |name: &str| -> Vec<u8> { f[name].to_i64().unwrap().iter().map(|&v| v as u8).collect() };
    let image = as_u8("image");
    let (h, w) = (f["image"].shape[0], f["image"].shape[1]);
    let cases = [
        ("autocontrast", Op::AutoContrast),
        ("equalize", Op::Equalize),
        ("posterize_3", Op::Posterize(3)),
        ("solarize_200", Op::Solarize(200)),
        ("rotate_7", Op::Rotate(7.0)),
        ("rotate_-5", Op::Rotate(-5.0)),
        ("shear_x_0.25", Op::ShearX(0.25)),
        ("shear_y_-0.2", Op::ShearY(-0.2)),
        ("translate_x_5", Op::TranslateX(5.0)),
        ("translate_y_-6", Op::TranslateY(-6.0)),
    ];
    for (name, op) in cases {
        let ours = apply(op, &image, w, h);
        let theirs = as_u8(name);
        let diffs: Vec<i32> = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .collect();
        let max = diffs.iter().max().copied().unwrap();
        assert_eq!(max, 0, "{name}: off by {max}");
    }
    // The mixture: seeded, within the pixel range, different from the image and per seed.
    let mix = |seed| reid::data::augmix::augmix(&image, w, h, &mut reid::data::rng::Rng::new(seed));
    let (a, b) = (mix(1), mix(2));
    assert_eq!(a, mix(1));
    assert!(a.iter().all(|v| (0.0..=255.0).contains(v)));
    let moved = |m: &[f32]| {
        m.iter()
            .zip(&image)
            .any(|(x, &y)| (x - y as f32).abs() > 2.0)
    };
    assert!(moved(&a) && moved(&b) && a != b);
}

/// A data root laid out like the fixture's fake copies of the small benchmarks (empty image
/// files), with torchreid's split files and the datasets' .mat files.
fn benchmark_root() -> (tempfile::TempDir, serde_json::Value) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets");
    let layout: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("layout.json")).unwrap())
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for image in layout["images"].as_array().unwrap() {
        let path = dir.path().join(image.as_str().unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }
    for file in layout["files"].as_array().unwrap() {
        let rel = file.as_str().unwrap();
        let to = dir.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(fixtures.join("files").join(rel), to).unwrap();
    }
    let expected = std::fs::read_to_string(fixtures.join("expected.json")).unwrap();
    (dir, serde_json::from_str(&expected).unwrap())
}

type Listing = Vec<(String, i64, i32)>;

fn listing(samples: &[Sample], root: &Path) -> Listing {
    let mut out: Listing = samples
        .iter()
        .map(|s| {
            let rel = s.path.strip_prefix(root).unwrap_or(&s.path);
            (rel.display().to_string(), s.pid, s.camera)
        })
        .collect();
    out.sort();
    out
}

fn expected_listing(value: &serde_json::Value) -> Listing {
    let mut out: Listing = value
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let e = e.as_array().unwrap();
            let path = e[0].as_str().unwrap().to_string();
            (path, e[1].as_i64().unwrap(), e[2].as_i64().unwrap() as i32)
        })
        .collect();
    out.sort();
    out
}

/// The listing with each identity renamed to the position of its first image.
fn by_first_image(list: Listing) -> Listing {
    let mut names = BTreeMap::new();
    list.iter().enumerate().for_each(|(i, (_, pid, _))| {
        names.entry(*pid).or_insert(i as i64);
    });
    list.into_iter()
        .map(|(p, pid, c)| (p, names[&pid], c))
        .collect()
}

/// Compares every split torchreid built in the fixture with ours, for the keys `only` lets
/// through; returns how many were compared.
fn compare_with_torchreid(
    root: &Path,
    expected: &serde_json::Value,
    only: &dyn Fn(&str) -> bool,
) -> usize {
    let mut compared = 0;
    for (key, want) in expected.as_object().unwrap() {
        let (name, split) = key.split_once('/').unwrap();
        if !only(name) {
            continue;
        }
        let split: usize = split.parse().unwrap();
        let got = reid::data::load_dataset_split(name, root, split)
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        for (part, ours) in [
            ("train", &got.train),
            ("query", &got.query),
            ("gallery", &got.gallery),
        ] {
            let (mut ours, mut theirs) = (listing(ours, root), expected_listing(&want[part]));
            assert!(!theirs.is_empty() || part != "query", "{key}");
            if name == "sensereid" {
                // torchreid numbers SenseReID's identities in the iteration order of a Python
                // set, ours in increasing order: compare which images share an identity.
                (ours, theirs) = (by_first_image(ours), by_first_image(theirs));
            }
            assert_eq!(ours, theirs, "{key} {part}");
        }
        compared += 1;
    }
    compared
}

/// VIPeR, CUHK01, GRID, PRID2011, iLIDS, SenseReID and the four CUHK03 variants give exactly
/// torchreid 0.2.5's train / query / gallery lists for the same files: from torchreid's split
/// files (written with another machine's absolute paths), and for GRID and CUHK03's new
/// protocol also from the datasets' own .mat files.
#[test]
fn small_benchmarks_read_like_torchreid() {
    let (dir, expected) = benchmark_root();
    let root = dir.path();
    assert_eq!(compare_with_torchreid(root, &expected, &|_| true), 22);
    for generated in [
        "grid/splits.json",
        "cuhk03/splits_new_detected.json",
        "cuhk03/splits_new_labeled.json",
    ] {
        std::fs::remove_file(root.join(generated)).unwrap();
    }
    let from_mat = |name: &str| matches!(name, "grid" | "cuhk03" | "cuhk03_labeled");
    assert_eq!(compare_with_torchreid(root, &expected, &from_mat), 5);
    // Reading GRID from its .mat saved torchreid's split file again.
    assert!(root.join("grid/splits.json").is_file());
    assert!(
        reid::data::load_dataset_split("viper", root, 20)
            .unwrap_err()
            .to_string()
            .contains("20 splits")
    );
    assert!(reid::data::load_dataset_split("sensereid", root, 1).is_err());
}

/// Without torchreid's split files, the random partitions are drawn with its rules from a
/// fixed seed and saved in its format: disjoint training and test identities, half of them
/// training, each query identity in the gallery, and the same lists when read back.
#[test]
fn small_benchmark_splits_are_drawn_and_saved_when_missing() {
    let (dir, _) = benchmark_root();
    let root = dir.path();
    let files = [
        ("viper", "viper/splits.json", 20),
        ("cuhk01", "cuhk01/splits.json", 20),
        ("prid", "prid2011/splits_single_shot.json", 10),
        ("ilids", "ilids/splits.json", 10),
    ];
    for (name, file, count) in files {
        std::fs::remove_file(root.join(file)).unwrap();
        let first = reid::data::load_dataset_split(name, root, 0).unwrap();
        let saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join(file)).unwrap()).unwrap();
        assert_eq!(saved.as_array().unwrap().len(), count, "{name}");
        assert_eq!(
            reid::data::load_dataset_split(name, root, 0).unwrap(),
            first,
            "{name}"
        );
        for split in [0, 1, count - 1] {
            let d = reid::data::load_dataset_split(name, root, split).unwrap();
            let ids = |s: &[Sample]| s.iter().map(|x| x.pid).collect::<BTreeSet<_>>();
            let (train, query, gallery) = (ids(&d.train), ids(&d.query), ids(&d.gallery));
            assert_eq!(
                train,
                (0..train.len() as i64).collect(),
                "{name}: labels 0..n"
            );
            assert!(query.is_subset(&gallery), "{name}");
            assert!(!query.is_empty() && !d.train.is_empty(), "{name}");
            // Training and test images never share a file.
            let train_files: BTreeSet<_> = d.train.iter().map(|s| &s.path).collect();
            assert!(
                d.query
                    .iter()
                    .chain(&d.gallery)
                    .all(|s| !train_files.contains(&s.path)),
                "{name}"
            );
        }
        let a = reid::data::load_dataset_split(name, root, 0).unwrap();
        let b = reid::data::load_dataset_split(name, root, 2).unwrap();
        assert_ne!(
            listing(&a.train, root),
            listing(&b.train, root),
            "{name}: partitions differ"
        );
    }
    // A missing dataset names the folder it expected.
    let empty = tempfile::tempdir().unwrap();
    for name in [
        "viper",
        "grid",
        "cuhk01",
        "prid",
        "ilids",
        "sensereid",
        "cuhk03",
    ] {
        let err = load_dataset(name, empty.path()).unwrap_err().to_string();
        assert!(
            err.contains(&empty.path().display().to_string()),
            "{name}: {err}"
        );
    }
}

/// CUHK03 from the release alone (`cuhk03_release/cuhk-03.mat`, MATLAB 7.3 / HDF5, and the
/// new-protocol .mat files): the images come out with torchreid's names and pixels, and all
/// four variants give torchreid's lists.
#[test]
fn cuhk03_unpacks_its_hdf5_release_like_torchreid() {
    let (dir, expected) = benchmark_root();
    let root = dir.path();
    let cuhk03 = root.join("cuhk03");
    for generated in ["images_detected", "images_labeled"] {
        std::fs::remove_dir_all(cuhk03.join(generated)).unwrap();
    }
    for protocol in ["new", "classic"] {
        for kind in ["detected", "labeled"] {
            std::fs::remove_file(cuhk03.join(format!("splits_{protocol}_{kind}.json"))).unwrap();
        }
    }
    let only_cuhk03 = |name: &str| name.starts_with("cuhk03");
    assert_eq!(compare_with_torchreid(root, &expected, &only_cuhk03), 6);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets");
    let pixels: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("cuhk03_pixels.json")).unwrap(),
    )
    .unwrap();
    let pixels = pixels.as_object().unwrap();
    for (name, want) in pixels {
        let image = image::open(cuhk03.join(name)).unwrap().to_rgb8();
        let shape: Vec<u64> = want["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(
            shape,
            [image.height() as u64, image.width() as u64, 3],
            "{name}"
        );
        let values: Vec<u8> = want["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        assert_eq!(image.into_raw(), values, "{name}");
    }
    let written = |kind: &str| std::fs::read_dir(cuhk03.join(kind)).unwrap().count();
    assert_eq!(
        written("images_detected") + written("images_labeled"),
        pixels.len()
    );
    // A damaged release is an error, not a crash, at any length.
    let release = cuhk03.join("cuhk03_release/cuhk-03.mat");
    let bytes = std::fs::read(&release).unwrap();
    std::fs::remove_dir_all(cuhk03.join("images_labeled")).unwrap();
    for cut in [0, 100, 2000, bytes.len() / 2, bytes.len() - 10] {
        std::fs::write(&release, &bytes[..cut]).unwrap();
        assert!(
            load_dataset("cuhk03_labeled", root).is_err(),
            "cut at {cut}"
        );
        assert!(!cuhk03.join("images_labeled").exists(), "cut at {cut}");
    }
}

/// deep-object-reid's classification annotations: the list format (with and without a
/// `classes` line, skipping bad lines and missing images) and the multilabel JSON (classes
/// sorted, unknown labels dropped, unlabelled images kept as negatives).
#[test]
fn classification_annotations_read_as_deep_object_reid_reads_them() {
    use reid::data::classification::{read_classification_list, read_multilabel_json};
    let dir = tempfile::tempdir().unwrap();
    for name in ["a.jpg", "b.jpg", "c.jpg"] {
        std::fs::create_dir_all(dir.path().join("img")).unwrap();
        std::fs::write(dir.path().join("img").join(name), b"").unwrap();
    }
    let list = dir.path().join("train.txt");
    std::fs::write(&list, "classes cat,dog,bird\nimg/a.jpg 2\nimg/b.jpg 0\nbad line here\nimg/missing.jpg 1\nimg/c.jpg 1\n").unwrap();
    let d = read_classification_list(&list).unwrap();
    assert_eq!(d.classes, ["cat", "dog", "bird"]);
    let labels: Vec<(String, Vec<usize>)> = d
        .samples
        .iter()
        .map(|(p, l)| {
            (
                p.file_name().unwrap().to_str().unwrap().to_string(),
                l.clone(),
            )
        })
        .collect();
    assert_eq!(
        labels,
        [
            ("a.jpg".to_string(), vec![2]),
            ("b.jpg".into(), vec![0]),
            ("c.jpg".into(), vec![1])
        ]
    );
    assert!(!d.multilabel && d.samples[0].0.starts_with(dir.path()));
    // Without a classes line the labels that occur name the classes.
    std::fs::write(&list, "img/a.jpg 3\nimg/b.jpg 0\n").unwrap();
    assert_eq!(
        read_classification_list(&list).unwrap().classes,
        ["0", "1", "2", "3"]
    );
    // A label beyond the named classes is an error.
    std::fs::write(&list, "classes cat\nimg/a.jpg 1\n").unwrap();
    assert!(read_classification_list(&list).is_err());
    let json = dir.path().join("multilabel.json");
    std::fs::write(
        &json,
        r#"{"classes": ["person", "car", "bike"], "images": [["img/a.jpg", ["car", "person"]], ["img/b.jpg", []], ["img/c.jpg", ["bike", "tree"]]]}"#,
    )
    .unwrap();
    let m = read_multilabel_json(&json).unwrap();
    assert_eq!(m.classes, ["bike", "car", "person"]);
    let labels: Vec<Vec<usize>> = m.samples.iter().map(|(_, l)| l.clone()).collect();
    assert_eq!(labels, [vec![1, 2], vec![], vec![0]]);
    assert!(m.multilabel);
    std::fs::write(&json, r#"{"classes": ["x"], "images": [["a.jpg"]]}"#).unwrap();
    assert!(read_multilabel_json(&json).is_err());
}

/// torchreid's `combineall` on fake Market-1501 and DukeMTMC-reID layouts
/// (`tests/fixtures/make_combineall_fixtures.py`): the same training images, the same images
/// sharing an identity (torchreid numbers identities in a Python set's order, ours in
/// increasing order), the training identities first, Market-1501's junk left out.
#[test]
fn combineall_adds_query_and_gallery_identities_as_torchreid_does() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets/combineall.json");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    for (name, want) in expected.as_object().unwrap() {
        let dir = tempfile::tempdir().unwrap();
        for rel in want["layout"].as_array().unwrap() {
            let path = dir.path().join(rel.as_str().unwrap());
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"").unwrap();
        }
        let mut data = load_dataset(name, dir.path()).unwrap();
        let (trained, query, gallery) = (
            data.num_train_pids() as i64,
            data.query.clone(),
            data.gallery.clone(),
        );
        data.combine_all(reid::data::junk_pids(name));
        let theirs = expected_listing(&want["train"]);
        let ours = listing(&data.train, dir.path());
        assert_eq!(ours.len(), theirs.len(), "{name}");
        assert_eq!(
            by_first_image(ours.clone()),
            by_first_image(theirs),
            "{name}"
        );
        // The added identities come after the training ones; query and gallery are unchanged.
        for (path, pid, _) in &ours {
            assert_eq!(
                path.contains("bounding_box_train"),
                *pid < trained,
                "{name}: {path}"
            );
        }
        assert_eq!((data.query, data.gallery), (query, gallery));
    }
}
