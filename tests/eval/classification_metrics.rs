//! Classification, multilabel and face-verification metrics against scikit-learn (and a
//! brute-force search for the LFW fold protocol), from
//! tests/fixtures/make_classification_fixtures.py.

use std::path::Path;

use reid::eval::verification::{read_lfw_pairs, roc_auc, verify};
use reid::eval::{confusion_matrix, mean_class_accuracy, multilabel_scores};
use reid::formats::npy::read_npz;

fn fixture() -> std::collections::BTreeMap<String, reid::formats::npy::NpyArray> {
    read_npz(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/classification/metrics.npz"),
    )
    .unwrap()
}

#[test]
fn confusion_matrix_and_mean_class_accuracy_match_scikit_learn() {
    let f = fixture();
    let scores = f["scores"].to_f32();
    let labels: Vec<usize> = f["labels"]
        .to_i64()
        .unwrap()
        .iter()
        .map(|&l| l as usize)
        .collect();
    let matrix = confusion_matrix(&scores, 6, &labels).unwrap();
    let flat: Vec<i64> = matrix.iter().flatten().map(|&c| c as i64).collect();
    assert_eq!(flat, f["confusion"].to_i64().unwrap());
    let balanced = mean_class_accuracy(&scores, 6, &labels).unwrap();
    assert!((balanced - f["balanced"].to_f64()[0]).abs() < 1e-12);
    assert!(confusion_matrix(&scores, 6, &[9; 40]).is_err());
    assert!(confusion_matrix(&scores[1..], 6, &labels).is_err());
}

#[test]
fn multilabel_precision_recall_and_f1_match_scikit_learn() {
    let f = fixture();
    let targets: Vec<u8> = f["ml_targets"]
        .to_i64()
        .unwrap()
        .iter()
        .map(|&t| t as u8)
        .collect();
    let m = multilabel_scores(&f["ml_scores"].to_f32(), &targets, 5, 0.5).unwrap();
    let want = f["ml"].to_f64();
    for (got, want) in [m.cp, m.cr, m.op, m.or].iter().zip(&want) {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    let f1 = |p: f64, r: f64| 2.0 * p * r / (p + r);
    assert!((m.cf1 - f1(want[0], want[1])).abs() < 1e-12);
    assert!((m.of1 - f1(want[2], want[3])).abs() < 1e-12);
}

#[test]
fn face_verification_matches_the_reference_protocol() {
    let f = fixture();
    let sim = f["sim"].to_f32();
    let same: Vec<bool> = f["same"]
        .to_i64()
        .unwrap()
        .iter()
        .map(|&s| s != 0)
        .collect();
    assert!((roc_auc(&sim, &same).unwrap() - f["auc"].to_f64()[0]).abs() < 1e-12);
    let v = verify(&sim, &same, 10).unwrap();
    let folds = f["fold_accuracy"].to_f64();
    let mean = folds.iter().sum::<f64>() / folds.len() as f64;
    assert!(
        (v.accuracy - mean).abs() < 1e-12,
        "{} vs {mean}",
        v.accuracy
    );
    assert_eq!(v.best_threshold, f["best_threshold"].to_f32()[0]);
    assert!(verify(&sim, &same[1..], 10).is_err());
    assert!(roc_auc(&sim, &vec![true; sim.len()]).is_err());
}

#[test]
fn lfw_pairs_files_read_into_image_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pairs.txt");
    std::fs::write(
        &path,
        "10\t300\nAbel_Pacheco\t1\t4\nAbdel_Madi_Shabneh\t1\tDean_Barker\t1\n",
    )
    .unwrap();
    let pairs = read_lfw_pairs(&path, Path::new("/lfw")).unwrap();
    assert_eq!(pairs.len(), 2);
    assert!(pairs[0].same && !pairs[1].same);
    assert_eq!(
        pairs[0].second,
        Path::new("/lfw/Abel_Pacheco/Abel_Pacheco_0004.jpg")
    );
    assert_eq!(
        pairs[1].second,
        Path::new("/lfw/Dean_Barker/Dean_Barker_0001.jpg")
    );
    std::fs::write(&path, "10 300\nAbel_Pacheco one 4\n").unwrap();
    let err = read_lfw_pairs(&path, Path::new("/lfw"))
        .unwrap_err()
        .to_string();
    assert!(err.contains(":2"), "{err}");
}
