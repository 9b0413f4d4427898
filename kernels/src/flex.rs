//! The kernels on Burn's Flex backend: `f32` convolutions go through [`crate::dense`] or
//! [`crate::depthwise`], other float types through Flex's own convolution; batch normalization
//! and pooling take `f32` only.

use burn::backend::Flex;
use burn::backend::ops::{ActivationOps, ConvOptions, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::tensor::{DType, TensorData};

use crate::batch_norm::{self, NormShape};
use crate::pool::{self, PoolParams, PoolShape};
use crate::shape::{ConvParams, ConvShape, Epilogue};
use crate::{
    ActivationKernels, ConvKernels, GateKernels, NormKernels, PoolKernels, activation, dense,
    depthwise, gate,
};

fn dims(t: &FloatTensor<Flex>) -> [usize; 4] {
    let shape = t.layout().shape();
    assert_eq!(shape.num_dims(), 4, "convolution tensors are 4-D");
    [shape[0], shape[1], shape[2], shape[3]]
}

/// The tensor's elements in row-major order, copied only when its layout is not already that.
fn values(t: &FloatTensor<Flex>) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(slice) => slice.into(),
        None => t
            .to_contiguous()
            .as_slice::<f32>()
            .expect("contiguous")
            .to_vec()
            .into(),
    }
}

fn tensor(values: Vec<f32>, shape: impl Into<burn::tensor::Shape>) -> FloatTensor<Flex> {
    FloatTensor::<Flex>::from_data(TensorData::new(values, shape))
}

fn options(params: ConvParams) -> ConvOptions<2> {
    ConvOptions::new(params.stride, params.padding, [1, 1], params.groups)
}

fn shape_of(input: [usize; 4], weight: [usize; 4], params: ConvParams) -> ConvShape {
    ConvShape::new(input, weight, params).unwrap_or_else(|| {
        panic!("convolution of {input:?} with weight {weight:?} and {params:?} does not fit")
    })
}

fn is_f32(tensors: &[&FloatTensor<Flex>]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32)
}

/// The forward of `f32` tensors with `epilogue`.
fn forward(
    x: FloatTensor<Flex>,
    weight: FloatTensor<Flex>,
    params: ConvParams,
    epilogue: Epilogue,
) -> FloatTensor<Flex> {
    let s = shape_of(dims(&x), dims(&weight), params);
    if let Some(bias) = epilogue.bias {
        assert_eq!(bias.len(), s.o, "one bias per output channel");
    }
    let (x, w) = (values(&x), values(&weight));
    let out = if s.depthwise() {
        depthwise::forward(&s, &x, &w, epilogue)
    } else {
        dense::forward(&s, &x, &w, epilogue)
    };
    tensor(out, [s.n, s.o, s.oh, s.ow])
}

impl ConvKernels for Flex {
    fn reid_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        params: ConvParams,
    ) -> FloatTensor<Self> {
        if !is_f32(&[&x, &weight]) {
            return Flex::conv2d(x, weight, None, options(params));
        }
        forward(x, weight, params, Epilogue::default())
    }

    fn reid_conv2d_inference(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        params: ConvParams,
        relu: bool,
    ) -> FloatTensor<Self> {
        if !is_f32(&[&x, &weight, &bias]) {
            let y = Flex::conv2d(x, weight, Some(bias), options(params));
            return if relu { Flex::relu(y) } else { y };
        }
        let bias = values(&bias);
        forward(
            x,
            weight,
            params,
            Epilogue {
                bias: Some(&bias),
                residual: None,
                relu,
            },
        )
    }

    fn reid_conv2d_input_grad(
        grad: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        input_shape: [usize; 4],
        params: ConvParams,
    ) -> FloatTensor<Self> {
        if !is_f32(&[&grad, &weight]) {
            let x = FloatTensor::<Flex>::zeros(input_shape.into(), grad.dtype());
            return Flex::conv2d_x_backward(x, weight, grad, options(params));
        }
        let s = shape_of(input_shape, dims(&weight), params);
        let (dy, w) = (values(&grad), values(&weight));
        let dx = if s.depthwise() {
            depthwise::input_grad(&s, &dy, &w)
        } else {
            dense::input_grad(&s, &dy, &w)
        };
        tensor(dx, input_shape)
    }

    fn reid_conv2d_weight_grad(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        weight_shape: [usize; 4],
        params: ConvParams,
    ) -> FloatTensor<Self> {
        if !is_f32(&[&x, &grad]) {
            let w = FloatTensor::<Flex>::zeros(weight_shape.into(), grad.dtype());
            return Flex::conv2d_weight_backward(x, w, grad, options(params));
        }
        let s = shape_of(dims(&x), weight_shape, params);
        let (x, dy) = (values(&x), values(&grad));
        let dw = if s.depthwise() {
            depthwise::weight_grad(&s, &x, &dy)
        } else {
            dense::weight_grad(&s, &x, &dy)
        };
        tensor(dw, weight_shape)
    }
}

/// `[n, c, rest]` of an activation `[n, c, …]`.
fn norm_shape(x: &FloatTensor<Flex>) -> NormShape {
    let shape = x.layout().shape();
    assert!(shape.num_dims() >= 2, "batch normalization needs [n, c, …]");
    NormShape {
        n: shape[0],
        c: shape[1],
        rest: (2..shape.num_dims()).map(|d| shape[d]).product(),
    }
}

