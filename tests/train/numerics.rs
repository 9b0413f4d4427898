//! Training numerics against PyTorch + torchreid 0.2.5 (fixtures from
//! tests/fixtures/make_train_fixtures.py): the losses and their gradients, and one whole SGD
//! step of osnet_x0_25 (forward in training mode, both losses, backward through the network,
//! the update, BatchNorm running statistics), the gradients of a batch-32 step on two threads
//! against float64, the same step under SAM, the optimizers (AMSGrad as torchreid builds it,
//! RAdam), the center loss and deep mutual learning's KL term.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::SgdConfig;
use burn::tensor::{Int, Tensor, TensorData};
use reid::device::default_device;
use reid::formats::npy::{NpyArray, read_npz};
use reid::models::Arch;
use reid::models::ReidModel;
use reid::models::embed::tensor_to_vec;
use reid::train::center::CenterLoss;
use reid::train::loss::{cross_entropy, mutual_kl, triplet_hard};
use reid::train::optim::Optimizer;
use reid::train::step::{StepExtras, train_step_with};
use reid::train::{LossConfig, SamConfig, train_step};
use reid::weights::{StateDict, load_torchreid, save_torchreid_safetensors};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn arrays(name: &str) -> BTreeMap<String, NpyArray> {
    read_npz(fixture(name)).unwrap()
}

fn float<const D: usize>(a: &NpyArray, device: &burn::tensor::Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(a.to_f32(), a.shape.clone()), device)
}

fn ints(a: &NpyArray, device: &burn::tensor::Device) -> Tensor<1, Int> {
    Tensor::from_data(
        TensorData::new(a.to_i64().unwrap(), a.shape.clone()),
        device,
    )
}

fn worst(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

#[test]
fn losses_and_gradients_match_torchreid() {
    let f = arrays("train/losses.npz");
    let device = default_device().autodiff();
    let logits: Tensor<2> = float(&f["logits"], &device).require_grad();
    let loss = cross_entropy(logits.clone(), ints(&f["targets"], &device), 0.1);
    let value = loss.clone().into_scalar::<f32>();
    let grads = loss.backward();
    let grad = tensor_to_vec(logits.grad(&grads).unwrap());
    let want = f["ce"].to_f64()[0] as f32;
    assert!(
        (value - want).abs() < 1e-5,
        "cross-entropy {value} vs {want}"
    );
    assert!(worst(&grad, &f["ce_grad"].to_f32()) < 1e-6);

    let features: Tensor<2> = float(&f["features"], &device).require_grad();
    let loss = triplet_hard(features.clone(), ints(&f["pids"], &device), 0.3);
    let value = loss.clone().into_scalar::<f32>();
    let grads = loss.backward();
    let grad = tensor_to_vec(features.grad(&grads).unwrap());
    let want = f["triplet"].to_f64()[0] as f32;
    assert!((value - want).abs() < 1e-5, "triplet {value} vs {want}");
    assert!(worst(&grad, &f["triplet_grad"].to_f32()) < 1e-5);
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    (dot / (norm(a) * norm(b)).max(1e-30)) as f32
}

#[test]
fn am_softmax_and_its_gradients_match_pytorch() {
    use reid::models::layers::cosine_scores;
    use reid::train::loss::am_softmax;
    let f = arrays("train/losses.npz");
    let device = default_device().autodiff();
    let features: Tensor<2> = float(&f["am_features"], &device).require_grad();
    let weight: Tensor<2> = float(&f["am_weight"], &device).require_grad();
    let cosine = cosine_scores(features.clone(), weight.clone());
    let loss = am_softmax(cosine, ints(&f["targets"], &device), 0.35, 30.0, 0.1);
    let value = loss.clone().into_scalar::<f32>();
    let grads = loss.backward();
    let want = f["am"].to_f64()[0] as f32;
    assert!(
        (value - want).abs() < 1e-4 * want.abs(),
        "AM-softmax {value} vs {want}"
    );
    let gf = tensor_to_vec(features.grad(&grads).unwrap());
    let gw = tensor_to_vec(weight.grad(&grads).unwrap());
    assert!(worst(&gf, &f["am_features_grad"].to_f32()) < 1e-5);
    assert!(worst(&gw, &f["am_weight_grad"].to_f32()) < 1e-5);
}

/// One SGD step from the same weights on the same batch as PyTorch. The updates are compared
/// by direction (cosine) and size rather than element by element: the backward pass through
/// 20 layers amplifies float rounding where the random first layers' gradients are large.
fn step_losses() -> LossConfig {
    LossConfig {
        softmax_weight: 1.0,
        label_smooth: 0.1,
        triplet_weight: 1.0,
        margin: 0.3,
        ..Default::default()
    }
}

/// Runs one SGD step (lr 0.05) of the fixture's osnet_x0_25 on step.npz's batch, with `extras`.
fn osnet_sgd_step(extras: StepExtras) -> (ReidModel, f32) {
    osnet_step(extras, Optimizer::from(SgdConfig::new().init()))
}

/// The fixture's osnet_x0_25 in training mode on the autodiff device, and that device.
fn osnet_for_training() -> (ReidModel, burn::tensor::Device) {
    let device = default_device();
    let (model, _) = load_torchreid(
        Arch::OsnetX0_25,
        fixture("osnet_x0_25/weights.safetensors"),
        &device,
    )
    .unwrap();
    let train_device = device.autodiff();
    (model.fork(&train_device).train(), train_device)
}

/// Runs one step (lr 0.05) of the fixture's osnet_x0_25 on step.npz's batch with `optimizer`.
fn osnet_step(extras: StepExtras, mut optimizer: Optimizer) -> (ReidModel, f32) {
    let f = arrays("train/step.npz");
    let (model, train_device) = osnet_for_training();
    let (model, stats) = train_step_with(
        model,
        &mut optimizer,
        0.05,
        float(&f["images"], &train_device),
        ints(&f["targets"], &train_device),
        &step_losses(),
        extras,
    );
    (model, stats.loss)
}

/// How close two parameter updates must be: direction (cosine) and relative size.
struct Tolerance {
    min_cosine: f32,
    size: f32,
}

/// The fixture's osnet_x0_25 weights, and `model`'s after a step from them, under torchreid's
/// names.
fn before_and_after(model: &ReidModel) -> (StateDict, StateDict) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("after.safetensors");
    // `valid()` folds the BatchNorm running statistics of the step in (Burn keeps them per
    // thread until then).
    save_torchreid_safetensors(&model.valid(), &path).unwrap();
    let after = StateDict::read(&path).unwrap();
    let before = StateDict::read(fixture("osnet_x0_25/weights.safetensors")).unwrap();
    (before, after)
}

