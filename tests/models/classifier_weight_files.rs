//! Numerical parity of the classification and face models with their references: timm for
//! MobileNetV3 and EfficientNet-B0, torchreid 0.2.5 for Inception-V4, and a PyTorch
//! MobileFaceNet (InsightFace_Pytorch's module names).
//!
//! The fixtures were written by `tests/fixtures/make_classifier_fixtures.py`: random weights
//! with randomized normalization statistics and PReLU slopes, stored in half precision, one
//! input batch, and the reference's eval-mode embedding (timm's pre-logits) and logits: weight
//! files under timm's names load and give the reference's outputs. Every architecture's parity
//! (without weight files) is in `tests/models/zoo_parity.rs`.

use crate::common;

use common::assert_close;

use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use reid::device::default_device;
use reid::formats::npy::read_npy;
use reid::models::Arch;
use reid::models::embed::tensor_to_vec;
use reid::weights::load_torchreid;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn check(arch: Arch, dir: &Path) {
    let device = default_device();
    let (model, report) = load_torchreid(arch, dir.join("weights.safetensors"), &device)
        .unwrap_or_else(|e| panic!("{arch}: {e}"));
    assert!(report.skipped.is_empty(), "{arch}: {:?}", report.skipped);
    assert_eq!(model.num_classes(), 10, "{arch}: classifier from the file");
    let input = read_npy(dir.join("input.npy")).unwrap();
    let shape: [usize; 4] = input.shape.clone().try_into().unwrap();
    let x = Tensor::<4>::from_data(TensorData::new(input.to_f32(), shape), &device);
    let out = model.logits(x);
    let embedding = read_npy(dir.join("embedding.npy")).unwrap();
    let logits = read_npy(dir.join("logits.npy")).unwrap();
    assert_eq!(out.features.dims().to_vec(), embedding.shape, "{arch}");
    assert_close(
        &format!("{arch} embedding"),
        &tensor_to_vec(out.features),
        &embedding.to_f32(),
    );
    assert_close(
        &format!("{arch} logits"),
        &tensor_to_vec(out.logits),
        &logits.to_f32(),
    );
}

macro_rules! parity {
    ($($test:ident => $arch:expr),* $(,)?) => {$(
        #[test]
        fn $test() {
            check($arch, &fixtures().join("classifiers").join($arch.name()));
        }
    )*};
}

parity! {
    mobilenetv3_small => Arch::Mobilenetv3Small,
    mobilenetv3_small_075 => Arch::Mobilenetv3Small075,
    mobilenetv3_large => Arch::Mobilenetv3Large,
    efficientnet_b0 => Arch::EfficientnetB0,
    mobilefacenet => Arch::Mobilefacenet,
}

#[test]
fn timm_names_are_accepted_and_sizes_checked() {
    assert_eq!(
        "mobilenetv3_large_100".parse::<Arch>().unwrap(),
        Arch::Mobilenetv3Large
    );
    let device = default_device();
    let face = reid::models::ReidModel::new(Arch::Mobilefacenet, 2, &device);
    assert!(face.check_input_size(112, 112).is_ok());
    assert!(face.check_input_size(96, 96).is_err());
    assert_eq!(face.feature_dim(), 128);
}
