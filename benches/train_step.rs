//! Seconds per training step on the CPU: osnet_x0_25, batch 32, 256×128, label-smoothed
//! cross-entropy, AMSGrad — the configuration of PyTorch's figure in PEERS.md.

use burn::module::Module;
use burn::optim::AdamConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::tensor::{Int, Tensor, TensorData};
use criterion::{Criterion, criterion_group, criterion_main};
use reid::data::rng::Rng;
use reid::device::default_device;
use reid::models::{Arch, ReidModel};
use reid::train::{LossConfig, train_step};

fn bench(c: &mut Criterion) {
    let device = default_device().autodiff();
    let (batch, classes) = (32usize, 751usize);
    let mut rng = Rng::new(0);
    let pixels: Vec<f32> = (0..batch * 3 * 256 * 128).map(|_| rng.normal()).collect();
    let labels: Vec<i64> = (0..batch).map(|i| (i / 4) as i64).collect();
    let images = Tensor::<4>::from_data(TensorData::new(pixels, [batch, 3, 256, 128]), &device);
    let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [batch]), &device);
    let mut model = Some(ReidModel::new(Arch::OsnetX0_25, classes, &device).train());
    let mut optimizer = AdamConfig::new()
        .with_amsgrad(true)
        .with_epsilon(1e-8)
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
        .init();
    let losses = LossConfig::default();
    let mut group = c.benchmark_group("train_step_256x128");
    group.sample_size(10);
    group.bench_function("osnet_x0_25_b32_amsgrad", |b| {
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
