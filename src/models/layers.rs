//! Building blocks shared by the model families: convolution + normalization units, the
//! embedding head (global pooling, optional fc block) and the identity classifier.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, MaxPool2d};
use burn::nn::{
    BatchNorm, BatchNormConfig, Initializer, InstanceNorm, InstanceNormConfig, Linear,
    LinearConfig, PaddingConfig2d,
};
use burn::tensor::activation::relu;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, FloatDType, Tensor};

use super::graph::{GraphBuilder, Value, folded_conv, folded_linear};

/// How a family's reference implementation draws a fresh model's weights. Every scheme zeroes
/// the biases of convolutions and of the embedding's linear layers except
/// [`Init::PyTorchDefault`], which draws them as PyTorch's layers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// torchreid's `_init_params`: convolutions Kaiming-normal over the fan-out of all output
    /// channels (a depthwise filter too: PyTorch's fan-out ignores groups), linear layers
    /// N(0, 0.01).
    Torchreid,
    /// timm's `_init_weight_goog` (EfficientNet, MobileNetV3): the fan-out divided by the
    /// groups (the classifier as torchreid's: see [`Init::classifier`]).
    Timm,
    /// PyTorch's layer defaults (torchreid's Inception-V4 has no initialization of its own):
    /// uniform in ±1/√fan-in, biases too.
    PyTorchDefault,
}

impl Init {
    fn conv(self, groups: usize) -> Initializer {
        match self {
            // Burn divides the fan-out by the groups; torch's `kaiming_normal_` does not.
            Init::Torchreid => Initializer::KaimingNormal {
                gain: (2.0 / groups as f64).sqrt(),
                fan_out_only: true,
            },
            Init::Timm => Initializer::KaimingNormal {
                gain: std::f64::consts::SQRT_2,
                fan_out_only: true,
            },
            Init::PyTorchDefault => torch_default(),
        }
    }

    /// The identity (or class) classifier, `in_dim` → `classes`. timm's families take
    /// torchreid's N(0, 0.01) too, not timm's uniform ±1/√classes: logits that large at the
    /// start kept a multi-label head with the asymmetric loss near the label prior (mAP 0.42
    /// after the ten epochs of `tests/train/classification_runs.rs`, 0.6+ with the small draw).
    pub fn classifier(self, in_dim: usize, classes: usize, device: &Device) -> Linear {
        match self {
            Init::Torchreid | Init::Timm => linear(in_dim, classes, device),
            Init::PyTorchDefault => LinearConfig::new(in_dim, classes)
                .with_initializer(torch_default())
                .init(device),
        }
    }
}

/// PyTorch's default for convolution and linear layers (`kaiming_uniform_(a=√5)`: ±1/√fan-in).
fn torch_default() -> Initializer {
    Initializer::KaimingUniform {
        gain: 1.0 / 3.0f64.sqrt(),
        fan_out_only: false,
    }
}

fn zero_bias(mut layer: Linear, device: &Device) -> Linear {
    if let Some(bias) = &mut layer.bias {
        *bias = Initializer::Zeros.init(bias.lazy_shape().dims::<1>(), device);
    }
    layer
}

/// Geometry of a 2-D convolution without bias, as torchreid's blocks declare them, and how it
/// is initialized.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel size (height, width).
    pub kernel: [usize; 2],
    /// Stride in both directions.
    pub stride: usize,
    /// Symmetric zero padding (rows, columns).
    pub padding: [usize; 2],
    /// Channel groups (`out_channels` for depthwise).
    pub groups: usize,
    /// How its weights are drawn.
    pub scheme: Init,
}

