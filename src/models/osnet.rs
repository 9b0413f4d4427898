//! OSNet (Zhou et al., ICCV 2019) as torchreid 0.2.5 defines it: `osnet_x1_0`, `osnet_x0_75`,
//! `osnet_x0_5`, `osnet_x0_25` and the instance-normalized `osnet_ibn_x1_0`.

use burn::module::Module;
use burn::nn::InstanceNorm;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor};

use super::complexity::Macs;
use super::graph::{self, GraphBuilder, Value, folded_conv, pointwise_dense};
use super::layers::{
    ConvNorm, ConvSpec, avg_pool, batch_norm, conv_batch_norm, conv_forward, instance_norm,
    max_pool,
};

/// 1×1 linear convolution then a depthwise 3×3 convolution, batch norm and ReLU.
#[derive(Module, Debug)]
pub struct LightConv3x3 {
    /// Pointwise convolution.
    pub conv1: Conv2d,
    /// Depthwise 3×3 convolution.
    pub conv2: Conv2d,
    /// Batch normalization.
    pub bn: BatchNorm,
}

impl LightConv3x3 {
    /// A block mapping `in_channels` to `out_channels`.
    pub fn new(in_channels: usize, out_channels: usize, device: &Device) -> Self {
        Self {
            conv1: ConvSpec::new(in_channels, out_channels, 1).init(false, device),
            conv2: ConvSpec::new(out_channels, out_channels, 3)
                .groups(out_channels)
                .init(false, device),
            bn: batch_norm(out_channels, device),
        }
    }

    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = conv_forward(&self.conv1, x);
        conv_batch_norm(&self.conv2, &self.bn, y, true)
    }

    /// The graph's form of [`forward`](Self::forward).
    pub fn graph(&self, g: &mut GraphBuilder, x: Value) -> Option<Value> {
        let y = g.conv(x, folded_conv(&self.conv1, None)?, None, false);
        Some(g.conv(y, folded_conv(&self.conv2, Some(&self.bn))?, None, true))
    }

    pub(crate) fn macs(&self, m: &mut Macs) {
        m.conv(&self.conv1);
        m.conv(&self.conv2);
    }
}

/// Runs a chain of light convolutions.
pub(crate) fn light_chain(layers: &[LightConv3x3], x: Tensor<4>) -> Tensor<4> {
    layers.iter().fold(x, |x, layer| layer.forward(x))
}

/// The graph's form of [`light_chain`].
fn light_chain_graph(layers: &[LightConv3x3], g: &mut GraphBuilder, x: Value) -> Option<Value> {
    layers.iter().try_fold(x, |x, layer| layer.graph(g, x))
}

/// Channel attention: squeeze, two 1×1 convolutions, sigmoid gate.
#[derive(Module, Debug)]
pub struct ChannelGate {
    /// Reduction convolution (with bias).
    pub fc1: Conv2d,
    /// Expansion convolution (with bias).
    pub fc2: Conv2d,
}

impl ChannelGate {
    /// A gate over `channels` with torchreid's reduction of 16.
    pub fn new(channels: usize, device: &Device) -> Self {
        let reduced = (channels / 16).max(1);
        Self {
            fc1: ConvSpec::new(channels, reduced, 1).init(true, device),
            fc2: ConvSpec::new(reduced, channels, 1).init(true, device),
        }
    }

    /// Scales each channel of `x` by its gate.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let gate = self.values(x.clone());
        x * gate
    }

    /// The gate of each image and channel of `x`, `[n, c, 1, 1]`.
    fn values(&self, x: Tensor<4>) -> Tensor<4> {
        let squeezed = x.mean_dims(&[2, 3]);
        sigmoid(conv_forward(
            &self.fc2,
            relu(conv_forward(&self.fc1, squeezed)),
        ))
    }

    /// The graph's form of [`gated_sum`](Self::gated_sum): the gates and the sum in one step.
    pub fn gated_sum_graph(&self, g: &mut GraphBuilder, streams: [Value; 4]) -> Option<Value> {
        let gate = reid_kernels::inference::ChannelGate {
            reduce: pointwise_dense(&self.fc1)?,
            expand: pointwise_dense(&self.fc2)?,
        };
        Some(g.gated_sum(streams, gate))
    }

    /// The sum of the four streams, each scaled by its own gate: on the CPU in one pass
    /// ([`super::kernels::reid_gated_sum`]), elsewhere as products and sums in stream order.
    pub fn gated_sum(&self, streams: [Tensor<4>; 4]) -> Tensor<4> {
        let gated = streams.map(|x| (x.clone(), self.values(x)));
        super::kernels::reid_gated_sum(&gated).unwrap_or_else(|| {
            let [a, b, c, d] = gated.map(|(x, gate)| x * gate);
            a + b + c + d
        })
    }
}

