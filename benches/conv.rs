//! Per-convolution timings, batch 32, forward and forward + backward, reid's CPU kernels beside
//! Burn Flex's convolution in the same run, for the kinds that dominate the zoo's training step
//! (the rows of the CPU kernels issue; PyTorch's side: `tests/compare/conv_speed_pytorch.py`),
//! and a 1024³ matrix product as the machine's GEMM peak for the GFLOP/s comparison.

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use reid::data::rng::Rng;
use reid::distance::{Matrix, matmul_transposed};
use reid_kernels::ConvParams;

/// Name, in channels, out channels, kernel, stride, padding, groups, input height, width.
type Op = (
    &'static str,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
);

const OPS: [Op; 4] = [
    ("stem_7x7_s2_3to16", 3, 16, 7, 2, 3, 1, 256, 128),
    ("depthwise_3x3_c64", 64, 64, 3, 1, 1, 64, 64, 32),
    ("pointwise_64to64", 64, 64, 1, 1, 0, 1, 64, 32),
    ("dense_3x3_64to64", 64, 64, 3, 1, 1, 1, 64, 32),
];
const BATCH: usize = 32;

// As the `reid` command line does.
#[global_allocator]
static ALLOCATOR: reid::allocator::ReusingAllocator =
    reid::allocator::ReusingAllocator::new(reid::allocator::DEFAULT_CAPACITY);

fn random(shape: [usize; 4], rng: &mut Rng, device: &Device) -> Tensor<4> {
    let values = (0..shape.iter().product())
        .map(|_| rng.normal())
        .collect::<Vec<f32>>();
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn run(reid: bool, x: Tensor<4>, w: Tensor<4>, params: ConvParams) -> Tensor<4> {
    if reid {
        reid_kernels::conv2d(x, w, params)
    } else {
        let options = ConvOptions::new(params.stride, params.padding, [1, 1], params.groups);
        conv2d(x, w, None, options)
    }
}

fn convolutions(c: &mut Criterion) {
    let mut rng = Rng::new(0);
    let mut group = c.benchmark_group("conv_b32");
    group.sample_size(10);
    for (name, cin, cout, k, stride, pad, groups, h, w) in OPS {
        let params = ConvParams {
            stride: [stride; 2],
            padding: [pad; 2],
            groups,
        };
        let (oh, ow) = (
            (h + 2 * pad - k) / stride + 1,
            (w + 2 * pad - k) / stride + 1,
        );
        let flops = 2 * BATCH * cout * oh * ow * (cin / groups) * k * k;
        group.throughput(Throughput::Elements(flops as u64));
        for (kernels, reid) in [("reid", true), ("burn", false)] {
            let device = Device::flex();
            let x = random([BATCH, cin, h, w], &mut rng, &device);
            let weight = random([cout, cin / groups, k, k], &mut rng, &device);
            group.bench_function(BenchmarkId::new(format!("{name}/forward"), kernels), |b| {
                b.iter(|| run(reid, x.clone(), weight.clone(), params).into_data())
            });
            let device = device.autodiff();
            let x = Tensor::from_data(x.into_data(), &device).require_grad();
            let weight = Tensor::from_data(weight.into_data(), &device).require_grad();
            let dy = random([BATCH, cout, oh, ow], &mut rng, &device);
            group.bench_function(
                BenchmarkId::new(format!("{name}/forward+backward"), kernels),
                |b| {
                    b.iter(|| {
                        let y = run(reid, x.clone(), weight.clone(), params);
                        let grads = (y * dy.clone()).sum().backward();
                        (x.grad(&grads), weight.grad(&grads))
                    })
                },
            );
        }
    }
    group.finish();

    // The matrix product our kernels run on (the `gemm` crate, as `reid::distance` calls it).
    let mut group = c.benchmark_group("gemm_peak");
    group.sample_size(10);
    let n = 1024;
    let a = Matrix::new(n, n, vec![0.5f32; n * n]).expect("matrix");
    group.throughput(Throughput::Elements(2 * (n * n * n) as u64));
    group.bench_function("matmul_1024", |b| {
        b.iter(|| matmul_transposed(&a, &a).expect("product"))
    });
    group.finish();
}

criterion_group!(benches, convolutions);
criterion_main!(benches);