impl ConvSpec {
    /// A `kernel`×`kernel` convolution with stride 1, padding `kernel / 2` and one group.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel: [kernel; 2],
            stride: 1,
            padding: [kernel / 2; 2],
            groups: 1,
            scheme: Init::Torchreid,
        }
    }

    /// Sets how the weights are drawn (torchreid's scheme unless told).
    pub fn scheme(mut self, scheme: Init) -> Self {
        self.scheme = scheme;
        self
    }

    /// A rectangular `height`×`width` kernel, padded by half its size in each direction
    /// (Inception's 1×7 and 7×1 convolutions).
    pub fn kernel_hw(mut self, height: usize, width: usize) -> Self {
        self.kernel = [height, width];
        self.padding = [height / 2, width / 2];
        self
    }

    /// Sets the stride.
    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }

    /// Sets the padding.
    pub fn padding(mut self, padding: usize) -> Self {
        self.padding = [padding; 2];
        self
    }

    /// Sets the number of groups.
    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// Builds the convolution, initialized by its [`Init`] scheme.
    pub fn init(self, bias: bool, device: &Device) -> Conv2d {
        let [ph, pw] = self.padding;
        let mut conv = Conv2dConfig::new([self.in_channels, self.out_channels], self.kernel)
            .with_stride([self.stride; 2])
            .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
            .with_groups(self.groups)
            .with_bias(bias)
            .with_initializer(self.scheme.conv(self.groups))
            .init(device);
        if self.scheme != Init::PyTorchDefault
            && let Some(bias) = &mut conv.bias
        {
            *bias = Initializer::Zeros.init([self.out_channels], device);
        }
        conv
    }
}

/// Runs `conv`: in half precision inside [`super::precision::autocast`]; on the CPU with reid's
/// kernels ([`super::kernels`]); otherwise a 1×1, stride-1, ungrouped convolution as one
/// batched matrix product (Burn's CPU convolution is slower for it: a training step of
/// osnet_x0_25 took 10 % less) and the rest with Burn's convolution.
pub fn conv_forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    if let Some(precision) = super::precision::compute_precision() {
        return half_conv(conv, x, precision.dtype());
    }
    if let Some(y) = super::kernels::reid_conv(conv, &x) {
        return y;
    }
    let pointwise = conv.kernel_size == [1, 1]
        && conv.stride == [1, 1]
        && conv.groups == 1
        && conv.dilation == [1, 1]
        && matches!(
            conv.padding,
            PaddingConfig2d::Explicit(0, 0, 0, 0) | PaddingConfig2d::Valid
        );
    if !pointwise {
        return conv.forward(x);
    }
    let [n, c, h, w] = x.dims();
    let weight = conv.weight.val();
    let out_channels = weight.dims()[0];
    let y = weight
        .reshape([1, out_channels, c])
        .matmul(x.reshape([n, c, h * w]));
    let y = match &conv.bias {
        Some(b) => y + b.val().reshape([1, out_channels, 1]),
        None => y,
    };
    y.reshape([n, out_channels, h, w])
}

/// `conv` computed in `dtype`: its input, weight and bias cast down, its output cast back to
/// float32 (the casts carry the gradients back to float32 too).
fn half_conv(conv: &Conv2d, x: Tensor<4>, dtype: FloatDType) -> Tensor<4> {
    let [_, _, height, width] = x.dims();
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        // As Burn's `Conv2d` pads `Same`: the extra row or column at the end.
        PaddingConfig2d::Same => [(height, 0), (width, 1)].map(|(size, axis)| {
            let (kernel, stride) = (conv.kernel_size[axis], conv.stride[axis]);
            let total = ((size.div_ceil(stride).max(1) - 1) * stride + kernel).saturating_sub(size);
            (total / 2, total - total / 2)
        }),
    };
    let options = ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups);
    let y = burn::tensor::module::conv2d(
        x.cast(dtype),
        conv.weight.val().cast(dtype),
        conv.bias.as_ref().map(|b| b.val().cast(dtype)),
        options,
    );
    y.cast(FloatDType::F32)
}

/// SiLU (swish), through reid's one-pass CPU kernel where it applies
/// ([`super::kernels::reid_silu`]).
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    super::kernels::reid_silu(&x).unwrap_or_else(|| burn::tensor::activation::silu(x))
}

/// Max pooling, through reid's CPU kernel where it applies
/// ([`super::kernels::reid_max_pool`]).
pub fn max_pool(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    super::kernels::reid_max_pool(pool, &x).unwrap_or_else(|| pool.forward(x))
}

/// Average pooling, through reid's CPU kernel where it applies
/// ([`super::kernels::reid_avg_pool`]).
pub fn avg_pool(pool: &AvgPool2d, x: Tensor<4>) -> Tensor<4> {
    super::kernels::reid_avg_pool(pool, &x).unwrap_or_else(|| pool.forward(x))
}

