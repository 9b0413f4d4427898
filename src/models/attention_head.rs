//! A multi-label head with class queries attending over the spatial feature map, in the
//! spirit of Query2Label / ML-Decoder and the seed's paper: one learned query per class reads
//! the map through multi-head cross-attention, a feed-forward block refines it, and each
//! class's query output is scored by its own linear unit (ML-Decoder's group-FC with one class
//! per group). Unlike a linear head on the pooled vector, each class can look at where its
//! object is.

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Tensor};

use super::layers::{ConvSpec, conv_forward};

/// Epsilon of the head's layer normalizations.
pub const LAYER_NORM_EPS: f64 = 1e-5;

/// The attention head.
#[derive(Module, Debug)]
pub struct AttentionHead {
    /// 1×1 projection of the feature maps to the decoder width (with bias).
    pub proj: Conv2d,
    /// One learned query per class, `[classes, dim]`.
    pub queries: Param<Tensor<2>>,
    /// Query projection.
    pub q: Linear,
    /// Key projection.
    pub k: Linear,
    /// Value projection.
    pub v: Linear,
    /// Output projection of the attention.
    pub out: Linear,
    /// Normalization after the attention's residual.
    pub norm1: LayerNorm,
    /// Feed-forward expansion.
    pub ffn1: Linear,
    /// Feed-forward projection back.
    pub ffn2: Linear,
    /// Normalization after the feed-forward residual.
    pub norm2: LayerNorm,
    /// Per-class scoring weights, `[classes, dim]`.
    pub class_weight: Param<Tensor<2>>,
    /// Per-class biases.
    pub class_bias: Param<Tensor<1>>,
    /// Attention heads (`dim` must be a multiple).
    #[module(skip)]
    pub heads: usize,
}

fn dense(a: usize, b: usize, device: &Device) -> Linear {
    LinearConfig::new(a, b)
        .with_initializer(Initializer::XavierUniform { gain: 1.0 })
        .init(device)
}

impl AttentionHead {
    /// A head for `in_channels`-channel maps, `classes` queries of width `dim`, `heads`
    /// attention heads.
    pub fn new(
        in_channels: usize,
        classes: usize,
        dim: usize,
        heads: usize,
        device: &Device,
    ) -> Self {
        let normal = |shape: [usize; 2], std: f64| {
            Initializer::Normal { mean: 0.0, std }.init(shape, device)
        };
        Self {
            proj: ConvSpec::new(in_channels, dim, 1).init(true, device),
            queries: normal([classes, dim], 1.0),
            q: dense(dim, dim, device),
            k: dense(dim, dim, device),
            v: dense(dim, dim, device),
            out: dense(dim, dim, device),
            norm1: LayerNormConfig::new(dim)
                .with_epsilon(LAYER_NORM_EPS)
                .init(device),
            ffn1: dense(dim, 2 * dim, device),
            ffn2: dense(2 * dim, dim, device),
            norm2: LayerNormConfig::new(dim)
                .with_epsilon(LAYER_NORM_EPS)
                .init(device),
            class_weight: normal([classes, dim], (1.0 / dim as f64).sqrt()),
            class_bias: Initializer::Zeros.init([classes], device),
            heads: heads.max(1),
        }
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.queries.lazy_shape().dims::<2>()[0]
    }

    /// Decoder width.
    pub fn dim(&self) -> usize {
        self.queries.lazy_shape().dims::<2>()[1]
    }

    /// Class logits `[N, classes]` of feature maps `[N, C, H, W]`.
    pub fn forward(&self, maps: Tensor<4>) -> Tensor<2> {
        let [n, _, h, w] = maps.dims();
        let (d, heads) = (self.dim(), self.heads);
        let (classes, dh) = (self.num_classes(), d / heads);
        let tokens = conv_forward(&self.proj, maps)
            .reshape([n, d, h * w])
            .swap_dims(1, 2);
        let split = |t: Tensor<3>, len: usize| t.reshape([n, len, heads, dh]).swap_dims(1, 2);
        let queries = self.queries.val().unsqueeze_dim::<3>(0).repeat_dim(0, n);
        let q = split(self.q.forward(queries.clone()), classes);
        let k = split(self.k.forward(tokens.clone()), h * w);
        let v = split(self.v.forward(tokens), h * w);
        let attention = softmax(q.matmul(k.swap_dims(2, 3)) / (dh as f64).sqrt(), 3);
        let read = attention.matmul(v).swap_dims(1, 2).reshape([n, classes, d]);
        let x = self.norm1.forward(queries + self.out.forward(read));
        let x = self
            .norm2
            .forward(x.clone() + self.ffn2.forward(relu(self.ffn1.forward(x))));
        let scores = (x * self.class_weight.val().unsqueeze_dim::<3>(0))
            .sum_dim(2)
            .reshape([n, classes]);
        scores + self.class_bias.val().unsqueeze_dim::<2>(0)
    }
}
