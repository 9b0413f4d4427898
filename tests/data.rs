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
/// per-channel look-up tables and whole-pixel shifts exactly; rotation and shear (bilinear)
/// within one grey level (Pillow samples in fixed point).
#[test]
fn augmix_operations_match_pillow() {
    use reid::data::augmix::{Op, apply};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/augmix/ops.npz");
    let f = reid::npy::read_npz(path).unwrap();
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
        let bilinear = matches!(op, Op::Rotate(_) | Op::ShearX(_) | Op::ShearY(_));
        assert!(max <= i32::from(bilinear), "{name}: off by {max}");
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
