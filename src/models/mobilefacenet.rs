//! MobileFaceNet (Chen et al., 2018) for 112×112 faces, with the module names of the common
//! PyTorch implementation (InsightFace_Pytorch, which deep-object-reid's follows):
//! `conv1`, `conv2_dw`, `conv_23`, `conv_3.model.N`, …, `conv_6_sep`, `conv_6_dw`, then the
//! head's `linear` (no bias) and `bn` give the 128-d embedding.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, PRelu, PReluConfig};
use burn::tensor::{Device, Tensor};

use super::complexity::Macs;
use super::layers::{ConvSpec, batch_norm, conv_batch_norm};

/// Convolution, batch norm, PReLU (`Conv_block`).
#[derive(Module, Debug)]
pub struct ConvBlock {
    /// The convolution (no bias).
    pub conv: Conv2d,
    /// Its normalization.
    pub bn: BatchNorm,
    /// Per-channel PReLU.
    pub prelu: PRelu,
}

impl ConvBlock {
    fn new(spec: ConvSpec, device: &Device) -> Self {
        Self {
            conv: spec.init(false, device),
            bn: batch_norm(spec.out_channels, device),
            prelu: PReluConfig::new()
                .with_num_parameters(spec.out_channels)
                .init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.prelu
            .forward(conv_batch_norm(&self.conv, &self.bn, x, false))
    }
}

/// Convolution and batch norm without activation (`Linear_block`).
#[derive(Module, Debug)]
pub struct LinearBlock {
    /// The convolution (no bias).
    pub conv: Conv2d,
    /// Its normalization.
    pub bn: BatchNorm,
}

impl LinearBlock {
    fn new(spec: ConvSpec, device: &Device) -> Self {
        Self {
            conv: spec.init(false, device),
            bn: batch_norm(spec.out_channels, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv_batch_norm(&self.conv, &self.bn, x, false)
    }
}

/// Expansion, depthwise 3×3, linear projection, optional residual (`Depth_Wise`).
#[derive(Module, Debug)]
pub struct DepthWise {
    /// 1×1 expansion to `groups` channels.
    pub conv: ConvBlock,
    /// Depthwise 3×3, carries the stride.
    pub conv_dw: ConvBlock,
    /// 1×1 linear projection.
    pub project: LinearBlock,
    /// Whether the input is added back.
    pub residual: bool,
}

impl DepthWise {
    fn new(cin: usize, cout: usize, groups: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv: ConvBlock::new(ConvSpec::new(cin, groups, 1), device),
            conv_dw: ConvBlock::new(
                ConvSpec::new(groups, groups, 3)
                    .stride(stride)
                    .groups(groups),
                device,
            ),
            project: LinearBlock::new(ConvSpec::new(groups, cout, 1), device),
            residual: stride == 1 && cin == cout,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self
            .project
            .forward(self.conv_dw.forward(self.conv.forward(x.clone())));
        if self.residual { x + y } else { y }
    }

    fn macs(&self, m: &mut Macs) {
        m.conv(&self.conv.conv);
        m.conv(&self.conv_dw.conv);
        m.conv(&self.project.conv);
    }
}

/// The MobileFaceNet feature extractor, ending with the global depthwise 7×7 convolution.
#[derive(Module, Debug)]
pub struct MobileFaceNet {
    /// 3×3 stride-2 stem.
    pub conv1: ConvBlock,
    /// Depthwise 3×3.
    pub conv2_dw: ConvBlock,
    /// Stride-2 bottleneck.
    pub conv_23: DepthWise,
    /// Four residual bottlenecks (torch: `conv_3.model`).
    pub conv_3: Vec<DepthWise>,
    /// Stride-2 bottleneck to 128 channels.
    pub conv_34: DepthWise,
    /// Six residual bottlenecks.
    pub conv_4: Vec<DepthWise>,
    /// Stride-2 bottleneck.
    pub conv_45: DepthWise,
    /// Two residual bottlenecks.
    pub conv_5: Vec<DepthWise>,
    /// 1×1 to 512 channels.
    pub conv_6_sep: ConvBlock,
    /// Global depthwise 7×7 convolution (GDConv), no padding.
    pub conv_6_dw: LinearBlock,
}

impl MobileFaceNet {
    /// Builds the network.
    pub fn new(device: &Device) -> Self {
        let residual = |c: usize, n: usize, groups: usize| -> Vec<DepthWise> {
            (0..n)
                .map(|_| DepthWise::new(c, c, groups, 1, device))
                .collect()
        };
        Self {
            conv1: ConvBlock::new(ConvSpec::new(3, 64, 3).stride(2), device),
            conv2_dw: ConvBlock::new(ConvSpec::new(64, 64, 3).groups(64), device),
            conv_23: DepthWise::new(64, 64, 128, 2, device),
            conv_3: residual(64, 4, 128),
            conv_34: DepthWise::new(64, 128, 256, 2, device),
            conv_4: residual(128, 6, 256),
            conv_45: DepthWise::new(128, 128, 512, 2, device),
            conv_5: residual(128, 2, 256),
            conv_6_sep: ConvBlock::new(ConvSpec::new(128, 512, 1), device),
            conv_6_dw: LinearBlock::new(ConvSpec::new(512, 512, 7).padding(0).groups(512), device),
        }
    }

    /// The bottleneck blocks between `conv2_dw` and `conv_6_sep`, in order.
    pub(crate) fn stages(&self) -> impl Iterator<Item = &DepthWise> {
        std::iter::once(&self.conv_23)
            .chain(&self.conv_3)
            .chain(std::iter::once(&self.conv_34))
            .chain(&self.conv_4)
            .chain(std::iter::once(&self.conv_45))
            .chain(&self.conv_5)
    }

    /// Feature maps after the GDConv: `[N, 512, 1, 1]` for 112×112 faces.
    pub fn featuremaps(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.conv2_dw.forward(self.conv1.forward(x));
        let x = self.stages().fold(x, |x, b| b.forward(x));
        self.conv_6_dw.forward(self.conv_6_sep.forward(x))
    }

    /// Channels of the feature maps.
    pub fn out_channels(&self) -> usize {
        512
    }

    pub(crate) fn macs(&self, m: &mut Macs) {
        m.conv(&self.conv1.conv);
        m.conv(&self.conv2_dw.conv);
        for b in self.stages() {
            b.macs(m);
        }
        m.conv(&self.conv_6_sep.conv);
        m.conv(&self.conv_6_dw.conv);
    }
}

/// Maps a parameter path of [`MobileFaceNet`] to the reference's `state_dict` key.
pub(crate) fn torch_key(path: &str) -> String {
    let mut key = path.replace(".prelu.alpha", ".prelu.weight");
    for stage in ["conv_3.", "conv_4.", "conv_5."] {
        if let Some(rest) = key.strip_prefix(stage) {
            key = format!("{stage}model.{rest}");
            break;
        }
    }
    key
}