/// Omni-scale residual block with four streams of increasing receptive field.
#[derive(Module, Debug)]
pub struct OsBlock {
    /// 1×1 reduction.
    pub conv1: ConvNorm,
    /// Stream of one light convolution.
    pub conv2a: LightConv3x3,
    /// Stream of two.
    pub conv2b: Vec<LightConv3x3>,
    /// Stream of three.
    pub conv2c: Vec<LightConv3x3>,
    /// Stream of four.
    pub conv2d: Vec<LightConv3x3>,
    /// Gate shared by the streams.
    pub gate: ChannelGate,
    /// 1×1 expansion, no activation.
    pub conv3: ConvNorm,
    /// Projection of the shortcut when the width changes.
    pub downsample: Option<ConvNorm>,
    /// Instance normalization after the residual sum (IBN variant).
    pub instance_norm: Option<InstanceNorm>,
}

impl OsBlock {
    /// A block from `in_channels` to `out_channels`, with instance norm when `with_in`.
    pub fn new(in_channels: usize, out_channels: usize, with_in: bool, device: &Device) -> Self {
        let mid = out_channels / 4;
        let chain = |n: usize| {
            (0..n)
                .map(|_| LightConv3x3::new(mid, mid, device))
                .collect()
        };
        Self {
            conv1: ConvNorm::batch(ConvSpec::new(in_channels, mid, 1), device),
            conv2a: LightConv3x3::new(mid, mid, device),
            conv2b: chain(2),
            conv2c: chain(3),
            conv2d: chain(4),
            gate: ChannelGate::new(mid, device),
            conv3: ConvNorm::batch(ConvSpec::new(mid, out_channels, 1), device),
            downsample: (in_channels != out_channels)
                .then(|| ConvNorm::batch(ConvSpec::new(in_channels, out_channels, 1), device)),
            instance_norm: with_in.then(|| instance_norm(out_channels, device)),
        }
    }

    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x1 = self.conv1.forward_relu(x.clone());
        let x2 = self.gate.gated_sum([
            self.conv2a.forward(x1.clone()),
            light_chain(&self.conv2b, x1.clone()),
            light_chain(&self.conv2c, x1.clone()),
            light_chain(&self.conv2d, x1),
        ]);
        let x3 = self.conv3.forward(x2);
        let identity = match &self.downsample {
            Some(down) => down.forward(x),
            None => x,
        };
        let out = x3 + identity;
        let out = match &self.instance_norm {
            Some(inorm) => inorm.forward(out),
            None => out,
        };
        relu(out)
    }

    /// The graph's form of [`forward`](Self::forward): the shortcut's sum and the ReLU in the
    /// last convolution. `None` with instance normalization.
    pub fn graph(&self, g: &mut GraphBuilder, x: Value) -> Option<Value> {
        if self.instance_norm.is_some() {
            return None;
        }
        let x1 = self.conv1.graph(g, x, None, true)?;
        let streams = [
            self.conv2a.graph(g, x1)?,
            light_chain_graph(&self.conv2b, g, x1)?,
            light_chain_graph(&self.conv2c, g, x1)?,
            light_chain_graph(&self.conv2d, g, x1)?,
        ];
        let x2 = self.gate.gated_sum_graph(g, streams)?;
        let identity = match &self.downsample {
            Some(down) => down.graph(g, x, None, false)?,
            None => x,
        };
        self.conv3.graph(g, x2, Some(identity), true)
    }

    fn macs(&self, m: &mut Macs) {
        let input = m.hw();
        m.conv(&self.conv1.conv);
        self.conv2a.macs(m);
        for layer in self.conv2b.iter().chain(&self.conv2c).chain(&self.conv2d) {
            layer.macs(m);
        }
        m.conv(&self.conv3.conv);
        if let Some(down) = &self.downsample {
            let out = m.hw();
            m.set_hw(input);
            m.conv(&down.conv);
            m.set_hw(out);
        }
    }
}

/// One stage: residual blocks, then optionally a 1×1 convolution and 2×2 average pooling.
#[derive(Module, Debug)]
pub struct OsStage {
    /// The residual blocks.
    pub blocks: Vec<OsBlock>,
    /// Spatial reduction after the blocks (`Conv1x1` + `AvgPool2d(2)`).
    pub transition: Option<ConvNorm>,
    /// The 2×2 pooling of the transition.
    pub pool: AvgPool2d,
}

