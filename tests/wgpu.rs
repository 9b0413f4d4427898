//! The GPU path: the same model gives the same embeddings as on the CPU, one training step gives
//! the same loss and update, a short `train` run on the GPU evaluates and exports, and one on the
//! GPU and the CPU together trains data-parallel. The GPU is `wgpu:0` (built with `--features
//! wgpu`), or the device `REID_GPU_DEVICE` names (`cuda:0`, built with `--features cuda`;
//! `scripts/gpu-check.sh` runs both on a machine with an NVIDIA GPU). CI runs it on Mesa's
//! software Vulkan adapter (lavapipe). Without a Vulkan driver the wgpu tests say they skipped,
//! unless `REID_REQUIRE_WGPU` is set.
#![cfg(any(feature = "wgpu", feature = "cuda"))]

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::SgdConfig;
use burn::tensor::{Int, Tensor, TensorData};
use reid::data::{SynthOptions, synthesize};
use reid::device::{default_device, parse_device};
use reid::formats::npy::read_npz;
use reid::models::embed::tensor_to_vec;
use reid::models::{Arch, ReidModel};
use reid::train::optim::Optimizer;
use reid::train::{LossConfig, TrainConfig, train, train_step};
use reid::weights::load_torchreid;

/// The GPU under test: `REID_GPU_DEVICE`, else `wgpu:0`.
fn gpu() -> String {
    std::env::var("REID_GPU_DEVICE").unwrap_or_else(|_| "wgpu:0".into())
}

/// Whether the GPU under test can run: a CUDA device is taken as present (the test fails
/// without its driver), a wgpu one needs a Vulkan driver (its ICD manifest); skipping is refused
/// when `REID_REQUIRE_WGPU` is set.
fn gpu_available(test: &str) -> bool {
    if !gpu().starts_with("wgpu") {
        return true;
    }
    let manifests = [
        "/usr/share/vulkan/icd.d",
        "/etc/vulkan/icd.d",
        "/usr/local/share/vulkan/icd.d",
    ];
    let found = manifests
        .iter()
        .any(|dir| std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()));
    if !found {
        assert!(
            std::env::var_os("REID_REQUIRE_WGPU").is_none(),
            "REID_REQUIRE_WGPU is set but no Vulkan driver is installed"
        );
        eprintln!("skipped {test}: no Vulkan driver (apt-get install mesa-vulkan-drivers)");
    }
    found
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn model_on(device: &burn::tensor::Device) -> ReidModel {
    let (model, _) = load_torchreid(
        Arch::OsnetX0_25,
        fixture("osnet_x0_25/weights.safetensors"),
        device,
    )
    .unwrap();
    model
}

fn relative_difference(a: &[f32], b: &[f32]) -> f32 {
    let diff: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let size: f32 = b.iter().map(|y| y * y).sum();
    (diff / size).sqrt()
}

#[test]
fn embeddings_on_wgpu_match_the_cpu() {
    if !gpu_available("embeddings_on_wgpu_match_the_cpu") {
        return;
    }
    let gpu = parse_device(&gpu()).unwrap();
    let cpu = default_device();
    let f = read_npz(fixture("train/step.npz")).unwrap();
    let images = &f["images"];
    let input = |d: &burn::tensor::Device| {
        Tensor::<4>::from_data(TensorData::new(images.to_f32(), images.shape.clone()), d)
    };
    let on_cpu = tensor_to_vec(model_on(&cpu).features(input(&cpu)));
    let on_gpu = tensor_to_vec(model_on(&gpu).features(input(&gpu)));
    let r = relative_difference(&on_gpu, &on_cpu);
    assert!(r < 1e-4, "relative difference {r}");
}

#[test]
fn a_training_step_on_wgpu_matches_the_cpu() {
    if !gpu_available("a_training_step_on_wgpu_matches_the_cpu") {
        return;
    }
    let f = read_npz(fixture("train/step.npz")).unwrap();
    let losses = LossConfig {
        triplet_weight: 1.0,
        ..Default::default()
    };
    let step = |device: burn::tensor::Device| {
        let train_device = device.clone().autodiff();
        let model = model_on(&device).fork(&train_device).train();
        let images = &f["images"];
        let targets = &f["targets"];
        let (after, stats) = train_step(
            model,
            &mut Optimizer::from(SgdConfig::new().init()),
            0.05,
            Tensor::from_data(
                TensorData::new(images.to_f32(), images.shape.clone()),
                &train_device,
            ),
            Tensor::<1, Int>::from_data(
                TensorData::new(targets.to_i64().unwrap(), targets.shape.clone()),
                &train_device,
            ),
            &losses,
        );
        let weights = after
            .valid()
            .head
            .classifier
            .weight
            .val()
            .to_device(&default_device());
        (stats.loss, tensor_to_vec(weights))
    };
    let (cpu_loss, cpu_weights) = step(default_device());
    let (gpu_loss, gpu_weights) = step(parse_device(&gpu()).unwrap());
    assert!(
        (cpu_loss - gpu_loss).abs() < 1e-3 * cpu_loss.abs(),
        "{cpu_loss} vs {gpu_loss}"
    );
    let r = relative_difference(&gpu_weights, &cpu_weights);
    assert!(r < 1e-4, "classifier after the step differs by {r}");
}

#[test]
fn a_short_run_on_wgpu_trains_evaluates_and_exports() {
    if !gpu_available("a_short_run_on_wgpu_trains_evaluates_and_exports") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let options = SynthOptions {
        ids: 8,
        cameras: 2,
        distractors: 2,
        height: 64,
        width: 32,
        seed: 3,
        ..Default::default()
    };
    synthesize(&root.join("market1501"), &options).unwrap();
    let config = TrainConfig {
        data: reid::train::DataSection {
            root,
            height: 64,
            width: 32,
            ..Default::default()
        },
        sampler: reid::train::SamplerSection {
            batch_size: 8,
            ..Default::default()
        },
        schedule: reid::train::ScheduleSection {
            max_epoch: 2,
            ..Default::default()
        },
        eval: reid::train::EvalSection {
            eval_freq: 1,
            ..Default::default()
        },
        device: gpu(),
        save_dir: dir.path().join("run"),
        ..Default::default()
    };
    let report = train(&config, &mut |_| true).unwrap();
    assert_eq!(report.epochs_done, 2);
    // Data-parallel over the GPU and the CPU: gradients cross devices every step.
    let both = TrainConfig {
        schedule: reid::train::ScheduleSection {
            max_epoch: 1,
            ..config.schedule.clone()
        },
        device: format!("{},flex", gpu()),
        export_onnx: false,
        save_dir: dir.path().join("both"),
        ..config.clone()
    };
    let mixed = train(&both, &mut |_| true).unwrap();
    assert!(mixed.history[0].loss.is_finite() && mixed.history[0].eval[0].map > 0.0);
    assert!(report.history.iter().all(|e| e.loss.is_finite()));
    let map = report.history[1].eval[0].map;
    assert!((0.0..=1.0).contains(&map) && map > 0.0, "mAP {map}");
    assert!(report.onnx.unwrap().is_file());
}
