//! Batch mixing (deep-object-reid's `loss.softmax.augmentations`: MixUp, CutMix, FMix) against
//! numpy's answers (`tests/fixtures/train/mixing.npz`, `make_mixing_fixtures.py`): the mixed
//! identity losses, the mixed batches, FMix's low-frequency image and mask; and a run that mixes
//! its batches trains, differs from the unmixed run and resumes exactly.

use std::collections::BTreeMap;

use burn::tensor::{Int, Tensor, TensorData};
use reid::formats::npy::{NpyArray, read_npz};
use reid::models::embed::tensor_to_vec;
use reid::train::loss::{mixed_am_softmax, mixed_cross_entropy};
use reid::train::mixing::{Mix, Region, binarise, low_frequency_image};
use reid::train::{MixKind, MixingConfig, train};

use crate::common;
use crate::runs::{assert_resumes_exactly, config, dataset, history};

fn arrays() -> BTreeMap<String, NpyArray> {
    read_npz(common::fixture("train/mixing.npz")).unwrap()
}

fn ints(a: &NpyArray) -> Tensor<1, Int> {
    let device = reid::device::default_device();
    Tensor::from_data(
        TensorData::new(a.to_i64().unwrap(), a.shape.clone()),
        &device,
    )
}

fn float<const D: usize>(a: &NpyArray) -> Tensor<D> {
    let device = reid::device::default_device();
    Tensor::from_data(TensorData::new(a.to_f32(), a.shape.clone()), &device)
}

#[test]
fn mixed_identity_losses_match_deep_object_reids_soft_targets() {
    let f = arrays();
    for (lam, key) in [(0.3f32, "3"), (0.5, "5"), (0.8, "8")] {
        let (own, partner) = (ints(&f["own"]), ints(&f["partner"]));
        let ce = mixed_cross_entropy(float(&f["logits"]), own.clone(), partner.clone(), lam, 0.1)
            .into_scalar::<f32>();
        let want = f[&format!("ce_{key}")].to_f64()[0] as f32;
        assert!(
            (ce - want).abs() < 1e-5 * want.abs().max(1.0),
            "CE lam {lam}: {ce} vs {want}"
        );
        let am = mixed_am_softmax(float(&f["cosine"]), own, partner, lam, (0.35, 30.0), 0.1)
            .into_scalar::<f32>();
        let want = f[&format!("am_{key}")].to_f64()[0] as f32;
        assert!(
            (am - want).abs() < 1e-4 * want.abs().max(1.0),
            "AM lam {lam}: {am} vs {want}"
        );
    }
}

#[test]
fn mixup_and_cutmix_batches_match_numpys() {
    let f = arrays();
    let partner: Vec<usize> = f["perm"]
        .to_i64()
        .unwrap()
        .iter()
        .map(|&i| i as usize)
        .collect();
    let images = || float::<4>(&f["images"]);
    let mixup = Mix {
        partner: partner.clone(),
        lam: 0.35,
        region: Region::Blend,
    };
    let got = tensor_to_vec(mixup.apply(images()));
    let want = f["mixup"].to_f32();
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(worst < 1e-6, "MixUp off by {worst}");
    let cutmix = Mix {
        partner,
        lam: 0.0,
        region: Region::Box {
            rows: 1..6,
            cols: 2..5,
        },
    };
    assert_eq!(tensor_to_vec(cutmix.apply(images())), f["cutmix"].to_f32());
}

#[test]
fn fmix_masks_match_numpys_inverse_fourier_transform() {
    let f = arrays();
    for name in ["fmix_even", "fmix_odd"] {
        let shape = f[&format!("{name}_shape")].to_i64().unwrap();
        let (h, w, keep) = (shape[0] as usize, shape[1] as usize, shape[2] as usize);
        let low = low_frequency_image(&f[&format!("{name}_noise")].to_f32(), h, w, 3.0);
        let want = f[&format!("{name}_low")].to_f32();
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let worst = low
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-5 * scale, "{name}: off by {worst} of {scale}");
        // lam 0.37 rounded up: the same pixels keep the image's own values.
        let mask = binarise(&low, 0.37, true);
        assert_eq!(mask.iter().filter(|&&m| m == 1.0).count(), keep);
        assert_eq!(mask, f[&format!("{name}_mask")].to_f32(), "{name}");
    }
}

#[test]
fn a_mixing_run_trains_differs_from_the_plain_run_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let plain = config(&root, &dir.path().join("plain"), 1);
    let plain_loss = train(&plain, &mut |_| true).unwrap().history[0].loss;
    for kind in [MixKind::Mixup, MixKind::Cutmix, MixKind::Fmix] {
        let mixed = |save: &std::path::Path, epochs| {
            let mut c = config(&root, save, epochs);
            c.export_onnx = false;
            c.loss.mixing = Some(MixingConfig::new(kind));
            c
        };
        let run = assert_resumes_exactly(&dir.path().join(format!("{kind:?}")), mixed, 2);
        let loss = history(&run)[0].loss;
        assert!(
            loss.is_finite() && (loss - plain_loss).abs() > 1e-3,
            "{kind:?}: {loss} vs {plain_loss}"
        );
    }
    // Not with the triplet loss.
    let mut c = config(&root, &dir.path().join("refused"), 1);
    c.loss.mixing = Some(MixingConfig::new(MixKind::Cutmix));
    c.loss.reid.triplet_weight = 1.0;
    let err = train(&c, &mut |_| true).unwrap_err().to_string();
    assert!(err.contains("batch mixing"), "{err}");
}