fn f32_only(tensors: &[&FloatTensor<Flex>]) {
    assert!(
        is_f32(tensors),
        "reid's batch normalization, pooling and activation kernels are f32 only"
    );
}

impl NormKernels for Flex {
    fn reid_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        f32_only(&[&x, &gamma, &beta]);
        let s = norm_shape(&x);
        let values_x = values(&x);
        let (mean, var) = batch_norm::statistics(s, &values_x);
        let inv_std = batch_norm::inverse_std(&var, epsilon);
        let affine = batch_norm::affine(&mean, &inv_std, &values(&gamma), &values(&beta));
        let y = batch_norm::normalize(s, &values_x, &affine, relu);
        (
            tensor(y, x.layout().shape().clone()),
            tensor(mean, [s.c]),
            tensor(var, [s.c]),
        )
    }

    fn reid_batch_norm_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        f32_only(&[&x, &grad, &mean, &var, &gamma, &beta]);
        let s = norm_shape(&x);
        let (mean, gamma) = (values(&mean), values(&gamma));
        let inv_std = batch_norm::inverse_std(&values(&var), epsilon);
        let affine = relu.then(|| batch_norm::affine(&mean, &inv_std, &gamma, &values(&beta)));
        let (dx, dgamma, dbeta) = batch_norm::backward(
            s,
            &values(&x),
            &values(&grad),
            &mean,
            &inv_std,
            &gamma,
            affine.as_deref(),
        );
        (
            tensor(dx, x.layout().shape().clone()),
            tensor(dgamma, [s.c]),
            tensor(dbeta, [s.c]),
        )
    }
}

fn pool_shape(input: [usize; 4], params: PoolParams) -> PoolShape {
    PoolShape::new(input, params)
        .unwrap_or_else(|| panic!("pooling window {params:?} does not fit an input {input:?}"))
}

impl PoolKernels for Flex {
    fn reid_max_pool2d(x: FloatTensor<Self>, params: PoolParams) -> FloatTensor<Self> {
        f32_only(&[&x]);
        let s = pool_shape(dims(&x), params);
        let [n, c, ..] = dims(&x);
        tensor(pool::max_forward(&s, &values(&x)), [n, c, s.oh, s.ow])
    }

    fn reid_max_pool2d_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        params: PoolParams,
    ) -> FloatTensor<Self> {
        f32_only(&[&x, &grad]);
        let s = pool_shape(dims(&x), params);
        tensor(
            pool::max_backward(&s, &values(&x), &values(&grad)),
            dims(&x),
        )
    }

    fn reid_avg_pool2d(x: FloatTensor<Self>, params: PoolParams) -> FloatTensor<Self> {
        f32_only(&[&x]);
        let s = pool_shape(dims(&x), params);
        let [n, c, ..] = dims(&x);
        tensor(pool::avg_forward(&s, &values(&x)), [n, c, s.oh, s.ow])
    }

    fn reid_avg_pool2d_backward(
        grad: FloatTensor<Self>,
        input_shape: [usize; 4],
        params: PoolParams,
    ) -> FloatTensor<Self> {
        f32_only(&[&grad]);
        let s = pool_shape(input_shape, params);
        tensor(pool::avg_backward(&s, &values(&grad)), input_shape)
    }
}

impl ActivationKernels for Flex {
    fn reid_silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        f32_only(&[&x]);
        tensor(activation::silu(&values(&x)), x.layout().shape().clone())
    }

    fn reid_silu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        f32_only(&[&x, &grad]);
        let dx = activation::silu_backward(&values(&x), &values(&grad));
        tensor(dx, x.layout().shape().clone())
    }
}

impl GateKernels for Flex {
    fn reid_gated_sum(
        x1: FloatTensor<Self>,
        g1: FloatTensor<Self>,
        x2: FloatTensor<Self>,
        g2: FloatTensor<Self>,
        x3: FloatTensor<Self>,
        g3: FloatTensor<Self>,
        x4: FloatTensor<Self>,
        g4: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let tensors = [&x1, &g1, &x2, &g2, &x3, &g3, &x4, &g4];
        f32_only(&tensors);
        let [n, c, h, w] = dims(&x1);
        for (x, g) in [(&x1, &g1), (&x2, &g2), (&x3, &g3), (&x4, &g4)] {
            assert!(
                dims(x) == [n, c, h, w] && dims(g) == [n, c, 1, 1],
                "gated sum: streams [n, c, h, w] and gates [n, c, 1, 1] of one size"
            );
        }
        let values: Vec<_> = tensors.iter().map(|t| values(t)).collect();
        let streams: Vec<&[f32]> = values.iter().step_by(2).map(|v| &v[..]).collect();
        let gates: Vec<&[f32]> = values.iter().skip(1).step_by(2).map(|v| &v[..]).collect();
        tensor(gate::forward(h * w, &streams, &gates), [n, c, h, w])
    }

    fn reid_gated_sum_backward(
        x: FloatTensor<Self>,
        g: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        f32_only(&[&x, &g, &grad]);
        let [n, c, h, w] = dims(&x);
        let (dx, dg) = gate::backward(h * w, &values(&x), &values(&g), &values(&grad));
        (tensor(dx, [n, c, h, w]), tensor(dg, [n, c, 1, 1]))
    }
}