/// Compares the parameter updates of `model` (from the fixture's weights) with PyTorch's, for
/// the fixture arrays named `{prefix}{key with . as __}`; returns how many were compared.
fn assert_updates_match(
    model: &ReidModel,
    f: &BTreeMap<String, NpyArray>,
    prefix: &str,
    tolerance: Tolerance,
) -> usize {
    let (before, after) = before_and_after(model);
    let mut compared = 0;
    for (name, reference) in f {
        let Some(key) = name.strip_prefix(prefix).filter(|k| k.contains("__")) else {
            continue;
        };
        let key = key.replace("__", ".");
        let start = &before.tensors[&key].data;
        let ours: Vec<f32> = start
            .iter()
            .zip(&after.tensors[&key].data)
            .map(|(b, a)| a - b)
            .collect();
        let theirs: Vec<f32> = start
            .iter()
            .zip(reference.to_f32())
            .map(|(b, a)| a - b)
            .collect();
        let size = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if size(&theirs) < 1e-9 {
            // A parameter PyTorch did not move (a gate whose ReLU is closed) must not move.
            assert!(size(&ours) < 1e-9, "{key} moved");
            continue;
        }
        let (c, ratio) = (cosine(&ours, &theirs), size(&ours) / size(&theirs));
        assert!(
            c > tolerance.min_cosine && (ratio - 1.0).abs() < tolerance.size,
            "{key}: update cosine {c}, size ratio {ratio}"
        );
        compared += 1;
    }
    compared
}

/// One SGD step from the same weights on the same batch as PyTorch. The updates are compared
/// by direction (cosine) and size rather than element by element: the backward pass through
/// 20 layers amplifies float rounding where the random first layers' gradients are large.
#[test]
fn one_sgd_step_of_osnet_matches_pytorch() {
    let f = arrays("train/step.npz");
    let (model, loss) = osnet_sgd_step(StepExtras::default());
    let want = f["loss"].to_f64()[0] as f32;
    assert!(
        (loss - want).abs() < 1e-3 * want.abs(),
        "loss {loss} vs {want}"
    );
    let tolerance = Tolerance {
        min_cosine: 0.99999,
        size: 0.001,
    };
    let compared = assert_updates_match(&model, &f, "", tolerance);
    assert!(compared >= 9, "{compared} parameters compared");
}