impl OsStage {
    fn new(
        in_channels: usize,
        out_channels: usize,
        reduce: bool,
        with_in: bool,
        device: &Device,
    ) -> Self {
        Self {
            blocks: vec![
                OsBlock::new(in_channels, out_channels, with_in, device),
                OsBlock::new(out_channels, out_channels, with_in, device),
            ],
            transition: reduce
                .then(|| ConvNorm::batch(ConvSpec::new(out_channels, out_channels, 1), device)),
            pool: AvgPool2dConfig::new([2, 2]).init(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.blocks.iter().fold(x, |x, block| block.forward(x));
        match &self.transition {
            Some(t) => avg_pool(&self.pool, t.forward_relu(x)),
            None => x,
        }
    }

    fn graph(&self, g: &mut GraphBuilder, x: Value) -> Option<Value> {
        let x = self
            .blocks
            .iter()
            .try_fold(x, |x, block| block.graph(g, x))?;
        match &self.transition {
            Some(t) => {
                let y = t.graph(g, x, None, true)?;
                graph::avg_pool(g, &self.pool, y)
            }
            None => Some(x),
        }
    }

    fn macs(&self, m: &mut Macs) {
        for block in &self.blocks {
            block.macs(m);
        }
        if let Some(t) = &self.transition {
            m.conv(&t.conv);
            m.pool(2, 2, 0);
        }
    }
}

/// The OSNet backbone (everything before global pooling).
#[derive(Module, Debug)]
pub struct OsNet {
    /// 7×7 stem, stride 2 (instance norm in the IBN variant).
    pub conv1: ConvNorm,
    /// 3×3 max pooling, stride 2.
    pub maxpool: MaxPool2d,
    /// Stage 2 (with spatial reduction).
    pub conv2: OsStage,
    /// Stage 3 (with spatial reduction).
    pub conv3: OsStage,
    /// Stage 4.
    pub conv4: OsStage,
    /// Final 1×1 convolution.
    pub conv5: ConvNorm,
}

impl OsNet {
    /// An OSNet with stage widths `channels` (stem, stage 2, 3, 4); `ibn` puts instance norm
    /// in the stem and stage 2 as `osnet_ibn_x1_0` does.
    pub fn new(channels: [usize; 4], ibn: bool, device: &Device) -> Self {
        let stem = ConvSpec::new(3, channels[0], 7).stride(2).padding(3);
        Self {
            conv1: if ibn {
                ConvNorm::instance(stem, device)
            } else {
                ConvNorm::batch(stem, device)
            },
            maxpool: osnet_maxpool(),
            conv2: OsStage::new(channels[0], channels[1], true, ibn, device),
            conv3: OsStage::new(channels[1], channels[2], true, false, device),
            conv4: OsStage::new(channels[2], channels[3], false, false, device),
            conv5: ConvNorm::batch(ConvSpec::new(channels[3], channels[3], 1), device),
        }
    }

    /// Feature maps before global pooling.
    pub fn featuremaps(&self, x: Tensor<4>) -> Tensor<4> {
        let x = max_pool(&self.maxpool, self.conv1.forward_relu(x));
        let x = self
            .conv4
            .forward(self.conv3.forward(self.conv2.forward(x)));
        self.conv5.forward_relu(x)
    }

    /// The graph's form of [`featuremaps`](Self::featuremaps); `None` for the IBN variant.
    pub fn graph(&self, g: &mut GraphBuilder, x: Value) -> Option<Value> {
        let x = self.conv1.graph(g, x, None, true)?;
        let x = graph::max_pool(g, &self.maxpool, x)?;
        let x = self.conv2.graph(g, x)?;
        let x = self.conv3.graph(g, x)?;
        let x = self.conv4.graph(g, x)?;
        self.conv5.graph(g, x, None, true)
    }

    /// Channels of the feature maps.
    pub fn out_channels(&self) -> usize {
        self.conv5.conv.weight.lazy_shape().dims::<4>()[0]
    }

    pub(crate) fn macs(&self, m: &mut Macs) {
        m.conv(&self.conv1.conv);
        m.pool(3, 2, 1);
        self.conv2.macs(m);
        self.conv3.macs(m);
        self.conv4.macs(m);
        m.conv(&self.conv5.conv);
    }
}

/// torchreid's stem pooling: 3×3, stride 2, padding 1.
pub(crate) fn osnet_maxpool() -> MaxPool2d {
    MaxPool2dConfig::new([3, 3])
        .with_strides([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init()
}

/// Maps a parameter path of [`OsNet`] to torchreid's `state_dict` key.
pub(crate) fn torch_key(path: &str) -> String {
    let mut key = path.replace(".instance_norm.", ".IN.");
    for stage in ["conv2", "conv3", "conv4"] {
        let blocks = format!("{stage}.blocks.");
        if let Some(rest) = key.strip_prefix(&blocks) {
            key = format!("{stage}.{rest}");
        }
        let transition = format!("{stage}.transition.");
        if let Some(rest) = key.strip_prefix(&transition) {
            key = format!("{stage}.2.0.{rest}");
        }
    }
    key
}
