//! ResNet-50 as torchreid 0.2.5 defines `resnet50` (last stride 2, no fc) and
//! `resnet50_fc512` (last stride 1, a 512-d fc block).

use burn::module::Module;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::complexity::Macs;
use super::graph::{self, GraphBuilder, Value, folded_conv};
use super::layers::{ConvNorm, ConvSpec, batch_norm, conv_batch_norm, max_pool};
use super::osnet::osnet_maxpool;

/// Bottleneck residual block (1×1, 3×3, 1×1, expansion 4).
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// 1×1 reduction.
    pub conv1: Conv2d,
    /// Its batch norm.
    pub bn1: BatchNorm,
    /// 3×3 convolution (carries the stride).
    pub conv2: Conv2d,
    /// Its batch norm.
    pub bn2: BatchNorm,
    /// 1×1 expansion.
    pub conv3: Conv2d,
    /// Its batch norm.
    pub bn3: BatchNorm,
    /// Shortcut projection when stride or width change.
    pub downsample: Option<ConvNorm>,
}

impl Bottleneck {
    fn new(inplanes: usize, planes: usize, stride: usize, device: &Device) -> Self {
        let out = planes * 4;
        Self {
            conv1: ConvSpec::new(inplanes, planes, 1).init(false, device),
            bn1: batch_norm(planes, device),
            conv2: ConvSpec::new(planes, planes, 3)
                .stride(stride)
                .init(false, device),
            bn2: batch_norm(planes, device),
            conv3: ConvSpec::new(planes, out, 1).init(false, device),
            bn3: batch_norm(out, device),
            downsample: (stride != 1 || inplanes != out)
                .then(|| ConvNorm::batch(ConvSpec::new(inplanes, out, 1).stride(stride), device)),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = conv_batch_norm(&self.conv1, &self.bn1, x.clone(), true);
        let out = conv_batch_norm(&self.conv2, &self.bn2, out, true);
        let out = conv_batch_norm(&self.conv3, &self.bn3, out, false);
        let identity = match &self.downsample {
            Some(down) => down.forward(x),
            None => x,
        };
        relu(out + identity)
    }

    /// The graph's form of `forward`: the shortcut's sum and the ReLU in the last convolution.
    fn graph(&self, g: &mut GraphBuilder, x: Value) -> Option<Value> {
        let out = g.conv(x, folded_conv(&self.conv1, Some(&self.bn1))?, None, true);
        let out = g.conv(out, folded_conv(&self.conv2, Some(&self.bn2))?, None, true);
        let identity = match &self.downsample {
            Some(down) => down.graph(g, x, None, false)?,
            None => x,
        };
        let conv3 = folded_conv(&self.conv3, Some(&self.bn3))?;
        Some(g.conv(out, conv3, Some(identity), true))
    }

    fn macs(&self, m: &mut Macs) {
        let input = m.hw();
        m.conv(&self.conv1);
        m.conv(&self.conv2);
        m.conv(&self.conv3);
        if let Some(down) = &self.downsample {
            let out = m.hw();
            m.set_hw(input);
            m.conv(&down.conv);
            m.set_hw(out);
        }
    }
}

/// The ResNet-50 backbone.
#[derive(Module, Debug)]
pub struct ResNet {
    /// 7×7 stem, stride 2.
    pub conv1: Conv2d,
    /// Stem batch norm.
    pub bn1: BatchNorm,
    /// 3×3 max pooling, stride 2.
    pub maxpool: MaxPool2d,
    /// Stage 1 (3 blocks, 256 channels).
    pub layer1: Vec<Bottleneck>,
    /// Stage 2 (4 blocks, 512 channels).
    pub layer2: Vec<Bottleneck>,
    /// Stage 3 (6 blocks, 1024 channels).
    pub layer3: Vec<Bottleneck>,
    /// Stage 4 (3 blocks, 2048 channels).
    pub layer4: Vec<Bottleneck>,
}

impl ResNet {
    /// ResNet-50 with the given stride in its last stage.
    pub fn resnet50(last_stride: usize, device: &Device) -> Self {
        let mut inplanes = 64;
        let mut layer = |planes: usize, blocks: usize, stride: usize| {
            let first = Bottleneck::new(inplanes, planes, stride, device);
            inplanes = planes * 4;
            std::iter::once(first)
                .chain((1..blocks).map(|_| Bottleneck::new(inplanes, planes, 1, device)))
                .collect::<Vec<_>>()
        };
        let layer1 = layer(64, 3, 1);
        let layer2 = layer(128, 4, 2);
        let layer3 = layer(256, 6, 2);
        let layer4 = layer(512, 3, last_stride);
        Self {
            conv1: ConvSpec::new(3, 64, 7)
                .stride(2)
                .padding(3)
                .init(false, device),
            bn1: batch_norm(64, device),
            maxpool: osnet_maxpool(),
            layer1,
            layer2,
            layer3,
            layer4,
        }
    }

    /// Feature maps before global pooling.
    pub fn featuremaps(&self, x: Tensor<4>) -> Tensor<4> {
        let x = max_pool(
            &self.maxpool,
            conv_batch_norm(&self.conv1, &self.bn1, x, true),
        );
        [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
            .into_iter()
            .flatten()
            .fold(x, |x, block| block.forward(x))
    }

    /// The graph's form of [`featuremaps`](Self::featuremaps).
    pub fn graph(&self, g: &mut GraphBuilder, x: Value) -> Option<Value> {
        let x = g.conv(x, folded_conv(&self.conv1, Some(&self.bn1))?, None, true);
        let x = graph::max_pool(g, &self.maxpool, x)?;
        [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
            .into_iter()
            .flatten()
            .try_fold(x, |x, block| block.graph(g, x))
    }

    /// Channels of the feature maps.
    pub fn out_channels(&self) -> usize {
        2048
    }

    pub(crate) fn macs(&self, m: &mut Macs) {
        m.conv(&self.conv1);
        m.pool(3, 2, 1);
        [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
            .into_iter()
            .flatten()
            .for_each(|b| b.macs(m));
    }
}

/// Maps a parameter path of [`ResNet`] to torchvision/torchreid's `state_dict` key.
pub(crate) fn torch_key(path: &str) -> String {
    path.replace(".downsample.conv.", ".downsample.0.")
        .replace(".downsample.bn.", ".downsample.1.")
}