/// The step of the training comparisons' shape (batch 32 of 128 × 64, label-smoothed
/// cross-entropy, on two threads as they train): every kernel path a real run takes — the
/// batch split over threads, the AVX-512 depthwise planes of each stage, the split products —
/// against PyTorch's gradients in float64 (step32.npz). Each gradient (read off an SGD step)
/// must lie within a few times as far from float64's, in direction and size, as torch's own
/// float32 gradient does (the fixture records how far), or within 1e-6 in direction and 0.5 %
/// in size: the first gate's 16 → 1 layer, whose gradient comes from the five images for which
/// its ReLU is open, is 0.4 % off in size here (torch's float32: 0.02 %), every other parameter
/// within 3× of torch's float32 (measured 2026-12-04). A wrong gradient misses by far more.
#[test]
fn a_batch_32_step_on_two_threads_matches_pytorch_in_float64() {
    let f = arrays("train/step32.npz");
    let pixels = f["pixels"].to_f32();
    let (n, c, h, w) = (32, 3, 16, 8);
    // Each byte of the 16 × 8 image covers an 8 × 8 block, as (v − 128) / 64 (exact).
    let mut images = Vec::with_capacity(n * c * h * w * 64);
    for plane in pixels.chunks(h * w) {
        for y in 0..h * 8 {
            for x in 0..w * 8 {
                images.push((plane[(y / 8) * w + x / 8] - 128.0) / 64.0);
            }
        }
    }
    let (model, train_device) = osnet_for_training();
    let images =
        Tensor::<4>::from_data(TensorData::new(images, [n, c, h * 8, w * 8]), &train_device);
    let targets = ints(&f["targets"], &train_device);
    let losses = LossConfig {
        softmax_weight: 1.0,
        label_smooth: 0.1,
        ..Default::default()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    // A large rate: the update (−lr × gradient) must stand well above the weights' float32
    // spacing to be read back from the weights before and after.
    let lr = 100.0;
    let (model, _) = pool.install(|| {
        let mut sgd = Optimizer::from(SgdConfig::new().init());
        train_step_with(
            model,
            &mut sgd,
            lr,
            images,
            targets,
            &losses,
            StepExtras::default(),
        )
    });
    let (before, after) = before_and_after(&model);
    let mut compared = 0;
    for (name, reference) in &f {
        let Some(f32_cosine) = f.get(&format!("f32_cosine__{name}")) else {
            continue;
        };
        let key = name.replace("__", ".");
        let ours: Vec<f32> = before.tensors[&key]
            .data
            .iter()
            .zip(&after.tensors[&key].data)
            .map(|(b, a)| (b - a) / lr as f32)
            .collect();
        let theirs = reference.to_f32();
        let size = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let (cos, ratio) = (cosine(&ours, &theirs), size(&ours) / size(&theirs));
        // torch's own float32 gradient: how far from float64 rounding alone takes it.
        let torch_miss = 1.0 - f32_cosine.to_f64()[0];
        let torch_size = f[&format!("f32_size__{name}")].to_f64()[0];
        assert!(
            1.0 - cos as f64 <= (4.0 * torch_miss).max(1e-6)
                && (ratio - 1.0).abs() <= (4.0 * (torch_size - 1.0).abs()).max(5e-3),
            "{key}: gradient cosine to float64 {cos}, size ratio {ratio} (torch's float32: \
             {}, {torch_size})",
            1.0 - torch_miss
        );
        compared += 1;
    }
    assert_eq!(compared, 18, "parameters compared");
}

/// deep-object-reid's `train.clip_grad`: the gradient's joint L2 norm (all parameters
/// together) as torch's `clip_grad_norm_` computes it, and the step after clipping it to a
/// quarter of that norm, against torch's (clip_ema.npz). The clipped update is a quarter of
/// the plain one, which the same comparison tells apart.
#[test]
fn gradient_clipping_matches_torch_clip_grad_norm() {
    use burn::optim::GradientsParams;
    use reid::train::optim::clip_grad_norm;
    use reid::train::step::batch_loss;
    let f = arrays("train/clip_ema.npz");
    let step = arrays("train/step.npz");
    let (norm, max_norm) = (f["clip_norm"].to_f64()[0], f["clip_max_norm"].to_f64()[0]);
    let (model, train_device) = osnet_for_training();
    let images = float(&step["images"], &train_device);
    let (loss, _) = batch_loss(
        &model,
        images,
        ints(&step["targets"], &train_device),
        &step_losses(),
    );
    let mut grads = GradientsParams::from_grads(loss.backward(), &model);
    let ours = clip_grad_norm(&model, &mut grads, f32::INFINITY) as f64;
    assert!(
        (ours - norm).abs() < 1e-4 * norm,
        "gradient norm {ours} vs torch's {norm}"
    );

    let optimizer = Optimizer::from(SgdConfig::new().init())
        .with_clip_norm(max_norm)
        .unwrap();
    let (clipped, _) = osnet_step(StepExtras::default(), optimizer);
    let tolerance = || Tolerance {
        min_cosine: 0.99999,
        size: 0.001,
    };
    let compared = assert_updates_match(&clipped, &f, "clip__", tolerance());
    assert!(compared >= 9, "{compared} parameters compared");
    let plain: BTreeMap<String, NpyArray> = [("clip__conv5__conv__weight", "conv5__conv__weight")]
        .iter()
        .map(|(ours, theirs)| (ours.to_string(), step[*theirs].clone()))
        .collect();
    let unclipped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_updates_match(&clipped, &plain, "clip__", tolerance())
    }));
    assert!(unclipped.is_err(), "the clipped step matches the plain one");
    // A norm that is no number is refused.
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        assert!(
            Optimizer::from(SgdConfig::new().init())
                .with_clip_norm(bad)
                .is_err()
        );
    }
}

