//! Seconds per training step, label-smoothed cross-entropy, AMSGrad: osnet_x0_25 and
//! osnet_x1_0 at 256×128 and the classification issue's efficientnet_b0 at 224×224 (1000
//! classes), batch 32 on the CPU (the configuration of PyTorch's figure in PEERS.md). PyTorch's
//! figures for the same: `tests/compare/train_step_pytorch.py`. `REID_KERNELS=burn` times Burn's
//! own convolutions instead of reid's.
//!
//! On a GPU (`scripts/gpu-check.sh`): `REID_BENCH_DEVICE` names the device (`cuda:0`, `wgpu:0`;
//! build with its feature), `REID_BENCH_BATCH` the batch and `REID_BENCH_ARCHS` the models
//! (comma-separated torchreid names; resnet50 and the others at 256×128, 751 identities), and
//! `REID_BENCH_PRECISION` (`f16`, `bf16`) times mixed precision as `train.mix_precision` runs
//! it (float16 with its loss scaling).

use burn::module::Module;
use burn::optim::AdamConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::tensor::{Int, Tensor, TensorData};
use criterion::{Criterion, criterion_group, criterion_main};
use reid::data::rng::Rng;
use reid::device::{default_device, parse_device};
use reid::models::precision::HalfPrecision;
use reid::models::{Arch, ReidModel};
use reid::train::loss_scale::{LossScaler, mixed_step};
use reid::train::optim::Optimizer;
use reid::train::{LossConfig, train_step};

// As the `reid` command line does.
#[global_allocator]
static ALLOCATOR: reid::allocator::ReusingAllocator =
    reid::allocator::ReusingAllocator::new(reid::allocator::DEFAULT_CAPACITY);

/// The value of the environment variable `name`, or `default`.
fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.into())
}

fn bench(c: &mut Criterion) {
    let device = setting("REID_BENCH_DEVICE", "flex");
    let batch: usize = setting("REID_BENCH_BATCH", "32")
        .parse()
        .expect("REID_BENCH_BATCH is a number");
    let archs = setting("REID_BENCH_ARCHS", "osnet_x0_25,osnet_x1_0,efficientnet_b0");
    let precision: Option<HalfPrecision> = std::env::var("REID_BENCH_PRECISION")
        .ok()
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().expect("REID_BENCH_PRECISION is f16 or bf16"));
    for name in archs.split(',') {
        let arch: Arch = name.parse().expect("a torchreid model name");
        let (size, classes) = match arch {
            Arch::EfficientnetB0 => ((224, 224), 1000),
            _ => ((256, 128), 751),
        };
        let group = format!("train_step_{}x{}", size.0, size.1);
        let mut label = match device.as_str() {
            "flex" => format!("{name}_b{batch}_amsgrad"),
            other => format!("{name}_b{batch}_amsgrad_{}", other.replace(':', "")),
        };
        if let Some(precision) = precision {
            label = format!("{label}_{precision}");
        }
        let setup = Setup {
            arch,
            size,
            classes,
            batch,
            precision,
        };
        step(c, &setup, &device, &group, &label);
    }
}

/// What one benchmark trains.
struct Setup {
    arch: Arch,
    size: (usize, usize),
    classes: usize,
    batch: usize,
    precision: Option<HalfPrecision>,
}

fn step(c: &mut Criterion, setup: &Setup, device: &str, group: &str, name: &str) {
    let Setup {
        arch,
        size: (h, w),
        classes,
        batch,
        precision,
    } = *setup;
    let device = match device {
        "flex" => default_device(),
        other => parse_device(other).expect("a device this build has"),
    }
    .autodiff();
    let mut rng = Rng::new(0);
    let pixels: Vec<f32> = (0..batch * 3 * h * w).map(|_| rng.normal()).collect();
    let labels: Vec<i64> = (0..batch).map(|i| (i / 4) as i64).collect();
    let images = Tensor::<4>::from_data(TensorData::new(pixels, [batch, 3, h, w]), &device);
    let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [batch]), &device);
    let mut model = Some(ReidModel::new(arch, classes, &device).train());
    let mut optimizer: Optimizer = AdamConfig::new()
        .with_amsgrad(true)
        .with_epsilon(1e-8)
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
        .init()
        .into();
    let losses = LossConfig::default();
    let mut scaler = precision
        .filter(|p| p.needs_loss_scaling())
        .map(|_| LossScaler::default());
    let mut group = c.benchmark_group(group);
    group.sample_size(10);
    group.bench_function(name, |b| {
        b.iter(|| {
            let step = || {
                train_step(
                    model.take().expect("model"),
                    &mut optimizer,
                    3e-4,
                    images.clone(),
                    targets.clone(),
                    &losses,
                )
            };
            let (next, stats) = mixed_step(precision, scaler.as_mut(), step);
            model = Some(next);
            stats
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
