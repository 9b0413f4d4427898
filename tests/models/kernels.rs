//! reid's CPU kernels (`reid-kernels`) against PyTorch (tests/fixtures/make_kernel_fixtures.py):
//! the output and both gradients of every convolution kind of the zoo, training-mode batch
//! normalization (alone and followed by ReLU) with its three gradients, max / average pooling
//! SiLU and OSNet's gated sum of four streams with their gradients.

use std::collections::BTreeMap;

use burn::nn::conv::Conv2dConfig;
use burn::tensor::{Device, Tensor, TensorData};
use reid::formats::npy::{NpyArray, read_npz};
use reid::models::kernels::{CpuKernels, cpu_kernels, reid_kernel_params};
use reid_kernels::{
    ConvParams, PoolParams, avg_pool2d, batch_norm_train, conv2d, gated_sum, max_pool2d, silu,
};

use crate::common::{assert_close, fixture};

fn cases() -> (BTreeMap<String, NpyArray>, Vec<String>) {
    let arrays = read_npz(fixture("kernels/conv.npz")).expect("conv.npz");
    let names = arrays
        .keys()
        .filter_map(|k| k.strip_suffix(".params"))
        .map(str::to_owned)
        .collect();
    (arrays, names)
}

fn tensor(a: &NpyArray, device: &Device) -> Tensor<4> {
    let shape: [usize; 4] = a.shape.clone().try_into().expect("4-D");
    Tensor::from_data(TensorData::new(a.to_f32(), shape), device)
}

fn params(a: &NpyArray) -> ConvParams {
    let p = a.to_i64().expect("params");
    let u = |i: usize| p[i] as usize;
    ConvParams {
        stride: [u(0), u(1)],
        padding: [u(2), u(3)],
        groups: u(4),
    }
}

fn values(t: Tensor<4>) -> Vec<f32> {
    t.into_data().try_into_vec().expect("f32")
}

#[test]
fn forward_and_gradients_match_pytorch_for_every_convolution_kind() {
    let (arrays, names) = cases();
    assert!(names.len() >= 14, "{names:?}");
    let device = Device::flex().autodiff();
    for name in &names {
        let get = |key: &str| &arrays[&format!("{name}.{key}")];
        let x = tensor(get("x"), &device).require_grad();
        let w = tensor(get("w"), &device).require_grad();
        let dy = tensor(get("dy"), &device);
        let y = conv2d(x.clone(), w.clone(), params(get("params")));
        assert_close(&format!("{name} y"), &values(y.clone()), &get("y").to_f32());
        let grads = (y * dy).sum().backward();
        let dx = x.grad(&grads).expect("dx");
        let dw = w.grad(&grads).expect("dw");
        assert_close(
            &format!("{name} dx"),
            &dx.into_data().try_into_vec::<f32>().unwrap(),
            &get("dx").to_f32(),
        );
        assert_close(
            &format!("{name} dw"),
            &dw.into_data().try_into_vec::<f32>().unwrap(),
            &get("dw").to_f32(),
        );
    }
}

#[test]
fn without_autodiff_and_on_a_strided_view_the_same_output() {
    let (arrays, _) = cases();
    let device = Device::flex();
    for name in ["stem_7x7_s2", "depthwise_3x3_s2", "dense_3x3"] {
        let get = |key: &str| &arrays[&format!("{name}.{key}")];
        // The input as the transpose of its transpose: a non-contiguous view of the same values.
        let x = tensor(get("x"), &device).swap_dims(2, 3);
        let x = Tensor::<4>::from_data(x.into_data(), &device).swap_dims(2, 3);
        let y = conv2d(x, tensor(get("w"), &device), params(get("params")));
        assert_close(&format!("{name} y"), &values(y), &get("y").to_f32());
    }
}

#[test]
fn the_zoo_runs_on_reid_kernels_on_the_cpu_unless_burn_is_asked_for() {
    let device = Device::flex();
    let conv = Conv2dConfig::new([3, 8], [3, 3]).init(&device);
    let x = Tensor::<4>::zeros([1, 3, 8, 8], &device);
    let expected = match std::env::var("REID_KERNELS").as_deref() {
        Ok("burn") => CpuKernels::Burn,
        _ => CpuKernels::Reid,
    };
    assert_eq!(cpu_kernels(), expected);
    assert_eq!(
        reid_kernel_params(&conv, &x).is_some(),
        expected == CpuKernels::Reid
    );
}

