//! A zoo model's eval-mode forward as a [`Graph`] of reid's CPU kernels
//! (`reid_kernels::inference`): its weights read once, every BatchNorm folded into the layer
//! before it, each layer one kernel call on plain buffers instead of several Burn operations.
//! The families build their part (`graph` methods next to their `forward`), from the pieces
//! here; a layer the graph does not cover makes the whole model fall back to Burn.

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, MaxPool2d};
use burn::nn::{BatchNorm, Linear};
use burn::tensor::Tensor;
use reid_kernels::PoolParams;
use reid_kernels::inference::{Conv, Dense};

pub use reid_kernels::inference::{Graph, GraphBuilder, StepProfile, Value};

use super::embed::tensor_to_vec;
use super::kernels::{avg_pool_params, conv_params, max_pool_params};

/// A layer's bias, or zeros for a layer without one.
fn bias_or_zeros(bias: &Option<Param<Tensor<1>>>, len: usize) -> Vec<f32> {
    match bias {
        Some(b) => tensor_to_vec(b.val()),
        None => vec![0.0; len],
    }
}

/// Folds the eval-mode `bn` into the layer before it: each output's row of `weight` scaled by
/// the BatchNorm's scale, `bias` becoming `bias · scale + shift`.
fn fold_batch_norm(weight: &mut [f32], bias: &mut [f32], bn: &BatchNorm) {
    let (scale, shift) = batch_norm_affine(bn);
    let row = (weight.len() / bias.len().max(1)).max(1);
    for (row, s) in weight.chunks_mut(row).zip(&scale) {
        row.iter_mut().for_each(|w| *w *= s);
    }
    for ((b, s), t) in bias.iter_mut().zip(&scale).zip(&shift) {
        *b = *b * s + t;
    }
}

/// The eval-mode BatchNorm `bn` as a per-channel `(scale, shift)`:
/// `bn(y) = y · scale + shift`.
fn batch_norm_affine(bn: &BatchNorm) -> (Vec<f32>, Vec<f32>) {
    let gamma = tensor_to_vec(bn.gamma.val());
    let beta = tensor_to_vec(bn.beta.val());
    let mean = tensor_to_vec(bn.running_mean.value());
    let var = tensor_to_vec(bn.running_var.value());
    let scale: Vec<f32> = gamma
        .iter()
        .zip(&var)
        .map(|(g, v)| g / (v + bn.epsilon as f32).sqrt())
        .collect();
    let shift = beta
        .iter()
        .zip(&mean)
        .zip(&scale)
        .map(|((b, m), s)| b - m * s)
        .collect();
    (scale, shift)
}

/// `conv`, followed by `bn` when given, as one convolution with a bias: the BatchNorm's scale
/// multiplies each output channel's filter, its shift (and the scaled convolution bias) becomes
/// the bias. `None` for a convolution reid's kernels do not take (dilation, asymmetric padding).
pub fn folded_conv(conv: &Conv2d, bn: Option<&BatchNorm>) -> Option<Conv> {
    let params = conv_params(conv)?;
    let mut weight = tensor_to_vec(conv.weight.val());
    let dims = conv.weight.dims();
    let mut bias = bias_or_zeros(&conv.bias, dims[0]);
    if let Some(bn) = bn {
        fold_batch_norm(&mut weight, &mut bias, bn);
    }
    Some(Conv {
        weight,
        dims,
        bias,
        params,
    })
}

/// A 1×1 convolution (with its bias) as a fully connected layer on `[n, c, 1, 1]`.
pub fn pointwise_dense(conv: &Conv2d) -> Option<Dense> {
    let [outputs, inputs, kh, kw] = conv.weight.dims();
    let pointwise = [kh, kw] == [1, 1] && conv.groups == 1;
    pointwise.then(|| Dense {
        weight: tensor_to_vec(conv.weight.val()),
        inputs,
        outputs,
        bias: bias_or_zeros(&conv.bias, outputs),
    })
}

/// `linear`, followed by the eval-mode 1-D BatchNorm `bn` when given, as one layer.
pub fn folded_linear(linear: &Linear, bn: Option<&BatchNorm>) -> Dense {
    // Burn keeps a Linear's weight as `[inputs, outputs]`; the graph takes PyTorch's layout.
    let [inputs, outputs] = linear.weight.dims();
    let stored = tensor_to_vec(linear.weight.val());
    let mut weight = vec![0.0; inputs * outputs];
    for i in 0..inputs {
        for o in 0..outputs {
            weight[o * inputs + i] = stored[i * outputs + o];
        }
    }
    let mut bias = bias_or_zeros(&linear.bias, outputs);
    if let Some(bn) = bn {
        fold_batch_norm(&mut weight, &mut bias, bn);
    }
    Dense {
        weight,
        inputs,
        outputs,
        bias,
    }
}

/// The graph's form of a max pooling, when reid's kernels take it.
pub fn max_pool(g: &mut GraphBuilder, pool: &MaxPool2d, x: Value) -> Option<Value> {
    let params: PoolParams = max_pool_params(pool)?;
    Some(g.max_pool(x, params))
}

/// The graph's form of an average pooling, when reid's kernels take it.
pub fn avg_pool(g: &mut GraphBuilder, pool: &AvgPool2d, x: Value) -> Option<Value> {
    let params = avg_pool_params(pool)?;
    Some(g.avg_pool(x, params))
}