/// deep-object-reid's `train.nbd`: SGD with weight decay 0.5 on the convolution and linear
/// weights only — not on biases or BatchNorm parameters — against torch's step with
/// deep-object-reid's parameter groups (nbd.npz). With the decay on every parameter the
/// BatchNorm weights (1.0 each, decayed by 0.025) would move a different way.
#[test]
fn no_bias_decay_matches_deep_object_reids_parameter_groups() {
    use reid::train::optim::OptimizerConfig;
    let f = arrays("train/nbd.npz");
    let config = |only_matrices_decay| OptimizerConfig {
        name: "sgd".into(),
        weight_decay: 0.5,
        only_matrices_decay,
        momentum: 0.0,
        ..Default::default()
    };
    let tolerance = || Tolerance {
        min_cosine: 0.99999,
        size: 0.001,
    };
    let (model, _) = osnet_step(StepExtras::default(), config(true).build().unwrap());
    let compared = assert_updates_match(&model, &f, "nbd__", tolerance());
    assert!(compared >= 11, "{compared} parameters compared");
    let (everywhere, _) = osnet_step(StepExtras::default(), config(false).build().unwrap());
    let norm_weight: BTreeMap<String, NpyArray> = f
        .iter()
        .filter(|(k, _)| *k == "nbd__conv1__bn__weight")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let decayed_too = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_updates_match(&everywhere, &norm_weight, "nbd__", tolerance())
    }));
    assert!(decayed_too.is_err(), "decaying every parameter matches nbd");
}

/// deep-object-reid's `train.ema` (timm's `ModelEmaV2`, decay 0.9): the average of the
/// model before the SGD step of `one_sgd_step_of_osnet_matches_pytorch`, updated twice from the
/// model after it, is PyTorch's — parameters and BatchNorm running statistics alike
/// (clip_ema.npz): it moved 0.19 of the step, where one update or a restart from the first
/// values would move 0.1. (A second training step is not compared: its gradient on this
/// random model turns by degrees when a weight changes in its sixth digit.)
#[test]
fn the_moving_average_matches_timm_model_ema_v2() {
    use reid::train::ema::{Ema, EmaConfig};
    let f = arrays("train/clip_ema.npz");
    let mut ema = Ema::new(&osnet_for_training().0, &EmaConfig { decay: 0.9 }).unwrap();
    let (model, _) = osnet_sgd_step(StepExtras::default());
    ema.update(&model);
    ema.update(&model);
    let tolerance = Tolerance {
        min_cosine: 0.99999,
        size: 0.001,
    };
    let compared = assert_updates_match(&ema.model(&model), &f, "ema__", tolerance);
    assert!(compared >= 9, "{compared} parameters compared");
}

/// fast-reid's distillation loss (`Distiller.jsdiv_loss`, distill.npz): value and the
/// gradient on the student's logits, at fast-reid's temperature 16 and at 4.
#[test]
fn distillation_loss_matches_fast_reid() {
    use reid::train::loss::distillation_js;
    let f = arrays("train/distill.npz");
    let device = default_device().autodiff();
    for t in [16, 4] {
        let student: Tensor<2> = float(&f["student"], &device).require_grad();
        let teacher: Tensor<2> = float(&f["teacher"], &device);
        let loss = distillation_js(student.clone(), teacher, t as f32);
        let value = loss.clone().into_scalar::<f32>();
        let want = f[&format!("loss_t{t}")].to_f64()[0] as f32;
        assert!(
            (value - want).abs() < 1e-5 * want.abs(),
            "t {t}: {value} vs {want}"
        );
        let grad = tensor_to_vec(student.grad(&loss.backward()).unwrap());
        let error = worst(&grad, &f[&format!("grad_t{t}")].to_f32());
        assert!(error < 1e-5, "t {t}: gradient off by {error}");
    }
}

/// fast-reid's probabilistic knowledge transfer (`KDTrainer.pkt_loss`, pkt.npz): value and
/// gradient on the student's embeddings, 16-dimensional against the teacher's 24, one of them
/// zero — where fast-reid's gradient is NaN and ours zero (every other row as fast-reid's).
#[test]
fn embedding_distillation_matches_fast_reid() {
    use reid::train::loss::probabilistic_transfer;
    let f = arrays("train/pkt.npz");
    let device = default_device().autodiff();
    let student: Tensor<2> = float(&f["student"], &device).require_grad();
    let teacher: Tensor<2> = float(&f["teacher"], &device);
    let loss = probabilistic_transfer(student.clone(), teacher);
    let value = loss.clone().into_scalar::<f32>();
    let want = f["loss"].to_f64()[0] as f32;
    assert!(
        (value - want).abs() < 1e-5 * want.abs(),
        "{value} vs {want}"
    );
    let grad = tensor_to_vec(student.grad(&loss.backward()).unwrap());
    let want = f["grad"].to_f32();
    let dim = f["student"].shape[1];
    let zero_row = 4;
    for (row, (ours, theirs)) in grad.chunks(dim).zip(want.chunks(dim)).enumerate() {
        if row == zero_row {
            assert!(
                theirs.iter().all(|g| g.is_nan()),
                "fast-reid's zero row: {theirs:?}"
            );
            assert!(ours.iter().all(|&g| g == 0.0), "ours: {ours:?}");
            continue;
        }
        assert!(theirs.iter().all(|g| g.is_finite()) && ours.iter().all(|g| g.is_finite()));
        let largest = theirs.iter().fold(0f32, |m, g| m.max(g.abs()));
        let error = worst(ours, theirs);
        assert!(
            largest > 0.0 && error < 1e-4 * largest,
            "row {row}: off by {error} of {largest}"
        );
    }
}