/// Random values for a tensor of `shape`, from a fixed seed.
fn random<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    let mut rng = reid::data::rng::Rng::new(seed);
    let values: Vec<f32> = (0..shape.iter().product()).map(|_| rng.normal()).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

#[test]
fn inference_folds_batch_norm_and_relu_into_the_convolution_without_changing_the_numbers() {
    use burn::module::{Param, RunningState};
    use burn::tensor::module::conv2d as burn_conv2d;
    use burn::tensor::ops::ConvOptions;
    use reid::models::layers::{ConvNorm, ConvSpec};

    let device = Device::flex();
    let specs = [
        ("dense 3×3", ConvSpec::new(6, 10, 3)),
        (
            "depthwise 3×3 stride 2",
            ConvSpec::new(8, 8, 3).groups(8).stride(2),
        ),
        ("pointwise", ConvSpec::new(8, 12, 1)),
    ];
    for (seed, (name, spec)) in specs.into_iter().enumerate() {
        let seed = seed as u64 * 10;
        let mut unit = ConvNorm::batch(spec, &device);
        let c = spec.out_channels;
        let reid::models::layers::Norm::Batch(bn) = &mut unit.bn else {
            unreachable!()
        };
        bn.gamma = Param::from_tensor(random([c], seed + 1, &device));
        bn.beta = Param::from_tensor(random([c], seed + 2, &device));
        bn.running_mean = RunningState::new(random([c], seed + 3, &device));
        bn.running_var = RunningState::new(random([c], seed + 4, &device).abs() + 0.5);
        let x = random([2, spec.in_channels, 11, 9], seed + 5, &device);
        // Burn's own convolution, BatchNorm and ReLU, one after the other.
        let options = ConvOptions::new([spec.stride; 2], spec.padding, [1, 1], spec.groups);
        let conv = burn_conv2d(x.clone(), unit.conv.weight.val(), None, options);
        let want = burn::tensor::activation::relu(bn.forward(conv));
        let folded = reid::models::kernels::reid_conv_batch_norm(&unit.conv, bn, &x, true);
        assert!(folded.is_some(), "{name}: the folded path applies");
        let got = unit.forward_relu(x.clone());
        let (got, want) = (values(got), values(want));
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst <= 1e-5 * scale,
            "{name}: max |Δ| {worst:e} (scale {scale})"
        );
        assert!(
            want.iter().filter(|v| **v == 0.0).count() > want.len() / 5,
            "{name}: ReLU"
        );
        eprintln!("{name}: folded vs unfolded max |Δ| = {worst:.2e} (scale {scale:.2})");
    }
}

fn vector(a: &NpyArray, device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(a.to_f32(), [a.len()]), device)
}

fn flat<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec().expect("f32")
}

#[test]
fn training_batch_norm_and_its_gradients_match_pytorch() {
    let arrays = read_npz(fixture("kernels/batch_norm.npz")).expect("batch_norm.npz");
    let device = Device::flex().autodiff();
    let names: Vec<&str> = arrays
        .keys()
        .filter_map(|k| k.strip_suffix(".eps"))
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    for name in names {
        let get = |key: &str| &arrays[&format!("{name}.{key}")];
        let eps = get("eps").to_f64()[0];
        let relu = get("relu").to_i64().expect("relu")[0] == 1;
        let gamma = vector(get("gamma"), &device).require_grad();
        let beta = vector(get("beta"), &device).require_grad();
        let check = |y_dx: (Vec<f32>, Vec<f32>), mean: Tensor<1>, var: Tensor<1>, grads| {
            let grads: &burn::tensor::Gradients = grads;
            assert_close(&format!("{name} y"), &y_dx.0, &get("y").to_f32());
            assert_close(&format!("{name} mean"), &flat(mean), &get("mean").to_f32());
            assert_close(&format!("{name} var"), &flat(var), &get("var").to_f32());
            assert_close(&format!("{name} dx"), &y_dx.1, &get("dx").to_f32());
            let dgamma = flat(gamma.grad(grads).expect("dgamma"));
            assert_close(&format!("{name} dgamma"), &dgamma, &get("dgamma").to_f32());
            let dbeta = flat(beta.grad(grads).expect("dbeta"));
            assert_close(&format!("{name} dbeta"), &dbeta, &get("dbeta").to_f32());
        };
        let (x, dy) = (get("x"), get("dy"));
        if x.shape.len() == 4 {
            let x = tensor(x, &device).require_grad();
            let (y, mean, var) =
                batch_norm_train(x.clone(), gamma.clone(), beta.clone(), eps, relu);
            let grads = (y.clone() * tensor(dy, &device)).sum().backward();
            let dx = flat(x.grad(&grads).expect("dx"));
            check((flat(y), dx), mean, var, &grads);
        } else {
            let shape = [x.shape[0], x.shape[1]];
            let matrix =
                |a: &NpyArray| Tensor::<2>::from_data(TensorData::new(a.to_f32(), shape), &device);
            let x = matrix(x).require_grad();
            let (y, mean, var) =
                batch_norm_train(x.clone(), gamma.clone(), beta.clone(), eps, relu);
            let grads = (y.clone() * matrix(dy)).sum().backward();
            let dx = flat(x.grad(&grads).expect("dx"));
            check((flat(y), dx), mean, var, &grads);
        }
    }
}

