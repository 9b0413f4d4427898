//! ONNX nodes for the Burn layers the model zoo uses, reading their weights.

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, MaxPool2d};
use burn::nn::{BatchNorm, InstanceNorm, Linear, PRelu, PaddingConfig2d};

use super::graph::{Attr, GraphBuilder};
use crate::models::embed::tensor_to_vec;
use crate::models::layers::{ConvNorm, Norm};

/// A list of sizes as an ONNX integer-list attribute.
fn ints(values: &[usize]) -> Attr {
    Attr::Ints(values.iter().map(|&v| v as i64).collect())
}

fn pads(padding: &PaddingConfig2d) -> Vec<i64> {
    match *padding {
        // ONNX order: top, left, bottom, right.
        PaddingConfig2d::Explicit(top, left, bottom, right) => {
            vec![top as i64, left as i64, bottom as i64, right as i64]
        }
        _ => vec![0; 4],
    }
}

/// `Conv`, with its weights (and bias) as initializers.
pub fn conv(g: &mut GraphBuilder, conv: &Conv2d, x: &str) -> String {
    let w = conv.weight.val();
    let dims = w.dims();
    let weight = g.param(conv.weight.id, "conv_w", &dims, &tensor_to_vec(w));
    let mut inputs = vec![x.to_string(), weight];
    if let Some(bias) = &conv.bias {
        let b = bias.val();
        let n = b.dims()[0];
        inputs.push(g.param(bias.id, "conv_b", &[n], &tensor_to_vec(b)));
    }
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    g.node(
        "Conv",
        &inputs,
        vec![
            ("kernel_shape", ints(&dims[2..])),
            ("strides", ints(&conv.stride)),
            ("dilations", ints(&conv.dilation)),
            ("pads", Attr::Ints(pads(&conv.padding))),
            ("group", Attr::Int(conv.groups as i64)),
        ],
    )
}

/// `BatchNormalization` in inference mode (running statistics), for NCHW or NC input.
pub fn batch_norm(g: &mut GraphBuilder, bn: &BatchNorm, x: &str) -> String {
    let n = bn.gamma.val().dims()[0];
    let scale = g.param(
        bn.gamma.id,
        "bn_scale",
        &[n],
        &tensor_to_vec(bn.gamma.val()),
    );
    let bias = g.param(bn.beta.id, "bn_bias", &[n], &tensor_to_vec(bn.beta.val()));
    // Running statistics are named after the norm's weight: `<prefix>.running_mean`.
    let prefix = g
        .key(bn.gamma.id)
        .and_then(|k| k.strip_suffix(".weight"))
        .map(String::from);
    let mean_values = tensor_to_vec(bn.running_mean.value());
    let var_values = tensor_to_vec(bn.running_var.value());
    let (mean, var) = match prefix {
        Some(p) => (
            g.named_tensor(format!("{p}.running_mean"), &[n], &mean_values),
            g.named_tensor(format!("{p}.running_var"), &[n], &var_values),
        ),
        None => (
            g.tensor("bn_mean", &[n], &mean_values),
            g.tensor("bn_var", &[n], &var_values),
        ),
    };
    g.node(
        "BatchNormalization",
        &[x, &scale, &bias, &mean, &var],
        vec![("epsilon", Attr::Float(bn.epsilon as f32))],
    )
}

/// `InstanceNormalization` with its affine parameters.
pub fn instance_norm(g: &mut GraphBuilder, inorm: &InstanceNorm, x: &str) -> String {
    let n = inorm.num_channels;
    let (scale, bias) = match (&inorm.gamma, &inorm.beta) {
        (Some(gamma), Some(beta)) => (
            g.param(gamma.id, "in_scale", &[n], &tensor_to_vec(gamma.val())),
            g.param(beta.id, "in_bias", &[n], &tensor_to_vec(beta.val())),
        ),
        _ => (
            g.tensor("in_scale", &[n], &vec![1.0; n]),
            g.tensor("in_bias", &[n], &vec![0.0; n]),
        ),
    };
    g.node(
        "InstanceNormalization",
        &[x, &scale, &bias],
        vec![("epsilon", Attr::Float(inorm.epsilon as f32))],
    )
}

/// Batch or instance normalization.
pub fn norm(g: &mut GraphBuilder, norm: &Norm, x: &str) -> String {
    match norm {
        Norm::Batch(bn) => batch_norm(g, bn, x),
        Norm::Instance(inorm) => instance_norm(g, inorm, x),
    }
}

/// Convolution then normalization.
pub fn conv_norm(g: &mut GraphBuilder, cn: &ConvNorm, x: &str) -> String {
    let y = conv(g, &cn.conv, x);
    norm(g, &cn.bn, &y)
}