/// The same step wrapped in adaptive SAM (ρ 0.05): the update comes from the gradient at the
/// perturbed weights. On these random weights that gradient is chaotic in the first layers
/// (PyTorch's own SAM and plain updates of conv1 are nearly orthogonal, cosine 0.02), which
/// amplifies rounding differences: ours agree with PyTorch's SAM update at cosine ≥ 0.995 in
/// every layer, and with its plain update not at all.
#[test]
fn one_adaptive_sam_step_matches_the_reference_algorithm() {
    let f = arrays("train/techniques.npz");
    let sam = SamConfig {
        rho: 0.05,
        adaptive: true,
    };
    let extras = StepExtras {
        sam: Some(&sam),
        ..Default::default()
    };
    let (model, loss) = osnet_sgd_step(extras);
    let want = f["sam_loss"].to_f64()[0] as f32;
    assert!(
        (loss - want).abs() < 1e-3 * want.abs(),
        "loss {loss} vs {want}"
    );
    let tolerance = Tolerance {
        min_cosine: 0.995,
        size: 0.02,
    };
    let compared = assert_updates_match(&model, &f, "sam__", tolerance);
    assert!(compared >= 6, "{compared} parameters compared");
    // Against PyTorch's plain update, the same comparison fails.
    let plain = arrays("train/step.npz");
    let as_plain: BTreeMap<String, NpyArray> =
        ["conv1__conv__weight", "conv2__0__conv2a__conv2__weight"]
            .iter()
            .map(|k| (format!("sam__{k}"), plain[*k].clone()))
            .collect();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let tolerance = Tolerance {
            min_cosine: 0.5,
            size: 1.0,
        };
        assert_updates_match(&model, &as_plain, "sam__", tolerance)
    }));
    assert!(
        result.is_err(),
        "the SAM step also matches the plain update"
    );
}

#[test]
fn center_loss_and_center_update_match_the_reference() {
    let f = arrays("train/techniques.npz");
    let device = default_device();
    let train_device = device.clone().autodiff();
    let features: Tensor<2> = float(&f["center_features"], &train_device).require_grad();
    let labels = ints(&f["center_labels"], &train_device);
    // The fixture's centers, through the checkpoint format the engine uses.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("centers.npy");
    std::fs::write(&path, f["centers"].to_bytes()).unwrap();
    let mut centers = CenterLoss::load(&path, 4, 6, 0.5, &device).unwrap();
    let loss = centers.loss(features.clone(), labels.clone());
    let value = loss.clone().into_scalar::<f32>();
    let want = f["center_loss"].to_f64()[0] as f32;
    assert!(
        (value - want).abs() < 1e-4 * want.abs(),
        "{value} vs {want}"
    );
    let grads = loss.backward();
    let grad = tensor_to_vec(features.grad(&grads).unwrap());
    assert!(worst(&grad, &f["center_grad"].to_f32()) < 1e-5);
    centers.update(features, labels);
    let updated = tensor_to_vec(centers.centers());
    assert!(worst(&updated, &f["centers_updated"].to_f32()) < 1e-5);
    // The saved state round-trips; a wrong shape is refused.
    centers.save(&path).unwrap();
    let back = CenterLoss::load(&path, 4, 6, 0.5, &device).unwrap();
    assert_eq!(tensor_to_vec(back.centers()), updated);
    assert!(CenterLoss::load(&path, 5, 6, 0.5, &device).is_err());
}

#[test]
fn mutual_learning_kl_matches_torch() {
    let f = arrays("train/techniques.npz");
    let device = default_device().autodiff();
    let logits: Tensor<2> = float(&f["dml_logits"], &device).require_grad();
    let peer: Tensor<2> = float(&f["dml_peer"], &device).require_grad();
    let loss = mutual_kl(peer.clone(), logits.clone());
    let value = loss.clone().into_scalar::<f32>();
    let want = f["dml_kl"].to_f64()[0] as f32;
    assert!((value - want).abs() < 1e-5, "{value} vs {want}");
    let grads = loss.backward();
    let grad = tensor_to_vec(logits.grad(&grads).unwrap());
    assert!(worst(&grad, &f["dml_grad"].to_f32()) < 1e-6);
    // The peer is the target: no gradient flows into it.
    assert!(peer.grad(&grads).is_none());
}

/// The training comparisons' optimizer (`train.optim: amsgrad`, weight decay 5e-4, the
/// configuration's defaults otherwise) against torchreid's build_optimizer over 8 steps of fixed
/// gradients (amsgrad.npz): large gradients, then small ones, so the steps follow the running
/// maximum of the second moment; one step's gradient is zero, where only the decay and the
/// moments move the weights.
/// torchreid's `amsgrad` optimizer (weight decay 5e-4) and a bias-free 3 → 4 linear layer on
/// `device` whose weight starts at `start`.
fn amsgrad_on(start: &NpyArray, device: &burn::tensor::Device) -> (Optimizer, burn::nn::Linear) {
    let optimizer = reid::train::optim::OptimizerConfig {
        name: "amsgrad".into(),
        weight_decay: 5e-4,
        ..Default::default()
    }
    .build()
    .unwrap();
    let mut layer = burn::nn::LinearConfig::new(3, 4)
        .with_bias(false)
        .init(device);
    layer.weight = burn::module::Param::from_tensor(float::<2>(start, device));
    (optimizer, layer)
}

