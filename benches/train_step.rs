//! Seconds per training step on the CPU, label-smoothed cross-entropy, AMSGrad: osnet_x0_25 and
//! osnet_x1_0, batch 32, 256×128 (the configuration of PyTorch's figure in PEERS.md), and the
//! classification issue's efficientnet_b0, batch 32, 224×224, 1000 classes. PyTorch's figures
//! for the same three: `tests/compare/train_step_pytorch.py`. `REID_KERNELS=burn` times Burn's
//! own convolutions instead of reid's.

use burn::module::Module;
use burn::optim::AdamConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::tensor::{Int, Tensor, TensorData};
use criterion::{Criterion, criterion_group, criterion_main};
use reid::data::rng::Rng;
use reid::device::default_device;
use reid::models::{Arch, ReidModel};
use reid::train::{LossConfig, train_step};

// As the `reid` command line does.
#[global_allocator]
static ALLOCATOR: reid::allocator::ReusingAllocator =
    reid::allocator::ReusingAllocator::new(reid::allocator::DEFAULT_CAPACITY);

fn bench(c: &mut Criterion) {
    step(
        c,
        Arch::OsnetX0_25,
        (256, 128),
        751,
        "train_step_256x128",
        "osnet_x0_25_b32_amsgrad",
    );
    step(
        c,
        Arch::OsnetX1_0,
        (256, 128),
        751,
        "train_step_256x128",
        "osnet_x1_0_b32_amsgrad",
    );
    step(
        c,
        Arch::EfficientnetB0,
        (224, 224),
        1000,
        "train_step_224x224",
        "efficientnet_b0_b32_amsgrad",
    );
}

fn step(
    c: &mut Criterion,
    arch: Arch,
    (h, w): (usize, usize),
    classes: usize,
    group: &str,
    name: &str,
) {
    let device = default_device().autodiff();
    let batch = 32usize;
    let mut rng = Rng::new(0);
    let pixels: Vec<f32> = (0..batch * 3 * h * w).map(|_| rng.normal()).collect();
    let labels: Vec<i64> = (0..batch).map(|i| (i / 4) as i64).collect();
    let images = Tensor::<4>::from_data(TensorData::new(pixels, [batch, 3, h, w]), &device);
    let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [batch]), &device);
    let mut model = Some(ReidModel::new(arch, classes, &device).train());
    let mut optimizer = AdamConfig::new()
        .with_amsgrad(true)
        .with_epsilon(1e-8)
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
        .init();
    let losses = LossConfig::default();
    let mut group = c.benchmark_group(group);
    group.sample_size(10);
    group.bench_function(name, |b| {
        b.iter(|| {
            let (next, stats) = train_step(
                model.take().expect("model"),
                &mut optimizer,
                3e-4,
                images.clone(),
                targets.clone(),
                &losses,
            );
            model = Some(next);
            stats
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
