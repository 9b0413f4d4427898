//! Building blocks shared by the model families: convolution + normalization units, the
//! embedding head (global pooling, optional fc block) and the identity classifier.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Initializer, InstanceNorm, InstanceNormConfig, Linear,
    LinearConfig, PaddingConfig2d,
};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// Geometry of a 2-D convolution without bias, as torchreid's blocks declare them.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Square kernel size.
    pub kernel: usize,
    /// Stride in both directions.
    pub stride: usize,
    /// Symmetric zero padding.
    pub padding: usize,
    /// Channel groups (`out_channels` for depthwise).
    pub groups: usize,
}

impl ConvSpec {
    /// A `kernel`×`kernel` convolution with stride 1, padding `kernel / 2` and one group.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel,
            stride: 1,
            padding: kernel / 2,
            groups: 1,
        }
    }

    /// Sets the stride.
    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }

    /// Sets the padding.
    pub fn padding(mut self, padding: usize) -> Self {
        self.padding = padding;
        self
    }

    /// Sets the number of groups.
    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// Builds the convolution, Kaiming-normal (fan-out) initialized as torchreid does.
    pub fn init(self, bias: bool, device: &Device) -> Conv2d {
        let p = self.padding;
        Conv2dConfig::new([self.in_channels, self.out_channels], [self.kernel; 2])
            .with_stride([self.stride; 2])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .with_groups(self.groups)
            .with_bias(bias)
            .with_initializer(Initializer::KaimingNormal {
                gain: std::f64::consts::SQRT_2,
                fan_out_only: true,
            })
            .init(device)
    }
}

/// Runs `conv`; a 1×1, stride-1, ungrouped convolution as one batched matrix product
/// (Burn's CPU convolution is slower for it: a training step of osnet_x0_25 took 10 % less).
pub fn conv_forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
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

/// `bn`'s forward pass. In training mode the batch statistics come from contiguous
/// reductions over the `[N, C, rest]` view of the activation — Burn's generic training
/// BatchNorm transposes the whole activation to `[C, …]` first, which on the CPU backend took a
/// fifth of a training step — with the variance in two passes; the running statistics follow
/// PyTorch's update (momentum, and the unbiased batch variance for the running variance).
pub fn bn_forward<const D: usize>(bn: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    if !(x.device().is_autodiff() && bn.training.is_enabled()) {
        return bn.forward(x);
    }
    let dims = x.dims();
    let device = x.device();
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
    let momentum = bn.momentum;
    let update = |state: &burn::module::RunningState<Tensor<1>>, batch: Tensor<3>| {
        let running = state.value_sync().to_device(&device);
        let batch = batch.detach().reshape([c]);
        state.update((running * (1.0 - momentum) + batch * momentum).detach());
    };
    update(&bn.running_mean, mean);
    let unbiased = if count > 1.0 {
        count / (count - 1.0)
    } else {
        1.0
    };
    update(&bn.running_var, variance * unbiased);
    out.reshape(dims)
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

    /// Convolution + instance normalization.
    pub fn instance(spec: ConvSpec, device: &Device) -> Self {
        Self {
            conv: spec.init(false, device),
            bn: Norm::Instance(instance_norm(spec.out_channels, device)),
        }
    }

    /// Convolution and normalization, no activation.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn.forward(conv_forward(&self.conv, x))
    }

    /// Convolution, normalization and ReLU.
    pub fn forward_relu(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.forward(x))
    }
}

/// The embedding block after global pooling: `Linear` + `BatchNorm1d` + ReLU.
#[derive(Module, Debug)]
pub struct FcBlock {
    /// The projection.
    pub linear: Linear,
    /// 1-D batch normalization of the projected features.
    pub bn: BatchNorm,
}

impl FcBlock {
    /// An `in_dim` → `out_dim` block.
    pub fn new(in_dim: usize, out_dim: usize, device: &Device) -> Self {
        Self {
            linear: linear(in_dim, out_dim, device),
            bn: batch_norm(out_dim, device),
        }
    }

    /// Projects, normalizes and rectifies `[N, in_dim]` features.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        relu(bn_forward(&self.bn, self.linear.forward(x)))
    }
}

/// A linear layer initialized as torchreid does (weights N(0, 0.01), zero bias).
pub fn linear(in_dim: usize, out_dim: usize, device: &Device) -> Linear {
    LinearConfig::new(in_dim, out_dim)
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: 0.01,
        })
        .init(device)
}

/// Global average pooling: `[N, C, H, W]` → `[N, C]`.
pub fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let [n, c, _, _] = x.dims();
    x.mean_dims(&[2, 3]).reshape([n, c])
}

/// The re-id head shared by every family: pooled features, an optional fc block, and the
/// identity classifier used only in training.
#[derive(Module, Debug)]
pub struct Head {
    /// Optional embedding block (`fc.0` Linear, `fc.1` BatchNorm1d in torchreid).
    pub fc: Option<FcBlock>,
    /// Identity classifier (`classifier` in torchreid).
    pub classifier: Linear,
}

impl Head {
    /// A head for `in_dim` pooled channels, an optional fc dimension and `num_classes` ids.
    pub fn new(in_dim: usize, fc_dim: Option<usize>, num_classes: usize, device: &Device) -> Self {
        let fc = fc_dim.map(|d| FcBlock::new(in_dim, d, device));
        let feature_dim = fc_dim.unwrap_or(in_dim);
        Self {
            fc,
            classifier: linear(feature_dim, num_classes.max(1), device),
        }
    }

    /// Pooled, projected embedding (what torchreid returns in eval mode).
    pub fn features(&self, maps: Tensor<4>) -> Tensor<2> {
        let v = global_avg_pool(maps);
        match &self.fc {
            Some(fc) => fc.forward(v),
            None => v,
        }
    }

    /// Embedding dimension.
    pub fn feature_dim(&self) -> usize {
        self.classifier.weight.lazy_shape().dims::<2>()[0]
    }

    /// Number of identity classes.
    pub fn num_classes(&self) -> usize {
        self.classifier.weight.lazy_shape().dims::<2>()[1]
    }
}