#[test]
fn amsgrad_matches_torchreids_build_optimizer() {
    use burn::optim::GradientsParams;
    let f = arrays("train/amsgrad.npz");
    let device = default_device();
    // The optimizer updates modules of the training (autodiff) device from plain gradients.
    let (mut optimizer, mut layer) = amsgrad_on(&f["start"], &device.clone().autodiff());
    let grads = f["grads"].to_f32();
    let after = f["after"].to_f32();
    for step in 0..8 {
        let mut g = GradientsParams::new();
        g.register(
            layer.weight.id,
            Tensor::<2>::from_data(
                TensorData::new(grads[step * 12..(step + 1) * 12].to_vec(), [3, 4]),
                &device,
            ),
        );
        layer = optimizer.step(0.01, layer, g);
        let got = tensor_to_vec(layer.weight.val());
        let error = worst(&got, &after[step * 12..(step + 1) * 12]);
        assert!(error < 1e-6, "step {}: {error}", step + 1);
    }
}

#[test]
fn radam_matches_torch_over_both_phases() {
    use burn::optim::Optimizer;
    use reid::train::radam::RAdam;
    let f = arrays("train/radam.npz");
    let device = default_device();
    let radam = RAdam {
        beta1: 0.9,
        beta2: 0.99,
        epsilon: 1e-8,
        weight_decay: 5e-4,
    };
    let mut param: Tensor<2> = float(&f["start"], &device);
    let grads = f["grads"].to_f32();
    let after = f["after"].to_f32();
    let mut state = None;
    for step in 0..8 {
        let grad = Tensor::<2>::from_data(
            TensorData::new(grads[step * 12..(step + 1) * 12].to_vec(), [3, 4]),
            &device,
        );
        let (next, next_state) = radam.step(0.01, param, grad, state);
        param = next;
        state = next_state;
        let got = tensor_to_vec(param.clone());
        let error = worst(&got, &after[step * 12..(step + 1) * 12]);
        assert!(error < 1e-6, "step {}: {error}", step + 1);
    }
}

#[test]
fn schedules_match_torch() {
    use reid::train::schedule::{LrSchedule, Schedule};
    let text = std::fs::read_to_string(fixture("train/schedules.json")).unwrap();
    let want: BTreeMap<String, Vec<f64>> = serde_json::from_str(&text).unwrap();
    let cases = [
        (
            "single_step",
            Schedule::SingleStep {
                step: 7,
                gamma: 0.1,
            },
        ),
        (
            "multi_step",
            Schedule::MultiStep {
                milestones: vec![5, 12, 20],
                gamma: 0.5,
            },
        ),
        ("cosine", Schedule::Cosine { max_epoch: 30 }),
        (
            "onecycle",
            Schedule::OneCycle {
                total: 30,
                pct_start: 0.3,
                div_factor: 25.0,
                final_div_factor: 1e4,
                per_step: false,
            },
        ),
    ];
    for (name, schedule) in cases {
        let s = LrSchedule::new(schedule, 0.1, 0).unwrap();
        for (epoch, lr) in want[name].iter().enumerate() {
            assert!(
                (s.lr(epoch) - lr).abs() < 1e-9,
                "{name} epoch {epoch}: {} vs {lr}",
                s.lr(epoch)
            );
        }
    }
}

/// Every parameter of `model` by torchreid name.
/// The fixture's osnet_x0_25 (eval-mode, on the CPU), the autodiff device, and step.npz's
/// batch on it.
fn fixture_batch() -> (ReidModel, burn::tensor::Device, Tensor<4>, Tensor<1, Int>) {
    let f = arrays("train/step.npz");
    let device = default_device();
    let (start, _) = load_torchreid(
        Arch::OsnetX0_25,
        fixture("osnet_x0_25/weights.safetensors"),
        &device,
    )
    .unwrap();
    let train_device = device.autodiff();
    let images = float(&f["images"], &train_device);
    let targets = ints(&f["targets"], &train_device);
    (start, train_device, images, targets)
}

fn parameters(model: &ReidModel) -> BTreeMap<String, Vec<f32>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.safetensors");
    save_torchreid_safetensors(&model.valid(), &path).unwrap();
    StateDict::read(&path)
        .unwrap()
        .tensors
        .into_iter()
        .filter(|(k, _)| !k.contains("running") && !k.contains("num_batches"))
        .map(|(k, t)| (k, t.data))
        .collect()
}