#[test]
fn pooling_and_its_gradient_match_pytorch_ties_included() {
    let arrays = read_npz(fixture("kernels/pool.npz")).expect("pool.npz");
    let names: Vec<&str> = arrays
        .keys()
        .filter_map(|k| k.strip_suffix(".params"))
        .collect();
    assert_eq!(names.len(), 5, "{names:?}");
    let device = Device::flex().autodiff();
    for name in names {
        let get = |key: &str| &arrays[&format!("{name}.{key}")];
        let p = get("params").to_i64().expect("params");
        let params = PoolParams {
            kernel: [p[0] as usize; 2],
            stride: [p[1] as usize; 2],
            padding: [p[2] as usize; 2],
            count_include_pad: p[3] == 1,
        };
        let x = tensor(get("x"), &device).require_grad();
        let y = if p[4] == 1 {
            max_pool2d(x.clone(), params)
        } else {
            avg_pool2d(x.clone(), params)
        };
        assert_close(&format!("{name} y"), &values(y.clone()), &get("y").to_f32());
        let grads = (y * tensor(get("dy"), &device)).sum().backward();
        let dx = x.grad(&grads).expect("dx");
        // Max pooling's gradient goes to one position per window: a different choice among
        // tied maxima would move whole values, far past the tolerance.
        assert_close(
            &format!("{name} dx"),
            &dx.into_data().try_into_vec::<f32>().unwrap(),
            &get("dx").to_f32(),
        );
    }
}

#[test]
fn silu_and_its_gradient_match_pytorch() {
    let f = read_npz(fixture("kernels/silu.npz")).expect("silu.npz");
    let device = Device::flex().autodiff();
    let x = tensor(&f["x"], &device).require_grad();
    let y = silu(x.clone());
    assert_close("silu y", &values(y.clone()), &f["y"].to_f32());
    let grads = (y * tensor(&f["dy"], &device)).sum().backward();
    let dx = x.grad(&grads).expect("dx");
    assert_close(
        "silu dx",
        &dx.into_data().try_into_vec::<f32>().unwrap(),
        &f["dx"].to_f32(),
    );
}

#[test]
fn the_gated_sum_of_four_streams_and_its_gradients_match_pytorch() {
    let f = read_npz(fixture("kernels/gated_sum.npz")).expect("gated_sum.npz");
    let device = Device::flex().autodiff();
    let inputs: [(Tensor<4>, Tensor<4>); 4] = std::array::from_fn(|t| {
        (
            tensor(&f[&format!("x{t}")], &device).require_grad(),
            tensor(&f[&format!("g{t}")], &device).require_grad(),
        )
    });
    let y = gated_sum(inputs.clone());
    assert_close("gated sum y", &values(y.clone()), &f["y"].to_f32());
    let grads = (y * tensor(&f["dy"], &device)).sum().backward();
    for (t, (x, g)) in inputs.iter().enumerate() {
        for (name, tensor) in [("dx", x), ("dg", g)] {
            let grad = tensor.grad(&grads).expect("gradient");
            assert_close(
                &format!("gated sum {name}{t}"),
                &grad.into_data().try_into_vec::<f32>().unwrap(),
                &f[&format!("{name}{t}")].to_f32(),
            );
        }
    }
}