/// `bn(conv(x))`, then ReLU when `relu`; in inference on the CPU as one folded convolution
/// ([`super::kernels::reid_conv_batch_norm`]).
pub fn conv_batch_norm(conv: &Conv2d, bn: &BatchNorm, x: Tensor<4>, relu_after: bool) -> Tensor<4> {
    if let Some(y) = super::kernels::reid_conv_batch_norm(conv, bn, &x, relu_after) {
        return y;
    }
    bn_forward_then(bn, conv_forward(conv, x), relu_after)
}

/// Cosine similarities `[N, K]` of rows of `features` `[N, D]` with the columns of `weight`
/// `[D, K]` (a Linear layer's weight in Burn's layout), both L2-normalized.
pub fn cosine_scores(features: Tensor<2>, weight: Tensor<2>) -> Tensor<2> {
    let unit = |t: Tensor<2>, dim: usize| {
        let norm = t
            .clone()
            .powf_scalar(2.0)
            .sum_dim(dim)
            .sqrt()
            .clamp_min(1e-12);
        t / norm
    };
    unit(features, 1).matmul(unit(weight, 0))
}

/// Batch normalization for `channels` features, torchreid's defaults (eps 1e-5, momentum 0.1).
pub fn batch_norm(channels: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels).init(device)
}

/// Batch normalization with another `epsilon` (Inception's 1e-3, from TensorFlow).
pub fn batch_norm_eps(channels: usize, epsilon: f64, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels)
        .with_epsilon(epsilon)
        .init(device)
}

/// `bn`'s forward pass. In training mode on the CPU reid's fused kernel computes it
/// ([`super::kernels`]); elsewhere the batch statistics come from contiguous reductions over the
/// `[N, C, rest]` view of the activation — Burn's generic training BatchNorm transposes the
/// whole activation to `[C, …]` first, which on the CPU backend took a fifth of a training
/// step — with the variance in two passes. The running statistics follow PyTorch's update
/// (momentum, and the unbiased batch variance for the running variance).
pub fn bn_forward<const D: usize>(bn: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    bn_forward_then(bn, x, false)
}

/// [`bn_forward`], then ReLU when `relu_after`: in training on the CPU both in one kernel.
fn bn_forward_then<const D: usize>(bn: &BatchNorm, x: Tensor<D>, relu_after: bool) -> Tensor<D> {
    let then = |y: Tensor<D>| if relu_after { relu(y) } else { y };
    if !(x.device().is_autodiff() && bn.training.is_enabled()) {
        return then(bn.forward(x));
    }
    let dims = x.dims();
    let device = x.device();
    let count = (dims[0] * dims[2..].iter().product::<usize>()) as f64;
    let (out, mean, variance) = match super::kernels::reid_batch_norm(bn, &x, relu_after) {
        Some(result) => result,
        None => {
            let (out, mean, variance) = composed_batch_norm(bn, x);
            (then(out), mean, variance)
        }
    };
    let momentum = bn.momentum;
    let update = |state: &burn::module::RunningState<Tensor<1>>, batch: Tensor<1>| {
        let running = state.value_sync().to_device(&device);
        state.update((running * (1.0 - momentum) + batch.detach() * momentum).detach());
    };
    update(&bn.running_mean, mean);
    let unbiased = if count > 1.0 {
        count / (count - 1.0)
    } else {
        1.0
    };
    update(&bn.running_var, variance * unbiased);
    out
}

/// Training-mode batch normalization composed of Burn's operations: the output, the batch mean
/// and the biased batch variance per channel.
fn composed_batch_norm<const D: usize>(
    bn: &BatchNorm,
    x: Tensor<D>,
) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
    let dims = x.dims();
    let (n, c) = (dims[0], dims[1]);
    let rest: usize = dims[2..].iter().product();
    let count = (n * rest) as f64;
    let per_channel = |t: Tensor<3>| t.sum_dim(2).sum_dim(0).div_scalar(count);
    let flat: Tensor<3> = x.reshape([n, c, rest]);
    let mean = per_channel(flat.clone());
    let centered = flat - mean.clone();
    let variance = per_channel(centered.clone() * centered.clone());
    let scale = (variance.clone() + bn.epsilon).sqrt().recip() * bn.gamma.val().reshape([1, c, 1]);
    let out = centered * scale + bn.beta.val().reshape([1, c, 1]);
    (out.reshape(dims), mean.reshape([c]), variance.reshape([c]))
}