/// A data-parallel SGD step over two replicas (the second in its own thread) equals the mean
/// of two plain SGD steps, one on each half of the batch: the step follows the average of the
/// halves' gradients, which is the gradient of the batch's mean loss.
#[test]
fn a_data_parallel_step_follows_the_mean_gradient_of_the_chunks() {
    use reid::train::parallel::data_parallel_step;
    let (start, train_device, images, targets) = fixture_batch();
    let losses = LossConfig::default();
    let fresh = || start.clone().fork(&train_device).train();
    let sgd = || Optimizer::from(SgdConfig::new().init());
    let (parallel, stats) = data_parallel_step(
        fresh(),
        &mut sgd(),
        0.05,
        images.clone(),
        targets.clone(),
        &losses,
        None,
        std::slice::from_ref(&train_device),
        1,
    );
    let half = |from: usize| {
        train_step(
            fresh(),
            &mut sgd(),
            0.05,
            images.clone().narrow(0, from, 2),
            targets.clone().narrow(0, from, 2),
            &losses,
        )
    };
    let ((a, stats_a), (b, stats_b)) = (half(0), half(2));
    assert!((stats.loss - (stats_a.loss + stats_b.loss) / 2.0).abs() < 1e-5);
    let (p, pa, pb) = (parameters(&parallel), parameters(&a), parameters(&b));
    let before = parameters(&start);
    let mut moved = 0;
    for (key, got) in &p {
        let want: Vec<f32> = pa[key]
            .iter()
            .zip(&pb[key])
            .map(|(x, y)| (x + y) / 2.0)
            .collect();
        assert!(
            worst(got, &want) < 1e-5,
            "{key}: off by {}",
            worst(got, &want)
        );
        moved += usize::from(worst(got, &before[key]) > 1e-6);
    }
    assert!(moved > 10, "only {moved} parameters moved");
}

/// torchreid's `staged_lr`: with plain SGD (the update is linear in the rate) a staged step
/// moves the new layers exactly as a plain step at the scheduled rate and every other
/// parameter by `base_lr_mult` times as far.
#[test]
fn staged_learning_rates_scale_the_base_layers_only() {
    use reid::train::StagedLr;
    let (start, train_device, images, targets) = fixture_batch();
    let losses = step_losses();
    let fresh = || start.clone().fork(&train_device).train();
    let staged = StagedLr {
        new_layers: vec!["classifier".into(), "fc".into()],
        base_lr_mult: 0.1,
    };
    let model = fresh();
    let rates = staged.rates(&model, 0.05).unwrap();
    // A misspelt layer is an error naming the model's layers, not a silently slower run.
    let typo = StagedLr {
        new_layers: vec!["classifer".into()],
        base_lr_mult: 0.1,
    };
    let Err(err) = typo.rates(&model, 0.05) else {
        panic!("a misspelt layer was accepted");
    };
    let err = err.to_string();
    assert!(
        err.contains("classifer") && err.contains("classifier"),
        "{err}"
    );
    let step = |model, lr| {
        train_step_with(
            model,
            &mut Optimizer::from(SgdConfig::new().init()),
            lr,
            images.clone(),
            targets.clone(),
            &losses,
            StepExtras::default(),
        )
        .0
    };
    let (with_stages, plain) = (step(model, rates), step(fresh(), 0.05.into()));
    let (before, got, full) = (
        parameters(&start),
        parameters(&with_stages),
        parameters(&plain),
    );
    let (mut new, mut base) = (0, 0);
    for (key, start) in &before {
        let is_new = key.starts_with("classifier.") || key.starts_with("fc.");
        let scale = if is_new { 1.0 } else { 0.1 };
        let want: Vec<f32> = start
            .iter()
            .zip(&full[key])
            .map(|(s, p)| s + scale * (p - s))
            .collect();
        let moved = worst(&full[key], start);
        assert!(
            worst(&got[key], &want) <= 1e-3 * moved.max(1e-6),
            "{key}: off by {} (plain step moved it {moved})",
            worst(&got[key], &want)
        );
        if moved > 1e-6 {
            if is_new { new += 1 } else { base += 1 }
        }
    }
    assert!(
        new >= 3 && base > 10,
        "{new} new and {base} base parameters moved"
    );
}

/// Multilabel losses and their gradients against PyTorch: BCE (torch's own), the asymmetric
/// loss and AM-binary (the papers' formulas in PyTorch autograd).
#[test]
fn multilabel_losses_match_pytorch() {
    use reid::train::multilabel_loss::{AmBinaryLoss, AsymmetricLoss, bce_with_logits};
    let f = arrays("train/multilabel.npz");
    let device = default_device().autodiff();
    let targets: Tensor<2> = float(&f["targets"], &device);
    let check = |name: &str, input: &str, loss: &dyn Fn(Tensor<2>) -> Tensor<1>| {
        let x: Tensor<2> = float(&f[input], &device).require_grad();
        let value = loss(x.clone());
        let got = value.clone().into_scalar::<f32>();
        let want = f[name].to_f64()[0] as f32;
        assert!(
            (got - want).abs() < 1e-5 * want.abs().max(1.0),
            "{name}: {got} vs {want}"
        );
        let grads = value.backward();
        let grad = tensor_to_vec(x.grad(&grads).unwrap());
        let err = worst(&grad, &f[&format!("{name}_grad")].to_f32());
        assert!(err < 1e-6, "{name} gradient off by {err}");
    };
    check("bce", "logits", &|x| bce_with_logits(x, targets.clone()));
    check("asl", "logits", &|x| {
        AsymmetricLoss::default().forward(x, targets.clone())
    });
    check("am", "cos", &|x| {
        AmBinaryLoss::default().forward(x, targets.clone())
    });
}

