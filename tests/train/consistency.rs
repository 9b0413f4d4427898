//! deep-object-reid's `mixing_loss`: the consistency of each image's augmented copies
//! (`data.num_sampled_packages`) against its own code on fixed logits
//! (`tests/fixtures/train/consistency.npz`, `make_consistency_fixtures.py`), the batches of
//! copies, and a run that trains with them and resumes exactly.

use burn::tensor::{Tensor, TensorData};
use reid::device::default_device;
use reid::formats::npy::read_npz;
use reid::models::embed::tensor_to_vec;
use reid::train::loader::{packaged_batch, training_batch};
use reid::train::loss::package_consistency;

use crate::common;
use crate::runs::{assert_resumes_exactly, config, dataset, history};

#[test]
fn consistency_loss_and_gradient_match_deep_object_reids() {
    let f = read_npz(common::fixture("train/consistency.npz")).unwrap();
    let device = default_device().autodiff();
    for name in ["softmax", "am"] {
        let key = |k: &str| &f[&format!("{name}_{k}")];
        let logits: Tensor<2> = Tensor::from_data(
            TensorData::new(key("logits").to_f32(), key("logits").shape.clone()),
            &device,
        )
        .require_grad();
        let packages = key("packages").to_i64().unwrap()[0] as usize;
        let scale = key("scale").to_f32()[0];
        let loss = package_consistency(logits.clone() * scale, packages);
        let want = key("loss").to_f64()[0] as f32;
        let got = loss.clone().into_scalar::<f32>();
        assert!(
            (got - want).abs() < 1e-5 * want.abs().max(1.0),
            "{name}: {got} vs {want}"
        );
        let grads = loss.backward();
        let grad = tensor_to_vec(logits.grad(&grads).unwrap());
        for (i, (a, b)) in grad.iter().zip(key("grad").to_f32()).enumerate() {
            assert!((a - b).abs() < 1e-5, "{name} grad[{i}]: {a} vs {b}");
        }
    }
}

/// Copies of an image sit next to each other with their own draws; the first copy is the
/// image a batch without copies holds. A run with copies and their consistency trains,
/// differs from the plain run and resumes exactly.
#[test]
fn copies_batch_train_and_resume_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let c = config(&root, &dir.path().join("x"), 1);
    let set = reid::data::load_dataset("market1501", &root).unwrap();
    let pre = reid::preprocess::Preprocessing::torchreid(64, 32);
    let augment = reid::data::transforms::Augment::from_names(&c.data.transforms).unwrap();
    let device = default_device();
    let indices = [3, 0, 5];
    let (copies, labels) =
        packaged_batch(&set.train, &indices, 3, &pre, &augment, 1, 0, &device).unwrap();
    let (single, _) = training_batch(&set.train, &indices, &pre, &augment, 1, 0, &device).unwrap();
    assert_eq!(copies.dims()[0], 9);
    let labels = tensor_to_vec(labels.float());
    let want: Vec<f32> = indices
        .iter()
        .flat_map(|&i| [set.train[i].pid as f32; 3])
        .collect();
    assert_eq!(labels, want);
    let per = 3 * 64 * 32;
    let (copies, single) = (tensor_to_vec(copies), tensor_to_vec(single));
    for (b, image) in single.chunks(per).enumerate() {
        let own: Vec<&[f32]> = copies[b * 3 * per..(b + 1) * 3 * per].chunks(per).collect();
        assert_eq!(own[0], image, "image {b}: the first copy");
        assert!(
            own[1] != own[0] || own[2] != own[0],
            "image {b}: copies all alike"
        );
    }
    let with_copies = |save: &std::path::Path, epochs| {
        let mut c = config(&root, save, epochs);
        c.data.packages = 2;
        c.loss.consistency_weight = 1.0;
        c.export_onnx = false;
        c
    };
    let run = assert_resumes_exactly(dir.path(), with_copies, 2);
    let plain = dir.path().join("plain");
    let mut c = config(&root, &plain, 1);
    c.export_onnx = false;
    reid::train::train(&c, &mut |_| true).unwrap();
    assert!((history(&plain)[0].loss - history(&run)[0].loss).abs() > 1e-4);
    // The consistency needs copies.
    let mut lone = config(&root, &dir.path().join("lone"), 1);
    lone.loss.consistency_weight = 1.0;
    assert!(reid::train::train(&lone, &mut |_| true).is_err());
}
