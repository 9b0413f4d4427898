//! Forward-pass throughput of the Burn models on the CPU (`flex`), eval mode, prepared
//! float input of 256×128: the number to compare with PyTorch / ONNX Runtime in PEERS.md.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use reid::device::default_device;
use reid::models::{Arch, ReidModel};

// As the `reid` command line does.
#[global_allocator]
static ALLOCATOR: reid::allocator::ReusingAllocator =
    reid::allocator::ReusingAllocator::new(reid::allocator::DEFAULT_CAPACITY);

fn forward(c: &mut Criterion) {
    let device = default_device();
    let mut group = c.benchmark_group("forward_flex_256x128");
    group.sample_size(10);
    for arch in [Arch::OsnetX0_25, Arch::OsnetX1_0] {
        let model = ReidModel::new(arch, 751, &device);
        for batch in [1usize, 32] {
            let input = burn::tensor::Tensor::<4>::random(
                [batch, 3, 256, 128],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                &device,
            );
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(
                BenchmarkId::new(arch.name(), format!("batch{batch}")),
                &input,
                |b, input| {
                    b.iter(|| reid::models::embed::tensor_to_vec(model.features(input.clone())))
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
