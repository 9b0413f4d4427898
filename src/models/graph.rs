//! A zoo model's eval-mode forward as a [`Graph`] of reid's CPU kernels
//! (`reid_kernels::inference`): its weights read once, every BatchNorm folded into the layer
//! before it, each layer one kernel call on plain buffers instead of several Burn operations.
//! The families build their part (`graph` methods next to their `forward`), from the pieces
//! here; a layer the graph does not cover makes the whole model fall back to Burn.

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, MaxPool2d};
use burn::nn::{BatchNorm, Linear};
use burn::tensor::Tensor;
use reid_kernels::PoolParams;
use reid_kernels::inference::{Conv, Dense};

pub use reid_kernels::inference::{Graph, GraphBuilder, Value};

use super::embed::tensor_to_vec;
use super::kernels::{avg_pool_params, conv_params, max_pool_params};

/// A tensor's values, in row-major order.
fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    tensor_to_vec(t)
}

/// The eval-mode BatchNorm `bn` as a per-channel `(scale, shift)`:
/// `bn(y) = y · scale + shift`.
fn batch_norm_affine(bn: &BatchNorm) -> (Vec<f32>, Vec<f32>) {
    let gamma = values(bn.gamma.val());
    let beta = values(bn.beta.val());
    let mean = values(bn.running_mean.value());
    let var = values(bn.running_var.value());
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
    let mut weight = values(conv.weight.val());
    let dims = conv.weight.dims();
    let o = dims[0];
    let mut bias = match &conv.bias {
        Some(b) => values(b.val()),
        None => vec![0.0; o],
    };
    if let Some(bn) = bn {
        let (scale, shift) = batch_norm_affine(bn);
        let per_filter = weight.len() / o.max(1);
        for (filter, s) in weight.chunks_mut(per_filter.max(1)).zip(&scale) {
            filter.iter_mut().for_each(|w| *w *= s);
        }
        for ((b, s), t) in bias.iter_mut().zip(&scale).zip(&shift) {
            *b = *b * s + t;
        }
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
        weight: values(conv.weight.val()),
        inputs,
        outputs,
        bias: match &conv.bias {
            Some(b) => values(b.val()),
            None => vec![0.0; outputs],
        },
    })
}

/// `linear`, followed by the eval-mode 1-D BatchNorm `bn` when given, as one layer.
pub fn folded_linear(linear: &Linear, bn: Option<&BatchNorm>) -> Dense {
    // Burn keeps a Linear's weight as `[inputs, outputs]`; the graph takes PyTorch's layout.
    let [inputs, outputs] = linear.weight.dims();
    let stored = values(linear.weight.val());
    let mut weight = vec![0.0; inputs * outputs];
    for i in 0..inputs {
        for o in 0..outputs {
            weight[o * inputs + i] = stored[i * outputs + o];
        }
    }
    let mut bias = match &linear.bias {
        Some(b) => values(b.val()),
        None => vec![0.0; outputs],
    };
    if let Some(bn) = bn {
        let (scale, shift) = batch_norm_affine(bn);
        for (row, s) in weight.chunks_mut(inputs.max(1)).zip(&scale) {
            row.iter_mut().for_each(|w| *w *= s);
        }
        for ((b, s), t) in bias.iter_mut().zip(&scale).zip(&shift) {
            *b = *b * s + t;
        }
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