/// Affine instance normalization (`nn.InstanceNorm2d(c, affine=True)`).
pub fn instance_norm(channels: usize, device: &Device) -> InstanceNorm {
    InstanceNormConfig::new(channels).init(device)
}

/// Normalization after a convolution: batch statistics or per-instance statistics.
#[derive(Module, Debug)]
pub enum Norm {
    /// `nn.BatchNorm2d`.
    Batch(BatchNorm),
    /// `nn.InstanceNorm2d(affine=True)`.
    Instance(InstanceNorm),
}

impl Norm {
    /// Applies the normalization.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Norm::Batch(bn) => bn_forward(bn, x),
            Norm::Instance(inorm) => inorm.forward(x),
        }
    }
}

/// Convolution followed by batch or instance normalization (torchreid's `conv` + `bn`).
#[derive(Module, Debug)]
pub struct ConvNorm {
    /// The convolution (no bias).
    pub conv: Conv2d,
    /// The normalization.
    pub bn: Norm,
}

impl ConvNorm {
    /// Convolution + batch normalization.
    pub fn batch(spec: ConvSpec, device: &Device) -> Self {
        Self {
            conv: spec.init(false, device),
            bn: Norm::Batch(batch_norm(spec.out_channels, device)),
        }
    }

    /// Convolution + batch normalization with another `epsilon`.
    pub fn batch_eps(spec: ConvSpec, epsilon: f64, device: &Device) -> Self {
        Self {
            conv: spec.init(false, device),
            bn: Norm::Batch(batch_norm_eps(spec.out_channels, epsilon, device)),
        }
    }

    /// Convolution + instance normalization.
    pub fn instance(spec: ConvSpec, device: &Device) -> Self {
        Self {
            conv: spec.init(false, device),
            bn: Norm::Instance(instance_norm(spec.out_channels, device)),
        }
    }

    /// Convolution and normalization, no activation.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match &self.bn {
            Norm::Batch(bn) => conv_batch_norm(&self.conv, bn, x, false),
            Norm::Instance(_) => self.bn.forward(conv_forward(&self.conv, x)),
        }
    }

    /// Convolution, normalization and ReLU.
    pub fn forward_relu(&self, x: Tensor<4>) -> Tensor<4> {
        match &self.bn {
            Norm::Batch(bn) => conv_batch_norm(&self.conv, bn, x, true),
            Norm::Instance(_) => relu(self.forward(x)),
        }
    }

    /// The graph's form of [`forward`](Self::forward) (then `residual` added and ReLU when
    /// `relu`); `None` with instance normalization, which the graph does not take.
    pub fn graph(
        &self,
        g: &mut GraphBuilder,
        x: Value,
        residual: Option<Value>,
        relu: bool,
    ) -> Option<Value> {
        let Norm::Batch(bn) = &self.bn else {
            return None;
        };
        Some(g.conv(x, folded_conv(&self.conv, Some(bn))?, residual, relu))
    }
}

/// The embedding block after global pooling: `Linear` + `BatchNorm1d` (+ ReLU in torchreid's
/// re-id models; MobileFaceNet's has neither the ReLU nor a bias).
#[derive(Module, Debug)]
pub struct FcBlock {
    /// The projection.
    pub linear: Linear,
    /// 1-D batch normalization of the projected features.
    pub bn: BatchNorm,
    /// Whether a ReLU follows.
    #[module(skip)]
    pub relu: bool,
}

impl FcBlock {
    /// An `in_dim` → `out_dim` block with bias and ReLU (torchreid's `fc`).
    pub fn new(in_dim: usize, out_dim: usize, device: &Device) -> Self {
        Self {
            linear: linear(in_dim, out_dim, device),
            bn: batch_norm(out_dim, device),
            relu: true,
        }
    }

    /// An `in_dim` → `out_dim` projection without bias and without ReLU (MobileFaceNet).
    pub fn linear_embedding(in_dim: usize, out_dim: usize, device: &Device) -> Self {
        Self {
            linear: LinearConfig::new(in_dim, out_dim)
                .with_bias(false)
                .init(device),
            bn: batch_norm(out_dim, device),
            relu: false,
        }
    }