/// Mixed precision on the CPU's bfloat16 convolutions (Burn's flex; `train` refuses half
/// precision on the CPU for speed, not for correctness): the SGD step of
/// `one_sgd_step_of_osnet_matches_pytorch` inside `autocast(bf16)` against torch's float32 step,
/// beside torch's own `autocast("cpu", bfloat16)` step (autocast.npz). This batch of four in
/// training mode amplifies rounding: torch's bfloat16 moves the loss 2.5 % and the classifier's
/// update 40 %; Burn's bfloat16 convolutions move the update as much but the loss 9.4 %
/// (measured 2026-12-04; float16 on GPUs alike, see tests/wgpu.rs), so the loss is bounded at
/// four times torch's distance and the update at twice. Every weight stays float32, and the
/// step is not the float32 step (the convolutions did compute in bfloat16).
#[test]
fn a_bfloat16_autocast_step_of_osnet_lies_as_near_as_torchs() {
    use burn::module::{ModuleVisitor, Param};
    use burn::tensor::DType;
    use reid::models::precision::{HalfPrecision, autocast};
    let (f32_step, half_step) = (arrays("train/step.npz"), arrays("train/autocast.npz"));
    let (model, loss) = autocast(Some(HalfPrecision::Bf16), || {
        osnet_sgd_step(StepExtras::default())
    });
    let want = f32_step["loss"].to_f64()[0] as f32;
    let torch_loss = half_step["loss"].to_f64()[0] as f32;
    let (before, after) = before_and_after(&model);
    let key = "classifier.weight";
    let update = |weights: &[f32]| -> Vec<f32> {
        weights
            .iter()
            .zip(&before.tensors[key].data)
            .map(|(a, b)| a - b)
            .collect()
    };
    let reference = update(&f32_step["classifier__weight"].to_f32());
    let distance = |u: &[f32]| {
        let d: f32 = u.iter().zip(&reference).map(|(a, b)| (a - b).powi(2)).sum();
        (d / reference.iter().map(|b| b * b).sum::<f32>()).sqrt()
    };
    let ours = distance(&update(&after.tensors[key].data));
    let torchs = distance(&update(&half_step["classifier__weight"].to_f32()));
    eprintln!(
        "bf16 loss {loss} (torch's {torch_loss}, float32 {want}); classifier update {ours} from \
         float32's (torch's {torchs})"
    );
    assert!(
        (loss - want).abs() <= 4.0 * (torch_loss - want).abs(),
        "loss {loss}: torch's bfloat16 {torch_loss}, float32 {want}"
    );
    assert!(
        ours <= 2.0 * torchs,
        "classifier update {ours} from float32's, torch's {torchs}"
    );
    struct Float32s(usize, Vec<DType>);
    impl ModuleVisitor for Float32s {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            match param.val().dtype() {
                DType::F32 => self.0 += 1,
                other => self.1.push(other),
            }
        }
    }
    let mut kinds = Float32s(0, vec![]);
    model.visit(&mut kinds);
    assert!(kinds.0 > 100 && kinds.1.is_empty(), "{:?}", kinds.1);
    let (_, float32_loss) = osnet_sgd_step(StepExtras::default());
    assert!(
        (loss - float32_loss).abs() > 1e-5 * want.abs(),
        "bfloat16 loss {loss} = float32 loss {float32_loss}"
    );
}

/// Dynamic loss scaling against torch's GradScaler (grad_scaler.npz: growth every 3 good
/// steps) around the `amsgrad` optimizer: 10 steps of the loss (w · c).sum(), the backward
/// pass of the scaled loss, three steps with an infinite or NaN gradient skipped (weights and
/// AMSGrad's state untouched) and the scale halved, doubled after three good steps.
#[test]
fn loss_scaling_matches_torchs_grad_scaler() {
    use burn::optim::GradientsParams;
    use reid::train::loss_scale::{LossScaler, scaled};
    let f = arrays("train/grad_scaler.npz");
    let device = default_device().autodiff();
    let (mut optimizer, mut layer) = amsgrad_on(&f["start"], &device);
    let mut scaler = LossScaler {
        growth_interval: 3,
        ..Default::default()
    };
    let coefficients = f["coefficients"].to_f32();
    let (after, scales) = (f["after"].to_f32(), f["scales"].to_f32());
    for step in 0..10 {
        let c = Tensor::<2>::from_data(
            TensorData::new(coefficients[step * 12..(step + 1) * 12].to_vec(), [3, 4]),
            &device,
        );
        layer = scaler.run(|| {
            let loss = (layer.weight.val() * c).sum();
            let grads = GradientsParams::from_grads(scaled(loss).backward(), &layer);
            optimizer.step(0.01, layer, grads)
        });
        let got = tensor_to_vec(layer.weight.val());
        let error = worst(&got, &after[step * 12..(step + 1) * 12]);
        assert!(error < 1e-6, "step {}: {error}", step + 1);
        assert_eq!(scaler.scale, scales[step], "scale after step {}", step + 1);
    }
}
