//! OSNet-AIN (Zhou et al., TPAMI 2021): OSNet with instance normalization searched into
//! selected blocks, as torchreid 0.2.5 defines `osnet_ain_x1_0` … `osnet_ain_x0_25`.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d};
use burn::nn::{BatchNorm, InstanceNorm};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::complexity::Macs;
use super::layers::{
    ConvNorm, ConvSpec, avg_pool, batch_norm, conv_batch_norm, conv_forward, instance_norm,
    max_pool,
};
use super::osnet::{ChannelGate, LightConv3x3, light_chain, osnet_maxpool};

/// A stream of `depth` light convolutions (`LightConvStream`).
#[derive(Module, Debug)]
pub struct LightConvStream {
    /// The chained convolutions.
    pub layers: Vec<LightConv3x3>,
}

/// 1×1 convolution with optional batch norm and no activation (`Conv1x1Linear(bn=…)`).
#[derive(Module, Debug)]
pub struct Conv1x1Linear {
    /// The convolution.
    pub conv: Conv2d,
    /// Batch normalization, absent in blocks that normalize by instance instead.
    pub bn: Option<BatchNorm>,
}

impl Conv1x1Linear {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match &self.bn {
            Some(bn) => conv_batch_norm(&self.conv, bn, x, false),
            None => conv_forward(&self.conv, x),
        }
    }
}

/// `OSBlock` (no instance norm) or `OSBlockINin` (instance norm inside the residual).
#[derive(Module, Debug)]
pub struct AinBlock {
    /// 1×1 reduction.
    pub conv1: ConvNorm,
    /// Four streams of depth 1 to 4.
    pub conv2: Vec<LightConvStream>,
    /// Gate shared by the streams.
    pub gate: ChannelGate,
    /// 1×1 expansion.
    pub conv3: Conv1x1Linear,
    /// Projection of the shortcut when the width changes.
    pub downsample: Option<ConvNorm>,
    /// Instance normalization of the residual branch (`OSBlockINin`).
    pub instance_norm: Option<InstanceNorm>,
}