    /// Projects and normalizes `[N, in_dim]` features (then rectifies them, if so built).
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let y = bn_forward(&self.bn, self.linear.forward(x));
        if self.relu { relu(y) } else { y }
    }

    /// The graph's form of [`forward`](Self::forward), on `[n, in_dim, 1, 1]`.
    pub fn graph(&self, g: &mut GraphBuilder, x: Value) -> Value {
        g.dense(x, folded_linear(&self.linear, Some(&self.bn)), self.relu)
    }
}

/// A linear layer initialized as torchreid does (weights N(0, 0.01), zero bias).
pub fn linear(in_dim: usize, out_dim: usize, device: &Device) -> Linear {
    let layer = LinearConfig::new(in_dim, out_dim)
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: 0.01,
        })
        .init(device);
    zero_bias(layer, device)
}

/// Global average pooling: `[N, C, H, W]` → `[N, C]`.
pub fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let [n, c, _, _] = x.dims();
    x.mean_dims(&[2, 3]).reshape([n, c])
}

/// The head shared by every family: pooled features, an optional embedding block, and the
/// classifier (identities in re-id, classes in classification).
#[derive(Module, Debug)]
pub struct Head {
    /// Optional embedding block (`fc.0` Linear, `fc.1` BatchNorm1d in torchreid).
    pub fc: Option<FcBlock>,
    /// MobileNetV3's pre-logits layer after pooling: 1×1 convolution with bias, then
    /// hard-swish (timm's `conv_head`).
    pub conv_head: Option<Conv2d>,
    /// Classifier (`classifier` in torchreid and timm).
    pub classifier: Linear,
}

/// What comes between global pooling and the classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Neck {
    /// Nothing: the pooled features are the embedding.
    None,
    /// torchreid's `fc` block of this width.
    Fc(usize),
    /// MobileFaceNet's linear embedding of this width.
    LinearEmbedding(usize),
    /// MobileNetV3's `conv_head` of this width.
    ConvHead(usize),
}

impl Neck {
    /// Width of the embedding after the neck, for `in_dim` pooled channels.
    pub fn out_dim(self, in_dim: usize) -> usize {
        match self {
            Neck::None => in_dim,
            Neck::Fc(d) | Neck::LinearEmbedding(d) | Neck::ConvHead(d) => d,
        }
    }
}

impl Head {
    /// A head for `in_dim` pooled channels, a neck and `num_classes` classes, its classifier
    /// drawn by `scheme`.
    pub fn new(
        in_dim: usize,
        neck: Neck,
        num_classes: usize,
        scheme: Init,
        device: &Device,
    ) -> Self {
        let fc = match neck {
            Neck::Fc(d) => Some(FcBlock::new(in_dim, d, device)),
            Neck::LinearEmbedding(d) => Some(FcBlock::linear_embedding(in_dim, d, device)),
            _ => None,
        };
        let conv_head = match neck {
            Neck::ConvHead(d) => Some(ConvSpec::new(in_dim, d, 1).init(true, device)),
            _ => None,
        };
        Self {
            fc,
            conv_head,
            classifier: scheme.classifier(neck.out_dim(in_dim), num_classes.max(1), device),
        }
    }

    /// Pooled, projected embedding (what torchreid returns in eval mode; timm's pre-logits).
    pub fn features(&self, maps: Tensor<4>) -> Tensor<2> {
        if let Some(conv) = &self.conv_head {
            let [n, c, _, _] = maps.dims();
            let pooled = maps.mean_dims(&[2, 3]).reshape([n, c, 1, 1]);
            let y = burn::tensor::activation::hard_swish(conv_forward(conv, pooled));
            let d = y.dims()[1];
            return y.reshape([n, d]);
        }
        let v = global_avg_pool(maps);
        match &self.fc {
            Some(fc) => fc.forward(v),
            None => v,
        }
    }

    /// The graph's form of [`features`](Self::features), the embedding as `[n, d, 1, 1]`;
    /// `None` with MobileNetV3's `conv_head` (hard-swish), which the graph does not take.
    pub fn graph(&self, g: &mut GraphBuilder, maps: Value) -> Option<Value> {
        if self.conv_head.is_some() {
            return None;
        }
        let v = g.global_avg_pool(maps);
        Some(match &self.fc {
            Some(fc) => fc.graph(g, v),
            None => v,
        })
    }

    /// Embedding dimension.
    pub fn feature_dim(&self) -> usize {
        self.classifier.weight.lazy_shape().dims::<2>()[0]
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.classifier.weight.lazy_shape().dims::<2>()[1]
    }
}
