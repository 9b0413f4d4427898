//! Representation self-challenging (deep-object-reid's `model.self_challenging_cfg`) against
//! deep-object-reid's own `rsc()` (`tests/fixtures/train/rsc.npz`, `make_rsc_fixtures.py`):
//! the challenged embeddings, the scores on them and the gradients through them, with a linear
//! and with a cosine classifier; and a run that challenges its batches trains, differs from the
//! plain run and resumes exactly.

use burn::tensor::{Int, Tensor, TensorData};
use reid::device::default_device;
use reid::formats::npy::{NpyArray, read_npz};
use reid::models::embed::tensor_to_vec;
use reid::train::loss::cross_entropy;
use reid::train::rsc::{Challenge, RscConfig, challenge};
use reid::train::train;

use crate::common;
use crate::runs::{assert_resumes_exactly, config, dataset, history};

fn close(name: &str, ours: &[f32], theirs: &[f32], tolerance: f32) {
    assert_eq!(ours.len(), theirs.len(), "{name}");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!(
            (a - b).abs() <= tolerance * b.abs().max(1.0),
            "{name}[{i}]: {a} vs {b}"
        );
    }
}

#[test]
fn challenged_embeddings_scores_and_gradients_match_deep_object_reids() {
    let f = read_npz(common::fixture("train/rsc.npz")).unwrap();
    let device = default_device().autodiff();
    let float = |a: &NpyArray| -> Tensor<2> {
        Tensor::from_data(TensorData::new(a.to_f32(), a.shape.clone()), &device)
    };
    let config = RscConfig {
        drop_p: f["drop_p"].to_f32()[0],
        drop_batch_p: f["drop_batch_p"].to_f32()[0],
    };
    for head in ["linear", "cosine"] {
        let key = |k: &str| &f[&format!("{head}_{k}")];
        let features = float(key("features")).require_grad();
        let weight = float(key("weight")).require_grad();
        let bias: Tensor<1> = Tensor::from_data(
            TensorData::new(key("bias").to_f32(), key("bias").shape.clone()),
            &device,
        );
        let labels: Vec<i64> = key("labels").to_i64().unwrap();
        let n = labels.len();
        let targets: Tensor<1, Int> = Tensor::from_data(TensorData::new(labels, [n]), &device);
        let unchanged: Vec<bool> = key("unchanged")
            .to_i64()
            .unwrap()
            .iter()
            .map(|&v| v != 0)
            .collect();
        let draws = Challenge::from_draws(&config, &unchanged, &key("uniform").to_f32());
        let cosine = head == "cosine";
        let scores = |x: Tensor<2>| {
            if cosine {
                reid::models::layers::cosine_scores(x, weight.clone())
            } else {
                x.matmul(weight.clone()) + bias.clone().unsqueeze::<2>()
            }
        };
        let out = challenge(features.clone(), targets.clone(), scores, &draws);
        close(
            &format!("{head} out"),
            &tensor_to_vec(out.clone()),
            &key("out").to_f32(),
            1e-5,
        );
        let logits = scores(out);
        close(
            &format!("{head} logits"),
            &tensor_to_vec(logits.clone()),
            &key("logits").to_f32(),
            1e-5,
        );
        let scale = if cosine { 30.0 } else { 1.0 };
        let grads = cross_entropy(logits * scale, targets, 0.0).backward();
        let grad_f = tensor_to_vec(features.grad(&grads).unwrap());
        close(
            &format!("{head} d/dfeatures"),
            &grad_f,
            &key("grad_features").to_f32(),
            1e-4,
        );
        let grad_w = tensor_to_vec(weight.grad(&grads).unwrap());
        close(
            &format!("{head} d/dweight"),
            &grad_w,
            &key("grad_weight").to_f32(),
            1e-4,
        );
    }
}

/// A run with self-challenging trains (its loss falls), differs from the plain run, and
/// resumes exactly (the draws are a function of the seed and the batch).
#[test]
fn a_self_challenging_run_trains_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let challenged = |save: &std::path::Path, epochs| {
        let mut c = config(&root, save, epochs);
        c.model.self_challenging = Some(RscConfig {
            drop_p: 0.33,
            drop_batch_p: 0.9,
        });
        c.export_onnx = false;
        c
    };
    let run = assert_resumes_exactly(dir.path(), challenged, 3);
    let h = history(&run);
    assert!(h[2].loss < h[0].loss, "{} -> {}", h[0].loss, h[2].loss);
    let plain = dir.path().join("plain");
    let mut c = config(&root, &plain, 1);
    c.export_onnx = false;
    train(&c, &mut |_| true).unwrap();
    assert!((history(&plain)[0].loss - h[0].loss).abs() > 1e-4);
}