impl AinBlock {
    /// A block from `in_channels` to `out_channels`; `inin` selects `OSBlockINin`.
    pub fn new(in_channels: usize, out_channels: usize, inin: bool, device: &Device) -> Self {
        let mid = out_channels / 4;
        Self {
            conv1: ConvNorm::batch(ConvSpec::new(in_channels, mid, 1), device),
            conv2: (1..=4)
                .map(|depth| LightConvStream {
                    layers: (0..depth)
                        .map(|_| LightConv3x3::new(mid, mid, device))
                        .collect(),
                })
                .collect(),
            gate: ChannelGate::new(mid, device),
            conv3: Conv1x1Linear {
                conv: ConvSpec::new(mid, out_channels, 1).init(false, device),
                bn: (!inin).then(|| batch_norm(out_channels, device)),
            },
            downsample: (in_channels != out_channels)
                .then(|| ConvNorm::batch(ConvSpec::new(in_channels, out_channels, 1), device)),
            instance_norm: inin.then(|| instance_norm(out_channels, device)),
        }
    }

    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x1 = self.conv1.forward_relu(x.clone());
        let streams: [Tensor<4>; 4] =
            std::array::from_fn(|t| light_chain(&self.conv2[t].layers, x1.clone()));
        let x2 = self.gate.gated_sum(streams);
        let mut x3 = self.conv3.forward(x2);
        if let Some(inorm) = &self.instance_norm {
            x3 = inorm.forward(x3);
        }
        let identity = match &self.downsample {
            Some(down) => down.forward(x),
            None => x,
        };
        relu(x3 + identity)
    }

    fn macs(&self, m: &mut Macs) {
        let input = m.hw();
        m.conv(&self.conv1.conv);
        for layer in self.conv2.iter().flat_map(|s| &s.layers) {
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

/// The OSNet-AIN backbone.
#[derive(Module, Debug)]
pub struct OsNetAin {
    /// 7×7 stem with instance norm.
    pub conv1: ConvNorm,
    /// 3×3 max pooling, stride 2.
    pub maxpool: MaxPool2d,
    /// Stage 2: `OSBlockINin`, `OSBlockINin`.
    pub conv2: Vec<AinBlock>,
    /// 1×1 convolution before the first reduction.
    pub pool2: ConvNorm,
    /// Stage 3: `OSBlock`, `OSBlockINin`.
    pub conv3: Vec<AinBlock>,
    /// 1×1 convolution before the second reduction.
    pub pool3: ConvNorm,
    /// Stage 4: `OSBlockINin`, `OSBlock`.
    pub conv4: Vec<AinBlock>,
    /// Final 1×1 convolution.
    pub conv5: ConvNorm,
    /// 2×2 average pooling of `pool2` / `pool3`.
    pub avgpool: AvgPool2d,
}

impl OsNetAin {
    /// An OSNet-AIN with stage widths `channels` (stem, stage 2, 3, 4).
    pub fn new(channels: [usize; 4], device: &Device) -> Self {
        let [c0, c1, c2, c3] = channels;
        let stage = |cin: usize, cout: usize, inin: [bool; 2]| {
            vec![
                AinBlock::new(cin, cout, inin[0], device),
                AinBlock::new(cout, cout, inin[1], device),
            ]
        };
        Self {
            conv1: ConvNorm::instance(ConvSpec::new(3, c0, 7).stride(2).padding(3), device),
            maxpool: osnet_maxpool(),
            conv2: stage(c0, c1, [true, true]),
            pool2: ConvNorm::batch(ConvSpec::new(c1, c1, 1), device),
            conv3: stage(c1, c2, [false, true]),
            pool3: ConvNorm::batch(ConvSpec::new(c2, c2, 1), device),
            conv4: stage(c2, c3, [true, false]),
            conv5: ConvNorm::batch(ConvSpec::new(c3, c3, 1), device),
            avgpool: AvgPool2dConfig::new([2, 2]).init(),
        }
    }

    /// Feature maps before global pooling.
    pub fn featuremaps(&self, x: Tensor<4>) -> Tensor<4> {
        let run = |blocks: &[AinBlock], x| blocks.iter().fold(x, |x, b: &AinBlock| b.forward(x));
        let x = max_pool(&self.maxpool, self.conv1.forward_relu(x));
        let x = run(&self.conv2, x);
        let x = avg_pool(&self.avgpool, self.pool2.forward_relu(x));
        let x = run(&self.conv3, x);
        let x = avg_pool(&self.avgpool, self.pool3.forward_relu(x));
        let x = run(&self.conv4, x);
        self.conv5.forward_relu(x)
    }

    /// Channels of the feature maps.
    pub fn out_channels(&self) -> usize {
        self.conv5.conv.weight.lazy_shape().dims::<4>()[0]
    }

    pub(crate) fn macs(&self, m: &mut Macs) {
        m.conv(&self.conv1.conv);
        m.pool(3, 2, 1);
        self.conv2.iter().for_each(|b| b.macs(m));
        m.conv(&self.pool2.conv);
        m.pool(2, 2, 0);
        self.conv3.iter().for_each(|b| b.macs(m));
        m.conv(&self.pool3.conv);
        m.pool(2, 2, 0);
        self.conv4.iter().for_each(|b| b.macs(m));
        m.conv(&self.conv5.conv);
    }
}

/// Maps a parameter path of [`OsNetAin`] to torchreid's `state_dict` key.
pub(crate) fn torch_key(path: &str) -> String {
    let key = path.replace(".instance_norm.", ".IN.");
    match key.split_once('.') {
        Some(("pool2" | "pool3", _)) => {
            let (stage, rest) = key.split_once('.').unwrap();
            format!("{stage}.0.{rest}")
        }
        _ => key,
    }
}