/// Convolution, normalization, ReLU.
pub fn conv_norm_relu(g: &mut GraphBuilder, cn: &ConvNorm, x: &str) -> String {
    let y = conv_norm(g, cn, x);
    relu(g, &y)
}

/// `Relu`.
pub fn relu(g: &mut GraphBuilder, x: &str) -> String {
    g.node("Relu", &[x], vec![])
}

/// ReLU6 as `Clip(x, 0, 6)`.
pub fn relu6(g: &mut GraphBuilder, x: &str) -> String {
    let lo = g.tensor("clip_min", &[], &[0.0]);
    let hi = g.tensor("clip_max", &[], &[6.0]);
    g.node("Clip", &[x, &lo, &hi], vec![])
}

/// `Gemm` computing `x · Wᵀ + b` with torch's `[out, in]` weight (Burn holds `[in, out]`).
pub fn linear(g: &mut GraphBuilder, linear: &Linear, x: &str) -> String {
    let w = linear.weight.val().transpose();
    let dims = w.dims();
    let weight = g.param(linear.weight.id, "fc_w", &dims, &tensor_to_vec(w));
    let mut inputs = vec![x.to_string(), weight];
    if let Some(bias) = &linear.bias {
        inputs.push(g.param(bias.id, "fc_b", &[dims[0]], &tensor_to_vec(bias.val())));
    }
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    g.node("Gemm", &inputs, vec![("transB", Attr::Int(1))])
}

/// `MaxPool`.
pub fn max_pool(g: &mut GraphBuilder, pool: &MaxPool2d, x: &str) -> String {
    g.node(
        "MaxPool",
        &[x],
        vec![
            ("kernel_shape", ints(&pool.kernel_size)),
            ("strides", ints(&pool.stride)),
            ("pads", Attr::Ints(pads(&pool.padding))),
            ("ceil_mode", Attr::Int(pool.ceil_mode as i64)),
        ],
    )
}

/// `AveragePool`.
pub fn avg_pool(g: &mut GraphBuilder, pool: &AvgPool2d, x: &str) -> String {
    g.node(
        "AveragePool",
        &[x],
        vec![
            ("kernel_shape", ints(&pool.kernel_size)),
            ("strides", ints(&pool.stride)),
            ("pads", Attr::Ints(pads(&pool.padding))),
            (
                "count_include_pad",
                Attr::Int(pool.count_include_pad as i64),
            ),
            ("ceil_mode", Attr::Int(pool.ceil_mode as i64)),
        ],
    )
}

/// `HardSwish` (opset 14): `x · relu6(x + 3) / 6`.
pub fn hard_swish(g: &mut GraphBuilder, x: &str) -> String {
    g.node("HardSwish", &[x], vec![])
}

/// `HardSigmoid` with PyTorch's slope and offset: `relu6(x + 3) / 6`.
pub fn hard_sigmoid(g: &mut GraphBuilder, x: &str) -> String {
    g.node(
        "HardSigmoid",
        &[x],
        vec![
            ("alpha", Attr::Float(1.0 / 6.0)),
            ("beta", Attr::Float(0.5)),
        ],
    )
}

/// SiLU as `x · Sigmoid(x)`.
pub fn silu(g: &mut GraphBuilder, x: &str) -> String {
    let s = g.node("Sigmoid", &[x], vec![]);
    g.node("Mul", &[x, &s], vec![])
}

/// Per-channel `PRelu`; the slope is stored with torch's `[C]` shape and reshaped to
/// `[C, 1, 1]` in the graph, so the file still reads back as a `state_dict`.
pub fn prelu(g: &mut GraphBuilder, prelu: &PRelu, x: &str) -> String {
    let alpha = prelu.alpha.val();
    let n = alpha.dims()[0];
    let slope = g.param(prelu.alpha.id, "prelu", &[n], &tensor_to_vec(alpha));
    let shape = g.int_tensor("prelu_shape", &[-1, 1, 1]);
    let slope = g.node("Reshape", &[&slope, &shape], vec![]);
    g.node("PRelu", &[x, &slope], vec![])
}

/// `Concat` along the channel axis.
pub fn concat(g: &mut GraphBuilder, parts: &[String]) -> String {
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    g.node("Concat", &parts, vec![("axis", Attr::Int(1))])
}

/// A pooling node without parameters (`MaxPool` / `AveragePool`), square window.
pub fn pool(
    g: &mut GraphBuilder,
    op: &str,
    kernel: usize,
    stride: usize,
    padding: usize,
    x: &str,
) -> String {
    let mut attrs = vec![
        ("kernel_shape", ints(&[kernel, kernel])),
        ("strides", ints(&[stride, stride])),
        ("pads", ints(&[padding; 4])),
    ];
    if op == "AveragePool" {
        attrs.push(("count_include_pad", Attr::Int(0)));
    }
    g.node(op, &[x], attrs)
}
