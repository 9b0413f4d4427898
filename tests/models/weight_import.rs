//! Weight import and checkpoints: torchreid files in every container, the classifier rule,
//! errors that name the offending keys, and our own checkpoints round-tripping exactly.

use crate::common::fixture;

use burn::module::Module;
use reid::Error;
use reid::device::default_device;
use reid::formats::npy::{NpyArray, read_npy};
use reid::models::embed::embed_array;
use reid::models::{Arch, ReidModel};
use reid::weights::{
    RawTensor, StateDict, load_checkpoint, load_state_dict, load_torchreid, matching_architectures,
    save_checkpoint, save_torchreid_safetensors,
};

fn small_input() -> NpyArray {
    read_npy(fixture("input_160x64.npy")).unwrap()
}

fn max_abs_diff(a: &NpyArray, b: &NpyArray) -> f32 {
    a.to_f32()
        .iter()
        .zip(b.to_f32())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn reference() -> NpyArray {
    read_npy(fixture("osnet_x0_25/out_160x64.npy")).unwrap()
}

#[test]
fn torchreid_engine_checkpoint_with_module_prefix_loads() {
    // A dict {state_dict, epoch, rank1, optimizer} saved from a DataParallel model.
    let device = default_device();
    let path = fixture("osnet_x0_25/checkpoint.pth.tar");
    let (model, report) = load_torchreid(Arch::OsnetX0_25, &path, &device).unwrap();
    assert!(report.skipped.is_empty());
    assert_eq!(model.num_classes(), 10);
    let got = embed_array(&model, &small_input(), 4, &device).unwrap();
    assert!(max_abs_diff(&got, &reference()) < 1e-4);
}

#[test]
fn classifier_with_another_class_count_is_skipped_and_reported() {
    let device = default_device();
    let dict = StateDict::read(fixture("osnet_x0_25/weights.safetensors")).unwrap();
    let model = ReidModel::new(Arch::OsnetX0_25, 751, &device);
    let (model, report) = load_state_dict(model, &dict).unwrap();
    assert_eq!(report.skipped.len(), 2, "{:?}", report.skipped);
    assert!(report.skipped.iter().all(|s| s.starts_with("classifier.")));
    assert_eq!(model.num_classes(), 751);
    // The embedding does not depend on the classifier.
    let got = embed_array(&model, &small_input(), 4, &device).unwrap();
    assert!(max_abs_diff(&got, &reference()) < 1e-4);
}

fn mismatch_message(dict: &StateDict) -> String {
    let model = ReidModel::new(Arch::OsnetX0_25, 10, &default_device());
    match load_state_dict(model, dict) {
        Err(Error::WeightMismatch { details, .. }) => details,
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a broken state dict was accepted"),
    }
}

#[test]
fn missing_unexpected_and_misshaped_keys_are_named() {
    let original = StateDict::read(fixture("osnet_x0_25/weights.safetensors")).unwrap();

    let mut missing = original.clone();
    missing.tensors.remove("conv2.0.conv2b.1.bn.running_var");
    let msg = mismatch_message(&missing);
    assert!(
        msg.contains("missing keys: conv2.0.conv2b.1.bn.running_var"),
        "{msg}"
    );

    let mut unexpected = original.clone();
    unexpected.tensors.insert(
        "attention.weight".into(),
        RawTensor {
            shape: vec![2],
            data: vec![0.0; 2],
        },
    );
    let msg = mismatch_message(&unexpected);
    assert!(msg.contains("unexpected keys: attention.weight"), "{msg}");

    let mut misshaped = original.clone();
    let t = misshaped.tensors.get_mut("fc.0.weight").unwrap();
    t.shape = vec![t.shape[1], t.shape[0]];
    let msg = mismatch_message(&misshaped);
    assert!(msg.contains("mis-shaped keys: fc.0.weight"), "{msg}");
}

#[test]
fn weights_of_another_architecture_are_rejected() {
    let device = default_device();
    let err = load_torchreid(
        Arch::OsnetAinX0_25,
        fixture("osnet_x0_25/weights.safetensors"),
        &device,
    )
    .unwrap_err();
    assert!(matches!(err, Error::WeightMismatch { .. }), "{err}");
}

#[test]
fn corrupt_and_foreign_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(fixture("osnet_x0_25/weights.safetensors")).unwrap();
    let pth = std::fs::read(fixture("osnet_x0_25/checkpoint.pth.tar")).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("text", b"hello, this is not a checkpoint".to_vec()),
        ("truncated.safetensors", good[..good.len() / 2].to_vec()),
        ("truncated-header.safetensors", good[..40].to_vec()),
        ("truncated.pth.tar", pth[..pth.len() / 3].to_vec()),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = StateDict::read(&path).unwrap_err();
        assert!(
            matches!(err, Error::WeightFormat { .. }),
            "{name}: unexpected {err}"
        );
    }
    let err = StateDict::read(dir.path().join("absent.pth")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn own_checkpoint_round_trips_exactly() {
    let device = default_device();
    let (model, _) = load_torchreid(
        Arch::OsnetAinX0_25,
        fixture("osnet_ain_x0_25/weights.safetensors"),
        &device,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bpk");
    save_checkpoint(&model, &path).unwrap();
    let restored = load_checkpoint(&path, &device).unwrap();
    assert_eq!(restored.arch, Arch::OsnetAinX0_25);
    assert_eq!(restored.num_classes(), 10);
    let input = small_input();
    let a = embed_array(&model, &input, 4, &device).unwrap();
    let b = embed_array(&restored, &input, 4, &device).unwrap();
    assert_eq!(a, b);
    // No temporary file is left beside the checkpoint.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn exported_torchreid_names_reload_to_the_same_model() {
    let device = default_device();
    let source = fixture("osnet_x0_5/weights.safetensors");
    let (model, _) = load_torchreid(Arch::OsnetX0_5, &source, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.safetensors");
    save_torchreid_safetensors(&model, &path).unwrap();
    let original = StateDict::read(&source).unwrap();
    let exported = StateDict::read(&path).unwrap();
    assert_eq!(
        original.tensors.keys().collect::<Vec<_>>(),
        exported.tensors.keys().collect::<Vec<_>>()
    );
    for (key, tensor) in &original.tensors {
        assert_eq!(&exported.tensors[key], tensor, "{key}");
    }
}

#[test]
fn architecture_is_recognised_from_the_keys() {
    let device = default_device();
    for arch in [Arch::OsnetX0_25, Arch::OsnetAinX0_5, Arch::OsnetIbnX1_0] {
        let dict =
            StateDict::read(fixture(&format!("{}/weights.safetensors", arch.name()))).unwrap();
        assert_eq!(matching_architectures(&dict, &device), vec![arch]);
    }
}

#[test]
fn training_mode_returns_logits_and_uses_batch_statistics() {
    let device = default_device();
    let (model, _) = load_torchreid(
        Arch::OsnetX0_25,
        fixture("osnet_x0_25/weights.safetensors"),
        &device,
    )
    .unwrap();
    let input = small_input();
    let eval = embed_array(&model, &input, 8, &device).unwrap();
    let train_device = device.clone().autodiff();
    let train_model = model.clone().fork(&train_device).train();
    let batch = burn::tensor::Tensor::<4>::from_data(
        burn::tensor::TensorData::new(input.to_f32(), input.shape.clone()),
        &train_device,
    );
    let out = train_model.logits(batch);
    assert_eq!(out.logits.dims(), [3, 10]);
    assert_eq!(out.features.dims(), [3, 512]);
    let train_features = reid::models::embed::tensor_to_vec(out.features);
    let worst = train_features
        .iter()
        .zip(eval.to_f32())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(
        worst > 1e-3,
        "training mode should normalize with batch statistics"
    );
}

#[test]
fn tiny_inputs_are_refused_not_crashed() {
    let device = default_device();
    let model = ReidModel::new(Arch::OsnetX0_25, 2, &device);
    let input = NpyArray::f32(vec![1, 3, 16, 8], vec![0.0; 3 * 16 * 8]);
    assert!(matches!(
        embed_array(&model, &input, 1, &device),
        Err(Error::InvalidInput(_))
    ));
    let wrong_layout = NpyArray::f32(vec![1, 64, 32, 3], vec![0.0; 64 * 32 * 3]);
    assert!(embed_array(&model, &wrong_layout, 1, &device).is_err());
    let mut nan = vec![0.0; 3 * 64 * 32];
    nan[5] = f32::NAN;
    let nan = NpyArray::f32(vec![1, 3, 64, 32], nan);
    assert!(embed_array(&model, &nan, 1, &device).is_err());
}
